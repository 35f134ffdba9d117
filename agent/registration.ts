import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { AGENT_SERVICE_ACCOUNT, API_VERSION, Label, MANAGED_LABEL_VALUE, Reason, type ClusterRegistration } from '../lib/api/index.js';
import { TransientError, WaitingError, messageOf } from '../lib/errors.js';
import { KubeApiError, KubeClient, type KubeObject } from '../lib/kube/client.js';
import { decodeSecretData, encodeSecretData } from '../lib/kube/secret.js';
import {
  BOOTSTRAP_SECRET_NAME,
  STATE_SECRET_NAME,
  newClientRandom,
  parseBootstrap,
  registrationName,
  renewalDueAt,
  renewalSeconds,
  stateFromSecret,
  stateToSecret,
  upstreamKubeConfig,
  type AgentCredential,
  type AgentState,
  type Bootstrap,
} from './credentials.js';
import { AGENT_FIELD_MANAGER } from './objects.js';

/**
 * The agent side of registration (see the registration protocol):
 * 1. read the bootstrap Secret downstream (upstream URL, CA, a registration token, the workspace namespace);
 * 2. unless the state Secret holds a credential: create ClusterRegistration `<clientID>-<clientRandom>` in
 *    the workspace with the bootstrap token (clientRandom is generated once and kept in the state Secret,
 *    so a restarted agent keeps waiting for the same request), poll it until granted, read the credential
 *    Secret in the registration namespace and store the credential in the state Secret;
 * 3. from then on talk to upstream with that credential; renew it with the TokenRequest API before 2/3 of
 *    its life ({@link Registration.maintain}); register again (new clientRandom, same clientID, hence the same
 *    Cluster) when the state Secret loses it or upstream answers 401 ({@link Registration.invalidate}).
 * The upstream client ({@link Registration.upstream}) reads the current token on every request, so clients
 * and informers built on it survive renewals and re-registrations.
 */

/** Options of a {@link Registration}. */
export interface RegistrationOptions {
  downstream: KubeClient;
  /** The agent's namespace downstream. */
  namespace: string;
  bootstrapSecretName?: string;
  stateSecretName?: string;
  /** Poll interval while waiting for the grant; default 2 s. */
  pollMs?: number;
  log: Logger;
  now?: () => number;
}

const SECRET = { apiVersion: 'v1', kind: 'Secret' } as const;

/** One agent's registration and credential. */
export class Registration {
  private current: AgentCredential | undefined;
  private bootstrap: Bootstrap | undefined;
  private client: KubeClient | undefined;
  private readonly now: () => number;

  constructor(private readonly o: RegistrationOptions) {
    this.now = o.now ?? Date.now;
  }

  /** The credential in use, once registered. */
  credential(): AgentCredential | undefined {
    return this.current;
  }

  /** The upstream client (valid after {@link ensureRegistered}); it always uses the current credential. */
  get upstream(): KubeClient {
    if (!this.client) throw new Error('the agent is not registered yet');
    return this.client;
  }

  private stateRef() {
    return { ...SECRET, namespace: this.o.namespace, name: this.o.stateSecretName ?? STATE_SECRET_NAME };
  }

  private async readBootstrap(): Promise<Bootstrap> {
    const name = this.o.bootstrapSecretName ?? BOOTSTRAP_SECRET_NAME;
    const secret = await this.o.downstream.get({ ...SECRET, namespace: this.o.namespace, name });
    const where = `${this.o.namespace}/${name}`;
    if (!secret) throw new WaitingError(Reason.SecretNotFound, `bootstrap Secret ${where} does not exist`, { retryAfterMs: 5000 });
    return parseBootstrap(decodeSecretData(secret.data), where);
  }

  private async readState(): Promise<AgentState | undefined> {
    const secret = await this.o.downstream.get(this.stateRef());
    return secret ? stateFromSecret(decodeSecretData(secret.data)) : undefined;
  }

  private async writeState(state: AgentState): Promise<void> {
    const ref = this.stateRef();
    await this.o.downstream.apply(
      {
        apiVersion: 'v1',
        kind: 'Secret',
        type: 'Opaque',
        metadata: { name: ref.name, namespace: ref.namespace, labels: { [Label.Managed]: MANAGED_LABEL_VALUE } },
        data: encodeSecretData(stateToSecret(state)),
      },
      AGENT_FIELD_MANAGER,
      true,
    );
  }

