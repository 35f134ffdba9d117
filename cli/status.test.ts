import { expect } from 'chai';
import { rolloutRow } from './status.js';

describe('flotilla status: the ROLLOUTS row', () => {
  it('shows the version, what it replaces, the phase and every partition as phase up-to-date/count', () => {
    const row = rolloutRow({
      metadata: { name: 'app', namespace: 'ws' },
      status: {
        rollout: {
          revision: 'r',
          version: 3,
          previousVersion: 2,
          phase: 'RolledBack',
          message: 'rolled back: partition canary not within tolerance after deadline 1m',
          partitions: [
            { name: 'canary', phase: 'Failed', count: 2, maxUnavailable: 0, unavailable: 1, upToDate: 0, offline: 1 },
            { name: 'early', phase: 'Waiting', count: 2, maxUnavailable: 0, unavailable: 2, upToDate: 0 },
          ],
        },
      },
    });
    expect(row).to.deep.equal([
      'ws',
      'app',
      'v3 (from v2)',
      'RolledBack',
      'canary:Failed 0/2 (1 offline), early:Waiting 0/2',
      'rolled back: partition canary not within tolerance after deadline 1m',
    ]);
  });
});
