/**
 * Numbers and addresses as the debugger reads them.
 *
 * Addresses and values are hexadecimal by default, with or without `0x`
 * (`c0001000`, `0xc0001000`); decimal is written with WinDbg's `0n` prefix
 * (`0n4096`). Counts — how many steps, how many units to examine, an
 * instruction count — are decimal, as in gdb (`step 10`, `x/16b`), and take
 * `0x` for hex. An expression adds and subtracts terms; a term is a number, a
 * register (`eax`, `$esp`, `eip`), a kernel symbol (`start_kernel`), or
 * `[expr]`, the dword at that linear address (`[esp]`, `[ebp+4]`).
 *
 * @module
 */

/** A bad number, name or address: a one-line message for the user. */
export class DebugError extends Error {
  /** @param message what was wrong, in one line */
  constructor(message: string) {
    super(message);
    this.name = "DebugError";
  }
}

/** What an expression may refer to. */
export interface ExprContext {
  /** A register's value, or undefined when `name` is not a register. */
  register(name: string): number | undefined;
  /** A symbol's address, or undefined. */
  symbol(name: string): number | undefined;
  /** The dword at linear `addr` (throws DebugError when unreadable). */
  deref(addr: number): number;
}

/** Parse a number in the debugger's default radix (hex); null when it is not one. */
export function parseNumber(s: string): number | null {
  let m = /^0n([0-9]+)$/i.exec(s);
  if (m) return checked(Number(m[1]), s);
  m = /^(?:0x)?([0-9a-f]+)$/i.exec(s);
  if (m) return checked(parseInt(m[1], 16), s);
  return null;
}

/** Parse a count: decimal by default, `0x` for hex, `0n` allowed. */
export function parseCount(s: string): number {
  let v: number;
  if (/^0x[0-9a-f]+$/i.test(s)) v = parseInt(s.slice(2), 16);
  else if (/^0n[0-9]+$/i.test(s)) v = Number(s.slice(2));
  else if (/^[0-9]+$/.test(s)) v = Number(s);
  else throw new DebugError(`'${s}' is not a count (counts are decimal: 10, or 0x10 for hex)`);
  if (!Number.isSafeInteger(v)) throw new DebugError(`count '${s}' is too large`);
  return v;
}

function checked(v: number, s: string): number {
  if (!Number.isFinite(v) || v > 0xffffffff) {
    throw new DebugError(`'${s}' does not fit in 32 bits`);
  }
  return v;
}

/**
 * Evaluate an address expression to an unsigned 32-bit value. A bare word
 * that is both a hex number and a symbol or register (`add`, `eax`? no: `eax`
 * is not hex; but `cafe` may be a symbol) means the symbol or register.
 */
export function evaluate(text: string, ctx: ExprContext): number {
  const src = text.trim();
  if (src === "") throw new DebugError("missing address");
  let pos = 0;
  const peek = () => src[pos];
  const skip = () => {
    while (pos < src.length && src[pos] === " ") pos++;
  };
  const term = (): number => {
    skip();
    if (peek() === "[") {
      pos++;
      const v = sum();
      skip();
      if (peek() !== "]") throw new DebugError(`missing ']' in '${src}'`);
      pos++;
      return ctx.deref(v) >>> 0;
    }
    if (peek() === "(") {
      pos++;
      const v = sum();
      skip();
      if (peek() !== ")") throw new DebugError(`missing ')' in '${src}'`);
      pos++;
      return v;
    }
    const m = /^\$?[A-Za-z0-9_.@$]+/.exec(src.slice(pos));
    if (!m) throw new DebugError(`cannot read '${src.slice(pos)}' as an address`);
    pos += m[0].length;
    return word(m[0], ctx);
  };
  const sum = (): number => {
    let v = term();
    for (;;) {
      skip();
      const op = peek();
      if (op !== "+" && op !== "-") return v >>> 0;
      pos++;
      const t = term();
      v = op === "+" ? v + t : v - t;
    }
  };
  const v = sum();
  skip();
  if (pos < src.length) throw new DebugError(`unexpected '${src.slice(pos)}' in '${src}'`);
  return v >>> 0;
}

function word(w: string, ctx: ExprContext): number {
  const bare = w.startsWith("$") ? w.slice(1) : w;
  const r = ctx.register(bare.toLowerCase());
  if (r !== undefined) return r >>> 0;
  const s = ctx.symbol(bare);
  if (s !== undefined) return s >>> 0;
  if (!w.startsWith("$")) {
    const n = parseNumber(w);
    if (n !== null) return n;
  }
  if (/^[0-9]/.test(w)) {
    throw new DebugError(`'${w}' is not a number (hex by default; 0n10 is decimal)`);
  }
  throw new DebugError(`no register or symbol named '${bare}'`);
}
