/**
 * The virtio block device (virtio type 2), as lguest's launcher offers it
 * (§9.6 c): one queue ("request"), features SEG_MAX and VERSION_1, and a
 * 36-byte device config whose `capacity` (u64, in 512-byte sectors) and
 * `seg_max` (u32 at offset 12, 254) are filled in. The disk is a byte array
 * the host hands in (a file's contents); writes change it in place and, when
 * the disk has a backing store (the launcher's `--block=FILE`), go through to
 * it at once — the file holds every acknowledged write, so nothing is lost on
 * a poweroff, clean or not. A read-only disk (`--block=FILE,ro`) offers
 * VIRTIO_BLK_F_RO and answers writes with IOERR.
 *
 * A request is a chain: a 16-byte header {u32 type; u32 ioprio; u64 sector}
 * and, for a write, the data, in device-readable buffers; then the
 * device-writable ones — for a read the data — whose very last byte is the
 * status (0 OK, 1 IOERR, 2 UNSUPP). Served inside the notify write, as the
 * console's transmit queue is:
 *  - OUT (1): the data written at sector × 512; used length 1. A write past
 *    the end of the disk is the driver's error (lguest's launcher exits):
 *    IOERR, and noted as a failure. On a read-only disk: IOERR.
 *  - IN (0): read from sector × 512, as much as the buffers hold and the
 *    disk has (a read starting at or past the end is IOERR); used length 1 + bytes.
 *  - FLUSH (4): the backing store's flush (fsync), else nothing: OK.
 *  - GET_ID (8): the ID string "lguest.ts" (lguest's launcher treats every
 *    other type as a read, so it returns disk bytes here; this device answers
 *    as the virtio spec says).
 *  - anything else: UNSUPP.
 *
 * @module
 */

import type { DeviceHost } from "./host.ts";
import { VIRTIO_F_VERSION_1, VirtioDevice } from "./virtio_pci.ts";

/** virtio type of a block device. */
export const VIRTIO_ID_BLOCK = 2;
/** VIRTIO_BLK_F_SEG_MAX. */
export const VIRTIO_BLK_F_SEG_MAX = 2;
/** Request types. */
export const VIRTIO_BLK_T_IN = 0, VIRTIO_BLK_T_OUT = 1, VIRTIO_BLK_T_FLUSH = 4;
/** The GET_ID request. */
export const VIRTIO_BLK_T_GET_ID = 8;
/** Status bytes. */
export const VIRTIO_BLK_S_OK = 0, VIRTIO_BLK_S_IOERR = 1, VIRTIO_BLK_S_UNSUPP = 2;
/** The ID GET_ID answers (at most 20 bytes, NUL-padded). */
export const BLOCK_ID = "lguest.ts";
/** Segments per request the device accepts (seg_max). */
export const SEG_MAX = 254;
/** VIRTIO_BLK_F_RO: the disk is read-only. */
export const VIRTIO_BLK_F_RO = 5;

/** A disk with a backing store (a file) its writes go through to. */
export interface BlockDisk {
  /** The disk's bytes (whole sectors count), changed in place by writes. */
  bytes: Uint8Array;
  /** Offer VIRTIO_BLK_F_RO and refuse writes. */
  readOnly?: boolean;
  /** Write `data` at byte `offset` of the store (called after `bytes` changed). */
  write?(offset: number, data: Uint8Array): void;
  /** Make the writes so far durable (a FLUSH request). */
  flush?(): void;
}

/** The block device over an in-memory disk. */
export class VirtioBlock extends VirtioDevice {
  /** Requests served, by type (for the debugger and tests). */
  readonly served: Map<number, number> = new Map();

  /** The disk's bytes, changed in place by writes. */
  readonly disk: Uint8Array;
  /** The disk and its backing store. */
  readonly store: BlockDisk;
  /** The backing store's last error, when a write or flush failed. */
  storeError: string | null = null;

  /**
   * A block device over `disk` (its length is rounded down to whole sectors).
   *
   * @param host the machine
   * @param disk the disk's bytes, or the disk with its backing store
   */
  constructor(host: DeviceHost, disk: Uint8Array | BlockDisk) {
    const store = disk instanceof Uint8Array ? { bytes: disk } : disk;
    super(
      host,
      "virtio block",
      VIRTIO_ID_BLOCK,
      0x0180,
      [
        1 << VIRTIO_BLK_F_SEG_MAX | (store.readOnly ? 1 << VIRTIO_BLK_F_RO : 0),
        1 << (VIRTIO_F_VERSION_1 - 32),
      ],
      36,
      ["request"],
    );
    this.store = store;
    this.disk = store.bytes;
  }

