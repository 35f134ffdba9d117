import { KubeConfig } from '@kubernetes/client-node';
import { KubeClient, KubeApiError } from '../../lib/kube/client.js';
import { stack } from '../fixture.js';

/** A client of the stack's upstream API server that authenticates with a bearer token only (an agent's or an importer's). */
export async function tokenClient(token: string): Promise<KubeClient> {
  const up = stack().cluster('upstream');
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
