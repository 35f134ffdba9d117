import { z } from 'zod';
import { parseDurationMs } from '../lib/api/index.js';
import { parseConfig } from '../lib/config.js';
import { DEFAULT_ARTIFACT_LIMITS, parseMirrorList } from '../lib/oci/index.js';
import type { RegistryMirror } from '../lib/api/index.js';
import { CONTENT_LIMIT_CONFIG_SHAPE, DEFAULT_CONTENT_LIMITS, contentLimitsFromConfig, type ContentLimits } from '../lib/bundle/limits.js';
import { DEFAULT_RENDER_LIMITS } from '../lib/render/tools.js';
import { DEFAULT_AGENT_NAMESPACE } from './credentials.js';

/**
 * The agent's configuration: flags (`--name=value` or `--name value`) over environment variables
 * (FLOTILLA_<UPPER_SNAKE>, e.g. FLOTILLA_CACHE_DIR) over defaults, parsed once at start-up with zod.
 */

const durationMs = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((text, ctx) => {
      const ms = parseDurationMs(text);
      if (ms === undefined || ms <= 0) {
        ctx.addIssue({ code: 'custom', message: `not a positive duration: ${text}` });
        return z.NEVER;
      }
      return ms;
    });

/** Configuration schema (flags in kebab case: `resync` is `--resync`, `cacheDir` is `--cache-dir`). */
export const AgentConfigSchema = z.strictObject({
  kubeconfig: z.string().optional().describe('Kubeconfig of the downstream cluster; in-cluster config when unset.'),
  namespace: z
    .string()
    .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/)
    .default(DEFAULT_AGENT_NAMESPACE)
    .describe('Namespace of the agent downstream: bootstrap and state Secrets, inventories.'),
  cacheDir: z.string().default('/var/cache/flotilla-agent').describe('Blob cache folder (content-addressed).'),
  resync: durationMs('30s').describe('Interval of drift and readiness checks of each BundleDeployment.'),
  heartbeat: durationMs('60s').describe(
    "Interval of heartbeats on the Cluster (announced to the controller, which says AgentNotSeen after three missed), of credential checks and of reading the Cluster's registry mirrors.",
  ),
  cachePrune: durationMs('10m').describe('Interval between prunings of the blob cache (blobs of artifacts no BundleDeployment pins).'),
  workers: z.coerce.number().int().min(1).max(64).default(2).describe('Concurrent BundleDeployment reconciles.'),
  renderWorkers: z.coerce
    .number()
    .int()
    .min(1)
    .max(64)
    .default(2)
    .describe(
      'Renders running at once at most, each in a worker isolate of its own (16-20 MiB each). A render beyond the first runs only when the running ones have been running for --render-spill-after; otherwise it waits for one to end. As many as --workers (the default) lets no slow render hold up another reconcile for longer than that; 1 never starts a second isolate.',
    ),
  renderSpillAfter: durationMs('1s').describe(
    'How long every running render must have been running before a waiting render starts another worker isolate (up to --render-workers); quick renders take turns in one isolate.',
  ),
  maxObjects: z.coerce.number().int().min(1).default(DEFAULT_CONTENT_LIMITS.maxObjects).describe('Most objects one bundle may render.'),
  ...CONTENT_LIMIT_CONFIG_SHAPE,
  maxBundleFiles: z.coerce.number().int().min(1).default(DEFAULT_ARTIFACT_LIMITS.maxFiles).describe('Most files (layers) a pulled bundle artifact may have.'),
  maxFileBytes: z.coerce
    .number()
    .int()
    .min(1)
    .default(DEFAULT_ARTIFACT_LIMITS.maxFileBytes)
    .describe('Largest file (layer) of a pulled bundle artifact, in bytes.'),
  maxBundleBytes: z.coerce
    .number()
    .int()
    .min(1)
    .default(DEFAULT_ARTIFACT_LIMITS.maxTotalBytes)
    .describe('Largest sum of the layers of a pulled bundle artifact, in bytes.'),
  helmTimeout: durationMs('60s').describe('Longest one helm template or kustomize build run may take before the deployment fails.'),
  helmMaxOutputBytes: z.coerce
    .number()
    .int()
    .min(1024)
    .default(DEFAULT_RENDER_LIMITS.maxOutputBytes)
    .describe('Most bytes one helm template or kustomize build run may print before it is stopped and the deployment fails.'),
  probePort: z.coerce.number().int().min(0).max(65535).default(8081).describe('Port of /healthz and /readyz (0 picks one).'),
  metricsPort: z.coerce
    .number()
    .int()
    .min(0)
    .max(65535)
    .optional()
    .describe('Port of a separate /metrics server, as the controller has (0 picks one); /metrics is served on the probe port as well.'),
  probeAddress: z.string().default('0.0.0.0').describe('Address the probe and metrics servers listen on.'),
  registryMirrors: z
    .string()
    .optional()
    .describe(
      'Registry mirrors of this cluster, a JSON or YAML list of {registry, mirror, authSecretName?, caBundle?, basicHTTP?, insecureSkipTLS?, originFallback?} (docs/mirrors.md).',
    ),
  registryMirrorsFile: z
    .string()
    .optional()
    .describe('A file holding the registry mirrors list (JSON or YAML), e.g. mounted from a ConfigMap; not with --registry-mirrors.'),
  logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error']).default('info').describe('Log level.'),
});

/** The parsed configuration. */
export type AgentConfig = z.output<typeof AgentConfigSchema>;

/** Parses flags and environment into a config; throws naming every problem. */
export function parseAgentConfig(argv: readonly string[], env: NodeJS.ProcessEnv): AgentConfig {
  return parseConfig(AgentConfigSchema, argv, env, 'agent');
}

/** The limits on parsing and rendering bundle content (lib/bundle/limits.ts), validated. */
export function contentLimitsOf(config: AgentConfig): ContentLimits {
  return contentLimitsFromConfig(config);
}

/**
 * The registry mirrors of the bootstrap configuration: `--registry-mirrors` or the file named by
 * `--registry-mirrors-file` (read with `readFile`), not both. Throws naming the flag or file and each problem.
 */
export async function bootstrapMirrorsOf(config: AgentConfig, readFile: (path: string) => Promise<string>): Promise<RegistryMirror[]> {
  if (config.registryMirrors !== undefined && config.registryMirrorsFile !== undefined) {
    throw new Error('invalid agent configuration: give --registry-mirrors or --registry-mirrors-file, not both');
  }
  if (config.registryMirrors !== undefined) return parseMirrorList(config.registryMirrors, '--registry-mirrors');
  if (config.registryMirrorsFile === undefined) return [];
  const path = config.registryMirrorsFile;
  const text = await readFile(path).catch((err: unknown) => {
    throw new Error(`invalid agent configuration: cannot read --registry-mirrors-file ${path}: ${err instanceof Error ? err.message : String(err)}`);
  });
  return parseMirrorList(text, `--registry-mirrors-file ${path}`);
}
