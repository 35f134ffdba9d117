import { expect } from 'chai';
import type { KubeObject } from '../lib/kube/client.js';
import { nonReadyStatusOf, readinessOf } from './readiness.js';

function o(apiVersion: string, kind: string, rest: Record<string, unknown> = {}, meta: Record<string, unknown> = {}): KubeObject {
  return { apiVersion, kind, metadata: { name: 'x', namespace: 'ns', ...meta }, ...rest };
}

const cond = (type: string, status: string, message?: string) => ({ type, status, ...(message ? { message } : {}) });

describe('agent readiness', () => {
  const cases: { name: string; obj: KubeObject; state: string; message?: RegExp }[] = [
    { name: 'a ConfigMap is ready as soon as it exists', obj: o('v1', 'ConfigMap'), state: 'ready' },
    { name: 'a Service is ready as soon as it exists', obj: o('v1', 'Service', { spec: { type: 'LoadBalancer' } }), state: 'ready' },
    {
      name: 'a Deployment no controller has seen is in progress',
      obj: o('apps/v1', 'Deployment', { spec: { replicas: 2 } }, { generation: 1 }),
      state: 'in-progress',
      message: /observe generation 1/,
    },
    {
      name: 'a Deployment with too few available replicas is in progress',
      obj: o(
        'apps/v1',
        'Deployment',
        { spec: { replicas: 3 }, status: { observedGeneration: 2, updatedReplicas: 3, readyReplicas: 3, availableReplicas: 1 } },
        { generation: 2 },
      ),
      state: 'in-progress',
      message: /1 of 3 replicas available/,
    },
    {
      name: 'a Deployment with every replica updated, ready and available is ready',
      obj: o(
        'apps/v1',
        'Deployment',
        { spec: { replicas: 3 }, status: { observedGeneration: 2, replicas: 3, updatedReplicas: 3, readyReplicas: 3, availableReplicas: 3 } },
        { generation: 2 },
      ),
      state: 'ready',
    },
    {
      name: 'a Deployment defaults to one replica',
      obj: o(
        'apps/v1',
        'Deployment',
        { spec: {}, status: { observedGeneration: 1, updatedReplicas: 1, readyReplicas: 1, availableReplicas: 1 } },
        { generation: 1 },
      ),
      state: 'ready',
    },
    {
      name: 'a Deployment scaled to zero is ready',
      obj: o('apps/v1', 'Deployment', { spec: { replicas: 0 }, status: { observedGeneration: 1 } }, { generation: 1 }),
      state: 'ready',
    },
    {
      name: 'a Deployment with old replicas still terminating is in progress',
      obj: o(
        'apps/v1',
        'Deployment',
        { spec: { replicas: 1 }, status: { observedGeneration: 1, replicas: 2, updatedReplicas: 1, readyReplicas: 1, availableReplicas: 1 } },
        { generation: 1 },
      ),
      state: 'in-progress',
      message: /pending termination/,
    },
    {
      name: 'a StatefulSet with all replicas ready and updated is ready',
      obj: o('apps/v1', 'StatefulSet', { spec: { replicas: 2 }, status: { observedGeneration: 1, readyReplicas: 2, updatedReplicas: 2 } }, { generation: 1 }),
      state: 'ready',
    },
    {
      name: 'a DaemonSet with a pod not ready is in progress',
      obj: o(
        'apps/v1',
        'DaemonSet',
        { status: { observedGeneration: 1, desiredNumberScheduled: 2, updatedNumberScheduled: 2, numberReady: 1 } },
        { generation: 1 },
      ),
      state: 'in-progress',
      message: /1 of 2 pods ready/,
    },
    { name: 'a completed Job is ready', obj: o('batch/v1', 'Job', { status: { conditions: [cond('Complete', 'True')] } }), state: 'ready' },
    {
      name: 'a failed Job is an error',
      obj: o('batch/v1', 'Job', { status: { conditions: [cond('Failed', 'True', 'BackoffLimitExceeded')] } }),
      state: 'error',
      message: /BackoffLimitExceeded/,
    },
    { name: 'a running Job is in progress', obj: o('batch/v1', 'Job', { status: {} }), state: 'in-progress' },
    { name: 'a pending Pod is in progress', obj: o('v1', 'Pod', { status: { phase: 'Pending' } }), state: 'in-progress' },
    { name: 'a running, ready Pod is ready', obj: o('v1', 'Pod', { status: { phase: 'Running', conditions: [cond('Ready', 'True')] } }), state: 'ready' },
    { name: 'an unbound claim is in progress', obj: o('v1', 'PersistentVolumeClaim', { status: { phase: 'Pending' } }), state: 'in-progress' },
    { name: 'a CRD not yet established is in progress', obj: o('apiextensions.k8s.io/v1', 'CustomResourceDefinition', { status: {} }), state: 'in-progress' },
    {
      name: 'an established CRD is ready',
      obj: o('apiextensions.k8s.io/v1', 'CustomResourceDefinition', { status: { conditions: [cond('Established', 'True')] } }),
      state: 'ready',
    },
    { name: 'a terminating Namespace is in progress', obj: o('v1', 'Namespace', { status: { phase: 'Terminating' } }), state: 'in-progress' },
    {
      name: 'a custom resource with Ready=False is in progress',
      obj: o('example.com/v1', 'Widget', { status: { conditions: [cond('Ready', 'False', 'warming up')] } }),
      state: 'in-progress',
      message: /warming up/,
    },
    {
      name: 'a custom resource with Stalled=True is an error',
      obj: o('example.com/v1', 'Widget', { status: { conditions: [cond('Stalled', 'True', 'bad spec')] } }),
      state: 'error',
    },
    { name: 'a custom resource without conditions is ready', obj: o('example.com/v1', 'Widget'), state: 'ready' },
    { name: 'any object being deleted is in progress', obj: o('v1', 'ConfigMap', {}, { deletionTimestamp: '2026-01-01T00:00:00Z' }), state: 'in-progress' },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const r = readinessOf(c.obj);
      expect(r.state).to.equal(c.state);
      expect(r.ready).to.equal(c.state === 'ready');
      if (c.message) expect(r.message).to.match(c.message);
    });
  }

  it('reports a non-ready object with its state, and flags errors and transitions', () => {
    const job = o('batch/v1', 'Job', { status: { conditions: [cond('Failed', 'True', 'boom')] } });
    expect(nonReadyStatusOf(job, readinessOf(job))).to.deep.equal({
      apiVersion: 'batch/v1',
      kind: 'Job',
      name: 'x',
      namespace: 'ns',
      summary: { state: 'error', message: 'boom', error: true },
    });
    const pod = o('v1', 'Pod', { status: { phase: 'Pending' } });
    expect(nonReadyStatusOf(pod, readinessOf(pod)).summary.transitioning).to.equal(true);
  });

  it('leaves out conditions matched by ignore.conditions (Fleet), and only those', () => {
    const widget = o('example.dev/v1', 'Widget', { status: { conditions: [cond('Ready', 'False', 'warming up'), cond('Stalled', 'True', 'stuck')] } });
    expect(readinessOf(widget).state).to.equal('error');
    expect(readinessOf(widget, [{ type: 'Stalled', status: 'True' }]).state).to.equal('in-progress');
    expect(readinessOf(widget, [{ type: 'Stalled', status: 'True' }, { type: 'Ready' }]).state).to.equal('ready');
    expect(readinessOf(widget, [{ type: 'Stalled', status: 'False' }]).state).to.equal('error');
    expect(readinessOf(widget, [{}]).state).to.equal('error');
  });
});
