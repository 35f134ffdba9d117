import { posix } from 'node:path';
import yaml from 'js-yaml';
import { Reason } from '../api/constants.js';
import { type BundleFile, invalidBundle, parseYamlDocuments } from '../bundle/manifest.js';
import { runBounded } from './exec.js';
import { withBundleCopy } from './workdir.js';

/**
 * Kustomize bundles, built with the real `kustomize build` on a private copy of the bundle's files.
 *
 * Before running it, every kustomization reachable from the built folder is checked: each path it names
 * (resources, bases, components, patches, generators' files and envs, crds, ...) must be a file or folder of
 * the bundle. A URL or a git reference (a remote base) and a path that leaves the bundle are refused with
 * the kustomization file, the field and the entry: the agent never fetches anything, and kustomize never
 * reads outside the copy. Helm charts inside kustomize (`helmCharts`) and plugins are refused by kustomize
 * itself (neither `--enable-helm` nor `--enable-alpha-plugins` is passed).
 */

/** Names kustomize reads a kustomization from, in its order. */
export const KUSTOMIZATION_NAMES: readonly string[] = ['kustomization.yaml', 'kustomization.yml', 'Kustomization'];

/** Fields whose entries are paths (strings) or objects with a `path`. */
const PATH_LISTS = ['resources', 'bases', 'components', 'crds', 'patchesStrategicMerge', 'configurations', 'generators', 'transformers', 'validators'];
const OBJECT_PATH_LISTS = ['patches', 'patchesJson6902', 'replacements'];
const GENERATORS = ['configMapGenerator', 'secretGenerator'];
const REMOTE = /^[a-z][a-z0-9+.-]*:\/\/|^git@|^github\.com\/|^gitlab\.com\/|^bitbucket\.org\/|\?ref=|\/\//i;

/** The kustomization file of a folder of the bundle (`''` for the root), if any. */
export function kustomizationIn(files: readonly BundleFile[], dir: string): BundleFile | undefined {
  for (const name of KUSTOMIZATION_NAMES) {
    const file = files.find((f) => f.path === (dir ? `${dir}/${name}` : name));
    if (file) return file;
  }
  return undefined;
}

/** Every path a kustomization names, with the field it came from. */
function namedPaths(doc: Record<string, unknown>): { field: string; entry: string }[] {
  const out: { field: string; entry: string }[] = [];
  const add = (field: string, v: unknown) => {
    if (typeof v === 'string') out.push({ field, entry: v });
  };
  for (const field of PATH_LISTS) for (const v of Array.isArray(doc[field]) ? doc[field] : []) add(field, v);
  for (const field of OBJECT_PATH_LISTS) {
    for (const v of Array.isArray(doc[field]) ? doc[field] : []) add(field, (v as { path?: unknown } | null)?.path);
  }
  for (const field of GENERATORS) {
    for (const gen of Array.isArray(doc[field]) ? doc[field] : []) {
      const g = (gen ?? {}) as { files?: unknown; envs?: unknown; env?: unknown };
      for (const f of Array.isArray(g.files) ? g.files : []) add(`${field}.files`, typeof f === 'string' ? f.slice(f.indexOf('=') + 1) : f);
      for (const e of Array.isArray(g.envs) ? g.envs : []) add(`${field}.envs`, e);
      add(`${field}.env`, g.env);
    }
  }
  return out;
}

/**
 * Checks the kustomization in `dir` and every kustomization folder it reaches (see the module comment).
 * `label` turns a bundle path into the path shown in errors.
 */
