/**
 * The virtio 1.0 "modern" PCI transport, as lguest's 4.9 launcher offers it
 * (§9.2, §9.3): a PCI function whose vendor capabilities point into BAR0, and
 * BAR0's register file.
 *
 * BAR0 layout: the common configuration (0..55: feature words with their
 * select registers, device status, `queue_select` and the selected queue's
 * registers — size, enable, ring addresses — banked per queue), the notify
 * register (56, one address shared by every queue: the guest writes the
 * queue's index), the ISR (58, bit 0 = a queue interrupt, cleared when read),
 * padding (59), then the device's own config (60..). Config space carries the
 * five capabilities (common, notify, ISR, the PCI_CFG access window, device
 * config); the PCI_CFG window (`pci_cfg_data`) forwards a config access into
 * BAR0, which is how the early console writes before any driver maps the BAR.
 *
 * The driver's protocol is enforced as lguest's launcher enforces it (its
 * `bad_driver` exits, §9.3): every register at its natural width, nothing
 * outside the register file, status bits added one at a time in order
 * (ACKNOWLEDGE, DRIVER, FEATURES_OK, DRIVER_OK; 0 resets), features read only
 * after DRIVER and written only before FEATURES_OK, no feature accepted that
 * was not offered, queue registers written only after FEATURES_OK while the
 * queue is disabled, rings checked when enabled. A violation is reported
 * through the host's `fail` (the lguest launcher kills the guest) and the
 * access does nothing (a read gives 0).
 *
 * A notify is served at once, inside the guest's write: a single-threaded
 * host must finish the request before the guest resumes (§9.6 a).
 *
 * @module
 */

import type { DeviceHost } from "./host.ts";
import { PCI_CONFIG_SIZE, type PciFunction } from "./pci.ts";
import { VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC, Virtqueue } from "./virtqueue.ts";

/** Offset of the PCI_CFG capability (and its window fields). */
export const PCI_CFG_CAP = 0x84;
/** virtio_pci_cap cfg_type values. */
const CAP_COMMON = 1, CAP_NOTIFY = 2, CAP_ISR = 3, CAP_DEVICE = 4, CAP_PCI = 5;

/** BAR0 offsets of the common configuration (struct virtio_pci_common_cfg). */
export const REG = {
  deviceFeatureSelect: 0,
  deviceFeature: 4,
  driverFeatureSelect: 8,
  driverFeature: 12,
  msixConfig: 16,
  numQueues: 18,
  deviceStatus: 20,
  configGeneration: 21,
  queueSelect: 22,
  queueSize: 24,
  queueMsixVector: 26,
  queueEnable: 28,
  queueNotifyOff: 30,
  queueDescLo: 32,
  queueDescHi: 36,
  queueAvailLo: 40,
  queueAvailHi: 44,
  queueUsedLo: 48,
  queueUsedHi: 52,
  notify: 56,
  isr: 58,
  padding: 59,
} as const;
/** Where the device-specific config starts in BAR0. */
export const VIRTIO_PCI_DEVICE_CFG = 60;

/** Device status bits. */
export const STATUS = {
  ACKNOWLEDGE: 1,
  DRIVER: 2,
  DRIVER_OK: 4,
  FEATURES_OK: 8,
  FAILED: 0x80,
} as const;
/** VIRTIO_F_VERSION_1: bit 32, bit 0 of the high feature word. */
export const VIRTIO_F_VERSION_1 = 32;
/** "No MSI-X vector". */
const NO_VECTOR = 0xffff;

/** The width of each register below the device config (0: not a register start). */
const WIDTH = new Uint8Array(VIRTIO_PCI_DEVICE_CFG);
for (const off of [0, 4, 8, 12, 32, 36, 40, 44, 48, 52]) WIDTH[off] = 4;
for (const off of [16, 18, 22, 24, 26, 28, 30, 56]) WIDTH[off] = 2;
for (const off of [20, 21, 58, 59]) WIDTH[off] = 1;

/**
 * A virtio device behind the transport: its identity, features, queues and
 * config, and what it does when a queue is kicked.
 */
export abstract class VirtioDevice {
  /** Queues, by index. */
  readonly queues: Virtqueue[];
  /** Feature bits the driver accepted (low and high words). */
  driverFeatures: [number, number] = [0, 0];
  /** DRIVER_OK is set: the device is live. */
  live = false;
  /** Raise the transport's queue interrupt (set by the transport). */
  signal: () => void = () => {};

