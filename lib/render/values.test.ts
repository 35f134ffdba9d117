import { expect } from 'chai';
import { StallingError } from '../errors.js';
import { TemplateError, expandTemplate } from './template.js';
import { inlineValuesFiles, mergeValues, preprocessValues, type TemplateCluster } from './values.js';

const cluster: TemplateCluster = {
  name: 'prod-eu',
  namespace: 'fleet-default',
  labels: { env: 'prod', 'topology.kubernetes.io/region': 'eu', replicas: '3' },
  annotations: { owner: 'team-a' },
  values: { tier: { size: 'large' } },
};
const ctx = {
  ClusterName: cluster.name,
  ClusterNamespace: cluster.namespace,
  ClusterLabels: cluster.labels,
  ClusterAnnotations: cluster.annotations,
  ClusterValues: cluster.values,
};

describe('expandTemplate (Fleet ${ } values templating)', () => {
  const cases: [string, string][] = [
    ['${ .ClusterName }', 'prod-eu'],
    ['ns=${.ClusterNamespace}!', 'ns=fleet-default!'],
    ['${ .ClusterLabels.env }-${ .ClusterValues.tier.size }', 'prod-large'],
    ['${ index .ClusterLabels "topology.kubernetes.io/region" }', 'eu'],
    ['${ .ClusterLabels.env | upper }', 'PROD'],
    ['${ .ClusterLabels.env | upper | quote }', '"PROD"'],
    ['${ index .ClusterAnnotations "missing" | default "none" }', 'none'],
    ['${ default "x" .ClusterAnnotations.owner }', 'team-a'],
    ['${ replace "-" "_" .ClusterName }', 'prod_eu'],
    ['${ get .ClusterLabels "topology.kubernetes.io/region" }', 'eu'],
    ['${ get .ClusterLabels "absent" | default "none" }', 'none'],
    ['${ .ClusterName | hasPrefix "prod" }', 'true'],
    ['${ .ClusterValues.tier.size | contains "arg" }', 'true'],
    ['${ .ClusterLabels.env | b64enc }', 'cHJvZA=='],
    ['${ "cHJvZA==" | b64dec }', 'prod'],
    ['no action', 'no action'],
  ];
  for (const [template, expected] of cases) {
    it(`expands ${template}`, () => expect(expandTemplate(template, ctx)).to.equal(expected));
  }

  const errors: [string, RegExp][] = [
    ['${ .ClusterLabels.nope }', /map has no entry for key "nope"/],
    ['${ if .ClusterName }', /the "if" action is not supported/],
    ['${ env "HOME" }', /function "env" is not supported/],
    ['${ .ClusterName', /unclosed action/],
  ];
  for (const [template, pattern] of errors) {
    it(`refuses ${template}`, () => expect(() => expandTemplate(template, ctx)).to.throw(TemplateError, pattern));
  }
});

describe('preprocessValues', () => {
  it('replaces global.fleet.clusterLabels.* strings, "" for a missing label, at any depth', () => {
    const values = {
      region: 'global.fleet.clusterLabels.topology.kubernetes.io/region',
      list: [{ e: 'global.fleet.clusterLabels.env' }],
      missing: 'global.fleet.clusterLabels.nope',
    };
    expect(preprocessValues(values, cluster, false, 'fleet.yaml')).to.deep.equal({ region: 'eu', list: [{ e: 'prod' }], missing: '' });
  });

  it('expands ${ } in values and keys and reads the result back as YAML, as Fleet re-parses templated values', () => {
    const values = { replicas: '${ .ClusterLabels.replicas }', image: { tag: 'v-${ .ClusterLabels.env }' }, '${ .ClusterLabels.env }Only': true };
    expect(preprocessValues(values, cluster, false, 'fleet.yaml')).to.deep.equal({ replicas: 3, image: { tag: 'v-prod' }, prodOnly: true });
  });

  it('keeps ${ } as text with disablePreProcess (labels are still substituted)', () => {
    const values = { a: '${ .ClusterName }', b: 'global.fleet.clusterLabels.env' };
    expect(preprocessValues(values, cluster, true, 'fleet.yaml')).to.deep.equal({ a: '${ .ClusterName }', b: 'prod' });
  });

  it('refuses a failing action as InvalidBundle naming the file, the cluster and the action', () => {
    expect(() => preprocessValues({ a: '${ .ClusterLabels.nope }' }, cluster, false, 'apps/web/fleet.yaml')).to.throw(
      StallingError,
      /^apps\/web\/fleet\.yaml: helm\.values for cluster prod-eu: \$\{ \.ClusterLabels\.nope \}: map has no entry/,
    );
  });
});

describe('values files and merging', () => {
  const files = [
    { path: 'values/common.yaml', content: Buffer.from('image: {repo: web, tag: "1"}\nreplicas: 1\n') },
    { path: 'values/prod.yaml', content: Buffer.from('replicas: 5\n') },
    { path: 'values/bad.yaml', content: Buffer.from('- a\n') },
  ];
  const where = { field: 'helm', fleetYamlName: 'apps/web/fleet.yaml', label: (p: string) => `apps/web/${p}` };

  it('merges values files over values, in order (Fleet order: files win)', () => {
    const helm = inlineValuesFiles(
      { values: { replicas: 2, image: { tag: '0' }, extra: true }, valuesFiles: ['values/common.yaml', './values/prod.yaml'] },
      files,
      where,
    );
    expect(helm).to.deep.equal({ values: { replicas: 5, image: { repo: 'web', tag: '1' }, extra: true } });
  });

  it('refuses a missing values file naming the fleet.yaml field', () => {
    expect(() => inlineValuesFiles({ valuesFiles: ['values/common.yaml', 'values/none.yaml'] }, files, where)).to.throw(
      StallingError,
      /^apps\/web\/fleet\.yaml: helm\.valuesFiles\[1\]: values file apps\/web\/values\/none\.yaml is not in the bundle/,
    );
  });

  it('refuses a values file that is not a mapping', () => {
    expect(() => inlineValuesFiles({ valuesFiles: ['values/bad.yaml'] }, files, where)).to.throw(
      /apps\/web\/values\/bad\.yaml: a values file must be a mapping/,
    );
  });

  it('refuses a values file whose aliases expand beyond the content limits, naming the file and the limit', () => {
    // Nine levels of ten aliases each: 10^9 nodes once expanded, from a file of under 1 KB.
    const levels = ['a0: &a0 [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i <= 9; i++) levels.push(`a${i}: &a${i} [${Array.from({ length: 10 }, () => `*a${i - 1}`).join(', ')}]`);
    const bomb = { path: 'values/bomb.yaml', content: Buffer.from(`${levels.join('\n')}\n`) };
    expect(() => inlineValuesFiles({ valuesFiles: ['values/bomb.yaml'] }, [...files, bomb], where))
      .to.throw(StallingError, /apps\/web\/values\/bomb\.yaml.*(alias|expand|limit)/i)
      .with.property('reason', 'ContentLimitExceeded');
  });

  it('deep-merges mappings and replaces lists and scalars', () => {
    expect(mergeValues({ a: { b: 1, c: [1, 2] }, d: 1 }, { a: { c: [3] }, d: { e: 1 } })).to.deep.equal({ a: { b: 1, c: [3] }, d: { e: 1 } });
  });
});
