import { expect } from 'chai';
import { withoutIdleSummary } from './status-compact.js';

describe('status-compact', () => {
  const cond = (type: string, status: 'True' | 'False' | 'Unknown') => ({
    type,
    status,
    reason: 'R',
    message: 'm',
    lastTransitionTime: '2026-01-01T00:00:00Z',
  });
  const idle: { name: string; conditions: ReturnType<typeof cond>[]; kept: string[] }[] = [
    {
      name: 'drops Reconciling and Stalled while False',
      conditions: [cond('Ready', 'True'), cond('Reconciling', 'False'), cond('Stalled', 'False')],
      kept: ['Ready'],
    },
    {
      name: 'keeps Reconciling while True (retrying)',
      conditions: [cond('Ready', 'False'), cond('Reconciling', 'True'), cond('Stalled', 'False')],
      kept: ['Ready', 'Reconciling'],
    },
    {
      name: 'keeps Stalled while True',
      conditions: [cond('Ready', 'False'), cond('Reconciling', 'False'), cond('Stalled', 'True')],
      kept: ['Ready', 'Stalled'],
    },
    {
      name: 'keeps False detailed conditions (Deployed, Monitored, Ready)',
      conditions: [cond('Ready', 'False'), cond('Deployed', 'False'), cond('Monitored', 'False')],
      kept: ['Ready', 'Deployed', 'Monitored'],
    },
  ];
  for (const c of idle) {
    it(c.name, () => {
      expect(withoutIdleSummary(c.conditions).map((x) => x.type)).to.deep.equal(c.kept);
    });
  }
});
