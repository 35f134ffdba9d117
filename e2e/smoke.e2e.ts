import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, rm, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { createHash } from 'node:crypto';
import { Agent, request } from 'undici';
import { ApiextensionsV1Api, CustomObjectsApi, Watch, type KubeConfig } from '@kubernetes/client-node';
import { stack } from './fixture.js';
import { waitFor } from '../stack/net.js';
import type { RegistryMode } from '../stack/registry.js';

const run = promisify(execFile);

const widgetCrd = {
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: { name: 'widgets.smoke.flotilla.dev' },
  spec: {
    group: 'smoke.flotilla.dev',
    names: { plural: 'widgets', singular: 'widget', kind: 'Widget' },
    scope: 'Namespaced',
    versions: [
      {
        name: 'v1',
        served: true,
        storage: true,
        schema: {
          openAPIV3Schema: {
            type: 'object',
            properties: { spec: { type: 'object', properties: { size: { type: 'integer' } } } },
          },
        },
      },
    ],
  },
};

async function installWidgetCrd(kc: KubeConfig): Promise<void> {
  const ext = kc.makeApiClient(ApiextensionsV1Api);
  try {
    await ext.createCustomResourceDefinition({ body: widgetCrd });
  } catch (err) {
    if ((err as { code?: number }).code !== 409) throw err;
  }
  await waitFor(
    async () => {
      const crd = await ext.readCustomResourceDefinition({ name: widgetCrd.metadata.name });
      return crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True');
    },
    { what: 'the Widget CRD to be Established', timeoutMs: 30_000 },
  );
}

