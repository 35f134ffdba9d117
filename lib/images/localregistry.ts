import yaml from 'js-yaml';

/**
 * KEP-1755 (`kube-public/local-registry-hosting`): a cluster that runs its own registry says where it is in
 * the ConfigMap's `localRegistryHosting.v1` key, a YAML document with `host` (where people and tools outside
 * the cluster push, e.g. `localhost:5001`), `hostFromContainerRuntime` (where the nodes' container runtime
 * pulls from, when it differs), `hostFromClusterNetwork` (reached from Pods) and `help`. The one parser of
 * that document: the controller's registry discovery and the agent's local images both use it. Pure; the
 * caller reads the ConfigMap.
 */

/** Namespace and name of the KEP-1755 ConfigMap. */
export const LOCAL_REGISTRY_CONFIGMAP = { namespace: 'kube-public', name: 'local-registry-hosting' } as const;
/** The data key holding the v1 document. */
export const LOCAL_REGISTRY_KEY = 'localRegistryHosting.v1';
/** The fields of the v1 document that name an address. */
export const REGISTRY_HOST_FIELDS = ['host', 'hostFromClusterNetwork', 'hostFromContainerRuntime'] as const;
/** One of {@link REGISTRY_HOST_FIELDS}. */
export type RegistryHostField = (typeof REGISTRY_HOST_FIELDS)[number];

/** The parsed `localRegistryHosting.v1` document. */
export interface LocalRegistryHosting {
  host?: string;
  hostFromContainerRuntime?: string;
  hostFromClusterNetwork?: string;
  help?: string;
}

/** `host[:port]`: a DNS name, IPv4 or bracketed IPv6, optional port. */
const HOST_PORT = /^([a-zA-Z0-9]([-a-zA-Z0-9.]*[a-zA-Z0-9])?|\[[0-9a-fA-F:]+\])(:[0-9]{1,5})?$/;

/**
 * Parses the v1 document; undefined for an empty one. Throws an Error saying what is wrong (not YAML, not a
 * mapping, a field that is not a string); callers add which ConfigMap and what to do.
 */
export function parseLocalRegistryHostingText(text: string): LocalRegistryHosting | undefined {
  let doc: unknown;
  try {
    doc = yaml.load(text);
  } catch (err) {
    throw new Error(`key ${LOCAL_REGISTRY_KEY} is not YAML (${err instanceof Error ? err.message.split('\n')[0] : String(err)})`);
  }
  if (doc === null || doc === undefined) return undefined;
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new Error(`key ${LOCAL_REGISTRY_KEY} is not a mapping`);
  const fields = doc as Record<string, unknown>;
  const out: LocalRegistryHosting = {};
  for (const key of [...REGISTRY_HOST_FIELDS, 'help'] as const) {
    const value = fields[key];
    if (value === undefined || value === null) continue;
    if (typeof value !== 'string') throw new Error(`${key} is not a string`);
    out[key] = value;
  }
  return out;
}

/**
 * The first of `fields` the document sets (non-empty), checked to be `host[:port]` (no scheme or path);
 * undefined when none is set. A bad value is an Error naming the field.
 */
export function pickRegistryHost(
  hosting: LocalRegistryHosting | undefined,
  fields: readonly RegistryHostField[],
): { host: string; field: RegistryHostField } | undefined {
  for (const field of fields) {
    const host = hosting?.[field];
    if (host === undefined || host === '') continue;
    if (!HOST_PORT.test(host)) throw new Error(`${field} "${host.slice(0, 100)}" is not host[:port]`);
    return { host, field };
  }
  return undefined;
}

/**
 * The host a cluster's container runtime pulls local images from: `hostFromContainerRuntime`, else `host`,
 * from the ConfigMap's data; undefined when the key is absent or names neither. A malformed document is an
 * Error naming the field.
 */
export function localRegistryHost(data: Readonly<Record<string, string>> | undefined): string | undefined {
  const text = data?.[LOCAL_REGISTRY_KEY];
  if (text === undefined) return undefined;
  return pickRegistryHost(parseLocalRegistryHostingText(text), ['hostFromContainerRuntime', 'host'])?.host;
}
