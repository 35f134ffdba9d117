/**
 * A preload for Flotilla processes under benchmark: `node --import tsx --import bench/lib/tap.ts ...` with
 * BENCH_TAP_FILE set. It wraps the event sink behind every RegistryClient's `onEvent` hook
 * (lib/oci/stats.ts) so that each event (uploads, skips, downloads, cache hits, requests) is also appended
 * as one JSON line to that file, with a timestamp. The controller and the agent build their registry
 * clients internally and expose no event hook, so this is the only way to observe their clients without
 * changing product code; the wrapped sink behaves exactly as before.
 */
import { appendFileSync } from 'node:fs';
import { RegistryEventSink, type RegistryEvent } from '../../lib/oci/stats.js';

const file = process.env.BENCH_TAP_FILE;
if (file !== undefined && file !== '') {
  const original = RegistryEventSink.prototype.emit;
  RegistryEventSink.prototype.emit = function tapped(this: RegistryEventSink, event: RegistryEvent): void {
    original.call(this, event);
    try {
      appendFileSync(file, `${JSON.stringify({ t: Date.now(), ...event })}\n`);
    } catch {
      // measuring must never break the process measured
    }
  };
}
