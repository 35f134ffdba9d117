import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Controller } from '../lib/kube/controller.js';
import { reconciler, type RunState, type Step } from '../lib/kube/reconciler.js';
import { mergeStatusWriter } from '../lib/kube/reconciler-status.js';
import { splitKey } from '../lib/kube/informer.js';
import { isStatus, type KubeObject } from '../lib/kube/client.js';
import { StallingError, WaitingError, messageOf, reasonOf } from '../lib/errors.js';
import {
  AGENT_SERVICE_ACCOUNT,
  API_VERSION,
  DNS_SUBDOMAIN,
  Label,
  Reason,
  formatTime,
  parseDurationMs,
  type Cluster,
  type ClusterRegistration,
  type ClusterRegistrationToken,
} from '../lib/api/index.js';
import { Ref, type ControllerContext } from './context.js';
import { ensureClusterNamespace, observerOf } from './cluster.js';
import {
  CONTROLLER_FIELD_MANAGER,
  agentRules,
  applyObjects,
  boundedName,
  importRules,
  managedLabels,
  ownerRefTo,
  requestToken,
  roleBindingObject,
  roleObject,
  secretObject,
  secretValue,
  serviceAccountObject,
} from './rbac.js';

/**
 * The controller side of agent registration (see the registration protocol):
 * - a ClusterRegistrationToken gets a ServiceAccount `import-<token>` that may only create/get
 *   ClusterRegistrations and get (not list) Secrets in the registration namespace, and a Secret named like
 *   the token with a TokenRequest credential for it; past its ttl that Secret and the ServiceAccount go;
 * - a ClusterRegistration gets its Cluster (found by spec.clientID, or created), the cluster namespace, the
 *   agent's ServiceAccount and least-privilege Roles, and a credential Secret in the registration namespace.
 * Tokens are never logged, never put in events or status.
 */

/** Lifetime of a ClusterRegistrationToken without spec.ttl (or with "0"). */
export const DEFAULT_TOKEN_TTL = '168h';
/** Annotation on credential Secrets: when the token inside expires (RFC 3339). */
export const TOKEN_EXPIRES_ANNOTATION = 'flotilla.dev/token-expires';
/** Annotation on import token Secrets: UID of the ServiceAccount the token was issued for. */
export const ACCOUNT_UID_ANNOTATION = 'flotilla.dev/service-account-uid';
/** Label on import RBAC objects in the registration namespace: the token they belong to. */
export const TOKEN_LABEL = 'flotilla.dev/registration-token';
/** Label a registering agent sets in clusterLabels to choose its Cluster's name. */
export const CLUSTER_NAME_LABEL = 'flotilla.dev/cluster-name';
/** Longest requeue of a token (timers beyond ~24 days overflow; tokens are re-read on every change anyway). */
const MAX_TOKEN_RECHECK_MS = 24 * 3_600_000;

/** When a token created at `createdAt` with `ttl` expires. */
export function tokenExpiry(createdAt: Date, ttl: string | undefined): Date {
  const ms = ttl ? parseDurationMs(ttl) : undefined;
  return new Date(createdAt.getTime() + (ms ? ms : (parseDurationMs(DEFAULT_TOKEN_TTL) ?? 0)));
}

/** Name of the ServiceAccount, Roles and RoleBindings of import token `tokenName`. */
export function importAccountName(tokenName: string): string {
  return boundedName(`import-${tokenName}`, 253);
}

/**
 * Name of the Cluster a registration creates: clusterLabels["flotilla.dev/cluster-name"] when given,
 * else `c-` + the first 12 hex digits of sha256(clientID).
 */
export function clusterNameFor(clientID: string, clusterLabels: Record<string, string> | undefined): string {
  return clusterLabels?.[CLUSTER_NAME_LABEL] || `c-${createHash('sha256').update(clientID).digest('hex').slice(0, 12)}`;
}

/** The API server URL and CA handed to agents: configured, or this client's own server and the in-cluster CA. */
async function apiServerInfo(ctx: ControllerContext): Promise<{ url: string; ca: string }> {
  const caFile = ctx.config.apiServerCaFile ?? '/var/run/secrets/kubernetes.io/serviceaccount/ca.crt';
  let ca = '';
  try {
    ca = await readFile(caFile, 'utf8');
  } catch (err) {
    if (ctx.config.apiServerCaFile) throw new StallingError(Reason.InvalidSpec, `cannot read --api-server-ca-file ${caFile}: ${(err as Error).message}`);
  }
  return { url: ctx.config.apiServerUrl ?? ctx.kube.server, ca };
}

/** The working state of one ClusterRegistrationToken reconcile. */
interface TokenRun extends RunState<ClusterRegistrationToken & KubeObject> {
  expires: Date;
  expired: boolean;
}
/** The working state of one ClusterRegistration reconcile. */
interface RegistrationRun extends RunState<ClusterRegistration & KubeObject> {
  granted?: { clusterName: string; clusterNs: string; expires: string };
}

