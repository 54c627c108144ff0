/**
 * The virtio console (virtio type 3), as lguest's launcher offers it (§8,
 * §9.6 a/b): one port, queue 0 receives and queue 1 transmits, features
 * EMERG_WRITE and VERSION_1, and a 12-byte device config {u16 cols; u16 rows;
 * u32 max_nr_ports; u32 emerg_wr}.
 *
 * - `emerg_wr`: a 32-bit write puts its low byte on the console whatever
 *   state the device is in — how a 4.9 guest prints before its driver binds
 *   (through the PCI_CFG window), and how this project's small guests print.
 * - transmit: on a kick of queue 1, every chain waiting is written out (its
 *   device-readable bytes, in order) and returned used with length 0, before
 *   the guest resumes — the 4.9 driver busy-waits for its buffer to come back
 *   with interrupts off; then the driver is interrupted if it asked to be.
 * - receive: input from the host (`input`) is held (up to a bound) until the
 *   driver has posted buffers on queue 0, then copied into them, returned
 *   used with the length written, and the driver interrupted.
 *
 * @module
 */

import type { DeviceHost } from "./host.ts";
import { VIRTIO_F_VERSION_1, VirtioDevice } from "./virtio_pci.ts";

/** virtio type of a console. */
export const VIRTIO_ID_CONSOLE = 3;
/** VIRTIO_CONSOLE_F_EMERG_WRITE. */
export const VIRTIO_CONSOLE_F_EMERG_WRITE = 2;
/** Offset of `emerg_wr` in the device config. */
export const EMERG_WR = 8;
/** Offset of `emerg_wr` in BAR0: device config (60) + 8. */
export const EMERG_WR_OFFSET = 60 + EMERG_WR;
/** Queue indexes. */
export const RECEIVEQ = 0, TRANSMITQ = 1;
/** Input bytes held while the driver has no receive buffers. */
export const INPUT_LIMIT = 64 * 1024;
/** Most bytes taken from one transmit chain (the rest is dropped). */
export const TRANSMIT_LIMIT = 1 << 20;

/** The console device. */
export class VirtioConsole extends VirtioDevice {
  private pending: Uint8Array = new Uint8Array(0);
  /** Input bytes dropped because INPUT_LIMIT was reached. */
  droppedInput = 0;

  /**
   * A console whose output goes to `sink`.
   *
   * @param host the machine
   * @param sink receives every byte the guest prints (emerg_wr and the transmit queue)
   */
  constructor(host: DeviceHost, private readonly sink: (byte: number) => void) {
    super(
      host,
      "virtio console",
      VIRTIO_ID_CONSOLE,
      0x0700,
      [1 << VIRTIO_CONSOLE_F_EMERG_WRITE, 1 << (VIRTIO_F_VERSION_1 - 32)],
      12,
      ["receiveq", "transmitq"],
    );
  }

  /** cols, rows and max_nr_ports are 0; emerg_wr reads as 0. */
  configRead(_off: number, _size: number): number {
    return 0;
  }

  /** Only emerg_wr, as a dword, is writable. */
  configWrite(off: number, v: number, size: number): boolean {
    if (off !== EMERG_WR || size !== 4) return false;
    this.sink(v & 0xff);
    return true;
  }

  /** A kick: transmit everything queued, or take newly posted receive buffers. */
  notify(index: number): void {
    if (index === TRANSMITQ) {
      const q = this.queues[TRANSMITQ];
      for (let chain = q.pop(); chain !== null; chain = q.pop()) {
        const bytes = q.gather(chain, TRANSMIT_LIMIT);
        if (bytes !== null) { for (const b of bytes) this.sink(b); }
        q.push(chain.head, 0);
      }
      this.signalUsed(q);
    } else this.deliverInput();
  }

  /** Input for the guest (a keyboard, a pipe): held until the driver posts buffers. */
  input(bytes: Uint8Array): void {
    const room = INPUT_LIMIT - this.pending.length;
    const take = bytes.subarray(0, Math.max(0, room));
    this.droppedInput += bytes.length - take.length;
    const next = new Uint8Array(this.pending.length + take.length);
    next.set(this.pending);
    next.set(take, this.pending.length);
    this.pending = next;
    this.deliverInput();
  }

  /** Input bytes waiting for receive buffers. */
  get pendingInput(): number {
    return this.pending.length;
  }

  /** Once live: maybe input arrived before the driver did. */
  override driverOk(): void {
    this.deliverInput();
  }

  /** Copy held input into the receive buffers the driver posted. */
  private deliverInput(): void {
    const q = this.queues[RECEIVEQ];
    if (!this.live || !q.enabled) return;
    while (this.pending.length > 0) {
      const chain = q.pop();
      if (chain === null) break;
      const n = q.scatter(chain, this.pending);
      q.push(chain.head, n);
      this.pending = this.pending.slice(n);
    }
    this.signalUsed(q);
  }
}
