import { expect } from 'chai';
import { mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './net.js';

describe('stack ports: freePort', () => {
  let dir = '';
  const saved = process.env.FLOTILLA_PORTS_DIR;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'flotilla-ports-test-'));
    process.env.FLOTILLA_PORTS_DIR = dir;
  });
  afterEach(async () => {
    if (saved === undefined) delete process.env.FLOTILLA_PORTS_DIR;
    else process.env.FLOTILLA_PORTS_DIR = saved;
    await rm(dir, { recursive: true, force: true });
  });

  it('hands out distinct, bindable ports outside the kernel ephemeral and NodePort ranges, each reserved by a file', async () => {
    const ports = await Promise.all(Array.from({ length: 40 }, () => freePort()));
    expect(new Set(ports).size).to.equal(40);
    for (const port of ports) expect(port).to.be.within(20_000, 29_999);
    expect((await readdir(dir)).sort()).to.deep.equal(ports.map(String).sort());
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(ports[0], '127.0.0.1', resolve));
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('never hands out a port another process reserved, even when it is not bound yet', async () => {
    // Every port of the range is reserved by "another process" but two: one fresh, one expired long ago.
    const fresh = 24_242;
    const expired = 25_252;
    await Promise.all(
      Array.from({ length: 10_000 }, (_, i) => 20_000 + i)
        .filter((p) => p !== fresh)
        .map((p) => writeFile(join(dir, String(p)), '1\n')),
    );
    const old = new Date(Date.now() - 3_600_000);
    await utimes(join(dir, String(expired)), old, old);
    const port = await freePort();
    // The expired reservation is cleared for a later pick, but never taken over in the same pick.
    expect(port).to.equal(fresh);
  });
});
