import { expect } from 'chai';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Reason } from '../lib/api/index.js';
import { StallingError } from '../lib/errors.js';
import { parseControllerConfig } from './config.js';
import { readCommitBundles } from './render.js';

describe('controller: reading a commit behind the bulkhead', function () {
  this.timeout(60_000);
  let dir: string;
  const config = parseControllerConfig(['--max-documents', '3'], {});
  const cm = 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n';
  const options = { repoName: 'r', paths: ['app'] };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'flotilla-render-test-'));
    await mkdir(join(dir, 'app'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function refusal(commit: string): Promise<StallingError | undefined> {
    try {
      await readCommitBundles(config, dir, options, 'ns/r', commit);
      return undefined;
    } catch (err) {
      if (err instanceof StallingError) return err;
      throw err;
    }
  }

  it('refuses content over the configured limits naming the file, and remembers the refusal of that commit', async () => {
    await writeFile(join(dir, 'app', 'flood.yaml'), '---\n'.repeat(10));
    const first = await refusal('c1');
    expect(first?.reason).to.equal(Reason.ContentLimitExceeded);
    expect(first?.message).to.match(/^app\/flood\.yaml:\d+: more than 3 YAML documents/);
    // The same commit is not read again (a stalled GitRepo is polled again), even though the disk changed.
    await writeFile(join(dir, 'app', 'flood.yaml'), cm);
    expect(await refusal('c1')).to.equal(first);
    // Another commit is read.
    expect(await refusal('c2')).to.equal(undefined);
    const bundles = await readCommitBundles(config, dir, options, 'ns/r', 'c2');
    expect(bundles.map((b) => b.files.map((f) => [f.path, f.content.toString()]))).to.deep.equal([[['flood.yaml', cm]]]);
    expect(Buffer.isBuffer(bundles[0]?.files[0]?.content)).to.equal(true);
  });
});
