/**
 * Registry mirrors of a cluster: "registry X is reached as Y from this cluster", modelled on containerd's
 * hosts.toml (`server` is the origin registry, each `[host."..."]` a mirror with its own `ca`,
 * `skip_verify` and credentials). The same entry is written in the agent's bootstrap configuration
 * (`--registry-mirrors`) and in `Cluster.spec.registryMirrors`; the agent reports the entries in effect,
 * without credentials, on `Cluster.status.agent.registryMirrors`. See docs/mirrors.md.
 */
import { z } from 'zod';
import { objectName } from './meta.js';
import { caBundle } from './options.js';
import { lazySchema } from './lazy.js';

/** Where a mirror entry in effect came from. */
export const MirrorSource = { Bootstrap: 'bootstrap', Cluster: 'cluster' } as const;
/** `bootstrap` (the agent's configuration) or `cluster` (`Cluster.spec.registryMirrors`). */
export type MirrorSource = (typeof MirrorSource)[keyof typeof MirrorSource];

/** One registry mirror, as configured. */
export const RegistryMirrorSchema = lazySchema(() =>
  z
    .strictObject({
      registry: z.string().min(1).max(255).describe('The origin registry as written in references, host[:port] (e.g. registry.example.com:5000, docker.io).'),
      mirror: z
        .string()
        .min(1)
        .max(2048)
        .describe(
          'Where the origin is reached from this cluster: host[:port][/path] or an https:// or http:// URL; a path is a repository prefix on the mirror.',
        ),
      authSecretName: objectName(
        'Secret with the credentials for the mirror (username/password or .dockerconfigjson): in the agent namespace downstream for a bootstrap entry, in the cluster namespace upstream for a Cluster entry. Without it the mirror is used anonymously; the origin credentials never go to a mirror.',
      ).optional(),
      caBundle: caBundle('Base64 PEM CA bundle used to verify the mirror certificate.').optional(),
      basicHTTP: z.boolean().optional().describe('Reach the mirror over plain HTTP (an http:// mirror URL implies it).'),
      insecureSkipTLS: z.boolean().optional().describe('Do not verify the mirror TLS certificate (test mirrors only).'),
      originFallback: z
        .boolean()
        .optional()
        .describe(
          'Pull from the origin registry when the mirror cannot be reached (default true, as containerd does). Never on a mirror that serves wrong bytes or refuses.',
        ),
    })
    .describe('A registry mirror: pulls for the registry go to the mirror; digests are verified as always.'),
);

/** One registry mirror, as configured. */
export type RegistryMirror = z.infer<typeof RegistryMirrorSchema>;

/** The mirrors of a cluster: at most 32, each registry at most once per source. */
export const RegistryMirrorListSchema = lazySchema(() => z.array(RegistryMirrorSchema).max(32));

/** A mirror in effect, as the agent reports it on the Cluster's status (no credentials, only the Secret's name). */
export const RegistryMirrorStatusSchema = lazySchema(() =>
  z
    .strictObject({
      registry: z.string().describe('The origin registry, host[:port].'),
      mirror: z.string().describe('The mirror endpoint in use, scheme://host[:port][/path].'),
      source: z.enum([MirrorSource.Bootstrap, MirrorSource.Cluster]).describe('Where the entry came from: the agent bootstrap configuration or Cluster.spec.'),
      authSecretName: z.string().optional().describe('Name of the Secret with the mirror credentials (never its content).'),
      caBundle: z.boolean().optional().describe('A CA bundle is set for the mirror.'),
      insecureSkipTLS: z.boolean().optional().describe('The mirror certificate is not verified.'),
      originFallback: z.boolean().optional().describe('Pulls fall back to the origin when the mirror is unreachable.'),
      error: z.string().max(1024).optional().describe('Why this entry is not in effect (invalid), if it is not.'),
    })
    .describe('A registry mirror in effect on the cluster.'),
);

/** A mirror as reported on the Cluster's status. */
export type RegistryMirrorStatus = z.infer<typeof RegistryMirrorStatusSchema>;
