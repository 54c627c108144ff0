/**
 * Physical memory: one ArrayBuffer with 8-, 16- and 32-bit views and a DataView.
 *
 * Everything the CPU touches goes through these views, so guest RAM is a single
 * flat allocation that a debugger can read directly. Aligned 32-bit accesses use
 * the Int32Array view; unaligned ones go through the DataView (little-endian).
 * Accesses outside RAM are not errors here: the CPU decides what they mean
 * (open bus reads as all ones, writes are dropped, or a registered MMIO hook).
 *
 * @module
 */

/** Guest-physical memory: a flat, little-endian byte array with fast typed views. */
export class PhysicalMemory {
  /** Size of RAM in bytes (a multiple of 4 KiB). */
  readonly size: number;
  /** The backing store. */
  readonly buffer: ArrayBuffer;
  /** Byte view. */
  readonly u8: Uint8Array;
  /** 16-bit view (index = address >> 1, aligned accesses only). */
  readonly u16: Uint16Array;
  /** 32-bit view (index = address >> 2, aligned accesses only). */
  readonly i32: Int32Array;
  /** DataView for unaligned accesses. */
  readonly dv: DataView;

  /**
   * Allocate `size` bytes of zeroed RAM.
   * @param size bytes; rounded up to a whole number of 4 KiB pages.
   */
  constructor(size: number) {
    if (!Number.isInteger(size) || size <= 0 || size > 0xc000_0000) {
      throw new RangeError(`memory size ${size} out of range`);
    }
    this.size = Math.ceil(size / 4096) * 4096;
    this.buffer = new ArrayBuffer(this.size);
    this.u8 = new Uint8Array(this.buffer);
    this.u16 = new Uint16Array(this.buffer);
    this.i32 = new Int32Array(this.buffer);
    this.dv = new DataView(this.buffer);
  }

  /** True when `[pa, pa+len)` lies inside RAM. */
  contains(pa: number, len = 1): boolean {
    return pa >= 0 && len >= 0 && pa + len <= this.size;
  }

  /** Read a byte; outside RAM reads as 0xFF. */
  read8(pa: number): number {
    return pa >= 0 && pa < this.size ? this.u8[pa] : 0xff;
  }

  /** Read a little-endian 16-bit value; outside RAM reads as 0xFFFF. */
  read16(pa: number): number {
    return this.contains(pa, 2) ? this.dv.getUint16(pa, true) : 0xffff;
  }

  /** Read a little-endian 32-bit value as a signed int32; outside RAM reads as -1. */
  read32(pa: number): number {
    return this.contains(pa, 4) ? this.dv.getInt32(pa, true) : -1;
  }

  /** Write a byte; dropped outside RAM. */
  write8(pa: number, v: number): void {
    if (pa >= 0 && pa < this.size) this.u8[pa] = v;
  }

  /** Write a little-endian 16-bit value; dropped outside RAM. */
  write16(pa: number, v: number): void {
    if (this.contains(pa, 2)) this.dv.setUint16(pa, v, true);
  }

  /** Write a little-endian 32-bit value; dropped outside RAM. */
  write32(pa: number, v: number): void {
    if (this.contains(pa, 4)) this.dv.setInt32(pa, v, true);
  }

  /** Copy `bytes` into RAM at `pa`; throws RangeError if it does not fit. */
  load(pa: number, bytes: Uint8Array): void {
    if (!this.contains(pa, bytes.length)) {
      throw new RangeError(
        `cannot load ${bytes.length} bytes at 0x${pa.toString(16)}: outside RAM`,
      );
    }
    this.u8.set(bytes, pa);
  }

  /** A copy of `len` bytes at `pa` (bytes outside RAM read as 0xFF). */
  slice(pa: number, len: number): Uint8Array {
    const out = new Uint8Array(len).fill(0xff);
    const lo = Math.max(0, pa), hi = Math.min(this.size, pa + len);
    if (hi > lo) out.set(this.u8.subarray(lo, hi), lo - pa);
    return out;
  }
}
