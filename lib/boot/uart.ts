/**
 * A 16550 UART stub for COM1: enough for early consoles and decompressors that
 * poll the line status register and write the transmit holding register.
 * Transmitted bytes go to a sink; the receiver is always empty. Registers the
 * guest writes (divisor latch, IER, LCR, MCR, scratch) read back as written.
 *
 * @module
 */

import type { PortHandler } from "../x86/bus.ts";

/** COM1's base port. */
export const COM1 = 0x3f8;

/** A transmit-only 16550: bytes written to THR are handed to `sink`. */
export class Uart16550 implements PortHandler {
  private regs = new Uint8Array(8);
  private dll = 0;
  private dlm = 0;
  /**
   * A UART at `base`, reset.
   *
   * @param base first port (COM1 = 0x3F8)
   * @param sink receives each transmitted byte
   */
  constructor(readonly base: number = COM1, private sink: (byte: number) => void = () => {}) {}

  /** Port read. */
  in(port: number, _size: number): number {
    const r = (port - this.base) & 7;
    const dlab = (this.regs[3] & 0x80) !== 0;
    switch (r) {
      case 0:
        return dlab ? this.dll : 0; // RBR: nothing received
      case 1:
        return dlab ? this.dlm : this.regs[1];
      case 2:
        return 0x01; // IIR: no interrupt pending
      case 5:
        return 0x60; // LSR: THR empty, transmitter empty
      case 6:
        return 0xb0; // MSR: CTS, DSR, DCD
      default:
        return this.regs[r];
    }
  }

  /** Port write. */
  out(port: number, value: number, _size: number): void {
    const r = (port - this.base) & 7;
    const dlab = (this.regs[3] & 0x80) !== 0;
    if (r === 0 && !dlab) {
      const b = value & 0xff;
      this.sink(b);
    } else if (r === 0) this.dll = value & 0xff;
    else if (r === 1 && dlab) this.dlm = value & 0xff;
    else this.regs[r] = value & 0xff;
  }
}
