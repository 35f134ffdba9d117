import { expect } from 'chai';
import { BundleState, Reason, type BundleDeployment, type Condition } from '../lib/api/index.js';
import { CLUSTER_PROGRESSING_GRACE_MS, clusterNamespaceName, clusterRollup, groupRollup, progressingWait, type ClusterView } from './cluster.js';

const NOW = new Date('2026-01-01T12:00:00Z');
const ago = (seconds: number): string => new Date(NOW.getTime() - seconds * 1000).toISOString();

function bd(name: string, state: 'ready' | 'notReady' | 'waiting' | 'failed' | 'modified'): BundleDeployment {
  const applied = state === 'waiting' || state === 'failed' ? 'old' : 'v1';
  const conditions: Condition[] =
    state === 'failed' ? [{ type: 'Deployed', status: 'False', reason: 'ApplyFailed', message: 'admission webhook denied', lastTransitionTime: ago(5) }] : [];
  return {
    apiVersion: 'flotilla.dev/v1alpha1',
    kind: 'BundleDeployment',
    metadata: { name, namespace: 'cluster-ns' },
    spec: { deploymentID: 'v1' },
    status: { appliedDeploymentID: applied, ready: state === 'ready' || state === 'modified', nonModified: state !== 'modified', conditions },
  };
}