  /**
   * A device with its queues (made here, named after the device).
   *
   * @param host the machine the device sees
   * @param name its name in messages
   * @param virtioType virtio device type (3 = console)
   * @param classCode PCI class/subclass
   * @param features offered feature bits: [low word, high word]
   * @param configSize bytes of device config
   * @param queueNames the queues, by index
   */
  constructor(
    readonly host: DeviceHost,
    readonly name: string,
    readonly virtioType: number,
    readonly classCode: number,
    readonly features: readonly [number, number],
    readonly configSize: number,
    queueNames: string[],
  ) {
    this.queues = queueNames.map((q) => new Virtqueue(host, `${name}: ${q}`));
  }

  /** Was feature `bit` (0..63) negotiated? */
  negotiated(bit: number): boolean {
    return ((this.driverFeatures[bit >> 5] >>> (bit & 31)) & 1) !== 0;
  }

  /** Interrupt the driver if queue `q`'s used ring says it wants to hear. */
  protected signalUsed(q: Virtqueue): void {
    if (q.needsInterrupt()) this.signal();
  }

  /** Read device config (`off` from its start; aligned, inside it). */
  abstract configRead(off: number, size: number): number;
  /** Write device config; false when the device does not take that write. */
  abstract configWrite(off: number, v: number, size: number): boolean;
  /** Queue `index` was kicked (the device is live and the queue enabled). */
  abstract notify(index: number): void;
  /** DRIVER_OK was just set. */
  driverOk(): void {}
  /** The driver reset the device. */
  reset(): void {
    for (const q of this.queues) q.reset();
    this.driverFeatures = [0, 0];
    this.live = false;
  }
}

/** A virtio device as a PCI function: config space, capabilities and the BAR0 transport. */
export class VirtioPciFunction implements PciFunction {
  /** Config space bytes (152). */
  readonly config: Uint8Array = new Uint8Array(PCI_CONFIG_SIZE);
  private readonly cdv: DataView = new DataView(this.config.buffer);
  /** BAR0 window size (a power of two). */
  readonly barSize: number;
  /** Bytes of BAR0 that hold registers: 60 + the device config. */
  readonly regsSize: number;
  /** The device's name. */
  readonly name: string;

  /** device_feature_select. */
  deviceFeatureSelect = 0;
  /** driver_feature_select. */
  driverFeatureSelect = 0;
  /** device_status. */
  status = 0;
  /** queue_select. */
  queueSelect = 0;
  /** The ISR: bit 0 = queue interrupt. */
  isr = 0;

  /**
   * The function for `device`: config space with the vendor capabilities.
   *
   * @param device the device behind the transport
   * @param irq the interrupt line (the guest uses it directly as its IRQ number)
   * @param barAddr guest-physical address of BAR0
   */
  constructor(readonly device: VirtioDevice, readonly irq: number, public barAddr: number) {
    this.name = device.name;
    const used = VIRTIO_PCI_DEVICE_CFG + device.configSize;
    this.regsSize = used;
    let size = 1;
    while (size < used) size <<= 1;
    this.barSize = size;
    device.signal = () => this.interrupt();
    const d = this.cdv;
    d.setUint16(0x00, 0x1af4, true);
    d.setUint16(0x02, 0x1040 + device.virtioType, true);
    d.setUint16(0x06, 0x0010, true); // capability list
    this.config[0x08] = 1; // revision
    this.config[0x0a] = device.classCode & 0xff;
    this.config[0x0b] = device.classCode >> 8;
    d.setUint32(0x10, barAddr, true);
    d.setUint16(0x2e, 0x40, true); // subsystem device
    this.config[0x34] = 0x40;
    this.config[0x3c] = irq;
    const hasCfg = device.configSize > 0;
    this.cap(0x40, 0x50, 16, CAP_COMMON, 0, 56);
    this.cap(0x50, 0x64, 20, CAP_NOTIFY, REG.notify, 2); // notify_off_multiplier (+16) = 0
    this.cap(0x64, PCI_CFG_CAP, 16, CAP_ISR, REG.isr, 1);
    this.cap(PCI_CFG_CAP, hasCfg ? 0x74 : 0, 20, CAP_PCI, 0, 0);
    if (hasCfg) this.cap(0x74, 0, 16, CAP_DEVICE, VIRTIO_PCI_DEVICE_CFG, device.configSize);
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

  // ------------------------------------------------------------------ config space

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
    if (w) this.store(PCI_CFG_CAP + 16, this.barRead(w[0], w[1]), w[1]);
  }

