import { expect } from 'chai';
import { utf8Lines } from './lines.js';

async function collect(chunks: (Uint8Array | string)[]): Promise<string[]> {
  async function* source() {
    for (const c of chunks) yield c;
  }
  const out: string[] = [];
  for await (const line of utf8Lines(source())) out.push(line);
  return out;
}

describe('utf8Lines (watch stream decoding)', () => {
  const event = JSON.stringify({ type: 'ADDED', object: { metadata: { name: 'x', annotations: { note: 'café ☃ 🚢 Flotilla' } } } });
  const bytes = Buffer.from(`${event}\n`, 'utf8');

  it('decodes a multi-byte character split between two chunks', async () => {
    for (const char of ['é', '☃', '🚢']) {
      const at = bytes.indexOf(Buffer.from(char, 'utf8'));
      // Split after the first byte of the character, and (for longer ones) after every later byte too.
      for (let cut = at + 1; cut < at + Buffer.byteLength(char); cut++) {
        const lines = await collect([bytes.subarray(0, cut), bytes.subarray(cut)]);
        expect(lines, `${char} cut at byte ${cut - at}`).to.deep.equal([event]);
      }
    }
  });

  it('decodes a stream delivered one byte at a time', async () => {
    const chunks = [...bytes].map((b) => Uint8Array.of(b));
    expect(await collect(chunks)).to.deep.equal([event]);
  });

  it('splits lines across and within chunks and skips blank ones', async () => {
    const lines = await collect([Buffer.from('{"a":1}\n\n{"b"'), Buffer.from(':2}\n{"c":3}')]);
    expect(lines).to.deep.equal(['{"a":1}', '{"b":2}', '{"c":3}']);
  });
});

describe('KubeClient.watch', function () {
  // The first import of @kubernetes/client-node in the run happens here; on a loaded machine it alone took > 20 s.
  this.timeout(60_000);

  it('delivers an object whose multi-byte character the server split across two writes intact', async () => {
    const { createServer } = await import('node:http');
    const { KubeConfig } = await import('@kubernetes/client-node');
    const { KubeClient } = await import('./client.js');
    const note = 'Größe ☃ 🚢';
    const line = Buffer.from(`${JSON.stringify({ type: 'ADDED', object: { metadata: { name: 'cm', annotations: { note } } } })}\n`, 'utf8');
    const cut = line.indexOf(Buffer.from('🚢', 'utf8')) + 2; // inside the 4-byte character
    const server = createServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      if (req.url === '/api/v1') {
        res.end(JSON.stringify({ resources: [{ name: 'configmaps', kind: 'ConfigMap', namespaced: true, verbs: ['watch'] }] }));
        return;
      }
      res.write(line.subarray(0, cut));
      setTimeout(() => res.end(line.subarray(cut)), 50); // two TCP writes: two chunks at the client
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
      users: [{ name: 'u' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    const client = await KubeClient.fromKubeConfig(kc);
    try {
      const seen: string[] = [];
      await client.watch<{ apiVersion: string; kind: string; metadata: { name: string; annotations?: Record<string, string> } }>(
        { apiVersion: 'v1', kind: 'ConfigMap', namespace: 'default' },
        '1',
        (_type, obj) => seen.push(obj.metadata.annotations?.note ?? ''),
      );
      expect(seen).to.deep.equal([note]);
    } finally {
      await client.close();
      server.close();
    }
  });
});
