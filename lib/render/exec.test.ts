import { expect } from 'chai';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CommandError, redact, runBounded, type BoundedCommand } from './exec.js';

const base = { purpose: 'test run of sh', file: '/bin/sh', timeoutMs: 10_000, maxOutputBytes: 1 << 20 };

async function failure(cmd: BoundedCommand): Promise<CommandError> {
  try {
    await runBounded(cmd);
  } catch (err) {
    if (err instanceof CommandError) return err;
    throw err;
  }
  throw new Error('the command succeeded');
}

/** True while a process with this pid runs (a zombie, killed but not reaped by init, does not count). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

describe('runBounded', () => {
  it('returns standard output and standard error of a program that succeeds, passing arguments without a shell', async () => {
    const out = await runBounded({ ...base, args: ['-c', 'printf "%s|" "$@"; echo warn >&2', 'sh', 'a b', '$HOME;rm', '*'] });
    expect(out.stdout.toString()).to.equal('a b|$HOME;rm|*|');
    expect(out.stderr).to.equal('warn');
  });

  it('feeds standard input and starts in the given directory', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'flotilla-exec-test-'));
    try {
      const out = await runBounded({ ...base, args: ['-c', 'cat; pwd'], cwd: dir, stdin: 'hello\n' });
      expect(out.stdout.toString()).to.equal(`hello\n${dir}\n`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('scrubs the environment: HOME and XDG folders are private and removed afterwards, parent variables are gone', async () => {
    process.env.FLOTILLA_EXEC_TEST_TOKEN = 'parent-secret';
    try {
      const out = await runBounded({
        ...base,
        env: { EXTRA: 'given' },
        args: ['-c', 'echo "$HOME|$XDG_CONFIG_HOME|$HELM_CACHE_HOME|$KUBECONFIG|${FLOTILLA_EXEC_TEST_TOKEN:-unset}|$EXTRA"'],
      });
      const [home, config, helmCache, kubeconfig, token, extra] = out.stdout.toString().trim().split('|');
      expect(home).to.match(/flotilla-exec-/);
      expect(config?.startsWith(`${home}/`)).to.equal(true);
      expect(helmCache?.startsWith(`${home}/`)).to.equal(true);
      expect(kubeconfig?.startsWith(`${home}/`)).to.equal(true);
      expect(token).to.equal('unset');
      expect(extra).to.equal('given');
      expect(existsSync(home as string)).to.equal(false);
    } finally {
      delete process.env.FLOTILLA_EXEC_TEST_TOKEN;
    }
  });

  it('kills the whole process group when the time limit passes', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'flotilla-exec-test-'));
    try {
      const pidFile = join(dir, 'pid');
      // The grandchild writes its pid and sleeps: it must die with the group, not outlive the limit.
      const err = await failure({ ...base, timeoutMs: 500, args: ['-c', `sleep 30 & echo $! > ${pidFile}; wait`] });
      expect(err.failure).to.equal('timeout');
      expect(err.reason).to.equal('RenderBudgetExceeded');
      expect(err.disposition).to.equal('stalling');
      expect(err.message).to.match(/^test run of sh: stopped after 0.5 s, its time limit/);
      const pid = Number((await readFile(pidFile, 'utf8')).trim());
      for (let i = 0; i < 50 && alive(pid); i++) await new Promise((r) => setTimeout(r, 20));
      expect(alive(pid)).to.equal(false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('stops reading and kills the program when its output passes the limit', async () => {
    const err = await failure({ ...base, maxOutputBytes: 64 * 1024, args: ['-c', 'yes flotilla'] });
    expect(err.failure).to.equal('output-limit');
    expect(err.reason).to.equal('BundleTooLarge');
    expect(err.message).to.contain('passed the limit of 65536 bytes');
  });

  it('names the purpose, the exit code and standard error of a failing program, without the secrets', async () => {
    const err = await failure({
      ...base,
      secrets: ['hunter2'],
      args: ['-c', 'echo "fetching https://bob:pw@charts.example/index.yaml with token hunter2 failed" >&2; exit 3'],
    });
    expect(err.failure).to.equal('exit');
    expect(err.exitCode).to.equal(3);
    expect(err.disposition).to.equal('stalling');
    expect(err.message).to.equal('test run of sh: failed (exit 3): fetching https://***@charts.example/index.yaml with token *** failed');
  });

  it('keeps only the end of a long standard error', async () => {
    const err = await failure({ ...base, maxErrorBytes: 100, args: ['-c', 'yes noise | head -c 5000 >&2; echo the-cause >&2; exit 1'] });
    expect(err.stderr.length).to.be.at.most(100);
    expect(err.stderr.endsWith('the-cause')).to.equal(true);
  });

  it('reports a program that cannot be started as transient, naming it', async () => {
    const err = await failure({ ...base, file: '/nonexistent/helm', args: [] });
    expect(err.failure).to.equal('spawn');
    expect(err.disposition).to.equal('transient');
    expect(err.message).to.match(/^test run of sh: cannot run \/nonexistent\/helm \(ENOENT\)/);
  });

  it('reports a program killed by a signal', async () => {
    const err = await failure({ ...base, args: ['-c', 'kill -TERM $$'] });
    expect(err.failure).to.equal('signal');
    expect(err.message).to.contain('killed by SIGTERM');
  });
});

describe('runBounded under a memory cap (RLIMIT_DATA through prlimit)', () => {
  const MIB = 1024 * 1024;
  // A program that maps `mib` MiB of writable memory on top of its own (Node's own is about 50 MiB here).
  const allocating = (mib: number): BoundedCommand => ({
    ...base,
    purpose: 'test run of node',
    file: process.execPath,
    args: ['-e', `const b = Buffer.alloc(${mib} * 1024 * 1024, 1); process.stdout.write(String(b.length))`],
  });

  it('runs a program whose memory stays under the cap', async () => {
    const out = await runBounded({ ...allocating(64), maxMemoryBytes: 512 * MIB });
    expect(out.stdout.toString()).to.equal(String(64 * MIB));
  });

  it('refuses a program that allocates more than the cap: stalling RenderBudgetExceeded naming the limit and the flag', async () => {
    const err = await failure({ ...allocating(256), maxMemoryBytes: 192 * MIB });
    expect(err.failure).to.equal('memory-limit');
    expect(err.reason).to.equal('RenderBudgetExceeded');
    expect(err.disposition).to.equal('stalling');
    expect(err.message).to.match(/^test run of node: ran out of memory under its limit of 192 MiB \(exit \d+\); /);
    expect(err.message).to.contain('raise --render-tool-memory (chart value limits.renderToolMemory) on every agent');
  });

  it('the same allocation passes once the cap is raised above it', async () => {
    const out = await runBounded({ ...allocating(256), maxMemoryBytes: 512 * MIB });
    expect(out.stdout.toString()).to.equal(String(256 * MIB));
  });

  it('reads a crash of a capped program by SIGSEGV as its memory limit', async () => {
    const err = await failure({ ...base, maxMemoryBytes: 512 * MIB, args: ['-c', 'kill -SEGV $$'] });
    expect(err.failure).to.equal('memory-limit');
    expect(err.message).to.contain('(SIGSEGV)');
  });

  it('still reports an ordinary failure of a capped program as its own', async () => {
    const err = await failure({ ...base, maxMemoryBytes: 512 * MIB, args: ['-c', 'echo template error >&2; exit 1'] });
    expect(err.failure).to.equal('exit');
    expect(err.message).to.equal('test run of sh: failed (exit 1): template error');
  });

  it('reports a capped program that cannot be started as transient, naming it (not prlimit)', async () => {
    const err = await failure({ ...base, maxMemoryBytes: 512 * MIB, file: '/nonexistent/helm', args: [] });
    expect(err.failure).to.equal('spawn');
    expect(err.disposition).to.equal('transient');
    expect(err.message).to.equal('test run of sh: cannot run /nonexistent/helm (No such file or directory); install it or point the configuration at it');
  });
});

describe('redact', () => {
  const cases: [string, string, string[]][] = [
    ['https://user:pass@host/x', 'https://***@host/x', []],
    ['oci://token@registry:5000/c', 'oci://***@registry:5000/c', []],
    ['no credentials here: a@b', 'no credentials here: a@b', []],
    ['password s3cr3t and s3cr3t', 'password *** and ***', ['s3cr3t', '']],
  ];
  for (const [input, expected, secrets] of cases) {
    it(`redacts ${JSON.stringify(input)}`, () => expect(redact(input, secrets)).to.equal(expected));
  }
});
