import { expect } from 'chai';
import { StallingError } from '../lib/errors.js';
import type { RolloutStatus, RolloutStrategy } from '../lib/api/index.js';
import { UNPARTITIONED, partitionsOf, planRollout, previousOf, resolveLimit, rolloutReadiness, type RolloutCluster, type RolloutInput } from './rollout.js';

const NOW = new Date('2026-11-29T12:00:00Z');
const ago = (s: number) => new Date(NOW.getTime() - s * 1000).toISOString();

/** A cluster in ring `ring`: `state` says what its BundleDeployment runs (old/new, ready or not) or that it has none. */
function c(
  name: string,
  ring: string,
  state: 'none' | 'old' | 'old-unready' | 'new' | 'new-unready' | 'new-unapplied',
  extra: Partial<RolloutCluster> = {},
): RolloutCluster {
  const current =
    state === 'none' ? undefined : { isNew: state.startsWith('new'), applied: state !== 'new-unapplied', ready: state === 'old' || state === 'new' };
  return { name, labels: { ring }, groups: [], offline: false, ...(current ? { current } : {}), ...extra };
}

const rings: RolloutStrategy = {
  partitions: [
    { name: 'canary', clusterSelector: { matchLabels: { ring: 'a' } }, maxUnavailable: 0 },
    { name: 'early', clusterSelector: { matchLabels: { ring: 'b' } }, maxUnavailable: 0 },
    { name: 'late', clusterSelector: { matchLabels: { ring: 'c' } }, maxUnavailable: 0 },
  ],
};

function input(clusters: RolloutCluster[], strategy: RolloutStrategy | undefined, prior?: RolloutStatus, more: Partial<RolloutInput> = {}): RolloutInput {
  return { clusters, strategy, revision: 'r2', version: 2, previousVersion: 1, retained: [1, 2], prior, now: NOW, where: 'Bundle ws/app', ...more };
}

const kinds = (plan: ReturnType<typeof planRollout>) =>
  Object.fromEntries([...plan.decisions].map(([name, d]) => [name, d.kind === 'pin' ? `pin:v${d.version}:${d.reason}` : d.kind]));
const phases = (plan: ReturnType<typeof planRollout>) => plan.status?.partitions.map((p) => `${p.name}:${p.phase}`);

/** A prior status of revision r2 with partitions in the given phases, started (and succeeded) `startedS` seconds ago. */
function prior(phase: RolloutStatus['phase'], parts: [string, string, number?, number?][]): RolloutStatus {
  return {
    revision: 'r2',
    version: 2,
    previousVersion: 1,
    phase,
    partitions: parts.map(([name, p, started, succeeded]) => ({
      name,
      phase: p as RolloutStatus['partitions'][number]['phase'],
      count: 2,
      maxUnavailable: 0,
      unavailable: 0,
      upToDate: 0,
      ...(started !== undefined ? { startedAt: ago(started) } : {}),
      ...(succeeded !== undefined ? { succeededAt: ago(succeeded) } : {}),
    })),
  };
}

