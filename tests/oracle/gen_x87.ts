/**
 * Generator of the x87 class: cases whose results a float64-based FPU can get
 * exactly right.
 *
 * Our FPU keeps float64 internally, so every input is a float64 value (ST
 * registers come from an initial FNSAVE image, memory operands are written in
 * the instruction's format) and every result must be exact in float64:
 *
 *  - arithmetic runs with precision control = double (CW 0x027F, all
 *    exceptions masked), where the x87 rounds exactly as IEEE double does, and
 *    with round-to-nearest unless the result is exact (then any rounding mode
 *    and either precision is used). Whether a result is exact is decided here
 *    with exact rational arithmetic; for inexact results PE and C1 (the rounding
 *    direction) are not compared, since a float64 FPU cannot see them;
 *  - loads of m64int and packed BCD stay within 2^53; m80 loads are float64
 *    values; FLDPI and the other constants (64-bit mantissas natively) are only
 *    observed through a following FSTP m64/m32, with PE/C1 masked;
 *  - transcendentals (FSIN FCOS FSINCOS FPTAN FPATAN F2XM1 FYL2X FYL2XP1) are
 *    left out: their results are not exact in float64 at all.
 *
 * Status-word bits the SDM leaves undefined (C0..C3 per instruction) are
 * tracked through the case and masked; FNSTSW/FNSTENV/FNSAVE images that carry
 * undefined bits get register/memory masks. FIP/FDP/FCS/FDS/FOP fields of
 * stored environments are masked (AMD saves them only with a pending exception).
 *
 * @module
 */

import {
  AF,
  type CaseBuilder,
  CF,
  EAX,
  fx,
  hx,
  type Insn,
  OF,
  PF,
  type Rng,
  SF,
  ZF,
} from "./gen_lib.ts";
import type { GenCtx } from "./gen_int.ts";

/** Status-word bits. */
const IE = 0x1, DE = 0x2, ZE = 0x4, PE = 0x20, C0 = 0x100, C1 = 0x200, C2 = 0x400, C3 = 0x4000;
/** C0, C2, C3: undefined after most instructions. */
const C023 = C0 | C2 | C3;
/** All four condition codes. */
const CALL = C023 | C1;
void IE;
void DE;
void ZE;

/** An x87 value: its 80-bit encoding and the float64 it stands for. */
interface XVal {
  /** 10-byte extended encoding. */
  b: Uint8Array;
  /** The number (NaN for NaNs). */
  n: number;
}

const f64buf = new DataView(new ArrayBuffer(8));

/** Encode a float64 as 80-bit extended (NaN → the default indefinite QNaN unless `nanSign` 0). */
export function f80(x: number, nanSign = 1): Uint8Array {
  const out = new Uint8Array(10);
  let sign = 0, exp = 0, mant = 0n;
  if (Number.isNaN(x)) {
    sign = nanSign;
    exp = 0x7fff;
    mant = 0xc000000000000000n;
  } else {
    sign = x < 0 || Object.is(x, -0) ? 1 : 0;
    const a = Math.abs(x);
    if (a === Infinity) {
      exp = 0x7fff;
      mant = 0x8000000000000000n;
    } else if (a !== 0) {
      f64buf.setFloat64(0, a);
      const bits = f64buf.getBigUint64(0);
      const e = Number(bits >> 52n);
      const f = bits & ((1n << 52n) - 1n);
      if (e === 0) {
        const n = f.toString(2).length;
        mant = f << BigInt(64 - n);
        exp = n - 1 - 1074 + 16383;
      } else {
        mant = (f | (1n << 52n)) << 11n;
        exp = e - 1023 + 16383;
      }
    }
  }
  for (let i = 0; i < 8; i++) out[i] = Number((mant >> BigInt(8 * i)) & 0xffn);
  out[8] = exp & 0xff;
  out[9] = (exp >> 8) | (sign << 7);
  return out;
}

function xv(n: number, nanSign = 1): XVal {
  return { b: f80(n, nanSign), n };
}

/** Tag of a value: 0 valid, 1 zero, 2 special. */
function tagOf(v: XVal): number {
  if (v.n === 0) return 1;
  if (!Number.isFinite(v.n)) return 2;
  return 0;
}

// ------------------------------------------------------------------ exact arithmetic

/** x = m * 2^e exactly (x finite). */
function toRat(x: number): { m: bigint; e: number } {
  if (x === 0) return { m: 0n, e: 0 };
  f64buf.setFloat64(0, x);
  const bits = f64buf.getBigUint64(0);
  const s = bits >> 63n ? -1n : 1n;
  const ex = Number((bits >> 52n) & 0x7ffn);
  const f = bits & ((1n << 52n) - 1n);
  if (ex === 0) return { m: s * f, e: -1074 };
  return { m: s * (f | (1n << 52n)), e: ex - 1075 };
}

/** Exact equality of a*b and c (finite). */
function mulEq(a: number, b: number, c: number): boolean {
  const x = toRat(a), y = toRat(b), z = toRat(c);
  let lm = x.m * y.m, rm = z.m;
  const le = x.e + y.e, re = z.e;
  if (lm === 0n || rm === 0n) return lm === rm;
  if (le > re) lm <<= BigInt(le - re);
  else if (re > le) rm <<= BigInt(re - le);
  return lm === rm;
}

