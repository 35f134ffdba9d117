import { expect } from 'chai';
import { getCondition, type NonReadyStatus } from '../lib/api/index.js';
import { inventoryFromConfigMap, inventoryToConfigMap } from './inventory.js';
import { msUntilDeadline, readyDeadlineOf } from './readytimeout.js';
import { computeStatus, type MonitorResult, type StatusInput } from './status.js';

const appliedAt = '2026-03-01T10:00:00.000Z';
const at = (seconds: number) => new Date(Date.parse(appliedAt) + seconds * 1000);
const id = { apiVersion: 'apps/v1', kind: 'Deployment', namespace: 'app', name: 'web' };
const waiting: NonReadyStatus = { ...id, summary: { state: 'in-progress', message: '0 of 2 replicas available', transitioning: true } };
const monitor = (nonReady: NonReadyStatus[]): MonitorResult => ({ resources: [id], nonReady, modified: [] });

function input(over: Partial<StatusInput>): StatusInput {
  return {
    previous: undefined,
    generation: 2,
    deploymentID: 's-v2',
    forceSyncGeneration: undefined,
    appliedDeploymentID: 's-v2',
    paused: false,
    failure: undefined,
    monitor: monitor([waiting]),
    now: at(0),
    readyDeadline: readyDeadlineOf(30, appliedAt),
    ...over,
  };
}

describe('helm.timeoutSeconds: the applied version must be ready in time', () => {
  it('has no deadline without a timeout, with 0, or without a recorded apply time', () => {
    expect(readyDeadlineOf(undefined, appliedAt)).to.equal(undefined);
    expect(readyDeadlineOf(0, appliedAt)).to.equal(undefined);
    expect(readyDeadlineOf(30, undefined)).to.equal(undefined);
    expect(readyDeadlineOf(30, 'not a time')).to.equal(undefined);
    expect(readyDeadlineOf(30, appliedAt)).to.deep.equal({ timeoutSeconds: 30, appliedAt: new Date(appliedAt) });
  });

  it('counts down from the apply time', () => {
    const deadline = readyDeadlineOf(30, appliedAt)!;
    expect(msUntilDeadline(deadline, at(10))).to.equal(20_000);
    expect(msUntilDeadline(deadline, at(45))).to.equal(0);
  });

  it('reports not-ready objects as progressing before the deadline', () => {
    const status = computeStatus(input({ now: at(29) }));
    expect(getCondition(status.conditions, 'Deployed')).to.include({ status: 'True', reason: 'Succeeded' });
    expect(getCondition(status.conditions, 'Ready')).to.include({ status: 'False', reason: 'ResourcesNotReady' });
    expect(status.display?.state).to.equal('NotReady');
  });

  it('fails the deployment (Deployed and Ready False, ReadyTimeout, ErrApplied) once the deadline passed', () => {
    const status = computeStatus(input({ now: at(30) }));
    const deployed = getCondition(status.conditions, 'Deployed');
    expect(deployed).to.include({ status: 'False', reason: 'ReadyTimeout' });
    expect(deployed?.message).to.equal(
      'deployment s-v2 applied, but 1 resource is not ready within helm.timeoutSeconds (30s); see nonReadyStatus, fix the workload or raise helm.timeoutSeconds',
    );
    expect(getCondition(status.conditions, 'Ready')).to.include({ status: 'False', reason: 'ReadyTimeout' });
    expect(status.display?.state).to.equal('ErrApplied');
    expect(status.appliedDeploymentID).to.equal('s-v2');
    expect(status.nonReadyStatus).to.deep.equal([waiting]);
  });

  it('is Ready again once every object is ready, even after the deadline', () => {
    const failed = computeStatus(input({ now: at(60) }));
    const status = computeStatus(input({ previous: failed, now: at(90), monitor: monitor([]) }));
    expect(getCondition(status.conditions, 'Deployed')).to.include({ status: 'True', reason: 'Succeeded' });
    expect(getCondition(status.conditions, 'Ready')).to.include({ status: 'True' });
    expect(status.display?.state).to.equal('Ready');
  });

  it('never times out without helm.timeoutSeconds', () => {
    const status = computeStatus(input({ now: at(86_400), readyDeadline: readyDeadlineOf(undefined, appliedAt) }));
    expect(getCondition(status.conditions, 'Deployed')).to.include({ status: 'True' });
    expect(getCondition(status.conditions, 'Ready')).to.include({ reason: 'ResourcesNotReady' });
  });

  it('leaves a failure to apply, and a version not applied yet, as they are', () => {
    const failure = { reason: 'ApplyFailed', message: 'refused', stage: 'deploy' as const };
    const failed = computeStatus(input({ now: at(60), failure }));
    expect(getCondition(failed.conditions, 'Deployed')).to.include({ status: 'False', reason: 'ApplyFailed' });
    const pending = computeStatus(input({ now: at(60), appliedDeploymentID: 's-v1' }));
    expect(getCondition(pending.conditions, 'Deployed')).to.include({ status: 'Unknown', reason: 'Progressing' });
  });

  it('keeps the apply time in the inventory, so an agent restart does not restart the clock', () => {
    const inv = { bundleDeployment: 'web', deploymentID: 's-v2', syncGeneration: 0, keepResources: false, objects: [id], appliedAt };
    expect(inventoryFromConfigMap(inventoryToConfigMap(inv, 'flotilla-system', 'cluster-ns'))).to.deep.equal(inv);
    const { appliedAt: _dropped, ...older } = inv; // an inventory written before apply times were recorded
    expect(inventoryFromConfigMap(inventoryToConfigMap(older, 'flotilla-system', 'cluster-ns'))).to.deep.equal(older);
  });
});
