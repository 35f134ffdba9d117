import { API_VERSION, type GitRepo, type GitRepoSpec } from '../../lib/api/index.js';
import type { KubeClient, KubeObject } from '../../lib/kube/client.js';
import type { GitServer } from '../../stack/git.js';
import { waitFor } from '../../stack/net.js';
import type { RegistryHandle } from '../../stack/registry.js';
import type { Fleet } from './processes.js';

/** Name of the basic-auth Secret for the stack's git server that {@link applyCredentials} writes. */
export const GIT_AUTH_SECRET = 'git-auth';
/** Name of the registry credential Secret that {@link applyCredentials} writes when given a registry. */
export const REGISTRY_AUTH_SECRET = 'registry-auth';

/**
 * Writes the Secrets an e2e GitRepo in `namespace` needs: the git server's basic-auth credentials and,
 * when `registry` is given, the registry's (empty strings for a registry without authentication).
 */
export async function applyCredentials(kube: KubeClient, namespace: string, manager: string, git: GitServer, registry?: RegistryHandle): Promise<void> {
  await kube.apply(
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: GIT_AUTH_SECRET, namespace },
      type: 'kubernetes.io/basic-auth',
      stringData: { username: git.username, password: git.password },
    },
    manager,
  );
  if (!registry) return;
  await kube.apply(
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: REGISTRY_AUTH_SECRET, namespace },
      stringData: { username: registry.username ?? '', password: registry.password ?? '' },
    },
    manager,
  );
}

/**
 * The `ociRegistry` section for `registry` under `path`: plain HTTP says basicHTTP; TLS carries the
 * stack's CA; a registry with credentials names {@link REGISTRY_AUTH_SECRET}.
 */
export function ociRegistryFor(registry: RegistryHandle, path: string): NonNullable<GitRepoSpec['ociRegistry']> {
  return {
    reference: `${registry.host}/${path}`,
    ...(registry.url.startsWith('http://') ? { basicHTTP: true } : {}),
    ...(registry.caPem ? { caBundle: Buffer.from(registry.caPem).toString('base64') } : {}),
    ...(registry.username ? { authSecretName: REGISTRY_AUTH_SECRET } : {}),
  };
}

/**
 * A GitRepo `name` in `namespace` on the stack's git repository `repo`: branch main, the git-auth
 * Secret, a 2 s polling interval and every cluster as target unless `spec` says otherwise.
 */
export function gitRepoObject(name: string, namespace: string, git: GitServer, repo: string, spec: Partial<GitRepoSpec>): KubeObject {
  return {
    apiVersion: API_VERSION,
    kind: 'GitRepo',
    metadata: { name, namespace },
    spec: {
      repo: `${git.url}/${repo}.git`,
      branch: 'main',
      clientSecretName: GIT_AUTH_SECRET,
      pollingInterval: '2s',
      targets: [{ clusterSelector: {} }],
      ...spec,
    },
  };
}

/**
 * Waits until GitRepo `namespace/name` is Ready at `commit` (its status.commit is that commit and its
 * Ready condition True), checking the fleet's processes are alive at each poll; a timeout names the last
 * commit and Ready message seen and where the logs are.
 */
export async function gitRepoReadyAt(fleet: Fleet, namespace: string, name: string, commit: string, timeoutMs: number): Promise<void> {
  let last = '';
  await waitFor(
    async () => {
      await fleet.assertAlive();
      const r = await fleet.upstream.get<GitRepo & KubeObject>({ apiVersion: API_VERSION, kind: 'GitRepo', namespace, name });
      const ready = r?.status?.conditions?.find((c) => c.type === 'Ready');
      last = `commit ${r?.status?.commit?.slice(0, 12) ?? '-'}, Ready: ${ready?.status ?? '-'} ${ready?.message ?? ''}`;
      return (r?.status?.commit === commit && ready?.status === 'True') || undefined;
    },
    { what: `GitRepo ${name} Ready at ${commit.slice(0, 12)}`, timeoutMs, intervalMs: 500, context: () => `${last}; logs in ${fleet.logDir}` },
  );
}
