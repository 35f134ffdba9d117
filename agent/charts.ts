import type { Logger } from 'pino';
import { Label, Reason, type BundleDeployment } from '../lib/api/index.js';
import type { BundleFile, RenderedObject } from '../lib/bundle/index.js';
import { TransientError } from '../lib/errors.js';
import type { KubeClient, KubeObject } from '../lib/kube/client.js';
import {
  DEFAULT_RENDER_LIMITS,
  engineOf,
  releaseNamespace,
  renderContent,
  renderToolsFromEnv,
  type Capabilities,
  type RenderSettings,
  type RenderedContent,
} from '../lib/render/index.js';
import type { BundleRenderer } from '../lib/isolate/bundle.js';
import { RefusalMemory, contentKey } from '../lib/isolate/refusals.js';
import type { Applier } from './applier.js';
import { describeId, idKey, prepareObjects, type DesiredObject, type EnsuredNamespace, type PrepareContext } from './objects.js';
import { readinessOf } from './readiness.js';
import { readValuesFrom } from './valuesfrom.js';

/**
 * The agent's side of Helm and Kustomize bundles (lib/render does the rendering, for the agent and for
 * `flotilla render` alike):
 * - {@link CapabilitiesCache}: the downstream cluster's version and served APIs (group/version and
 *   group/version/Kind, Helm's `.Capabilities.APIVersions`), from discovery, cached for a few minutes;
 * - {@link renderEngine}: renders a BundleDeployment's content with helm or kustomize (undefined for plain
 *   YAML, which the reconciler renders as before). Values arrive already templated for this cluster: the
 *   controller expands cluster labels and `${ }` per cluster (as Fleet's controller does), so the agent
 *   passes no labels;
 * - hooks, as Helm runs them on install and upgrade, beside Fleet (which runs `helm upgrade --install`):
 *   pre-install/pre-upgrade hooks are applied after every object of the deployment passed its dry run and
 *   before the rest, post-install/post-upgrade hooks after; Jobs and Pods are waited for until they
 *   complete. `helm.sh/hook-delete-policy`: `before-hook-creation` (the default) deletes the previous hook
 *   object first, `hook-succeeded` deletes it once it succeeded, `hook-failed` once it failed. Hooks run
 *   only when a new deployment is applied, are not in the inventory (Helm does not count hooks as release
 *   resources either) and are not drift-checked. Test hooks are never run (no `helm test`);
 * - CRDs of a chart's `crds/` are applied first (they are CRDs: the apply plan puts them first) and are
 *   kept out of the inventory, so they are never pruned nor deleted with the bundle (Helm's rule).
 */

/** How long a Job or Pod hook may take before the deployment fails. */
const HOOK_TIMEOUT_MS = 5 * 60_000;
const HOOK_POLL_MS = 1000;
const CAPABILITIES_TTL_MS = 5 * 60_000;

/** Discovery of the downstream cluster's capabilities, cached (see the module comment). */
export class CapabilitiesCache {
  private cached: { at: number; value: Promise<Capabilities> } | undefined;

  constructor(private readonly now: () => number = Date.now) {}

  /** The cluster's version and API versions (discovery through `client`). */
  async get(client: KubeClient): Promise<Capabilities> {
    if (!this.cached || this.now() - this.cached.at > CAPABILITIES_TTL_MS) {
      const value = discoverCapabilities(client);
      this.cached = { at: this.now(), value };
      value.catch(() => {
        this.cached = undefined;
      });
    }
    return await this.cached.value;
  }

  /** Forgets what was discovered (after CRDs were installed). */
  reset(): void {
    this.cached = undefined;
  }
}

type ResourceList = { resources: { name: string; kind: string }[] };

