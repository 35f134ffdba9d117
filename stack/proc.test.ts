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

  it('gives a Node child a message channel when asked, with its output still in the log', async () => {
    const logFile = join(dir, 'ipc.log');
    const script = "process.on('message', (m) => { console.log('got', m.n); process.send({ n: m.n + 1 }, () => process.exit(0)); });";
    const p = spawnManaged('echo', process.execPath, ['-e', script], logFile, { ipc: true });
    const answer = new Promise<unknown>((resolve) => p.child.once('message', resolve));
    p.child.send({ n: 41 });
    expect(await answer).to.deep.equal({ n: 42 });
    expect(await p.exited).to.equal(0);
    expect(await readFile(logFile, 'utf8')).to.include('got 41');
  });

  it('gives no message channel unless asked', async () => {
    const p = spawnManaged('plain', process.execPath, ['-e', 'process.stdout.write(String(typeof process.send))'], join(dir, 'plain.log'));
    expect(p.child.connected).to.equal(false);
    expect(await p.exited).to.equal(0);
    expect(await readFile(join(dir, 'plain.log'), 'utf8')).to.equal('undefined');
  });
});
