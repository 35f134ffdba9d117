import { stat } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import yaml from 'js-yaml';
import { FlotillaError } from '../lib/errors.js';
import type { BundleDeploymentOptions } from '../lib/api/options.js';
import { readBundle } from '../lib/bundle/read.js';
import { renderBundle, renderOptionsFrom } from '../lib/bundle/render.js';
import { type ClusterInfo, customizationFor, mergeOptions } from '../lib/bundle/target.js';
import { fleetYamlOptions } from '../lib/bundle/validate.js';
import type { RenderedObject } from '../lib/bundle/manifest.js';

/**
 * `flotilla render`: prints, as multi-document YAML, what a cluster with the given name, labels and
 * cluster groups would receive from the bundle in a directory (fleet.yaml target customizations and
 * overlays applied), like `fleet test`. Offline: reads only the directory.
 */

/** Where the command writes. */
export interface RenderIO {
  stdout: { write(chunk: string): unknown };
  stderr: { write(chunk: string): unknown };
}

/** Exit codes: scripts can rely on them. */
export const RenderExit = { Ok: 0, BadInput: 1, Usage: 2 } as const;

/** The usage text printed by `--help` and after a usage error. */
export const RENDER_USAGE = `Usage: flotilla render DIR [options]

Prints, as multi-document YAML, the resources a cluster would receive from the bundle in DIR:
fleet.yaml's first matching targetCustomization and its yaml overlays are applied, then the
namespace rules. Works offline; no cluster is needed.

Options:
  -l, --label KEY=VALUE     a label of the cluster (repeatable)
  -g, --cluster-group NAME  a cluster group the cluster belongs to (repeatable)
  -n, --cluster-name NAME   the name of the cluster (default "local")
      --namespace NS        force every namespaced resource into NS (as GitRepo targetNamespace)
  -h, --help                print this help

Exit codes: 0 rendered (or the cluster is excluded by doNotDeploy: nothing is printed),
1 invalid bundle (the message names the file, line and cause), 2 usage error.
`;

/** The parsed command line. */
interface RenderArgs {
  dir: string;
  cluster: ClusterInfo;
  targetNamespace: string | undefined;
}

class UsageError extends Error {}

function parseLabels(values: readonly string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const value of values) {
    const eq = value.indexOf('=');
    if (eq <= 0) throw new UsageError(`--label "${value}": expected KEY=VALUE`);
    labels[value.slice(0, eq)] = value.slice(eq + 1);
  }
  return labels;
}

function parseRenderArgs(argv: readonly string[]): RenderArgs | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: {
        label: { type: 'string', short: 'l', multiple: true },
        'cluster-group': { type: 'string', short: 'g', multiple: true },
        'cluster-name': { type: 'string', short: 'n' },
        namespace: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
  const { values, positionals } = parsed;
  if (values.help) return 'help';
  if (positionals.length !== 1) {
    throw new UsageError(positionals.length === 0 ? 'missing DIR' : `expected one DIR, got ${positionals.length}`);
  }
  return {
    dir: positionals[0] as string,
    cluster: {
      name: values['cluster-name'] ?? 'local',
      labels: parseLabels(values.label ?? []),
      groups: (values['cluster-group'] ?? []).map((name) => ({ name, labels: {} })),
    },
    targetNamespace: values.namespace,
  };
}

/** Formats objects as multi-document YAML, each document starting with `---`. */
export function toMultiDocumentYaml(objects: readonly RenderedObject[]): string {
  return objects.map((o) => `---\n${yaml.dump(o, { noRefs: true, lineWidth: -1 })}`).join('');
}

/** Reads, customizes and renders the bundle; returns the YAML and a one-line note for stderr. */
async function render(args: RenderArgs): Promise<{ yaml: string; note: string }> {
  const dir = resolve(args.dir);
  const st = await stat(dir).catch(() => undefined);
  if (!st?.isDirectory()) throw new Error(`${args.dir}: not a directory`);
  const bundle = await readBundle(dir, { name: basename(dir), dir: '.' });
  const targets = bundle.fleetYaml.targetCustomizations ?? [];
  const customization = customizationFor(targets, args.cluster);
  const label = customization ? `targetCustomizations[${targets.indexOf(customization)}]` : '';
  const named = customization?.name ? ` "${customization.name}"` : '';
  if (customization?.doNotDeploy) {
    return { yaml: '', note: `cluster excluded by ${label}${named} (doNotDeploy): nothing is deployed\n` };
  }
  const options: BundleDeploymentOptions = mergeOptions(fleetYamlOptions(bundle.fleetYaml), customization);
  if (args.targetNamespace) options.targetNamespace = args.targetNamespace;
  const objects = renderBundle(bundle.files, renderOptionsFrom(options));
  const overlays = options.yaml?.overlays ?? [];
  const note = customization
    ? `using ${label}${named}; overlays: ${overlays.length > 0 ? overlays.join(', ') : 'none'}\n`
    : 'no target customization matches; base options\n';
  return { yaml: toMultiDocumentYaml(objects), note };
}

/**
 * Runs `flotilla render` with the arguments after `render`. Returns the exit code: 0 rendered (also when
 * the cluster is excluded), 1 invalid bundle or unreadable input, 2 usage error; `--help` prints the
 * usage and returns 0.
 */
export async function runRender(argv: string[], io: RenderIO): Promise<number> {
  try {
    const args = parseRenderArgs(argv);
    if (args === 'help') {
      io.stdout.write(RENDER_USAGE);
      return RenderExit.Ok;
    }
    const { yaml: text, note } = await render(args);
    io.stderr.write(note);
    io.stdout.write(text);
    return RenderExit.Ok;
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr.write(`flotilla render: ${err.message}\n\n${RENDER_USAGE}`);
      return RenderExit.Usage;
    }
    if (err instanceof FlotillaError) {
      io.stderr.write(`flotilla render: ${err.message}\n`);
      return RenderExit.BadInput;
    }
    io.stderr.write(`flotilla render: ${err instanceof Error ? err.message : String(err)}\n`);
    return RenderExit.BadInput;
  }
}
