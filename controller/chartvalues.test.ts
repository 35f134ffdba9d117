// biome-ignore-all lint/suspicious/noTemplateCurlyInString: Fleet's ${ } cluster templating is the data under test
import { expect } from 'chai';
import { StallingError } from '../lib/errors.js';
import { clusterHelmOptions } from './chartvalues.js';

describe('clusterHelmOptions', () => {
  const cluster = { name: 'c1', namespace: 'fleet-default', labels: { env: 'prod', region: 'eu' } };

  it('templates helm values for the cluster and marks them done for the agent', () => {
    const out = clusterHelmOptions(
      { defaultNamespace: 'apps', helm: { values: { env: 'global.fleet.clusterLabels.env', name: '${ .ClusterName }-${ .ClusterLabels.region }' } } },
      cluster,
      'web',
    );
    expect(out).to.deep.equal({ defaultNamespace: 'apps', helm: { values: { env: 'prod', name: 'c1-eu' }, disablePreProcess: true } });
  });

  it('keeps ${ } as text but still substitutes labels under disablePreProcess', () => {
    const out = clusterHelmOptions(
      { helm: { disablePreProcess: true, values: { a: '${ .ClusterName }', b: 'global.fleet.clusterLabels.env' } } },
      cluster,
      'web',
    );
    expect(out.helm?.values).to.deep.equal({ a: '${ .ClusterName }', b: 'prod' });
  });

  it('templates .ClusterValues from the Cluster spec.templateValues and .ClusterNamespace, typed as Fleet re-reads them', () => {
    const withValues = { ...cluster, values: { replicas: 3, region: { zone: 'eu-1a' } } };
    const out = clusterHelmOptions(
      { helm: { values: { replicas: '${ .ClusterValues.replicas }', zone: '${ .ClusterValues.region.zone }', ns: '${ .ClusterNamespace }' } } },
      withValues,
      'web',
    );
    expect(out.helm?.values).to.deep.equal({ replicas: 3, zone: 'eu-1a', ns: 'fleet-default' });
  });

  it('refuses a .ClusterValues key the Cluster does not have, naming the bundle and the cluster', () => {
    expect(() => clusterHelmOptions({ helm: { values: { a: '${ .ClusterValues.size }' } } }, cluster, 'web')).to.throw(
      StallingError,
      /bundle web: .*cluster c1: .*"size"/,
    );
  });

  it('leaves options without values alone', () => {
    const options = { helm: { releaseName: 'x' } };
    expect(clusterHelmOptions(options, cluster, 'web')).to.equal(options);
  });

  it('refuses a missing label key, naming the bundle and the cluster', () => {
    expect(() => clusterHelmOptions({ helm: { values: { a: '${ .ClusterLabels.nope }' } } }, cluster, 'web')).to.throw(
      StallingError,
      /bundle web: helm\.values for cluster c1: .*"nope"/,
    );
  });
});
