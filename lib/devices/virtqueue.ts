/**
 * A split virtqueue (virtio 1.0, §2.4 of the spec; §9.5 of the ABI notes):
 * the device's side of the three rings the driver allocates in guest RAM.
 *
 *  - descriptor table: `size` × 16 bytes {u64 addr; u32 len; u16 flags;
 *    u16 next}, flags NEXT (1), WRITE (2: the device writes), INDIRECT (4);
 *  - avail ring (driver → device): {u16 flags; u16 idx; u16 ring[size];
 *    u16 used_event};
 *  - used ring (device → driver): {u16 flags; u16 idx; {u32 id; u32 len}
 *    ring[size]; u16 avail_event}.
 *
 * `pop` takes the next chain the driver made available and walks it as
 * lguest's launcher does (wait_for_vq_desc): every device-readable ("out")
 * buffer before every device-writable ("in") one, an indirect table only when
 * negotiated (no nesting, no NEXT beside INDIRECT, a whole number of
 * descriptors), and never more descriptors than the table holds (a loop).
 * `push` returns a chain in the used ring; `needsInterrupt` decides whether
 * the driver wants to hear of it — `avail.flags` NO_INTERRUPT, or with
 * VIRTIO_RING_F_EVENT_IDX the driver's `used_event`.
 *
 * All guest memory goes through the DeviceHost, bounds-checked; anything
 * malformed is reported with `fail` and the chain is dropped.
 *
 * @module
 */

import type { DeviceHost } from "./host.ts";

/** Descriptor flags. */
export const VRING_DESC_F_NEXT = 1, VRING_DESC_F_WRITE = 2, VRING_DESC_F_INDIRECT = 4;
/** avail.flags: the driver does not want interrupts. */
export const VRING_AVAIL_F_NO_INTERRUPT = 1;
/** Feature bits about the ring itself. */
export const VIRTIO_RING_F_INDIRECT_DESC = 28, VIRTIO_RING_F_EVENT_IDX = 29;

/** A buffer in guest RAM. */
export interface VirtBuffer {
  /** Guest-physical address. */
  addr: number;
  /** Length in bytes. */
  len: number;
}

/** A descriptor chain taken from the avail ring. */
export interface DescChain {
  /** Index of its head descriptor (what goes back in the used ring). */
  head: number;
  /** Device-readable buffers, in order. */
  out: VirtBuffer[];
  /** Device-writable buffers, in order. */
  in: VirtBuffer[];
}

/** The device's view of one split virtqueue. */
export class Virtqueue {
  /** Queue size the driver chose (a power of two up to `maxSize`). */
  size: number;
  /** Guest-physical addresses of the three parts. */
  desc = 0;
  /** The avail ring. */
  avail = 0;
  /** The used ring. */
  used = 0;
  /** The driver enabled it (queue_enable). */
  enabled = false;
  /** VIRTIO_RING_F_EVENT_IDX was negotiated. */
  eventIdx = false;
  /** VIRTIO_RING_F_INDIRECT_DESC was negotiated. */
  indirect = false;
  /** Next avail index the device will look at. */
  lastAvail = 0;
  /** The used ring's idx as the device last wrote it. */
  usedIdx = 0;
  /** usedIdx when the driver was last interrupted (or told nothing was new). */
  private signalled = 0;

  /**
   * A queue, disabled, offering `maxSize` entries.
   *
   * @param host guest memory and `fail`
   * @param name for messages ("virtio console: rx queue")
   * @param maxSize the largest size offered (queue_size on reset)
   */
  constructor(
    private readonly host: DeviceHost,
    readonly name: string,
    readonly maxSize = 256,
  ) {
    this.size = maxSize;
  }

  /** Back to the state after a device reset. */
  reset(): void {
    this.size = this.maxSize;
    this.desc = this.avail = this.used = 0;
    this.enabled = this.eventIdx = this.indirect = false;
    this.lastAvail = this.usedIdx = this.signalled = 0;
  }

  /** Report a malformed ring or chain, naming the queue. */
  private fail(what: string): null {
    this.host.fail(`${this.name}: ${what}`);
    return null;
  }

  /** A u16 of guest RAM (-1 outside it). */
  private u16(gpa: number): number {
    const b = this.host.read(gpa, 2);
    return b === null ? -1 : b[0] | (b[1] << 8);
  }

  /** Write a u16 of guest RAM (false outside it). */
  private putU16(gpa: number, v: number): boolean {
    return this.host.write(gpa, new Uint8Array([v & 0xff, (v >> 8) & 0xff]));
  }

  /**
   * The checks lguest's launcher makes when the driver enables a queue
   * (check_virtqueue): alignment, every part inside RAM, used.flags 0.
   * False (and `fail`) when they do not hold.
   */
  check(): boolean {
    const n = this.size;
    if (this.desc % 16 !== 0 || this.avail % 2 !== 0 || this.used % 4 !== 0) {
      this.fail("misaligned rings");
      return false;
    }
    const parts: [number, number][] = [
      [this.desc, 16 * n],
      [this.avail, 6 + 2 * n],
      [this.used, 6 + 8 * n],
    ];
    for (const [at, len] of parts) {
      if (this.host.read(at, len) === null) {
        this.fail(`ring at 0x${at.toString(16)} outside guest RAM`);
        return false;
      }
    }
    if (this.u16(this.used) !== 0) {
      this.fail("used.flags is not 0");
      return false;
    }
    return true;
  }

