import { expect } from 'chai';
import { fileURLToPath } from 'node:url';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ensureBinaries } from '../stack/binaries.js';
import { helmTemplate } from '../lib/render/helm.js';
import { kustomizeBuild } from '../lib/render/kustomize.js';
import { renderContent, type RenderSettings } from '../lib/render/index.js';
import type { BundleFile } from '../lib/bundle/manifest.js';
import { FlotillaError } from '../lib/errors.js';
import { Reason } from '../lib/api/constants.js';
import { filesUnder } from './support/bundlefiles.js';
import { runRender } from '../cli/render.js';
import yaml from 'js-yaml';

/**
 * lib/render against the real helm and kustomize the stack's installer built (paths from stack/binaries.ts):
 * the test chart (values, _helpers.tpl, .Capabilities, crds/, hooks, a test hook, values.schema.json) and a
 * kustomization with a base and an overlay.
 */

const TESTDATA = join(dirname(fileURLToPath(import.meta.url)), 'testdata');
const CAPS = { kubeVersion: 'v1.31.4', apiVersions: ['example.flotilla.dev/v1/Widget'] };

describe('rendering with the real helm and kustomize', () => {
  let settings: RenderSettings;
  let chart: BundleFile[];
  let kust: BundleFile[];
  const limits = { timeoutMs: 60_000, maxOutputBytes: 4 << 20, what: 'bundle render-e2e' };

  before(async () => {
    const bin = await ensureBinaries();
    settings = { tools: { helm: bin.helm, kustomize: bin.kustomize }, ...limits };
    chart = await filesUnder(join(TESTDATA, 'helm', 'chart'));
    kust = await filesUnder(join(TESTDATA, 'kustomize'));
  });

  describe('helmTemplate', () => {
    const input = () => ({
      ...limits,
      files: chart,
      chart: '.',
      releaseName: 'rel',
      namespace: 'apps',
      values: { color: 'green' },
      helm: {},
      capabilities: CAPS,
      helmPath: settings.tools.helm,
    });

    it('sorts the chart output into CRDs, resources and install hooks, dropping the test hook', async () => {
      const out = await helmTemplate(input());
      expect(out.crds.map((d) => d.source)).to.deep.equal(['flotilla-test/crds/widgets.yaml']);
      expect(out.resources.map((d) => d.source)).to.have.members([
        'flotilla-test/templates/configmap.yaml',
        'flotilla-test/templates/extra.yaml',
        'flotilla-test/templates/widget.yaml',
      ]);
      expect(out.hooks.map((h) => [h.source, h.phase, h.weight])).to.deep.equal([
        ['flotilla-test/templates/pre-install-job.yaml', 'pre', -5],
        ['flotilla-test/templates/post-install.yaml', 'post', 0],
      ]);
      expect(out.hooks[0]?.deletePolicy).to.deep.equal(['before-hook-creation', 'hook-succeeded']);
      expect(out.hooks[1]?.deletePolicy).to.deep.equal(['before-hook-creation']);
    });

    it('uses the given values, helpers and the cluster capabilities', async () => {
      const cm = (await helmTemplate(input())).resources.find((d) => d.source.endsWith('configmap.yaml'))?.text ?? '';
      expect(cm).to.include('name: rel-flotilla-test\n');
      expect(cm).to.include('color: "green"');
      expect(cm).to.include('kubeVersion: "v1.31.4"');
      expect(cm).to.include('widgets: "served"');
      const older = await helmTemplate({ ...input(), capabilities: { kubeVersion: 'v1.29.0', apiVersions: [] } });
      const text = older.resources.find((d) => d.source.endsWith('configmap.yaml'))?.text ?? '';
      expect(text).to.include('kubeVersion: "v1.29.0"');
      expect(text).to.include('widgets: "not served"');
    });

    it('refuses values that fail the chart schema, naming the bundle and the cause', async () => {
      const err = await helmTemplate({ ...input(), values: { color: 'purple' } }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(FlotillaError);
      expect((err as FlotillaError).reason).to.equal(Reason.InvalidBundle);
      expect((err as FlotillaError).disposition).to.equal('stalling');
      expect((err as Error).message)
        .to.match(/bundle render-e2e/)
        .and.to.match(/color/);
      const skipped = await helmTemplate({ ...input(), values: { color: 'purple' }, helm: { skipSchemaValidation: true } });
      expect(skipped.resources.length).to.equal(3);
    });

    it('reports a failing template with the template file', async () => {
      const broken = [...chart, { path: 'templates/broken.yaml', content: Buffer.from('{{ .Values.nope.deeper }}\n') }];
      const err = await helmTemplate({ ...input(), files: broken }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect((err as FlotillaError).reason).to.equal(Reason.InvalidBundle);
      expect((err as Error).message).to.include('templates/broken.yaml');
    });
  });

  describe('kustomizeBuild', () => {
    const input = (dir: string, files = kust) => ({ ...limits, files, dir, kustomizePath: settings.tools.kustomize, label: (p: string) => `kust/${p}` });

    it('builds a base', async () => {
      const text = await kustomizeBuild(input('base'));
      expect(text).to.include('name: kust-config').and.to.include('env: base').and.to.include('app: kust-test');
    });

    it('builds an overlay over the base with a patch and a generator', async () => {
      const text = await kustomizeBuild(input('overlays/prod'));
      expect(text).to.include('name: prod-kust-config').and.to.include('env: prod');
      expect(text).to.include('name: prod-prod-generated').and.to.include('tier: prod');
    });

    it('refuses a remote base before running kustomize', async () => {
      const files = kust.map((f) =>
        f.path === 'base/kustomization.yaml' ? { ...f, content: Buffer.from('resources:\n  - https://github.com/example/repo//base?ref=v1\n') } : f,
      );
      const err = await kustomizeBuild(input('base', files)).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect((err as Error).message)
        .to.include('kust/base/kustomization.yaml')
        .and.to.include('remote base');
    });
  });

  describe('renderContent', () => {
    const cluster = { name: 'c1', namespace: 'fleet-default', labels: { env: 'prod', color: 'red' }, capabilities: CAPS };

    it('renders a chart bundle with cluster-label values into CRDs, hooks and namespaced objects', async () => {
      const out = await renderContent(
        chart,
        {
          bundleName: 'web',
          options: { defaultNamespace: 'apps', helm: { values: { color: 'global.fleet.clusterLabels.color', replicas: '${ .ClusterValues.n | default 2 }' } } },
        },
        { ...cluster, values: { n: 3 }, capabilities: { kubeVersion: 'v1.31.4', apiVersions: [] } },
        settings,
      );
      expect(out.engine).to.equal('helm');
      expect(out.crds.map((o) => o.metadata.name)).to.deep.equal(['widgets.example.flotilla.dev']);
      expect(out.hooks.map((h) => `${h.phase}:${h.object.metadata.name}`)).to.deep.equal(['pre:web-flotilla-test-pre', 'post:web-flotilla-test-post']);
      const cm = out.objects.find((o) => o.metadata.name === 'web-flotilla-test');
      expect(cm?.metadata.namespace).to.equal('apps');
      // The kinds of the chart's crds/ are in .Capabilities.APIVersions on the first install, as with Helm.
      expect((cm as { data?: Record<string, string> } | undefined)?.data).to.include({ color: 'red', replicas: '3', widgets: 'served' });
    });

    it('renders a kustomize bundle from kustomize.dir', async () => {
      const out = await renderContent(kust, { bundleName: 'k', options: { kustomize: { dir: 'overlays/prod' }, namespace: 'kns' } }, cluster, settings);
      expect(out.engine).to.equal('kustomize');
      expect(out.objects.map((o) => `${o.metadata.namespace}/${o.metadata.name}`)).to.have.members(['kns/prod-kust-config', 'kns/prod-prod-generated']);
    });
  });
});

describe('flotilla render with the real helm and kustomize', () => {
  const saved = { helm: process.env.FLOTILLA_HELM, kustomize: process.env.FLOTILLA_KUSTOMIZE };
  before(async () => {
    const bin = await ensureBinaries();
    process.env.FLOTILLA_HELM = bin.helm;
    process.env.FLOTILLA_KUSTOMIZE = bin.kustomize;
  });
  after(() => {
    for (const [k, v] of [
      ['FLOTILLA_HELM', saved.helm],
      ['FLOTILLA_KUSTOMIZE', saved.kustomize],
    ] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  async function run(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    let stdout = '';
    let stderr = '';
    const code = await runRender(argv, { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) } });
    return { code, stdout, stderr };
  }

  type Doc = { kind: string; metadata: { name: string; namespace?: string }; data?: Record<string, string> };
  const ids = (docs: readonly Doc[]) => docs.map((d) => `${d.kind}/${d.metadata.name}`);

  it('prints a chart as the agent applies it: CRDs, pre hooks, objects, post hooks, for the given version', async () => {
    const { code, stdout, stderr } = await run(
      join(TESTDATA, 'helm', 'chart'),
      '--bundle-name',
      'web',
      '--kube-version',
      'v1.30.1',
      '--api-versions',
      'example.flotilla.dev/v1/Widget',
    );
    expect(code, stderr).to.equal(0);
    expect(stderr).to.include('rendered with helm');
    const docs = yaml.loadAll(stdout) as Doc[];
    expect(ids(docs.slice(0, 2))).to.deep.equal(['CustomResourceDefinition/widgets.example.flotilla.dev', 'ConfigMap/web-flotilla-test-pre']);
    expect(ids(docs.slice(2, 5))).to.have.members(['ConfigMap/web-flotilla-test', 'ConfigMap/web-flotilla-test-extra', 'Widget/web-flotilla-test']);
    expect(ids(docs.slice(5))).to.deep.equal(['ConfigMap/web-flotilla-test-post']);
    const cm = docs.find((d) => d.metadata.name === 'web-flotilla-test');
    expect(cm?.metadata.namespace).to.equal('default');
    expect(cm?.data).to.include({ kubeVersion: 'v1.30.1', widgets: 'served', color: 'blue' });
  });

  it('rejects a --kube-version that is not a version, with exit code 2', async () => {
    expect((await run(join(TESTDATA, 'helm', 'chart'), '--kube-version', 'latest')).code).to.equal(2);
  });

  it('exits 1 naming the cause when helm fails, printing nothing', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'render-e2e-'));
    try {
      await cp(join(TESTDATA, 'helm', 'chart'), dir, { recursive: true });
      await writeFile(join(dir, 'fleet.yaml'), 'helm:\n  values:\n    color: purple\n');
      const { code, stderr, stdout } = await run(dir);
      expect(code).to.equal(1);
      expect(stdout).to.equal('');
      expect(stderr, stderr).to.include('color').and.to.include('helm template');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('prints the kustomize build of the per-target dir for a matching cluster', async () => {
    const { code, stdout, stderr } = await run(join(TESTDATA, 'kustomize'), '-l', 'env=prod');
    expect(code, stderr).to.equal(0);
    const docs = yaml.loadAll(stdout) as Doc[];
    expect(docs.map((d) => `${d.metadata.namespace}/${d.metadata.name}`)).to.have.members(['kust-ns/prod-kust-config', 'kust-ns/prod-prod-generated']);
    const dev = await run(join(TESTDATA, 'kustomize'), '-l', 'env=dev');
    expect((yaml.loadAll(dev.stdout) as Doc[]).map((d) => d.metadata.name)).to.deep.equal(['kust-config']);
  });
});