describe('the e2e stack', () => {
  describe('Kubernetes control planes', () => {
    for (const name of ['upstream', 'downstream-1', 'downstream-2']) {
      it(`${name}: a custom object created through a new CRD arrives as a watch event`, async () => {
        const kc = stack().cluster(name).kubeConfig();
        await installWidgetCrd(kc);
        const objects = kc.makeApiClient(CustomObjectsApi);
        const list = { group: 'smoke.flotilla.dev', version: 'v1', namespace: 'default', plural: 'widgets' };
        // A just-established CRD can take a moment before its endpoint serves lists and watches.
        await waitFor(
          async () => {
            await objects.listNamespacedCustomObject(list);
            return true;
          },
          { what: `widgets to be served on ${name}`, timeoutMs: 30_000 },
        );
        const seen: string[] = [];
        const watch = new Watch(kc);
        let req: { abort(): void } | undefined;
        let stopped = false;
        const open = async (): Promise<void> => {
          req = await watch.watch(
            '/apis/smoke.flotilla.dev/v1/namespaces/default/widgets',
            {},
            (type: string, obj: { metadata?: { name?: string } }) => {
              seen.push(`${type}:${obj.metadata?.name}`);
            },
            () => {
              if (!stopped) setTimeout(() => void open(), 200);
            },
          );
        };
        await open();
        try {
          await objects.createNamespacedCustomObject({
            ...list,
            body: { apiVersion: 'smoke.flotilla.dev/v1', kind: 'Widget', metadata: { name: `w-${name}` }, spec: { size: 3 } },
          });
          await waitFor(async () => seen.includes(`ADDED:w-${name}`), { what: `the ADDED event on ${name}`, timeoutMs: 20_000 });
        } finally {
          stopped = true;
          req?.abort();
        }
        const version = (await (
          await request(`${stack().cluster(name).server}/version`, {
            dispatcher: new Agent({ connect: { ca: stack().cluster(name).caPem } }),
          })
        ).body.json()) as { gitVersion: string };
        expect(version.gitVersion).to.equal(stack().binaries.k8sVersion);
      });
    }
  });

  describe('registry (Docker Distribution)', () => {
    const modes: RegistryMode[] = ['http', 'tls', 'tls-auth'];
    for (const mode of modes) {
      it(`${mode}: stores a blob and a manifest and serves them back byte for byte`, async () => {
        const reg = stack().registry(mode);
        const dispatcher = new Agent({ connect: reg.caPem ? { ca: reg.caPem } : {} });
        const headers: Record<string, string> = {};
        if (reg.username) headers.authorization = `Basic ${Buffer.from(`${reg.username}:${reg.password}`).toString('base64')}`;
        const upload = async (bytes: Buffer): Promise<string> => {
          const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
          const start = await request(`${reg.url}/v2/smoke/blobs/uploads/`, { method: 'POST', headers, dispatcher });
          expect(start.statusCode).to.equal(202);
          await start.body.dump();
          const location = new URL(String(start.headers.location), reg.url);
          location.searchParams.set('digest', digest);
          const put = await request(location.toString(), {
            method: 'PUT',
            body: bytes,
            headers: { ...headers, 'content-type': 'application/octet-stream' },
            dispatcher,
          });
          expect(put.statusCode).to.equal(201);
          await put.body.dump();
          return digest;
        };
        const blob = Buffer.from(`smoke blob for ${mode}`);
        const digest = await upload(blob);
        const configDigest = await upload(Buffer.from('{}'));
        const manifest = Buffer.from(
          JSON.stringify({
            schemaVersion: 2,
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            artifactType: 'application/vnd.flotilla.smoke',
            config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: configDigest, size: 2 },
            layers: [{ mediaType: 'application/octet-stream', digest, size: blob.length }],
          }),
        );
        const mput = await request(`${reg.url}/v2/smoke/manifests/v1`, {
          method: 'PUT',
          body: manifest,
          headers: { ...headers, 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
          dispatcher,
        });
        expect(mput.statusCode, await mput.body.text()).to.equal(201);
        const mget = await request(`${reg.url}/v2/smoke/manifests/v1`, {
          headers: { ...headers, accept: 'application/vnd.oci.image.manifest.v1+json' },
          dispatcher,
        });
        expect(Buffer.from(await mget.body.arrayBuffer()).equals(manifest)).to.equal(true);
        const bget = await request(`${reg.url}/v2/smoke/blobs/${digest}`, { headers, dispatcher, maxRedirections: 0 } as Parameters<typeof request>[1]);
        expect(Buffer.from(await bget.body.arrayBuffer()).equals(blob)).to.equal(true);
        await dispatcher.close();
      });
    }

    it('tls-auth: a wrong password gets 401', async () => {
      const reg = stack().registry('tls-auth');
      const dispatcher = new Agent({ connect: { ca: reg.caPem } });
      const res = await request(`${reg.url}/v2/`, {
        headers: { authorization: `Basic ${Buffer.from(`${reg.username}:wrong`).toString('base64')}` },
        dispatcher,
      });
      await res.body.dump();
      expect(res.statusCode).to.equal(401);
      await dispatcher.close();
    });

    it("tls: a client without the run's CA gets a certificate error", async () => {
      const reg = stack().registry('tls');
      let error: unknown;
      try {
        await request(`${reg.url}/v2/`);
      } catch (err) {
        error = err;
      }
      const code = error as { code?: string; cause?: { code?: string } } | undefined;
      expect(code?.code ?? code?.cause?.code).to.match(/SELF_SIGNED|UNABLE_TO_VERIFY|CERT/);
    });
  });

  describe('git server', () => {
    let work: string;
    beforeEach(async () => {
      work = await mkdtemp(join(tmpdir(), 'flotilla-smoke-git-'));
    });
    afterEach(async () => {
      await rm(work, { recursive: true, force: true });
    });

    it('clones with credentials what a commit pushed', async () => {
      const git = stack().git!;
      await git.createRepo('smoke');
      const sha = await git.commit('smoke', { 'hello.yaml': 'kind: ConfigMap\n' }, 'first');
      const url = new URL(`${git.url}/smoke.git`);
      url.username = git.username;
      url.password = git.password;
      await run('git', ['clone', '--quiet', url.toString(), join(work, 'c')], { env: { ...process.env, GIT_TERMINAL_PROMPT: '0' } });
      expect(await readFile(join(work, 'c', 'hello.yaml'), 'utf8')).to.equal('kind: ConfigMap\n');
      expect((await run('git', ['-C', join(work, 'c'), 'rev-parse', 'HEAD'])).stdout.trim()).to.equal(sha);
    });

    it('refuses clone and push without credentials', async () => {
      const git = stack().git!;
      await git.createRepo('smoke-private');
      await git.commit('smoke-private', { 'a.yaml': 'a: 1\n' }, 'first');
      let failure = '';
      try {
        await run('git', ['clone', '--quiet', `${git.url}/smoke-private.git`, join(work, 'x')], { env: { ...process.env, GIT_TERMINAL_PROMPT: '0' } });
      } catch (err) {
        failure = (err as { stderr?: string }).stderr ?? '';
      }
      expect(failure).to.match(/Authentication failed|could not read Username|401/);
      // Push: clone with credentials, then push to the URL without them.
      const url = new URL(`${git.url}/smoke-private.git`);
      url.username = git.username;
      url.password = git.password;
      const env = {
        ...process.env,
        GIT_TERMINAL_PROMPT: '0',
        GIT_AUTHOR_NAME: 't',
        GIT_AUTHOR_EMAIL: 't@t',
        GIT_COMMITTER_NAME: 't',
        GIT_COMMITTER_EMAIL: 't@t',
      };
      await run('git', ['clone', '--quiet', url.toString(), join(work, 'y')], { env });
      await run('git', ['-C', join(work, 'y'), 'commit', '--quiet', '--allow-empty', '-m', 'anonymous'], { env });
      let pushFailure = '';
      try {
        await run('git', ['-C', join(work, 'y'), 'push', '--quiet', `${git.url}/smoke-private.git`, 'HEAD:main'], { env });
      } catch (err) {
        pushFailure = (err as { stderr?: string }).stderr ?? 'failed';
      }
      expect(pushFailure).to.match(/Authentication failed|could not read Username|401/);
    });
  });
});

describe('the stack command', () => {
  it('starts a control plane, and leaves no process behind after SIGINT', async function () {
    this.timeout(180_000);
    const { spawn } = await import('node:child_process');
    const dir = await mkdtemp(join(tmpdir(), 'flotilla-stack-cmd-'));
    const child = spawn(process.execPath, ['--import', 'tsx', 'stack/cli.ts', 'up', '--dir', dir, '--clusters', 'solo', '--kcm', ''], {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    let err = '';
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    try {
      const started = Date.now();
      await waitFor(async () => out.includes('"clusters"'), { what: 'the stack command to print its description', timeoutMs: 150_000, context: () => err });
      process.stdout.write(`      (stack with cached binaries ready in ${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
      const desc = JSON.parse(out) as { clusters: Record<string, { kubeconfig: string }> };
      expect(Object.keys(desc.clusters)).to.deep.equal(['solo']);
      process.kill(-child.pid!, 'SIGINT');
      expect(await exited).to.equal(0);
      const { stdout } = await run('ps', ['-eo', 'pid,args']);
      const leftovers = stdout.split('\n').filter((line) => line.includes(dir));
      expect(leftovers, 'processes still running from the stopped stack').to.deep.equal([]);
    } finally {
      if (child.exitCode === null) {
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      await rm(dir, { recursive: true, force: true });
    }
  });
});
