import { expect } from 'chai';
import type { GitRepo } from '../lib/api/index.js';
import type { KubeClient, KubeObject } from '../lib/kube/client.js';
import { encodeSecretData } from '../lib/kube/secret.js';
import type { ChartSource } from '../lib/render/chartsource.js';
import { chartAccessOf } from './charts.js';

/** A `get` serving the given Secrets of namespace ws. */
function secrets(byName: Record<string, Record<string, string>>): Pick<KubeClient, 'get'> {
  return {
    get: (async (ref: { name: string; namespace?: string }) => {
      const data = ref.namespace === 'ws' ? byName[ref.name] : undefined;
      return data ? { apiVersion: 'v1', kind: 'Secret', metadata: { name: ref.name, namespace: 'ws' }, data: encodeSecretData(data) } : undefined;
    }) as Pick<KubeClient, 'get'>['get'],
  };
}

function repo(spec: Partial<GitRepo['spec']>): GitRepo & KubeObject {
  return {
    apiVersion: 'flotilla.dev/v1alpha1',
    kind: 'GitRepo',
    metadata: { name: 'apps', namespace: 'ws' },
    spec: { repo: 'https://git.example/apps', ...spec },
  } as GitRepo & KubeObject;
}

const source: ChartSource = { kind: 'repo', repo: 'https://charts.example', chart: 'web' };

describe("the GitRepo's chart credentials", () => {
  const kube = secrets({
    single: { username: 'one', password: 'p1' },
    paths: { 'secrets-path.yaml': 'apps/web:\n  username: web\n  password: p2\n' },
  });

  it('helmSecretName: the same credentials for every bundle', async () => {
    const access = await chartAccessOf(kube, repo({ helmSecretName: 'single' }));
    expect(access(source, 'apps/web')).to.include({ username: 'one', password: 'p1' });
    expect(access(source, 'apps/db')).to.include({ username: 'one', password: 'p1' });
  });

  it('helmSecretNameForPaths: credentials per bundle folder, and helmSecretName is ignored, as in Fleet', async () => {
    const access = await chartAccessOf(kube, repo({ helmSecretName: 'single', helmSecretNameForPaths: 'paths' }));
    expect(access(source, 'apps/web')).to.include({ username: 'web', password: 'p2' });
    expect(access(source, 'apps/db')).to.deep.equal({ insecureSkipTLSVerify: false });
  });

  it('helmSecretNameForPaths naming a Secret that does not exist waits for it, naming it', async () => {
    const err = await chartAccessOf(kube, repo({ helmSecretNameForPaths: 'missing' })).catch((e: unknown) => e);
    expect((err as { reason?: string }).reason).to.equal('SecretNotFound');
    expect((err as Error).message).to.include('Secret ws/missing (helmSecretNameForPaths) does not exist');
  });
});
