import { expect } from 'chai';
import { sha256Digest } from '../oci/digest.js';
import { ChartCache, accessParts, chartCacheKey } from './chartcache.js';
import type { FetchedChart } from './chartsource.js';

const chart = (version: string, size: number): FetchedChart => ({
  name: 'web',
  version,
  files: [{ path: 'Chart.yaml', content: Buffer.alloc(size, version) }],
});

describe('the chart cache', () => {
  it('gives back what it keeps', () => {
    const cache = new ChartCache(1000);
    cache.set('a', chart('1.0.0', 10));
    expect(cache.get<FetchedChart>('a')?.version).to.equal('1.0.0');
    expect(cache.get('b')).to.equal(undefined);
  });

  it('reports each lookup and the bytes it keeps to its observer', () => {
    const seen: string[] = [];
    const cache = new ChartCache(100, { lookup: (hit) => seen.push(hit ? 'hit' : 'miss'), held: (bytes) => seen.push(`held ${bytes}`) });
    cache.get('a');
    cache.set('a', chart('1', 30));
    cache.get('a');
    cache.set('b', chart('2', 80)); // 90 bytes: a goes
    expect(seen).to.deep.equal(['miss', 'held 40', 'hit', 'held 90']);
  });

  it('stays within its bound of bytes, dropping the least recently used first', () => {
    const cache = new ChartCache(100);
    cache.set('a', chart('a', 30)); // 30 + 10 bytes of path each
    cache.set('b', chart('b', 30));
    expect(cache.get('a')).to.not.equal(undefined); // a is now the most recent
    cache.set('c', chart('c', 30));
    expect(cache.size).to.deep.equal({ entries: 2, bytes: 80 });
    expect(cache.get('b'), 'the least recently used went').to.equal(undefined);
    expect(cache.get('a')).to.not.equal(undefined);
    expect(cache.get('c')).to.not.equal(undefined);
  });

  it('keeps nothing larger than its bound, and replacing an entry counts its bytes once', () => {
    const cache = new ChartCache(100);
    cache.set('big', chart('big', 200));
    expect(cache.get('big')).to.equal(undefined);
    cache.set('a', chart('1', 40));
    cache.set('a', chart('2', 40));
    expect(cache.size).to.deep.equal({ entries: 1, bytes: 50 });
    expect(cache.get<FetchedChart>('a')?.version).to.equal('2');
  });

  it('keys differ by the index, the constraint, the credentials and the TLS settings, and not by how a list is split', () => {
    const base = ['https://charts.example', 'web', '^1.0.0', sha256Digest('index-1')];
    const key = (parts: string[], access = {}) => chartCacheKey('chart', [...parts, ...accessParts(access)]);
    const k = key(base, { username: 'u', password: 'p' });
    expect(key(base, { username: 'u', password: 'p' })).to.equal(k);
    expect(key([...base.slice(0, 3), sha256Digest('index-2')], { username: 'u', password: 'p' }), 'a changed index').to.not.equal(k);
    expect(key([base[0] ?? '', 'web', '~1.0.0', base[3] ?? ''], { username: 'u', password: 'p' }), 'another constraint').to.not.equal(k);
    expect(key(base, { username: 'u', password: 'q' }), 'another password').to.not.equal(k);
    expect(key(base), 'no credentials').to.not.equal(key(base, { username: '', password: '' }));
    expect(key(base, { username: 'u', password: 'p', insecureSkipTLSVerify: true }), 'TLS verification off').to.not.equal(k);
    expect(key(base, { username: 'u', password: 'p', caPem: 'CA' }), 'another CA').to.not.equal(k);
    expect(chartCacheKey('chart', ['ab', 'c'])).to.not.equal(chartCacheKey('chart', ['a', 'bc']));
    expect(chartCacheKey('chart', ['a'])).to.not.equal(chartCacheKey('dependencies', ['a']));
    expect(k, 'a hash: no credential in the key').to.match(/^chart:[0-9a-f]{64}$/);
  });
});
