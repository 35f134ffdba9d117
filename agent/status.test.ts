import { expect } from 'chai';
import { getCondition, type ModifiedStatus, type NonReadyStatus } from '../lib/api/index.js';
import { mergeStatusWriter } from '../lib/kube/reconciler-status.js';
import { DEPLOYED_MESSAGE, bounded, computeStatus, listMessage, type MonitorResult, type StatusInput } from './status.js';

const now = new Date('2026-01-01T00:00:00Z');
const ids = (n: number) => Array.from({ length: n }, (_, i) => ({ apiVersion: 'v1', kind: 'ConfigMap', namespace: 'app', name: `c${i}` }));
const notReady = (n: number): NonReadyStatus[] => ids(n).map((id) => ({ ...id, summary: { state: 'in-progress', message: 'warming', transitioning: true } }));
const modified = (n: number): ModifiedStatus[] => ids(n).map((id) => ({ ...id, missing: true }));
const monitor = (m: Partial<MonitorResult> = {}): MonitorResult => ({ resources: ids(2), nonReady: [], modified: [], ...m });

function input(over: Partial<StatusInput> = {}): StatusInput {
  return {
    previous: undefined,
    generation: 4,
    deploymentID: 's-new',
    forceSyncGeneration: undefined,
    appliedDeploymentID: 's-new',
    paused: false,
    failure: undefined,
    monitor: monitor(),
    now,
    ...over,
  };
}

