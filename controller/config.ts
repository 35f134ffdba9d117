import { z } from 'zod';
import { DEFAULT_WORKSPACE_NAMESPACE, parseDurationMs } from '../lib/api/index.js';

/**
 * The controller's configuration: flags (`--name=value` or `--name value`) over environment variables
 * (FLOTILLA_NAME in upper snake case) over defaults, parsed once at start-up with zod.
 */

const durationMs = (fallback: string) => z.string().default(fallback).transform((text, ctx) => {
  const ms = parseDurationMs(text);
  if (ms === undefined) { ctx.addIssue({ code: 'custom', message: `not a duration: ${text}` }); return z.NEVER; }
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
  artifactRetention: z.coerce.number().int().min(1).default(5).describe('Artifact versions kept per bundle repository.'),
  agentTokenTtl: durationMs('24h').describe('Lifetime of agent credentials issued at registration.'),
  maxBundleBytesInEtcd: z.coerce.number().int().default(1_000_000).describe('Above this, a bundle cannot be stored inline (etcd mode).'),
  leaderElection: bool(true).describe('Run only while holding the Lease.'),
  leaseName: z.string().default('flotilla-controller').describe('Name of the leader-election Lease.'),
  identity: z.string().optional().describe('Leader-election identity; default hostname + pid.'),
  probePort: z.coerce.number().int().min(0).default(8081).describe('Port of /healthz and /readyz (0 picks one).'),
  metricsPort: z.coerce.number().int().min(0).default(8080).describe('Port of /metrics (0 picks one).'),
  workers: z.coerce.number().int().min(1).default(4).describe('Concurrent reconciles per kind.'),
  logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error']).default('info').describe('Log level.'),
});

/** The parsed configuration. */
export type ControllerConfig = z.output<typeof ControllerConfigSchema>;

function camel(flag: string): string {
  return flag.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
}
function envName(key: string): string {
  return `FLOTILLA_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
}

/** Parses flags and environment into a config; throws with every problem named. */
export function parseControllerConfig(argv: string[], env: NodeJS.ProcessEnv): ControllerConfig {
  const raw: Record<string, unknown> = {};
  for (const key of Object.keys(ControllerConfigSchema.shape)) {
    const value = env[envName(key)];
    if (value !== undefined) raw[key] = value;
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (!arg.startsWith('--')) throw new Error(`unexpected argument ${arg}`);
    const eq = arg.indexOf('=');
    const name = camel(arg.slice(2, eq < 0 ? undefined : eq));
    raw[name] = eq < 0 ? argv[++i] : arg.slice(eq + 1);
  }
  const parsed = ControllerConfigSchema.safeParse(raw);
  if (!parsed.success) {
    throw new Error(`invalid controller configuration: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  }
  return parsed.data;
}