  /** Are chains waiting in the avail ring? */
  hasAvailable(): boolean {
    const idx = this.u16(this.avail + 2);
    return idx >= 0 && idx !== this.lastAvail;
  }

  /** Take the next available chain (null: none, or a malformed one, reported). */
  pop(): DescChain | null {
    if (!this.enabled) return null;
    const idx = this.u16(this.avail + 2);
    if (idx < 0) return this.fail("avail ring outside guest RAM");
    if (idx === this.lastAvail) return null;
    if (((idx - this.lastAvail) & 0xffff) > this.size) {
      return this.fail(`avail idx ${idx} is more than ${this.size} ahead of ${this.lastAvail}`);
    }
    const head = this.u16(this.avail + 4 + 2 * (this.lastAvail % this.size));
    this.lastAvail = (this.lastAvail + 1) & 0xffff;
    if (this.eventIdx) this.putU16(this.used + 4 + 8 * this.size, this.lastAvail); // avail_event
    if (head < 0 || head >= this.size) return this.fail(`descriptor ${head} out of range`);
    const chain: DescChain = { head, out: [], in: [] };
    let table = this.desc, max = this.size, i = head, seen = 0, inTable = false;
    for (;;) {
      const d = this.host.read(table + 16 * i, 16);
      if (d === null) return this.fail("descriptor outside guest RAM");
      const dv = new DataView(d.buffer);
      const addrLo = dv.getUint32(0, true), addrHi = dv.getUint32(4, true);
      const len = dv.getUint32(8, true), flags = dv.getUint16(12, true);
      const next = dv.getUint16(14, true);
      if (++seen > max) return this.fail("descriptor chain loops");
      if ((flags & VRING_DESC_F_INDIRECT) !== 0) {
        if (!this.indirect) return this.fail("indirect descriptor not negotiated");
        if (inTable) return this.fail("nested indirect descriptors");
        if ((flags & VRING_DESC_F_NEXT) !== 0) return this.fail("indirect descriptor with NEXT");
        if (len === 0 || len % 16 !== 0 || addrHi !== 0) {
          return this.fail(`bad indirect table length ${len}`);
        }
        table = addrLo;
        max = len / 16;
        i = 0;
        seen = 0;
        inTable = true;
        continue;
      }
      if (addrHi !== 0) return this.fail("buffer above 4 GiB");
      const buf = { addr: addrLo, len };
      if ((flags & VRING_DESC_F_WRITE) !== 0) chain.in.push(buf);
      else if (chain.in.length > 0) return this.fail("readable buffer after a writable one");
      else chain.out.push(buf);
      if ((flags & VRING_DESC_F_NEXT) === 0) return chain;
      if (next >= max) return this.fail(`descriptor ${next} out of range`);
      i = next;
    }
  }

  /** Put chain `head` in the used ring with `len` bytes written. */
  push(head: number, len: number): void {
    const at = this.used + 4 + 8 * (this.usedIdx % this.size);
    const e = new Uint8Array(8);
    new DataView(e.buffer).setUint32(0, head, true);
    new DataView(e.buffer).setUint32(4, len, true);
    if (!this.host.write(at, e)) {
      this.fail("used ring outside guest RAM");
      return;
    }
    this.usedIdx = (this.usedIdx + 1) & 0xffff;
    this.putU16(this.used + 2, this.usedIdx); // after the entry, as the write barrier orders it
  }

  /**
   * Should the driver be interrupted for what was used since the last time?
   * (Nothing new: no. Then avail.flags NO_INTERRUPT, or with EVENT_IDX
   * whether `used_event` was passed.) Counts as telling it either way.
   */
  needsInterrupt(): boolean {
    const old = this.signalled, now = this.usedIdx;
    if (old === now) return false;
    this.signalled = now;
    if (this.eventIdx) {
      const ev = this.u16(this.avail + 4 + 2 * this.size);
      if (ev < 0) return true;
      return ((now - ev - 1) & 0xffff) < ((now - old) & 0xffff); // vring_need_event
    }
    const flags = this.u16(this.avail);
    return flags < 0 || (flags & VRING_AVAIL_F_NO_INTERRUPT) === 0;
  }

  /** The device-readable bytes of `chain`, at most `limit` of them (null: outside RAM). */
  gather(chain: DescChain, limit: number): Uint8Array | null {
    let total = 0;
    for (const b of chain.out) total += b.len;
    const out = new Uint8Array(Math.min(total, limit));
    let at = 0;
    for (const b of chain.out) {
      const n = Math.min(b.len, out.length - at);
      if (n <= 0) break;
      const bytes = this.host.read(b.addr, n);
      if (bytes === null) return this.fail("buffer outside guest RAM");
      out.set(bytes, at);
      at += n;
    }
    return out;
  }

  /** Write `data` into the device-writable buffers of `chain`; returns the bytes written. */
  scatter(chain: DescChain, data: Uint8Array): number {
    let at = 0;
    for (const b of chain.in) {
      const n = Math.min(b.len, data.length - at);
      if (n <= 0) break;
      if (!this.host.write(b.addr, data.subarray(at, at + n))) {
        this.fail("buffer outside guest RAM");
        return at;
      }
      at += n;
    }
    return at;
  }
}
