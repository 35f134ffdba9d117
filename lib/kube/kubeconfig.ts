import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { isIPv6 } from 'node:net';
import { dirname, isAbsolute, join } from 'node:path';
import yaml from 'js-yaml';
import { StallingError } from '../errors.js';
import { Reason } from '../api/constants.js';

/**
 * Kubeconfigs without @kubernetes/client-node. Importing client-node loads its whole generated API (about
 * 800 modules, 70-80 MiB of resident memory in every process), while {@link KubeClient} needs only the
 * current cluster's address and TLS material and the request headers. This module reads what the
 * controller and agent meet in practice (a kubeconfig file with certificates, a token or a token file;
 * in-cluster ServiceAccount credentials; an in-memory upstream config) and falls back to client-node,
 * imported only then, for users authenticated by an `exec` plugin or an `auth-provider` (OIDC, cloud
 * plugins), so that they keep working exactly as before.
 */

/** TLS and header options, the shape of Node's https options that {@link KubeAccess} fills in. */
export interface KubeHttpsOptions {
  ca?: unknown;
  cert?: unknown;
  key?: unknown;
  rejectUnauthorized?: boolean;
  servername?: string;
  headers?: unknown;
}

/**
 * What a Kubernetes client needs from a kubeconfig: its current cluster, and TLS options plus headers
 * (credentials) for each request. client-node's `KubeConfig` has the same two methods, so it fits too.
 */
export interface KubeAccess {
  getCurrentCluster(): { server: string; skipTLSVerify: boolean } | null;
  applyToHTTPSOptions(opts: KubeHttpsOptions): Promise<void>;
}

/** One cluster and one user, resolved (file paths absolute, token files read on demand). */
export interface KubeTarget {
  server: string;
  skipTLSVerify?: boolean;
  tlsServerName?: string;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  /** The bearer token, read for every request (so a rotated token file or a renewed token is used). */
  token?: () => string;
  basic?: { username: string; password: string };
  impersonateUser?: string;
}

/** How long a token read from a file is used before it is read again (projected tokens rotate). */
export const TOKEN_FILE_REREAD_MS = 60_000;

/** A {@link KubeAccess} for one resolved target. */
export function kubeAccessOf(t: KubeTarget): KubeAccess {
  return {
    getCurrentCluster: () => ({ server: t.server, skipTLSVerify: t.skipTLSVerify ?? false }),
    applyToHTTPSOptions: async (opts) => {
      if (t.skipTLSVerify) opts.rejectUnauthorized = false;
      if (t.tlsServerName) opts.servername = t.tlsServerName;
      if (t.ca) opts.ca = t.ca;
      if (t.cert) opts.cert = t.cert;
      if (t.key) opts.key = t.key;
      const headers = (opts.headers ?? {}) as Record<string, string>;
      const token = t.token?.();
      if (token) headers.Authorization = `Bearer ${token}`;
      else if (t.basic) headers.Authorization = `Basic ${Buffer.from(`${t.basic.username}:${t.basic.password}`).toString('base64')}`;
      if (t.impersonateUser) headers['Impersonate-User'] = t.impersonateUser;
      opts.headers = headers;
    },
  };
}

/** A token read from `file`, read again after {@link TOKEN_FILE_REREAD_MS}; `now` for tests. */
export function tokenFromFile(file: string, now: () => number = Date.now): () => string {
  let cached: { token: string; at: number } | undefined;
  return () => {
    if (!cached || now() - cached.at >= TOKEN_FILE_REREAD_MS) cached = { token: readFileSync(file, 'utf8').trim(), at: now() };
    return cached.token;
  };
}

type Entry = Record<string, unknown>;