describe('agent status', () => {
  const cases: { name: string; input: StatusInput; ready: string; deployed: string; monitored: string; reason: string; state: string }[] = [
    { name: 'applied, ready and unmodified is Ready', input: input(), ready: 'True', deployed: 'True', monitored: 'True', reason: 'Succeeded', state: 'Ready' },
    {
      name: 'a registry that cannot be reached keeps the old deployment and says why',
      input: input({
        appliedDeploymentID: 's-old',
        monitor: undefined,
        failure: { reason: 'RegistryUnreachable', message: 'connection refused', stage: 'deploy' },
      }),
      ready: 'False',
      deployed: 'False',
      monitored: 'False',
      reason: 'RegistryUnreachable',
      state: 'ErrApplied',
    },
    {
      name: 'a tampered artifact is reported as such',
      input: input({
        appliedDeploymentID: undefined,
        monitor: undefined,
        failure: { reason: 'ArtifactTampered', message: 'digest mismatch', stage: 'deploy' },
      }),
      ready: 'False',
      deployed: 'False',
      monitored: 'False',
      reason: 'ArtifactTampered',
      state: 'ErrApplied',
    },
    {
      name: 'a failure while only monitoring leaves Deployed true',
      input: input({ monitor: undefined, failure: { reason: 'RegistryUnreachable', message: 'down', stage: 'monitor' } }),
      ready: 'False',
      deployed: 'True',
      monitored: 'False',
      reason: 'RegistryUnreachable',
      state: 'NotReady',
    },
    {
      name: 'drift is Modified, reason Drifted',
      input: input({ monitor: monitor({ modified: modified(1) }) }),
      ready: 'False',
      deployed: 'True',
      monitored: 'True',
      reason: 'Drifted',
      state: 'Modified',
    },
    {
      name: 'objects not ready yet are NotReady',
      input: input({ monitor: monitor({ nonReady: notReady(1) }) }),
      ready: 'False',
      deployed: 'True',
      monitored: 'True',
      reason: 'ResourcesNotReady',
      state: 'NotReady',
    },
    {
      name: 'paused with a newer deployment waiting is OutOfSync',
      input: input({ paused: true, appliedDeploymentID: 's-old' }),
      ready: 'False',
      deployed: 'False',
      monitored: 'True',
      reason: 'Paused',
      state: 'OutOfSync',
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const status = computeStatus(c.input);
      expect(getCondition(status.conditions, 'Ready')?.status).to.equal(c.ready);
      expect(getCondition(status.conditions, 'Ready')?.reason).to.equal(c.reason);
      expect(getCondition(status.conditions, 'Deployed')?.status).to.equal(c.deployed);
      expect(getCondition(status.conditions, 'Monitored')?.status).to.equal(c.monitored);
      expect(status.display?.state).to.equal(c.state);
      expect(status.ready).to.equal(c.ready === 'True');
    });
  }

  it('names the other bundle deployment of an object two bundles deploy, and says to keep it in one', () => {
    const shared = { apiVersion: 'v1', kind: 'Namespace', name: 'app', ownedBy: 'cluster-x/other-repo-app' };
    const status = computeStatus(input({ monitor: monitor({ modified: [shared] }) }));
    expect(getCondition(status.conditions, 'Ready')?.message).to.equal(
      '1 resource modified or missing: Namespace app (also deployed by cluster-x/other-repo-app: keep it in one bundle)',
    );
    expect(status.modifiedStatus?.[0]?.ownedBy).to.equal('cluster-x/other-repo-app');
  });

  it('bounds the lists: 10 non-ready, 10 modified, 100 resources, and counts all of them in the message', () => {
    const status = computeStatus(input({ monitor: monitor({ resources: ids(150), nonReady: notReady(25), modified: modified(30) }) }));
    expect(status.nonReadyStatus).to.have.length(10);
    expect(status.modifiedStatus).to.have.length(10);
    expect(status.resources).to.have.length(100);
    expect(getCondition(status.conditions, 'Ready')?.message).to.match(/^30 resources modified or missing: .* and 27 more$/);
    expect(status.nonModified).to.equal(false);
  });

  it('keeps the previous lists when the objects were not looked at', () => {
    const before = computeStatus(input({ monitor: monitor({ modified: modified(2) }) }));
    const after = computeStatus(input({ previous: before, monitor: undefined, failure: { reason: 'RegistryUnreachable', message: 'x', stage: 'deploy' } }));
    expect(after.modifiedStatus).to.deep.equal(before.modifiedStatus);
    expect(after.resources).to.deep.equal(before.resources);
  });

  it('keeps the transition time of a condition whose status did not change', () => {
    const first = computeStatus(input());
    const later = computeStatus(input({ previous: first, now: new Date('2026-01-02T00:00:00Z') }));
    expect(getCondition(later.conditions, 'Ready')?.lastTransitionTime).to.equal('2026-01-01T00:00:00Z');
  });

  it('records the applied deployment and the sync generation acted on', () => {
    const status = computeStatus(input({ forceSyncGeneration: 3 }));
    expect(status.appliedDeploymentID).to.equal('s-new');
    expect(status.syncGeneration).to.equal(3);
    expect(status.observedGeneration).to.equal(4);
  });

  it('counts the ready resources in the Ready message, singular or plural', () => {
    const message = (n: number) => getCondition(computeStatus(input({ monitor: monitor({ resources: ids(n) }) })).conditions, 'Ready')?.message;
    expect(message(1)).to.equal('1 resource ready');
    expect(message(3)).to.equal('3 resources ready');
  });

  it('counts the checked resources in the Monitored message, singular or plural', () => {
    const message = (n: number) => getCondition(computeStatus(input({ monitor: monitor({ resources: ids(n) }) })).conditions, 'Monitored')?.message;
    expect(message(1)).to.equal('1 resource checked: 0 not ready, 0 modified or missing');
    expect(message(2)).to.equal('2 resources checked: 0 not ready, 0 modified or missing');
  });

  it('lists at most three items in a message', () => {
    expect(listMessage('not ready', ['a', 'b'])).to.equal('2 resources not ready: a, b');
    expect(listMessage('not ready', ['a'])).to.equal('1 resource not ready: a');
    expect(listMessage('x', ['a', 'b', 'c', 'd', 'e'])).to.equal('5 resources x: a, b, c and 2 more');
  });

  describe('what is kept in etcd', () => {
    it('leaves out empty nonReadyStatus and modifiedStatus lists, and keeps the resources', () => {
      const status = computeStatus(input());
      expect(status).to.not.have.any.keys('nonReadyStatus', 'modifiedStatus');
      expect(status.resources).to.have.length(2);
      expect(status.nonModified).to.equal(true);
    });

    it('writes a list that became empty as a removal (merge patch null), not as a stale list', async () => {
      const before = computeStatus(input({ monitor: monitor({ modified: modified(2), nonReady: notReady(1) }) }));
      const after = computeStatus(input({ previous: before }));
      const patches: unknown[] = [];
      const writer = mergeStatusWriter({
        mergePatch: async (_ref: unknown, patch: unknown) => {
          patches.push(patch);
          return {} as never;
        },
        applyStatus: async () => ({}) as never,
      });
      const obj = { apiVersion: 'flotilla.dev/v1alpha1', kind: 'BundleDeployment', metadata: { name: 'b', namespace: 'c' } };
      expect(writer.changed(before, after)).to.equal(true);
      await writer.write(obj, before, after);
      const status = (patches[0] as { status: Record<string, unknown> }).status;
      expect(status.modifiedStatus).to.equal(null);
      expect(status.nonReadyStatus).to.equal(null);
    });

    it('does not repeat the deployment ID in the Deployed message (it is status.appliedDeploymentID)', () => {
      const id = `s-${'a'.repeat(64)}:${'b'.repeat(64)}`;
      const status = computeStatus(input({ deploymentID: id, appliedDeploymentID: id }));
      expect(getCondition(status.conditions, 'Deployed')?.message).to.equal(DEPLOYED_MESSAGE);
      expect(status.appliedDeploymentID).to.equal(id);
      expect(JSON.stringify(status).split(id)).to.have.length(2);
    });
  });

  it('bounded keeps the first entries', () => {
    expect(bounded([1, 2, 3], 2)).to.deep.equal([1, 2]);
  });
});
