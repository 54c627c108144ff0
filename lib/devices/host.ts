/**
 * What a device sees of the machine it is plugged into: a small interface the
 * host provides, so the devices in this folder know nothing of lguest, the
 * CPU or the launcher.
 *
 * - guest-physical memory, bounds-checked: a read or write that is not wholly
 *   inside guest RAM fails (null / false) and touches nothing; a write also
 *   drops translated code on the pages it changes;
 * - an interrupt line to raise and lower;
 * - virtual time;
 * - `fail(reason)`: the driver broke the device's protocol. lguest's launcher
 *   exits on such a violation (`bad_driver`, §9.3, §10); a host may kill the
 *   guest with the reason. The device carries on safely either way.
 *
 * @module
 */

/** The host's side of every device. */
export interface DeviceHost {
  /** A copy of `len` bytes of guest RAM at `gpa`, or null when that is not all RAM. */
  read(gpa: number, len: number): Uint8Array | null;
  /** Write `bytes` to guest RAM at `gpa`; false (nothing written) when that is not all RAM. */
  write(gpa: number, bytes: Uint8Array): boolean;
  /** Assert interrupt line `line`. */
  raiseIrq(line: number): void;
  /** Deassert interrupt line `line`. */
  lowerIrq(line: number): void;
  /** Virtual time in nanoseconds. */
  now(): number;
  /** The driver broke the protocol: report `reason` (a one-line message). */
  fail(reason: string): void;
}

/**
 * A DeviceHost over a plain byte array standing for guest RAM (for tests and
 * scripts): interrupts are counted per line, failures collected.
 */
export class MemoryDeviceHost implements DeviceHost {
  /** Interrupt line levels. */
  readonly irqs: Map<number, boolean> = new Map();
  /** How many times each line was raised. */
  readonly raised: Map<number, number> = new Map();
  /** Failure reasons, in order. */
  readonly failures: string[] = [];
  /** Virtual time returned by now(). */
  time = 0;

  /**
   * A host over `ram`.
   *
   * @param ram the guest's RAM
   */
  constructor(readonly ram: Uint8Array) {}

  /** Bounds-checked copy out of `ram`. */
  read(gpa: number, len: number): Uint8Array | null {
    if (!(gpa >= 0 && len >= 0 && gpa + len <= this.ram.length)) return null;
    return this.ram.slice(gpa, gpa + len);
  }

  /** Bounds-checked copy into `ram`. */
  write(gpa: number, bytes: Uint8Array): boolean {
    if (!(gpa >= 0 && gpa + bytes.length <= this.ram.length)) return false;
    this.ram.set(bytes, gpa);
    return true;
  }

  /** Raise a line (and count it). */
  raiseIrq(line: number): void {
    this.irqs.set(line, true);
    this.raised.set(line, (this.raised.get(line) ?? 0) + 1);
  }

  /** Lower a line. */
  lowerIrq(line: number): void {
    this.irqs.set(line, false);
  }

  /** The current `time`. */
  now(): number {
    return this.time;
  }

  /** Collect the reason. */
  fail(reason: string): void {
    this.failures.push(reason);
  }
}