function named(list: unknown, name: string | undefined, what: string, file: string): Entry {
  const found = Array.isArray(list) ? (list as { name?: unknown; [k: string]: unknown }[]).find((e) => e?.name === name) : undefined;
  const body = found?.[what];
  if (!body || typeof body !== 'object') {
    throw new StallingError(
      Reason.InvalidKubeconfig,
      `kubeconfig ${file}: the current context needs ${what} "${name ?? ''}", which is not in the file; fix the file or pass another --kubeconfig`,
    );
  }
  return body as Entry;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/** The current context's cluster and user of a parsed kubeconfig, or `undefined` when the user needs client-node (exec, auth-provider). */
export function targetOfKubeconfig(doc: unknown, file: string, read: (path: string) => Buffer = readFileSync): KubeTarget | undefined {
  const root = (doc ?? {}) as Entry;
  const contextName = str(root['current-context']);
  if (!contextName) throw new StallingError(Reason.InvalidKubeconfig, `kubeconfig ${file} has no current-context; set one (kubectl config use-context)`);
  const context = named(root.contexts, contextName, 'context', file);
  const cluster = named(root.clusters, str(context.cluster), 'cluster', file);
  const user = str(context.user) === undefined ? {} : named(root.users, str(context.user), 'user', file);
  if (user.exec || user['auth-provider']) return undefined;
  const server = str(cluster.server);
  if (!server) throw new StallingError(Reason.InvalidKubeconfig, `kubeconfig ${file}: cluster "${String(context.cluster)}" has no server; add its URL`);
  const abs = (p: string) => (isAbsolute(p) ? p : join(dirname(file), p));
  const material = (path: unknown, data: unknown): Buffer | undefined => {
    const p = str(path);
    if (p) return read(abs(p));
    const d = str(data);
    return d ? Buffer.from(d, 'base64') : undefined;
  };
  const tokenFile = str(user.tokenFile) ?? str(user['token-file']);
  const token = str(user.token);
  const username = str(user.username);
  return {
    server,
    skipTLSVerify: cluster['insecure-skip-tls-verify'] === true,
    tlsServerName: str(cluster['tls-server-name']),
    ca: material(cluster['certificate-authority'], cluster['certificate-authority-data']),
    cert: material(user['client-certificate'], user['client-certificate-data']),
    key: material(user['client-key'], user['client-key-data']),
    token: token ? () => token : tokenFile ? tokenFromFile(abs(tokenFile)) : undefined,
    basic: username ? { username, password: str(user.password) ?? '' } : undefined,
    impersonateUser: str(user.as),
  };
}

/** What the fallback needs of client-node (a parameter so that tests can hand in the module they imported). */
type ClientNode = { KubeConfig: new () => KubeAccess & { loadFromFile(file: string): void } };

/** Reads a kubeconfig file; exec and auth-provider users go through client-node, imported only for them. */
export async function loadKubeConfigFile(file: string, clientNode: () => Promise<ClientNode> = () => import('@kubernetes/client-node')): Promise<KubeAccess> {
  let doc: unknown;
  try {
    doc = yaml.load(await readFile(file, 'utf8'));
  } catch (err) {
    throw new StallingError(Reason.InvalidKubeconfig, `cannot read the kubeconfig ${file}: ${(err as Error).message}; check --kubeconfig`, { cause: err });
  }
  const target = targetOfKubeconfig(doc, file);
  if (target) return kubeAccessOf(target);
  const { KubeConfig } = await clientNode();
  const kc = new KubeConfig();
  kc.loadFromFile(file);
  return kc;
}

/** Where a pod's ServiceAccount credentials are mounted. */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** The in-cluster credentials (KUBERNETES_SERVICE_HOST/PORT and the mounted ServiceAccount token and CA), as client-node's loadFromCluster reads them. */
export function inClusterTarget(env: NodeJS.ProcessEnv = process.env, dir = SERVICE_ACCOUNT_DIR): KubeTarget {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port) {
    throw new StallingError(
      Reason.InvalidKubeconfig,
      'not running in a cluster (KUBERNETES_SERVICE_HOST/PORT unset) and no --kubeconfig given; pass --kubeconfig',
    );
  }
  const scheme = ['80', '8080', '8001'].includes(port) ? 'http' : 'https';
  const server = `${scheme}://${isIPv6(host) ? `[${host}]` : host}:${port}`;
  return { server, ca: readFileSync(join(dir, 'ca.crt')), token: tokenFromFile(join(dir, 'token')) };
}

/** The kubeconfig of a process: `file` when given, else the in-cluster ServiceAccount. */
export async function loadKubeAccess(file: string | undefined): Promise<KubeAccess> {
  return file ? await loadKubeConfigFile(file) : kubeAccessOf(inClusterTarget());
}
