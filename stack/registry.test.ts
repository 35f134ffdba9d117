import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAccessLog, startRegistry } from './registry.js';

describe('stack registry', () => {
  it('reads method, path without query and status from access-log lines, skipping other log lines', () => {
    const log = [
      '127.0.0.1 - - [01/Dec/2026:10:00:00 +0000] "HEAD /v2/a/blobs/sha256:ab HTTP/1.1" 404 157 "" "undici"',
      'time="2026-12-01T10:00:00Z" level=info msg="response completed"',
      '127.0.0.1 - - [01/Dec/2026:10:00:01 +0000] "POST /v2/a/blobs/uploads/?mount=sha256:ab HTTP/1.1" 202 0 "" "undici"',
    ].join('\n');
    expect(parseAccessLog(log)).to.deep.equal([
      { method: 'HEAD', path: '/v2/a/blobs/sha256:ab', status: 404 },
      { method: 'POST', path: '/v2/a/blobs/uploads/', status: 202 },
    ]);
  });

  it('asked for Distribution v3 on a machine that has not built it, says how to build it', async () => {
    const cache = await mkdtemp(join(tmpdir(), 'flotilla-empty-cache-'));
    const previous = process.env.FLOTILLA_CACHE;
    process.env.FLOTILLA_CACHE = cache;
    try {
      let error: unknown;
      await startRegistry({ mode: 'http', implementation: 'distribution-3', rootDir: join(cache, 'registry') }).catch((e: unknown) => {
        error = e;
      });
      expect(String(error)).to.contain('Distribution v3 is not built').and.to.contain('stack/tools/install.sh --extras');
    } finally {
      if (previous === undefined) delete process.env.FLOTILLA_CACHE;
      else process.env.FLOTILLA_CACHE = previous;
      await rm(cache, { recursive: true, force: true });
    }
  });
});
