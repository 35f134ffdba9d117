import { expect } from 'chai';
import { clusterNameFor, importAccountName, tokenExpiry } from './registration.js';

describe('tokenExpiry', () => {
  const created = new Date('2026-01-01T00:00:00Z');
  const cases: { ttl: string | undefined; expected: string }[] = [
    { ttl: '1h', expected: '2026-01-01T01:00:00.000Z' },
    { ttl: '1m30s', expected: '2026-01-01T00:01:30.000Z' },
    { ttl: undefined, expected: '2026-01-08T00:00:00.000Z' },
    { ttl: '0', expected: '2026-01-08T00:00:00.000Z' },
  ];
  for (const c of cases) {
    it(`a token with ttl ${c.ttl ?? '(unset)'} expires at ${c.expected}`, () => expect(tokenExpiry(created, c.ttl).toISOString()).to.equal(c.expected));
  }
});

describe('clusterNameFor', () => {
  it('derives a stable name from the client ID', () => {
    const name = clusterNameFor('0b5f6c1e-uid', undefined);
    expect(name).to.match(/^c-[0-9a-f]{12}$/);
    expect(clusterNameFor('0b5f6c1e-uid', { env: 'prod' })).to.equal(name);
    expect(clusterNameFor('another-uid', undefined)).to.not.equal(name);
  });
  it('uses the flotilla.dev/cluster-name label when given', () => {
    expect(clusterNameFor('x', { 'flotilla.dev/cluster-name': 'prod-eu' })).to.equal('prod-eu');
  });
});

describe('importAccountName', () => {
  it('prefixes the token name', () => expect(importAccountName('t1')).to.equal('import-t1'));
});
