/**
 * The machine's I/O bus: where port I/O and memory-mapped device registers
 * go. One object per CPU (`cpu.bus`); it knows nothing of PCI, virtio or any
 * hypervisor — devices register here, and the CPU's own decoder carries every
 * IN/OUT and every memory access of any form and width to them.
 *
 * Ports: a handler claims a range of the 64 KiB port space; an unclaimed port
 * reads as all ones and ignores writes (an open bus).
 *
 * Memory-mapped I/O: a region claims a range of *physical* addresses. The
 * CPU's memory path sends an access there to the region instead of RAM: a page
 * holding any part of a region never enters the TLB, so the fast path (a TLB
 * hit) never sees device memory and every such access takes the slow path,
 * which asks the bus. A region receives `read(addr, size)` and `write(addr,
 * size, value)` with the physical address and a size of 1, 2 or 4 (an access
 * that crosses a page boundary arrives as single bytes); a region sees only
 * addresses inside itself — an access that starts inside and runs past its
 * end is offered byte by byte, the bytes outside going wherever they belong.
 * A page is either RAM or device memory: bytes on an MMIO page that no region
 * claims read as all ones and ignore writes.
 *
 * @module
 */

/** A device on the port bus: `size` is 1, 2 or 4. */
export interface PortHandler {
  /** Read `size` bytes from `port`. */
  in(port: number, size: number): number;
  /**
   * Write `size` bytes of `value` to `port`. Returning false refuses the
   * write: a hypervisor emulating the instruction then raises #GP (as lguest's
   * launcher does for a refused PCI config write); a bare CPU ignores it.
   */
  out(port: number, value: number, size: number): boolean | void;
}

/** A device register file in physical memory. */
export interface MmioRegion {
  /** Read `size` (1, 2 or 4) bytes at physical `addr` (inside the region). */
  read(addr: number, size: number): number;
  /** Write `size` bytes of `value` at physical `addr` (inside the region). */
  write(addr: number, size: number, value: number): void;
}

interface Mapping {
  base: number;
  end: number;
  region: MmioRegion;
}

const ones = (size: number) => (size === 4 ? -1 : (1 << (size * 8)) - 1);

/** Ports and MMIO regions: one bus, one place to register devices. */
export class Bus {
  /** Port handlers, by port (sparse). */
  private readonly ports: (PortHandler | undefined)[] = new Array(0x10000);
  /** Per 4 KiB physical page: 1 when an MMIO region covers any of it. */
  readonly mmioPage: Uint8Array = new Uint8Array(1 << 20);
  private readonly maps: Mapping[] = [];
  /** Called after the set of MMIO pages changed (the CPU flushes its TLB). */
  onRemap: (() => void) | null = null;

  /** Register `h` for ports `[first, first+count)` (later registrations win). */
  registerPorts(first: number, count: number, h: PortHandler): void {
    for (let p = first; p < first + count && p < 0x10000; p++) if (p >= 0) this.ports[p] = h;
  }

  /** Port read (an unclaimed port reads as all ones). */
  portIn(port: number, size: number): number {
    const h = this.ports[port & 0xffff];
    return h !== undefined ? h.in(port & 0xffff, size) : ones(size);
  }

  /** Port write; false when the device refused it (unclaimed ports accept and drop). */
  portOut(port: number, value: number, size: number): boolean {
    const h = this.ports[port & 0xffff];
    return h === undefined || h.out(port & 0xffff, value, size) !== false;
  }

  /**
   * Map `region` at physical `[base, base+size)`. Regions must not overlap
   * (a RangeError otherwise: that is a wiring mistake, not a guest's doing).
   */
  mapMmio(base: number, size: number, region: MmioRegion): void {
    const end = base + size;
    if (!Number.isInteger(base) || !Number.isInteger(size) || base < 0 || size <= 0) {
      throw new RangeError(`bad MMIO region at ${base} (+${size})`);
    }
    if (end > 0x1_0000_0000) throw new RangeError("MMIO region beyond 4 GiB");
    for (const m of this.maps) {
      if (base < m.end && m.base < end) {
        throw new RangeError(`MMIO region at 0x${base.toString(16)} overlaps another`);
      }
    }
    this.maps.push({ base, end, region });
    this.remapPages();
  }

  /** Remove `region` wherever it is mapped. */
  unmapMmio(region: MmioRegion): void {
    for (let i = this.maps.length - 1; i >= 0; i--) {
      if (this.maps[i].region === region) this.maps.splice(i, 1);
    }
    this.remapPages();
  }

  /** Rebuild the per-page "holds MMIO" map from the mappings. */
  private remapPages(): void {
    this.mmioPage.fill(0);
    for (const m of this.maps) {
      for (let p = Math.floor(m.base / 4096); p < Math.ceil(m.end / 4096); p++) {
        this.mmioPage[p] = 1;
      }
    }
    this.onRemap?.();
  }

  /** Is physical address `pa` on a page some region covers (so it bypasses the TLB)? */
  isMmioPage(pa: number): boolean {
    return this.mmioPage[pa >>> 12] !== 0;
  }

  /** The mapping holding physical `pa`, or null. */
  private find(pa: number): Mapping | null {
    for (const m of this.maps) if (pa >= m.base && pa < m.end) return m;
    return null;
  }

  /** Read `size` bytes at physical `pa` on an MMIO page (unclaimed bytes read as all ones). */
  read(pa: number, size: number): number {
    pa >>>= 0;
    const m = this.find(pa);
    if (m !== null && pa + size <= m.end) return m.region.read(pa, size);
    if (size === 1) return 0xff;
    let v = 0;
    for (let i = 0; i < size; i++) v |= (this.read(pa + i, 1) & 0xff) << (i * 8);
    return size === 2 ? v & 0xffff : v;
  }

  /** Write `size` bytes of `value` at physical `pa` on an MMIO page (unclaimed: dropped). */
  write(pa: number, size: number, value: number): void {
    pa >>>= 0;
    const m = this.find(pa);
    if (m !== null && pa + size <= m.end) m.region.write(pa, size, value);
    else if (size > 1) {
      for (let i = 0; i < size; i++) this.write(pa + i, 1, (value >>> (i * 8)) & 0xff);
    }
  }
}