  /** A write to the PCI-config access window: pass it to the BAR bytes it names. */
  private cfgWindowWrite(v: number, size: number): boolean {
    const w = this.windowAccess(size);
    if (!w) return false;
    this.barWrite(w[0], w[1] === 4 ? v : v & ((1 << (w[1] * 8)) - 1), w[1]);
    return true;
  }

  // ------------------------------------------------------------------ BAR0

  /** Report a driver error, naming the device; reads as 0. */
  private fail(what: string): number {
    this.device.host.fail(`${this.name}: ${what}`);
    return 0;
  }

  /** Is the access a whole register (or an aligned piece of device config)? */
  private checkAccess(off: number, size: number, what: string): boolean {
    const at = `${what} of ${size} bytes at BAR0 offset 0x${off.toString(16)}`;
    if (!(off >= 0 && off + size <= this.regsSize)) {
      this.fail(`${at}, outside its ${this.regsSize} bytes of registers`);
      return false;
    }
    if (off < VIRTIO_PCI_DEVICE_CFG ? WIDTH[off] !== size : off % size !== 0) {
      this.fail(`${at}: not a register at its width`);
      return false;
    }
    return true;
  }

  /** The queue `queue_select` names (undefined: none). */
  private get queue(): Virtqueue | undefined {
    return this.device.queues[this.queueSelect];
  }

  /** A BAR0 read from the guest. */
  barRead(off: number, size: number): number {
    if (!this.checkAccess(off, size, "read")) return 0;
    const dev = this.device, q = this.queue;
    if (off >= VIRTIO_PCI_DEVICE_CFG) {
      if ((this.status & STATUS.DRIVER) === 0) return this.fail("config read before DRIVER");
      return dev.configRead(off - VIRTIO_PCI_DEVICE_CFG, size);
    }
    switch (off) {
      case REG.deviceFeatureSelect:
        return this.deviceFeatureSelect;
      case REG.deviceFeature:
        if ((this.status & STATUS.DRIVER) === 0) return this.fail("feature read before DRIVER");
        return this.deviceFeatureSelect < 2 ? dev.features[this.deviceFeatureSelect] : 0;
      case REG.driverFeatureSelect:
        return this.driverFeatureSelect;
      case REG.driverFeature:
        if ((this.status & STATUS.DRIVER) === 0) return this.fail("feature read before DRIVER");
        return dev.driverFeatures[this.driverFeatureSelect];
      case REG.msixConfig:
        return this.fail("read of msix_config");
      case REG.numQueues:
        return dev.queues.length;
      case REG.deviceStatus:
        return this.status;
      case REG.configGeneration:
        return 0;
      case REG.queueSelect:
        return this.queueSelect;
      case REG.queueSize:
        return q ? q.size : 0;
      case REG.queueMsixVector:
        return NO_VECTOR;
      case REG.queueEnable:
        return q?.enabled ? 1 : 0;
      case REG.queueNotifyOff:
        return 0;
      case REG.queueDescLo:
        return q ? q.desc : 0;
      case REG.queueAvailLo:
        return q ? q.avail : 0;
      case REG.queueUsedLo:
        return q ? q.used : 0;
      case REG.queueDescHi:
      case REG.queueAvailHi:
      case REG.queueUsedHi:
        return 0;
      case REG.notify:
        if (!dev.live) return this.fail("notify read before DRIVER_OK");
        return 0;
      case REG.isr: {
        const v = this.isr;
        this.isr = 0; // reading the ISR clears it (and lowers the line)
        dev.host.lowerIrq(this.irq);
        return v;
      }
      default: // padding
        return this.fail("read from padding");
    }
  }

