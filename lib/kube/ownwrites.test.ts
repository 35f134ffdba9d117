import { expect } from 'chai';
import pino from 'pino';
import type { KubeObject, ObjectRef } from './client.js';
import { OwnWrites, compareResourceVersions } from './ownwrites.js';
import { reconciler, type RunState } from './reconciler.js';
import { mergeStatusWriter } from './reconciler-status.js';

type Obj = KubeObject & { status?: { note?: string } };

const at = (rv: string, note?: string, uid = 'u1'): Obj => ({
  apiVersion: 'x/v1',
  kind: 'Thing',
  metadata: { name: 'a', uid, resourceVersion: rv, generation: 1 },
  ...(note ? { status: { note } } : {}),
});

describe('OwnWrites: a cache read that sees its own writes', () => {
  it('reads the cache while nothing was written', () => {
    const cache = new Map([['a', at('1', 'x')]]);
    const own = new OwnWrites<Obj>(cache);
    expect(own.get('a')?.status?.note).to.equal('x');
    expect(own.get('b')).to.equal(undefined);
  });

  it('returns a copy, so a run that changes its object does not change the cache', () => {
    const cache = new Map([['a', at('1', 'x')]]);
    const own = new OwnWrites<Obj>(cache);
    const read = own.get('a');
    if (read?.status) read.status.note = 'changed';
    expect(cache.get('a')?.status?.note).to.equal('x');
  });

  it('reads the last write while the cache still holds a version it replaced, through chained writes', () => {
    const cache = new Map([['a', at('1')]]);
    const own = new OwnWrites<Obj>(cache);
    own.record('a', at('1'), at('2'));
    own.record('a', at('2'), at('3', 'written'));
    expect(own.get('a')?.metadata.resourceVersion).to.equal('3');
    cache.set('a', at('2'));
    expect(own.get('a')?.metadata.resourceVersion, 'the cache saw only the first write').to.equal('3');
    expect(own.pending).to.equal(1);
  });

  it('lets the cache win once it holds the write or anything newer, and forgets the write', () => {
    for (const seen of ['3', '9']) {
      const cache = new Map([['a', at('1')]]);
      const own = new OwnWrites<Obj>(cache);
      own.record('a', at('1'), at('3', 'written'));
      cache.set('a', at(seen, 'cache'));
      expect(own.get('a')?.status?.note, `cache at ${seen}`).to.equal('cache');
      expect(own.pending).to.equal(0);
      cache.set('a', at('1', 'old'));
      expect(own.get('a')?.status?.note, 'the record is gone').to.equal('old');
    }
  });

  it('keeps its write while the cache holds an older version another writer made before the write landed', () => {
    const cache = new Map([['a', at('1')]]);
    const own = new OwnWrites<Obj>(cache);
    own.record('a', at('1'), at('5', 'written'));
    cache.set('a', at('4', 'an intermediate write'));
    expect(own.get('a')?.status?.note, 'version 4 is older than the write').to.equal('written');
    cache.set('a', at('10', 'newer'));
    expect(own.get('a')?.status?.note, '10 is newer than 5 (compared as numbers)').to.equal('newer');
    expect(own.pending).to.equal(0);
  });

  it('compares versions of another form only for equality, and keeps every version a chain of writes replaced', () => {
    const cache = new Map([['a', at('v1')]]);
    const own = new OwnWrites<Obj>(cache);
    own.record('a', at('v1'), at('v3', 'first'));
    // A second write made from the copy read before the first one (a helper writing the same object).
    own.record('a', at('v1'), at('v5', 'second'));
    cache.set('a', at('v3', 'first'));
    expect(own.get('a')?.status?.note, 'v3 was replaced by the second write').to.equal('second');
    cache.set('a', at('v4', 'unknown'));
    expect(own.get('a')?.status?.note, 'a version it never replaced wins').to.equal('unknown');
  });

  it('orders decimal resourceVersions and refuses to order any other form', () => {
    expect(compareResourceVersions('9', '10')).to.be.lessThan(0);
    expect(compareResourceVersions('120', '119')).to.be.greaterThan(0);
    expect(compareResourceVersions('42', '42')).to.equal(0);
    for (const [a, b] of [
      ['09', '10'],
      ['a1', '2'],
      ['', '1'],
      ['1', '0'],
    ] as const)
      expect(compareResourceVersions(a, b), `${a} vs ${b}`).to.equal(undefined);
  });

  it('does not apply a write to a recreated object of the same name', () => {
    const cache = new Map([['a', at('1', 'new object', 'u2')]]);
    const own = new OwnWrites<Obj>(cache);
    own.record('a', at('1'), at('3', 'written'));
    expect(own.get('a')?.status?.note).to.equal('new object');
  });

  it('reads nothing once the object left the cache, and records no response without a version', () => {
    const cache = new Map([['a', at('1')]]);
    const own = new OwnWrites<Obj>(cache);
    own.record('a', at('1'), at('2'));
    cache.delete('a');
    expect(own.get('a')).to.equal(undefined);
    expect(own.pending).to.equal(0);
    own.record('a', at('1'), { ...at('2'), metadata: { name: 'a' } });
    own.record('a', at('1'), undefined);
    expect(own.pending).to.equal(0);
  });

  it('keeps no creation unless asked to', () => {
    const own = new OwnWrites<Obj>(new Map());
    own.record('a', undefined, at('2', 'created'));
    expect(own.pending).to.equal(0);
    expect(own.get('a')).to.equal(undefined);
  });

  it('reads its own creation until the cache shows the object, and forgets it then', () => {
    let now = 1000;
    const cache = new Map<string, Obj>();
    const own = new OwnWrites<Obj>(cache, { createdTtlMs: 5000, now: () => now });
    own.record('a', undefined, at('2', 'created'));
    now += 4999;
    expect(own.get('a')?.status?.note, 'the cache has not shown it yet').to.equal('created');
    expect(own.awaitingCache('a')).to.equal(true);
    cache.set('a', at('2', 'cache'));
    expect(own.awaitingCache('a')).to.equal(false);
    expect(own.get('a')?.status?.note).to.equal('cache');
    expect(own.pending).to.equal(0);
    cache.delete('a');
    expect(own.get('a'), 'deleted after the cache showed it').to.equal(undefined);
  });

  it('forgets a creation the cache has not shown within its time, and one the cache shows with another uid', () => {
    let now = 0;
    const cache = new Map<string, Obj>();
    const own = new OwnWrites<Obj>(cache, { createdTtlMs: 5000, now: () => now });
    own.record('a', undefined, at('2', 'created'));
    now = 5000;
    expect(own.get('a'), 'a lost watch event costs one write made again').to.equal(undefined);
    expect(own.pending).to.equal(0);
    own.record('a', undefined, at('7', 'created', 'u1'));
    cache.set('a', at('3', 'an older object of that name', 'u0'));
    expect(own.get('a')?.status?.note).to.equal('an older object of that name');
    expect(own.pending).to.equal(0);
  });

  it('keeps the creation time through a write made on top of the creation', () => {
    let now = 0;
    const cache = new Map<string, Obj>();
    const own = new OwnWrites<Obj>(cache, { createdTtlMs: 5000, now: () => now });
    own.record('a', undefined, at('2', 'created'));
    own.record('a', at('2'), at('4', 'changed'));
    now = 1000;
    expect(own.get('a')?.status?.note).to.equal('changed');
    cache.set('a', at('2', 'the creation'));
    expect(own.get('a')?.status?.note, 'the cache holds the version the change replaced').to.equal('changed');
    cache.delete('a');
    now = 6000;
    expect(own.get('a')).to.equal(undefined);
  });

  it('returns the objects themselves when asked not to copy', () => {
    const cache = new Map([['a', at('1', 'x')]]);
    const own = new OwnWrites<Obj>(cache, { copy: false });
    expect(own.get('a')).to.equal(cache.get('a'));
    const written = at('2', 'written');
    own.record('a', at('1'), written);
    expect(own.get('a')).to.equal(written);
  });
});

