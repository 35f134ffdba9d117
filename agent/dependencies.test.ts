import { expect } from 'chai';
import { Label, type BundleRef } from '../lib/api/index.js';
import { unreadyDependencies } from './dependencies.js';

function bd(name: string, opts: { ready?: boolean; applied?: string; state?: string; labels?: Record<string, string>; dependsOn?: BundleRef[] } = {}) {
  return {
    metadata: { name, labels: { [Label.BundleName]: name, [Label.BundleNamespace]: 'ws', ...opts.labels } },
    spec: { deploymentID: 'd1', ...(opts.dependsOn ? { dependsOn: opts.dependsOn } : {}) },
    status: { ready: opts.ready ?? false, appliedDeploymentID: opts.applied ?? 'd1', ...(opts.state ? { display: { state: opts.state } } : {}) },
  };
}

describe('agent dependsOn', () => {
  const cases: { name: string; dependsOn: BundleRef[]; others: ReturnType<typeof bd>[]; want: string[] }[] = [
    { name: 'is satisfied by a ready bundle of that name', dependsOn: [{ name: 'db' }], others: [bd('db', { ready: true })], want: [] },
    { name: 'waits for a bundle that is not ready', dependsOn: [{ name: 'db' }], others: [bd('db')], want: ['bundle db (not ready)'] },
    {
      name: 'waits for a bundle whose latest deployment is not applied yet',
      dependsOn: [{ name: 'db' }],
      others: [bd('db', { ready: true, applied: 'd0' })],
      want: ['bundle db (not ready)'],
    },
    { name: 'waits for a bundle not deployed to this cluster', dependsOn: [{ name: 'db' }], others: [], want: ['bundle db (not deployed to this cluster)'] },
    {
      name: 'ignores a same-named bundle of another bundle namespace',
      dependsOn: [{ name: 'db' }],
      others: [bd('db', { ready: true, labels: { [Label.BundleNamespace]: 'other' } })],
      want: ['bundle db (not deployed to this cluster)'],
    },
    {
      name: 'needs every bundle a selector matches to be ready',
      dependsOn: [{ selector: { matchLabels: { tier: 'data' } } }],
      others: [bd('db', { ready: true, labels: { tier: 'data' } }), bd('cache', { labels: { tier: 'data' } })],
      want: ['bundles matching tier=data (not ready)'],
    },
    {
      name: 'is satisfied when every selected bundle is ready',
      dependsOn: [{ selector: { matchLabels: { tier: 'data' } } }],
      others: [bd('db', { ready: true, labels: { tier: 'data' } }), bd('web', { labels: { tier: 'front' } })],
      want: [],
    },
    {
      name: 'accepts a dependency in one of its acceptedStates',
      dependsOn: [{ name: 'db', acceptedStates: ['Ready', 'Modified'] }],
      others: [bd('db', { state: 'Modified' })],
      want: [],
    },
    {
      name: 'waits for a dependency whose state is not accepted, naming the state',
      dependsOn: [{ name: 'db', acceptedStates: ['Ready', 'Modified'] }],
      others: [bd('db', { state: 'ErrApplied' })],
      want: ['bundle db (ErrApplied; accepted: Ready, Modified)'],
    },
    {
      name: 'counts a dependency whose deployment is not applied as WaitApplied',
      dependsOn: [{ name: 'db', acceptedStates: ['NotReady'] }],
      others: [bd('db', { applied: 'd0' })],
      want: ['bundle db (WaitApplied; accepted: NotReady)'],
    },
    {
      name: 'accepts a NotReady dependency when NotReady is accepted',
      dependsOn: [{ name: 'db', acceptedStates: ['NotReady'] }],
      others: [bd('db')],
      want: [],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const self = bd('web', { dependsOn: c.dependsOn });
      expect(unreadyDependencies(self, [self, ...c.others])).to.deep.equal(c.want);
    });
  }
});
