import type { FleetYaml } from '../api/fleetyaml.js';
import { isRemoteChart } from '../api/helm.js';
import type { BundleDeploymentOptions } from '../api/options.js';
import { ENGINE_MARKERS, OVERLAYS_DIR, type BundleFile, invalidBundle, isManifestName, parseDocuments, parseManifest } from './manifest.js';
import { engineOf, kustomizeOverChart } from '../render/index.js';
import { checkKustomization, withHelmOutput } from '../render/kustomize.js';
import { inlineValuesFiles } from '../render/values.js';
import { isPatchFile, renderBundle, renderOptionsFrom } from './render.js';
import { mergeOptions } from './target.js';

/**
 * Whole-bundle validation, run when a bundle is read (controller, `flotilla render`):
 * 1. every manifest parses; base files and overlay additions/replacements are valid objects; every patch
 *    document is a mapping (merge patch) or a list (JSON Patch);
 * 2. every overlay named in fleet.yaml (`yaml.overlays`, `targetCustomizations[].yaml.overlays`) has files;
 * 3. the bundle renders with the fleet.yaml options and with each target customization applied to them,
 *    so that a patch whose target is missing, or two objects with one identity, are found before any
 *    cluster gets the bundle. Helm charts and kustomizations are checked, not rendered (their output
 *    depends on the cluster; the agent renders them): see checkVariant. Files of chart and kustomization
 *    folders are not parsed as manifests (templates are not YAML).
 * Throws StallingError (reason InvalidBundle) naming the file (and line) or the fleet.yaml field.
 */

/** Where the files come from, for messages. */
export interface ValidateContext {
  /** Bundle directory relative to the checkout root (`.` for the root). */
  sourceDir: string;
  /** fleet.yaml path as shown in messages. */
  fleetYamlName: string;
}

function label(ctx: ValidateContext, path: string): string {
  return ctx.sourceDir === '.' ? path : `${ctx.sourceDir}/${path}`;
}

/** The deployment options fleet.yaml sets at its top level (everything but targeting and bundle fields). */
export function fleetYamlOptions(fleetYaml: FleetYaml): BundleDeploymentOptions {
  const {
    name: _name,
    labels: _labels,
    paused: _paused,
    targetCustomizations: _targets,
    dependsOn: _dependsOn,
    overrideTargets: _override,
    images: _images,
    rolloutStrategy: _rollout,
    ...options
  } = fleetYaml;
  return options;
}

function checkManifests(files: readonly BundleFile[], ctx: ValidateContext): void {
  const dirs = engineDirs(files);
  for (const file of files) {
    const name = file.path.slice(file.path.lastIndexOf('/') + 1);
    if (!isManifestName(name) || inEngineDir(file.path, dirs)) continue;
    const shown = label(ctx, file.path);
    if (!file.path.startsWith(`${OVERLAYS_DIR}/`) || !isPatchFile(file.path)) {
      parseManifest(shown, file.content);
      continue;
    }
    for (const { value, line } of parseDocuments(shown, file.content)) {
      if (typeof value !== 'object' || value === null) {
        throw invalidBundle(shown, line, 'a patch must be a mapping (merge patch) or a list (JSON Patch)');
      }
    }
  }
}

function checkOverlaysExist(files: readonly BundleFile[], fleetYaml: FleetYaml, ctx: ValidateContext): void {
  const uses: { field: string; name: string }[] = [];
  (fleetYaml.yaml?.overlays ?? []).forEach((name, i) => {
    uses.push({ field: `yaml.overlays[${i}]`, name });
  });
  (fleetYaml.targetCustomizations ?? []).forEach((target, t) => {
    (target.yaml?.overlays ?? []).forEach((name, i) => {
      uses.push({ field: `targetCustomizations[${t}].yaml.overlays[${i}]`, name });
    });
  });
  for (const { field, name } of uses) {
    const prefix = `${OVERLAYS_DIR}/${name}/`;
    if (name.includes('/') || !files.some((f) => f.path.startsWith(prefix))) {
      throw invalidBundle(ctx.fleetYamlName, undefined, `${field}: overlay "${name}" has no manifests under ${label(ctx, prefix)}`);
    }
  }
}

/** Folders (`''` for the root) holding a Chart.yaml or a kustomization: helm and kustomize read them, not the manifest parser. */
export function engineDirs(files: readonly BundleFile[]): string[] {
  const dirs = new Set<string>();
  for (const f of files) {
    const slash = f.path.lastIndexOf('/');
    if (ENGINE_MARKERS.includes(f.path.slice(slash + 1))) dirs.add(slash < 0 ? '' : f.path.slice(0, slash));
  }
  return [...dirs].sort();
}

