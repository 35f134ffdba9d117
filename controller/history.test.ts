import { expect } from 'chai';
import type { BundleVersionEntry } from '../lib/api/index.js';
import { contentsOfDeploymentID, nextHistory, protectedDigests, versionOf } from './history.js';

const e = (version: number, contentsID = `c${version}`): BundleVersionEntry => ({ version, digest: `sha256:d${version}`, contentsID, commit: `g${version}` });

describe('release history (controller/history.ts)', () => {
  const cases: {
    name: string;
    previous: BundleVersionEntry[];
    entry?: BundleVersionEntry;
    deleted?: string[];
    keep?: string[];
    max?: number;
    want: number[];
  }[] = [
    { name: 'appends a new version', previous: [e(1)], entry: e(2), want: [1, 2] },
    { name: 'drops versions retention deleted', previous: [e(1), e(2)], entry: e(3), deleted: ['sha256:d1'], want: [2, 3] },
    { name: 'keeps at most max entries, oldest first out', previous: [e(1), e(2), e(3)], entry: e(4), max: 3, want: [2, 3, 4] },
    {
      name: 'keeps a protected old version over a newer unprotected one',
      previous: [e(1), e(2), e(3)],
      entry: e(4),
      keep: ['sha256:d1'],
      max: 3,
      want: [1, 3, 4],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const got = nextHistory(c.previous, c.entry, c.deleted ?? [], new Set(c.keep ?? []), c.max);
      expect(got.map((x) => x.version)).to.deep.equal(c.want);
    });
  }

  it('keeps the first commit of a version when an unchanged push names a later commit', () => {
    const got = nextHistory([e(1)], { ...e(1), commit: 'later' }, []);
    expect(got).to.deep.equal([e(1)]);
  });

  it('protects the pinned, rolled-back-to and running digests, and nothing else', () => {
    const bundle = {
      metadata: { name: 'app', namespace: 'ws' },
      spec: { oci: { reference: 'r@sha256:d4', digest: 'sha256:d4' }, rollback: { version: 1 } },
      status: { history: [e(1), e(2), e(3), e(4)] },
    };
    const bds = [{ spec: { deploymentID: 's-c4:h', oci: { reference: 'r@sha256:d4', digest: 'sha256:d4' } }, status: { appliedDeploymentID: 's-c2:h' } }];
    expect([...protectedDigests(bundle, bds)].sort()).to.deep.equal(['sha256:d1', 'sha256:d2', 'sha256:d4']);
  });

  it('reads the contents ID of a deployment ID', () => {
    expect(contentsOfDeploymentID('s-sha256:abc:ffff')).to.equal('sha256:abc');
    expect(contentsOfDeploymentID('x')).to.equal(undefined);
  });

  it('finds the pinned version among versions with the same contents (a revert in git), else the newest', () => {
    const h = [e(1, 'same'), e(2, 'other'), e(3, 'same')];
    expect(versionOf(h, 'same', 'sha256:d1')).to.equal(1);
    expect(versionOf(h, 'same', 'sha256:d2')).to.equal(3);
    expect(versionOf(h, 'none')).to.equal(undefined);
  });
});