/** Is a+b exactly representable (TwoSum error zero)? */
function addExact(a: number, b: number): boolean {
  const s = a + b;
  if (!Number.isFinite(s)) return false;
  const bb = s - a;
  const err = (a - (s - bb)) + (b - bb);
  return err === 0;
}

/** Is `op` (a o b) exact in float64 for finite operands? */
function opExact(op: string, a: number, b: number): boolean {
  if (!Number.isFinite(a) || !Number.isFinite(b)) return true;
  switch (op) {
    case "add":
      return addExact(a, b);
    case "sub":
      return addExact(a, -b);
    case "mul": {
      const r = a * b;
      return Number.isFinite(r) && (r === 0 ? a === 0 || b === 0 : mulEq(a, b, r));
    }
    case "div": {
      if (b === 0) return true;
      const q = a / b;
      return Number.isFinite(q) && q !== 0 ? mulEq(q, b, a) : a === 0;
    }
    case "sqrt": {
      if (a < 0) return true;
      const r = Math.sqrt(a);
      return mulEq(r, r, a);
    }
  }
  return false;
}

// ------------------------------------------------------------------ values

/** A value with a short mantissa (k/256, |k| < 2^24): sums and products stay exact. */
function small(r: Rng): number {
  const k = r.int(6);
  let v: number;
  if (k === 0) v = r.range(-20, 20);
  else if (k === 1) v = r.range(-0x7fff, 0x7fff);
  else if (k === 2) v = r.range(-(1 << 23), 1 << 23) / 256;
  else if (k === 3) v = (r.range(1, 255) / 16) * (r.chance(0.5) ? -1 : 1);
  else if (k === 4) v = r.pick([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.25, 0.75, 3.5, 1e3, -7]);
  else v = r.range(-(1 << 20), 1 << 20);
  return v === 0 && r.chance(0.5) ? (r.chance(0.5) ? 1 : -1) : v;
}

/** A full-precision double with a moderate exponent. */
function wide(r: Rng): number {
  const m = 1 + (r.u32() * 2 ** 20 + (r.u32() >>> 12)) / 2 ** 52;
  const e = r.range(-30, 30);
  return (r.chance(0.5) ? -1 : 1) * m * 2 ** e;
}

/** A special value: ±0, ±inf, QNaN (the indefinite; a positive QNaN only with `posNan`). */
function special(r: Rng, posNan = false): XVal {
  const k = r.int(posNan ? 6 : 5);
  if (k === 0) return xv(0);
  if (k === 1) return xv(-0);
  if (k === 2) return xv(Infinity);
  if (k === 3) return xv(-Infinity);
  if (k === 4) return xv(NaN, 1);
  return xv(NaN, 0);
}

/** Any operand value, mostly finite. `exactBias` picks short mantissas. */
function anyVal(r: Rng, exactBias = 0.6): XVal {
  const k = r.real();
  if (k < 0.06) return special(r);
  return xv(r.real() < exactBias ? small(r) : wide(r));
}

// ------------------------------------------------------------------ the FPU image

/** x87 state a case starts from. */
interface X87State {
  cw: number;
  /** Status word without TOP. */
  sw: number;
  top: number;
  /** ST(0)..ST(7), null = empty. */
  st: (XVal | null)[];
}

function image(s: X87State): Uint8Array {
  const img = new Uint8Array(108);
  img[0] = s.cw & 0xff;
  img[1] = s.cw >> 8;
  const sw = (s.sw & ~0x3800) | (s.top << 11);
  img[4] = sw & 0xff;
  img[5] = sw >> 8;
  let tag = 0;
  for (let p = 0; p < 8; p++) {
    const i = (p - s.top) & 7;
    const v = s.st[i];
    tag |= (v ? tagOf(v) : 3) << (2 * p);
  }
  img[8] = tag & 0xff;
  img[9] = tag >> 8;
  for (let i = 0; i < 8; i++) {
    const v = s.st[i];
    if (v) img.set(v.b, 28 + 10 * i);
  }
  return img;
}

/** Control word: all exceptions masked, the given precision and rounding. */
function cwOf(pc: number, rc: number): number {
  return 0x0040 | 0x3f | (pc << 8) | (rc << 10);
}

// ------------------------------------------------------------------ case assembly

/** Builder state for one x87 case. */
class X87Case {
  st: X87State;
  /** C bits (and PE) undefined so far. */
  und = 0;
  /** Whether all arithmetic so far was exact (else PC/RC are pinned to double/nearest). */
  constructor(readonly b: CaseBuilder, depth: number, exact: boolean) {
    const r = b.r;
    const rc = exact ? r.int(4) : 0;
    const pc = exact && r.chance(0.3) ? 3 : 2;
    const st: (XVal | null)[] = new Array(8).fill(null);
    for (let i = 0; i < depth; i++) st[i] = anyVal(r);
    this.st = {
      cw: cwOf(pc, rc),
      sw: (r.u32() & CALL) | (r.chance(0.1) ? PE : 0),
      top: r.int(8),
      st,
    };
  }
  get rc(): number {
    return (this.st.cw >> 10) & 3;
  }
  /** Add an x87 instruction; `def`/`undef` are the status bits it defines / leaves undefined. */
  add(bytes: number[], text: string, def: number, undef: number, extra: Partial<Insn> = {}): Insn {
    this.und = (this.und & ~def) | undef;
    const ins: Insn = { bytes, text, ...fx(0, 0, 0), ...extra, swUndefAfter: this.und };
    this.b.add(ins);
    return ins;
  }
  finish(): void {
    this.b.fpu = image(this.st);
  }
}

