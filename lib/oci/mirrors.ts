import yaml from 'js-yaml';
import { Reason } from '../api/constants.js';
import { MirrorSource, RegistryMirrorListSchema, type RegistryMirror, type RegistryMirrorStatus } from '../api/mirror.js';
import { StallingError, messageOf } from '../errors.js';
import type { Credentials } from './auth.js';
import type { RegistryClientOptions } from './client.js';
import { decodeCABundle } from './options.js';
import { MAX_NAME_LENGTH, isRepositoryPath, parseReference, type Reference } from './reference.js';

/**
 * Registry mirrors as a pure mapping (containerd's hosts.toml in spirit): a map from origin registries
 * (`host[:port]` as written in references) to mirror endpoints, built from the agent's bootstrap entries and
 * the Cluster's entries (per registry the Cluster's entry wins), and the rewrite of a reference onto its
 * mirror. The rewrite keeps tag and digest untouched, so a pull through a mirror verifies the same pinned
 * digests as a pull from the origin: a mirror can change where bytes come from, never which bytes are
 * accepted. Used by the agent's bundle pulls; image references (relocation, airgap) can use the same map.
 */

/** Where a mirror is reached. */
export interface MirrorEndpoint {
  /** `host[:port]` of the mirror. */
  host: string;
  /** Repository prefix on the mirror (`a/b`), or '' for none. */
  prefix: string;
  basicHTTP: boolean;
  /** `scheme://host[:port][/prefix]`, for status and messages. */
  url: string;
}

/** A mirror in effect: its configuration, parsed endpoint and where it came from. */
export interface ResolvedMirror {
  /** The origin registry, normalized (`docker.io` for Docker Hub, lowercase host). */
  registry: string;
  endpoint: MirrorEndpoint;
  source: MirrorSource;
  settings: RegistryMirror;
}

/** An entry left out of the map, and why. */
export interface MirrorProblem {
  settings: RegistryMirror;
  source: MirrorSource;
  error: string;
}

/** The mirrors of a cluster. */
export interface MirrorMap {
  /** In effect, by normalized origin registry. */
  readonly byRegistry: ReadonlyMap<string, ResolvedMirror>;
  /** Entries that are not in effect (invalid, or a duplicate registry within one source). */
  readonly problems: readonly MirrorProblem[];
}

/** A reference routed to a mirror. */
export interface MirrorRoute {
  mirror: ResolvedMirror;
  /** The reference as given. */
  origin: Reference;
  /** The same reference on the mirror (same tag and digest). */
  reference: Reference;
}

/** A map with no mirrors. */
export const NO_MIRRORS: MirrorMap = { byRegistry: new Map(), problems: [] };

function invalid(what: string, why: string): StallingError {
  return new StallingError(Reason.InvalidSpec, `registry mirror ${what}: ${why}`);
}

/** Normalizes an origin registry `host[:port]` (Docker Hub's aliases become `docker.io`; hosts are lowercase). */
export function normalizeRegistry(registry: string): string {
  const text = registry.trim();
  if (text === '' || /[/@\s]/.test(text) || text.includes('://')) {
    throw invalid(`registry "${registry}"`, 'must be host[:port] as written in references, without scheme or path');
  }
  const parsed = parseReference(`${text}/x`);
  const dockerHub = parsed.registry === 'docker.io' && ['docker.io', 'index.docker.io'].includes(text.toLowerCase());
  if (parsed.registry !== text && !dockerHub) {
    throw invalid(`registry "${registry}"`, 'must be host[:port] (a name without a dot or port is not a registry host)');
  }
  return parsed.registry.toLowerCase();
}

/**
 * Parses a mirror: `host[:port][/path]`, `https://host[:port][/path]` or `http://host[:port][/path]`
 * (http implies `basicHTTP`). The path is a repository prefix on the mirror.
 */
