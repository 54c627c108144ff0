/**
 * Numbers and addresses as the debugger reads them.
 *
 * Addresses and values are hexadecimal by default, with or without `0x`
 * (`c0001000`, `0xc0001000`); decimal is written with WinDbg's `0n` prefix
 * (`0n4096`). Counts — how many steps, how many units to examine, an
 * instruction count — are decimal, as in gdb (`step 10`, `x/16b`), and take
 * `0x` for hex. An expression adds and subtracts terms; a term is a number, a
 * register (`eax`, `$esp`, `eip`), a kernel symbol (`start_kernel`), or
 * `[expr]`, the dword at that linear address (`[esp]`, `[ebp+4]`); C's operators
 * combine them (`(eax & 0xff) == 1`), nested at most {@link MAX_EXPR_DEPTH} deep.
 *
 * @module
 */

/** A bad number, name or address: a one-line message for the user. */
export class DebugError extends Error {
  /** A debugger error. @param message what was wrong, in one line */
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

/** How deeply brackets and unary operators may nest in one expression. */
export const MAX_EXPR_DEPTH = 256;

/** Binary operators by precedence level, loosest first (C's order). */
const LEVELS: string[][] = [
  ["||"],
  ["&&"],
  ["|"],
  ["^"],
  ["&"],
  ["==", "!="],
  ["<=", ">=", "<", ">"],
  ["<<", ">>"],
  ["+", "-"],
  ["*", "/", "%"],
];

function apply(op: string, a: number, b: number): number {
  switch (op) {
    case "||":
      return a !== 0 || b !== 0 ? 1 : 0;
    case "&&":
      return a !== 0 && b !== 0 ? 1 : 0;
    case "|":
      return a | b;
    case "^":
      return a ^ b;
    case "&":
      return a & b;
    case "==":
      return a === b ? 1 : 0;
    case "!=":
      return a !== b ? 1 : 0;
    case "<":
      return a < b ? 1 : 0;
    case "<=":
      return a <= b ? 1 : 0;
    case ">":
      return a > b ? 1 : 0;
    case ">=":
      return a >= b ? 1 : 0;
    case "<<":
      return b > 31 ? 0 : a << b;
    case ">>":
      return b > 31 ? 0 : a >>> b;
    case "+":
      return a + b;
    case "-":
      return a - b;
    case "*":
      return Math.imul(a, b);
    case "/":
    case "%":
      if (b === 0) throw new DebugError("division by zero");
      return op === "/" ? Math.floor(a / b) : a % b;
  }
  throw new DebugError(`unknown operator '${op}'`);
}

/**
 * Evaluate an expression to an unsigned 32-bit value. Terms are numbers (hex
 * by default), registers, symbols, `[addr]` (the dword there) and `(…)`; the
 * operators are C's, with C's precedence: unary `- ~ !`, then `* / %`, `+ -`,
 * `<< >>`, comparisons, `== !=`, `& ^ |`, `&& ||`. Arithmetic is unsigned
 * 32-bit; a comparison or `!` gives 0 or 1 (so `break ADDR if eax == 1`
 * works). A bare word that is both a hex number and a symbol or register
 * (`cafe` as a symbol) means the symbol. Brackets nest at most
 * {@link MAX_EXPR_DEPTH} deep: deeper is a one-line error, not a stack overflow.
 */
export function evaluate(text: string, ctx: ExprContext): number {
  const src = text.trim();
  if (src === "") throw new DebugError("missing address");
  let pos = 0;
  let depth = 0;
  const skip = () => {
    while (pos < src.length && (src[pos] === " " || src[pos] === "\t")) pos++;
  };
  const enter = () => {
    if (++depth > MAX_EXPR_DEPTH) {
      throw new DebugError(`expression nested more than ${MAX_EXPR_DEPTH} deep`);
    }
  };
  const close = (c: string) => {
    skip();
    if (src[pos] !== c) throw new DebugError(`missing '${c}' in '${clip(src)}'`);
    pos++;
  };
  const unary = (): number => {
    skip();
    const c = src[pos];
    if (c === "-" || c === "~" || c === "!" || c === "+") {
      pos++;
      enter();
      const v = unary();
      depth--;
      return c === "-" ? -v >>> 0 : c === "~" ? ~v >>> 0 : c === "!" ? (v === 0 ? 1 : 0) : v;
    }
    if (c === "[" || c === "(") {
      pos++;
      enter();
      const v = binary(0);
      close(c === "[" ? "]" : ")");
      depth--;
      return c === "[" ? ctx.deref(v) >>> 0 : v;
    }
    const m = /^\$?[A-Za-z0-9_.@$]+/.exec(src.slice(pos));
    if (!m) throw new DebugError(`cannot read '${clip(src.slice(pos))}' as a value`);
    pos += m[0].length;
    return word(m[0], ctx);
  };
  const opAt = (level: number): string | null => {
    for (const op of LEVELS[level]) {
      if (!src.startsWith(op, pos)) continue;
      // `<` is not the start of `<<`, `&` not of `&&`, `|` not of `||`.
      const longer = LEVELS.flat().some((o) => o.length > op.length && src.startsWith(o, pos));
      if (!longer) return op;
    }
    return null;
  };
  const binary = (level: number): number => {
    if (level === LEVELS.length) return unary();
    let v = binary(level + 1);
    for (;;) {
      skip();
      const op = opAt(level);
      if (!op) return v >>> 0;
      pos += op.length;
      v = apply(op, v >>> 0, binary(level + 1) >>> 0) >>> 0;
    }
  };
  const v = binary(0);
  skip();
  if (pos < src.length) {
    throw new DebugError(`unexpected '${clip(src.slice(pos))}' in '${clip(src)}'`);
  }
  return v >>> 0;
}

/** At most 40 characters of `s`, for error messages. */
function clip(s: string): string {
  return s.length > 40 ? s.slice(0, 40) + "…" : s;
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