/** Write an x87 value to memory in a format. */
function storeFormat(b: CaseBuilder, addr: number, fmt: Fmt, v: number | bigint | XVal): void {
  const dv = new DataView(new ArrayBuffer(10));
  switch (fmt) {
    case "m32fp":
      dv.setFloat32(0, v as number, true);
      b.setBytes(addr, new Uint8Array(dv.buffer, 0, 4));
      return;
    case "m64fp":
      dv.setFloat64(0, v as number, true);
      b.setBytes(addr, new Uint8Array(dv.buffer, 0, 8));
      return;
    case "m80fp":
      b.setBytes(addr, (v as XVal).b);
      return;
    case "m16int":
      b.setMem(addr, Number(v), 2);
      return;
    case "m32int":
      b.setMem(addr, Number(v), 4);
      return;
    case "m64int": {
      dv.setBigInt64(0, BigInt(v as number | bigint), true);
      b.setBytes(addr, new Uint8Array(dv.buffer, 0, 8));
      return;
    }
    case "m80bcd": {
      let n = BigInt(v as number | bigint);
      const neg = n < 0n;
      if (neg) n = -n;
      const out = new Uint8Array(10);
      for (let i = 0; i < 9; i++) {
        const lo = Number(n % 10n);
        n /= 10n;
        const hi = Number(n % 10n);
        n /= 10n;
        out[i] = lo | (hi << 4);
      }
      out[9] = neg ? 0x80 : 0;
      b.setBytes(addr, out);
      return;
    }
  }
}

type Fmt = "m32fp" | "m64fp" | "m80fp" | "m16int" | "m32int" | "m64int" | "m80bcd";
const FMT_SIZE: Record<Fmt, number> = {
  m32fp: 4,
  m64fp: 8,
  m80fp: 10,
  m16int: 2,
  m32int: 4,
  m64int: 8,
  m80bcd: 10,
};

/** A memory operand for an x87 instruction (all ModRM forms, sometimes 16-bit addressing). */
function xmem(
  b: CaseBuilder,
  digit: number,
  size: number,
): { pfx: number[]; bytes: number[]; addr: number; text: string; wild: boolean } {
  const r = b.r;
  const a16 = r.chance(0.1);
  // A 16-bit-addressed environment or save image that crosses 64 KiB wraps its
  // parts' offsets in an implementation-specific way: no such straddles.
  const m = b.memOp(digit, { size, a16, wildRate: a16 && size > 8 ? 0 : 0.02 });
  const pfx = a16 ? [0x67] : [];
  if (r.chance(0.1)) pfx.push(r.pick([0x26, 0x36, 0x3e]));
  return { pfx, bytes: m.bytes, addr: m.addr, text: m.text, wild: m.wild };
}

/** A value that fits a memory format exactly. */
function fmtValue(r: Rng, fmt: Fmt): number | bigint {
  switch (fmt) {
    case "m32fp":
      return Math.fround(r.chance(0.8) ? small(r) : wide(r));
    case "m64fp":
      return r.chance(0.6) ? small(r) : wide(r);
    case "m16int":
      return r.chance(0.7) ? r.range(-300, 300) : r.range(-32768, 32767);
    case "m32int":
      return r.chance(0.6) ? r.range(-100000, 100000) : (r.u32() | 0);
    case "m64int":
      return r.chance(0.5)
        ? BigInt(r.range(-1e6, 1e6))
        : BigInt(Math.floor((r.real() * 2 - 1) * 2 ** 53));
    case "m80bcd":
      return BigInt(r.range(-999999, 999999)) * (r.chance(0.3) ? 1000000000n : 1n);
    default:
      return small(r);
  }
}

const ARITH = ["add", "mul", "com", "comp", "sub", "subr", "div", "divr"] as const;

/** The float64 result of an arithmetic op, and whether it is exact (finite operands). */
function arith(op: string, a: number, b: number): { res: number; exact: boolean } {
  switch (op) {
    case "add":
      return { res: a + b, exact: opExact("add", a, b) };
    case "mul":
      return { res: a * b, exact: opExact("mul", a, b) };
    case "sub":
      return { res: a - b, exact: opExact("sub", a, b) };
    case "subr":
      return { res: b - a, exact: opExact("sub", b, a) };
    case "div":
      return { res: a / b, exact: opExact("div", a, b) };
    default:
      return { res: b / a, exact: opExact("div", b, a) };
  }
}

