/**
 * The virtio console's PCI function (slot 1), as far as the early console
 * needs it: the launcher's device config has `emerg_wr` at BAR0 offset 68,
 * and a 32-bit write there puts its low byte on the console, whatever state
 * the device is in. That is how a 4.9 guest prints before its console driver
 * binds (through the PCI_CFG window), and how this project's small guests
 * print at all.
 *
 * The BAR0 register file keeps what the guest writes and answers the feature
 * registers; the virtqueue device model (the driver's state machine, queues,
 * interrupts) builds on this in the device-model work.
 *
 * @module
 */

import { VIRTIO_PCI_DEVICE_CFG, VirtioPciFunction } from "./pci.ts";

/** virtio type of a console. */
export const VIRTIO_ID_CONSOLE = 3;
/** Offset of `emerg_wr` in BAR0: device config (60) + cols, rows, max_nr_ports. */
export const EMERG_WR_OFFSET = VIRTIO_PCI_DEVICE_CFG + 8;

/** Feature bits offered: VIRTIO_CONSOLE_F_EMERG_WRITE (2) and VIRTIO_F_VERSION_1 (32). */
const FEATURES_LO = 1 << 2, FEATURES_HI = 1 << 0;

/** The console function. */
export class VirtioConsole extends VirtioPciFunction {
  private readonly regs = new Uint8Array(128);
  private readonly rdv = new DataView(this.regs.buffer);

  /**
   * The console function with its BAR0 at `barAddr`.
   *
   * @param barAddr guest-physical BAR0 address
   * @param sink receives each byte written to emerg_wr
   */
  constructor(barAddr: number, private readonly sink: (byte: number) => void) {
    super(VIRTIO_ID_CONSOLE, 0x0700, 1, barAddr, 12);
    this.rdv.setUint16(18, 2, true); // num_queues: receive and transmit
    this.rdv.setUint16(24, 256, true); // queue_size
  }

  /** Its name in messages. */
  readonly name = "virtio console";

  /** BAR0 read. */
  protected barRead(off: number, size: number): number {
    if (off === 4 && size === 4) {
      const sel = this.rdv.getUint32(0, true);
      return sel === 0 ? FEATURES_LO : sel === 1 ? FEATURES_HI : 0;
    }
    if (off === 58 && size === 1) {
      const isr = this.regs[58];
      this.regs[58] = 0; // reading the ISR clears it
      return isr;
    }
    return size === 1
      ? this.regs[off]
      : size === 2
      ? this.rdv.getUint16(off, true)
      : this.rdv.getInt32(off, true);
  }

  /** BAR0 write. */
  protected barWrite(off: number, v: number, size: number): void {
    if (off === EMERG_WR_OFFSET && size === 4) {
      this.sink(v & 0xff);
      return;
    }
    if (size === 1) this.regs[off] = v;
    else if (size === 2) this.rdv.setUint16(off, v, true);
    else this.rdv.setInt32(off, v, true);
  }
}
