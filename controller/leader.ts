import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { isStatus, type KubeClient, type KubeObject } from '../lib/kube/client.js';
import { messageOf } from '../lib/errors.js';
import { formatMicroTime } from '../lib/util/time.js';

/**
 * Leader election with a coordination.k8s.io/v1 Lease, as client-go's leaderelection does: only the
 * holder of an unexpired Lease leads; it renews every retry period, and steps down when it could not
 * renew within the renew deadline. Every write carries the resourceVersion that was read, so when two
 * candidates race the API server lets exactly one win (the other gets 409 Conflict).
 * Expiry is judged from the Lease's renewTime, so candidates' clocks are assumed roughly in sync
 * (within the lease duration minus the renew deadline).
 */

/** The Lease fields election uses. */
export interface LeaseSpec {
  holderIdentity?: string | null;
  leaseDurationSeconds?: number | null;
  acquireTime?: string | null;
  renewTime?: string | null;
  leaseTransitions?: number | null;
}

/** A coordination.k8s.io/v1 Lease. */
export type Lease = KubeObject & { spec?: LeaseSpec };

/** What a candidate may do with a Lease. */
export type LeaseDecision = 'create' | 'renew' | 'acquire' | 'wait';

/**
 * Decides, given the current Lease (undefined if none) and the time, what `identity` may do: create it
 * when there is none; renew it when it already holds it; acquire it when it is free (no holder, released)
 * or its holder let it expire (renewTime + leaseDurationSeconds is not after now); otherwise wait.
 */
export function leaseDecision(lease: Lease | undefined, identity: string, now: Date, defaultDurationMs: number): LeaseDecision {
  if (!lease) return 'create';
  const spec = lease.spec ?? {};
  if (!spec.holderIdentity) return 'acquire';
  if (spec.holderIdentity === identity) return 'renew';
  const renewed = Date.parse(spec.renewTime ?? spec.acquireTime ?? '');
  if (Number.isNaN(renewed)) return 'acquire';
  const durationMs = spec.leaseDurationSeconds ? spec.leaseDurationSeconds * 1000 : defaultDurationMs;
  return renewed + durationMs <= now.getTime() ? 'acquire' : 'wait';
}

/** Options of {@link LeaderElector}. */
export interface LeaderElectorOptions {
  namespace: string;
  name: string;
  identity: string;
  /** How long a Lease is valid after its last renewal; default 15 s. */
  leaseDurationMs?: number;
  /** A leader that could not renew for this long steps down; default 10 s. */
  renewDeadlineMs?: number;
  /** Interval between attempts (to acquire, or to renew); default 2 s. */
  retryPeriodMs?: number;
}

const LEASE_API = 'coordination.k8s.io/v1';

/** Runs for leadership of one Lease; see the module comment. */
export class LeaderElector {
  private leading = false;
  private readonly abort = new AbortController();
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private lastRenewMs = 0;
  private running: Promise<void> | undefined;

  constructor(
    private readonly kube: KubeClient,
    private readonly options: LeaderElectorOptions,
    private readonly log: Logger,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.leaseDurationMs = options.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = options.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = options.retryPeriodMs ?? 2_000;
    if (this.renewDeadlineMs >= this.leaseDurationMs) throw new Error('renewDeadlineMs must be shorter than leaseDurationMs');
  }

  /** True while this candidate holds the Lease. */
  isLeader(): boolean {
    return this.leading;
  }

  /**
   * Campaigns until it leads, calls `onStartedLeading` (not awaited by the renew loop), then renews until
   * it loses the Lease or {@link stop} is called, and resolves. `onStoppedLeading` is called only when
   * leadership is lost (renewal failed past the renew deadline, or another candidate took the Lease), not
   * on {@link stop}: a process should exit then, as its caches may be stale and another replica leads.
   */
  run(onStartedLeading: () => Promise<void> | void, onStoppedLeading: () => void): Promise<void> {
    this.running ??= this.loop(onStartedLeading, onStoppedLeading);
    return this.running;
  }

  /** Stops campaigning; a leader releases the Lease so that another candidate can take over at once. */
  async stop(): Promise<void> {
    this.abort.abort();
    await this.running;
  }