describe('a reconciler reading a lagging cache through OwnWrites', () => {
  interface Run extends RunState<Obj> {}

  /** An API server whose watch is held back: its cache lags every write until `deliver()`. */
  class LaggingApi {
    stored = at('1');
    cache = new Map<string, Obj>([['a', at('1')]]);
    statusWrites = 0;
    private version = 1;
    async mergePatch<T extends KubeObject>(_ref: ObjectRef & { name: string }, patch: unknown): Promise<T> {
      this.statusWrites++;
      const status = (patch as { status: Obj['status'] }).status;
      this.version++;
      this.stored = {
        ...this.stored,
        metadata: { ...this.stored.metadata, resourceVersion: String(this.version) },
        status: { ...this.stored.status, ...status },
      };
      return structuredClone(this.stored) as T;
    }
    async applyStatus<T extends KubeObject>(): Promise<T> {
      throw new Error('not used');
    }
    deliver() {
      this.cache.set('a', structuredClone(this.stored));
    }
  }

  function run(api: LaggingApi, own: OwnWrites<Obj> | undefined, note: string, transitions: string[]) {
    return reconciler<Obj, Run>({
      name: 'test',
      log: pino({ level: 'silent' }),
      now: () => new Date(0),
      get: async (key) => (own ? own.get(key) : structuredClone(api.cache.get(key))),
      ...(own ? { ownWrites: own } : {}),
      start: (object, now) => ({ object, now, conditions: [] }),
      steps: () => [],
      status: {
        fallbackReason: 'Failed',
        readiness: () => ({ status: 'True', reason: 'Succeeded', message: 'ok' }),
        build: () => ({ note }),
        writer: { ...mergeStatusWriter(api), changed: (current, desired) => current?.note !== desired.note },
        transitions: (_run, before, after) => {
          if (before?.note !== after.note) transitions.push(`${String(before?.note)}->${String(after.note)}`);
        },
      },
    });
  }

  it('writes a status and tells its transition once, where a plain cache read does both twice', async () => {
    for (const withOwnWrites of [true, false]) {
      const api = new LaggingApi();
      const own = withOwnWrites ? new OwnWrites<Obj>(api.cache) : undefined;
      const transitions: string[] = [];
      const reconcile = run(api, own, 'done', transitions);
      await reconcile('a');
      await reconcile('a'); // triggered by something else before the watch delivered the status write
      if (withOwnWrites) {
        expect(api.statusWrites).to.equal(1);
        expect(transitions).to.deep.equal(['undefined->done']);
      } else {
        expect(api.statusWrites).to.equal(2);
        expect(transitions).to.deep.equal(['undefined->done', 'undefined->done']);
      }
      api.deliver();
      await reconcile('a');
      expect(api.statusWrites, 'nothing to write once the cache caught up').to.equal(withOwnWrites ? 1 : 2);
    }
  });

  it('still sees what another writer changed after its own write', async () => {
    const api = new LaggingApi();
    const own = new OwnWrites<Obj>(api.cache);
    const transitions: string[] = [];
    await run(api, own, 'done', transitions)('a');
    // Someone else changes the status; the watch delivers it (after ours).
    api.stored = { ...api.stored, metadata: { ...api.stored.metadata, resourceVersion: '7' }, status: { note: 'theirs' } };
    api.deliver();
    await run(api, own, 'done', transitions)('a');
    expect(transitions).to.deep.equal(['undefined->done', 'theirs->done']);
    expect(api.statusWrites).to.equal(2);
  });
});