describe('clusterNamespaceName', () => {
  const cases: { workspace: string; cluster: string; expected: string | RegExp }[] = [
    { workspace: 'flotilla-default', cluster: 'prod-eu', expected: 'cluster-flotilla-default-prod-eu' },
    { workspace: 'w', cluster: 'a'.repeat(53), expected: `cluster-w-${'a'.repeat(53)}` },
    { workspace: 'w', cluster: 'a'.repeat(54), expected: /^cluster-w-a{44}-[0-9a-f]{8}$/ },
    { workspace: 'flotilla-default', cluster: 'edge.site-1', expected: /^cluster-flotilla-default-edge-site-1-[0-9a-f]{8}$/ },
  ];
  for (const c of cases) {
    it(`names the namespace of ${c.workspace}/${c.cluster.slice(0, 20)}${c.cluster.length > 20 ? '...' : ''} as a DNS-1123 label`, () => {
      const name = clusterNamespaceName(c.workspace, c.cluster);
      if (typeof c.expected === 'string') expect(name).to.equal(c.expected);
      else expect(name).to.match(c.expected);
      expect(name.length).to.be.at.most(63);
      expect(name).to.match(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    });
  }

  it('keeps long names of different clusters distinct after truncation', () => {
    const a = clusterNamespaceName('flotilla-default', `${'x'.repeat(60)}-a`);
    const b = clusterNamespaceName('flotilla-default', `${'x'.repeat(60)}-b`);
    expect(a).to.not.equal(b);
  });
});

describe('clusterRollup', () => {
  const cases: {
    name: string;
    bds: BundleDeployment[];
    lastSeen?: string;
    createdAt?: string;
    readyBundles: string;
    state?: string;
    ready: [string, string];
    recheck: boolean;
  }[] = [
    {
      name: 'a fresh agent with every bundle ready is Ready',
      bds: [bd('a', 'ready'), bd('b', 'ready')],
      lastSeen: ago(10),
      readyBundles: '2/2',
      state: BundleState.Ready,
      ready: ['True', 'Succeeded'],
      recheck: true,
    },
    { name: 'a fresh agent without bundles is Ready with 0/0', bds: [], lastSeen: ago(1), readyBundles: '0/0', ready: ['True', 'Succeeded'], recheck: true },
    {
      name: 'the worst bundle decides the state and the reason',
      bds: [bd('a', 'ready'), bd('b', 'notReady'), bd('c', 'failed')],
      lastSeen: ago(1),
      readyBundles: '1/3',
      state: BundleState.ErrApplied,
      ready: ['False', 'ApplyFailed'],
      recheck: true,
    },
    {
      name: 'drift shows as Modified',
      bds: [bd('a', 'modified')],
      lastSeen: ago(1),
      readyBundles: '0/1',
      state: BundleState.Modified,
      ready: ['False', 'Drifted'],
      recheck: true,
    },
    {
      name: 'a bundle not applied yet waits',
      bds: [bd('a', 'waiting')],
      lastSeen: ago(1),
      readyBundles: '0/1',
      state: BundleState.WaitApplied,
      ready: ['False', 'Progressing'],
      recheck: true,
    },
    {
      name: 'an agent silent for 3 heartbeats is not seen, even with ready bundles',
      bds: [bd('a', 'ready')],
      lastSeen: ago(45),
      readyBundles: '1/1',
      state: BundleState.Ready,
      ready: ['False', 'AgentNotSeen'],
      recheck: false,
    },
    {
      name: 'an agent that never reported gets a grace period from creation',
      bds: [],
      createdAt: ago(20),
      readyBundles: '0/0',
      ready: ['Unknown', 'Progressing'],
      recheck: true,
    },
    {
      name: 'an agent that never reported after the grace period is not seen',
      bds: [],
      createdAt: ago(46),
      readyBundles: '0/0',
      ready: ['False', 'AgentNotSeen'],
      recheck: false,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const r = clusterRollup({ bundleDeployments: c.bds, lastSeen: c.lastSeen, createdAt: c.createdAt, now: NOW });
      expect(r.display.readyBundles).to.equal(c.readyBundles);
      expect(r.display.state).to.equal(c.state);
      expect([r.ready.status, r.ready.reason]).to.deep.equal(c.ready);
      expect(r.recheckAfterMs !== undefined).to.equal(c.recheck);
      expect(r.desiredReadyBundles).to.equal(c.bds.length);
    });
  }

  it('rechecks just after the agent would miss its third heartbeat', () => {
    const r = clusterRollup({ bundleDeployments: [], lastSeen: ago(10), now: NOW, heartbeatMs: 15_000 });
    expect(r.recheckAfterMs).to.equal(35_000 + 1000);
  });

  it('judges an agent by the interval it announces: 45 s of silence is three missed 15 s reports, but not of 60 s ones', () => {
    const quick = clusterRollup({ bundleDeployments: [], lastSeen: ago(45), reportedHeartbeatSeconds: 15, now: NOW });
    expect(quick.ready.reason).to.equal('AgentNotSeen');
    expect(quick.ready.message).to.include('expected every 15s');
    const slow = clusterRollup({ bundleDeployments: [], lastSeen: ago(45), reportedHeartbeatSeconds: 60, now: NOW, heartbeatMs: 15_000 });
    expect(slow.ready.status).to.equal('True');
    expect(slow.recheckAfterMs, 'looks again just after the third 60 s report is missed').to.equal(180_000 - 45_000 + 1000);
    const late = clusterRollup({ bundleDeployments: [], lastSeen: ago(181), reportedHeartbeatSeconds: 60, now: NOW });
    expect(late.ready.reason).to.equal('AgentNotSeen');
    expect(late.ready.message).to.include('expected every 60s');
  });

  it("assumes the controller's interval for an agent that announces none (or nonsense)", () => {
    for (const reported of [undefined, 0, -5, Number.NaN]) {
      const r = clusterRollup({ bundleDeployments: [], lastSeen: ago(50), reportedHeartbeatSeconds: reported, now: NOW, heartbeatMs: 15_000 });
      expect(r.ready.reason, String(reported)).to.equal('AgentNotSeen');
    }
  });

  it('lists at most 10 non-ready bundle deployments, in name order, with why', () => {
    const bds = Array.from({ length: 12 }, (_, i) => bd(`bd-${String(11 - i).padStart(2, '0')}`, 'failed'));
    const r = clusterRollup({ bundleDeployments: bds, lastSeen: ago(1), now: NOW });
    expect(r.summary.nonReadyResources?.map((e) => e.name)).to.deep.equal(Array.from({ length: 10 }, (_, i) => `bd-${String(i).padStart(2, '0')}`));
    expect(r.summary.nonReadyResources?.[0]?.message).to.equal('admission webhook denied');
    expect(r.summary.errApplied).to.equal(12);
  });
});