/** Mark a case inexact: PE and C1 are not compared from here on. */
function inexact(x: X87Case): void {
  x.und |= PE | C1;
  const last = x.b.insns[x.b.insns.length - 1];
  last.swUndefAfter = x.und;
}

// ------------------------------------------------------------------ generators

/** Arithmetic, register forms (D8, DC, DE). */
function genArithReg(b: CaseBuilder): void {
  const r = b.r;
  const x = new X87Case(b, r.range(2, 8), true);
  // Mostly short operands; keep the stack's values as they are.
  const form = r.int(3); // 0: D8 st0,sti  1: DC sti,st0  2: DE popping
  const opNames = ["add", "mul", "sub", "subr", "div", "divr"];
  let op = r.pick(opNames);
  const i = r.int(8);
  let opc: number[];
  const code = { add: 0, mul: 1, sub: 4, subr: 5, div: 6, divr: 7 }[op]!;
  if (form === 0) opc = [0xd8, 0xc0 | (code << 3) | i];
  else {
    // DC/DE encodings swap SUB/SUBR and DIV/DIVR relative to D8 (dest is ST(i)).
    opc = [form === 1 ? 0xdc : 0xde, 0xc0 | (code << 3) | i];
    // In DC/DE, /4 is "sti = st0 - sti" (FSUBR sti,st0) and /5 "sti = sti - st0".
    op = ({ sub: "subr", subr: "sub", div: "divr", divr: "div" } as Record<string, string>)[op] ??
      op;
  }
  const a = x.st.st[0], c = x.st.st[i];
  let ok = true;
  if (form === 0) {
    if (a && c) ok = arith(op, a.n, c.n).exact;
  } else if (a && c) ok = arith(op, c.n, a.n).exact;
  if (!ok) forceNearest(x);
  const name = form === 0
    ? `f${op} st0, st${i}`
    : form === 1
    ? `f${op} st${i}, st0`
    : `f${op}p st${i}, st0`;
  x.add(opc, name, C1, C023);
  if (!ok) inexact(x);
  x.finish();
}

/** Inexact arithmetic must run at double precision, round to nearest. */
function forceNearest(x: X87Case): void {
  x.st.cw = cwOf(2, 0);
}

/** Arithmetic with memory operands (D8 m32fp, DC m64fp, DA m32int, DE m16int). */
function genArithMem(b: CaseBuilder): void {
  const r = b.r;
  const x = new X87Case(b, r.range(1, 8), true);
  const fmt = r.pick(["m32fp", "m64fp", "m32int", "m16int"] as Fmt[]);
  const opc =
    ({ m32fp: 0xd8, m64fp: 0xdc, m32int: 0xda, m16int: 0xde } as Record<string, number>)[fmt];
  const d = r.pick([0, 1, 4, 5, 6, 7, 2, 3]);
  const m = xmem(b, d, FMT_SIZE[fmt]);
  const v = fmtValue(r, fmt);
  if (!m.wild) storeFormat(b, m.addr, fmt, v);
  const op = ARITH[d];
  const name = `f${fmt.endsWith("int") ? "i" : ""}${op} ${fmt} ${m.text}`;
  if (op === "com" || op === "comp") {
    x.add([...m.pfx, opc, ...m.bytes], name, CALL, 0);
  } else {
    const a = x.st.st[0];
    const ok = !a || arith(op, a.n, Number(v)).exact;
    if (!ok) forceNearest(x);
    x.add([...m.pfx, opc, ...m.bytes], name, C1, C023);
    if (!ok) inexact(x);
  }
  x.finish();
}

/** Compares: FCOM, FCOMP, FCOMPP, FUCOM(P)(P), FCOMI(P), FUCOMI(P), FTST, FXAM. */
function genCompare(b: CaseBuilder): void {
  const r = b.r;
  const x = new X87Case(b, r.range(2, 8), true);
  const i = r.int(8);
  // Equal operands are interesting.
  if (r.chance(0.25) && x.st.st[0] && i > 0) x.st.st[i] = { ...x.st.st[0]! };
  const k = r.int(12);
  // FCOMI: ZF PF CF from the comparison; OF SF AF cleared. C1: the SDM says
  // cleared, AMD leaves it unchanged — vendor-specific, so not compared.
  const comiFx = fx(0, ZF | PF | CF | OF | SF | AF, 0);
  switch (k) {
    case 0:
      x.add([0xd8, 0xd0 | i], `fcom st${i}`, CALL, 0);
      break;
    case 1:
      x.add([0xd8, 0xd8 | i], `fcomp st${i}`, CALL, 0);
      break;
    case 2:
      x.add([0xde, 0xd9], "fcompp", CALL, 0);
      break;
    case 3:
      x.add([0xdd, 0xe0 | i], `fucom st${i}`, CALL, 0);
      break;
    case 4:
      x.add([0xdd, 0xe8 | i], `fucomp st${i}`, CALL, 0);
      break;
    case 5:
      x.add([0xda, 0xe9], "fucompp", CALL, 0);
      break;
    case 6:
      x.add([0xdb, 0xf0 | i], `fcomi st${i}`, 0, C1, comiFx);
      break;
    case 7:
      x.add([0xdf, 0xf0 | i], `fcomip st${i}`, 0, C1, comiFx);
      break;
    case 8:
      x.add([0xdb, 0xe8 | i], `fucomi st${i}`, 0, C1, comiFx);
      break;
    case 9:
      x.add([0xdf, 0xe8 | i], `fucomip st${i}`, 0, C1, comiFx);
      break;
    case 10:
      x.add([0xd9, 0xe4], "ftst", CALL, 0);
      break;
    default:
      if (r.chance(0.3) && x.st.st[0]) x.st.st[0] = special(r, true);
      x.add([0xd9, 0xe5], "fxam", CALL, 0);
  }
  // Often read the result back: FNSTSW AX (+ SAHF) as compilers do.
  if (k < 6 || k >= 10) {
    if (r.chance(0.4)) {
      fnstswAx(x);
      if (r.chance(0.5)) {
        b.add({
          bytes: [0x9e],
          text: "sahf",
          ...fx(0, SF | ZF | AF | PF | CF, 0),
          swUndefAfter: x.und,
        });
      }
    }
  }
  x.finish();
}