  /** Capacity in 512-byte sectors. */
  get capacity(): number {
    return Math.floor(this.disk.length / 512);
  }

  /** capacity (u64 at 0) and seg_max (u32 at 12); the rest reads as 0. */
  configRead(off: number, size: number): number {
    const cfg = new DataView(new ArrayBuffer(36));
    cfg.setUint32(0, this.capacity % 0x100000000, true);
    cfg.setUint32(4, Math.floor(this.capacity / 0x100000000), true);
    cfg.setUint32(12, SEG_MAX, true);
    return size === 1
      ? cfg.getUint8(off)
      : size === 2
      ? cfg.getUint16(off, true)
      : cfg.getInt32(off, true);
  }

  /** The block config is read-only. */
  configWrite(_off: number, _v: number, _size: number): boolean {
    return false;
  }

  /**
   * Run a backing-store operation: OK, or IOERR if it threw (the host's
   * trouble, not the driver's: the guest sees an I/O error, the message is kept).
   */
  private persist(op: () => void): number {
    try {
      op();
      return VIRTIO_BLK_S_OK;
    } catch (e) {
      this.storeError = `${(e as Error)?.message ?? e}`;
      return VIRTIO_BLK_S_IOERR;
    }
  }

  /** A kick: serve every request waiting. */
  notify(_index: number): void {
    const q = this.queues[0];
    for (let chain = q.pop(); chain !== null; chain = q.pop()) {
      let inLen = 0;
      for (const b of chain.in) inLen += b.len;
      if (inLen < 1) {
        this.host.fail(`${this.name}: request without a status byte`);
        q.push(chain.head, 0);
        continue;
      }
      const out = q.gather(chain, 16 + this.disk.length);
      if (out === null) {
        q.push(chain.head, 0);
        continue;
      }
      if (out.length < 16) {
        this.host.fail(`${this.name}: request header of ${out.length} bytes`);
        q.push(chain.head, 0);
        continue;
      }
      const dv = new DataView(out.buffer, out.byteOffset, out.length);
      const type = dv.getUint32(0, true);
      const sector = dv.getUint32(8, true) + dv.getUint32(12, true) * 0x100000000;
      this.served.set(type, (this.served.get(type) ?? 0) + 1);
      let data: Uint8Array = new Uint8Array(0), status = VIRTIO_BLK_S_OK;
      const at = sector * 512;
      if (type === VIRTIO_BLK_T_IN) {
        if (at >= this.disk.length && inLen > 1) status = VIRTIO_BLK_S_IOERR;
        else data = this.disk.subarray(at, at + Math.min(inLen - 1, this.disk.length - at));
      } else if (type === VIRTIO_BLK_T_OUT) {
        const bytes = out.subarray(16);
        if (this.store.readOnly) status = VIRTIO_BLK_S_IOERR;
        else if (at + bytes.length > this.disk.length) {
          this.host.fail(`${this.name}: write past the end of the disk (sector ${sector})`);
          status = VIRTIO_BLK_S_IOERR;
        } else {
          this.disk.set(bytes, at);
          status = this.persist(() => this.store.write?.(at, bytes));
        }
      } else if (type === VIRTIO_BLK_T_FLUSH) {
        status = this.persist(() => this.store.flush?.());
      } else if (type === VIRTIO_BLK_T_GET_ID) {
        data = new TextEncoder().encode(BLOCK_ID).subarray(0, Math.min(20, inLen - 1));
      } else status = VIRTIO_BLK_S_UNSUPP;
      // The data from the first writable byte on; the status in the very last one.
      const n = q.scatter(chain, data);
      const last = chain.in.findLast((b) => b.len > 0)!;
      if (!this.host.write(last.addr + last.len - 1, new Uint8Array([status]))) {
        this.host.fail(`${this.name}: status byte outside guest RAM`);
      }
      const used = 1 + n;
      q.push(chain.head, used);
    }
    this.signalUsed(q);
  }
}
