/**
 * The registration flow as `flotilla dev`, the e2e fleets and the benchmarks drive it: issue a
 * ClusterRegistrationToken upstream, wait for the controller to write its Secret, and write an agent's
 * bootstrap Secret downstream from it (what `helm install flotilla-agent` writes in a real cluster).
 */
import { API_VERSION } from '../lib/api/index.js';
import type { KubeClient, KubeObject } from '../lib/kube/client.js';
import { decodeSecretData } from '../lib/kube/secret.js';
import { waitFor } from './net.js';

/** Name of the agent's bootstrap Secret in its namespace downstream (agent/credentials.ts reads it). */
export const AGENT_BOOTSTRAP_SECRET = 'flotilla-agent-bootstrap';

/** The data of a registration token's Secret: apiServerURL, apiServerCA, token. */
export type RegistrationToken = Record<string, string>;

/** What {@link issueRegistrationToken} is given. */
export interface TokenRequest {
  /** Workspace namespace of the token (and of the Clusters it registers). */
  namespace: string;
  name: string;
  /** Field manager of the apply. */
  manager: string;
  /** Token lifetime; default 24h. */
  ttl?: string;
  /** How long to wait for the controller to write the Secret; default 90 s. */
  timeoutMs?: number;
  /** Called at each poll; throw to stop waiting (e.g. the controller process exited). */
  check?: () => Promise<void>;
  /** Where to look when the wait times out (log folder). */
  context?: () => string;
}

/** Applies a ClusterRegistrationToken and returns its Secret's decoded data once the controller wrote the token. */
export async function issueRegistrationToken(up: KubeClient, r: TokenRequest): Promise<RegistrationToken> {
  await up.apply(
    { apiVersion: API_VERSION, kind: 'ClusterRegistrationToken', metadata: { name: r.name, namespace: r.namespace }, spec: { ttl: r.ttl ?? '24h' } },
    r.manager,
  );
  return await waitFor(
    async () => {
      await r.check?.();
      const s = await up.get<KubeObject & { data?: Record<string, string> }>({ apiVersion: 'v1', kind: 'Secret', namespace: r.namespace, name: r.name });
      const data = s?.data ? decodeSecretData(s.data) : undefined;
      return data?.token ? data : undefined;
    },
    { what: `the registration token Secret ${r.namespace}/${r.name}`, timeoutMs: r.timeoutMs ?? 90_000, ...(r.context ? { context: r.context } : {}) },
  );
}

/** One agent to bootstrap downstream. */
export interface AgentBootstrap {
  /** The agent's namespace downstream; created when missing. */
  agentNamespace: string;
  /** Workspace namespace upstream its Cluster is created in. */
  workspace: string;
  /** Cluster name (label flotilla.dev/cluster-name) and the other labels of its Cluster. */
  clusterName: string;
  labels?: Record<string, string>;
  /** Registration namespace upstream, when not the controller's default. */
  registrationNamespace?: string;
  /** Client ID; set it when several agents share one downstream API server. */
  clientID?: string;
  manager: string;
}

/** Writes the agent's namespace and bootstrap Secret downstream from a registration token. */
export async function writeAgentBootstrap(down: KubeClient, token: RegistrationToken, a: AgentBootstrap): Promise<void> {
  await down.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: a.agentNamespace } }, a.manager);
  await down.apply(
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: AGENT_BOOTSTRAP_SECRET, namespace: a.agentNamespace },
      stringData: {
        apiServerURL: token.apiServerURL ?? '',
        apiServerCA: token.apiServerCA ?? '',
        token: token.token ?? '',
        namespace: a.workspace,
        ...(a.registrationNamespace ? { registrationNamespace: a.registrationNamespace } : {}),
        ...(a.clientID ? { clientID: a.clientID } : {}),
        clusterLabels: JSON.stringify({ ...a.labels, 'flotilla.dev/cluster-name': a.clusterName }),
      },
    },
    a.manager,
  );
}
