import { expect } from 'chai';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubeClient } from '../lib/kube/client.js';
import { FlotillaError, dispositionOf } from '../lib/errors.js';
import { ArtifactError, RegistryRefusedError, RegistryUnavailableError } from '../lib/oci/index.js';
import { ContentLoader, translatePullError } from './content.js';

const ref = `127.0.0.1:5000/b@sha256:${'a'.repeat(64)}`;

describe('agent content: what a failed pull means', () => {
  const cases: { name: string; err: unknown; reason: string; disposition: string }[] = [
    {
      name: 'an unreachable registry is retried with backoff',
      err: new RegistryUnavailableError('connection refused', { registry: 'r', code: 'ECONNREFUSED' }),
      reason: 'RegistryUnreachable',
      disposition: 'transient',
    },
    {
      name: 'a missing manifest is retried (it may be pushed yet)',
      err: new RegistryRefusedError('unknown', { registry: 'r', code: 'MANIFEST_UNKNOWN', status: 404 }),
      reason: 'ArtifactPullFailed',
      disposition: 'transient',
    },
    {
      name: 'refused credentials are retried (the Secret may be fixed)',
      err: new RegistryRefusedError('denied', { registry: 'r', code: 'UNAUTHORIZED', status: 401 }),
      reason: 'AuthenticationFailed',
      disposition: 'transient',
    },
    {
      name: 'tampered bytes are retried but keep their reason',
      err: new ArtifactError('ArtifactTampered', 'digest mismatch'),
      reason: 'ArtifactTampered',
      disposition: 'transient',
    },
    {
      name: 'an invalid artifact stalls: the pinned content never changes',
      err: new ArtifactError('InvalidBundle', 'not a bundle'),
      reason: 'InvalidBundle',
      disposition: 'stalling',
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const out = translatePullError(c.err, ref);
      expect(out).to.be.instanceOf(FlotillaError);
      expect((out as FlotillaError).reason).to.equal(c.reason);
      expect(dispositionOf(out)).to.equal(c.disposition);
    });
  }

  it('names the artifact in the message', () => {
    const out = translatePullError(new RegistryUnavailableError('connection refused', { registry: 'r', code: 'ECONNREFUSED' }), ref) as Error;
    expect(out.message).to.contain(ref).and.contain('connection refused');
  });
});

describe('agent content: pruning the blob cache', () => {
  const digest = (c: string) => `sha256:${c.repeat(64)}`;
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'flotilla-prune-'));
    await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
    for (const c of ['a', 'b']) await writeFile(join(dir, 'blobs', 'sha256', c.repeat(64)), c);
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const loader = () => new ContentLoader({ upstream: undefined as unknown as KubeClient, clusterNamespace: 'c', cacheDir: dir });

  it('removes nothing while a referenced artifact was not pulled by this process (its blobs are unknown)', async () => {
    const result = await loader().pruneCache([digest('f')]);
    expect(result).to.deep.equal({ pruned: false, why: '1 referenced artifacts not pulled yet' });
    expect((await readdir(join(dir, 'blobs', 'sha256'))).sort()).to.deep.equal(['a'.repeat(64), 'b'.repeat(64)]);
  });

  it('removes every blob when no BundleDeployment pins an artifact any more', async () => {
    expect(await loader().pruneCache([])).to.deep.equal({ pruned: true, removed: 2, kept: 0 });
    expect(await readdir(join(dir, 'blobs', 'sha256'))).to.deep.equal([]);
  });
});
