import { expect } from 'chai';
import type { LoadedBundle } from '../lib/bundle/index.js';
import { parseFleetYaml } from '../lib/api/fleetyaml.js';
import type { ChartSource } from '../lib/render/chartsource.js';
import { withRemoteCharts, type ChartFetcher, type DependencyBuilder } from './charts.js';

const chartFiles = (name: string, version: string) => [
  { path: 'Chart.yaml', content: Buffer.from(`apiVersion: v2\nname: ${name}\nversion: ${version}\n`) },
  { path: 'templates/cm.yaml', content: Buffer.from('kind: ConfigMap\n') },
];

function bundleOf(fleetYaml: string): LoadedBundle {
  return { name: 'apps-web', dir: 'apps/web', fleetYaml: parseFleetYaml(fleetYaml, 'apps/web/fleet.yaml'), files: [] };
}

/** A fetcher that resolves `^1` to 1.4.0 and records what it was asked. */
function recording(): { fetch: ChartFetcher; asked: { source: ChartSource; username?: string | undefined }[] } {
  const asked: { source: ChartSource; username?: string | undefined }[] = [];
  const fetch: ChartFetcher = async (source, access) => {
    asked.push({ source, username: access.username });
    const version = 'version' in source && source.version === '^1' ? '1.4.0' : 'version' in source && source.version ? source.version : '2.0.0';
    return { name: 'web', version, files: chartFiles('web', version) };
  };
  return { fetch, asked };
}

