import type { FleetYaml } from '../api/fleetyaml.js';
import type { BundleDeploymentOptions } from '../api/options.js';
import { OVERLAYS_DIR, type BundleFile, invalidBundle, isManifestName, parseDocuments, parseManifest } from './manifest.js';
import { isPatchFile, renderBundle, renderOptionsFrom } from './render.js';
import { mergeOptions } from './target.js';

/**
 * Whole-bundle validation, run when a bundle is read (controller, `flotilla render`):
 * 1. every manifest parses; base files and overlay additions/replacements are valid objects; every patch
 *    document is a mapping (merge patch) or a list (JSON Patch);
 * 2. every overlay named in fleet.yaml (`yaml.overlays`, `targetCustomizations[].yaml.overlays`) has files;
 * 3. the bundle renders with the fleet.yaml options and with each target customization applied to them,
 *    so that a patch whose target is missing, or two objects with one identity, are found before any
 *    cluster gets the bundle.
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
  const { labels: _labels, paused: _paused, targetCustomizations: _targets, dependsOn: _dependsOn, ...options } = fleetYaml;
  return options;
}

function checkManifests(files: readonly BundleFile[], ctx: ValidateContext): void {
  for (const file of files) {
    const name = file.path.slice(file.path.lastIndexOf('/') + 1);
    if (!isManifestName(name)) continue;
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
  (fleetYaml.yaml?.overlays ?? []).forEach((name, i) => uses.push({ field: `yaml.overlays[${i}]`, name }));
  (fleetYaml.targetCustomizations ?? []).forEach((target, t) => {
    (target.yaml?.overlays ?? []).forEach((name, i) => uses.push({ field: `targetCustomizations[${t}].yaml.overlays[${i}]`, name }));
  });
  for (const { field, name } of uses) {
    const prefix = `${OVERLAYS_DIR}/${name}/`;
    if (name.includes('/') || !files.some((f) => f.path.startsWith(prefix))) {
      throw invalidBundle(ctx.fleetYamlName, undefined,
        `${field}: overlay "${name}" has no manifests under ${label(ctx, prefix)}`);
    }
  }
}

/**
 * Until the agent and `flotilla render` call lib/render (issue 14), fleet.yaml `helm` and `kustomize` options
 * are refused rather than ignored on a plain YAML bundle.
 */
function refuseUnwiredEngines(fleetYaml: FleetYaml, ctx: ValidateContext): void {
  const uses = [
    ...(['helm', 'kustomize'] as const).filter((k) => fleetYaml[k] !== undefined),
    ...(fleetYaml.targetCustomizations ?? []).flatMap((t, i) =>
      (['helm', 'kustomize'] as const).filter((k) => t[k] !== undefined).map((k) => `targetCustomizations[${i}].${k}`)),
  ];
  if (uses.length > 0) {
    throw invalidBundle(ctx.fleetYamlName, undefined,
      `${uses.join(', ')}: Helm and Kustomize bundles are not supported yet by Flotilla (plain YAML and overlays only)`);
  }
}

/** Validates a bundle's files against its fleet.yaml (see the module comment). */
export function validateBundle(files: readonly BundleFile[], fleetYaml: FleetYaml, ctx: ValidateContext): void {
  refuseUnwiredEngines(fleetYaml, ctx);
  checkManifests(files, ctx);
  checkOverlaysExist(files, fleetYaml, ctx);
  const base = fleetYamlOptions(fleetYaml);
  const variants = [base, ...(fleetYaml.targetCustomizations ?? []).filter((t) => !t.doNotDeploy).map((t) => mergeOptions(base, t))];
  for (const options of variants) renderBundle(files, { ...renderOptionsFrom(options), sourceDir: ctx.sourceDir });
}