async function discoverCapabilities(client: KubeClient): Promise<Capabilities> {
  const version = await client.raw<{ gitVersion: string }>('GET', '/version');
  const core = await client.raw<{ versions: string[] }>('GET', '/api');
  const groups = await client.raw<{ groups: { versions: { groupVersion: string }[] }[] }>('GET', '/apis');
  const groupVersions = [...core.versions, ...groups.groups.flatMap((g) => g.versions.map((v) => v.groupVersion))];
  const apiVersions: string[] = [];
  for (const gv of groupVersions) {
    apiVersions.push(gv);
    const path = gv.includes('/') ? `/apis/${gv}` : `/api/${gv}`;
    const list = await client.raw<ResourceList>('GET', path).catch(() => ({ resources: [] }) as ResourceList);
    for (const r of list.resources) if (!r.name.includes('/')) apiVersions.push(`${gv}/${r.kind}`);
  }
  return { kubeVersion: version.gitVersion.replace(/[-+].*$/, ''), apiVersions: [...new Set(apiVersions)].sort() };
}

/** What the agent needs to render charts and kustomizations. */
export interface EngineRendering {
  capabilities: CapabilitiesCache;
  settings: RenderSettings;
  /** Renders refused over a budget, by everything they read (see {@link renderEngine}); default none kept. */
  refusals?: RefusalMemory;
}

/** Refusals of a render that the same inputs always meet again: over the time, memory, output or content limits. */
const BUDGET_REASONS: ReadonlySet<string> = new Set([Reason.RenderBudgetExceeded, Reason.ContentLimitExceeded, Reason.BundleTooLarge]);

/** A hash of everything a render reads: the files, the options, the cluster and the limits (not the programs' bytes). */
function renderKey(files: readonly BundleFile[], options: unknown, cluster: unknown, settings: RenderSettings): string {
  const { parse: _parse, ...limits } = settings;
  return contentKey(files, [options ?? null, cluster, limits]);
}

/**
 * Rendering with the helm and kustomize on PATH (or FLOTILLA_HELM, FLOTILLA_KUSTOMIZE) and the default time
 * and output limits (or `limits`: the agent's --helm-timeout and --helm-max-output-bytes); with `renderer`, their memory cap is its `renderToolMemoryMb` and their output is parsed
 * in its capped workers (lib/isolate) rather than on the agent's event loop.
 */
export function defaultEngineRendering(renderer?: BundleRenderer, limits: Partial<Pick<RenderSettings, 'timeoutMs' | 'maxOutputBytes'>> = {}): EngineRendering {
  const settings: RenderSettings = { tools: renderToolsFromEnv(), ...DEFAULT_RENDER_LIMITS, ...renderer?.renderSettings(), ...limits };
  return { capabilities: new CapabilitiesCache(), settings, refusals: new RefusalMemory() };
}

/**
 * Renders a Helm or Kustomize BundleDeployment for this cluster; undefined for plain YAML. A render refused
 * over a budget (time, memory, output, content limits: stalling errors the same inputs meet again) is
 * remembered by a hash of its files, options, cluster and limits, so reconciling the BundleDeployment again
 * does not run helm or kustomize again; new content (or options, or limits) is rendered afresh.
 */
export async function renderEngine(
  files: readonly BundleFile[],
  bd: BundleDeployment & KubeObject,
  client: KubeClient,
  rendering: EngineRendering,
): Promise<RenderedContent | undefined> {
  const options = bd.spec.options;
  if (engineOf(files, options).engine === 'yaml') return undefined;
  const cluster = {
    name: bd.metadata.labels?.[Label.Cluster] ?? '',
    namespace: bd.metadata.namespace,
    capabilities: await rendering.capabilities.get(client),
  };
  // helm.valuesFrom is read here, downstream, with the client the bundle is applied with (agent/valuesfrom.ts).
  const valuesFrom = await readValuesFrom(client, options?.helm?.valuesFrom, releaseNamespace(options));
  const render = () => renderContent(files, { bundleName: bd.metadata.name, options, valuesFrom }, cluster, rendering.settings);
  if (!rendering.refusals) return await render();
  const key = renderKey(files, { options, valuesFrom }, cluster, rendering.settings);
  return await rendering.refusals.run(key, render, (err) => BUDGET_REASONS.has(err.reason), bd.metadata.name);
}