function fnstswAx(x: X87Case): void {
  // AX gets the status word; bits undefined in it are masked in EAX.
  const und = x.und;
  x.add([0xdf, 0xe0], "fnstsw ax", 0, CALL, { regUndef: und ? [[EAX, und & 0xffff]] : undefined });
}

/** Loads and stores of floating formats, FLD/FST/FSTP ST(i), FXCH. */
function genLoadStore(b: CaseBuilder): void {
  const r = b.r;
  const k = r.int(10);
  if (k < 3) {
    // FLD m32/m64/m80 (onto a stack that may be full: overflow → IE|SF, C1=1)
    const fmt = r.pick(["m32fp", "m64fp", "m80fp"] as Fmt[]);
    const x = new X87Case(b, r.chance(0.08) ? 8 : r.range(0, 7), true);
    const m = xmem(b, fmt === "m80fp" ? 5 : 0, FMT_SIZE[fmt]);
    let v: number | XVal = fmtValue(r, fmt === "m80fp" ? "m64fp" : fmt) as number;
    if (r.chance(0.08)) {
      const sp = special(r, true);
      v = fmt === "m80fp" ? sp : sp.n;
    }
    if (fmt === "m32fp" && r.chance(0.04)) v = r.pick([1e-40, -3e-42, 1.4e-45]); // float32 denormals (DE)
    if (fmt === "m64fp" && r.chance(0.03)) v = r.pick([5e-324, -1e-310]); // float64 denormals (DE)
    if (fmt === "m80fp" && typeof v === "number") v = xv(v);
    if (!m.wild) storeFormat(b, m.addr, fmt, v);
    x.add(
      [...m.pfx, fmt === "m32fp" ? 0xd9 : fmt === "m64fp" ? 0xdd : 0xdb, ...m.bytes],
      `fld ${fmt} ${m.text}`,
      C1,
      C023,
    );
    x.finish();
    return;
  }
  if (k < 6) {
    // FST/FSTP m32/m64, FSTP m80 (FST m32 rounds per RC: exact in float64 arithmetic)
    const fmt = r.pick(["m32fp", "m32fp", "m64fp", "m80fp"] as Fmt[]);
    const x = new X87Case(b, r.chance(0.05) ? 0 : r.range(1, 8), true);
    if (fmt === "m32fp" && x.st.st[0] && r.chance(0.3)) {
      x.st.st[0] = xv(r.pick([3.5e38, -3.5e38, 1e-39, 1e-46, 2 ** -149, wide(r) * 2 ** 100]));
    }
    const pop = fmt === "m80fp" ? 1 : r.int(2);
    const digit = fmt === "m80fp" ? 7 : 2 + pop;
    const m = xmem(b, digit, FMT_SIZE[fmt]);
    const opc = fmt === "m32fp" ? 0xd9 : fmt === "m64fp" ? 0xdd : 0xdb;
    x.add([...m.pfx, opc, ...m.bytes], `fst${pop ? "p" : ""} ${fmt} ${m.text}`, C1, C023);
    x.finish();
    return;
  }
  if (k < 8) {
    const x = new X87Case(b, r.range(0, 8), true);
    const i = r.int(8);
    const kk = r.int(4);
    if (kk === 0) x.add([0xd9, 0xc0 | i], `fld st${i}`, C1, C023);
    else if (kk === 1) x.add([0xdd, 0xd0 | i], `fst st${i}`, C1, C023);
    else if (kk === 2) x.add([0xdd, 0xd8 | i], `fstp st${i}`, C1, C023);
    else x.add([0xd9, 0xc8 | i], `fxch st${i}`, C1, C023);
    x.finish();
    return;
  }
  // Constants: FLD1/FLDZ stay in the register; the others are observed through FSTP m64/m32.
  const x = new X87Case(b, r.range(0, 7), true);
  x.st.cw = cwOf(r.chance(0.7) ? 2 : 3, r.int(4));
  const c = r.int(7);
  const opc = [0xe8, 0xe9, 0xea, 0xeb, 0xec, 0xed, 0xee][c];
  const name = ["fld1", "fldl2t", "fldl2e", "fldpi", "fldlg2", "fldln2", "fldz"][c];
  x.add([0xd9, opc], name, C1, C023);
  if (c !== 0 && c !== 6 || r.chance(0.3)) {
    const m64 = r.chance(0.7);
    const m = xmem(b, 3, m64 ? 8 : 4);
    x.add(
      [...m.pfx, m64 ? 0xdd : 0xd9, ...m.bytes],
      `fstp ${m64 ? "m64fp" : "m32fp"} ${m.text}`,
      C1,
      C023,
    );
    if (c !== 0 && c !== 6) inexact(x);
  }
  x.finish();
}

