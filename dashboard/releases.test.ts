import { expect } from 'chai';
import { readVersionsIncluding, type VersionInfo } from './releases.js';

const version = (n: number): VersionInfo => ({ version: n, digest: `sha256:${String(n).repeat(64).slice(0, 64)}`, files: new Map(), size: 0 });

/** A tag listing that answers `answers` in turn (the last one from then on), counting reads and sleeps. */
function listing(answers: VersionInfo[][]) {
  const seen = { reads: 0, sleeps: [] as number[], missing: [] as number[] };
  return {
    seen,
    read: async () => answers[Math.min(seen.reads++, answers.length - 1)] as VersionInfo[],
    options: {
      delayMs: 250,
      sleep: async (ms: number) => {
        seen.sleeps.push(ms);
      },
      onMissing: (attempt: number) => seen.missing.push(attempt),
    },
  };
}

describe('dashboard history: a tag list without the version the Bundle points at is read again', () => {
  it('reads once when the listing has the pinned digest', async () => {
    const l = listing([[version(1), version(2)]]);
    const got = await readVersionsIncluding(version(2).digest, l.read, l.options);
    expect(got.map((v) => v.version)).to.deep.equal([1, 2]);
    expect(l.seen).to.deep.equal({ reads: 1, sleeps: [], missing: [] });
  });

  it('reads again after a partial (here empty) listing, and returns the whole one', async () => {
    const l = listing([[], [version(1)], [version(1), version(2)]]);
    const got = await readVersionsIncluding(version(2).digest, l.read, l.options);
    expect(got.map((v) => v.version)).to.deep.equal([1, 2]);
    expect(l.seen).to.deep.equal({ reads: 3, sleeps: [250, 250], missing: [1, 2] });
  });

  it('gives up after the attempts it was given and returns the last listing', async () => {
    const l = listing([[version(1)]]);
    const got = await readVersionsIncluding(version(2).digest, l.read, { ...l.options, attempts: 4 });
    expect(got.map((v) => v.version)).to.deep.equal([1]);
    expect(l.seen.reads).to.equal(4);
    expect(l.seen.missing).to.deep.equal([1, 2, 3]);
  });

  it('does not read again when the Bundle points at no digest', async () => {
    const l = listing([[]]);
    expect(await readVersionsIncluding(undefined, l.read, l.options)).to.deep.equal([]);
    expect(l.seen.reads).to.equal(1);
  });
});
