import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { expect } from 'chai';
import { KubeClient } from './client.js';

/**
 * Which field manager the API server records for writes that are not applies: the client's own name
 * when it has one, so no writer shows up as "unknown" in managedFields. An in-process HTTP server
 * records the requests (discovery answered for one kind).
 */
describe('KubeClient field manager of non-apply writes', () => {
  let server: Server;
  let url: string;
  const seen: { method: string; url: string }[] = [];

  before(async () => {
    server = createServer((req, res) => {
      seen.push({ method: req.method ?? '', url: req.url ?? '' });
      res.setHeader('content-type', 'application/json');
      if (req.url === '/api/v1') {
        res.end(JSON.stringify({ resources: [{ name: 'configmaps', kind: 'ConfigMap', namespaced: true }] }));
        return;
      }
      req.resume();
      req.on('end', () => res.end(JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', namespace: 'n' } })));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  async function clientWith(fieldManager?: string): Promise<KubeClient> {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: url, skipTLSVerify: true }],
      users: [{ name: 'u' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    return await KubeClient.fromKubeConfig(kc, fieldManager ? { fieldManager } : {});
  }

  const ref = { apiVersion: 'v1', kind: 'ConfigMap', namespace: 'n', name: 'c' };
  const writes = async (kube: KubeClient) => {
    seen.length = 0;
    await kube.mergePatch(ref, { data: { a: '1' } });
    await kube.patchStatus(ref, { x: 1 });
    await kube.jsonPatch(ref, [{ op: 'add', path: '/data/b', value: '2' }]);
    await kube.create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', namespace: 'n' } });
    await kube.apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', namespace: 'n' } }, 'own-apply');
    await kube.close();
    return seen.filter((r) => r.method !== 'GET');
  };

  it('names its field manager on merge patches (object and status), JSON patches and creates', async () => {
    const sent = await writes(await clientWith('flotilla-agent'));
    expect(sent.map((r) => r.method)).to.deep.equal(['PATCH', 'PATCH', 'PATCH', 'POST', 'PATCH']);
    for (const r of sent.slice(0, 4)) expect(r.url, r.url).to.match(/\?fieldManager=flotilla-agent$/);
    expect(sent[1]?.url).to.match(/\/configmaps\/c\/status\?/);
  });

  it('keeps the manager an apply names, whatever the client has', async () => {
    const sent = await writes(await clientWith('flotilla-agent'));
    expect(sent.at(-1)?.url).to.match(/\?fieldManager=own-apply&force=true$/);
  });

  it('sends no field manager on other writes without one (the API server then says "unknown")', async () => {
    const sent = await writes(await clientWith());
    for (const r of sent.slice(0, 4)) expect(r.url, r.url).to.not.include('fieldManager');
  });
});
