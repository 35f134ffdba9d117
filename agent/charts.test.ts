import { expect } from 'chai';
import pino from 'pino';
import type { KubeObject } from '../lib/kube/client.js';
import type { Applier } from './applier.js';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Reason } from '../lib/api/index.js';
import { StallingError } from '../lib/errors.js';
import { BundleRenderer } from '../lib/isolate/bundle.js';
import { Isolate } from '../lib/isolate/isolate.js';
import { renderContent } from '../lib/render/index.js';
import { readFile } from 'node:fs/promises';
import type { BundleDeployment } from '../lib/api/index.js';
import type { KubeClient } from '../lib/kube/client.js';
import { defaultEngineRendering, renderEngine, runHooks, type PreparedHook } from './charts.js';
import { idKey, idOf, type ObjectId } from './objects.js';

/** An in-memory stand-in for the Applier port: records calls; Jobs complete or fail as told. */
function fakeApplier(jobOutcome: 'Complete' | 'Failed' = 'Complete') {
  const live = new Map<string, KubeObject>();
  const calls: string[] = [];
  const applier = {
    ensureNamespace: async (ns: { name: string }) => {
      calls.push(`ns ${ns.name}`);
    },
    deleteAndWait: async (id: ObjectId) => {
      calls.push(`replace-delete ${id.name}`);
      live.delete(idKey(id));
    },
    delete: async (id: ObjectId) => {
      calls.push(`delete ${id.name}`);
      return live.delete(idKey(id));
    },
    apply: async (obj: KubeObject) => {
      calls.push(`apply ${obj.metadata.name}`);
      const stored = obj.kind === 'Job' ? { ...obj, status: { conditions: [{ type: jobOutcome, status: 'True' }] } } : obj;
      live.set(idKey(idOf(obj)), stored);
      return stored;
    },
    get: async (id: ObjectId) => live.get(idKey(id)),
  };
  return { applier: applier as unknown as Applier, calls, live };
}

function hook(name: string, phase: 'pre' | 'post', deletePolicy: string[], kind = 'ConfigMap'): PreparedHook {
  const object: KubeObject = { apiVersion: kind === 'Job' ? 'batch/v1' : 'v1', kind, metadata: { name, namespace: 'apps' } };
  return { phase, deletePolicy, desired: { object, id: idOf(object), namespaced: true, served: true } };
}

const log = pino({ level: 'silent' });
const noSleep = async () => {};

describe('runHooks', () => {
  it('applies the hooks of one phase in order, ensuring namespaces first and honouring delete policies', async () => {
    const { applier, calls, live } = fakeApplier();
    const hooks = [hook('a', 'pre', ['before-hook-creation']), hook('b', 'pre', ['hook-succeeded'], 'Job'), hook('c', 'post', ['before-hook-creation'])];
    expect(await runHooks(applier, hooks, 'pre', [{ name: 'apps' } as never], log, noSleep)).to.equal(2);
    expect(calls).to.deep.equal(['ns apps', 'replace-delete a', 'apply a', 'apply b', 'delete b']);
    expect([...live.keys()].map((k) => k.split('/').pop())).to.deep.equal(['a']);
  });

  it('fails on a failed Job hook, deleting it under hook-failed', async () => {
    const { applier, calls } = fakeApplier('Failed');
    const err = await runHooks(applier, [hook('migrate', 'post', ['hook-failed'], 'Job')], 'post', [], log, noSleep).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((err as Error).message).to.match(/post-install\/upgrade hook Job apps\/migrate.* failed/);
    expect(calls).to.deep.equal(['apply migrate', 'delete migrate']);
  });

  it('does nothing for a phase without hooks', async () => {
    const { applier, calls } = fakeApplier();
    expect(await runHooks(applier, [hook('a', 'pre', [])], 'post', [{ name: 'apps' } as never], log, noSleep)).to.equal(0);
    expect(calls).to.deep.equal([]);
  });
});

