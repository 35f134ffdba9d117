import { setFlagsFromString } from 'node:v8';

/**
 * Compiles WebAssembly with V8's baseline compiler (Liftoff) only. undici parses HTTP with llhttp, WebAssembly
 * compiled on the first connection; V8's optimizing tier then recompiled it in the background, about 35 MiB
 * of native memory for a second: the agent's peak RSS (109 MiB against 74 MiB once settled; bench/README.md,
 * Memory). The baseline code parses a controller's or an agent's traffic about as fast (a 100 MiB download
 * measured the same). Call before the first connection, so that it applies to that compile.
 */
export function baselineWasmOnly(): void {
  setFlagsFromString('--liftoff-only');
}
