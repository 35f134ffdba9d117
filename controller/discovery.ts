import { Reason } from '../lib/api/index.js';
import { StallingError, WaitingError } from '../lib/errors.js';
import type { KubeClient, KubeObject } from '../lib/kube/client.js';
import {
  LOCAL_REGISTRY_CONFIGMAP as LOCAL_REGISTRY_CONFIGMAP_REF,
  LOCAL_REGISTRY_KEY,
  REGISTRY_HOST_FIELDS,
  parseLocalRegistryHostingText,
  pickRegistryHost,
  type LocalRegistryHosting,
  type RegistryHostField,
} from '../lib/images/localregistry.js';

/**
 * KEP-1755 discovery: a cluster that runs a local registry announces it in the ConfigMap
 * `kube-public/local-registry-hosting`, key `localRegistryHosting.v1`, a YAML document with
 * `host` (reached from the host that runs the cluster: a developer's machine, the controller outside it),
 * `hostFromContainerRuntime` (reached by the nodes' container runtime), `hostFromClusterNetwork`
 * (reached from Pods) and `help`. A GitRepo whose `ociRegistry` gives no reference stores its bundles
 * in that registry; {@link RegistryHostField} says which of the hosts the controller pushes to, which
 * is also the address agents pull from (it is written into every Bundle's pinned reference).
 */

/** Namespace of the KEP-1755 ConfigMap. */
export const LOCAL_REGISTRY_NAMESPACE = LOCAL_REGISTRY_CONFIGMAP_REF.namespace;
/** Name of the KEP-1755 ConfigMap. */
export const LOCAL_REGISTRY_CONFIGMAP = LOCAL_REGISTRY_CONFIGMAP_REF.name;
export { LOCAL_REGISTRY_KEY, REGISTRY_HOST_FIELDS, type LocalRegistryHosting, type RegistryHostField };

/** A registry found through discovery: the address to use and where it came from. */
export interface DiscoveredRegistry {
  /** `host[:port]` to push to and pull from. */
  host: string;
  /** The field of the ConfigMap it was read from. */
  field: RegistryHostField;
  /** The ConfigMap's `help` URL, for messages. */
  help?: string;
}

const WHERE = `ConfigMap ${LOCAL_REGISTRY_NAMESPACE}/${LOCAL_REGISTRY_CONFIGMAP} (KEP-1755)`;

function malformed(detail: string): StallingError {
  return new StallingError(
    Reason.RegistryDiscoveryFailed,
    `${WHERE} is malformed: ${detail}; fix the ConfigMap or give spec.ociRegistry.reference (or ociRegistrySecret)`,
  );
}

/**
 * Parses the ConfigMap's `localRegistryHosting.v1` text and picks `field` (falling back to `host` when that
 * field is absent, as the KEP says consumers should). Throws StallingError (RegistryDiscoveryFailed) naming what is wrong.
 */
export function parseLocalRegistryHosting(text: string | undefined, field: RegistryHostField): DiscoveredRegistry {
  if (text === undefined || text.trim() === '') throw malformed(`key ${LOCAL_REGISTRY_KEY} is missing or empty`);
  let hosting: LocalRegistryHosting | undefined;
  let picked: ReturnType<typeof pickRegistryHost>;
  try {
    hosting = parseLocalRegistryHostingText(text);
    picked = pickRegistryHost(hosting, [field, 'host']);
  } catch (err) {
    throw malformed((err as Error).message);
  }
  if (!picked) throw malformed(`neither ${field} nor host is set`);
  return { ...picked, ...(hosting?.help !== undefined ? { help: hosting.help } : {}) };
}

/** The ConfigMap reads discovery makes. */
export type ConfigMapReader = Pick<KubeClient, 'get'>;

/**
 * Reads the upstream cluster's KEP-1755 ConfigMap and returns the registry it announces. A missing
 * ConfigMap is a WaitingError (it may be published soon: a registry still starting); a malformed one a StallingError.
 */
export async function discoverRegistry(kube: ConfigMapReader, field: RegistryHostField): Promise<DiscoveredRegistry> {
  const cm = await kube.get<KubeObject & { data?: Record<string, string> }>({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    namespace: LOCAL_REGISTRY_NAMESPACE,
    name: LOCAL_REGISTRY_CONFIGMAP,
  });
  if (!cm) {
    throw new WaitingError(
      Reason.RegistryDiscoveryFailed,
      `spec.ociRegistry gives no reference and ${WHERE} does not exist: publish the local registry there or set spec.ociRegistry.reference`,
      { retryAfterMs: 10_000 },
    );
  }
  return parseLocalRegistryHosting(cm.data?.[LOCAL_REGISTRY_KEY], field);
}

/** The `localRegistryHosting.v1` text announcing a registry (what `flotilla dev` and the chart publish). */
export function localRegistryHostingText(hosting: LocalRegistryHosting): string {
  const lines = Object.entries(hosting)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}: ${JSON.stringify(v)}`);
  return `${lines.join('\n')}\n`;
}

/** The KEP-1755 ConfigMap object for `hosting`. */
export function localRegistryHostingConfigMap(hosting: LocalRegistryHosting): KubeObject & { data: Record<string, string> } {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: LOCAL_REGISTRY_CONFIGMAP, namespace: LOCAL_REGISTRY_NAMESPACE },
    data: { [LOCAL_REGISTRY_KEY]: localRegistryHostingText(hosting) },
  };
}
