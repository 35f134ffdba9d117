import { expect } from 'chai';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnManaged } from './proc.js';

describe('stack processes: spawnManaged', () => {
  let dir = '';
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'flotilla-proc-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('has the process write straight into its log, also what a child forked by it writes after the leader exited', async () => {
    const logFile = join(dir, 'p.log');
    // The leader exits at once; its background child holds stdout and writes later.
    const p = spawnManaged('forker', 'sh', ['-c', '(sleep 0.3; echo late line) & echo leader done; echo to stderr >&2; exit 0'], logFile);
    expect(p.child.stdout, 'nothing relayed through this process').to.equal(null);
    expect(await p.exited).to.equal(0);
    expect(p.running()).to.equal(false);
    for (let i = 0; i < 100 && !(await readFile(logFile, 'utf8')).includes('late line'); i++) await new Promise((r) => setTimeout(r, 20));
    const log = await readFile(logFile, 'utf8');
    expect(log).to.include('leader done').and.include('to stderr').and.include('late line');
  });

  it('says in the log when the program cannot be started', async () => {
    const logFile = join(dir, 'missing.log');
    const p = spawnManaged('missing', join(dir, 'no-such-program'), [], logFile);
    expect(await p.exited).to.equal(null);
    expect(await readFile(logFile, 'utf8'))
      .to.include('failed to start')
      .and.include('no-such-program');
  });
});