  private async clientID(bootstrap: Bootstrap): Promise<string> {
    if (bootstrap.clientID) return bootstrap.clientID;
    const ns = await this.o.downstream.get({ apiVersion: 'v1', kind: 'Namespace', name: 'kube-system' });
    if (!ns?.metadata.uid)
      throw new WaitingError(Reason.RegistrationPending, 'the kube-system namespace has no UID to identify the cluster', { retryAfterMs: 5000 });
    return ns.metadata.uid;
  }

  private async ensureClient(bootstrap: Bootstrap): Promise<void> {
    this.bootstrap = bootstrap;
    // Status patches and finalizers of BundleDeployments are recorded under the agent's name, not "unknown".
    this.client ??= await KubeClient.fromKubeConfig(
      upstreamKubeConfig(bootstrap.apiServerURL, bootstrap.apiServerCA, () => this.current?.token ?? ''),
      {
        fieldManager: AGENT_FIELD_MANAGER,
      },
    );
  }

  /**
   * Returns the stored credential, or registers and waits for the grant. Retries every failure (bootstrap
   * Secret missing, upstream down, token refused) with backoff until it succeeds or `signal` aborts.
   */
  async ensureRegistered(signal?: AbortSignal): Promise<AgentCredential> {
    let backoff = 1000;
    for (;;) {
      try {
        const bootstrap = await this.readBootstrap();
        await this.ensureClient(bootstrap);
        const state = (await this.readState()) ?? {};
        if (state.credential) {
          this.current = state.credential;
          return state.credential;
        }
        this.current = await this.register(bootstrap, state, signal);
        return this.current;
      } catch (err) {
        if (signal?.aborted) throw err;
        this.o.log.warn({ err: messageOf(err), retryInMs: backoff }, 'registration failed; retrying');
        await sleep(backoff, undefined, { signal });
        backoff = Math.min(60_000, backoff * 2);
      }
    }
  }

  /** Creates the ClusterRegistration, waits for the grant and stores the credential. */
  private async register(bootstrap: Bootstrap, state: AgentState, signal?: AbortSignal): Promise<AgentCredential> {
    const clientID = await this.clientID(bootstrap);
    const clientRandom = state.clientRandom ?? newClientRandom();
    if (state.clientRandom === undefined) await this.writeState({ clientRandom });
    const name = registrationName(clientID, clientRandom);
    const log = this.o.log.child({ registration: `${bootstrap.namespace}/${name}` });
    const client = await KubeClient.fromKubeConfig(upstreamKubeConfig(bootstrap.apiServerURL, bootstrap.apiServerCA, () => bootstrap.token));
    try {
      const ref = { apiVersion: API_VERSION, kind: 'ClusterRegistration', namespace: bootstrap.namespace, name };
      const body = {
        apiVersion: API_VERSION,
        kind: 'ClusterRegistration',
        metadata: { name, namespace: bootstrap.namespace },
        spec: { clientID, clientRandom, ...(bootstrap.clusterLabels ? { clusterLabels: bootstrap.clusterLabels } : {}) },
      };
      let granted: ClusterRegistration | undefined;
      for (let created = false; !granted; await sleep(this.o.pollMs ?? 2000, undefined, { signal })) {
        const current = await client.get<ClusterRegistration & KubeObject>(ref);
        if (!current) {
          if (created) log.warn('the ClusterRegistration disappeared; creating it again');
          await createIgnoringConflict(client, body);
          created = true;
          log.info('registration requested; waiting for the controller to grant it');
        } else if (current.status?.granted) {
          granted = current;
        }
      }
      const credential = await this.readGrant(client, bootstrap, granted.status?.secretName ?? name, signal);
      await this.writeState({ clientRandom, credential });
      log.info({ cluster: credential.clusterName, clusterNamespace: credential.clusterNamespace }, 'registration granted');
      return credential;
    } finally {
      await client.close();
    }
  }