/** Integer and BCD loads/stores with every rounding mode (FILD FIST FISTP FBLD FBSTP). */
function genIntLoadStore(b: CaseBuilder): void {
  const r = b.r;
  const k = r.int(8);
  if (k < 3) {
    const fmt = r.pick(["m16int", "m32int", "m64int", "m80bcd"] as Fmt[]);
    const x = new X87Case(b, r.chance(0.06) ? 8 : r.range(0, 7), true);
    const digit = { m16int: 0, m32int: 0, m64int: 5, m80bcd: 4 }[fmt as "m16int"]!;
    const opc = fmt === "m32int" ? 0xdb : 0xdf;
    const m = xmem(b, digit, FMT_SIZE[fmt]);
    if (!m.wild) storeFormat(b, m.addr, fmt, fmtValue(r, fmt));
    x.add(
      [...m.pfx, opc, ...m.bytes],
      `${fmt === "m80bcd" ? "fbld" : "fild"} ${fmt} ${m.text}`,
      C1,
      C023,
    );
    x.finish();
    return;
  }
  // Stores: values with fractions (rounding per RC), halves (ties), out of range, specials.
  const fmt = r.pick(["m16int", "m32int", "m64int", "m80bcd", "m16int", "m32int"] as Fmt[]);
  const x = new X87Case(b, r.chance(0.05) ? 0 : r.range(1, 8), true);
  const lim = { m16int: 2 ** 15, m32int: 2 ** 31, m64int: 2 ** 53, m80bcd: 1e15 }[fmt as "m16int"]!;
  if (x.st.st[0]) {
    const kk = r.int(8);
    let v: number;
    if (kk < 3) v = r.range(-1000, 1000) + r.pick([0.5, 0.25, 0.75, -0.5, 0.125, 0]);
    else if (kk < 5) v = (r.real() * 2 - 1) * lim;
    else if (kk === 5) v = r.pick([lim, -lim, lim - 1, -lim - 1, lim - 0.5, -lim - 0.5, 2 * lim]);
    else if (kk === 6) v = r.pick([0, -0, Infinity, -Infinity, NaN, 0.5, -0.5, 1.5, 2.5]);
    else v = small(r);
    if (fmt === "m64int" && Math.abs(v) > 2 ** 62) {
      v = Math.sign(v) * 2 ** 63 * (r.chance(0.5) ? 1 : 2);
    }
    x.st.st[0] = xv(v);
  }
  // FIST/FISTP (FISTTP is SSE3, which the emulated P6-class CPU does not have).
  const pop = fmt === "m64int" || r.chance(0.5);
  let opc: number, digit: number, name: string;
  if (fmt === "m80bcd") {
    opc = 0xdf;
    digit = 6;
    name = "fbstp";
  } else if (fmt === "m64int") {
    opc = 0xdf;
    digit = 7;
    name = "fistp";
  } else {
    opc = fmt === "m16int" ? 0xdf : 0xdb;
    digit = pop ? 3 : 2;
    name = pop ? "fistp" : "fist";
  }
  const m = xmem(b, digit, FMT_SIZE[fmt]);
  x.add([...m.pfx, opc, ...m.bytes], `${name} ${fmt} ${m.text}`, C1, C023);
  x.finish();
}