export function checkKustomization(files: readonly BundleFile[], dir: string, label: (p: string) => string, seen = new Set<string>()): void {
  if (seen.has(dir)) return;
  seen.add(dir);
  const file = kustomizationIn(files, dir);
  if (!file) throw invalidBundle(label(dir || '.'), undefined, `has no ${KUSTOMIZATION_NAMES.join(', ')} to build`);
  const doc = parseYamlDocuments(label(file.path), file.content.toString('utf8'))[0]?.value;
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw invalidBundle(label(file.path), undefined, 'must be a mapping');
  for (const { field, entry } of namedPaths(doc as Record<string, unknown>)) {
    const refuse = (cause: string) => invalidBundle(label(file.path), undefined, `${field}: "${entry}" ${cause}`);
    if (REMOTE.test(entry)) throw refuse('is a remote base; Flotilla builds only what is in the bundle: copy it into the repository');
    const target = posix.normalize(posix.join(dir, entry)).replace(/\/$/, '');
    if (target === '..' || target.startsWith('../') || posix.isAbsolute(entry)) throw refuse('is outside the bundle');
    const isFile = files.some((f) => f.path === target);
    const isDir = target === '.' || files.some((f) => f.path.startsWith(`${target}/`));
    if (!isFile && !isDir) throw refuse('is not in the bundle (remote bases are refused)');
    if (isDir && !isFile) checkKustomization(files, target === '.' ? '' : target, label, seen);
  }
}

/** Limits and program of a kustomize run. */
export interface KustomizeRunInput {
  files: readonly BundleFile[];
  /** The folder to build (`''` for the bundle root). */
  dir: string;
  kustomizePath: string;
  timeoutMs: number;
  maxOutputBytes: number;
  /** Memory cap of the kustomize process (RLIMIT_DATA); unset: none. */
  maxMemoryBytes?: number | undefined;
  what: string;
  label: (p: string) => string;
}

/** Checks and builds a kustomization of the bundle; returns kustomize's YAML output. */
export async function kustomizeBuild(input: KustomizeRunInput): Promise<string> {
  checkKustomization(input.files, input.dir, input.label);
  return withBundleCopy(input.files, async (root) => {
    const { stdout } = await runBounded({
      purpose: `kustomize build of ${input.label(input.dir || '.')} (${input.what})`,
      file: input.kustomizePath,
      args: ['build', input.dir ? posix.join(root, input.dir) : root, '--load-restrictor', 'LoadRestrictionsRootOnly'],
      timeoutMs: input.timeoutMs,
      maxOutputBytes: input.maxOutputBytes,
      maxMemoryBytes: input.maxMemoryBytes,
      exitReason: Reason.InvalidBundle,
    });
    return stdout.toString('utf8');
  });
}

/** The file helm's output is written to in the kustomize folder when kustomize runs over a chart (Fleet's name). */
export const HELM_OUTPUT_FILE = 'fleet-manifests.yaml';

/**
 * Helm and Kustomize together, as Fleet does it: the bundle's files with helm's output added as
 * {@link HELM_OUTPUT_FILE} in `dir`, and the kustomization of `dir` listing that file first in `resources`
 * (unless it lists it already), so that `kustomize build` of `dir` transforms the chart's objects.
 * `label` names files in errors.
 */
export function withHelmOutput(files: readonly BundleFile[], dir: string, helmYaml: string, label: (p: string) => string): BundleFile[] {
  const kustomization = kustomizationIn(files, dir);
  if (!kustomization) throw invalidBundle(label(dir || '.'), undefined, `has no ${KUSTOMIZATION_NAMES.join(', ')} to build over the chart's output`);
  const doc = parseYamlDocuments(label(kustomization.path), kustomization.content.toString('utf8'))[0]?.value ?? {};
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw invalidBundle(label(kustomization.path), undefined, 'must be a mapping');
  const fields = doc as Record<string, unknown>;
  const resources = Array.isArray(fields.resources) ? fields.resources : [];
  const rewritten = resources.includes(HELM_OUTPUT_FILE) ? fields : { ...fields, resources: [HELM_OUTPUT_FILE, ...resources] };
  const output = dir ? `${dir}/${HELM_OUTPUT_FILE}` : HELM_OUTPUT_FILE;
  return [
    ...files.filter((f) => f.path !== output && f.path !== kustomization.path),
    { path: kustomization.path, content: Buffer.from(yaml.dump(rewritten, { noRefs: true })) },
    { path: output, content: Buffer.from(helmYaml) },
  ];
}
