/**
 * The fuzzer's worker (tools/fuzz.ts): runs the seeds it is sent, one at a
 * time, and posts each result back. It lives in a worker so the main thread
 * can watch the wall clock: a host that hangs inside one run — where no hook
 * of the runner's own progress check is reached — is ended by terminating
 * the worker, and reported with its seed.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { type FuzzKind, fuzzOne, type FuzzOptions } from "../lib/debug/fuzz.ts";

/** A job: one seed, run once, or twice to check determinism. */
export interface FuzzJob {
  seed: number;
  kind: FuzzKind;
  options: FuzzOptions;
  twice: boolean;
}

self.onmessage = (e: MessageEvent<FuzzJob>) => {
  const { seed, kind, options, twice } = e.data;
  const first = fuzzOne(seed, kind, options);
  // The second run is audited at other points, interpreted only: neither may change the result.
  const again = twice ? fuzzOne(seed, kind, { ...options, auditEvery: 997, jit: false }) : null;
  self.postMessage({ first, again });
};
