import { StallingError } from '../errors.js';
import { Reason } from '../api/constants.js';
import { isDigest, sha256Digest } from './digest.js';

/**
 * OCI references: `host[:port]/path[:tag][@digest]`, with the defaults of the distribution reference
 * grammar (github.com/distribution/reference): a first component that does not look like a host
 * (no `.` or `:` and not `localhost`) means Docker Hub, and a single-component Docker Hub name is
 * under `library/`.
 */

/** A parsed reference. `tag` and `digest` are both optional; when both are set the digest wins. */
export interface Reference {
  /** Registry host with optional port, e.g. `127.0.0.1:5000`, `ghcr.io`, `[::1]:5000`. */
  registry: string;
  /** Repository path inside the registry, e.g. `flotilla/default-hello`. */
  repository: string;
  tag?: string;
  digest?: string;
}

/** Docker Hub's name in references. */
export const DOCKER_HUB = 'docker.io';
/** The host that serves Docker Hub's distribution API. */
export const DOCKER_HUB_API_HOST = 'registry-1.docker.io';
/** The longest repository name (registry + path) the distribution spec allows. */
export const MAX_NAME_LENGTH = 255;

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const HOST_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const HOST = new RegExp(`^(?:${HOST_COMPONENT}(?:\\.${HOST_COMPONENT})*|\\[[0-9a-fA-F:.]+\\])(?::[0-9]{1,5})?$`);

function invalid(input: string, why: string): StallingError {
  return new StallingError(Reason.InvalidSpec, `invalid OCI reference "${input}": ${why}`);
}

/** True if `name` is a valid repository path (lowercase components separated by `/`). */
export function isRepositoryPath(name: string): boolean {
  return name.length > 0 && name.split('/').every((c) => PATH_COMPONENT.test(c));
}

/** True if `tag` is a valid tag. */
export function isTag(tag: string): boolean {
  return TAG.test(tag);
}

function looksLikeHost(component: string): boolean {
  return component.includes('.') || component.includes(':') || component === 'localhost' || component.startsWith('[');
}

/**
 * Parses `host[:port]/path[:tag][@digest]`. Throws a StallingError (InvalidSpec) naming the input and
 * the rule broken. The digest must be sha256 or sha512, the only algorithms Flotilla can verify.
 */
export function parseReference(input: string): Reference {
  let rest = input.trim();
  if (rest === '') throw invalid(input, 'it is empty');
  if (/^[a-z]+:\/\//i.test(rest)) throw invalid(input, 'a reference has no scheme (write host/path, not https://host/path)');
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!isDigest(digest)) throw invalid(input, `"${digest}" is not a sha256:<64 hex> or sha512:<128 hex> digest`);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash && !rest.slice(colon).includes(']')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!isTag(tag)) throw invalid(input, `"${tag}" is not a valid tag`);
  }
  const slash = rest.indexOf('/');
  const first = slash < 0 ? rest : rest.slice(0, slash);
  let registry: string;
  let repository: string;
  if (slash >= 0 && looksLikeHost(first)) {
    registry = first;
    repository = rest.slice(slash + 1);
    if (!HOST.test(registry)) throw invalid(input, `"${registry}" is not a valid host[:port]`);
  } else {
    registry = DOCKER_HUB;
    repository = slash < 0 ? `library/${rest}` : rest;
  }
  if (registry === 'index.docker.io') registry = DOCKER_HUB;
  if (!isRepositoryPath(repository)) {
    throw invalid(input, `"${repository}" is not a valid repository path (lowercase letters, digits, separators . _ __ - and /)`);
  }
  if (registry.length + 1 + repository.length > MAX_NAME_LENGTH) throw invalid(input, `the name is longer than ${MAX_NAME_LENGTH} characters`);
  return { registry, repository, ...(tag === undefined ? {} : { tag }), ...(digest === undefined ? {} : { digest }) };
}

/**
 * Parses a repository reference without tag or digest, such as `GitRepo.spec.ociRegistry.reference`.
 * A tag or digest is refused: versions are chosen by Flotilla, not by the user.
 */
export function parseRepositoryReference(input: string): Reference {
  const ref = parseReference(input);
  if (ref.tag !== undefined || ref.digest !== undefined) {
    throw invalid(input, 'a registry reference names a repository only (host[:port]/path), without tag or digest');
  }
  return ref;
}

/** Formats a reference back to `host/path[:tag][@digest]`. */
export function formatReference(ref: Reference): string {
  let out = `${ref.registry}/${ref.repository}`;
  if (ref.tag !== undefined) out += `:${ref.tag}`;
  if (ref.digest !== undefined) out += `@${ref.digest}`;
  return out;
}

/** The pinned form `host/path@digest` that Bundles and BundleDeployments store. */
export function pinnedReference(ref: Pick<Reference, 'registry' | 'repository'>, digest: string): string {
  return `${ref.registry}/${ref.repository}@${digest}`;
}

/** The host that serves the distribution API for a registry name (Docker Hub has its own). */
export function apiHost(registry: string): string {
  return registry === DOCKER_HUB ? DOCKER_HUB_API_HOST : registry;
}

/** Lowercases and replaces what a repository path component cannot hold, e.g. `My_App..x` -> `my_app-x`. */
export function sanitizePathComponent(value: string): string {
  const cleaned = value
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/[._-]{2,}/g, (run) => (run === '__' ? run : '-'))
    .replace(/^[._-]+|[._-]+$/g, '');
  return cleaned === '' ? 'x' : cleaned;
}

/**
 * The repository that holds every version of one bundle: `<base>/<bundle-namespace>-<bundle-name>`,
 * lowercase and valid. `base` is the configured `host[:port]/path` (no tag or digest). When the name
 * would pass {@link MAX_NAME_LENGTH}, the last component is shortened and suffixed with a short hash of the
 * full name so that different bundles never share a repository.
 */
export function bundleRepository(base: string, bundleNamespace: string, bundleName: string): Reference {
  const parsed = parseRepositoryReference(base);
  let component = sanitizePathComponent(`${bundleNamespace}-${bundleName}`);
  const room = MAX_NAME_LENGTH - parsed.registry.length - parsed.repository.length - 2;
  if (component.length > room) {
    const suffix = sha256Digest(`${bundleNamespace}/${bundleName}`).slice('sha256:'.length, 'sha256:'.length + 12);
    component = `${component.slice(0, Math.max(1, room - suffix.length - 1)).replace(/[._-]+$/, '')}-${suffix}`;
  }
  const repository = `${parsed.repository}/${component}`;
  if (!isRepositoryPath(repository) || parsed.registry.length + 1 + repository.length > MAX_NAME_LENGTH) {
    throw invalid(base, `no valid repository fits under it for bundle ${bundleNamespace}/${bundleName}`);
  }
  return { registry: parsed.registry, repository };
}
