import { KubeConfig } from '@kubernetes/client-node';
import { KubeClient, KubeApiError, type KubeObject } from '../../lib/kube/client.js';
import { API_VERSION } from '../../lib/api/index.js';
import { stack } from '../fixture.js';
import type { ControlPlane } from '../../stack/kube.js';

/**
 * A client that authenticates with a bearer token only (an agent's, an importer's, a ServiceAccount's) to
 * the API server of `up`: by default the e2e stack's upstream.
 */
export async function tokenClient(token: string, up: Pick<ControlPlane, 'server' | 'caPem'> = stack().cluster('upstream')): Promise<KubeClient> {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'upstream', server: up.server, caData: Buffer.from(up.caPem).toString('base64'), skipTLSVerify: false }],
    users: [{ name: 'token', token }],
    contexts: [{ name: 'token', cluster: 'upstream', user: 'token' }],
    currentContext: 'token',
  });
  return KubeClient.fromKubeConfig(kc);
}

/** The HTTP status `call` fails with (0 when it succeeds); errors other than API errors are thrown. */
export async function statusOf(call: () => Promise<unknown>): Promise<number> {
  try {
    await call();
    return 0;
  } catch (err) {
    if (err instanceof KubeApiError) return err.statusCode;
    throw err;
  }
}

/** What the e2e suites read of a status condition. */
export interface Cond {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

/** The condition `type` on an object's status, if the object and the condition exist. */
export const cond = <C extends Cond>(o: { status?: { conditions?: C[] } } | undefined, type: string): C | undefined =>
  o?.status?.conditions?.find((c) => c.type === type);

/**
 * Deletes every GitRepo, Bundle and BundleDeployment on the upstream cluster, finalizers dropped. For a suite
 * that runs its own controller on a stack shared with earlier suites: their fleets and git servers are gone,
 * so nothing would finalize their objects, and a new controller would otherwise keep polling dead git
 * servers and fanning out stale Bundles beside the suite's own work.
 */
export async function forgetEarlierSuites(kube: KubeClient): Promise<number> {
  let n = 0;
  for (const kind of ['GitRepo', 'Bundle', 'BundleDeployment']) {
    const { items } = await kube.list<KubeObject>({ apiVersion: API_VERSION, kind });
    for (const o of items) {
      const ref = { apiVersion: API_VERSION, kind, namespace: o.metadata.namespace, name: o.metadata.name ?? '' };
      if (o.metadata.finalizers?.length) await kube.mergePatch(ref, { metadata: { finalizers: null } }).catch(ignoreNotFound);
      await kube.delete(ref);
      n++;
    }
  }
  return n;
}

function ignoreNotFound(err: unknown): void {
  if (!(err instanceof KubeApiError && err.statusCode === 404)) throw err;
}
