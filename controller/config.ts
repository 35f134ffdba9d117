import { z } from 'zod';
import { DEFAULT_WORKSPACE_NAMESPACE, parseDurationMs } from '../lib/api/index.js';
import { parseConfig } from '../lib/config.js';
import { DEFAULT_BUNDLE_LIMITS, type BundleLimits } from '../lib/bundle/index.js';
import { SHARD_ID } from './shard.js';
import { CONTENT_LIMIT_CONFIG_SHAPE, DEFAULT_CONTENT_LIMITS, contentLimitsFromConfig, type ContentLimits } from '../lib/bundle/limits.js';

/**
 * The controller's configuration: flags over environment variables over defaults (lib/config.ts),
 * parsed once at start-up with zod.
 */

const durationMs = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((text, ctx) => {
      const ms = parseDurationMs(text);
      if (ms === undefined) {
        ctx.addIssue({ code: 'custom', message: `not a duration: ${text}` });
        return z.NEVER;
      }
      return ms;
    });
const bool = (fallback: boolean) => z.union([z.boolean(), z.enum(['true', 'false']).transform((v) => v === 'true')]).default(fallback);

/** Configuration schema; every field is documented in the README's configuration table. */
export const ControllerConfigSchema = z.strictObject({
  kubeconfig: z.string().optional().describe('Path of a kubeconfig; in-cluster config when unset.'),
  workspaceNamespace: z.string().default(DEFAULT_WORKSPACE_NAMESPACE).describe('Namespace of Clusters and registrations.'),
  registrationNamespace: z.string().default('flotilla-registration').describe('Namespace of per-registration credential Secrets.'),
  systemNamespace: z.string().default('flotilla-system').describe('Namespace of the leader-election Lease.'),
  apiServerUrl: z.string().optional().describe('Upstream API URL handed to agents in registration token Secrets.'),
  apiServerCaFile: z.string().optional().describe('PEM file of the upstream API CA handed to agents.'),
  workDir: z.string().default('/tmp/flotilla-controller').describe('Folder for git checkouts.'),
  defaultPollingInterval: durationMs('15s').describe('Polling interval of GitRepos that set none (Fleet: 15s).'),
  registryHostField: z
    .enum(['host', 'hostFromClusterNetwork', 'hostFromContainerRuntime'])
    .default('host')
    .describe(
      'Which host of the KEP-1755 ConfigMap kube-public/local-registry-hosting a GitRepo without ociRegistry.reference uses: the controller pushes there and agents pull from there.',
    ),
  artifactRetention: z.coerce.number().int().min(1).default(5).describe('Artifact versions kept per bundle repository.'),
  chartCacheMib: z.coerce
    .number()
    .int()
    .min(0)
    .default(32)
    .describe(
      'MiB of remote Helm charts kept between commits while their repository index is unchanged, with the indexes and chart downloads kept for a conditional GET (0: pull and download at every commit).',
    ),
  agentTokenTtl: durationMs('24h').describe('Lifetime of agent credentials issued at registration.'),
  maxBundleBytesInEtcd: z.coerce.number().int().default(1_000_000).describe('Above this, a bundle cannot be stored inline (etcd mode).'),
  maxBundleFiles: z.coerce
    .number()
    .int()
    .min(1)
    .default(DEFAULT_BUNDLE_LIMITS.maxFiles)
    .describe('Most files one bundle directory may hold (BundleTooLarge above).'),
  maxFileBytes: z.coerce
    .number()
    .int()
    .min(1)
    .default(DEFAULT_BUNDLE_LIMITS.maxFileBytes)
    .describe('Largest file of a bundle, in bytes (BundleTooLarge above).'),
  maxBundleBytes: z.coerce
    .number()
    .int()
    .min(1)
    .default(DEFAULT_BUNDLE_LIMITS.maxTotalBytes)
    .describe('Largest sum of the files of one bundle, in bytes (BundleTooLarge above).'),
  maxObjects: z.coerce
    .number()
    .int()
    .min(1)
    .default(DEFAULT_CONTENT_LIMITS.maxObjects)
    .describe('Most objects one bundle may render (ContentLimitExceeded above).'),
  ...CONTENT_LIMIT_CONFIG_SHAPE,
  leaderElection: bool(true).describe('Run only while holding the Lease.'),
  leaseName: z.string().default('flotilla-controller').describe('Name of the leader-election Lease.'),
  identity: z.string().optional().describe('Leader-election identity; default hostname + pid.'),
  leaseDuration: durationMs('15s').describe('How long a Lease holds without renewal before another replica may take it.'),
  renewDeadline: durationMs('10s').describe('How long the leader keeps trying to renew before it steps down (shorter than leaseDuration).'),
  retryPeriod: durationMs('2s').describe('Interval between attempts to acquire or renew the Lease.'),
  probePort: z.coerce.number().int().min(0).default(8081).describe('Port of /healthz and /readyz (0 picks one).'),
  metricsPort: z.coerce.number().int().min(0).default(8080).describe('Port of /metrics (0 picks one).'),
  workers: z.coerce.number().int().min(1).default(4).describe('Concurrent reconciles per kind.'),
  logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error']).default('info').describe('Log level.'),
  shardId: z
    .string()
    .regex(SHARD_ID, 'lower-case letters, digits and "-", at most 40 characters')
    .optional()
    .describe(
      'Reconcile only GitRepos (and their Bundles) labelled flotilla.dev/shard-ref or fleet.cattle.io/shard-ref with this id; unset: the default shard (unlabelled ones) and the cluster-level controllers.',
    ),
  webhookAddress: z.string().optional().describe('host:port of the git webhook receiver (e.g. 0.0.0.0:8082 or :8082); unset: no receiver.'),
  webhookSecretName: z
    .string()
    .default('flotilla-webhook')
    .describe(
      'Secret in the system namespace with webhook secrets for every GitRepo without spec.webhookSecret (keys github, gitlab, gitea, gogs, bitbucket, bitbucket-server).',
    ),
  webhookMaxBodyBytes: z.coerce
    .number()
    .int()
    .min(1024)
    .default(5 * 1024 * 1024)
    .describe('Largest webhook request body, in bytes (413 above).'),
});

/** The parsed configuration. */
export type ControllerConfig = z.output<typeof ControllerConfigSchema>;

/** Parses flags and environment into a config; throws with every problem named. */
export function parseControllerConfig(argv: string[], env: NodeJS.ProcessEnv): ControllerConfig {
  const config = parseConfig(ControllerConfigSchema, argv, env, 'controller');
  if (config.leaderElection && !(config.retryPeriod < config.renewDeadline && config.renewDeadline < config.leaseDuration)) {
    throw new Error(
      `invalid controller configuration: leader election needs --retry-period < --renew-deadline < --lease-duration (got ${config.retryPeriod} ms, ${config.renewDeadline} ms, ${config.leaseDuration} ms)`,
    );
  }
  return config;
}

/** The limits on what the controller reads from a bundle directory of a git checkout. */
export function bundleLimitsOf(config: ControllerConfig): Partial<BundleLimits> {
  return { maxFiles: config.maxBundleFiles, maxFileBytes: config.maxFileBytes, maxTotalBytes: config.maxBundleBytes };
}

/** The limits on parsing and rendering bundle content (lib/bundle/limits.ts), the same the agents use by default. */
export function contentLimitsOf(config: ControllerConfig): ContentLimits {
  return contentLimitsFromConfig(config);
}
