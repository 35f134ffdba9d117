import { expect } from 'chai';
import { request as httpRequest } from 'node:http';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ActionRequest, ActionResult } from './actions.js';
import type { Snapshot } from './model.js';
import { CSRF_HEADER, STATIC_DIR, STATIC_FILES, startDashboardServer, type DashboardServer } from './server.js';
import { bundle, bundleDeployment, cluster, clusterGroup, emptySnapshot, gitRepo, memorySource } from './testing.js';

const NS = 'fleet';

function snapshot(): Snapshot {
  const s = emptySnapshot() as Snapshot & Record<string, unknown[]>;
  s.gitRepos.push(gitRepo(NS, 'repo') as never);
  s.bundles.push(bundle(NS, 'app', 'repo', '<script>alert(1)</script>') as never);
  s.clusterGroups.push(clusterGroup(NS, 'prod', 'env', 'prod') as never);
  for (let i = 0; i < 1000; i++) {
    s.clusters.push(cluster(NS, `c${i}`, { env: 'prod' }) as never);
    s.bundleDeployments.push(bundleDeployment(NS, 'app', `c${i}`, i < 3 ? 'ErrApplied' : 'Ready', 'boom') as never);
  }
  return s;
}

/** A GET with an explicit Host header (fetch may not set it). */
function getWithHost(url: string, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { headers: { host } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Reads the SSE stream until an event named `name` arrives; resolves with its data. */
function nextEvent(url: string, name: string, onOpen: () => void): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${url}api/events`, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
        if (text.includes('event: hello')) {
          text = text.slice(text.indexOf('event: hello') + 12);
          onOpen();
        }
        const m = new RegExp(`event: ${name}\\ndata: (.*)\\n\\n`).exec(text);
        if (m) {
          req.destroy();
          resolve(m[1] ?? '');
        }
      });
    });
    req.on('error', reject);
    req.end();
  });
}

describe('dashboard server', () => {
  let server: DashboardServer;
  const source = memorySource(snapshot());
  const done: ActionRequest[] = [];
  let answer: ActionResult = { status: 200, message: 'ok' };

  before(async () => {
    server = await startDashboardServer({
      source,
      actions: async (r) => {
        done.push(r);
        return answer;
      },
      address: '127.0.0.1',
      port: 0,
      context: 'context test',
      debounceMs: 10,
    });
  });
  after(async () => {
    await server?.close();
  });

  it('serves the page with a Content-Security-Policy that allows no inline or foreign script', async () => {
    const res = await fetch(server.url);
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.match(/^text\/html/);
    expect(res.headers.get('content-security-policy')).to.include("script-src 'self'").and.include("frame-ancestors 'none'");
    expect(await res.text()).to.include('<script type="module" src="/app.js">');
    const js = await fetch(`${server.url}app.js`);
    expect(js.headers.get('content-type')).to.match(/^text\/javascript/);
  });

  it('weighs (HTML + JS + CSS) under 40 KB, uncompressed', async () => {
    let bytes = 0;
    for (const f of Object.values(STATIC_FILES)) bytes += (await readFile(join(STATIC_DIR, f.file))).length;
    process.stdout.write(`      page weight: ${bytes} bytes (HTML + JS + CSS, uncompressed)\n`);
    expect(bytes).to.be.below(40 * 1024);
  });

  it('never puts API text into the page as HTML (no innerHTML, insertAdjacentHTML or document.write in the page scripts)', async () => {
    const scripts = Object.values(STATIC_FILES).filter((f) => f.file.endsWith('.js'));
    expect(scripts.map((f) => f.file)).to.include.members(['app.js', 'releases.js']);
    for (const f of scripts) {
      const js = await readFile(join(STATIC_DIR, f.file), 'utf8');
      expect(js, f.file).not.to.match(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function/);
    }
  });

  it('answers the matrix of 1,000 clusters as one aggregated row per group', async () => {
    const m = (await (await fetch(`${server.url}api/matrix`)).json()) as { groups: { name: string; clusterCount: number; cells: unknown[] }[] };
    expect(m.groups).to.deep.equal([
      { namespace: NS, name: 'prod', clusterCount: 1000, cells: [{ ErrApplied: 3, Ready: 997 }], total: { ErrApplied: 3, Ready: 997 } },
    ]);
  });

  it('answers the Bundle page with its messages as they are, and 404 naming what is missing', async () => {
    const b = (await (await fetch(`${server.url}api/bundle?namespace=${NS}&name=app`)).json()) as { conditions: { message: string }[] };
    expect(b.conditions[0]?.message).to.equal('<script>alert(1)</script>');
    const res = await fetch(`${server.url}api/bundle?namespace=${NS}&name=nope`);
    expect([res.status, ((await res.json()) as { error: string }).error]).to.deep.equal([404, `Bundle ${NS}/nope not found`]);
  });

  it('pages through the clusters of a group', async () => {
    const g = (await (await fetch(`${server.url}api/group?namespace=${NS}&name=prod&problems=1&limit=2`)).json()) as { total: number; clusters: unknown[] };
    expect([g.total, g.clusters.length]).to.deep.equal([3, 2]);
  });

  it('refuses a Host that is not a loopback name (DNS rebinding) while bound to loopback', async () => {
    expect(await getWithHost(server.url, 'evil.example:80')).to.equal(421);
    expect(await getWithHost(server.url, `localhost:${new URL(server.url).port}`)).to.equal(200);
  });

  it('sends a change event over SSE after a watched kind changes', async () => {
    const data = await nextEvent(server.url, 'change', () => source.changed('BundleDeployment'));
    expect((JSON.parse(data) as { kinds: string[] }).kinds).to.deep.equal(['BundleDeployment']);
  });

  describe('actions', () => {
    const post = (body: unknown, headers: Record<string, string>) =>
      fetch(`${server.url}api/actions`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });

    it('hands the session token to the page only when actions are enabled', async () => {
      const s = (await (await fetch(`${server.url}api/session`)).json()) as { actions: boolean; csrfToken: string };
      expect([s.actions, s.csrfToken]).to.deep.equal([true, server.csrfToken]);
    });

    it('refuses an action without the token, or from another origin, and does nothing', async () => {
      done.length = 0;
      expect((await post({ action: 'pause', namespace: NS, name: 'repo' }, {})).status).to.equal(403);
      expect((await post({ action: 'pause', namespace: NS, name: 'repo' }, { [CSRF_HEADER]: 'wrong-token-of-the-same-length-00' })).status).to.equal(403);
      expect(
        (await post({ action: 'pause', namespace: NS, name: 'repo' }, { [CSRF_HEADER]: server.csrfToken, origin: 'http://evil.example' })).status,
      ).to.equal(403);
      expect((await post({ action: 'delete', namespace: NS, name: 'repo' }, { [CSRF_HEADER]: server.csrfToken })).status).to.equal(400);
      expect(done).to.deep.equal([]);
    });

    it("performs an action with the token, and passes the API server's refusal (403) on with its message", async () => {
      done.length = 0;
      answer = { status: 200, message: 'paused' };
      expect((await post({ action: 'pause', namespace: NS, name: 'repo' }, { [CSRF_HEADER]: server.csrfToken })).status).to.equal(200);
      answer = { status: 403, message: 'sync on GitRepo fleet/repo refused by the API server: forbidden' };
      const res = await post({ action: 'sync', namespace: NS, name: 'repo' }, { [CSRF_HEADER]: server.csrfToken });
      expect([res.status, ((await res.json()) as { error: string }).error]).to.deep.equal([403, answer.message]);
      expect(done).to.deep.equal([
        { action: 'pause', namespace: NS, name: 'repo' },
        { action: 'sync', namespace: NS, name: 'repo' },
      ]);
    });

    it('refuses every action when they are not enabled, and gives the page no token', async () => {
      const ro = await startDashboardServer({ source, address: '127.0.0.1', port: 0, context: 'ro' });
      try {
        const s = (await (await fetch(`${ro.url}api/session`)).json()) as Record<string, unknown>;
        expect([s.actions, s.csrfToken]).to.deep.equal([false, undefined]);
        const res = await fetch(`${ro.url}api/actions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', [CSRF_HEADER]: ro.csrfToken },
          body: JSON.stringify({ action: 'pause', namespace: NS, name: 'repo' }),
        });
        expect(res.status).to.equal(403);
      } finally {
        await ro.close();
      }
    });
  });
});