  private async readGrant(client: KubeClient, bootstrap: Bootstrap, secretName: string, signal?: AbortSignal): Promise<AgentCredential> {
    for (;;) {
      const secret = await client.get({ ...SECRET, namespace: bootstrap.registrationNamespace, name: secretName });
      const values = secret ? decodeSecretData(secret.data) : {};
      const { token, clusterName, clusterNamespace, expires } = values;
      if (token && clusterName && clusterNamespace) {
        return {
          token,
          clusterName,
          clusterNamespace,
          apiServerURL: bootstrap.apiServerURL,
          apiServerCA: bootstrap.apiServerCA,
          ...(expires ? { expires } : {}),
        };
      }
      await sleep(this.o.pollMs ?? 2000, undefined, { signal });
    }
  }

  /**
   * Keeps the credential valid; call periodically. Registers again when the state Secret no longer holds a
   * credential, adopts a credential someone else wrote there, and renews before 2/3 of the token's life.
   */
  async maintain(signal?: AbortSignal): Promise<'ok' | 'renewed' | 'registered'> {
    const state = await this.readState();
    if (!state?.credential) {
      this.o.log.warn('the stored credential is gone; registering again');
      // A credential that was in use and is gone is lost: ask anew. Without one, a pending request is kept.
      await this.reregister(this.current ? undefined : state?.clientRandom, signal);
      return 'registered';
    }
    if (state.credential.token !== this.current?.token) this.current = state.credential;
    const due = renewalDueAt(state.credential);
    if (due !== undefined && this.now() >= due) {
      await this.renew();
      return 'renewed';
    }
    return 'ok';
  }

  /** Upstream refused the credential (401): forget it and register again. */
  async invalidate(signal?: AbortSignal): Promise<void> {
    this.o.log.warn('upstream refused the credential; registering again');
    await this.reregister(undefined, signal);
  }

  /**
   * Registers with `clientRandom`, or a new one: a request that was granted already cannot be granted
   * again, and its Secret holds the credential that was lost or refused.
   */
  private async reregister(clientRandom: string | undefined, signal?: AbortSignal): Promise<void> {
    const fresh: AgentState = { clientRandom: clientRandom ?? newClientRandom() };
    await this.writeState(fresh);
    const bootstrap = await this.readBootstrap();
    await this.ensureClient(bootstrap);
    this.current = await this.register(bootstrap, fresh, signal);
  }

  /** Renews the token with the TokenRequest API and stores it; a 401 means registering again. */
  async renew(signal?: AbortSignal): Promise<void> {
    const credential = this.current;
    if (!credential) throw new WaitingError(Reason.RegistrationPending, 'no credential to renew', { retryAfterMs: 5000 });
    const path = `/api/v1/namespaces/${encodeURIComponent(credential.clusterNamespace)}/serviceaccounts/${AGENT_SERVICE_ACCOUNT}/token`;
    let answer: { status?: { token?: string; expirationTimestamp?: string } };
    try {
      answer = await this.upstream.raw('POST', path, {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenRequest',
        spec: { expirationSeconds: renewalSeconds(credential.token) },
      });
    } catch (err) {
      if (err instanceof KubeApiError && err.statusCode === 401) {
        await this.invalidate(signal);
        return;
      }
      throw err;
    }
    const token = answer.status?.token;
    if (!token) throw new TransientError(Reason.RegistrationPending, 'the TokenRequest answer holds no token');
    const renewed: AgentCredential = { ...credential, token, ...(answer.status?.expirationTimestamp ? { expires: answer.status.expirationTimestamp } : {}) };
    const state = (await this.readState()) ?? {};
    await this.writeState({ ...state, credential: renewed });
    this.current = renewed;
    this.o.log.info({ expires: renewed.expires }, 'credential renewed');
  }

  /** Closes the upstream client. */
  async close(): Promise<void> {
    await this.client?.close();
    this.client = undefined;
  }

  /** The bootstrap in use (after {@link ensureRegistered}). */
  bootstrapInfo(): Bootstrap | undefined {
    return this.bootstrap;
  }
}

async function createIgnoringConflict(client: KubeClient, body: KubeObject): Promise<void> {
  try {
    await client.create(body);
  } catch (err) {
    if (!(err instanceof KubeApiError && err.statusCode === 409)) throw err;
  }
}
