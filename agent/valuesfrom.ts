import yaml from 'js-yaml';
import { Reason } from '../lib/api/constants.js';
import type { ValuesFrom } from '../lib/api/helm.js';
import { WaitingError } from '../lib/errors.js';
import { isStatus, type KubeClient, type KubeObject } from '../lib/kube/client.js';
import { isPlainObject } from '../lib/util/json.js';
import type { Values } from '../lib/render/values.js';

/**
 * Fleet's `helm.valuesFrom`, read by the agent on the downstream cluster when it renders a chart: for each
 * entry in order, the ConfigMap key, then the Secret key (Fleet's order inside one entry), each a YAML
 * mapping merged over the values before it (lib/render/index.ts merges them last). The namespace defaults
 * to the namespace the bundle deploys into, the key to `values.yaml`, as in Fleet.
 *
 * They are read with the client the bundle is applied with: the agent's own (cluster-admin by default), or
 * the bundle's `serviceAccount` when it names one, whose RBAC must then allow `get` on those objects.
 *
 * A missing object, a missing key, a refused read or a value that is not a YAML mapping stops the
 * deployment with a WaitingError (reason ValuesFromNotFound) naming the field, the kind, the object and the
 * key: nothing of that version is applied, the last good one stays, and the agent tries again. Messages
 * never carry the content of a Secret (a YAML error is reduced to its line).
 */

/** The key read when an entry names none (Fleet's default). */
export const DEFAULT_VALUES_KEY = 'values.yaml';

/** How long the agent waits before reading missing valuesFrom objects again. */
const RETRY_MS = 15_000;

/** What reading valuesFrom needs of a Kubernetes client. */
export type ObjectReader = Pick<KubeClient, 'get'>;

type Ref = NonNullable<ValuesFrom['configMapKeyRef']>;
type Source = { kind: 'ConfigMap' | 'Secret'; ref: Ref; field: string };

function missing(message: string, cause?: unknown): WaitingError {
  return new WaitingError(Reason.ValuesFromNotFound, message, { retryAfterMs: RETRY_MS, ...(cause === undefined ? {} : { cause }) });
}

/** The text of `key` in a ConfigMap (data, then binaryData) or a Secret (data, base64), if present. */
function keyText(
  obj: KubeObject & { data?: Record<string, string>; binaryData?: Record<string, string> },
  kind: Source['kind'],
  key: string,
): string | undefined {
  const data = obj.data ?? {};
  if (kind === 'Secret') return Object.hasOwn(data, key) ? Buffer.from(data[key] ?? '', 'base64').toString('utf8') : undefined;
  if (Object.hasOwn(data, key)) return data[key];
  const binary = obj.binaryData ?? {};
  return Object.hasOwn(binary, key) ? Buffer.from(binary[key] ?? '', 'base64').toString('utf8') : undefined;
}

/** Parses one key's text as a mapping of values; a Secret's content never reaches the message. */
function parseValues(text: string, what: string, secret: boolean): Values {
  let doc: unknown;
  try {
    doc = yaml.load(text, { json: true });
  } catch (err) {
    const line = err instanceof yaml.YAMLException && err.mark ? ` at line ${err.mark.line + 1}` : '';
    throw missing(`${what} is not valid YAML${line}${secret ? '' : `: ${err instanceof yaml.YAMLException ? err.reason : String(err)}`}; fix it downstream`);
  }
  if (doc === undefined || doc === null) return {};
  if (!isPlainObject(doc)) throw missing(`${what} is not a YAML mapping of values; fix it downstream`);
  return doc;
}

async function readOne(client: ObjectReader, source: Source, defaultNamespace: string): Promise<Values> {
  const namespace = source.ref.namespace || defaultNamespace;
  const key = source.ref.key || DEFAULT_VALUES_KEY;
  const object = `${source.kind} ${namespace}/${source.ref.name}`;
  let obj: (KubeObject & { data?: Record<string, string> }) | undefined;
  try {
    obj = await client.get({ apiVersion: 'v1', kind: source.kind, namespace, name: source.ref.name });
  } catch (err) {
    if (isStatus(err, 403)) {
      throw missing(`${source.field}: the agent may not read ${object} downstream; grant get on it (see the agent chart's downstreamAccess)`, err);
    }
    throw err;
  }
  if (!obj) throw missing(`${source.field}: ${object} does not exist on the downstream cluster; create it there`);
  const text = keyText(obj, source.kind, key);
  if (text === undefined) throw missing(`${source.field}: ${object} has no key "${key}"; add it downstream or name another key`);
  return parseValues(text, `${source.field}: key "${key}" of ${object}`, source.kind === 'Secret');
}

/** The values of every `valuesFrom` entry, in merge order (see the module comment). */
export async function readValuesFrom(client: ObjectReader, valuesFrom: readonly ValuesFrom[] | undefined, defaultNamespace: string): Promise<Values[]> {
  const sources: Source[] = [];
  (valuesFrom ?? []).forEach((entry, i) => {
    if (entry.configMapKeyRef) sources.push({ kind: 'ConfigMap', ref: entry.configMapKeyRef, field: `helm.valuesFrom[${i}].configMapKeyRef` });
    if (entry.secretKeyRef) sources.push({ kind: 'Secret', ref: entry.secretKeyRef, field: `helm.valuesFrom[${i}].secretKeyRef` });
  });
  const out: Values[] = [];
  for (const source of sources) out.push(await readOne(client, source, defaultNamespace));
  return out;
}
