/**
 * PCI configuration mechanism 1, as the 4.9 lguest launcher serves it
 * (tools/lguest/lguest.c: pci_data_ioread/iowrite, init_pci_config, init_cap).
 *
 * The guest reaches it with port I/O — an address to 0xCF8, then data through
 * 0xCFC..0xCFF — which the host emulates at ring 1 by handing it to the CPU's
 * bus, where the launcher registered this object (a `PortHandler`). It is
 * also the device window's `MmioRegion`: an access there goes to the function
 * whose BAR0 holds the address. Slot 0 is a dummy host bridge; slot 1 is the
 * virtio console, a modern virtio 1.0 PCI function whose vendor capabilities
 * point into BAR0. Only the first 152 bytes of each function's config space
 * exist; the writes the launcher accepts are few (BARs, the PCI_CFG window),
 * and any other is refused, which reflects a #GP into the guest.
 *
 * The PCI_CFG capability's window (`pci_cfg_data`) forwards accesses into
 * BAR0: that is how the guest's early console writes `emerg_wr` before any
 * driver has mapped the BAR.
 *
 * Every BAR0 access, by MMIO or through the window, is checked against the
 * function's register file (60 bytes of virtio registers plus its device
 * config) before a device sees it: one that runs outside is the driver's
 * error, and as lguest's launcher exits on a driver error (`bad_driver`), the
 * guest dies with the reason (`fail`). Window bytes past every BAR read as all
 * ones and ignore writes.
 *
 * @module
 */

import type { MmioRegion, PortHandler } from "../x86/bus.ts";

/** Config-space bytes implemented per function. */
export const PCI_CONFIG_SIZE = 152;
/** Offset of the PCI_CFG capability (and its window fields). */
export const PCI_CFG_CAP = 0x84;

/** virtio_pci_cap cfg_type values. */
const CAP_COMMON = 1, CAP_NOTIFY = 2, CAP_ISR = 3, CAP_DEVICE = 4, CAP_PCI = 5;

/** Size of the common virtio_pci registers + notify + ISR + padding before device config. */
export const VIRTIO_PCI_DEVICE_CFG = 60;

/** A virtio-over-PCI function: its config space and its BAR0 register file. */
export abstract class VirtioPciFunction {
  /** Config space bytes (152). */
  readonly config: Uint8Array = new Uint8Array(PCI_CONFIG_SIZE);
  private readonly cdv: DataView = new DataView(this.config.buffer);
  /** BAR0 window size (a power of two). */
  readonly barSize: number;
  /** Bytes of BAR0 that hold registers: 60 + the device config. */
  readonly regsSize: number;
  /** Reports a driver error (the launcher kills the guest with the reason). */
  fail: (reason: string) => void = () => {};
  /** The device's name in messages. */
  abstract readonly name: string;

  /**
   * A virtio-over-PCI function: its configuration space with the vendor
   * capabilities filled in.
   *
   * @param virtioType virtio device type (3 = console)
   * @param classCode class/subclass (e.g. 0x0700 for a communication device)
   * @param irq the interrupt line (the guest uses it directly as its IRQ number)
   * @param barAddr guest-physical address of BAR0
   * @param deviceCfgSize bytes of device-specific config after offset 60
   */
  constructor(
    virtioType: number,
    classCode: number,
    readonly irq: number,
    public barAddr: number,
    readonly deviceCfgSize: number,
  ) {
    const used = VIRTIO_PCI_DEVICE_CFG + deviceCfgSize;
    this.regsSize = used;
    let size = 1;
    while (size < used) size <<= 1;
    this.barSize = size;
    const d = this.cdv;
    d.setUint16(0x00, 0x1af4, true);
    d.setUint16(0x02, 0x1040 + virtioType, true);
    d.setUint16(0x06, 0x0010, true); // capability list
    this.config[0x08] = 1; // revision
    this.config[0x0a] = classCode & 0xff;
    this.config[0x0b] = classCode >> 8;
    d.setUint32(0x10, barAddr, true);
    d.setUint16(0x2e, 0x40, true); // subsystem device
    this.config[0x34] = 0x40;
    this.config[0x3c] = irq;
    this.cap(0x40, 0x50, 16, CAP_COMMON, 0, 56);
    this.cap(0x50, 0x64, 20, CAP_NOTIFY, 56, 2);
    this.cap(0x64, PCI_CFG_CAP, 16, CAP_ISR, 58, 1);
    this.cap(PCI_CFG_CAP, deviceCfgSize > 0 ? 0x74 : 0, 20, CAP_PCI, 0, 0);
    if (deviceCfgSize > 0) this.cap(0x74, 0, 16, CAP_DEVICE, VIRTIO_PCI_DEVICE_CFG, deviceCfgSize);
  }

  /** Write a virtio vendor capability at config offset `at`, linked to `next`. */
  private cap(
    at: number,
    next: number,
    len: number,
    type: number,
    off: number,
    length: number,
  ): void {
    const c = this.config;
    c[at] = 0x09;
    c[at + 1] = next;
    c[at + 2] = len;
    c[at + 3] = type;
    c[at + 4] = 0; // bar
    this.cdv.setUint32(at + 8, off, true);
    this.cdv.setUint32(at + 12, length, true);
  }