  /** A BAR0 write from the guest. */
  barWrite(off: number, v: number, size: number): void {
    if (!this.checkAccess(off, size, "write")) return;
    const dev = this.device, q = this.queue;
    if (off >= VIRTIO_PCI_DEVICE_CFG) {
      if (!dev.configWrite(off - VIRTIO_PCI_DEVICE_CFG, v, size)) {
        this.fail(`unexpected config write at offset ${off - VIRTIO_PCI_DEVICE_CFG}`);
      }
      return;
    }
    const featuresWritable = (this.status & (STATUS.DRIVER | STATUS.FEATURES_OK)) ===
      STATUS.DRIVER;
    switch (off) {
      case REG.deviceFeatureSelect:
        this.deviceFeatureSelect = v >>> 0;
        return;
      case REG.driverFeatureSelect:
        if (v >>> 0 > 1) return void this.fail(`driver_feature_select ${v >>> 0}`);
        this.driverFeatureSelect = v;
        return;
      case REG.driverFeature: {
        if (!featuresWritable) return void this.fail("feature write outside DRIVER");
        const sel = this.driverFeatureSelect;
        if ((v & ~dev.features[sel]) !== 0) {
          return void this.fail(`accepted features 0x${(v >>> 0).toString(16)} not offered`);
        }
        dev.driverFeatures[sel] = v >>> 0;
        return;
      }
      case REG.msixConfig:
        if ((v & 0xffff) !== NO_VECTOR) this.fail("MSI-X vector set");
        return;
      case REG.deviceStatus:
        return this.writeStatus(v & 0xff);
      case REG.queueSelect:
        this.queueSelect = v & 0xffff;
        return;
      case REG.queueSize:
        if (!this.queueWritable(q)) return;
        if (v === 0 || (v & (v - 1)) !== 0 || v > q.maxSize) {
          return void this.fail(`queue size ${v}`);
        }
        q.size = v;
        return;
      case REG.queueEnable:
        if (!this.queueWritable(q)) return;
        if (v !== 1) return void this.fail(`queue_enable ${v}`);
        if (dev.live) return void this.fail("queue enabled after DRIVER_OK");
        q.eventIdx = dev.negotiated(VIRTIO_RING_F_EVENT_IDX);
        q.indirect = dev.negotiated(VIRTIO_RING_F_INDIRECT_DESC);
        if (q.check()) q.enabled = true;
        return;
      case REG.queueDescLo:
        if (this.queueWritable(q)) q.desc = v >>> 0;
        return;
      case REG.queueAvailLo:
        if (this.queueWritable(q)) q.avail = v >>> 0;
        return;
      case REG.queueUsedLo:
        if (this.queueWritable(q)) q.used = v >>> 0;
        return;
      case REG.queueDescHi:
      case REG.queueAvailHi:
      case REG.queueUsedHi:
        if (this.queueWritable(q) && v !== 0) this.fail("ring above 4 GiB");
        return;
      case REG.notify: {
        const n = v & 0xffff, nq = dev.queues[n];
        if (nq === undefined) return void this.fail(`notify of queue ${n}`);
        if (dev.live && nq.enabled) dev.notify(n);
        return;
      }
      default: // read-only or reserved: num_queues, config_generation, queue_msix_vector, …
        this.fail(`write to read-only register at offset ${off}`);
    }
  }

  /** Queue registers may change after FEATURES_OK, while the queue is disabled. */
  private queueWritable(q: Virtqueue | undefined): q is Virtqueue {
    const why = q === undefined
      ? `queue ${this.queueSelect} does not exist`
      : (this.status & STATUS.FEATURES_OK) === 0
      ? "queue set up before FEATURES_OK"
      : q.enabled
      ? "queue changed while enabled"
      : "";
    if (why !== "") this.fail(why);
    return why === "";
  }

  /** A device_status write: 0 resets; otherwise the next bit in order (or FAILED). */
  private writeStatus(v: number): void {
    const dev = this.device, old = this.status;
    if (v === 0) {
      // Reset: the device forgets the driver.
      this.status = this.isr = 0;
      this.deviceFeatureSelect = this.driverFeatureSelect = this.queueSelect = 0;
      dev.reset();
      dev.host.lowerIrq(this.irq);
      return;
    }
    if ((old & ~v) !== 0) return void this.fail(`status 0x${v.toString(16)} clears bits`);
    let added = v & ~old;
    if ((added & STATUS.FAILED) !== 0) {
      this.status |= STATUS.FAILED; // the driver gave up: fine, it may reset later
      added &= ~STATUS.FAILED;
      if (added === 0) return;
    }
    const next = (old & STATUS.ACKNOWLEDGE) === 0
      ? STATUS.ACKNOWLEDGE
      : (old & STATUS.DRIVER) === 0
      ? STATUS.DRIVER
      : (old & STATUS.FEATURES_OK) === 0
      ? STATUS.FEATURES_OK
      : (old & STATUS.DRIVER_OK) === 0
      ? STATUS.DRIVER_OK
      : 0;
    if (added !== next) return void this.fail(`status 0x${v.toString(16)} out of order`);
    if (added === STATUS.FEATURES_OK && !dev.negotiated(VIRTIO_F_VERSION_1)) {
      return; // a modern device refuses a driver without VERSION_1: FEATURES_OK stays clear
    }
    this.status = v;
    if (added === STATUS.DRIVER_OK) {
      dev.live = true;
      dev.driverOk();
    }
  }

  /** A queue interrupt: ISR bit 0 and the line. */
  interrupt(): void {
    this.isr |= 1;
    this.device.host.raiseIrq(this.irq);
  }
}
