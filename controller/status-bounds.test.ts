import { expect } from 'chai';
import { BundleState, BundleStatusSchema, ClusterGroupStatusSchema, GitRepoStatusSchema, MAX_RESOURCE_STATUS_ITEMS } from '../lib/api/index.js';
import { partitionsOf } from './rollout.js';
import { FIELD } from './rollup.js';
import { STATUS_TARGET_BYTES, andMore, clip, fitNonReady, jsonBytes } from './status-bounds.js';
import { STATE_OF, syntheticStatuses, type SyntheticKind } from './status-synthetic.js';

function expectedCounts(kinds: readonly SyntheticKind[]): Record<string, number> {
  const out: Record<string, number> = { ready: 0, notReady: 0, waitApplied: 0, errApplied: 0, outOfSync: 0, modified: 0, pending: 0 };
  for (const k of kinds) out[FIELD[STATE_OF[k]]] = (out[FIELD[STATE_OF[k]]] ?? 0) + 1;
  return out;
}

describe('bounded rolled-up status (issue 19)', () => {
  for (const clusters of [10, 200, 1000]) {
    describe(`with ${clusters} clusters in every state, each failure with long messages and 20 resources`, () => {
      const s = syntheticStatuses(clusters);
      const want = expectedCounts(s.kinds);

      for (const [kind, status, schema] of [
        ['Bundle', s.bundle, BundleStatusSchema],
        ['GitRepo', s.gitRepo, GitRepoStatusSchema.partial()],
        ['ClusterGroup', s.clusterGroup, ClusterGroupStatusSchema],
      ] as const) {
        it(`keeps the ${kind} status under 8 KiB and valid against its CRD schema`, () => {
          expect(jsonBytes(status)).to.be.below(STATUS_TARGET_BYTES);
          expect(schema.safeParse(status).error?.issues ?? []).to.deep.equal([]);
        });
      }

      it('counts every cluster exactly in the Bundle and GitRepo summaries', () => {
        for (const summary of [s.bundle.summary, s.gitRepo.summary]) {
          const { nonReadyResources: _list, desiredReady, ...counts } = summary ?? { desiredReady: -1 };
          expect(counts).to.deep.equal(want);
          expect(desiredReady).to.equal(clusters);
        }
        expect(s.bundle.display?.readyClusters).to.equal(`${want.ready}/${clusters}`);
      });

      it('sums the member clusters exactly in the ClusterGroup', () => {
        expect(s.clusterGroup.clusterCount).to.equal(clusters);
        expect(s.clusterGroup.nonReadyClusterCount).to.equal(clusters - (want.ready ?? 0));
        expect(s.clusterGroup.summary?.desiredReady).to.equal(clusters);
        expect(s.clusterGroup.summary?.errApplied).to.equal(want.errApplied);
      });

      it('lists at most 10 non-ready entries, the worst state first, and says how many more', () => {
        const list = s.bundle.summary?.nonReadyResources ?? [];
        expect(list.length).to.be.within(1, MAX_RESOURCE_STATUS_ITEMS);
        expect(list[0]?.bundleState).to.equal(BundleState.ErrApplied);
        const notReady = clusters - (want.ready ?? 0);
        expect(s.bundle.conditions?.find((c) => c.type === 'Ready')?.message).to.match(new RegExp(` and ${notReady - 1} more$`));
        expect(s.clusterGroup.nonReadyClusters).to.have.length(Math.min(10, notReady));
      });
    });
  }

  it('keeps the first entry, without its resource lists, when it alone exceeds the budget', () => {
    const big = { name: 'c1', bundleState: BundleState.NotReady, message: 'm', nonReadyStatus: [] as never[] };
    expect(fitNonReady([big, { name: 'c2', bundleState: BundleState.NotReady }], 10)).to.deep.equal([
      { name: 'c1', bundleState: BundleState.NotReady, message: 'm' },
    ]);
  });

  it('clips text with an ellipsis and counts what is left out', () => {
    expect(clip('abcdef', 4)).to.equal('abc…');
    expect(clip('abc', 4)).to.equal('abc');
    expect(andMore(10, 12)).to.equal(' and 2 more');
    expect(andMore(10, 10)).to.equal('');
  });

  it('makes at most 10 automatic partitions, however small autoPartitionSize is', () => {
    const clusters = Array.from({ length: 1000 }, (_, i) => ({ name: `c${i}`, labels: {}, groups: [], offline: false }));
    const parts = partitionsOf(clusters, { autoPartitionSize: 1, autoPartitionThreshold: 2 }, 'Bundle ws/app');
    expect(parts).to.have.length(10);
    expect(parts.reduce((n, p) => n + p.clusters.length, 0)).to.equal(1000);
  });
});