/** True if a bundle path lies in one of `dirs` (see {@link engineDirs}). */
export function inEngineDir(path: string, dirs: readonly string[]): boolean {
  return dirs.some((d) => d === '' || path.startsWith(`${d}/`));
}

/**
 * Checks one variant (the fleet.yaml options, or a target customization merged over them) without running
 * helm or kustomize (the agent renders for each cluster): the chart folder holds a Chart.yaml and its values
 * files exist; the kustomization exists and names no remote base or path outside the bundle. A plain YAML
 * variant renders here; one that would read a chart or a kustomization as manifests is refused, unless
 * another variant names an engine (as in Fleet, such a variant only fails on a cluster that gets it).
 */
function checkVariant(files: readonly BundleFile[], options: BundleDeploymentOptions, field: string, ctx: ValidateContext, anyEngine: boolean): void {
  const { engine, dir } = engineOf(files, options);
  const show = (p: string) => label(ctx, p);
  const helmSet = Object.keys(options.helm ?? {}).length > 0;
  if (engine !== 'helm' && helmSet) {
    throw invalidBundle(
      ctx.fleetYamlName,
      undefined,
      engine === 'kustomize'
        ? `${field}helm: the bundle is built by kustomize and names no chart, so these options would be ignored; ` +
            'to build the kustomization over a chart (Helm and Kustomize together), name the chart folder in helm.chart'
        : `${field}helm: the bundle has no chart (no Chart.yaml in its folder, no helm.chart), so these options would be ignored; ` +
            'name the chart folder in helm.chart or remove helm',
    );
  }
  if (engine === 'helm' && isRemoteChart(options.helm)) {
    // Fetched by the controller after reading (controller/charts.ts), which checks the chart then.
    inlineValuesFiles(options.helm ?? {}, files, { field: `${field}helm`, fleetYamlName: ctx.fleetYamlName, label: show });
    return;
  }
  if (engine === 'helm') {
    const chartYaml = dir ? `${dir}/Chart.yaml` : 'Chart.yaml';
    if (!files.some((f) => f.path === chartYaml)) {
      throw invalidBundle(ctx.fleetYamlName, undefined, `${field}helm.chart: ${show(chartYaml)} is not in the bundle; name a chart folder of the bundle`);
    }
    inlineValuesFiles(options.helm ?? {}, files, { field: `${field}helm`, fleetYamlName: ctx.fleetYamlName, label: show });
    // Helm and Kustomize together: the kustomization is checked with helm's output file in place.
    const kdir = kustomizeOverChart(files, options);
    if (kdir !== undefined) checkKustomization(withHelmOutput(files, kdir, '', show), kdir, show);
    return;
  }
  if (engine === 'kustomize') {
    checkKustomization(files, dir, show);
    return;
  }
  const dirs = engineDirs(files);
  if (dirs.length > 0) {
    if (anyEngine) return;
    const marker = files.find((f) => inEngineDir(f.path, dirs) && ENGINE_MARKERS.includes(f.path.slice(f.path.lastIndexOf('/') + 1)));
    throw invalidBundle(
      show(marker?.path ?? dirs[0] ?? '.'),
      undefined,
      `is a Helm chart or a kustomization inside a bundle rendered as plain YAML${field ? ` (${field.slice(0, -1)})` : ''}; ` +
        'name its folder in fleet.yaml helm.chart or kustomize.dir, or give it its own fleet.yaml',
    );
  }
  renderBundle(files, { ...renderOptionsFrom(options), sourceDir: ctx.sourceDir });
}

/** Validates a bundle's files against its fleet.yaml (see the module comment). */
export function validateBundle(files: readonly BundleFile[], fleetYaml: FleetYaml, ctx: ValidateContext): void {
  checkManifests(files, ctx);
  checkOverlaysExist(files, fleetYaml, ctx);
  const base = fleetYamlOptions(fleetYaml);
  const variants = [
    { field: '', options: base },
    ...(fleetYaml.targetCustomizations ?? []).flatMap((t, i) =>
      t.doNotDeploy ? [] : [{ field: `targetCustomizations[${i}].`, options: mergeOptions(base, t) }],
    ),
  ];
  const anyEngine = variants.some((v) => engineOf(files, v.options).engine !== 'yaml');
  for (const { field, options } of variants) checkVariant(files, options, field, ctx, anyEngine);
}