describe('defaultEngineRendering with the bundle renderer', function () {
  this.timeout(60_000);
  let dir: string;
  let isolate: Isolate;
  let renderer: BundleRenderer;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'flotilla-charts-test-'));
    isolate = new Isolate();
    renderer = new BundleRenderer({ isolate, cacheBytes: 0, limits: { maxObjects: 3, renderToolMemoryMb: 300 } });
  });
  after(async () => {
    await isolate.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** A stand-in for the kustomize program (its output is what matters here): prints `count` ConfigMaps. */
  async function printing(count: number): Promise<string> {
    const path = join(dir, `kustomize-${count}`);
    const doc = 'apiVersion: v1\\nkind: ConfigMap\\nmetadata:\\n  name: c%s\\n';
    await writeFile(path, `#!/bin/sh\ni=0\nwhile [ $i -lt ${count} ]; do printf -- '---\\n${doc}' $i; i=$((i+1)); done\n`);
    await chmod(path, 0o755);
    return path;
  }

  async function build(count: number) {
    const { settings } = defaultEngineRendering(renderer);
    const files = [{ path: 'kustomization.yaml', content: Buffer.from('resources: []\n') }];
    const tools = { helm: 'helm', kustomize: await printing(count) };
    const cluster = { name: 'c1', namespace: 'fleet-default', capabilities: { kubeVersion: 'v1.36.0', apiVersions: [] } };
    return await renderContent(files, { bundleName: 'web', options: { defaultNamespace: 'apps' } }, cluster, { ...settings, tools });
  }

  it("caps helm and kustomize at the renderer's renderToolMemoryMb", () => {
    expect(defaultEngineRendering(renderer).settings.maxMemoryBytes).to.equal(300 * 1024 * 1024);
    expect(defaultEngineRendering().settings.maxMemoryBytes).to.equal(1024 * 1024 * 1024);
  });

  it("parses kustomize's output in the renderer's worker, with its limits: 3 objects pass under maxObjects=3", async () => {
    const before = isolate.size;
    const content = await build(3);
    expect(content.objects.map((o) => `${o.metadata.namespace}/${o.metadata.name}`)).to.deep.equal(['apps/c0', 'apps/c1', 'apps/c2']);
    expect(isolate.size, 'a worker of the isolate did the parsing').to.be.greaterThan(before);
  });

  it('refuses a 4th object (ContentLimitExceeded naming the bundle and maxObjects=3), which parsing on the thread would not check', async () => {
    const err = await build(4).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(StallingError);
    expect((err as StallingError).reason).to.equal(Reason.ContentLimitExceeded);
    expect((err as StallingError).message).to.match(/^bundle web: 4 objects rendered, over the limit maxObjects=3/);
  });
});

describe('renderEngine: refusals over a budget are remembered by content', function () {
  this.timeout(60_000);
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'flotilla-charts-test-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** A stand-in for kustomize that appends a line to `runs` each time it runs, then prints `text` and exits with `code`. */
  async function standIn(text: string, code = 0): Promise<{ path: string; runs: () => Promise<number> }> {
    const path = join(dir, `kustomize-${Math.random().toString(36).slice(2)}`);
    const log = `${path}.runs`;
    await writeFile(path, `#!/bin/sh\necho run >> ${log}\nprintf '%s' '${text}'\nexit ${code}\n`);
    await chmod(path, 0o755);
    return { path, runs: async () => (await readFile(log, 'utf8').catch(() => '')).split('\n').filter(Boolean).length };
  }
  /** The discovery calls of CapabilitiesCache, answered in memory. */
  const client = {
    raw: async (_method: string, path: string) =>
      path === '/version' ? { gitVersion: 'v1.36.0' } : path === '/api' ? { versions: ['v1'] } : { groups: [], resources: [] },
  } as unknown as KubeClient;
  const bd = (name: string) =>
    ({
      apiVersion: 'fleet.example/v1',
      kind: 'BundleDeployment',
      metadata: { name, namespace: 'cluster-1' },
      spec: { deploymentID: 'x' },
    }) as never as BundleDeployment & {
      metadata: { name: string; namespace: string };
    };
  const kustomization = (extra: string) => [{ path: 'kustomization.yaml', content: Buffer.from(`resources: []\n# ${extra}\n`) }];
  const outcome = (p: Promise<unknown>) =>
    p.then(
      () => undefined,
      (e: unknown) => e as StallingError,
    );

  it('does not run kustomize again for the same content refused over its output limit; new content runs again', async () => {
    const tool = await standIn(`apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${'c'.repeat(200)}\n`);
    const rendering = defaultEngineRendering();
    rendering.settings = { ...rendering.settings, tools: { helm: 'helm', kustomize: tool.path }, maxOutputBytes: 100 };
    const first = await outcome(renderEngine(kustomization('v1'), bd('web'), client, rendering));
    expect(first?.reason).to.equal(Reason.BundleTooLarge);
    expect(first?.disposition).to.equal('stalling');
    expect(await outcome(renderEngine(kustomization('v1'), bd('web'), client, rendering)), 'the same refusal').to.equal(first);
    expect(await tool.runs(), 'kustomize ran once for the same content').to.equal(1);
    const changed = await outcome(renderEngine(kustomization('v2'), bd('web'), client, rendering));
    expect(changed?.reason).to.equal(Reason.BundleTooLarge);
    expect(changed).to.not.equal(first);
    expect(await tool.runs(), 'changed content is rendered again').to.equal(2);
  });

  it('runs kustomize again after a failure that is not a budget (its exit), which may depend on more than the content', async () => {
    const tool = await standIn('', 1);
    const rendering = defaultEngineRendering();
    rendering.settings = { ...rendering.settings, tools: { helm: 'helm', kustomize: tool.path } };
    expect((await outcome(renderEngine(kustomization('v1'), bd('web'), client, rendering)))?.reason).to.equal(Reason.InvalidBundle);
    expect((await outcome(renderEngine(kustomization('v1'), bd('web'), client, rendering)))?.reason).to.equal(Reason.InvalidBundle);
    expect(await tool.runs()).to.equal(2);
  });
});
