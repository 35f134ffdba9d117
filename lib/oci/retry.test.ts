import { expect } from 'chai';
import { DEFAULT_RETRY_POLICY, backoffDelay, parseRetryAfter } from './retry.js';

describe('retry policy', () => {
  it('doubles the delay per attempt, with jitter between half and all of it, capped', () => {
    const p = { ...DEFAULT_RETRY_POLICY, minDelayMs: 100, maxDelayMs: 1000 };
    expect(backoffDelay(p, 0, () => 0)).to.equal(50);
    expect(backoffDelay(p, 0, () => 1)).to.equal(100);
    expect(backoffDelay(p, 2, () => 1)).to.equal(400);
    expect(backoffDelay(p, 10, () => 1)).to.equal(1000);
    expect(backoffDelay(p, 10, () => 0)).to.equal(500);
  });

  const cases: Array<[string | undefined, number | undefined]> = [
    ['3', 3000],
    [' 0 ', 0],
    ['Wed, 21 Oct 2015 07:28:10 GMT', 10_000],
    ['Wed, 21 Oct 2015 07:27:00 GMT', 0],
    ['soon', undefined],
    [undefined, undefined],
  ];
  const now = Date.parse('Wed, 21 Oct 2015 07:28:00 GMT');
  for (const [value, ms] of cases) {
    it(`reads Retry-After ${JSON.stringify(value)} as ${String(ms)} ms`, () => {
      expect(parseRetryAfter(value, now)).to.equal(ms);
    });
  }
});
