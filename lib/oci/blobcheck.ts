import type { Transport } from './transport.js';
import { cancelUpload, probeMount, type Descriptor } from './upload.js';

/** Where a blob goes: registry, repository and the token scope of a push. */
export interface UploadTarget {
  registry: string;
  repository: string;
  scope: string;
}

/** What a push must do with a blob: nothing (the registry has it), or upload it, in `session` if one is open. */
export interface BlobCheckResult {
  present: boolean;
  session?: string;
}

/**
 * How a push finds out whether the registry lacks a blob, per client. In `mount` mode it sends a mount
 * probe (lib/oci/upload.ts: one request that also opens the upload session) until the registry is known
 * to ignore or refuse mounts, then a `HEAD` like `head` mode. Whether mounts work is learnt once, after
 * the first upload through a probe: the blob just uploaded is probed again; 201 proves that the
 * registry mounts (its 202s then mean "not there"), 202 that it ignores mounts (a probe would open a
 * session even for a blob it has, and the push would send it again).
 */
export class BlobCheck {
  private mounts: 'unknown' | 'yes' | 'no';
  private learning: Promise<void> | undefined;

  constructor(mode: 'mount' | 'head') {
    this.mounts = mode === 'head' ? 'no' : 'unknown';
  }

  /** Checks `desc` in `target`; `headSize` is the HEAD check (the blob's size there, undefined if absent). */
  async find(transport: Transport, target: UploadTarget, desc: Descriptor, headSize: () => Promise<number | undefined>): Promise<BlobCheckResult> {
    if (this.mounts !== 'no') {
      const probe = await probeMount(transport, target.registry, target.repository, desc.digest, target.scope);
      if (probe.kind === 'mounted') return { present: true };
      if (probe.kind === 'session') return { present: false, session: probe.location };
      this.mounts = 'no';
    }
    return { present: (await headSize()) === desc.size };
  }

  /**
   * After an upload through a probe session: learns whether mounts work, once (concurrent callers share
   * the probe). A failure leaves it unknown, to be learnt after the next upload; it never fails the push.
   */
  async learn(transport: Transport, target: UploadTarget, digest: string): Promise<void> {
    if (this.mounts !== 'unknown') return;
    this.learning ??= (async () => {
      const probe = await probeMount(transport, target.registry, target.repository, digest, target.scope);
      if (probe.kind === 'session') await cancelUpload(transport, probe.location, target.scope, `probing blob ${digest}`);
      this.mounts = probe.kind === 'mounted' ? 'yes' : 'no';
    })().catch(() => {
      this.learning = undefined;
    });
    await this.learning;
  }
}
