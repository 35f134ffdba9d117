import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  ArtifactError,
  BUNDLE_ARTIFACT_TYPE,
  BUNDLE_CONFIG_MEDIA_TYPE,
  BUNDLE_FILE_MEDIA_TYPE,
  pullBundle,
  pushBundle,
  type ArtifactFile,
} from '../lib/oci/index.js';
import { cacheDir } from '../stack/binaries.js';
import { disposeRegistry, registryClientFor, startRegistry, type RegistryHandle } from '../stack/registry.js';

/**
 * Interoperability with the real `oras` CLI (built by `stack/tools/install.sh --extras`): `oras pull`
 * of a Flotilla artifact writes the bundle's files, and a bundle pushed by `oras` in Flotilla's format is
 * pulled by Flotilla while any other artifact is refused. Without the binary these tests fail, saying so.
 */

const run = promisify(execFile);

function orasBinary(): string {
  let recorded: string | undefined;
  try {
    recorded = (JSON.parse(readFileSync(join(cacheDir(), 'stack-binaries.json'), 'utf8')) as { oras?: string }).oras;
  } catch {
    // no manifest: fall through to the message below
  }
  if (recorded === undefined || !existsSync(recorded)) {
    throw new Error(
      `the oras CLI is required by this test and missing (${recorded ?? 'no stack-binaries.json'}); build it with: bash stack/tools/install.sh --extras`,
    );
  }
  return recorded;
}

const FILES: ArtifactFile[] = [
  { path: 'deploy.yaml', content: Buffer.from('apiVersion: apps/v1\nkind: Deployment\n') },
  { path: 'overlays/prod/x_patch.yaml', content: Buffer.from('spec:\n  replicas: 3\n') },
  { path: 'empty.yaml', content: Buffer.alloc(0) },
];

async function listFiles(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const rel = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
    if (entry.isDirectory()) out.push(...(await listFiles(join(dir, entry.name), rel)));
    else out.push(rel);
  }
  return out.sort();
}

for (const mode of ['http', 'tls-auth'] as const) {
  describe(`oras CLI interoperability (${mode})`, function () {
    this.timeout(180_000);
    let reg: RegistryHandle;
    let work: string;
    let oras: string;
    /** oras flags for this registry; HOME is a scratch folder, so no credential store is touched. */
    let flags: string[];

    const orasRun = async (args: string[], cwd: string) => {
      try {
        return await run(oras, [...args, ...flags], { cwd, env: { ...process.env, HOME: work }, maxBuffer: 4 * 1024 * 1024 });
      } catch (err) {
        const e = err as { stderr?: string; message: string };
        throw new Error(`oras ${args[0]} failed: ${e.stderr?.trim() || e.message}`);
      }
    };

    before(async () => {
      oras = orasBinary();
      work = await mkdtemp(join(tmpdir(), `flotilla-oras-${mode}-`));
      reg = await startRegistry({ mode, rootDir: join(work, 'registry') });
      flags = mode === 'http' ? ['--plain-http'] : ['--ca-file', reg.caFile ?? '', '-u', reg.username ?? '', '-p', reg.password ?? ''];
    });
    after(async () => {
      if (reg) await disposeRegistry(reg);
      if (work) await rm(work, { recursive: true, force: true });
    });

    it('oras pull of a Flotilla artifact writes the bundle files with their paths and bytes', async () => {
      const client = registryClientFor(reg);
      const pushed = await pushBundle(client, `${reg.host}/flotilla/oras-pull`, FILES, { bundleName: 'a', bundleNamespace: 'b' }, 'v1');
      await client.close();
      const out = join(work, 'pulled');
      await mkdir(out);
      await orasRun(['pull', pushed.reference, '-o', out], work);
      expect(await listFiles(out)).to.deep.equal(FILES.map((f) => f.path).sort());
      for (const f of FILES) expect((await readFile(join(out, f.path))).equals((f as { content: Buffer }).content), f.path).to.equal(true);
    });

    it('pulls a bundle that oras pushed in the Flotilla format', async () => {
      const src = join(work, 'oras-src');
      await mkdir(join(src, 'sub'), { recursive: true });
      await writeFile(join(src, 'a.yaml'), 'kind: A\n');
      await writeFile(join(src, 'sub', 'b.yaml'), 'kind: B\n');
      await writeFile(join(src, 'config.json'), '{"bundle":{"name":"n","namespace":"ns"},"formatVersion":1}');
      const ref = `${reg.host}/flotilla/from-oras:v1`;
      await orasRun(
        [
          'push',
          ref,
          '--artifact-type',
          BUNDLE_ARTIFACT_TYPE,
          '--config',
          `config.json:${BUNDLE_CONFIG_MEDIA_TYPE}`,
          `a.yaml:${BUNDLE_FILE_MEDIA_TYPE}`,
          `sub/b.yaml:${BUNDLE_FILE_MEDIA_TYPE}`,
        ],
        src,
      );
      const client = registryClientFor(reg);
      try {
        const digest = await client.resolve('flotilla/from-oras', 'v1');
        const pulled = await pullBundle(client, `${reg.host}/flotilla/from-oras@${digest}`);
        expect(pulled.files.map((f) => [f.path, f.content.toString()])).to.deep.equal([
          ['a.yaml', 'kind: A\n'],
          ['sub/b.yaml', 'kind: B\n'],
        ]);
        expect(pulled.config.bundle).to.deep.equal({ name: 'n', namespace: 'ns' });
      } finally {
        await client.close();
      }
    });

    it('refuses an artifact oras pushed in another format as InvalidBundle', async () => {
      const src = join(work, 'other-src');
      await mkdir(src, { recursive: true });
      await writeFile(join(src, 'x.txt'), 'hello\n');
      await orasRun(['push', `${reg.host}/flotilla/not-a-bundle:v1`, 'x.txt'], src);
      const client = registryClientFor(reg);
      try {
        const digest = await client.resolve('flotilla/not-a-bundle', 'v1');
        const err = await pullBundle(client, `${reg.host}/flotilla/not-a-bundle@${digest}`).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).to.be.instanceOf(ArtifactError);
        expect((err as ArtifactError).reason).to.equal('InvalidBundle');
        expect((err as Error).message).to.include('not a Flotilla bundle');
      } finally {
        await client.close();
      }
    });
  });
}
