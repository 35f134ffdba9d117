import { expect } from 'chai';
import { spawn, execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { promisify } from 'node:util';

/**
 * The README's main job, run as a user runs it: `flotilla dev up` brings the sample fleet (3 real control
 * planes, registry, git server, controller and 2 agents as separate processes) to Ready and prints the
 * summary; `flotilla status` reads it; `flotilla dev down` leaves no process behind. This file runs on
 * its own (scripts/test.sh, after the e2e suite), because it starts its own stack.
 */

const run = promisify(execFile);

function flotilla(args: string[], timeoutMs: number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['bin/flotilla.js', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

describe('the main job: flotilla dev up / status / down', function () {
  this.timeout(30 * 60_000);
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'flotilla-dev-'));
  });
  after(async () => {
    await flotilla(['dev', 'down', '--dir', dir], 120_000);
    await rm(dir, { recursive: true, force: true });
  });

  it('brings every sample bundle to Ready on both clusters and prints the summary', async () => {
    const { code, out } = await flotilla(['dev', 'up', '--dir', dir, '--timeout', '900'], 20 * 60_000);
    expect(code, out).to.equal(0);
    expect(out).to.match(/GitRepo sample: commit [0-9a-f]{12}, (\d+)\/\1 bundle deployments ready/);
    const gitrepoRow = out.split('\n').find((l) => /^flotilla-default\s+sample\s/.test(l));
    expect(gitrepoRow, out).to.match(/\sTrue\s+(\d+)\/\1\s+Ready/);
    for (const bundle of ['sample-big', 'sample-common', 'sample-monitoring', 'sample-web']) {
      expect(out, `Bundle ${bundle} stored as an OCI artifact and Ready`).to.match(new RegExp(`${bundle}\\s+(\\d+)/\\1\\s+Ready\\s+oci\\s+[0-9a-f]{12}`));
    }
    expect(out).to.match(/downstream-1\s+env=prod,region=eu\s+(\d+)\/\1\s+Ready/);
    expect(out).to.match(/downstream-2\s+env=dev,region=us\s+(\d+)\/\1\s+Ready/);
    // downstream-1 has the real node: the sample's web Pods run and are Ready there, and the summary says so.
    expect(out).to.match(/on downstream-1, \d+ Pods run on the real node: .*demo\/web-/);
    expect(out).to.match(/real node\s+downstream-1-node \(172\.30\.213\.1\) on downstream-1/);
  });

  it('reports the same fleet with flotilla status, exiting 0 when everything is Ready', async () => {
    const { code, out } = await flotilla(['status', '--kubeconfig', join(dir, 'stack', 'clusters', 'upstream', 'kubeconfig')], 60_000);
    expect(code, out).to.equal(0);
    expect(out).to.match(/sample-web\s+2\/2\s+Ready\s+oci/);
  });

  it('stops everything with dev down, leaving no process behind', async () => {
    const { code, out } = await flotilla(['dev', 'down', '--dir', dir], 120_000);
    expect(code, out).to.equal(0);
    const { stdout } = await run('ps', ['-eo', 'pid,args']);
    expect(stdout.split('\n').filter((l) => l.includes(dir))).to.deep.equal([]);
    expect(existsSync('/run/flotilla-node.lock.json'), 'the real node released the machine').to.equal(false);
  });
});
