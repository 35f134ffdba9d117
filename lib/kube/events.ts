import type { Logger } from 'pino';
import type { KubeClient, KubeObject } from './client.js';
import { formatTime } from '../util/time.js';

/**
 * Records Kubernetes Events (core/v1) about objects, for transitions only (new revision applied,
 * failure, recovery), never on every loop. Repeated identical events within a window are folded into one
 * with a count, as client-go's recorder does. Messages must never contain secrets.
 */
export class EventRecorder {
  private readonly recent = new Map<string, { name: string; namespace: string; count: number; first: string }>();

  constructor(
    private readonly client: KubeClient,
    private readonly component: string,
    private readonly log: Logger,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** Emits an event of `type` (Normal or Warning) with a PascalCase `reason`. Failures are logged, never thrown. */
  async emit(obj: KubeObject, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    const namespace = obj.metadata.namespace ?? 'default';
    const key = `${obj.kind}/${namespace}/${obj.metadata.name}/${type}/${reason}/${message}`;
    const time = formatTime(this.now());
    const existing = this.recent.get(key);
    try {
      if (existing) {
        existing.count += 1;
        await this.client.mergePatch({ apiVersion: 'v1', kind: 'Event', namespace, name: existing.name }, { count: existing.count, lastTimestamp: time });
        return;
      }
      const name = `${obj.metadata.name}.${Date.now().toString(16)}${Math.random().toString(16).slice(2, 6)}`;
      await this.client.create({
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { name, namespace },
        involvedObject: { apiVersion: obj.apiVersion, kind: obj.kind, name: obj.metadata.name, namespace, uid: obj.metadata.uid },
        type,
        reason,
        message: message.slice(0, 1024),
        count: 1,
        firstTimestamp: time,
        lastTimestamp: time,
        source: { component: this.component },
        reportingComponent: this.component,
      });
      if (this.recent.size > 1000) this.recent.clear();
      this.recent.set(key, { name, namespace, count: 1, first: time });
    } catch (err) {
      this.recent.delete(key);
      this.log.debug({ err: (err as Error).message, reason }, 'could not record event');
    }
  }
}
