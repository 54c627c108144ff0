/**
 * What a guest printed on its console, kept in bounded memory. The host must
 * not grow without bound whatever the guest does, and a guest can print
 * forever; so the launcher (and the bare machine) keep only the last
 * {@link CONSOLE_LOG_BYTES} bytes in a ring, with counts of everything
 * written and of what fell off the front. Readers that want all of it read it
 * as a stream: a {@link ConsoleReader} hands out the bytes that arrived since
 * its last read, and counts the ones it missed if it fell more than a ring
 * behind. (The `console` sink of the launch options is the push form of the
 * same stream.)
 *
 * @module
 */

/** Bytes of console output a launcher keeps by default: 1 MiB. */
export const CONSOLE_LOG_BYTES = 1 << 20;

/** The last `capacity` bytes of a console, with totals. */
export class ConsoleLog {
  /** Bytes ever written. */
  total = 0;
  /** The ring; grows by doubling up to `capacity`, so a quiet guest costs little. */
  private buf = new Uint8Array(256);

  /** An empty log. @param capacity the most bytes kept (a positive integer) */
  constructor(readonly capacity: number = CONSOLE_LOG_BYTES) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`console log capacity must be a positive integer, not ${capacity}`);
    }
    if (capacity < this.buf.length) this.buf = new Uint8Array(capacity);
  }

  /** Bytes held now (at most `capacity`). */
  get length(): number {
    return Math.min(this.total, this.capacity);
  }

  /** Bytes of memory the ring occupies now (never more than `capacity`). */
  get allocated(): number {
    return this.buf.length;
  }

  /** Bytes written and no longer held (they fell off the front of the ring). */
  get dropped(): number {
    return this.total - this.length;
  }

  /** Append one byte. */
  push(byte: number): void {
    const t = this.total;
    if (t === this.buf.length && t < this.capacity) {
      const bigger = new Uint8Array(Math.min(this.capacity, t * 2));
      bigger.set(this.buf);
      this.buf = bigger;
    }
    this.buf[t % this.capacity] = byte;
    this.total = t + 1;
  }

  /** The held bytes written at or after absolute position `from` (a copy, oldest first). */
  since(from: number): Uint8Array {
    const start = Math.max(from, this.dropped);
    const n = this.total - start;
    const out = new Uint8Array(Math.max(0, n));
    for (let i = 0, p = start % this.capacity; i < n; i++) {
      out[i] = this.buf[p];
      if (++p === this.capacity) p = 0;
    }
    return out;
  }

  /** The held bytes, oldest first (a copy). */
  bytes(): Uint8Array {
    return this.since(0);
  }

  /** The held bytes as text (Latin-1: one character per byte). */
  text(): string {
    return latin1(this.bytes());
  }

  /** A reader that starts at the oldest byte still held (or, with `fromNow`, at the next one). */
  reader(fromNow = false): ConsoleReader {
    return new ConsoleReader(this, fromNow ? this.total : this.dropped);
  }
}

/** A position in a {@link ConsoleLog}: each read returns what arrived since the last. */
export class ConsoleReader {
  /** Bytes that fell off the ring before this reader got to them. */
  missed = 0;

  /**
   * A reader of `log` from `position` on.
   *
   * @param log the log read
   * @param position absolute position of the next byte to read
   */
  constructor(readonly log: ConsoleLog, public position: number) {}

  /** The bytes written since the last read (empty when none). */
  read(): Uint8Array {
    const log = this.log;
    const start = Math.max(this.position, log.dropped);
    this.missed += start - this.position;
    const out = log.since(start);
    this.position = log.total;
    return out;
  }

  /** {@link read} as text (Latin-1). */
  readText(): string {
    return latin1(this.read());
  }
}

/** Bytes as Latin-1 text, in slices (a spread of a megabyte would overflow the stack). */
function latin1(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i += 0x8000) {
    s += String.fromCharCode(...b.subarray(i, i + 0x8000));
  }
  return s;
}
