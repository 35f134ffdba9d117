/**
 * fleet.yaml: the optional per-bundle-directory file that says how the bundle is deployed.
 *
 * Flotilla supports the subset of Fleet's fleet.yaml listed in {@link FleetYamlSchema}, with Fleet's
 * semantics (`helm` and `kustomize`: see lib/api/helm.ts). Fleet features Flotilla does not implement
 * (imageScans, ...) are rejected by name with the reason instead of being silently ignored, and unknown keys are rejected with
 * their path: a typo must not deploy something else than the user meant.
 */
import yaml from 'js-yaml';
import { z } from 'zod';
import { StallingError } from '../errors.js';
import { Reason } from './constants.js';
import { stringMap } from './meta.js';
import { BundleRefSchema, BundleTargetSchema, bundleDeploymentOptionsShape, TargetRestrictionSchema } from './options.js';
import { UNSUPPORTED_HELM_FIELDS, dropNoOpHelmFields } from './helm.js';
import { FleetYamlImagesSchema } from './images.js';
import { RolloutStrategySchema, checkRolloutStrategy } from './rollout.js';
import { formatIssues, type UnsupportedFields } from './validate.js';
import { lazySchema } from './lazy.js';

/** The largest fleet.yaml accepted, in bytes. */
export const FLEET_YAML_MAX_BYTES = 1 << 20;

/** The most YAML nodes (after expanding aliases) a fleet.yaml may have: protects against alias bombs. */
export const FLEET_YAML_MAX_NODES = 100_000;

/** The schema of fleet.yaml (the subset Flotilla supports). */
export const FleetYamlSchema = lazySchema(() =>
  z
    .strictObject({
      name: z
        .string()
        .max(53)
        .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be a lowercase DNS-1123 label of at most 53 characters')
        .optional()
        .describe('Name of the Bundle (default: the GitRepo name and the bundle path, joined by "-").'),
      labels: stringMap('Labels added to the Bundle; dependsOn selectors of other bundles match them.').optional(),
      paused: z.boolean().optional().describe('Do not roll out new versions of this bundle.'),
      ...bundleDeploymentOptionsShape,
      targetCustomizations: z.array(BundleTargetSchema).optional().describe('Per-cluster customizations; for each cluster, the first matching entry applies.'),
      dependsOn: z.array(BundleRefSchema).optional().describe('Bundles that must be ready on a cluster before this one is deployed there.'),
      images: FleetYamlImagesSchema.optional(),
      overrideTargets: z.array(TargetRestrictionSchema).optional().describe("Targets that replace the GitRepo's spec.targets for this bundle."),
      rolloutStrategy: RolloutStrategySchema.optional(),
    })
    .describe('fleet.yaml: how the bundle in this directory is deployed.'),
);

/** A parsed fleet.yaml. */
export type FleetYaml = z.infer<typeof FleetYamlSchema>;

/** Fleet fleet.yaml features Flotilla recognizes but does not implement. */
export const UNSUPPORTED_FLEET_YAML_FIELDS: UnsupportedFields = {
  ...UNSUPPORTED_HELM_FIELDS,
  imageScans: 'Fleet "imageScans" is deprecated in Fleet (image scanning is being removed) and Flotilla does not implement it; remove it',
};

/**
 * Parses and validates fleet.yaml text. An empty file is an empty fleet.yaml.
 * Throws StallingError (reason InvalidBundle) naming `fileName`, the field path and, for YAML syntax
 * errors, the line and column.
 */
export function parseFleetYaml(text: string, fileName: string): FleetYaml {
  if (Buffer.byteLength(text, 'utf8') > FLEET_YAML_MAX_BYTES) {
    throw invalid(`${fileName}: larger than ${FLEET_YAML_MAX_BYTES} bytes`);
  }
  let doc: unknown;
  try {
    doc = yaml.load(text, { filename: fileName });
  } catch (err: unknown) {
    throw invalid(yamlErrorMessage(err, fileName), err);
  }
  if (doc === undefined || doc === null) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw invalid(`${fileName}: must be a mapping of fields (got ${Array.isArray(doc) ? 'a list' : typeof doc})`);
  }
  if (!withinNodeBudget(doc, FLEET_YAML_MAX_NODES)) {
    throw invalid(`${fileName}: more than ${FLEET_YAML_MAX_NODES} YAML nodes (after expanding aliases)`);
  }
  dropNoOpHelmFields(doc as Record<string, unknown>);
  const result = FleetYamlSchema.safeParse(doc);
  if (!result.success) {
    const problems = formatIssues(result.error, [], UNSUPPORTED_FLEET_YAML_FIELDS);
    throw invalid(`${fileName}: ${problems.join('; ')}`, result.error);
  }
  checkRolloutStrategy(result.data.rolloutStrategy, 'rolloutStrategy', fileName);
  return result.data;
}

function invalid(message: string, cause?: unknown): StallingError {
  return new StallingError(Reason.InvalidBundle, message, cause === undefined ? {} : { cause });
}

function yamlErrorMessage(err: unknown, fileName: string): string {
  if (err instanceof yaml.YAMLException) {
    const mark = err.mark as { line?: number; column?: number } | undefined;
    const where = mark?.line === undefined ? '' : ` at line ${mark.line + 1}, column ${(mark.column ?? 0) + 1}`;
    return `${fileName}: invalid YAML${where}: ${err.reason}`;
  }
  return `${fileName}: invalid YAML: ${err instanceof Error ? err.message : String(err)}`;
}

/** Counts nodes depth-first (aliases counted every time they appear) and stops once over `budget`. */
function withinNodeBudget(root: unknown, budget: number): boolean {
  let remaining = budget;
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const node = stack.pop();
    if (--remaining < 0) return false;
    if (node !== null && typeof node === 'object') {
      for (const child of Object.values(node)) stack.push(child);
    }
  }
  return true;
}
