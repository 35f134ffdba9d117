import { expect } from 'chai';
import pino from 'pino';
import type { RegistryMirror } from '../lib/api/index.js';
import { TransientError, WaitingError } from '../lib/errors.js';
import type { KubeClient, KubeObject } from '../lib/kube/client.js';
import { ArtifactError, RegistryRefusedError, RegistryUnavailableError, buildMirrorMap, mirrorRoute, type RegistryClientOptions } from '../lib/oci/index.js';
import { bootstrapMirrorsOf, parseAgentConfig } from './config.js';
import { translatePullError } from './content.js';
import { AgentMirrors, pullThroughMirror, type MirrorPull } from './mirrors.js';

const log = pino({ level: 'silent' });
const DIGEST = `sha256:${'c'.repeat(64)}`;
const BLOB = `sha256:${'d'.repeat(64)}`;
const ORIGIN = 'registry.example.com:5000';
const REF = `${ORIGIN}/flotilla/ws-app@${DIGEST}`;

function route(extra: Partial<RegistryMirror> = {}) {
  const r = mirrorRoute(buildMirrorMap({ bootstrap: [{ registry: ORIGIN, mirror: 'mirror.local:6000', ...extra }] }), REF);
  if (!r) throw new Error('no route');
  return r;
}

/** A pull through the mirror failing with `err` (or succeeding), recording what was called. */
function pullCase(err: Error | undefined, extra: Partial<RegistryMirror> = {}) {
  const calls: string[] = [];
  const p: MirrorPull<string> = {
    route: route(extra),
    what: 'BundleDeployment c-ns/app (bundle app)',
    credentials: async () => ({ username: 'mirror-user', password: 'mirror-pass' }),
    pull: async (options: RegistryClientOptions, reference: string) => {
      calls.push(`mirror ${options.registry} ${reference} as ${options.credentials?.username ?? 'anonymous'}`);
      if (err) throw err;
      return 'from mirror';
    },
    origin: async () => {
      calls.push('origin');
      return 'from origin';
    },
    translate: translatePullError,
    log,
  };
  return { p, calls };
}

async function failure(p: Promise<unknown>): Promise<Error> {
  return await p.then(
    () => {
      throw new Error('expected a failure');
    },
    (e: unknown) => e as Error,
  );
}