  private async loop(onStartedLeading: () => Promise<void> | void, onStoppedLeading: () => void): Promise<void> {
    while (!this.abort.signal.aborted && (await this.tryAcquireOrRenew()) !== 'held') await this.pause();
    if (this.abort.signal.aborted) return;
    this.leading = true;
    this.log.info({ lease: this.options.name, identity: this.options.identity }, 'became leader');
    Promise.resolve()
      .then(onStartedLeading)
      .catch((err: unknown) => this.log.error({ err: messageOf(err) }, 'onStartedLeading failed'));
    while (!this.abort.signal.aborted) {
      await this.pause();
      if (this.abort.signal.aborted) break;
      const outcome = await this.tryAcquireOrRenew();
      if (outcome === 'held') continue;
      if (outcome === 'taken' || this.now().getTime() - this.lastRenewMs >= this.renewDeadlineMs) {
        this.log.warn({ lease: this.options.name, identity: this.options.identity, outcome }, 'lost the lease; stepping down');
        break;
      }
    }
    const stopped = this.abort.signal.aborted;
    if (stopped) await this.release();
    this.leading = false;
    if (!stopped) onStoppedLeading();
  }

  private async pause(): Promise<void> {
    await sleep(this.retryPeriodMs, undefined, { signal: this.abort.signal }).catch(() => undefined);
  }

  private ref(): { apiVersion: string; kind: string; namespace: string; name: string } {
    return { apiVersion: LEASE_API, kind: 'Lease', namespace: this.options.namespace, name: this.options.name };
  }

  /**
   * One attempt: 'held' when this candidate holds the Lease afterwards, 'taken' when another candidate
   * holds it, 'failed' when the attempt failed (conflict, API error) and the outcome is unknown.
   */
  private async tryAcquireOrRenew(): Promise<'held' | 'taken' | 'failed'> {
    const now = this.now();
    try {
      const lease = await this.kube.get<Lease>(this.ref());
      const decision = leaseDecision(lease, this.options.identity, now, this.leaseDurationMs);
      if (decision === 'wait') return 'taken';
      const spec: LeaseSpec = {
        holderIdentity: this.options.identity,
        leaseDurationSeconds: Math.ceil(this.leaseDurationMs / 1000),
        acquireTime: decision === 'renew' ? (lease?.spec?.acquireTime ?? formatMicroTime(now)) : formatMicroTime(now),
        renewTime: formatMicroTime(now),
        leaseTransitions: (lease?.spec?.leaseTransitions ?? 0) + (decision === 'acquire' ? 1 : 0),
      };
      if (decision === 'create') {
        await this.kube.create<Lease>({ apiVersion: LEASE_API, kind: 'Lease', metadata: { name: this.options.name, namespace: this.options.namespace }, spec });
      } else {
        await this.update(lease, spec);
      }
      this.lastRenewMs = now.getTime();
      return 'held';
    } catch (err) {
      if (isStatus(err, 409)) return 'failed'; // another candidate wrote first; the next read tells who
      this.log.warn({ lease: this.options.name, err: messageOf(err) }, 'lease update failed');
      return 'failed';
    }
  }

  private async update(lease: Lease | undefined, spec: LeaseSpec): Promise<void> {
    if (!lease) throw new Error('no lease to update');
    // PUT with the resourceVersion that was read: optimistic concurrency.
    const path = await this.kube.pathFor(this.ref());
    await this.kube.raw('PUT', path, { apiVersion: LEASE_API, kind: 'Lease', metadata: { ...lease.metadata, managedFields: undefined }, spec });
  }

  /** Gives the Lease up (holder cleared, duration 1 s), only if this candidate still holds it. */
  private async release(): Promise<void> {
    try {
      const lease = await this.kube.get<Lease>(this.ref());
      if (lease?.spec?.holderIdentity !== this.options.identity) return;
      const now = formatMicroTime(this.now());
      await this.update(lease, { ...lease.spec, holderIdentity: null, leaseDurationSeconds: 1, renewTime: now });
      this.log.info({ lease: this.options.name, identity: this.options.identity }, 'released the lease');
    } catch (err) {
      this.log.warn({ lease: this.options.name, err: messageOf(err) }, 'could not release the lease; it will expire');
    }
  }
}
