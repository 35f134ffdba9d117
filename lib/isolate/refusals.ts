import { createHash } from 'node:crypto';
import { FlotillaError, dispositionOf } from '../errors.js';

/** A sha256 of `parts` (as JSON) and every file's path and bytes: the key of work that reads exactly these. */
export function contentKey(files: readonly { path: string; content: Uint8Array }[], parts: unknown): string {
  const hash = createHash('sha256').update(JSON.stringify(parts));
  for (const f of files) hash.update(`\0${f.path}\0${f.content.length}\0`).update(f.content);
  return hash.digest('hex');
}

/** A refusal: a Flotilla error whose disposition is stalling (StallingError, or e.g. lib/render's CommandError). */
export type Refusal = FlotillaError & { disposition: 'stalling' };

/**
 * Deterministic refusals remembered by a key that covers everything the refused work read (a hash of the
 * content, options and limits): the same bytes always fail the same way, so asking again costs nothing,
 * and any change of the content (another key) is tried afresh. Keeps the most recent `max` refusals.
 */
export class RefusalMemory {
  private readonly refused = new Map<string, { err: Refusal; label: string | undefined }>();

  constructor(private readonly max = 256) {}

  /** The refusal remembered for `key`, if any, naming `label` where it named the label it was first refused for. */
  get(key: string, label?: string): Refusal | undefined {
    const known = this.refused.get(key);
    if (!known) return undefined;
    if (label === undefined || known.label === undefined || label === known.label || !known.err.message.includes(known.label)) return known.err;
    // The same bytes sent by another object (two BundleDeployments of one bundle): the error names the one asking.
    const message = known.err.message.replaceAll(known.label, label);
    return Object.assign(Object.create(Object.getPrototypeOf(known.err) as object) as Refusal, known.err, { message });
  }

  /** Remembers `err` for `key` (refused for `label`, which its message names), forgetting the oldest beyond `max`. */
  remember(key: string, err: Refusal, label?: string): void {
    this.refused.delete(key);
    this.refused.set(key, { err, label });
    for (const old of this.refused.keys()) {
      if (this.refused.size <= this.max) break;
      this.refused.delete(old);
    }
  }

  /**
   * Throws the refusal remembered for `key`, or runs `work`, remembering a refusal (stalling error) that
   * `deterministic` accepts. `label` is what the work's errors name (the object it works for): a refusal
   * remembered for another label is thrown naming this one.
   */
  async run<T>(key: string, work: () => Promise<T>, deterministic: (err: Refusal) => boolean = () => true, label?: string): Promise<T> {
    const known = this.get(key, label);
    if (known) throw known;
    try {
      return await work();
    } catch (err) {
      if (err instanceof FlotillaError && dispositionOf(err) === 'stalling' && deterministic(err as Refusal)) this.remember(key, err as Refusal, label);
      throw err;
    }
  }
}
