import { expect } from 'chai';
import type { BundleDeployment } from '../lib/api/index.js';
import { bundleDeploymentState } from './rollup.js';

describe('roll-up of a BundleDeployment whose version missed helm.timeoutSeconds', () => {
  it('counts the cluster as ErrApplied, as Fleet does for a Helm wait that timed out, and Ready once it recovers', () => {
    const condition = (type: string, status: string, reason: string) => ({ type, status, reason, message: '', lastTransitionTime: '2026-03-01T10:00:30Z' });
    const timedOut = {
      spec: { deploymentID: 's-v2' },
      status: { appliedDeploymentID: 's-v2', conditions: [condition('Deployed', 'False', 'ReadyTimeout'), condition('Ready', 'False', 'ReadyTimeout')] },
    } as BundleDeployment;
    expect(bundleDeploymentState(timedOut)).to.equal('ErrApplied');
    const recovered = {
      ...timedOut,
      status: { appliedDeploymentID: 's-v2', ready: true, conditions: [condition('Deployed', 'True', 'Succeeded'), condition('Ready', 'True', 'Succeeded')] },
    } as BundleDeployment;
    expect(bundleDeploymentState(recovered)).to.equal('Ready');
  });
});