describe('remote charts at bundle build time', () => {
  it('stores a repository chart in the bundle and points helm.chart at it, without repo and version', async () => {
    const { fetch, asked } = recording();
    const { bundle, charts } = await withRemoteCharts(
      bundleOf('helm:\n  repo: https://charts.example/stable\n  chart: web\n  version: "^1"\n  releaseName: web\n'),
      () => ({ username: 'u' }),
      fetch,
    );
    expect(asked).to.have.length(1);
    const path = charts[0]?.path ?? '';
    expect(path).to.match(/^\.chart\/[0-9a-f]{12}\/web$/);
    expect(bundle.fleetYaml.helm).to.deep.equal({ chart: path, releaseName: 'web' });
    expect(bundle.files.map((f) => f.path)).to.deep.equal([`${path}/Chart.yaml`, `${path}/templates/cm.yaml`]);
    expect(charts).to.deep.equal([{ source: 'chart web from https://charts.example/stable', version: '1.4.0', path }]);
  });

  it('fetches a target customization that changes the version into its own folder, and one that does not shares the base chart', async () => {
    const { fetch, asked } = recording();
    const { bundle, charts } = await withRemoteCharts(
      bundleOf(
        'helm:\n  chart: oci://registry.example/charts/web\n  version: "^1"\ntargetCustomizations:\n' +
          '- name: canary\n  clusterSelector: {matchLabels: {env: canary}}\n  helm: {version: 2.1.0}\n' +
          '- name: prod\n  clusterSelector: {matchLabels: {env: prod}}\n  helm: {values: {a: 1}}\n',
      ),
      () => ({}),
      fetch,
    );
    expect(asked.map((a) => 'version' in a.source && a.source.version)).to.deep.equal(['^1', '2.1.0']);
    expect(charts.map((c) => c.version)).to.deep.equal(['1.4.0', '2.1.0']);
    const [base, canary] = charts.map((c) => c.path);
    expect(canary).to.equal(`${(base ?? '').replace(/\/web$/, '')}-2/web`);
    expect(bundle.fleetYaml.helm).to.deep.equal({ chart: base });
    expect(bundle.fleetYaml.targetCustomizations?.[0]?.helm).to.deep.equal({ chart: canary });
    expect(bundle.fleetYaml.targetCustomizations?.[1]?.helm).to.deep.equal({ chart: base, values: { a: 1 } });
  });

  it('keeps the same folder for a new version of the same chart (unchanged files keep their layers)', async () => {
    const a = await withRemoteCharts(bundleOf('helm: {chart: "oci://r.example/c/web", version: 1.0.0}\n'), () => ({}), recording().fetch);
    const b = await withRemoteCharts(bundleOf('helm: {chart: "oci://r.example/c/web", version: 2.0.0}\n'), () => ({}), recording().fetch);
    expect(a.charts[0]?.path).to.equal(b.charts[0]?.path);
    expect(a.charts[0]?.version).to.not.equal(b.charts[0]?.version);
  });

  it('leaves a bundle with an in-repository chart alone', async () => {
    const { fetch, asked } = recording();
    const original = bundleOf('helm: {chart: ./chart}\n');
    const { bundle, charts } = await withRemoteCharts(original, () => ({}), fetch);
    expect(asked).to.have.length(0);
    expect(charts).to.deep.equal([]);
    expect(bundle).to.equal(original);
  });

  it('refuses helm.repo without helm.chart, naming the bundle and its fleet.yaml', async () => {
    const err = await withRemoteCharts(bundleOf('helm: {repo: "https://charts.example"}\n'), () => ({}), recording().fetch).catch((e: unknown) => e);
    expect((err as Error).message).to.match(/^bundle apps-web \(apps\/web\/fleet\.yaml\): helm\.repo needs helm\.chart/);
  });

  it('counts the fetched files against the bundle limits', async () => {
    const err = await withRemoteCharts(bundleOf('helm: {chart: "https://charts.example/web-1.0.0.tgz"}\n'), () => ({}), recording().fetch, {
      maxFiles: 1,
    }).catch((e: unknown) => e);
    expect((err as { reason?: string }).reason).to.equal('BundleTooLarge');
    expect((err as Error).message).to.match(/bundle apps-web \(apps\/web\/fleet\.yaml\): with its fetched charts it has 2 files, more than the limit of 1/);
  });

  describe('chart dependencies', () => {
    const chartYaml = (deps: string) => ({
      path: 'chart/Chart.yaml',
      content: Buffer.from(`apiVersion: v2\nname: app\nversion: 1.0.0\ndependencies:\n${deps}`),
    });
    const fromRepo = '- name: db\n  version: ^2\n  repository: https://charts.example/db\n- name: local\n  version: 1.0.0\n  repository: file://../local\n';
    function builder(): { build: DependencyBuilder; calls: { deps: string[]; username?: string | undefined }[] } {
      const calls: { deps: string[]; username?: string | undefined }[] = [];
      const build: DependencyBuilder = async (_files, deps, access) => {
        calls.push({ deps: deps.map((d) => `${d.name} ${d.version} ${d.repository}`), username: access(deps[0]?.repository ?? '').username });
        return [{ path: 'charts/db-2.3.0.tgz', content: Buffer.from('tgz') }];
      };
      return { build, calls };
    }
    const loaded = (fleetYaml: string, files: { path: string; content: Buffer }[]): LoadedBundle => ({ ...bundleOf(fleetYaml), files });

    it('builds the dependencies of an in-repository chart from their repositories, with the credentials for their URL', async () => {
      const { build, calls } = builder();
      const { bundle } = await withRemoteCharts(
        loaded('helm: {chart: chart}\n', [chartYaml(fromRepo)]),
        (s) => ({ username: s.kind === 'repo' ? s.repo : '' }),
        recording().fetch,
        {},
        build,
      );
      expect(calls).to.deep.equal([{ deps: ['db ^2 https://charts.example/db'], username: 'https://charts.example/db' }]);
      expect(bundle.files.map((f) => f.path)).to.deep.equal(['chart/Chart.yaml', 'chart/charts/db-2.3.0.tgz']);
    });

    const untouched: [string, string, { path: string; content: Buffer }[]][] = [
      ['disableDependencyUpdate is set', 'helm: {chart: chart, disableDependencyUpdate: true}\n', [chartYaml(fromRepo)]],
      ['the archive is in charts/ already', 'helm: {chart: chart}\n', [chartYaml(fromRepo), { path: 'chart/charts/db-2.0.0.tgz', content: Buffer.from('x') }]],
      ['the dependencies are local', 'helm: {chart: chart}\n', [chartYaml('- name: local\n  repository: file://../local\n')]],
    ];
    for (const [name, fleetYaml, files] of untouched) {
      it(`fetches nothing when ${name}`, async () => {
        const { build, calls } = builder();
        const original = loaded(fleetYaml, files);
        const { bundle } = await withRemoteCharts(original, () => ({}), recording().fetch, {}, build);
        expect(calls).to.deep.equal([]);
        expect(bundle).to.equal(original);
      });
    }
  });
});