/** Sets up the ClusterRegistrationToken reconciler (registration step 1, and expiry). */
export function setupRegistrationTokenController(ctx: ControllerContext): Controller {
  const log = ctx.log.child({ controller: 'clusterregistrationtoken' });
  const W = ctx.config.workspaceNamespace;
  const R = ctx.config.registrationNamespace;

  const deleteImportAccess = async (name: string): Promise<void> => {
    const account = importAccountName(name);
    for (const ns of [W, R]) {
      await ctx.kube.delete({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', namespace: ns, name: account });
      await ctx.kube.delete({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', namespace: ns, name: account });
    }
    await ctx.kube.delete({ apiVersion: 'v1', kind: 'ServiceAccount', namespace: W, name: account });
  };

  /** Past its ttl: the Secret and the import account go. */
  const expiry: Step<TokenRun> = async (run) => {
    const token = run.object;
    const name = token.metadata.name;
    if (run.expires.getTime() > run.now.getTime()) return 'continue';
    run.expired = true;
    const deleted = await ctx.kube.delete(Ref.secret(W, name));
    await deleteImportAccess(name);
    if (deleted) {
      log.info({ token: `${W}/${name}` }, 'registration token expired; its secret and service account were deleted');
      void ctx.events.emit(token, 'Normal', Reason.TokenExpired, `the token expired at ${formatTime(run.expires)}; Secret ${name} was deleted`);
    }
    return 'stop';
  };

  /** The import account (ServiceAccount, Roles) and the Secret with its token. */
  const issue: Step<TokenRun> = async (run) => {
    const token = run.object;
    const name = token.metadata.name;
    const account = importAccountName(name);
    const labels = managedLabels({ [TOKEN_LABEL]: name });
    const owners = ownerRefTo(token);
    const rules = importRules();
    const [serviceAccount] = await applyObjects(ctx.kube, [
      serviceAccountObject(W, account, labels, owners),
      roleObject(W, account, rules.workspace, labels, owners),
      roleBindingObject(W, account, account, { namespace: W, name: account }, labels, owners),
      roleObject(R, account, rules.registration, labels),
      roleBindingObject(R, account, account, { namespace: W, name: account }, labels),
    ]);
    const existing = await ctx.kube.get(Ref.secret(W, name));
    const expiresText = formatTime(run.expires);
    // A token is re-issued when the ttl changed, or when its ServiceAccount was re-created (old tokens die with it).
    const issuedFor = { [TOKEN_EXPIRES_ANNOTATION]: expiresText, [ACCOUNT_UID_ANNOTATION]: serviceAccount?.metadata.uid ?? '' };
    let value = secretValue(existing, 'token');
    const annotations = existing?.metadata.annotations ?? {};
    if (!value || Object.entries(issuedFor).some(([k, v]) => annotations[k] !== v)) {
      value = (await requestToken(ctx.kube, W, account, (run.expires.getTime() - run.now.getTime()) / 1000)).token;
      log.info({ token: `${W}/${name}`, expires: expiresText }, 'issued a registration token');
    }
    const server = await apiServerInfo(ctx);
    await applyObjects(ctx.kube, [
      secretObject(W, name, { token: value, apiServerURL: server.url, apiServerCA: server.ca, namespace: W }, labels, issuedFor, owners),
    ]);
    return 'continue';
  };

  const reconcile = reconciler<ClusterRegistrationToken & KubeObject, TokenRun>({
    name: 'clusterregistrationtoken',
    log,
    now: ctx.now,
    get: async (key) => {
      const { namespace = '', name } = splitKey(key);
      return namespace === W ? await ctx.kube.get<ClusterRegistrationToken & KubeObject>(Ref.registrationToken(W, name)) : undefined;
    },
    // Objects in W are owned by the token (garbage collected); those in R cannot be, so they go here.
    gone: async (key) => {
      const { namespace = '', name } = splitKey(key);
      if (namespace === W) await deleteImportAccess(name);
    },
    start: (token, now) => ({
      object: token,
      now,
      conditions: [...(token.status?.conditions ?? [])],
      expired: false,
      expires: tokenExpiry(new Date(token.metadata.creationTimestamp ?? now), token.spec?.ttl),
    }),
    steps: () => [expiry, issue],
    status: {
      fallbackReason: Reason.Progressing,
      readiness: (run) =>
        run.expired
          ? { status: 'False', reason: Reason.TokenExpired, message: `expired at ${formatTime(run.expires)}; create a new ClusterRegistrationToken` }
          : { status: 'True', reason: Reason.Succeeded, message: `token in Secret ${run.object.metadata.name}, valid until ${formatTime(run.expires)}` },
      build: (run, conditions, error) => ({
        secretName: run.expired ? undefined : error === undefined ? run.object.metadata.name : run.object.status?.secretName,
        expires: formatTime(run.expires),
        conditions,
      }),
      writer: mergeStatusWriter(ctx.kube),
    },
    requeue: (run, error) =>
      run.expired || error !== undefined ? {} : { requeueAfterMs: Math.min(MAX_TOKEN_RECHECK_MS, run.expires.getTime() - run.now.getTime() + 1000) },
  });

  return new Controller('clusterregistrationtoken', reconcile, { log, workers: ctx.config.workers, observer: observerOf(ctx) }).watch(
    ctx.informers.registrationTokens,
  );
}

/**
 * Finds the Cluster registration `reg` is for: the Cluster in W whose spec.clientID equals the
 * registration's; else the Cluster with the name {@link clusterNameFor} gives, which must then not belong
 * to another client (a registration never takes over a cluster it does not own); else it creates it.
 * Labels from clusterLabels are applied either way.
 */
async function ensureCluster(ctx: ControllerContext, reg: ClusterRegistration & KubeObject): Promise<Cluster & KubeObject> {
  const W = ctx.config.workspaceNamespace;
  const { clientID, clusterLabels = {} } = reg.spec;
  const clusters = await ctx.kube.list<Cluster & KubeObject>({ apiVersion: API_VERSION, kind: 'Cluster', namespace: W });
  const owned = clusters.items
    .filter((c) => c.spec?.clientID === clientID)
    .sort((a, b) => (a.metadata.creationTimestamp ?? '').localeCompare(b.metadata.creationTimestamp ?? ''));
  if (owned[0]?.metadata.deletionTimestamp) {
    throw new WaitingError(
      Reason.ClusterDeleting,
      `Cluster ${W}/${owned[0].metadata.name} of this client is being deleted; registering again once it is gone`,
      { retryAfterMs: 5000 },
    );
  }
  let name = owned[0]?.metadata.name;
  if (!name) {
    name = clusterNameFor(clientID, clusterLabels);
    if (name.length > 63 || !DNS_SUBDOMAIN.test(name)) {
      throw new StallingError(
        Reason.InvalidSpec,
        `ClusterRegistration ${W}/${reg.metadata.name}: cluster name "${name}" from label ${CLUSTER_NAME_LABEL} is not a DNS-1123 name of at most 63 characters`,
      );
    }
    const taken = clusters.items.find((c) => c.metadata.name === name);
    if (taken) {
      throw new StallingError(
        Reason.ClusterNameTaken,
        `ClusterRegistration ${W}/${reg.metadata.name}: Cluster ${name} already exists for another client; ` +
          `set its spec.clientID to this client's ID to let the agent register into it, or choose another ${CLUSTER_NAME_LABEL}`,
      );
    }
  }
  try {
    return await ctx.kube.apply<Cluster & KubeObject>(
      { apiVersion: API_VERSION, kind: 'Cluster', metadata: { name, namespace: W, labels: clusterLabels }, spec: { clientID } },
      CONTROLLER_FIELD_MANAGER,
    );
  } catch (err) {
    if (isStatus(err, 422))
      throw new StallingError(Reason.InvalidSpec, `ClusterRegistration ${W}/${reg.metadata.name}: ${(err as Error).message}`, { cause: err });
    throw err;
  }
}

/** Applies the agent's ServiceAccount and Roles for `cluster` (registration step 4). */
async function ensureAgentAccess(ctx: ControllerContext, cluster: Cluster & KubeObject, clusterNs: string): Promise<void> {
  const W = ctx.config.workspaceNamespace;
  const name = cluster.metadata.name;
  const labels = managedLabels({ [Label.Cluster]: name, [Label.ClusterNamespace]: W });
  const rules = agentRules(name);
  const workspaceName = boundedName(`flotilla-agent-${name}`, 253);
  const subject = { namespace: clusterNs, name: AGENT_SERVICE_ACCOUNT };
  await applyObjects(ctx.kube, [
    serviceAccountObject(clusterNs, AGENT_SERVICE_ACCOUNT, labels),
    roleObject(clusterNs, AGENT_SERVICE_ACCOUNT, rules.clusterNamespace, labels),
    roleBindingObject(clusterNs, AGENT_SERVICE_ACCOUNT, AGENT_SERVICE_ACCOUNT, subject, labels),
    roleObject(W, workspaceName, rules.workspace, labels, ownerRefTo(cluster)),
    roleBindingObject(W, workspaceName, workspaceName, subject, labels, ownerRefTo(cluster)),
  ]);
}

/**
 * Deletes the ClusterRegistrations of the same client older than `reg` (just granted), and their credential
 * Secrets. Creation times have a resolution of one second: within the same second, only registrations
 * already granted count as older, so that a newer request still waiting is never removed.
 */
async function deleteOlderRegistrations(ctx: ControllerContext, reg: ClusterRegistration & KubeObject): Promise<void> {
  const W = ctx.config.workspaceNamespace;
  const all = await ctx.kube.list<ClusterRegistration & KubeObject>({ apiVersion: API_VERSION, kind: 'ClusterRegistration', namespace: W });
  const created = (r: KubeObject): number => Date.parse(r.metadata.creationTimestamp ?? '') || 0;
  for (const old of all.items) {
    if (old.spec.clientID !== reg.spec.clientID || old.metadata.name === reg.metadata.name) continue;
    const older = created(old) < created(reg) || (created(old) === created(reg) && old.status?.granted === true);
    if (!older) continue;
    await ctx.kube.delete(Ref.registration(W, old.metadata.name));
    await ctx.kube.delete(Ref.secret(ctx.config.registrationNamespace, old.metadata.name));
  }
}

/** Sets up the ClusterRegistration reconciler (registration step 4). */
export function setupRegistrationController(ctx: ControllerContext): Controller {
  const log = ctx.log.child({ controller: 'clusterregistration' });
  const W = ctx.config.workspaceNamespace;
  const R = ctx.config.registrationNamespace;

  /** Registration step 4: the Cluster, its namespace, the agent's access and its credential. */
  const grant: Step<RegistrationRun> = async (run) => {
    const reg = run.object;
    const name = reg.metadata.name;
    const cluster = await ensureCluster(ctx, reg);
    const clusterName = cluster.metadata.name;
    const clusterNs = await ensureClusterNamespace(ctx, W, clusterName);
    await ensureAgentAccess(ctx, cluster, clusterNs);
    const issued = await requestToken(ctx.kube, clusterNs, AGENT_SERVICE_ACCOUNT, ctx.config.agentTokenTtl / 1000);
    const expires = formatTime(issued.expires);
    await applyObjects(ctx.kube, [
      secretObject(
        R,
        name,
        { token: issued.token, clusterName, clusterNamespace: clusterNs, expires },
        managedLabels({ [Label.Cluster]: clusterName, [Label.ClusterNamespace]: W }),
        { [TOKEN_EXPIRES_ANNOTATION]: expires },
      ),
    ]);
    if (cluster.status?.namespace !== clusterNs) await ctx.kube.patchStatus(Ref.cluster(W, clusterName), { namespace: clusterNs });
    run.granted = { clusterName, clusterNs, expires };
    return 'continue';
  };

  const reconcile = reconciler<ClusterRegistration & KubeObject, RegistrationRun>({
    name: 'clusterregistration',
    log,
    now: ctx.now,
    get: async (key) => {
      const { namespace = '', name } = splitKey(key);
      return namespace === W ? await ctx.kube.get<ClusterRegistration & KubeObject>(Ref.registration(W, name)) : undefined;
    },
    // The credential Secret lives in R and cannot be owned by the registration: remove it here.
    gone: async (key) => {
      const { namespace = '', name } = splitKey(key);
      if (namespace === W) await ctx.kube.delete(Ref.secret(R, name));
    },
    // Granted once: a registration is never processed again.
    suspended: (reg) => reg.status?.granted === true,
    start: (reg, now) => ({ object: reg, now, conditions: [...(reg.status?.conditions ?? [])] }),
    steps: () => [grant],
    status: {
      fallbackReason: Reason.RegistrationPending,
      readiness: (run, error) =>
        run.granted
          ? { status: 'True', reason: Reason.Succeeded, message: `granted as Cluster ${run.granted.clusterName}` }
          : {
              status: 'False',
              reason: reasonOf(error, Reason.RegistrationPending),
              progressing: true,
              message: error === undefined ? 'waiting for the controller to grant the request' : messageOf(error),
            },
      build: (run, conditions) =>
        run.granted
          ? { clusterName: run.granted.clusterName, granted: true, secretName: run.object.metadata.name, conditions }
          : { ...run.object.status, conditions },
      writer: mergeStatusWriter(ctx.kube),
      transitions: async (run) => {
        if (!run.granted) return;
        const { clusterName, clusterNs, expires } = run.granted;
        log.info({ registration: `${W}/${run.object.metadata.name}`, cluster: clusterName, clusterNamespace: clusterNs, expires }, 'registration granted');
        void ctx.events.emit(
          run.object,
          'Normal',
          'Registered',
          `registered cluster ${clusterName} (namespace ${clusterNs}); credential in Secret ${R}/${run.object.metadata.name}`,
        );
        await deleteOlderRegistrations(ctx, run.object);
      },
    },
  });

  return new Controller('clusterregistration', reconcile, { log, workers: ctx.config.workers, observer: observerOf(ctx) }).watch(ctx.informers.registrations);
}
