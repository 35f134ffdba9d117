import { expect } from 'chai';
import { API_VERSION, Reason, type GitRepo, type GitRepoSpec } from '../lib/api/index.js';
import { StallingError, WaitingError, reasonOf } from '../lib/errors.js';
import type { KubeObject } from '../lib/kube/client.js';
import { encodeSecretData } from '../lib/kube/secret.js';
import { localRegistryHostingConfigMap, parseLocalRegistryHosting } from './discovery.js';
import { normalizeReference, resolveStorage, storageFromSecret, type ResolvedStorage } from './storageconfig.js';
import { FakeKube } from './testing.js';

/**
 * Storage resolution (controller/storageconfig.ts) and KEP-1755 parsing (controller/discovery.ts) as case
 * tables on the in-memory API server of controller/testing.ts.
 */

const NS = 'fleet-local';
const FLEET_TYPE = 'fleet.cattle.io/bundle-oci-storage/v1alpha1';

function repo(spec: Partial<GitRepoSpec>): GitRepo & KubeObject {
  return {
    apiVersion: API_VERSION,
    kind: 'GitRepo',
    metadata: { name: 'app', namespace: NS },
    spec: { repo: 'https://git.example/a.git', ...spec },
  } as GitRepo & KubeObject;
}

function secret(name: string, type: string | undefined, values: Record<string, string>): KubeObject {
  return { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: NS }, ...(type ? { type } : {}), data: encodeSecretData(values) } as KubeObject;
}

async function resolve(spec: Partial<GitRepoSpec>, objects: KubeObject[], hostField: 'host' | 'hostFromClusterNetwork' = 'host'): Promise<ResolvedStorage> {
  const kube = new FakeKube();
  for (const o of objects) kube.seed(o);
  return await resolveStorage(repo(spec), { kube, hostField, pushCredentials: async () => undefined });
}

async function failure(p: Promise<unknown>): Promise<Error> {
  return await p.then(
    () => {
      throw new Error('expected a failure, got success');
    },
    (e: unknown) => e as Error,
  );
}

const hosting = localRegistryHostingConfigMap({ host: 'localhost:5001', hostFromClusterNetwork: 'kind-registry:5000', help: 'https://kind.sigs.k8s.io' });

describe('storage resolution: precedence', () => {
  const named = secret('team-registry', FLEET_TYPE, { reference: 'named.example:5000/team' });
  const fallback = secret('ocistorage', 'flotilla.dev/bundle-oci-storage/v1alpha1', { reference: 'fallback.example:5000' });
  const cases: [string, Partial<GitRepoSpec>, KubeObject[], string, string][] = [
    [
      'ociRegistry wins over everything',
      { ociRegistry: { reference: 'spec.example/x' }, ociRegistrySecret: 'team-registry' },
      [named, fallback, hosting],
      'ociRegistry',
      'spec.example/x',
    ],
    [
      'ociRegistry without reference discovers the registry',
      { ociRegistry: { basicHTTP: true }, ociRegistrySecret: 'team-registry' },
      [named, hosting],
      'discovery',
      'localhost:5001/flotilla',
    ],
    ['ociRegistrySecret comes before ocistorage', { ociRegistrySecret: 'team-registry' }, [named, fallback], 'ociRegistrySecret', 'named.example:5000/team'],
    ['the ocistorage Secret is the namespace-wide fallback', {}, [fallback, named], 'ocistorage', 'fallback.example:5000/flotilla'],
    ['etcd when nothing names a registry', {}, [named, hosting], 'default', 'etcd'],
  ];
  for (const [name, spec, objects, source, where] of cases) {
    it(name, async () => {
      const storage = await resolve(spec, objects);
      expect(storage.source).to.equal(source);
      expect(storage.mode === 'oci' ? storage.registry.reference : 'etcd').to.equal(where);
    });
  }

  it('keeps the basicHTTP of ociRegistry on a discovered registry, and uses the configured host field', async () => {
    const storage = await resolve({ ociRegistry: { basicHTTP: true } }, [hosting], 'hostFromClusterNetwork');
    expect(storage).to.deep.include({ mode: 'oci', source: 'discovery' });
    expect(storage.mode === 'oci' && storage.registry).to.deep.equal({ basicHTTP: true, reference: 'kind-registry:5000/flotilla' });
  });
});

