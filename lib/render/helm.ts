import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { HelmOptions } from '../api/helm.js';
import { type BundleFile, parseYamlDocuments } from '../bundle/manifest.js';
import { Reason } from '../api/constants.js';
import { runBounded } from './exec.js';
import type { Values } from './values.js';
import { withBundleCopy } from './workdir.js';

/**
 * Rendering a chart of the bundle with the real `helm template` (Helm v4, the engine Fleet uses), and
 * sorting its output as Flotilla applies it:
 * - the chart's `crds/` (and its subcharts'): applied first, never pruned (Helm's and Fleet's rule);
 * - hooks (`helm.sh/hook`): pre-install/pre-upgrade and post-install/post-upgrade, ordered by
 *   `helm.sh/hook-weight` then name; test hooks and delete/rollback hooks are dropped (Flotilla never runs
 *   `helm test`, and removal is pruning, not an uninstall);
 * - everything else: the resources.
 * `.Capabilities` come from the downstream cluster (`--kube-version`, `--api-versions`); `lookup` returns
 * nothing (helm template never contacts a cluster), as under `helm template` and Fleet's dry runs.
 */

/** One YAML document of helm's output and the chart file it came from (`# Source:`). */
export interface HelmDocument {
  source: string;
  text: string;
}

/** A hook document and when it runs. */
export interface HelmHook extends HelmDocument {
  phase: 'pre' | 'post';
  weight: number;
  /** helm.sh/hook-delete-policy, split (default before-hook-creation). */
  deletePolicy: string[];
}

/** helm's output, sorted. */
export interface HelmOutput {
  crds: HelmDocument[];
  resources: HelmDocument[];
  hooks: HelmHook[];
}

/** The cluster's capabilities as Helm sees them. */
export interface Capabilities {
  /** e.g. `v1.36.3`. */
  kubeVersion: string;
  /** Served group/versions and group/version/Kind, e.g. `apps/v1`, `monitoring.coreos.com/v1/ServiceMonitor`. */
  apiVersions: readonly string[];
}

/** Everything `helm template` needs. */
export interface HelmRenderInput {
  files: readonly BundleFile[];
  /** The chart folder inside the bundle (`.` for the bundle root). */
  chart: string;
  releaseName: string;
  namespace: string;
  values: Values;
  helm: HelmOptions;
  capabilities: Capabilities;
  helmPath: string;
  timeoutMs: number;
  maxOutputBytes: number;
  /** Memory cap of the helm process (RLIMIT_DATA); unset: none. */
  maxMemoryBytes?: number | undefined;
  /** Names the bundle in errors, e.g. `bundle apps-web`. */
  what: string;
}

const HOOK_PHASES: Readonly<Record<string, 'pre' | 'post'>> = {
  'pre-install': 'pre',
  'pre-upgrade': 'pre',
  'post-install': 'post',
  'post-upgrade': 'post',
};

/** Runs `helm template` on a copy of the bundle and sorts its output (see the module comment). */
export async function helmTemplate(input: HelmRenderInput): Promise<HelmOutput> {
  return withBundleCopy(input.files, async (root) => {
    const valuesFile = join(root, '..', 'values.json');
    await writeFile(valuesFile, JSON.stringify(input.values));
    const args = [
      'template',
      input.releaseName,
      join(root, input.chart),
      '--namespace',
      input.namespace,
      '--kube-version',
      input.capabilities.kubeVersion,
      '--include-crds',
      '-f',
      valuesFile,
      ...input.capabilities.apiVersions.flatMap((v) => ['--api-versions', v]),
      ...(input.helm.skipSchemaValidation ? ['--skip-schema-validation'] : []),
      ...(input.helm.disableDNS ? [] : ['--enable-dns']),
    ];
    const { stdout } = await runBounded({
      purpose: `helm template of chart ${input.chart} (${input.what})`,
      file: input.helmPath,
      args,
      timeoutMs: input.timeoutMs,
      maxOutputBytes: input.maxOutputBytes,
      maxMemoryBytes: input.maxMemoryBytes,
      exitReason: Reason.InvalidBundle,
    });
    return sortHelmOutput(stdout.toString('utf8'));
  });
}

/** Splits helm's output into documents with their `# Source:` file. */
export function splitHelmOutput(text: string): HelmDocument[] {
  const docs: HelmDocument[] = [];
  for (const chunk of text.split(/^---[ \t]*$/m)) {
    const source = /^# Source: (.+)$/m.exec(chunk)?.[1]?.trim();
    if (!chunk.replace(/^#.*$/gm, '').trim()) continue;
    docs.push({ source: source ?? 'helm output', text: chunk.replace(/^\n+/, '') });
  }
  return docs;
}

/** The annotations of a document (parsed with the manifest parser; errors are reported when it is rendered). */
function annotationsOf(doc: HelmDocument): Record<string, unknown> {
  let values: { value: unknown }[];
  try {
    values = parseYamlDocuments(doc.source, doc.text);
  } catch {
    return {};
  }
  const value = values[0]?.value as { metadata?: { annotations?: unknown } } | undefined;
  const annotations = value?.metadata?.annotations;
  return typeof annotations === 'object' && annotations !== null ? (annotations as Record<string, unknown>) : {};
}

/** Sorts documents into CRDs, resources and install/upgrade hooks (see the module comment). */
export function sortHelmOutput(text: string): HelmOutput {
  const out: HelmOutput = { crds: [], resources: [], hooks: [] };
  for (const doc of splitHelmOutput(text)) {
    if (/^[^/]+(\/charts\/[^/]+)*\/crds\//.test(doc.source)) {
      out.crds.push(doc);
      continue;
    }
    const annotations = annotationsOf(doc);
    const hook = annotations['helm.sh/hook'];
    if (typeof hook !== 'string') {
      out.resources.push(doc);
      continue;
    }
    const phases = hook
      .split(',')
      .map((h) => HOOK_PHASES[h.trim()])
      .filter((p) => p !== undefined);
    if (phases.length === 0) continue; // test, delete and rollback hooks
    const weight = Number(annotations['helm.sh/hook-weight'] ?? '0');
    const policy = annotations['helm.sh/hook-delete-policy'];
    out.hooks.push({
      ...doc,
      phase: phases[0] as 'pre' | 'post',
      weight: Number.isFinite(weight) ? weight : 0,
      deletePolicy: typeof policy === 'string' && policy ? policy.split(',').map((p) => p.trim()) : ['before-hook-creation'],
    });
  }
  out.hooks.sort((a, b) => a.weight - b.weight || (a.source < b.source ? -1 : a.source > b.source ? 1 : 0));
  return out;
}