/** FSQRT, FCHS, FABS, FRNDINT, FSCALE, FXTRACT, FPREM, FPREM1. */
function genUnary(b: CaseBuilder): void {
  const r = b.r;
  const k = r.int(8);
  const x = new X87Case(b, r.chance(0.05) ? 0 : r.range(2, 8), true);
  const st = x.st.st;
  switch (k) {
    case 0: {
      if (st[0] && r.chance(0.5)) {
        const s = small(r);
        st[0] = xv(r.chance(0.9) ? s * s : -Math.abs(s));
      }
      const ok = !st[0] || opExact("sqrt", st[0].n, 0);
      if (!ok) forceNearest(x);
      x.add([0xd9, 0xfa], "fsqrt", C1, C023);
      if (!ok) inexact(x);
      break;
    }
    case 1:
      x.add([0xd9, 0xe0], "fchs", C1, C023);
      break;
    case 2:
      x.add([0xd9, 0xe1], "fabs", C1, C023);
      break;
    case 3:
      if (st[0] && r.chance(0.6)) {
        st[0] = xv(r.range(-1000, 1000) + r.pick([0.5, 0.25, 0.75, -0.5, 0.125, 0.999]));
      }
      x.add([0xd9, 0xfc], "frndint", C1, C023);
      break;
    case 4: {
      if (st[1] && r.chance(0.8)) st[1] = xv(r.range(-40, 40) + r.pick([0, 0, 0.5, -0.75]));
      if (st[0] && !Number.isFinite(st[0].n) && r.chance(0.5)) st[0] = xv(small(r));
      // The result must stay a normal float64 (extended exponents reach much further).
      const a = st[0]?.n, s = st[1]?.n;
      if (
        a !== undefined && s !== undefined && Number.isFinite(a) && a !== 0 && Number.isFinite(s)
      ) {
        const e = Math.floor(Math.log2(Math.abs(a))) + Math.trunc(s);
        if (e < -1000 || e > 1000) st[1] = xv(r.range(-40, 40));
      }
      x.add([0xd9, 0xfd], "fscale", C1, C023);
      break;
    }
    case 5:
      x.add([0xd9, 0xf4], "fxtract", C1, C023);
      break;
    default: {
      // FPREM / FPREM1: keep the exponent difference small enough to finish (and sometimes not).
      if (st[0] && st[1] && r.chance(0.9)) {
        const bexp = r.range(-10, 10);
        // Exponent differences of 64 and more give an implementation-defined partial remainder.
        const d = r.chance(0.85) ? r.range(0, 40) : r.range(41, 63);
        st[1] = xv((r.chance(0.5) ? 1 : -1) * (1 + r.int(1 << 20) / 2 ** 20) * 2 ** bexp);
        st[0] = xv((r.chance(0.5) ? 1 : -1) * (1 + r.int(1 << 30) / 2 ** 30) * 2 ** (bexp + d));
      }
      // With an empty operand (masked #IS) only C1 (0) is specified.
      const underflow = !st[0] || !st[1];
      x.add(
        k === 6 ? [0xd9, 0xf8] : [0xd9, 0xf5],
        k === 6 ? "fprem" : "fprem1",
        underflow ? C1 : CALL,
        underflow ? C023 : 0,
      );
    }
  }
  x.finish();
}

/** Control and environment: FNSTSW, FNSTCW, FLDCW, FNSTENV, FLDENV, FNSAVE, FRSTOR, FNINIT, FNCLEX, FINCSTP, FDECSTP, FFREE, FNOP, FWAIT, FCMOVcc. */
function genControl87(b: CaseBuilder): void {
  const r = b.r;
  const k = r.int(17); // 12..16: FCMOVcc
  const x = new X87Case(b, r.range(0, 8), true);
  switch (k) {
    case 0: {
      if (r.chance(0.5)) fnstswAx(x);
      else {
        const m = xmem(b, 7, 2);
        const und = x.und;
        x.add([...m.pfx, 0xdd, ...m.bytes], `fnstsw ${m.text}`, 0, CALL, {
          memUndef: und ? undefMem(m.addr, und, 2) : undefined,
        });
      }
      break;
    }
    case 1: {
      const m = xmem(b, 7, 2);
      x.add([...m.pfx, 0xd9, ...m.bytes], `fnstcw ${m.text}`, 0, CALL);
      break;
    }
    case 2: {
      const m = xmem(b, 5, 2);
      const cw = cwOf(r.int(4), r.int(4)) | (r.chance(0.2) ? 0x1000 : 0);
      if (!m.wild) b.setMem(m.addr, cw, 2);
      x.add([...m.pfx, 0xd9, ...m.bytes], `fldcw ${m.text} (${hx(cw)})`, 0, CALL);
      break;
    }
    case 3: {
      // FNSTENV: the 28-byte environment; pointer fields are masked.
      const m = xmem(b, 6, 28);
      const und = x.und;
      const mu: [number, number][] = [];
      for (let i = 12; i < 28; i++) mu.push([m.addr + i, 0xff]);
      if (und) mu.push(...undefMem(m.addr + 4, und, 2));
      x.add([...m.pfx, 0xd9, ...m.bytes], `fnstenv ${m.text}`, 0, CALL, { memUndef: mu });
      break;
    }
    case 4: {
      // FLDENV: a new CW/SW/TOP and a tag word that describes the physical
      // registers as they are (some non-empty ones may be marked empty).
      const m = xmem(b, 4, 28);
      const env = new Uint8Array(28);
      const cw = cwOf(r.int(4), r.int(4));
      const top = r.chance(0.5) ? x.st.top : r.int(8);
      const sw = (r.u32() & (CALL | PE)) | (top << 11);
      let tag = 0;
      for (let p = 0; p < 8; p++) {
        const v = x.st.st[(p - x.st.top) & 7];
        tag |= (v && !r.chance(0.2) ? tagOf(v) : 3) << (2 * p);
      }
      env[0] = cw & 0xff;
      env[1] = cw >> 8;
      env[4] = sw & 0xff;
      env[5] = sw >> 8;
      env[8] = tag & 0xff;
      env[9] = tag >> 8;
      if (!m.wild) b.setBytes(m.addr, env);
      x.add([...m.pfx, 0xd9, ...m.bytes], `fldenv ${m.text}`, CALL | PE, 0);
      break;
    }
    case 5: {
      const m = xmem(b, 6, 108);
      const und = x.und;
      const mu: [number, number][] = [];
      for (let i = 12; i < 28; i++) mu.push([m.addr + i, 0xff]);
      if (und) mu.push(...undefMem(m.addr + 4, und, 2));
      x.add([...m.pfx, 0xdd, ...m.bytes], `fnsave ${m.text}`, CALL | PE, 0, { memUndef: mu });
      break;
    }
    case 6: {
      const m = xmem(b, 4, 108);
      const other = new X87Case(b, r.range(0, 8), true);
      if (!m.wild) b.setBytes(m.addr, image(other.st));
      x.add([...m.pfx, 0xdd, ...m.bytes], `frstor ${m.text}`, CALL | PE, 0);
      break;
    }
    case 7:
      x.add(r.chance(0.5) ? [0xdb, 0xe3] : [0x9b, 0xdb, 0xe3], "fninit", CALL | PE, 0);
      break;
    case 8:
      x.st.sw |= r.u32() & 0x3f;
      x.add([0xdb, 0xe2], "fnclex", PE, CALL);
      break;
    case 9:
      if (r.chance(0.5)) x.add([0xd9, 0xf7], "fincstp", C1, C023);
      else x.add([0xd9, 0xf6], "fdecstp", C1, C023);
      break;
    case 10: {
      const i = r.int(8);
      x.add([0xdd, 0xc0 | i], `ffree st${i}`, 0, CALL);
      break;
    }
    case 11:
      x.add(r.chance(0.5) ? [0xd9, 0xd0] : [0x9b], "fnop/fwait", 0, CALL);
      break;
    default: {
      // FCMOVcc: reads CF/ZF/PF.
      const cc = r.int(8);
      const i = r.int(8);
      const opc = cc < 4 ? 0xda : 0xdb;
      const names = [
        "fcmovb",
        "fcmove",
        "fcmovbe",
        "fcmovu",
        "fcmovnb",
        "fcmovne",
        "fcmovnbe",
        "fcmovnu",
      ];
      const reads = [CF, ZF, CF | ZF, PF][cc & 3];
      x.add(
        [opc, 0xc0 | ((cc & 3) << 3) | i],
        `${names[cc]} st0, st${i}`,
        C1,
        C023,
        fx(reads, 0, 0),
      );
    }
  }
  x.finish();
}