/** A hook ready to apply. */
export interface PreparedHook {
  phase: 'pre' | 'post';
  deletePolicy: readonly string[];
  desired: DesiredObject;
}

/** The objects the plan covers (CRDs, then the rest) and the hooks, prepared like every desired object. */
export function prepareRendered(content: RenderedContent, ctx: PrepareContext): { objects: RenderedObject[]; hooks: PreparedHook[]; crdKeys: Set<string> } {
  const hooks = content.hooks.map((h) => ({
    phase: h.phase,
    deletePolicy: h.deletePolicy,
    desired: prepareObjects([h.object], ctx)[0] as DesiredObject,
  }));
  const crdKeys = new Set(prepareObjects(content.crds, ctx).map((d) => idKey(d.id)));
  return { objects: [...content.crds, ...content.objects], hooks, crdKeys };
}

/** Dry-runs every hook whose kind is served (part of "everything is dry-run before anything is applied"). */
export async function dryRunHooks(applier: Applier, hooks: readonly PreparedHook[]): Promise<void> {
  for (const hook of hooks) {
    if (!hook.desired.served) continue;
    const dry = await applier.dryRun(hook.desired.object);
    if (!dry.verified && !/namespace/i.test(dry.why)) {
      throw new TransientError(Reason.ApplyFailed, `hook ${describeId(hook.desired.id)}: dry run failed: ${dry.why}`);
    }
  }
}

function isWaitedFor(obj: KubeObject): boolean {
  return (obj.apiVersion === 'batch/v1' && obj.kind === 'Job') || (obj.apiVersion === 'v1' && obj.kind === 'Pod');
}

/** Waits for a Job or Pod hook to succeed or fail; true when it succeeded. */
async function awaitHook(applier: Applier, hook: PreparedHook, sleep: (ms: number) => Promise<void>): Promise<{ ok: boolean; message: string }> {
  for (let waited = 0; waited < HOOK_TIMEOUT_MS; waited += HOOK_POLL_MS) {
    const live = await applier.get(hook.desired.id);
    if (!live) return { ok: false, message: 'disappeared' };
    const readiness = readinessOf(live);
    if (readiness.state === 'error') return { ok: false, message: readiness.message ?? 'failed' };
    if (readiness.ready) return { ok: true, message: '' };
    await sleep(HOOK_POLL_MS);
  }
  return { ok: false, message: `did not complete within ${HOOK_TIMEOUT_MS / 1000}s` };
}

/** Applies the hooks of one phase in order, honouring their delete policies (see the module comment). */
export async function runHooks(
  applier: Applier,
  hooks: readonly PreparedHook[],
  phase: 'pre' | 'post',
  namespaces: readonly EnsuredNamespace[],
  log: Logger,
  sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
): Promise<number> {
  const due = hooks.filter((h) => h.phase === phase);
  if (due.length > 0) for (const ns of namespaces) await applier.ensureNamespace(ns);
  for (const hook of due) {
    const what = `${phase}-install/upgrade hook ${describeId(hook.desired.id)}`;
    if (hook.deletePolicy.includes('before-hook-creation')) await applier.deleteAndWait(hook.desired.id);
    await applier.apply(hook.desired.object);
    const outcome = isWaitedFor(hook.desired.object) ? await awaitHook(applier, hook, sleep) : { ok: true, message: '' };
    if (outcome.ok ? hook.deletePolicy.includes('hook-succeeded') : hook.deletePolicy.includes('hook-failed')) {
      await applier.delete(hook.desired.id);
    }
    if (!outcome.ok) throw new TransientError(Reason.ApplyFailed, `${what} failed: ${outcome.message}; the objects after it were not applied`);
    log.info({ hook: describeId(hook.desired.id) }, `${phase} hook done`);
  }
  return due.length;
}
