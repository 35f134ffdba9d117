import { expect } from 'chai';
import type { GitRepo } from '../lib/api/index.js';
import type { KubeClient, KubeObject } from '../lib/kube/client.js';
import { encodeSecretData } from '../lib/kube/secret.js';
import { ChartScope, type ChartSource } from '../lib/render/chartsource.js';
import type { ChartFetcher } from '../lib/render/remotecharts.js';
import type { LoadedBundle } from '../lib/bundle/index.js';
import { parseFleetYaml } from '../lib/api/fleetyaml.js';
import { chartAccessOf, withCommitCharts } from './charts.js';

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

describe("a commit's remote charts", () => {
  it('are fetched with one scope for the whole commit, so each repository index is read once per commit', async () => {
    const scopes: unknown[] = [];
    const fetch: ChartFetcher = async (_source, _access, _what, scope) => {
      scopes.push(scope);
      return { name: 'web', version: '1.0.0', files: [{ path: 'Chart.yaml', content: Buffer.from('apiVersion: v2\nname: web\nversion: 1.0.0\n') }] };
    };
    const bundle = (name: string): LoadedBundle => ({
      name,
      dir: name,
      fleetYaml: parseFleetYaml('helm:\n  repo: https://charts.example\n  chart: web\n', `${name}/fleet.yaml`),
      files: [],
    });
    const commit = async () => await withCommitCharts(secrets({}), repo({}), [bundle('one'), bundle('two')], {}, fetch);
    await commit();
    expect(scopes).to.have.length(2);
    expect(scopes[0]).to.be.instanceOf(ChartScope);
    expect(scopes[1], 'the same scope for both bundles').to.equal(scopes[0]);
    await commit();
    expect(scopes[2], 'a new scope for the next commit').to.not.equal(scopes[0]);
  });
});
