/**
 * The virtio entropy device (virtio type 4), as lguest's launcher offers it
 * (§9.6 e): one queue, VERSION_1 only, no device config (a 64-byte BAR). On a
 * kick every device-writable buffer waiting is filled and returned used with
 * the bytes written (at most RNG_CHAIN_LIMIT per chain).
 *
 * lguest's launcher reads /dev/urandom; this device draws either from the
 * host's randomness (crypto.getRandomValues, `--rng`) or from a seeded
 * xorshift generator (`--rng=seed:N`, {@link seededBytes}), so a run can stay
 * deterministic (same seed, same guest, same bytes) — entropy for a guest to
 * exercise its driver, not for keys.
 *
 * @module
 */

import type { DeviceHost } from "./host.ts";
import { VIRTIO_F_VERSION_1, VirtioDevice } from "./virtio_pci.ts";

/** virtio type of an entropy source. */
export const VIRTIO_ID_RNG = 4;
/** Most bytes given to one request. */
export const RNG_CHAIN_LIMIT = 64 * 1024;

/**
 * The seeded generator's bytes: a function that fills an array with the next
 * bytes of the xorshift32 stream from `seed` (0 is taken as 1). The entropy
 * device draws from it; a test computes what a guest must have received.
 *
 * @param seed the seed, 0..2^32-1
 * @returns a filler that continues the stream on each call
 */
export function seededBytes(seed: number): (into: Uint8Array) => void {
  let x = seed | 0 || 1;
  return (into) => {
    for (let i = 0; i < into.length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      into[i] = x & 0xff;
    }
  };
}

/** The host's randomness (crypto.getRandomValues takes at most 64 KiB at a time). */
function hostBytes(into: Uint8Array<ArrayBuffer>): void {
  for (let at = 0; at < into.length; at += 65536) {
    crypto.getRandomValues(into.subarray(at, at + 65536));
  }
}

/** The entropy device. */
export class VirtioRng extends VirtioDevice {
  private readonly fill: (into: Uint8Array<ArrayBuffer>) => void;
  /** Bytes handed to the guest so far. */
  given = 0;

  /**
   * An entropy device whose bytes come from `seed`'s generator, or from the
   * host's randomness when `seed` is "host".
   *
   * @param host the machine
   * @param seed the generator's seed (0 is taken as 1), or "host"
   */
  constructor(host: DeviceHost, seed: number | "host" = 1) {
    super(host, "virtio rng", VIRTIO_ID_RNG, 0xff00, [0, 1 << (VIRTIO_F_VERSION_1 - 32)], 0, [
      "requestq",
    ]);
    this.fill = seed === "host" ? hostBytes : seededBytes(seed);
  }

  /** No device config. */
  configRead(_off: number, _size: number): number {
    return 0;
  }

  /** No device config. */
  configWrite(_off: number, _v: number, _size: number): boolean {
    return false;
  }

  /** A kick: fill every request waiting. */
  notify(_index: number): void {
    const q = this.queues[0];
    for (let chain = q.pop(); chain !== null; chain = q.pop()) {
      let len = 0;
      for (const b of chain.in) len += b.len;
      const bytes = new Uint8Array(Math.min(len, RNG_CHAIN_LIMIT));
      this.fill(bytes);
      const n = q.scatter(chain, bytes);
      this.given += n;
      q.push(chain.head, n);
    }
    this.signalUsed(q);
  }
}