export function parseMirrorEndpoint(mirror: string, basicHTTP?: boolean): MirrorEndpoint {
  const text = mirror.trim();
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(text)?.[1]?.toLowerCase();
  if (scheme !== undefined && scheme !== 'http' && scheme !== 'https') throw invalid(`"${mirror}"`, `scheme ${scheme} is not http or https`);
  if (scheme === 'https' && basicHTTP === true) throw invalid(`"${mirror}"`, 'an https:// mirror cannot have basicHTTP: true');
  const rest = scheme === undefined ? text : text.slice(scheme.length + 3);
  if (/[?#@\s]/.test(rest)) throw invalid(`"${mirror}"`, 'must be host[:port][/path] without query, fragment or user');
  const slash = rest.indexOf('/');
  const host = slash < 0 ? rest : rest.slice(0, slash);
  const prefix = (slash < 0 ? '' : rest.slice(slash + 1)).replace(/\/+$/, '');
  try {
    if (parseReference(`${host}/x`).registry !== host) throw new Error('not a host');
  } catch {
    throw invalid(`"${mirror}"`, `"${host}" is not a valid host[:port]`);
  }
  if (prefix !== '' && !isRepositoryPath(prefix)) {
    throw invalid(`"${mirror}"`, `path "${prefix}" is not a repository prefix (lowercase components separated by /)`);
  }
  const plain = scheme === 'http' || basicHTTP === true;
  return { host, prefix, basicHTTP: plain, url: `${plain ? 'http' : 'https'}://${host}${prefix === '' ? '' : `/${prefix}`}` };
}

function resolveOne(settings: RegistryMirror, source: MirrorSource): ResolvedMirror {
  const registry = normalizeRegistry(settings.registry);
  const endpoint = parseMirrorEndpoint(settings.mirror, settings.basicHTTP);
  if (endpoint.host.toLowerCase() === registry && endpoint.prefix === '') throw invalid(`for ${registry}`, 'the mirror is the registry itself');
  if (settings.caBundle !== undefined) decodeCABundle(settings.caBundle, `registry mirror for ${registry}: caBundle`);
  return { registry, endpoint, source, settings };
}

/**
 * Builds the map from the bootstrap entries and the Cluster's entries: per origin registry, a valid Cluster
 * entry overrides the bootstrap one (the Cluster is edited centrally and read live; the bootstrap
 * configuration is the default a cluster starts with). An invalid entry is left out and listed in
 * `problems`, so it never hides the other source's entry for its registry; the second entry for one
 * registry within one source is a problem too.
 */
export function buildMirrorMap(sources: { bootstrap?: readonly RegistryMirror[]; cluster?: readonly RegistryMirror[] }): MirrorMap {
  const byRegistry = new Map<string, ResolvedMirror>();
  const problems: MirrorProblem[] = [];
  for (const [source, list] of [
    [MirrorSource.Bootstrap, sources.bootstrap ?? []],
    [MirrorSource.Cluster, sources.cluster ?? []],
  ] as const) {
    const seen = new Set<string>();
    for (const settings of list) {
      try {
        const resolved = resolveOne(settings, source);
        if (seen.has(resolved.registry))
          throw invalid(`for ${resolved.registry}`, `the registry is listed twice in the ${source} entries; the first one is used`);
        seen.add(resolved.registry);
        byRegistry.set(resolved.registry, resolved);
      } catch (err) {
        problems.push({ settings, source, error: messageOf(err) });
      }
    }
  }
  return { byRegistry, problems };
}

/** The reference `ref` on the mirror `endpoint`: host replaced, repository prefixed, tag and digest kept. */
export function mirrorReference(ref: Reference, endpoint: MirrorEndpoint): Reference {
  const repository = endpoint.prefix === '' ? ref.repository : `${endpoint.prefix}/${ref.repository}`;
  if (endpoint.host.length + 1 + repository.length > MAX_NAME_LENGTH) {
    throw invalid(endpoint.url, `${endpoint.host}/${repository} is longer than ${MAX_NAME_LENGTH} characters`);
  }
  return {
    registry: endpoint.host,
    repository,
    ...(ref.tag === undefined ? {} : { tag: ref.tag }),
    ...(ref.digest === undefined ? {} : { digest: ref.digest }),
  };
}

/** Where `reference` is pulled from under `map`: a route to its registry's mirror, or undefined for the origin. */
export function mirrorRoute(map: MirrorMap | undefined, reference: string | Reference): MirrorRoute | undefined {
  if (!map || map.byRegistry.size === 0) return undefined;
  const origin = typeof reference === 'string' ? parseReference(reference) : reference;
  const mirror = map.byRegistry.get(origin.registry.toLowerCase());
  return mirror ? { mirror, origin, reference: mirrorReference(origin, mirror.endpoint) } : undefined;
}

/** Options of a RegistryClient for a mirror, with the mirror's own credentials (never the origin's), plus `extra`. */
export function mirrorClientOptions(
  mirror: ResolvedMirror,
  credentials: Credentials | undefined,
  extra: Partial<RegistryClientOptions> = {},
): RegistryClientOptions {
  const { settings, endpoint } = mirror;
  return {
    registry: endpoint.host,
    basicHTTP: endpoint.basicHTTP,
    insecureSkipTLS: settings.insecureSkipTLS ?? false,
    ...(settings.caBundle ? { caPem: decodeCABundle(settings.caBundle, `registry mirror for ${mirror.registry}: caBundle`) } : {}),
    ...(credentials ? { credentials } : {}),
    ...extra,
  };
}

/** True unless the entry says not to fall back to the origin when the mirror is unreachable. */
export function fallsBackToOrigin(mirror: ResolvedMirror): boolean {
  return mirror.settings.originFallback ?? true;
}

/** The map as reported on the Cluster's status: endpoints and Secret names, never credentials or CA bytes. */
export function mirrorStatus(map: MirrorMap): RegistryMirrorStatus[] {
  const inEffect = [...map.byRegistry.values()].map(
    (m): RegistryMirrorStatus => ({
      registry: m.registry,
      mirror: m.endpoint.url,
      source: m.source,
      ...(m.settings.authSecretName ? { authSecretName: m.settings.authSecretName } : {}),
      ...(m.settings.caBundle ? { caBundle: true } : {}),
      ...(m.settings.insecureSkipTLS ? { insecureSkipTLS: true } : {}),
      originFallback: fallsBackToOrigin(m),
    }),
  );
  const left = map.problems.map(
    (p): RegistryMirrorStatus => ({
      registry: p.settings.registry.slice(0, 255),
      mirror: p.settings.mirror.slice(0, 255),
      source: p.source,
      error: p.error.slice(0, 1024),
    }),
  );
  return [...inEffect.sort((a, b) => a.registry.localeCompare(b.registry)), ...left];
}

/**
 * Parses a list of mirrors written as JSON or YAML (the agent's `--registry-mirrors` flag or file); throws
 * naming `where` and every problem. Only the shape is checked here; hosts are checked by {@link buildMirrorMap}.
 */
export function parseMirrorList(text: string, where: string): RegistryMirror[] {
  if (text.trim() === '') return [];
  let data: unknown;
  try {
    data = yaml.load(text, { schema: yaml.JSON_SCHEMA });
  } catch (err) {
    throw invalid(`list in ${where}`, `not JSON or YAML: ${messageOf(err)}`);
  }
  const parsed = RegistryMirrorListSchema.safeParse(data ?? []);
  if (!parsed.success) {
    throw invalid(`list in ${where}`, parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; '));
  }
  return parsed.data;
}
