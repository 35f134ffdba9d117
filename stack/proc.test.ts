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

  it('keeps logging what a forked process writes after the leader exited, and ends the log once the pipes close', async () => {
    const logFile = join(dir, 'p.log');
    // The leader exits at once; its background child holds stdout and writes later.
    const p = spawnManaged('forker', 'sh', ['-c', '(sleep 0.3; echo late line) & echo leader done; exit 0'], logFile);
    expect(await p.exited).to.equal(0);
    expect(p.running()).to.equal(false);
    await new Promise<void>((resolve) => p.child.once('close', () => resolve()));
    // 'close' fires before the write stream flushes its last chunk; wait for the file to hold it.
    for (let i = 0; i < 100 && !(await readFile(logFile, 'utf8')).includes('late line'); i++) await new Promise((r) => setTimeout(r, 20));
    const log = await readFile(logFile, 'utf8');
    expect(log).to.include('leader done').and.include('late line');
  });
});