describe('storage resolution: bad input never falls back to etcd', () => {
  const cases: [string, Partial<GitRepoSpec>, KubeObject[], string, RegExp][] = [
    [
      'a named Secret that does not exist',
      { ociRegistrySecret: 'nope' },
      [],
      Reason.StorageSecretInvalid,
      /Secret fleet-local\/nope \(spec.ociRegistrySecret\) does not exist/,
    ],
    [
      'a named Secret of the wrong type',
      { ociRegistrySecret: 'plain' },
      [secret('plain', 'Opaque', { reference: 'r.example/x' })],
      Reason.StorageSecretInvalid,
      /has type Opaque, not fleet.cattle.io\/bundle-oci-storage\/v1alpha1/,
    ],
    [
      'an ocistorage Secret of the wrong type',
      {},
      [secret('ocistorage', 'kubernetes.io/basic-auth', { reference: 'r.example/x' })],
      Reason.StorageSecretInvalid,
      /ocistorage Secret\) has type kubernetes.io\/basic-auth/,
    ],
    [
      'a malformed reference',
      { ociRegistrySecret: 's' },
      [secret('s', FLEET_TYPE, { reference: 'oci://r.example/x' })],
      Reason.StorageSecretInvalid,
      /key reference is not/,
    ],
    [
      'a reference with a tag',
      { ociRegistrySecret: 's' },
      [secret('s', FLEET_TYPE, { reference: 'r.example/x:v1' })],
      Reason.StorageSecretInvalid,
      /key reference is not/,
    ],
    ['no reference', { ociRegistrySecret: 's' }, [secret('s', FLEET_TYPE, { username: 'u' })], Reason.StorageSecretInvalid, /has no key reference/],
    [
      'a flag that is not a boolean',
      { ociRegistrySecret: 's' },
      [secret('s', FLEET_TYPE, { reference: 'r.example', basicHTTP: 'yes' })],
      Reason.StorageSecretInvalid,
      /basicHTTP must be "true" or "false"/,
    ],
    [
      'cacerts without a certificate',
      { ociRegistrySecret: 's' },
      [secret('s', FLEET_TYPE, { reference: 'r.example', cacerts: 'hello' })],
      Reason.StorageSecretInvalid,
      /cacerts holds no PEM/,
    ],
    ['discovery without the ConfigMap', { ociRegistry: {} }, [], Reason.RegistryDiscoveryFailed, /local-registry-hosting \(KEP-1755\) does not exist/],
  ];
  for (const [name, spec, objects, reason, message] of cases) {
    it(`stalls or waits on ${name}, naming it`, async () => {
      const err = await failure(resolve(spec, objects));
      expect(err).to.be.instanceOf(reason === Reason.RegistryDiscoveryFailed && name.includes('without') ? WaitingError : StallingError);
      expect(reasonOf(err, '')).to.equal(reason);
      expect(err.message).to.match(message);
    });
  }

  it('never puts a Secret value in its message', async () => {
    const err = await failure(
      resolve({ ociRegistrySecret: 's' }, [secret('s', FLEET_TYPE, { reference: 'r.example', password: 'Sup3r-secret', insecureSkipTLS: 'Sup3r-secret' })]),
    );
    expect(err.message).to.not.include('Sup3r-secret');
  });
});

describe('storage Secret contents (Fleet keys)', () => {
  it('reads the Fleet docs example: a bare host reference, flags, writer and agent credentials', () => {
    const got = storageFromSecret(
      {
        name: 'ocistorage',
        namespace: NS,
        type: FLEET_TYPE,
        data: {
          username: 'fleet-ci',
          password: 'fleetRocks',
          reference: '192.168.1.39:8082',
          insecureSkipTLS: 'true',
          basicHTTP: 'false',
          agentUsername: 'fleet-ci-readonly',
          agentPassword: 'readonlypass',
        },
      },
      'spec.ociRegistrySecret',
    );
    expect(got).to.deep.equal({
      registry: { reference: '192.168.1.39:8082/flotilla', insecureSkipTLS: true, authSecretName: 'ocistorage' },
      credentials: { username: 'fleet-ci', password: 'fleetRocks' },
    });
  });

  it('turns cacerts into the caBundle agents get, and names no credential Secret for an anonymous registry', () => {
    const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    const got = storageFromSecret({ name: 's', namespace: NS, type: FLEET_TYPE, data: { reference: 'r.example/a/b', cacerts: pem } }, 'x');
    expect(got).to.deep.equal({ registry: { reference: 'r.example/a/b', caBundle: Buffer.from(pem.trim()).toString('base64') } });
  });

  const refs: [string, string | undefined][] = [
    ['r.example', 'r.example/flotilla'],
    ['127.0.0.1:5000/', '127.0.0.1:5000/flotilla'],
    ['r.example:5000/team/bundles', 'r.example:5000/team/bundles'],
    ['https://r.example/x', undefined],
    ['r.example/x@sha256:abc', undefined],
    ['R.example/UPPER', undefined],
  ];
  for (const [input, want] of refs) {
    it(`normalizes reference ${input} to ${want ?? 'an error'}`, () => expect(normalizeReference(input)).to.equal(want));
  }
});

describe('KEP-1755 localRegistryHosting.v1', () => {
  it('round-trips what flotilla dev publishes and picks the configured field, falling back to host', () => {
    const text = hosting.data['localRegistryHosting.v1'];
    expect(parseLocalRegistryHosting(text, 'host')).to.deep.equal({ host: 'localhost:5001', field: 'host', help: 'https://kind.sigs.k8s.io' });
    expect(parseLocalRegistryHosting(text, 'hostFromClusterNetwork').host).to.equal('kind-registry:5000');
    expect(parseLocalRegistryHosting(text, 'hostFromContainerRuntime')).to.deep.include({ host: 'localhost:5001', field: 'host' });
  });

  const bad: [string, string | undefined, RegExp][] = [
    ['a missing key', undefined, /key localRegistryHosting.v1 is missing/],
    ['text that is not YAML', 'host: [unclosed', /is not YAML/],
    ['a list', '- host: a', /is not a mapping/],
    ['no host', 'help: https://x\n', /neither host nor host is set/],
    ['a host with a scheme', 'host: http://localhost:5000\n', /host "http:\/\/localhost:5000" is not host\[:port\]/],
    ['a host that is a number', 'host: 5000\n', /host is not a string/],
  ];
  for (const [name, text, message] of bad) {
    it(`refuses ${name} with RegistryDiscoveryFailed`, () => {
      let err: unknown;
      try {
        parseLocalRegistryHosting(text, 'host');
      } catch (e) {
        err = e;
      }
      expect(err).to.be.instanceOf(StallingError);
      expect(reasonOf(err, '')).to.equal(Reason.RegistryDiscoveryFailed);
      expect((err as Error).message)
        .to.match(message)
        .and.include('kube-public/local-registry-hosting');
    });
  }
});