describe('groupRollup', () => {
  const cluster = (name: string, labels: Record<string, string>, ready: boolean, bundles: [number, number]): ClusterView => ({
    metadata: { name, labels },
    status: {
      summary: {
        notReady: bundles[1] - bundles[0],
        waitApplied: 0,
        errApplied: 0,
        outOfSync: 0,
        modified: 0,
        ready: bundles[0],
        pending: 0,
        desiredReady: bundles[1],
      },
      display: { readyBundles: `${bundles[0]}/${bundles[1]}`, state: bundles[0] === bundles[1] ? 'Ready' : 'NotReady' },
      conditions: [
        {
          type: 'Ready',
          status: ready ? 'True' : 'False',
          reason: ready ? 'Succeeded' : 'ResourcesNotReady',
          message: ready ? 'ok' : 'not ready',
          lastTransitionTime: ago(1),
        },
      ],
    },
  });
  const clusters = [
    cluster('eu-1', { env: 'prod', region: 'eu' }, true, [2, 2]),
    cluster('eu-2', { env: 'prod', region: 'eu' }, false, [1, 2]),
    cluster('us-1', { env: 'prod', region: 'us' }, true, [2, 2]),
    cluster('dev-1', { env: 'dev' }, false, [0, 1]),
  ];
  const cases: {
    name: string;
    selector?: { matchLabels?: Record<string, string> };
    count: number;
    nonReady: string[];
    readyClusters: string;
    readyBundles: string;
    ready: string;
  }[] = [
    {
      name: 'counts the clusters its selector matches and names the non-ready ones',
      selector: { matchLabels: { env: 'prod' } },
      count: 3,
      nonReady: ['eu-2'],
      readyClusters: '2/3',
      readyBundles: '5/6',
      ready: 'False',
    },
    {
      name: 'is Ready when every member is',
      selector: { matchLabels: { region: 'us' } },
      count: 1,
      nonReady: [],
      readyClusters: '1/1',
      readyBundles: '2/2',
      ready: 'True',
    },
    {
      name: 'an empty selector matches every cluster',
      selector: {},
      count: 4,
      nonReady: ['dev-1', 'eu-2'],
      readyClusters: '2/4',
      readyBundles: '5/7',
      ready: 'False',
    },
    { name: 'no selector matches no cluster', count: 0, nonReady: [], readyClusters: '0/0', readyBundles: '0/0', ready: 'True' },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const r = groupRollup({ name: 'g', selector: c.selector }, clusters);
      expect(r.clusterCount).to.equal(c.count);
      expect(r.nonReadyClusters).to.deep.equal(c.nonReady);
      expect(r.nonReadyClusterCount).to.equal(c.nonReady.length);
      expect(r.display.readyClusters).to.equal(c.readyClusters);
      expect(r.display.readyBundles).to.equal(c.readyBundles);
      expect(r.ready.status).to.equal(c.ready);
    });
  }

  it('bounds the non-ready list to 10 names while counting them all', () => {
    const many = Array.from({ length: 15 }, (_, i) => cluster(`c-${String(i).padStart(2, '0')}`, { all: 'yes' }, false, [0, 1]));
    const r = groupRollup({ name: 'g', selector: { matchLabels: { all: 'yes' } } }, many);
    expect(r.nonReadyClusterCount).to.equal(15);
    expect(r.nonReadyClusters).to.have.length(10);
    expect(r.summary.nonReadyResources).to.have.length(10);
    expect(r.ready.message).to.match(/ and 5 more$/);
  });
});

describe('progressingWait: a Ready Cluster rides out a rollout round', () => {
  const t0 = 1_000_000;
  const progressing = { status: 'False' as const, reason: Reason.Progressing };
  it('waits while the stored Ready is True and only progressing bundles are not ready, from the first such run', () => {
    expect(progressingWait({ status: 'True' }, progressing, undefined, t0)).to.equal(CLUSTER_PROGRESSING_GRACE_MS);
    expect(progressingWait({ status: 'True' }, progressing, t0, t0 + 1000)).to.equal(CLUSTER_PROGRESSING_GRACE_MS - 1000);
  });
  it('is what the roll-up of a cluster whose new version is written but not applied yet gives', () => {
    const next = clusterRollup({ bundleDeployments: [bd('a', 'ready'), bd('b', 'waiting')], lastSeen: ago(1), now: NOW }).ready;
    expect(progressingWait({ status: 'True' }, next, undefined, t0)).to.equal(CLUSTER_PROGRESSING_GRACE_MS);
    const failed = clusterRollup({ bundleDeployments: [bd('a', 'ready'), bd('b', 'waiting'), bd('c', 'failed')], lastSeen: ago(1), now: NOW }).ready;
    expect(progressingWait({ status: 'True' }, failed, undefined, t0)).to.equal(undefined);
  });
  it('writes once the grace is over', () => {
    expect(progressingWait({ status: 'True' }, progressing, t0, t0 + CLUSTER_PROGRESSING_GRACE_MS)).to.equal(undefined);
  });
  it('writes at once a failure, drift, a silent agent, a Cluster not Ready before, and any change towards Ready', () => {
    for (const reason of [Reason.ApplyFailed, Reason.Drifted, Reason.ResourcesNotReady, Reason.AgentNotSeen]) {
      expect(progressingWait({ status: 'True' }, { status: 'False', reason }, undefined, t0), reason).to.equal(undefined);
    }
    expect(progressingWait({ status: 'False' }, progressing, undefined, t0)).to.equal(undefined);
    expect(progressingWait(undefined, progressing, undefined, t0)).to.equal(undefined);
    expect(progressingWait({ status: 'False' }, { status: 'True', reason: Reason.Succeeded }, t0, t0)).to.equal(undefined);
  });
});
