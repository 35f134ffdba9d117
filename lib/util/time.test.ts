import { expect } from 'chai';
import { formatMicroTime, formatTime } from './time.js';

describe('formatTime and formatMicroTime', () => {
  const cases: { at: string; time: string; micro: string }[] = [
    { at: '2026-01-01T12:00:00.123Z', time: '2026-01-01T12:00:00Z', micro: '2026-01-01T12:00:00.123000Z' },
    { at: '2026-01-01T12:00:00.000Z', time: '2026-01-01T12:00:00Z', micro: '2026-01-01T12:00:00.000000Z' },
    { at: '2026-12-31T23:59:59.999Z', time: '2026-12-31T23:59:59Z', micro: '2026-12-31T23:59:59.999000Z' },
    { at: '2026-06-01T02:00:00.500+02:00', time: '2026-06-01T00:00:00Z', micro: '2026-06-01T00:00:00.500000Z' },
  ];
  for (const c of cases) {
    it(`${c.at} -> ${c.time} / ${c.micro}`, () => {
      expect(formatTime(new Date(c.at))).to.equal(c.time);
      expect(formatMicroTime(new Date(c.at))).to.equal(c.micro);
    });
  }

  it('truncates to seconds rather than rounding', () => {
    expect(formatTime(new Date(Date.UTC(2026, 0, 1, 0, 0, 59, 999)))).to.equal('2026-01-01T00:00:59Z');
  });
});