describe('rollout planner (controller/rollout.ts)', () => {
  const six = (states: Parameters<typeof c>[2][]) => ['a', 'a', 'b', 'b', 'c', 'c'].map((ring, i) => c(`c${i + 1}`, ring, states[i] ?? 'old'));

  const cases: { name: string; in: RolloutInput; decisions: Record<string, string>; phases?: string[]; phase?: string; requeueMs?: number }[] = [
    {
      name: 'without a strategy every cluster gets the newest version at once, a rollback pin wins',
      in: input([c('x', 'a', 'old'), c('y', 'b', 'none'), c('z', 'c', 'old', { pinned: 1 })], undefined),
      decisions: { x: 'new', y: 'new', z: 'pin:v1:rollback' },
    },
    {
      name: 'starts the first partition one cluster at a time when it tolerates no unavailable cluster; later partitions wait',
      in: input(six([]), rings),
      decisions: { c1: 'new', c2: 'keep', c3: 'keep', c4: 'keep', c5: 'keep', c6: 'keep' },
      phases: ['canary:Rolling', 'early:Waiting', 'late:Waiting'],
      phase: 'Progressing',
    },
    {
      name: 'starts the next partition in the same pass once the previous one is up to date and ready',
      in: input(six(['new', 'new']), rings, prior('Progressing', [['canary', 'Rolling', 30]])),
      decisions: { c1: 'new', c2: 'new', c3: 'new', c4: 'keep', c5: 'keep', c6: 'keep' },
      phases: ['canary:Done', 'early:Rolling', 'late:Waiting'],
    },
    {
      name: 'holds the next partition while the previous one soaks (minSuccessTime) and looks again when the soak ends',
      in: input(six(['new', 'new']), { ...rings, minSuccessTime: '60s' }, prior('Progressing', [['canary', 'Soaking', 30, 10]])),
      decisions: { c1: 'new', c2: 'new', c3: 'keep', c4: 'keep', c5: 'keep', c6: 'keep' },
      phases: ['canary:Soaking', 'early:Waiting', 'late:Waiting'],
      requeueMs: 50_100,
    },
    {
      name: 'starts the next partition once the soak is over',
      in: input(six(['new', 'new']), { ...rings, minSuccessTime: '60s' }, prior('Progressing', [['canary', 'Soaking', 90, 61]])),
      decisions: { c1: 'new', c2: 'new', c3: 'new', c4: 'keep', c5: 'keep', c6: 'keep' },
      phases: ['canary:Done', 'early:Rolling', 'late:Waiting'],
    },
    {
      name: 'waits for a partition that is not ready before its deadline, looking again at the deadline',
      in: input(six(['new-unready']), { ...rings, deadline: '5m', onFailure: 'rollback' }, prior('Progressing', [['canary', 'Rolling', 60]])),
      decisions: { c1: 'new', c2: 'keep', c3: 'keep', c4: 'keep', c5: 'keep', c6: 'keep' },
      phases: ['canary:Rolling', 'early:Waiting', 'late:Waiting'],
      requeueMs: 240_100,
    },
    {
      name: 'onFailure rollback: after the deadline the started partition returns to the previous version, the others never left it',
      in: input(six(['new-unready']), { ...rings, deadline: '5m', onFailure: 'rollback' }, prior('Progressing', [['canary', 'Rolling', 301]])),
      decisions: { c1: 'pin:v1:failed', c2: 'keep', c3: 'keep', c4: 'keep', c5: 'keep', c6: 'keep' },
      phases: ['canary:Failed', 'early:Waiting', 'late:Waiting'],
      phase: 'RolledBack',
    },
    {
      name: 'onFailure halt (the default): after the deadline what runs stays and nothing more is updated',
      in: input(six(['new-unready']), { ...rings, deadline: '5m' }, prior('Progressing', [['canary', 'Rolling', 301]])),
      decisions: { c1: 'new', c2: 'keep', c3: 'keep', c4: 'keep', c5: 'keep', c6: 'keep' },
      phases: ['canary:Failed', 'early:Waiting', 'late:Waiting'],
      phase: 'Halted',
    },
    {
      name: 'halts instead of rolling back when the previous version is no longer retained',
      in: input(six(['new-unready']), { ...rings, deadline: '5m', onFailure: 'rollback' }, prior('Progressing', [['canary', 'Rolling', 301]]), {
        retained: [2],
      }),
      decisions: { c1: 'new', c2: 'keep', c3: 'keep', c4: 'keep', c5: 'keep', c6: 'keep' },
      phase: 'Halted',
    },
    {
      name: 'a rolled-back rollout stays rolled back for its revision, even once the clusters are ready again',
      in: input(
        six(['old', 'old']),
        { ...rings, deadline: '5m', onFailure: 'rollback' },
        prior('RolledBack', [
          ['canary', 'Failed', 400],
          ['early', 'Waiting'],
          ['late', 'Waiting'],
        ]),
      ),
      decisions: { c1: 'keep', c2: 'keep', c3: 'keep', c4: 'keep', c5: 'keep', c6: 'keep' },
      phases: ['canary:Failed', 'early:Waiting', 'late:Waiting'],
      phase: 'RolledBack',
    },
    {
      name: 'a new revision starts a new rollout from the first partition',
      in: input(six([]), rings, { ...prior('RolledBack', [['canary', 'Failed', 400]]), revision: 'r1' }),
      decisions: { c1: 'new', c2: 'keep', c3: 'keep', c4: 'keep', c5: 'keep', c6: 'keep' },
      phase: 'Progressing',
    },
    {
      name: 'an offline cluster neither holds up nor fails its partition; it gets the version for when it returns',
      in: input([c('c1', 'a', 'new'), c('c2', 'a', 'old', { offline: true }), c('c3', 'b', 'old')], rings, prior('Progressing', [['canary', 'Rolling', 30]])),
      decisions: { c1: 'new', c2: 'new', c3: 'new' },
      phases: ['canary:Done', 'early:Rolling', 'late:Waiting'],
    },
    {
      name: 'creates at most maxNew BundleDeployments per pass and looks again soon',
      in: input(
        ['a', 'b', 'c', 'd', 'e'].map((n) => c(n, 'x', 'none')),
        { maxNew: 2 },
      ),
      decisions: { a: 'new', b: 'new', c: 'keep', d: 'keep', e: 'keep' },
      requeueMs: 1100,
    },
    {
      name: 'the bundle-wide maxUnavailable caps the clusters being updated at once',
      in: input(
        ['a', 'b', 'c', 'd'].map((n) => c(n, 'x', 'old')),
        { maxUnavailable: 2 },
      ),
      decisions: { a: 'new', b: 'new', c: 'keep', d: 'keep' },
      phases: ['all:Rolling'],
    },
    {
      name: 'a cluster already unavailable is updated without using the budget',
      in: input([c('a', 'x', 'old'), c('b', 'x', 'old-unready'), c('c', 'x', 'old')], { maxUnavailable: 1 }),
      decisions: { a: 'keep', b: 'new', c: 'keep' },
    },
    {
      name: 'a complete rollout gives a cluster that joins later the newest version',
      in: input([c('c1', 'a', 'new'), c('c9', 'c', 'old')], rings, { ...prior('Complete', [['canary', 'Done', 90, 80]]) }),
      decisions: { c1: 'new', c9: 'new' },
      phase: 'Complete',
    },
    {
      name: 'completes when every partition is up to date',
      in: input(six(['new', 'new', 'new', 'new', 'new', 'new']), rings),
      decisions: { c1: 'new', c2: 'new', c3: 'new', c4: 'new', c5: 'new', c6: 'new' },
      phases: ['canary:Done', 'early:Done', 'late:Done'],
      phase: 'Complete',
    },
  ];
  for (const t of cases) {
    it(t.name, () => {
      const plan = planRollout(t.in);
      expect(kinds(plan)).to.deep.equal(t.decisions);
      if (t.phases) expect(phases(plan)).to.deep.equal(t.phases);
      if (t.phase) expect(plan.status?.phase).to.equal(t.phase);
      if (t.requeueMs !== undefined) expect(plan.requeueAfterMs).to.equal(t.requeueMs);
    });
  }

  it('shows counts and the first unavailable cluster names per partition, and why it waits', () => {
    const plan = planRollout(input(six(['new-unready', 'old']), rings, prior('Progressing', [['canary', 'Rolling', 30]])));
    expect(plan.status?.partitions[0]).to.include({ name: 'canary', count: 2, unavailable: 2, upToDate: 0, maxUnavailable: 0 });
    expect(plan.status?.partitions[0]?.names).to.deep.equal(['c1', 'c2']);
    expect(plan.status?.message).to.match(/partition canary has 2 of 2 cluster\(s\) not up to date/);
    expect(plan.status?.previousVersion).to.equal(1);
  });

  describe('partitions', () => {
    const many = (n: number) => Array.from({ length: n }, (_, i) => c(`k${String(i).padStart(2, '0')}`, 'x', 'old'));
    const table: { name: string; clusters: RolloutCluster[]; strategy: RolloutStrategy; want: string[] }[] = [
      { name: 'one partition below autoPartitionThreshold (default 200)', clusters: many(10), strategy: {}, want: ['all:10'] },
      {
        name: 'automatic partitions of autoPartitionSize above the threshold',
        clusters: many(10),
        strategy: { autoPartitionThreshold: 4, autoPartitionSize: '30%' },
        want: ['auto-1:3', 'auto-2:3', 'auto-3:3', 'auto-4:1'],
      },
      {
        name: 'autoPartitionSize 0 turns automatic partitions off',
        clusters: many(10),
        strategy: { autoPartitionThreshold: 1, autoPartitionSize: 0 },
        want: ['all:10'],
      },
      {
        name: 'explicit partitions in order, a cluster in the first that selects it, the rest last',
        clusters: [c('p', 'a', 'old'), c('q', 'b', 'old'), c('r', 'z', 'old'), c('s', 'a', 'old', { groups: [{ name: 'edge', labels: {} }] })],
        strategy: {
          partitions: [{ name: 'edge', clusterGroup: 'edge' }, { name: 'canary', clusterSelector: { matchLabels: { ring: 'a' } } }, { clusterName: 'q' }],
        },
        want: ['edge:1', 'canary:1', 'partition-3:1', `${UNPARTITIONED}:1`],
      },
    ];
    for (const t of table) {
      it(t.name, () => expect(partitionsOf(t.clusters, t.strategy, 'Bundle ws/app').map((p) => `${p.name}:${p.clusters.length}`)).to.deep.equal(t.want));
    }

    it('refuses an invalid int-or-percent value naming the field', () => {
      expect(() => planRollout(input(many(3), { maxUnavailable: 'lots' }))).to.throw(
        StallingError,
        /Bundle ws\/app: spec\.rolloutStrategy\.maxUnavailable: "lots"/,
      );
      expect(() => planRollout(input(many(3), { partitions: [{ clusterName: 'k00', maxUnavailable: '-1' }] }))).to.throw(
        StallingError,
        /spec\.rolloutStrategy\.partitions\[0\]\.maxUnavailable/,
      );
    });
  });

  it('resolves limits as Fleet does: counts as given, percentages rounded down but at least 1', () => {
    expect([
      resolveLimit({ count: 0 }, 10),
      resolveLimit({ percent: 25 }, 10),
      resolveLimit({ percent: 1 }, 10),
      resolveLimit({ percent: 100 }, 7),
    ]).to.deep.equal([0, 2, 1, 7]);
  });

  it('takes the previous version from the last rollout: its version when complete, what it replaced when not', () => {
    expect(previousOf(prior('Complete', []), 7)).to.equal(2);
    expect(previousOf(prior('RolledBack', []), 7)).to.equal(1);
    expect(previousOf(undefined, 7)).to.equal(7);
  });

  it('makes the Bundle not Ready while the rollout moves or after it failed, and leaves Ready to the clusters once complete', () => {
    expect(rolloutReadiness(prior('Progressing', []))).to.include({ status: 'False', reason: 'Progressing', progressing: true });
    expect(rolloutReadiness({ ...prior('RolledBack', []), message: 'rolled back: x' })).to.include({
      status: 'False',
      reason: 'RolloutFailed',
      progressing: false,
    });
    expect(rolloutReadiness(prior('Complete', []))).to.equal(undefined);
  });

  describe('helm.atomic: a cluster whose newest version failed returns to the version it ran before', () => {
    const timeout = { reason: 'ReadyTimeout', message: '1 resource is not ready within helm.timeoutSeconds (5s)' };
    /** A cluster for the atomic cases: `state` as in c(), and what its BundleDeployment records. */
    const a = (name: string, state: Parameters<typeof c>[2], atomic: RolloutCluster['atomic'], ring = 'a') => c(name, ring, state, { atomic });
    const held = { revision: 'r2', from: 2, to: 1, ...timeout };
    const table: { name: string; in: RolloutInput; decisions: Record<string, string>; stuck?: Record<string, RegExp> }[] = [
      {
        name: 'rolls a cluster back to its previous version on ReadyTimeout; the others move on',
        in: input([a('x', 'new-unready', { failed: timeout, previous: 1 }), a('y', 'new', { previous: 1 }), a('z', 'old', {})], undefined, undefined, {
          atomic: true,
        }),
        decisions: { x: 'pin:v1:failed', y: 'new', z: 'new' },
      },
      {
        name: 'stays back on the next pass of the same revision (its BundleDeployment runs v1 and is ready again)',
        in: input([a('x', 'old', { rolledBack: held }), a('y', 'new', { previous: 1 })], undefined, undefined, { atomic: true }),
        decisions: { x: 'pin:v1:failed', y: 'new' },
      },
      {
        name: 'moves forward on a new revision (new commit, options or forceSyncGeneration)',
        in: input([a('x', 'old', { rolledBack: held })], undefined, undefined, { atomic: true, revision: 'r3', version: 3, retained: [1, 2, 3] }),
        decisions: { x: 'new' },
      },
      {
        name: 'with no previous version, stays on the failing version and says why',
        in: input([a('x', 'new-unready', { failed: timeout })], undefined, undefined, { atomic: true }),
        decisions: { x: 'new' },
        stuck: { x: /no previous version ran there/ },
      },
      {
        name: 'with a previous version no longer retained, stays and says so',
        in: input([a('x', 'new-unready', { failed: timeout, previous: 1 })], undefined, undefined, { atomic: true, retained: [2] }),
        decisions: { x: 'new' },
        stuck: { x: /v1 is no longer retained/ },
      },
      {
        name: 'with a previous version of the same contents (only options changed), stays and says so',
        in: input([a('x', 'new-unready', { failed: timeout, previous: 2 })], undefined, undefined, { atomic: true }),
        decisions: { x: 'new' },
        stuck: { x: /only options changed/ },
      },
      {
        name: 'does nothing without helm.atomic',
        in: input([a('x', 'new-unready', { failed: timeout, previous: 1 })], undefined),
        decisions: { x: 'new' },
      },
      {
        name: 'spec.rollback wins over atomic',
        in: input(
          [a('x', 'new-unready', { failed: timeout, previous: 1 }, 'a')].map((k) => ({ ...k, pinned: 2 })),
          undefined,
          undefined,
          {
            atomic: true,
          },
        ),
        decisions: { x: 'pin:v2:rollback' },
      },
      {
        name: 'a rolled-back cluster leaves its partition; the staged rollout goes on with the others',
        in: input(
          [
            ...six(['new', 'new'])
              .slice(0, 2)
              .map((k, i) => (i === 0 ? { ...k, atomic: { failed: timeout, previous: 1 } } : k)),
            c('c3', 'b', 'old'),
          ],
          rings,
          prior('Progressing', [['canary', 'Rolling', 30]]),
          { atomic: true },
        ),
        decisions: { c1: 'pin:v1:failed', c2: 'new', c3: 'new' },
      },
    ];
    for (const t of table) {
      it(t.name, () => {
        const plan = planRollout(t.in);
        expect(kinds(plan)).to.deep.equal(t.decisions);
        const stuck = Object.fromEntries(plan.atomic?.stuck ?? []);
        expect(Object.keys(stuck)).to.deep.equal(Object.keys(t.stuck ?? {}));
        for (const [name, why] of Object.entries(t.stuck ?? {})) expect(stuck[name]).to.match(why);
      });
    }
  });
});
