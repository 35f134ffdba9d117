import type { Logger } from 'pino';
import { Reason, type RegistryMirror, type RegistryMirrorStatus } from '../lib/api/index.js';
import { TransientError, WaitingError, messageOf, reasonOf } from '../lib/errors.js';
import type { KubeClient, KubeObject } from '../lib/kube/client.js';
import {
  ArtifactError,
  RegistryUnavailableError,
  buildMirrorMap,
  credentialsFromSecretData,
  fallsBackToOrigin,
  formatReference,
  mirrorClientOptions,
  mirrorStatus,
  type Credentials,
  type MirrorMap,
  type MirrorRoute,
  type RegistryClientOptions,
  type ResolvedMirror,
} from '../lib/oci/index.js';

/**
 * The agent's registry mirrors (docs/mirrors.md): the entries of its bootstrap configuration, fixed at
 * start, and those of its Cluster's `spec.registryMirrors`, read at start and at every heartbeat; per
 * registry the Cluster's entry wins. Credentials of a bootstrap entry are a Secret in the agent's namespace
 * downstream; those of a Cluster entry are a Secret in the cluster namespace upstream (which the agent can
 * already read). {@link pullThroughMirror} is how a pull uses a mirror: a mirror serving other bytes is
 * refused by digest and reported, never hidden by pulling from the origin instead.
 */

/** Options of {@link AgentMirrors}. */
export interface AgentMirrorsOptions {
  /** Entries of the agent's bootstrap configuration (`--registry-mirrors`, `--registry-mirrors-file`). */
  bootstrap: readonly RegistryMirror[];
  /** The agent's namespace downstream (Secrets of bootstrap entries). */
  agentNamespace: string;
  log: Logger;
}

/** Where a mirror's credential Secret is read, by source. */
export interface MirrorSecretReaders {
  /** Downstream client (bootstrap entries). */
  downstream: KubeClient;
  /** Upstream client and the cluster namespace (Cluster entries). */
  upstream: KubeClient;
  clusterNamespace: string;
}

/** See the module comment. */
export class AgentMirrors {
  private current: MirrorMap;
  private reported = '';

  constructor(private readonly o: AgentMirrorsOptions) {
    this.current = buildMirrorMap({ bootstrap: o.bootstrap });
    this.reported = JSON.stringify(mirrorStatus(this.current));
  }

  /** The map in effect. */
  map(): MirrorMap {
    return this.current;
  }

  /** Rebuilds the map with the Cluster's entries (undefined: none); logs, and returns true, when what is in effect changed. */
  update(cluster: readonly RegistryMirror[] | undefined): boolean {
    const next = buildMirrorMap({ bootstrap: this.o.bootstrap, cluster: cluster ?? [] });
    const status = JSON.stringify(mirrorStatus(next));
    this.current = next;
    if (status === this.reported) return false;
    this.reported = status;
    this.o.log.info({ registryMirrors: mirrorStatus(next) }, 'registry mirrors changed');
    for (const p of next.problems) this.o.log.warn({ registry: p.settings.registry, source: p.source, err: p.error }, 'registry mirror not in effect');
    return true;
  }

  /** The mirrors for the Cluster's status (no credentials). */
  status(): RegistryMirrorStatus[] {
    return mirrorStatus(this.current);
  }

  /** The mirror's own credentials, or undefined when it has no `authSecretName` (anonymous). */
  async credentials(mirror: ResolvedMirror, readers: MirrorSecretReaders): Promise<Credentials | undefined> {
    const name = mirror.settings.authSecretName;
    if (!name) return undefined;
    const [client, namespace, where] =
      mirror.source === 'bootstrap'
        ? [readers.downstream, this.o.agentNamespace, 'downstream']
        : [readers.upstream, readers.clusterNamespace, 'upstream (cluster namespace)'];
    const secret = await client.get<KubeObject>({ apiVersion: 'v1', kind: 'Secret', namespace, name });
    if (!secret) {
      throw new WaitingError(
        Reason.SecretNotFound,
        `Secret ${namespace}/${name} (${where}) with the credentials of the registry mirror ${mirror.endpoint.url} for ${mirror.registry} does not exist; create it or remove authSecretName from the ${mirror.source} entry`,
        { retryAfterMs: 10_000 },
      );
    }
    return credentialsFromSecretData(secret.type as string | undefined, secret.data as Record<string, string> | undefined, mirror.endpoint.host);
  }
}

/** What {@link pullThroughMirror} needs from the caller. */
export interface MirrorPull<T> {
  route: MirrorRoute;
  /** Names the object the pull is for, e.g. `BundleDeployment ns/name (bundle x)`. */
  what: string;
  /** The mirror's credentials. */
  credentials: () => Promise<Credentials | undefined>;
  /** Pulls `reference` with a client of `options` (raw lib/oci errors). */
  pull: (options: RegistryClientOptions, reference: string) => Promise<T>;
  /** Pulls from the origin (errors already translated). */
  origin: () => Promise<T>;
  /** Maps a raw lib/oci error onto what the agent does next, its message starting `pulling <label>`. */
  translate: (err: unknown, label: string) => unknown;
  log: Logger;
}

/**
 * Pulls through the route's mirror. Bytes that do not match the pinned digest are refused with
 * ArtifactTampered naming the object, the mirror and the blob, and never trigger a pull from the origin
 * (that would hide a bad mirror). Only an unreachable mirror falls back to the origin, unless the entry
 * says `originFallback: false`; every other failure names the mirror and is retried with backoff (the
 * mirror's configuration lives outside the BundleDeployment, so its repair must be picked up).
 */
export async function pullThroughMirror<T>(p: MirrorPull<T>): Promise<T> {
  const { mirror, origin, reference } = p.route;
  const via = `${formatReference(origin)} through registry mirror ${mirror.endpoint.url} (for ${mirror.registry}, ${mirror.source} configuration)`;
  const label = `${p.what}: pulling ${via}`;
  try {
    return await p.pull(mirrorClientOptions(mirror, await p.credentials()), formatReference(reference));
  } catch (err) {
    if (err instanceof ArtifactError && err.reason === Reason.ArtifactTampered) {
      throw new TransientError(
        Reason.ArtifactTampered,
        `${label}: the mirror served bytes that do not match the pinned digest: ${messageOf(err)}. Nothing of it was applied and the last good version stays; repair or remove the mirror (the origin is not used instead)`,
        { cause: err },
      );
    }
    if (err instanceof RegistryUnavailableError && fallsBackToOrigin(mirror)) {
      p.log.warn({ mirror: mirror.endpoint.url, registry: mirror.registry, err: messageOf(err) }, 'registry mirror unreachable; pulling from the origin');
      try {
        return await p.origin();
      } catch (originErr) {
        throw new TransientError(
          reasonOf(originErr, Reason.RegistryUnreachable),
          `${label}: the mirror is unreachable (${messageOf(err)}) and the origin failed too: ${messageOf(originErr)}`,
          {
            cause: originErr,
          },
        );
      }
    }
    const translated = p.translate(err, via);
    if (translated instanceof ArtifactError) throw translated; // the content itself is bad (verified by digest): stalling, as from the origin
    throw new TransientError(reasonOf(translated, Reason.ArtifactPullFailed), `${p.what}: ${messageOf(translated)}`, { cause: err });
  }
}
