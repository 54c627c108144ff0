/**
 * PCI configuration mechanism 1 and the device window, as the 4.9 lguest
 * launcher serves them (tools/lguest/lguest.c: pci_data_ioread/iowrite).
 *
 * The guest reaches config space with port I/O — an address to 0xCF8, then
 * data through 0xCFC..0xCFF — which the host emulates at ring 1 by handing it
 * to the CPU's bus, where the launcher registered this object (a
 * `PortHandler`). The address decodes only bus 0, function 0 (bit 31 set);
 * anything else reads as all ones. Slot 0 is a dummy host bridge (class
 * 0x0600, vendor 0, so Linux's scan skips it but its type-1 sanity check
 * passes); the launcher plugs functions into slots 1, 2, ….
 *
 * It is also the device window's `MmioRegion`: an access there goes to the
 * function whose BAR0 holds the address (a BAR can move: Linux sizes it and
 * writes it back); window bytes no BAR holds read as all ones and ignore
 * writes.
 *
 * @module
 */

import type { MmioRegion, PortHandler } from "../x86/bus.ts";

/** Config-space bytes implemented per function (lguest's struct pci_config). */
export const PCI_CONFIG_SIZE = 152;

/** A PCI function with one memory BAR (BAR0), as every lguest device is. */
export interface PciFunction {
  /** Its name in messages. */
  readonly name: string;
  /** Guest-physical address of BAR0. */
  readonly barAddr: number;
  /** BAR0's size (a power of two). */
  readonly barSize: number;
  /** Read `size` bytes of config space at `off` (dword-aligned register + byte lane). */
  configRead(off: number, size: number): number;
  /** Write config space; false when the function refuses the write (the host reflects #GP). */
  configWrite(off: number, v: number, size: number): boolean;
  /** Read a BAR0 register at `off` (inside the window; the function checks its registers). */
  barRead(off: number, size: number): number;
  /** Write a BAR0 register. */
  barWrite(off: number, v: number, size: number): void;
}

/** The dummy host bridge in slot 0: class 0x0600, vendor/device 0 (so Linux's scan skips it). */
class HostBridge {
  readonly config = new Uint8Array(PCI_CONFIG_SIZE);
  constructor() {
    this.config[0x0b] = 0x06;
  }
}

/**
 * Config mechanism 1 on ports 0xCF8..0xCFF, with up to 32 functions on bus 0,
 * and the MMIO window that holds their BARs.
 */
export class PciBus implements PortHandler, MmioRegion {
  /** The config-address latch (0xCF8). */
  address = 0;
  /** Functions by slot (slot 0 is the host bridge). */
  readonly slots: (PciFunction | null)[] = new Array(32).fill(null);
  private readonly bridge = new HostBridge();

  /** Put `f` in `slot` (1..31). */
  attach(slot: number, f: PciFunction): void {
    if (!Number.isInteger(slot) || slot < 1 || slot > 31 || this.slots[slot] !== null) {
      throw new RangeError(`PCI slot ${slot} is not free`);
    }
    this.slots[slot] = f;
  }

  /** Decode the latch: [slot, register offset] or null for an access that reads all ones. */
  private target(): [number, number] | null {
    const a = this.address;
    if ((a & 0x80000000) === 0) return null;
    const bus = (a >>> 16) & 0xff, slot = (a >>> 11) & 0x1f, fn = (a >>> 8) & 7;
    if (bus !== 0 || fn !== 0) return null;
    return [slot, a & 0xfc];
  }

  /** Port read from 0xCF8..0xCFF. */
  in(port: number, size: number): number {
    if (port >= 0xcf8 && port <= 0xcfb) {
      const shift = (port - 0xcf8) * 8;
      const v = this.address >>> shift;
      return size === 4 ? v | 0 : v & ((1 << (size * 8)) - 1);
    }
    const ones = size === 4 ? -1 : (1 << (size * 8)) - 1;
    const t = this.target();
    if (!t) return ones;
    const [slot, reg] = t;
    const off = reg + (port - 0xcfc);
    if (slot === 0) {
      if (off + size > PCI_CONFIG_SIZE) return ones;
      const dv = new DataView(this.bridge.config.buffer);
      return size === 1
        ? dv.getUint8(off)
        : size === 2
        ? dv.getUint16(off, true)
        : dv.getInt32(off, true);
    }
    const f = this.slots[slot];
    return f ? f.configRead(off, size) : ones;
  }

  /** Port write to 0xCF8..0xCFF; false when the write is refused (the host reflects #GP). */
  out(port: number, v: number, size: number): boolean {
    if (port >= 0xcf8 && port <= 0xcfb) {
      const shift = (port - 0xcf8) * 8;
      const mask = (size === 4 ? -1 : (1 << (size * 8)) - 1) << shift;
      this.address = ((this.address & ~mask) | ((v << shift) & mask)) >>> 0;
      return true;
    }
    const t = this.target();
    if (!t) return true;
    const [slot, reg] = t;
    const f = this.slots[slot];
    if (!f) return slot !== 0; // writes to the bridge are refused; to empty slots ignored
    return f.configWrite(reg + (port - 0xcfc), v, size);
  }

  /** The function whose BAR0 window holds guest-physical `gpa`. */
  private findBar(gpa: number): PciFunction | null {
    for (const f of this.slots) {
      if (f && gpa >= f.barAddr && gpa < f.barAddr + f.barSize) return f;
    }
    return null;
  }

  /** MMIO read in the device window: to the BAR holding it (none: all ones). */
  read(addr: number, size: number): number {
    const f = this.findBar(addr);
    if (f === null) return size === 4 ? -1 : (1 << (size * 8)) - 1;
    return f.barRead(addr - f.barAddr, size);
  }

  /** MMIO write in the device window: to the BAR holding it (none: dropped). */
  write(addr: number, size: number, value: number): void {
    const f = this.findBar(addr);
    if (f !== null) f.barWrite(addr - f.barAddr, value, size);
  }
}
