import { expect } from 'chai';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseFleetYaml, UNSUPPORTED_FLEET_YAML_FIELDS } from '../api/fleetyaml.js';
import { StallingError } from '../errors.js';
import { kustomizeOverChart, releaseNamespace } from '../render/index.js';
import { inlineFleetYamlValuesFiles, preprocessValues } from '../render/values.js';
import { readBundle } from './read.js';
import { selectClusters } from './target.js';
import { fleetYamlOptions } from './validate.js';

/**
 * A full fleet.yaml of our own (testdata/fleet-full/shop/fleet.yaml) using every field Flotilla honours, read
 * as the controller reads it and targeted and templated for given clusters as Fleet would (the agent then
 * renders the chart with helm and the chosen kustomize.dir over it: e2e/fleetyaml.e2e.ts does that for real).
 */

const ROOT = join(dirname(fileURLToPath(import.meta.url)), 'testdata', 'fleet-full');

const CLUSTERS: { name: string; labels: Record<string, string>; values: Record<string, unknown> }[] = [
  { name: 'shop-eu', labels: { purpose: 'retail', region: 'eu', tier: 'edge' }, values: { size: 3 } },
  { name: 'shop-us', labels: { purpose: 'retail', region: 'us' }, values: { size: 5 } },
  { name: 'lab-1', labels: { purpose: 'retail', region: 'lab' }, values: { size: 1 } },
  { name: 'office', labels: { purpose: 'office', region: 'eu' }, values: { size: 1 } },
];

async function perCluster() {
  const loaded = await readBundle(ROOT, { name: 'repo-shop', dir: 'shop' });
  const fy = inlineFleetYamlValuesFiles(loaded.fleetYaml, loaded.files, { fleetYamlName: 'shop/fleet.yaml', label: (p) => `shop/${p}` });
  const selected = selectClusters(
    fy.overrideTargets,
    fy.targetCustomizations,
    CLUSTERS.map((c) => ({ name: c.name, labels: c.labels })),
    [],
    fleetYamlOptions(fy),
  );
  return {
    loaded,
    fy,
    clusters: selected.map((sel) => {
      const c = CLUSTERS.find((x) => x.name === sel.cluster)!;
      const values = preprocessValues(sel.options.helm?.values ?? {}, { ...c, namespace: 'fleet-default' }, false, 'shop/fleet.yaml');
      return {
        cluster: sel.cluster,
        customization: sel.customization,
        options: sel.options,
        values,
        kustomizeDir: kustomizeOverChart(loaded.files, sel.options),
      };
    }),
  };
}

describe('a full fleet.yaml (every honoured field), read, targeted and templated as Fleet would', () => {
  it('names the bundle and keeps its labels and dependencies for the Bundle', async () => {
    const { loaded, fy } = await perCluster();
    expect(loaded.name).to.equal('shop-frontend');
    expect(fy.labels).to.deep.equal({ team: 'storefront', layer: 'web' });
    expect(fy.dependsOn).to.deep.equal([{ name: 'shop-database' }, { selector: { matchLabels: { layer: 'cache' } }, acceptedStates: ['Ready', 'Modified'] }]);
    expect(fy.paused).to.equal(false);
  });

  it('targets only the clusters of overrideTargets, less the doNotDeploy customization', async () => {
    const { clusters } = await perCluster();
    expect(clusters.map((c) => [c.cluster, c.customization])).to.deep.equal([
      ['shop-eu', 'edge'],
      ['shop-us', undefined],
    ]);
  });

  it('gives each cluster its templated values, values files in Fleet order, and its kustomize.dir over the chart', async () => {
    const { clusters } = await perCluster();
    const [eu, us] = clusters;
    expect(eu?.values).to.deep.equal({
      region: 'eu',
      banner: 'Welcome to shop-eu',
      size: 3,
      home: 'fleet-default',
      'retail-mode': 'EU',
      currency: 'EUR',
      replicas: 1,
      cache: 'small',
    });
    expect(us?.values).to.deep.equal({
      region: 'us',
      banner: 'Welcome to shop-us',
      size: 5,
      home: 'fleet-default',
      'retail-mode': 'US',
      currency: 'EUR',
      replicas: 3,
    });
    expect(eu?.kustomizeDir).to.equal('kustomize/edge');
    expect(us?.kustomizeDir).to.equal('kustomize/base');
  });

  it('carries every deployment option to the cluster unchanged', async () => {
    const { clusters } = await perCluster();
    const options = clusters[1]!.options;
    expect(releaseNamespace(options)).to.equal('shop-live');
    expect(options).to.deep.include({
      defaultNamespace: 'shop',
      namespace: 'shop-live',
      namespaceLabels: { 'cost-centre': 'retail' },
      namespaceAnnotations: { owner: 'storefront@example.org' },
      keepResources: true,
      correctDrift: { enabled: true, force: false, keepFailHistory: false },
      ignore: { conditions: [{ type: 'Degraded', status: 'True' }] },
    });
    expect(options.diff?.comparePatches?.[0]).to.deep.equal({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      name: 'shop-frontend-settings',
      operations: [{ op: 'remove', path: '/data/lastSeen' }],
      jsonPointers: ['/metadata/annotations/touched'],
    });
    const { values: _values, ...helm } = options.helm ?? {};
    expect(helm).to.deep.equal({
      chart: 'chart',
      releaseName: 'storefront',
      takeOwnership: true,
      force: false,
      waitForJobs: true,
      maxHistory: 4,
      timeoutSeconds: 0, // atomic: false, Fleet's no-op, is dropped
      skipSchemaValidation: false,
      disableDNS: true,
      disablePreProcess: false,
      disableDependencyUpdate: true,
      valuesFrom: [{ configMapKeyRef: { name: 'shop-tuning', key: 'tuning.yaml' }, secretKeyRef: { name: 'shop-payments', namespace: 'payments' } }],
    });
  });

  it('refuses each field of the reference Flotilla does not honour, by name', () => {
    for (const field of ['imageScans']) {
      expect(UNSUPPORTED_FLEET_YAML_FIELDS, field).to.have.property(field);
      expect(() => parseFleetYaml(`${field}: {}\n`, 'fleet.yaml'), field).to.throw(StallingError, new RegExp(`^fleet\\.yaml: ${field}: Fleet "${field}"`));
    }
  });
});
