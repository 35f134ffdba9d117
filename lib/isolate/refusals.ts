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
  private readonly refused = new Map<string, Refusal>();

  constructor(private readonly max = 256) {}

  /** The refusal remembered for `key`, if any. */
  get(key: string): Refusal | undefined {
    return this.refused.get(key);
  }

  /** Remembers `err` for `key`, forgetting the oldest beyond `max`. */
  remember(key: string, err: Refusal): void {
    this.refused.delete(key);
    this.refused.set(key, err);
    for (const old of this.refused.keys()) {
      if (this.refused.size <= this.max) break;
      this.refused.delete(old);
    }
  }

  /** Throws the refusal remembered for `key`, or runs `work`, remembering a refusal (stalling error) that `deterministic` accepts. */
  async run<T>(key: string, work: () => Promise<T>, deterministic: (err: Refusal) => boolean = () => true): Promise<T> {
    const known = this.get(key);
    if (known) throw known;
    try {
      return await work();
    } catch (err) {
      if (err instanceof FlotillaError && dispositionOf(err) === 'stalling' && deterministic(err as Refusal)) this.remember(key, err as Refusal);
      throw err;
    }
  }
}
