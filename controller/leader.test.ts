import { expect } from 'chai';
import { formatMicroTime } from '../lib/util/time.js';
import { leaseDecision, type Lease, type LeaseDecision } from './leader.js';

const NOW = new Date('2026-01-01T12:00:00.000Z');
const ago = (seconds: number): string => formatMicroTime(new Date(NOW.getTime() - seconds * 1000));
const lease = (spec: Lease['spec']): Lease => ({ apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: 'l', namespace: 'ns' }, spec });

describe('leaseDecision', () => {
  const cases: { name: string; lease: Lease | undefined; expected: LeaseDecision }[] = [
    { name: 'creates the lease when there is none', lease: undefined, expected: 'create' },
    { name: 'acquires a lease nobody holds', lease: lease({ holderIdentity: '', renewTime: ago(1), leaseDurationSeconds: 15 }), expected: 'acquire' },
    {
      name: 'acquires a released lease (holder cleared)',
      lease: lease({ holderIdentity: null, renewTime: ago(0), leaseDurationSeconds: 1 }),
      expected: 'acquire',
    },
    { name: 'renews its own lease', lease: lease({ holderIdentity: 'me', renewTime: ago(5), leaseDurationSeconds: 15 }), expected: 'renew' },
    {
      name: 'renews its own lease even when it expired',
      lease: lease({ holderIdentity: 'me', renewTime: ago(60), leaseDurationSeconds: 15 }),
      expected: 'renew',
    },
    {
      name: 'waits while another holder renews in time',
      lease: lease({ holderIdentity: 'other', renewTime: ago(14), leaseDurationSeconds: 15 }),
      expected: 'wait',
    },
    {
      name: 'takes over a lease whose holder let it expire',
      lease: lease({ holderIdentity: 'other', renewTime: ago(15), leaseDurationSeconds: 15 }),
      expected: 'acquire',
    },
    {
      name: "uses the lease's own duration, not the candidate's",
      lease: lease({ holderIdentity: 'other', renewTime: ago(20), leaseDurationSeconds: 30 }),
      expected: 'wait',
    },
    {
      name: 'falls back to the acquire time without a renew time',
      lease: lease({ holderIdentity: 'other', acquireTime: ago(3), leaseDurationSeconds: 15 }),
      expected: 'wait',
    },
    { name: 'falls back to its default duration when the lease sets none', lease: lease({ holderIdentity: 'other', renewTime: ago(11) }), expected: 'acquire' },
    { name: 'acquires a held lease without any time (unreadable)', lease: lease({ holderIdentity: 'other' }), expected: 'acquire' },
  ];
  for (const c of cases) it(c.name, () => expect(leaseDecision(c.lease, 'me', NOW, 10_000)).to.equal(c.expected));
});