  /** Read `size` bytes of config space at `off` (past the implemented bytes: all ones). */
  configRead(off: number, size: number): number {
    if (off + size > PCI_CONFIG_SIZE) return size === 4 ? -1 : (1 << (size * 8)) - 1;
    if (off === PCI_CFG_CAP + 16) this.cfgWindowRead(size);
    return size === 1
      ? this.config[off]
      : size === 2
      ? this.cdv.getUint16(off, true)
      : this.cdv.getInt32(off, true);
  }

  /** Write config space; returns false when the launcher refuses the write. */
  configWrite(off: number, v: number, size: number): boolean {
    const d = this.cdv;
    const dword = off & ~3;
    if (dword === 0x10) {
      // BAR0: bits below the window size read back as zero (how sizing works).
      if (size !== 4) return false;
      this.barAddr = (v & ~(this.barSize - 1)) >>> 0;
      d.setUint32(0x10, this.barAddr, true);
      return true;
    }
    if ((dword >= 0x14 && dword <= 0x28) || dword === 0x30) {
      this.store(off, v, size); // BAR1..5, CardBus CIS, expansion ROM: stored as written
      return true;
    }
    if (dword === 0x04) return size === 2; // a command write: ignored
    if (dword === 0x0c) {
      this.store(off, size === 4 ? v & 0xffff : v, size === 4 ? 2 : size);
      return true;
    }
    // The PCI_CFG window: bar (byte), offset and length are writable; data forwards to BAR0.
    if (off === PCI_CFG_CAP + 4 && size === 1) {
      this.config[off] = v;
      return true;
    }
    if ((dword === PCI_CFG_CAP + 8 || dword === PCI_CFG_CAP + 12) && size === 4) {
      d.setUint32(off, v, true);
      return true;
    }
    if (dword === PCI_CFG_CAP + 16) return this.cfgWindowWrite(v, size);
    return false;
  }

  /** Store `size` bytes of `v` in the configuration space at `off`. */
  private store(off: number, v: number, size: number): void {
    if (size === 1) this.config[off] = v;
    else if (size === 2) this.cdv.setUint16(off, v, true);
    else this.cdv.setUint32(off, v, true);
  }

  /** The window's BAR access, if it is a valid one: [offset, length]. */
  private windowAccess(size: number): [number, number] | null {
    const d = this.cdv;
    const bar = this.config[PCI_CFG_CAP + 4];
    const off = d.getUint32(PCI_CFG_CAP + 8, true), len = d.getUint32(PCI_CFG_CAP + 12, true);
    if (bar !== 0 || (len !== 1 && len !== 2 && len !== 4) || len > size) return null;
    if (off % len !== 0 || off + len > this.barSize) return null;
    return [off, len];
  }

  /** A read of the PCI-config access window: fetch the BAR bytes it names into it. */
  private cfgWindowRead(size: number): void {
    const w = this.windowAccess(size);
    if (w) this.store(PCI_CFG_CAP + 16, this.read(w[0], w[1]), w[1]);
  }

  /** A write to the PCI-config access window: pass it to the BAR bytes it names. */
  private cfgWindowWrite(v: number, size: number): boolean {
    const w = this.windowAccess(size);
    if (!w) return false;
    this.write(w[0], w[1] === 4 ? v : v & ((1 << (w[1] * 8)) - 1), w[1]);
    return true;
  }

  /** Is `[off, off+size)` inside the register file? Otherwise the driver is told off. */
  private checked(off: number, size: number, what: string): boolean {
    if (off >= 0 && off + size <= this.regsSize) return true;
    this.fail(
      `${this.name}: ${what} of ${size} bytes at BAR0 offset 0x${off.toString(16)}, ` +
        `outside its ${this.regsSize} bytes of registers`,
    );
    return false;
  }

  /** A BAR0 read from the guest, bounds-checked (outside the registers: 0, and `fail`). */
  read(off: number, size: number): number {
    return this.checked(off, size, "read") ? this.barRead(off, size) : 0;
  }

  /** A BAR0 write from the guest, bounds-checked (outside the registers: ignored, and `fail`). */
  write(off: number, v: number, size: number): void {
    if (this.checked(off, size, "write")) this.barWrite(off, v, size);
  }

  /** Read a BAR0 register: `[off, off+size)` lies inside the register file. */
  protected abstract barRead(off: number, size: number): number;
  /** Write a BAR0 register: `[off, off+size)` lies inside the register file. */
  protected abstract barWrite(off: number, v: number, size: number): void;
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
  readonly slots: (VirtioPciFunction | null)[] = new Array(32).fill(null);
  private readonly bridge = new HostBridge();

  /** Reports a driver error: the launcher kills the guest with the reason. */
  fail: (reason: string) => void = () => {};

  /** Put `f` in `slot`. */
  attach(slot: number, f: VirtioPciFunction): void {
    this.slots[slot] = f;
    f.fail = (reason) => this.fail(reason);
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
  private findBar(gpa: number): VirtioPciFunction | null {
    for (const f of this.slots) {
      if (f && gpa >= f.barAddr && gpa < f.barAddr + f.barSize) return f;
    }
    return null;
  }

  /** MMIO read in the device window: to the BAR holding it (none: all ones). */
  read(addr: number, size: number): number {
    const f = this.findBar(addr);
    if (f === null) return size === 4 ? -1 : (1 << (size * 8)) - 1;
    return f.read(addr - f.barAddr, size);
  }

  /** MMIO write in the device window: to the BAR holding it (none: dropped). */
  write(addr: number, size: number, value: number): void {
    const f = this.findBar(addr);
    if (f !== null) f.write(addr - f.barAddr, value, size);
  }
}
