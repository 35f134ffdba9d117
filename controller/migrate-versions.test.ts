import { expect } from 'chai';
import type { BundleDeploymentSpec, BundleVersionEntry } from '../lib/api/index.js';
import { neededVersions, rehomeSpec } from './migrate-versions.js';
import { CONTENT_SECRET_TYPE, contentSecretName, keepVersionsInEtcd, keptContents, readContentObject } from './content-objects.js';
import { resolveRollback, rolledBackSpec } from './history.js';
import { FakeKube } from './testing.js';
import type { KubeObject } from '../lib/kube/client.js';

/**
 * The versions a storage migration keeps (controller/migrate-versions.ts) and how etcd mode keeps them
 * (controller/content-objects.ts): case tables on pure functions and the fake API of controller/testing.ts.
 * The copy by digest between two real registries runs in e2e/migration.e2e.ts.
 */

const d = (c: string) => `sha256:${c.repeat(64)}`;
const c = (x: string) => x.repeat(64);
const entry = (version: number, x: string): BundleVersionEntry => ({ version, digest: d(x), contentsID: c(x) });
const OLD = 'one.example:5000/a/ws-apps-web';
const NEW = 'two.example:5000/b/ws-apps-web';

describe('the versions a storage migration moves', () => {
  it('lists the retained history, the rollback pin, the Bundle digest and every BundleDeployment pin once, oldest first', () => {
    const bundle = {
      spec: { oci: { reference: `${OLD}@${d('3')}`, digest: d('3') }, rollback: { version: 1, digest: d('1') } },
      status: { history: [entry(3, '3'), entry(1, '1'), entry(2, '2')] },
    };
    const deployments = [
      { spec: { deploymentID: `s-${c('1')}:h`, oci: { reference: `${OLD}@${d('1')}`, digest: d('1') } } },
      { spec: { deploymentID: `s-${c('9')}:h`, oci: { reference: `${OLD}@${d('9')}`, digest: d('9') } } },
      { spec: { deploymentID: 's-x:h', resources: [] } },
    ];
    expect(neededVersions(bundle, deployments)).to.deep.equal([
      { version: 1, digest: d('1'), contentsID: c('1') },
      { version: 2, digest: d('2'), contentsID: c('2') },
      { version: 3, digest: d('3'), contentsID: c('3') },
      { digest: d('9'), contentsID: c('9') },
    ]);
  });

  it('has nothing to move for an etcd-mode Bundle without history', () => {
    expect(neededVersions({ spec: { resources: [] } }, [])).to.deep.equal([]);
  });
});

describe('a BundleDeployment kept on its version after a migration', () => {
  const kept: BundleDeploymentSpec = { deploymentID: `s-${c('1')}:old`, oci: { reference: `${OLD}@${d('1')}`, digest: d('1') } };
  it('reads the same digest from the new registry, deployment ID unchanged', () => {
    const desired: BundleDeploymentSpec = { deploymentID: `s-${c('2')}:new`, oci: { reference: `${NEW}@${d('2')}`, digest: d('2'), basicHTTP: true } };
    expect(rehomeSpec(kept, desired)).to.deep.equal({
      deploymentID: `s-${c('1')}:old`,
      oci: { reference: `${NEW}@${d('1')}`, digest: d('1'), basicHTTP: true },
    });
  });
  it('is left alone when it already reads the new registry', () => {
    const desired: BundleDeploymentSpec = { deploymentID: `s-${c('2')}:new`, oci: { reference: `${OLD}@${d('2')}`, digest: d('2') } };
    expect(rehomeSpec(kept, desired)).to.equal(kept);
  });
  it('gets its content Secret resources in etcd mode, and stays on the registry when there is none', () => {
    const desired: BundleDeploymentSpec = { deploymentID: `s-${c('2')}:new`, resources: [{ name: 'cm.yaml', content: 'new' }] };
    const resources = [{ name: 'cm.yaml', content: 'old' }];
    expect(rehomeSpec(kept, desired, new Map([[c('1'), resources]]))).to.deep.equal({ deploymentID: `s-${c('1')}:old`, resources });
    expect(rehomeSpec(kept, desired, new Map())).to.equal(kept);
  });
});

describe('content Secrets: versions kept in etcd', () => {
  const repo = { namespace: 'ws', name: 'apps' };
  it('writes every needed version but the current one, once, and reads it back by contents ID', async () => {
    const kube = new FakeKube();
    const pulled: string[] = [];
    const pull = async (digest: string) => {
      pulled.push(digest);
      return [{ path: 'cm.yaml', content: Buffer.from(`version ${digest.slice(-1)}`) }];
    };
    const versions = [{ version: 1, digest: d('1'), contentsID: c('1') }, { version: 2, digest: d('2'), contentsID: c('2') }, { digest: d('5') }];
    expect(await keepVersionsInEtcd(kube, 'test', repo, 'apps-web', versions, c('2'), pull)).to.equal(1);
    expect(await keepVersionsInEtcd(kube, 'test', repo, 'apps-web', versions, c('2'), pull)).to.equal(0);
    expect(pulled).to.deep.equal([d('1')]);
    const secret = kube.mustFind<{ type?: string } & KubeObject>('Secret', 'ws', contentSecretName('apps-web', c('1')));
    expect(secret.type).to.equal(CONTENT_SECRET_TYPE);
    expect(await readContentObject(kube, 'ws', 'apps-web', c('1'))).to.deep.equal([{ name: 'cm.yaml', content: 'version 1' }]);
    expect(await readContentObject(kube, 'ws', 'apps-web', c('2'))).to.equal(undefined);
  });

  it('lets an etcd-mode Bundle roll back to a kept version with the deployment ID it had in the registry', async () => {
    const kube = new FakeKube();
    await keepVersionsInEtcd(kube, 'test', repo, 'apps-web', [entry(1, '1')], c('2'), async () => [{ path: 'cm.yaml', content: Buffer.from('v1') }]);
    const bundle = {
      metadata: { name: 'apps-web', namespace: 'ws' },
      spec: { resources: [{ name: 'cm.yaml', content: 'v2' }], rollback: { version: 1 } },
      status: { history: [entry(1, '1'), entry(2, '2')] },
    };
    const rollback = resolveRollback(bundle, [{}]);
    expect(rollback?.entry.version).to.equal(1);
    const contents = await keptContents(kube, bundle, []);
    const spec = rolledBackSpec({ deploymentID: `s-${c('2')}:opts`, resources: bundle.spec.resources }, entry(1, '1'), contents.get(c('1')));
    expect(spec).to.deep.equal({ deploymentID: `s-${c('1')}:opts`, resources: [{ name: 'cm.yaml', content: 'v1' }] });
  });

  it('still refuses a rollback of an etcd-mode Bundle that never had versions', () => {
    const bundle = { metadata: { name: 'apps-web', namespace: 'ws' }, spec: { resources: [], rollback: { version: 1 } }, status: {} };
    expect(() => resolveRollback(bundle, [{}])).to.throw(/needs OCI storage/);
  });
});
