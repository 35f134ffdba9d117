import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runGit } from './git-run.js';

describe('runGit', function () {
  this.timeout(30_000);
  let base: string;
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/nonexistent', GIT_CONFIG_NOSYSTEM: '1' };
  beforeEach(async () => {
    base = await mkdtemp(join(tmpdir(), 'flotilla-git-run-'));
  });
  afterEach(async () => {
    await rm(base, { recursive: true, force: true });
  });

  it("returns git's standard output, run in the given folder", async () => {
    await runGit(['init', '--quiet'], { cwd: base, env, idleTimeoutMs: 30_000 });
    const top = await runGit(['rev-parse', '--show-toplevel'], { cwd: base, env, idleTimeoutMs: 30_000 });
    expect(top.trim()).to.match(/flotilla-git-run-/);
  });

  it('passes only the given environment', async () => {
    await runGit(['init', '--quiet'], { cwd: base, env, idleTimeoutMs: 30_000 });
    const withCount = { ...env, GIT_CONFIG_COUNT: '1', GIT_CONFIG_KEY_0: 'flotilla.probe', GIT_CONFIG_VALUE_0: 'seen' };
    expect((await runGit(['config', 'flotilla.probe'], { cwd: base, env: withCount, idleTimeoutMs: 30_000 })).trim()).to.equal('seen');
    const failed = await runGit(['config', 'flotilla.probe'], { cwd: base, env, idleTimeoutMs: 30_000 }).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(failed, 'nothing of the previous environment is left').to.be.instanceOf(Error);
  });

  it("rejects with the subcommand, the exit code and git's message", async () => {
    const failed = await runGit(['rev-parse', '--verify', 'no-such-ref'], { cwd: base, env, idleTimeoutMs: 30_000 }).then(
      () => undefined,
      (err: unknown) => err as Error,
    );
    expect(failed?.message).to.match(/^git rev-parse exited with code 128: fatal: /);
  });

  it('stops a command that prints nothing for the idle timeout', async () => {
    // A command that hangs without output, in a child process of git (as a transfer helper or ssh runs):
    // the whole group is stopped, so the answer does not wait for the child.
    const hang = { ...env, GIT_CONFIG_COUNT: '1', GIT_CONFIG_KEY_0: 'alias.hang', GIT_CONFIG_VALUE_0: '!sleep 600' };
    const failed = await runGit(['hang'], { cwd: base, env: hang, idleTimeoutMs: 300 }).then(
      () => undefined,
      (err: unknown) => err as Error,
    );
    expect(failed?.message).to.match(/^git hang printed nothing for 0.3 s and was stopped/);
  });

  it('fails a command whose output exceeds the limit', async () => {
    await runGit(['init', '--quiet'], { cwd: base, env, idleTimeoutMs: 30_000 });
    const failed = await runGit(['config', '--list', '--show-origin'], { cwd: base, env, idleTimeoutMs: 30_000, maxOutputBytes: 4 }).then(
      () => undefined,
      (err: unknown) => err as Error,
    );
    expect(failed?.message).to.match(/printed more than 4 bytes/);
  });
});