/** Memory masks for the undefined bits `und` of a stored status word. */
function undefMem(addr: number, und: number, size: number): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 0; i < size; i++) {
    const m = (und >> (8 * i)) & 0xff;
    if (m) out.push([addr + i, m]);
  }
  return out;
}

/** Short sequences: load, operate, store back — the shape compiled code has. */
function genX87Seq(b: CaseBuilder): void {
  const r = b.r;
  const x = new X87Case(b, r.range(0, 5), true);
  const fmt = r.pick(["m32fp", "m64fp", "m32int"] as Fmt[]);
  const m1 = xmem(b, fmt === "m32int" ? 0 : 0, FMT_SIZE[fmt]);
  const v1 = fmtValue(r, fmt === "m32int" ? "m16int" : fmt);
  if (!m1.wild) storeFormat(b, m1.addr, fmt, v1);
  const opc1 = fmt === "m32fp" ? 0xd9 : fmt === "m64fp" ? 0xdd : 0xdb;
  x.add(
    [...m1.pfx, opc1, ...m1.bytes],
    `f${fmt === "m32int" ? "i" : ""}ld ${fmt} ${m1.text}`,
    C1,
    C023,
  );
  // An operation with ST(1) (whatever is there, maybe empty: #IS masked → indefinite).
  const op = r.pick(["add", "mul", "sub", "subr", "div", "divr"]);
  const code = { add: 0, mul: 1, sub: 4, subr: 5, div: 6, divr: 7 }[op]!;
  const s1 = x.st.st[0];
  const a = Number(v1);
  const ok = !s1 || arith(op, a, s1.n).exact;
  if (!ok) forceNearest(x);
  x.add([0xd8, 0xc0 | (code << 3) | 1], `f${op} st0, st1`, C1, C023);
  if (!ok) inexact(x);
  // Store (popping) as m64 (exact) or compare and branch on the result.
  if (r.chance(0.7)) {
    const m2 = xmem(b, 3, 8);
    x.add([...m2.pfx, 0xdd, ...m2.bytes], `fstp m64fp ${m2.text}`, C1, C023);
  } else {
    x.add([0xd8, 0xd9], "fcomp st1", CALL, 0);
    fnstswAx(x);
  }
  x.finish();
}

/** The x87 class: one case per call. */
export function genX87(b: CaseBuilder, _ctx: GenCtx): void {
  const r = b.r;
  const k = r.int(100);
  if (k < 16) genArithReg(b);
  else if (k < 32) genArithMem(b);
  else if (k < 45) genCompare(b);
  else if (k < 62) genLoadStore(b);
  else if (k < 74) genIntLoadStore(b);
  else if (k < 84) genUnary(b);
  else if (k < 94) genControl87(b);
  else genX87Seq(b);
}
