import { expect } from 'chai';
import { KubeApiError, type KubeClient, type KubeObject } from '../lib/kube/client.js';
import { Applier, NAMESPACE_TRUST_MS } from './applier.js';

/** A downstream API of namespaces and ConfigMaps, recording each request. */
function fakeDownstream() {
  const namespaces = new Set<string>();
  const calls: string[] = [];
  const client = {
    get: async (ref: { kind: string; name: string }) => {
      calls.push(`GET ${ref.kind} ${ref.name}`);
      return ref.kind === 'Namespace' && namespaces.has(ref.name) ? { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ref.name } } : undefined;
    },
    pathFor: async (ref: { kind: string; namespace?: string; name: string }) => `/${ref.kind}/${ref.namespace ?? ''}/${ref.name}`,
    raw: async (_method: string, path: string, body: KubeObject) => {
      calls.push(`APPLY ${body.kind} ${body.metadata.name}${path.includes('dryRun') ? ' (dry run)' : ''}`);
      if (body.kind === 'Namespace') namespaces.add(body.metadata.name);
      else if (body.metadata.namespace && !namespaces.has(body.metadata.namespace)) {
        throw new KubeApiError(404, 'NotFound', `namespaces "${body.metadata.namespace}" not found`);
      }
      return body;
    },
    delete: async (ref: { kind: string; name: string }) => {
      calls.push(`DELETE ${ref.kind} ${ref.name}`);
      return ref.kind === 'Namespace' ? namespaces.delete(ref.name) : false;
    },
  };
  return { namespaces, calls, client: client as unknown as KubeClient };
}

const configMap = (namespace: string): KubeObject => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cm', namespace } });

describe('Applier.ensureNamespace: a namespace found or made is not read again while trusted', () => {
  it('reads an existing namespace once, and creates a missing one once', async () => {
    let now = 0;
    const f = fakeDownstream();
    f.namespaces.add('apps');
    const applier = new Applier(f.client, {}, () => now);
    await applier.ensureNamespace({ name: 'apps' });
    await applier.ensureNamespace({ name: 'apps' });
    await applier.ensureNamespace({ name: 'new' });
    await applier.ensureNamespace({ name: 'new' });
    expect(f.calls).to.deep.equal(['GET Namespace apps', 'GET Namespace new', 'APPLY Namespace new']);
    now += NAMESPACE_TRUST_MS;
    await applier.ensureNamespace({ name: 'apps' });
    expect(f.calls.at(-1), 'read again once the trust period is over').to.equal('GET Namespace apps');
  });

  it('always applies a namespace that carries labels or annotations', async () => {
    const f = fakeDownstream();
    const applier = new Applier(f.client, {}, () => 0);
    await applier.ensureNamespace({ name: 'labelled', labels: { team: 'a' } });
    await applier.ensureNamespace({ name: 'labelled', labels: { team: 'a' } });
    expect(f.calls).to.deep.equal(['APPLY Namespace labelled', 'APPLY Namespace labelled']);
  });

  it('forgets a namespace deleted behind its back once an object in it is refused (404), and creates it on the retry', async () => {
    const f = fakeDownstream();
    const applier = new Applier(f.client, {}, () => 0);
    await applier.ensureNamespace({ name: 'apps' });
    f.namespaces.delete('apps'); // deleted by someone else
    await applier.ensureNamespace({ name: 'apps' });
    let refused: unknown;
    await applier.apply(configMap('apps')).catch((err: unknown) => {
      refused = err;
    });
    expect(String(refused)).to.match(/namespaces "apps" not found/);
    await applier.ensureNamespace({ name: 'apps' });
    await applier.apply(configMap('apps'));
    expect(f.calls).to.deep.equal([
      'GET Namespace apps',
      'APPLY Namespace apps',
      'APPLY ConfigMap cm',
      'GET Namespace apps',
      'APPLY Namespace apps',
      'APPLY ConfigMap cm',
    ]);
  });

  it('forgets a namespace it deletes itself', async () => {
    const f = fakeDownstream();
    const applier = new Applier(f.client, {}, () => 0);
    await applier.ensureNamespace({ name: 'apps' });
    await applier.delete({ apiVersion: 'v1', kind: 'Namespace', name: 'apps' });
    await applier.ensureNamespace({ name: 'apps' });
    expect(f.calls).to.deep.equal(['GET Namespace apps', 'APPLY Namespace apps', 'DELETE Namespace apps', 'GET Namespace apps', 'APPLY Namespace apps']);
  });
});