describe('registry mirrors in the agent', () => {
  it('pulls the same pinned digest from the mirror with the mirror credentials', async () => {
    const { p, calls } = pullCase(undefined);
    expect(await pullThroughMirror(p)).to.equal('from mirror');
    expect(calls).to.deep.equal([`mirror mirror.local:6000 mirror.local:6000/flotilla/ws-app@${DIGEST} as mirror-user`]);
  });

  it('refuses a mirror serving other bytes, naming the object, the mirror and the blob, without trying the origin', async () => {
    const tampered = new ArtifactError('ArtifactTampered', `bundle x: layer "cm.yaml": digest mismatch: expected ${BLOB}, got sha256:${'e'.repeat(64)}`);
    const { p, calls } = pullCase(tampered);
    const err = await failure(pullThroughMirror(p));
    expect(err).to.be.instanceOf(TransientError);
    expect((err as TransientError).reason).to.equal('ArtifactTampered');
    expect(err.message)
      .to.include('BundleDeployment c-ns/app (bundle app)')
      .and.include('https://mirror.local:6000')
      .and.include(BLOB)
      .and.include('origin is not used');
    expect(calls).to.not.include('origin');
  });

  it('falls back to the origin only when the mirror is unreachable, unless originFallback is false', async () => {
    const down = () =>
      new RegistryUnavailableError('cannot reach registry mirror.local:6000: ECONNREFUSED', { registry: 'mirror.local:6000', code: 'ECONNREFUSED' });
    const fallback = pullCase(down());
    expect(await pullThroughMirror(fallback.p)).to.equal('from origin');
    expect(fallback.calls.at(-1)).to.equal('origin');

    const strict = pullCase(down(), { originFallback: false });
    const err = await failure(pullThroughMirror(strict.p));
    expect((err as TransientError).reason).to.equal('RegistryUnreachable');
    expect(err.message).to.include('through registry mirror https://mirror.local:6000');
    expect(strict.calls).to.not.include('origin');
  });

  it('does not fall back on a refusal by the mirror, and retries it (the mirror may be fixed)', async () => {
    const refused = new RegistryRefusedError('UNAUTHORIZED', { registry: 'mirror.local:6000', code: 'UNAUTHORIZED', status: 401 });
    const { p, calls } = pullCase(refused);
    const err = await failure(pullThroughMirror(p));
    expect(err).to.be.instanceOf(TransientError);
    expect((err as TransientError).reason).to.equal('AuthenticationFailed');
    expect(err.message).to.include('BundleDeployment c-ns/app').and.include('mirror.local:6000');
    expect(calls).to.not.include('origin');
  });

  it('reads mirror credentials downstream for bootstrap entries and upstream for Cluster entries', async () => {
    const reads: string[] = [];
    const kube = (side: string): KubeClient =>
      ({
        get: async (ref: { namespace: string; name: string }) => {
          reads.push(`${side} ${ref.namespace}/${ref.name}`);
          return ref.name === 'missing' ? undefined : ({ type: 'Opaque', data: { username: 'dXNlcg==', password: 'cGFzcw==' } } as unknown as KubeObject);
        },
      }) as unknown as KubeClient;
    const mirrors = new AgentMirrors({ bootstrap: [{ registry: ORIGIN, mirror: 'm.local', authSecretName: 'boot-auth' }], agentNamespace: 'agent-ns', log });
    const readers = { downstream: kube('downstream'), upstream: kube('upstream'), clusterNamespace: 'cluster-ns' };
    const boot = mirrors.map().byRegistry.get(ORIGIN);
    expect(await mirrors.credentials(boot!, readers)).to.deep.equal({ username: 'user', password: 'pass' });
    mirrors.update([{ registry: ORIGIN, mirror: 'c.local', authSecretName: 'missing' }]);
    const fromCluster = mirrors.map().byRegistry.get(ORIGIN);
    expect(fromCluster?.source).to.equal('cluster');
    const err = await failure(mirrors.credentials(fromCluster!, readers));
    expect(err).to.be.instanceOf(WaitingError);
    expect(err.message).to.include('cluster-ns/missing').and.include('https://c.local');
    expect(reads).to.deep.equal(['downstream agent-ns/boot-auth', 'upstream cluster-ns/missing']);
    mirrors.update(undefined);
    expect(mirrors.status()).to.deep.equal([
      { registry: ORIGIN, mirror: 'https://m.local', source: 'bootstrap', authSecretName: 'boot-auth', originFallback: true },
    ]);
  });

  it('reads bootstrap mirrors from the flag or the file, not both', async () => {
    const list = '[{"registry":"r.example.com","mirror":"m.local"}]';
    const none = async () => '';
    expect(await bootstrapMirrorsOf(parseAgentConfig([`--registry-mirrors=${list}`], {}), none)).to.deep.equal([
      { registry: 'r.example.com', mirror: 'm.local' },
    ]);
    const fromFile = await bootstrapMirrorsOf(parseAgentConfig(['--registry-mirrors-file', '/etc/m.yaml'], {}), async (path) =>
      path === '/etc/m.yaml' ? '- {registry: r.example.com, mirror: m.local}\n' : '',
    );
    expect(fromFile).to.deep.equal([{ registry: 'r.example.com', mirror: 'm.local' }]);
    expect(await bootstrapMirrorsOf(parseAgentConfig([], {}), none)).to.deep.equal([]);
    const both = parseAgentConfig([`--registry-mirrors=${list}`, '--registry-mirrors-file=/x'], {});
    expect(await failure(bootstrapMirrorsOf(both, none))).to.match(/not both/);
    const unreadable = parseAgentConfig(['--registry-mirrors-file=/nope'], {});
    expect(await failure(bootstrapMirrorsOf(unreadable, () => Promise.reject(new Error('ENOENT'))))).to.match(
      /cannot read --registry-mirrors-file \/nope: ENOENT/,
    );
  });
});
