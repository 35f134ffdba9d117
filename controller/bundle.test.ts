import { expect } from 'chai';
import { BundleState, emptyBundleSummary, type BundleSummary } from '../lib/api/index.js';
import { notReadyMessage } from './bundle.js';

describe('Bundle Ready message', () => {
  const summary = (nonReady: BundleSummary['nonReadyResources']): BundleSummary => ({
    ...emptyBundleSummary(),
    ...(nonReady ? { nonReadyResources: nonReady } : {}),
  });
  const cases: { name: string; summary: BundleSummary; want: string }[] = [
    { name: 'is empty when every cluster is ready', summary: summary(undefined), want: '' },
    { name: 'names the first cluster and its state', summary: summary([{ name: 'c1', bundleState: BundleState.NotReady }]), want: 'c1: NotReady' },
    {
      name: 'carries why the agent refused the bundle',
      want: 'c1: ErrApplied (pulling r@sha256:1: layer "../x": path contains "..")',
      summary: summary([
        { name: 'c1', bundleState: BundleState.ErrApplied, message: 'pulling r@sha256:1: layer "../x": path contains ".."' },
        { name: 'c2', bundleState: BundleState.ErrApplied, message: 'other' },
      ]),
    },
  ];
  for (const c of cases) it(c.name, () => expect(notReadyMessage(c.summary)).to.equal(c.want));

  it('stays within a condition message', () => {
    expect(notReadyMessage(summary([{ name: 'c1', bundleState: BundleState.ErrApplied, message: 'x'.repeat(5000) }]))).to.have.length(1024);
  });
});
