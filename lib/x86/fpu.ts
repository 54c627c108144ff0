/**
 * The x87 floating-point unit, as a P6 (Pentium Pro / II / III) has it: the
 * eight-register stack, the control, status and tag words, exception flags with
 * masking and delayed #MF, every load/store format, the arithmetic, compare,
 * transcendental and environment instructions, and FXSAVE/FXRSTOR.
 *
 * Why it exists: a Linux guest will not boot without an FPU
 * (`fpu__init_system_early_generic` probes it with `fninit; fnstsw; fnstcw`),
 * the kernel saves and restores FPU state on every context switch (FXSAVE or
 * FNSAVE), and i386 user space compiles `double` and `long long` conversions
 * to x87 code.
 *
 * How values are held. A register is a float64, not an 80-bit softfloat. This
 * is a deliberate trade of exactness for speed and size: *x87 values are held
 * as float64; results are exact wherever float64 is exact, which includes every
 * result when precision control is set to double.* Beside each float64 the unit
 * keeps an optional "raw" 80-bit image of the register. It is valid whenever
 * the value cannot be told apart from its float64 (a NaN, whose payload and
 * sign JavaScript engines do not preserve; an 80-bit value with more than 53
 * significant bits, from FLD m80, FRSTOR, FXRSTOR, FILD m64 or a constant) and
 * it survives register moves, FXCH, FCHS and FABS. So FNSAVE/FRSTOR and
 * FXSAVE/FXRSTOR round trips, `fild qword`/`fistp qword` copies, `fld tbyte`/
 * `fstp tbyte` copies and NaN payloads are all bit-exact, and FLDPI & co. store
 * the very bytes the hardware stores. Arithmetic uses the float64 only.
 *
 * Rounding and exceptions. FADD/FSUB/FMUL/FDIV/FSQRT compute the float64
 * result rounded to nearest and then, with error-free transformations (TwoSum,
 * Dekker's product), find the exact rounding error: that gives PE, the C1
 * "rounded up" bit, UE, and results rounded per the RC field, all as a P6 with
 * precision control set to double would give them. Conversions to integers
 * (FIST, FISTP, FBSTP, FRNDINT), stores to m32/m64 and the 80→64-bit
 * conversion of loaded values honour RC too. The limits of the model, all
 * documented here rather than hidden:
 * - the exponent range is float64's: results beyond 2^±1023 overflow or
 *   underflow (with OE/UE) where real extended precision would not; an 80-bit
 *   value outside that range keeps its exact raw image until it is used;
 * - precision control is not applied (results are always float64);
 * - FSIN/FCOS/FPTAN/FPATAN/F2XM1/FYL2X/FYL2XP1 use `Math.*` (JavaScript's
 *   correctly reduced functions, not the P6's 66-bit π reduction); PE is
 *   reported as inexact for any non-trivial argument;
 * - with OE or UE unmasked the hardware stores a result with its exponent
 *   biased by 2^±24576 in a register destination; we store the unbiased result.
 *
 * Exceptions follow the SDM's masked responses (real indefinite
 * FFFF C000000000000000, integer indefinite, IE+SF with C1 for stack faults).
 * An unmasked exception sets ES and B and leaves the destination unchanged; the
 * next *waiting* x87 instruction (every one except FNINIT, FNCLEX, FNSTSW,
 * FNSTCW, FNSTENV, FNSAVE) then raises #MF (vector 16), as with CR0.NE = 1.
 * FIP/FCS/FOP and FDP/FDS record the last non-control instruction.
 *
 * FISTTP (DB /1, DD /1, DF /1) is SSE3 and raises #UD: the CPU does not
 * advertise SSE3. There are no SSE registers: FXSAVE/FXRSTOR keep MXCSR and
 * the XMM area as plain storage so the kernel's context switches round-trip.
 *
 * Performance: no allocation in any instruction; dispatch is one switch on the
 * opcode byte and the ModRM reg field.
 *
 * @module
 */

import { type CPU, P_A16 } from "./cpu.ts";
import { AF, CF, OF, PF, SF, ZF } from "./flags.ts";

// ---------------------------------------------------------------- constants

/** Status word: invalid operation. */
export const FSW_IE = 0x0001;
/** Status word: denormal operand. */
export const FSW_DE = 0x0002;
/** Status word: zero divide. */
export const FSW_ZE = 0x0004;
/** Status word: overflow. */
export const FSW_OE = 0x0008;
/** Status word: underflow. */
export const FSW_UE = 0x0010;
/** Status word: precision (inexact result). */
export const FSW_PE = 0x0020;
/** Status word: stack fault (with IE; C1 = 1 overflow, 0 underflow). */
export const FSW_SF = 0x0040;
/** Status word: exception summary (an unmasked exception is pending). */
export const FSW_ES = 0x0080;
/** Status word: condition code C0. */
export const FSW_C0 = 0x0100;
/** Status word: condition code C1. */
export const FSW_C1 = 0x0200;
/** Status word: condition code C2. */
export const FSW_C2 = 0x0400;
/** Status word: TOP field (bits 11..13). */
export const FSW_TOP = 0x3800;
/** Status word: condition code C3. */
export const FSW_C3 = 0x4000;
/** Status word: busy (mirrors ES on the 387 and later). */
export const FSW_B = 0x8000;
/** The control word FNINIT loads: all exceptions masked, extended precision, round to nearest. */
export const FCW_DEFAULT = 0x037f;
/** MXCSR at reset. */
export const MXCSR_DEFAULT = 0x1f80;

const IE = FSW_IE, DE = FSW_DE, ZE = FSW_ZE, OE = FSW_OE, UE = FSW_UE, PE = FSW_PE;
const SFLT = FSW_SF, ES = FSW_ES, C0 = FSW_C0, C1 = FSW_C1, C2 = FSW_C2, C3 = FSW_C3;
const BUSY = FSW_B;
const CC = C0 | C1 | C2 | C3;
const RC_NEAREST = 0, RC_DOWN = 1, RC_UP = 2;
/** Register slot used for memory operands and constants (the 8 real ones are 0..7). */
const TMP = 8;
const TWO32 = 4294967296;
const MIN_NORMAL = 2.2250738585072014e-308;
/** Below this, Dekker's product error term may underflow. */
const TINY_SAFE = 2 ** -968;
/** Above this, Dekker's splitting may overflow. */
const HUGE_SAFE = 2 ** 995;
const SPLIT = 134217729; // 2^27 + 1
const MAX_F32 = 3.4028234663852886e38;
/** Jcc condition codes of FCMOVB, FCMOVE, FCMOVBE, FCMOVU (DB: the negations, cc | 1). */
const FCMOV_CC = new Uint8Array([2, 4, 6, 10]);
/** Flags an FCOMI-family instruction writes. */
const COMI_MASK = ZF | PF | CF | OF | SF | AF;

// Scratch views for bit-level conversions (module-wide, so nothing is allocated per instruction).
const F64 = new Float64Array(1);
const U32 = new Uint32Array(F64.buffer);
const F32 = new Float32Array(1);
const U32F = new Uint32Array(F32.buffer);

/** POW2[n + 1074] = 2^n for n in [-1074, 1023], built from bits so every entry is exact. */
const POW2: Float64Array = (() => {
  const t = new Float64Array(2098);
  for (let n = -1074; n <= 1023; n++) {
    if (n >= -1022) {
      U32[1] = (n + 1023) << 20;
      U32[0] = 0;
    } else {
      const pos = n + 1074;
      U32[1] = pos >= 32 ? 1 << (pos - 32) : 0;
      U32[0] = pos < 32 ? 1 << pos : 0;
    }
    t[n + 1074] = F64[0];
  }
  return t;
})();

function p2(n: number): number {
  return POW2[n + 1074];
}

/** x * 2^n, exact whenever the result is a normal number (or x is scaled up from subnormal). */
function scale2(x: number, n: number): number {
  while (n > 1023) {
    x *= POW2[1023 + 1074];
    n -= 1023;
  }
  while (n < -1022) {
    x *= POW2[-1022 + 1074];
    n += 1022;
  }
  return x * POW2[n + 1074];
}

/** floor(log2 |x|) for finite non-zero x (subnormals included). */
function ilogb(x: number): number {
  F64[0] = x;
  const hi = U32[1], e = (hi >>> 20) & 0x7ff;
  if (e !== 0) return e - 1023;
  const fh = hi & 0xfffff;
  return fh !== 0 ? 31 - Math.clz32(fh) + 32 - 1074 : 31 - Math.clz32(U32[0]) - 1074;
}

/** The next float64 above x (x not NaN). */
function nextUp(x: number): number {
  if (x === Infinity) return x;
  if (x === 0) return 5e-324;
  F64[0] = x;
  let lo = U32[0], hi = U32[1];
  if (x > 0) {
    lo = (lo + 1) >>> 0;
    if (lo === 0) hi++;
  } else {
    if (lo === 0) hi--;
    lo = (lo - 1) >>> 0;
  }
  U32[0] = lo;
  U32[1] = hi;
  return F64[0];
}

/** The next float64 below x. */
function nextDown(x: number): number {
  return -nextUp(-x);
}

/** Exact error of the product: a*b - p, where p = fl(a*b) (Dekker; |a|,|b| < 2^995, |p| >= 2^-968). */
function twoProdErr(a: number, b: number, p: number): number {
  let t = SPLIT * a;
  const ah = t - (t - a), al = a - ah;
  t = SPLIT * b;
  const bh = t - (t - b), bl = b - bh;
  return ((ah * bh - p) + ah * bl + al * bh) + al * bl;
}

function sign(x: number): number {
  return x > 0 ? 1 : x < 0 ? -1 : 0;
}

/** Sign of (a+b exact) - r, where r = fl(a+b) is finite (Knuth's TwoSum). */
function addDir(a: number, b: number, r: number): number {
  if (!Number.isFinite(r)) return 0;
  const bv = r - a;
  return sign((a - (r - bv)) + (b - bv));
}

/** Sign of (a*b exact) - r, where r = fl(a*b). */
function mulDir(a: number, b: number, r: number): number {
  if (r === 0) return a === 0 || b === 0 ? 0 : (1 / r > 0 ? 1 : -1);
  if (!Number.isFinite(r)) return 0;
  const aa = Math.abs(a), ab = Math.abs(b);
  if (aa < HUGE_SAFE && ab < HUGE_SAFE && Math.abs(r) >= TINY_SAFE) {
    return sign(twoProdErr(a, b, r));
  }
  // Extreme exponents: redo the product on significands in [1,2) and compare.
  const ea = ilogb(a), eb = ilogb(b);
  const as = scale2(a, -ea), bs = scale2(b, -eb), ps = as * bs;
  const t = scale2(r, -(ea + eb));
  if (t !== ps) return t < ps ? 1 : -1;
  return sign(twoProdErr(as, bs, ps));
}

/** Sign of (a/b exact) - q, where q = fl(a/b), b finite and non-zero. */
function divDir(a: number, b: number, q: number): number {
  if (q === 0) return a === 0 ? 0 : (1 / q > 0 ? 1 : -1);
  if (!Number.isFinite(q)) return 0;
  const aa = Math.abs(a), ab = Math.abs(b), aq = Math.abs(q);
  if (aq < HUGE_SAFE && ab < HUGE_SAFE && aa >= TINY_SAFE && aq >= MIN_NORMAL) {
    const p = q * b;
    const rem = (a - p) - twoProdErr(q, b, p);
    return rem === 0 ? 0 : (rem > 0) === (b > 0) ? 1 : -1;
  }
  const ea = ilogb(a), eb = ilogb(b);
  const as = scale2(a, -ea), bs = scale2(b, -eb), qs = as / bs;
  const t = scale2(q, eb - ea);
  if (t !== qs) return t < qs ? 1 : -1;
  const p = qs * bs;
  const rem = (as - p) - twoProdErr(qs, bs, p);
  return rem === 0 ? 0 : (rem > 0) === (bs > 0) ? 1 : -1;
}

/** Sign of sqrt(x) exact - r, where r = fl(sqrt(x)), x > 0 finite. */
function sqrtDir(x: number, r: number): number {
  let xs = x, rs = r;
  if (x < TINY_SAFE) {
    xs = x * 2 ** 108;
    rs = r * 2 ** 54;
  } else if (x > 2 ** 1000) {
    xs = x * 2 ** -108;
    rs = r * 2 ** -54;
  }
  const p = rs * rs;
  return sign((xs - p) - twoProdErr(rs, rs, p));
}

/** Round x to an integer per RC (x finite or infinite, not NaN). */
function roundToInt(x: number, rc: number): number {
  switch (rc) {
    case RC_NEAREST: {
      let r = Math.round(x);
      if (r - x === 0.5 && r % 2 !== 0) r -= 1;
      return r;
    }
    case RC_DOWN:
      return Math.floor(x);
    case RC_UP:
      return Math.ceil(x);
    default:
      return Math.trunc(x);
  }
}

/**
 * The constants of FLD1, FLDL2T, FLDL2E, FLDPI, FLDLG2, FLDLN2, FLDZ (D9 E8..EE)
 * as 80-bit images [sign/exponent, mantissa high, mantissa low], rounded to
 * nearest, and the adjustment of the last mantissa bit in the other rounding
 * modes (the P6 keeps 66-bit constants; these are the roundings it stores).
 */
const CONSTS: readonly (readonly number[])[] = [
  [0x3fff, 0x80000000, 0x00000000, 0, 0], // 1
  [0x4000, 0xd49a784b, 0xcd1b8afe, 0, 1], // log2(10): +1 when rounding up
  [0x3fff, 0xb8aa3b29, 0x5c17f0bc, -1, 0], // log2(e): -1 when rounding down or to zero
  [0x4000, 0xc90fdaa2, 0x2168c235, -1, 0], // pi
  [0x3ffd, 0x9a209a84, 0xfbcff799, -1, 0], // log10(2)
  [0x3ffe, 0xb17217f7, 0xd1cf79ac, -1, 0], // ln(2)
  [0x0000, 0x00000000, 0x00000000, 0, 0], // +0
];

// ---------------------------------------------------------------- the unit

/**
 * An x87 FPU attached to a {@link CPU}. The CPU calls {@link FPU.exec} for the
 * D8..DF opcodes, {@link FPU.fwait} for WAIT and {@link FPU.fxsave} /
 * {@link FPU.fxrstor} for 0F AE /0 and /1, after its CR0.EM/TS checks.
 */
export class FPU {
  private readonly cpu: CPU;

  /** Values of the physical registers R0..R7 (slot 8 is scratch for memory operands). */
  private readonly val = new Float64Array(9);
  /** Raw 80-bit images: mantissa low and high 32 bits, sign+exponent. */
  private readonly rawLo = new Uint32Array(9);
  private readonly rawHi = new Uint32Array(9);
  private readonly rawSE = new Uint16Array(9);
  /**
   * 0: the float64 is the value (not NaN); 1: the raw image is the value (always
   * so for NaNs and unsupported encodings); 2 (slot 8 only): a denormal m32/m64
   * operand (raises DE), float64 exact.
   */
  private readonly rawOk = new Uint8Array(9);
  /** 1 when the physical register is empty (tag 11). */
  private readonly empty = new Uint8Array(8).fill(1);

  private ctrl = FCW_DEFAULT;
  /** Status word without TOP. */
  private stat = 0;
  private tp = 0;

  /** Last instruction pointer offset (EIP of the last non-control x87 instruction). */
  fip = 0;
  /** Last instruction's CS selector. */
  fcs = 0;
  /** Last opcode, 11 bits: ((first byte & 7) << 8) | ModRM. */
  fop = 0;
  /** Last data pointer offset (memory operand of the last non-control instruction that had one). */
  fdp = 0;
  /** Last data pointer's segment selector. */
  fds = 0;
  /** MXCSR as FXSAVE/FXRSTOR see it (there is no SSE unit: plain storage). */
  mxcsr: number = MXCSR_DEFAULT;
  /** XMM0..7 as FXSAVE/FXRSTOR see them (plain storage, 8 x 16 bytes). */
  readonly xmm: Uint8Array = new Uint8Array(128);

  private readonly buf = new Uint8Array(512);
  private readonly bv = new DataView(this.buf.buffer);

  private curOp = 0;
  private curModrm = 0;

  // Outputs of roundRaw / shr / rawToInt / raw80 (fields, so nothing is allocated).
  private rInexact = false;
  private rUp = false;
  private rTiny = false;
  private rOver = false;
  private sHi = 0;
  private sLo = 0;
  private sRb = 0;
  private sSt = false;
  private iLo = 0;
  private iHi = 0;
  private oLo = 0;
  private oHi = 0;
  private oSE = 0;

  /** Attach an FPU to `cpu` (which it uses for memory, faults and EFLAGS). */
  constructor(cpu: CPU) {
    this.cpu = cpu;
  }

  /** Power-on reset: the FNINIT state plus zeroed registers, default MXCSR and cleared XMM storage. */
  reset(): void {
    this.init();
    this.val.fill(0);
    this.rawOk.fill(0);
    this.mxcsr = MXCSR_DEFAULT;
    this.xmm.fill(0);
  }

  // ---------------------------------------------------------------- debugger view

  /** The control word. */
  get cw(): number {
    return this.ctrl;
  }

  /** The status word, TOP included. */
  get sw(): number {
    return (this.stat & ~FSW_TOP) | (this.tp << 11);
  }

  /** The full tag word (2 bits per physical register: 00 valid, 01 zero, 10 special, 11 empty). */
  get tw(): number {
    let t = 0;
    for (let i = 0; i < 8; i++) t |= this.physTag(i) << (2 * i);
    return t;
  }

  /** The TOP field: which physical register is ST(0). */
  get top(): number {
    return this.tp;
  }

  /** The value of ST(i) as a float64 (NaN for NaNs and unsupported encodings; stale if empty). */
  st(i: number): number {
    return this.val[(this.tp + i) & 7];
  }

  /** True when ST(i) is empty. */
  isEmpty(i: number): boolean {
    return this.empty[(this.tp + i) & 7] !== 0;
  }

  /** The 2-bit tag of ST(i) (00 valid, 01 zero, 10 special, 11 empty). */
  tag(i: number): number {
    return this.physTag((this.tp + i) & 7);
  }

  /** ST(i) as the 10 bytes FSTP m80 would store (little-endian: mantissa, then sign/exponent). */
  stRaw80(i: number): Uint8Array {
    const out = new Uint8Array(10);
    const dv = new DataView(out.buffer);
    this.raw80((this.tp + i) & 7);
    dv.setUint32(0, this.oLo, true);
    dv.setUint32(4, this.oHi, true);
    dv.setUint16(8, this.oSE, true);
    return out;
  }

  /**
   * The 108-byte FNSAVE image (32-bit protected-mode layout) of the current
   * state, without reinitialising the unit as FNSAVE does.
   */
  fsaveImage(): Uint8Array {
    const out = new Uint8Array(108);
    this.composeSave(new DataView(out.buffer), false);
    return out;
  }

  /** Load a 108-byte FNSAVE image (32-bit protected-mode layout), as FRSTOR does. */
  frstorImage(img: Uint8Array): void {
    if (img.length < 108) throw new RangeError("FNSAVE image must be 108 bytes");
    this.buf.set(img.subarray(0, 108));
    this.loadSave(false);
  }

  // ---------------------------------------------------------------- entry points

  /**
   * Execute one x87 instruction.
   * @param op the opcode byte, 0xD8..0xDF
   * @param modrm the ModRM byte
   * @param lin for memory forms (modrm < 0xC0), the operand's linear address
   *   (segment `cpu.eaSeg` base included)
   * @param o16 an operand-size prefix is present (16-bit FNSTENV/FLDENV/FNSAVE/FRSTOR layouts)
   */
  exec(op: number, modrm: number, lin: number, o16: boolean): void {
    this.curOp = op;
    this.curModrm = modrm;
    const reg = (modrm >> 3) & 7;
    if (modrm < 0xc0) {
      switch (op) {
        case 0xd8:
          this.wait();
          this.loadF32(lin);
          this.memArith(reg, lin);
          return;
        case 0xd9:
          switch (reg) {
            case 0:
              this.wait();
              this.loadF32(lin);
              this.fldMem(lin);
              return;
            case 2:
            case 3:
              this.wait();
              this.fstF32(lin, reg === 3);
              return;
            case 4:
              this.wait();
              this.fldenv(lin, o16);
              return;
            case 5:
              this.wait();
              this.setCw(this.cpu.read16(lin));
              return;
            case 6:
              this.fnstenv(lin, o16);
              return;
            case 7:
              this.cpu.write16(lin, this.ctrl);
              return;
            default:
              return this.cpu.ud();
          }
          // (every case returns)
          return;
        case 0xda:
          this.wait();
          this.loadInt(this.cpu.read32(lin));
          this.memArith(reg, lin);
          return;
        case 0xdb:
          switch (reg) {
            case 0:
              this.wait();
              this.loadInt(this.cpu.read32(lin));
              this.fldMem(lin);
              return;
            case 2:
            case 3:
              this.wait();
              this.fistSmall(lin, 32, reg === 3);
              return;
            case 5:
              this.wait();
              this.loadF80(lin);
              this.fldMem(lin);
              return;
            case 7:
              this.wait();
              this.fstF80(lin);
              return;
            default: // /1 FISTTP (SSE3), /4, /6 reserved
              return this.cpu.ud();
          }
          // (every case returns)
          return;
        case 0xdc:
          this.wait();
          this.loadF64(lin);
          this.memArith(reg, lin);
          return;
        case 0xdd:
          switch (reg) {
            case 0:
              this.wait();
              this.loadF64(lin);
              this.fldMem(lin);
              return;
            case 2:
            case 3:
              this.wait();
              this.fstF64(lin, reg === 3);
              return;
            case 4:
              this.wait();
              this.frstor(lin, o16);
              return;
            case 6:
              this.fnsave(lin, o16);
              return;
            case 7:
              this.cpu.write16(lin, this.sw);
              return;
            default: // /1 FISTTP (SSE3), /5 reserved
              return this.cpu.ud();
          }
          // (every case returns)
          return;
        case 0xde:
          this.wait();
          this.loadInt((this.cpu.read16(lin) << 16) >> 16);
          this.memArith(reg, lin);
          return;
        default: // 0xdf
          switch (reg) {
            case 0:
              this.wait();
              this.loadInt((this.cpu.read16(lin) << 16) >> 16);
              this.fldMem(lin);
              return;
            case 2:
            case 3:
              this.wait();
              this.fistSmall(lin, 16, reg === 3);
              return;
            case 4:
              this.wait();
              this.loadBcd(lin);
              this.fldMem(lin);
              return;
            case 5:
              this.wait();
              this.loadI64(lin);
              this.fldMem(lin);
              return;
            case 6:
              this.wait();
              this.fbstp(lin);
              return;
            case 7:
              this.wait();
              this.fistp64(lin);
              return;
            default: // /1 FISTTP (SSE3)
              return this.cpu.ud();
          }
          // (every case returns)
          return;
      }
    }
    const i = modrm & 7;
    switch (op) {
      case 0xd8:
        this.wait();
        this.note(false);
        if (reg === 2 || reg === 3) this.fcomSt(i, reg === 3 ? 1 : 0, false);
        else this.arithSt(reg, i, false, false);
        return;
      case 0xd9:
        return this.execD9(reg, i, modrm);
      case 0xda:
        if (reg < 4) return this.fcmov(i, FCMOV_CC[reg]);
        if (modrm === 0xe9) {
          this.wait();
          this.note(false);
          this.fcomSt(1, 2, true);
          return;
        }
        return this.cpu.ud();
      case 0xdb:
        if (reg < 4) return this.fcmov(i, FCMOV_CC[reg] | 1);
        if (reg === 4) {
          if (i === 2) this.stat &= ~(0xff | BUSY); // FNCLEX
          else if (i === 3) this.init(); // FNINIT
          else if (i !== 0 && i !== 1 && i !== 4) this.cpu.ud(); // FNENI/FNDISI/FNSETPM: no-ops
          return;
        }
        if (reg === 5 || reg === 6) return this.fcomi(i, false, reg === 5);
        return this.cpu.ud();
      case 0xdc:
        this.wait();
        this.note(false);
        if (reg === 2 || reg === 3) this.fcomSt(i, reg === 3 ? 1 : 0, false);
        else this.arithSt(reg, i, true, false);
        return;
      case 0xdd:
        switch (reg) {
          case 0: // FFREE
            this.wait();
            this.note(false);
            this.empty[(this.tp + i) & 7] = 1;
            return;
          case 1:
            return this.fxch(i);
          case 2:
          case 3:
            return this.fstSt(i, reg === 3);
          case 4:
          case 5:
            this.wait();
            this.note(false);
            this.fcomSt(i, reg === 5 ? 1 : 0, true);
            return;
          default:
            return this.cpu.ud();
        }
        // (every case returns)
        return;
      case 0xde:
        if (reg === 3 && i !== 1) return this.cpu.ud();
        this.wait();
        this.note(false);
        if (reg === 2) this.fcomSt(i, 1, false);
        else if (reg === 3) this.fcomSt(1, 2, false); // FCOMPP
        else this.arithSt(reg, i, true, true);
        return;
      default: // 0xdf
        switch (reg) {
          case 0: // FFREEP
            this.wait();
            this.note(false);
            this.empty[(this.tp + i) & 7] = 1;
            this.pop();
            return;
          case 1:
            return this.fxch(i);
          case 2:
          case 3:
            return this.fstSt(i, true);
          case 4:
            if (i !== 0) return this.cpu.ud();
            this.cpu.regs16[0] = this.sw; // FNSTSW AX
            return;
          case 5:
          case 6:
            return this.fcomi(i, true, reg === 5);
          default:
            return this.cpu.ud();
        }
    }
  }

  /** WAIT/FWAIT: raise #MF if an unmasked exception is pending. */
  fwait(): void {
    this.wait();
  }

  /**
   * FXSAVE: store the 512-byte legacy FXSAVE area at `lin` (16-byte aligned, or
   * #GP(0)). Bytes 288..511 (reserved and software-available) are not written.
   */
  fxsave(lin: number): void {
    const cpu = this.cpu;
    if ((lin & 15) !== 0) cpu.gp(0);
    cpu.probeWrite(lin, 512);
    const dv = this.bv;
    this.buf.fill(0, 0, 288);
    dv.setUint16(0, this.ctrl, true);
    dv.setUint16(2, this.sw, true);
    let abridged = 0;
    for (let p = 0; p < 8; p++) if (this.empty[p] === 0) abridged |= 1 << p;
    dv.setUint8(4, abridged);
    dv.setUint16(6, this.fop, true);
    dv.setUint32(8, this.fip, true);
    dv.setUint16(12, this.fcs, true);
    dv.setUint32(16, this.fdp, true);
    dv.setUint16(20, this.fds, true);
    dv.setUint32(24, this.mxcsr, true);
    dv.setUint32(28, 0xffff, true);
    for (let i = 0; i < 8; i++) {
      this.raw80((this.tp + i) & 7);
      dv.setUint32(32 + 16 * i, this.oLo, true);
      dv.setUint32(36 + 16 * i, this.oHi, true);
      dv.setUint16(40 + 16 * i, this.oSE, true);
    }
    this.buf.set(this.xmm, 160);
    this.writeBlock(lin, 288);
  }

  /** FXRSTOR: load the state from a 512-byte FXSAVE area at `lin` (#GP(0) if misaligned or MXCSR reserved bits set). */
  fxrstor(lin: number): void {
    const cpu = this.cpu;
    if ((lin & 15) !== 0) cpu.gp(0);
    this.readBlock(lin, 288);
    const dv = this.bv;
    const mx = dv.getUint32(24, true);
    if ((mx & 0xffff0000) !== 0) cpu.gp(0);
    const sw = dv.getUint16(2, true);
    this.ctrl = (dv.getUint16(0, true) & ~0xe0c0) | 0x40;
    this.stat = sw & ~FSW_TOP;
    this.tp = (sw >> 11) & 7;
    const abridged = dv.getUint8(4);
    for (let p = 0; p < 8; p++) this.empty[p] = (abridged >> p) & 1 ? 0 : 1;
    this.fop = dv.getUint16(6, true) & 0x7ff;
    this.fip = dv.getUint32(8, true);
    this.fcs = dv.getUint16(12, true);
    this.fdp = dv.getUint32(16, true);
    this.fds = dv.getUint16(20, true);
    this.mxcsr = mx;
    for (let i = 0; i < 8; i++) {
      this.setRaw(
        (this.tp + i) & 7,
        dv.getUint32(32 + 16 * i, true),
        dv.getUint32(36 + 16 * i, true),
        dv.getUint16(40 + 16 * i, true),
      );
    }
    this.xmm.set(this.buf.subarray(160, 288));
    this.syncES();
  }

  // ---------------------------------------------------------------- state helpers

  /** FNINIT. */
  private init(): void {
    this.ctrl = FCW_DEFAULT;
    this.stat = 0;
    this.tp = 0;
    this.empty.fill(1);
    this.fip =
      this.fcs =
      this.fop =
      this.fdp =
      this.fds =
        0;
  }

  /** #MF for a waiting instruction when an unmasked exception is pending. */
  private wait(): void {
    if ((this.stat & ES) !== 0) this.cpu.fault(16);
  }

  /** Record FIP/FCS/FOP (and FDP/FDS for a memory operand at `lin`). */
  private note(mem: boolean, lin = 0): void {
    const cpu = this.cpu;
    this.fip = cpu.instrStart >>> 0;
    this.fcs = cpu.sreg[1];
    this.fop = ((this.curOp & 7) << 8) | this.curModrm;
    if (mem) {
      const s = cpu.eaSeg;
      this.fds = cpu.sreg[s];
      this.fdp = (lin - cpu.sbase[s]) >>> 0;
    }
  }

  /** Set exception flags; true when one of them is unmasked (ES and B are then set). */
  private ex(flags: number): boolean {
    this.stat |= flags;
    if ((flags & ~this.ctrl & 0x3f) !== 0) {
      this.stat |= ES | BUSY;
      return true;
    }
    return false;
  }

  /** Stack underflow: IE+SF, C1 = 0. True when unmasked. */
  private underflow(): boolean {
    this.stat &= ~C1;
    return this.ex(IE | SFLT);
  }

  /**
   * True when this instruction raised an unmasked IE, DE or ZE (whose response
   * leaves the stack alone). Waiting instructions start with no unmasked flag
   * set, so any such flag is new.
   */
  private blocked(): boolean {
    return (this.stat & ~this.ctrl & (IE | DE | ZE)) !== 0;
  }

  /** ES and B follow the pending exceptions after the control or status word is loaded. */
  private syncES(): void {
    if ((this.stat & ~this.ctrl & 0x3f) !== 0) this.stat |= ES | BUSY;
    else this.stat &= ~(ES | BUSY);
  }

  /** Load the control word (reserved bits as the hardware keeps them), then ES. */
  private setCw(v: number): void {
    this.ctrl = (v & ~0xe0c0) | 0x40;
    this.syncES();
  }

  /** The rounding-control field: 0 nearest, 1 down, 2 up, 3 toward zero. */
  private get rc(): number {
    return (this.ctrl >>> 10) & 3;
  }

  /** The physical register holding ST(i). */
  private phys(i: number): number {
    return (this.tp + i) & 7;
  }

  /** Pop the stack: ST(0) becomes empty, TOP moves up. */
  private pop(): void {
    this.empty[this.tp] = 1;
    this.tp = (this.tp + 1) & 7;
  }

  /** Copy slot `src` into a new ST(0) (the caller checked for overflow). */
  private pushSlot(src: number): void {
    const p = (this.tp - 1) & 7;
    this.copy(p, src);
    this.empty[p] = 0;
    this.tp = p;
  }

  /**
   * Check that ST(7) is free for a push. On overflow: IE+SF+C1, and when masked
   * the real indefinite is pushed. Returns true when the caller may push.
   */
  private canPush(): boolean {
    const p = (this.tp - 1) & 7;
    if (this.empty[p] !== 0) return true;
    this.stat |= C1;
    if (!this.ex(IE | SFLT)) {
      this.setIndef(p);
      this.tp = p;
    }
    return false;
  }

  /** Copy physical register `src` to `dst`, with its exact 80-bit image if it has one. */
  private copy(dst: number, src: number): void {
    this.val[dst] = this.val[src];
    if (this.rawOk[src] === 1) {
      this.rawOk[dst] = 1;
      this.rawLo[dst] = this.rawLo[src];
      this.rawHi[dst] = this.rawHi[src];
      this.rawSE[dst] = this.rawSE[src];
    } else this.rawOk[dst] = 0;
  }

  /** Set physical register `p` to `x` (a NaN becomes the real indefinite). */
  private setVal(p: number, x: number): void {
    if (x !== x) return this.setIndef(p);
    this.val[p] = x;
    this.rawOk[p] = 0;
  }

  /** The real indefinite: negative quiet NaN FFFF C000000000000000. */
  private setIndef(p: number): void {
    this.empty[p] = 0; // the register now holds a value (the indefinite: tag "special")
    this.val[p] = NaN;
    this.rawLo[p] = 0;
    this.rawHi[p] = 0xc0000000;
    this.rawSE[p] = 0xffff;
    this.rawOk[p] = 1;
  }

  /** Load an 80-bit image into slot p, deriving the float64 (rounded per RC). */
  private setRaw(p: number, lo: number, hi: number, se: number): void {
    this.rawLo[p] = lo;
    this.rawHi[p] = hi;
    this.rawSE[p] = se;
    const exp = se & 0x7fff;
    if (exp === 0x7fff || (exp !== 0 && (hi & 0x80000000) === 0)) {
      // Infinity, NaN, or an unsupported encoding (pseudo-NaN/infinity, unnormal).
      const isInf = (hi >>> 0) === 0x80000000 && lo === 0 && exp === 0x7fff;
      this.val[p] = isInf ? (se & 0x8000 ? -Infinity : Infinity) : NaN;
      this.rawOk[p] = isInf ? 0 : 1;
      return;
    }
    const x = this.roundRaw(se >>> 15, exp, hi, lo, 53, -1022, 1023, this.rc);
    this.val[p] = x;
    this.rawOk[p] = this.rInexact || this.rOver ? 1 : 0;
  }

  /** Make oLo/oHi/oSE the 80-bit image of slot p. */
  private raw80(p: number): void {
    if (this.rawOk[p] === 1) {
      this.oLo = this.rawLo[p];
      this.oHi = this.rawHi[p];
      this.oSE = this.rawSE[p];
    } else this.fromF64(this.val[p]);
  }

  /** The exact 80-bit image of a float64 into oLo/oHi/oSE. */
  private fromF64(x: number): void {
    if (x !== x) {
      this.oLo = 0;
      this.oHi = 0xc0000000;
      this.oSE = 0xffff;
      return;
    }
    F64[0] = x;
    const lo = U32[0], hi = U32[1];
    const s = (hi >>> 31) << 15, e = (hi >>> 20) & 0x7ff, fh = hi & 0xfffff;
    if (e === 0x7ff) {
      this.oSE = s | 0x7fff;
      this.oHi = 0x80000000;
      this.oLo = 0;
    } else if (e === 0) {
      if ((fh | lo) === 0) {
        this.oSE = s;
        this.oHi = 0;
        this.oLo = 0;
        return;
      }
      // Subnormal float64: a normal 80-bit number.
      const z = fh !== 0 ? Math.clz32(fh) : 32 + Math.clz32(lo);
      let mh: number, ml: number;
      if (z >= 32) {
        mh = lo << (z - 32);
        ml = 0;
      } else {
        mh = (fh << z) | (lo >>> (32 - z));
        ml = lo << z;
      }
      this.oSE = s | (63 - z - 1074 + 16383);
      this.oHi = mh >>> 0;
      this.oLo = ml >>> 0;
    } else {
      this.oSE = s | (e - 1023 + 16383);
      this.oHi = (0x80000000 | (fh << 11) | (lo >>> 21)) >>> 0;
      this.oLo = (lo << 11) >>> 0;
    }
  }

  /** Shift the 64-bit mantissa right by d > 0: sHi/sLo kept bits, sRb round bit, sSt sticky. */
  private shr(mhi: number, mlo: number, d: number): void {
    if (d < 32) {
      this.sLo = ((mlo >>> d) | (mhi << (32 - d))) >>> 0;
      this.sHi = mhi >>> d;
      this.sRb = (mlo >>> (d - 1)) & 1;
      this.sSt = d > 1 && (mlo & (0xffffffff >>> (33 - d))) !== 0;
    } else if (d === 32) {
      this.sLo = mhi >>> 0;
      this.sHi = 0;
      this.sRb = mlo >>> 31;
      this.sSt = (mlo & 0x7fffffff) !== 0;
    } else if (d < 64) {
      this.sLo = mhi >>> (d - 32);
      this.sHi = 0;
      this.sRb = (mhi >>> (d - 33)) & 1;
      this.sSt = mlo !== 0 || (d > 33 && (mhi & (0xffffffff >>> (65 - d))) !== 0);
    } else if (d === 64) {
      this.sLo = this.sHi = 0;
      this.sRb = mhi >>> 31;
      this.sSt = ((mhi & 0x7fffffff) | mlo) !== 0;
    } else {
      this.sLo = this.sHi = 0;
      this.sRb = 0;
      this.sSt = (mhi | mlo) !== 0;
    }
  }

  /**
   * Round the 80-bit number (sign, biased exponent, 64-bit mantissa) to a
   * binary format with `prec` significand bits and normal exponents
   * [emin, emax], per rounding control `rc`. Returns the result as a float64
   * (exact for prec 53 or 24) and sets rInexact, rUp (magnitude rounded up),
   * rTiny and rOver.
   */
  private roundRaw(
    s: number,
    exp: number,
    mhi: number,
    mlo: number,
    prec: number,
    emin: number,
    emax: number,
    rc: number,
  ): number {
    this.rInexact =
      this.rUp =
      this.rTiny =
      this.rOver =
        false;
    mhi >>>= 0;
    mlo >>>= 0;
    if (mhi === 0 && mlo === 0) return s ? -0 : 0;
    const e0 = (exp === 0 ? 1 : exp) - 16383 - 63; // weight of mantissa bit 0
    const p = mhi !== 0 ? 63 - Math.clz32(mhi) : 31 - Math.clz32(mlo);
    const E = e0 + p;
    if (E > emax) return this.overflowValue(s, prec, rc);
    if (E < emin) this.rTiny = true;
    const lsb = Math.max(E - prec + 1, emin - prec + 1);
    const d = lsb - e0;
    if (d <= 0) {
      const m = mhi * TWO32 + mlo;
      return (s ? -m : m) * p2(e0);
    }
    this.shr(mhi, mlo, d);
    let kept = this.sHi * TWO32 + this.sLo;
    const inexact = this.sRb !== 0 || this.sSt;
    let inc = false;
    if (inexact) {
      if (rc === RC_NEAREST) inc = this.sRb !== 0 && (this.sSt || (this.sLo & 1) !== 0);
      else if (rc === RC_DOWN) inc = s !== 0;
      else if (rc === RC_UP) inc = s === 0;
    }
    if (inc) kept += 1;
    this.rInexact = inexact;
    this.rUp = inc;
    const m = kept * p2(lsb);
    if (m >= p2(emax) * 2) return this.overflowValue(s, prec, rc);
    return s ? -m : m;
  }

  /** The masked overflow response: infinity or the largest finite number, per RC and sign. */
  private overflowValue(s: number, prec: number, rc: number): number {
    this.rOver = this.rInexact = true;
    const max = prec === 24 ? MAX_F32 : Number.MAX_VALUE;
    const inf = rc === RC_NEAREST || (rc === RC_DOWN && s !== 0) || (rc === RC_UP && s === 0);
    this.rUp = inf;
    return inf ? (s ? -Infinity : Infinity) : (s ? -max : max);
  }

  /**
   * Convert slot p's raw image (finite, not NaN) to a 64-bit integer per `rc`:
   * iLo/iHi (two's complement), rInexact, rUp. False when out of int64 range.
   */
  private rawToInt(p: number, rc: number): boolean {
    const se = this.rawSE[p], s = se >>> 15, exp = se & 0x7fff;
    const mhi = this.rawHi[p], mlo = this.rawLo[p];
    this.rInexact = this.rUp = false;
    if ((mhi | mlo) === 0) {
      this.iLo = this.iHi = 0;
      return true;
    }
    const e0 = (exp === 0 ? 1 : exp) - 16383 - 63;
    let khi: number, klo: number;
    if (e0 >= 0) {
      if (e0 !== 0) return false;
      khi = mhi;
      klo = mlo;
    } else {
      this.shr(mhi, mlo, -e0);
      khi = this.sHi;
      klo = this.sLo;
      const inexact = this.sRb !== 0 || this.sSt;
      let inc = false;
      if (inexact) {
        if (rc === RC_NEAREST) inc = this.sRb !== 0 && (this.sSt || (klo & 1) !== 0);
        else if (rc === RC_DOWN) inc = s !== 0;
        else if (rc === RC_UP) inc = s === 0;
      }
      if (inc) {
        klo = (klo + 1) >>> 0;
        if (klo === 0) khi = (khi + 1) >>> 0;
      }
      this.rInexact = inexact;
      this.rUp = inc;
    }
    if (khi >= 0x80000000 && !(s && khi === 0x80000000 && klo === 0)) return false;
    if (s) {
      klo = (~klo + 1) >>> 0;
      khi = ~khi + (klo === 0 ? 1 : 0);
    }
    this.iLo = klo | 0;
    this.iHi = khi | 0;
    return true;
  }

  /** Put the exact 80-bit image of the 64-bit integer hi:lo into slot p. */
  private int64ToRaw(p: number, lo: number, hi: number): void {
    const s = hi < 0 ? 0x8000 : 0;
    let ml = lo >>> 0, mh = hi >>> 0;
    if (s) {
      ml = (~ml + 1) >>> 0;
      mh = (~mh + (ml === 0 ? 1 : 0)) >>> 0;
    }
    if ((mh | ml) === 0) {
      this.rawLo[p] = this.rawHi[p] = 0;
      this.rawSE[p] = s;
      return;
    }
    let e: number;
    if (mh !== 0) {
      const z = Math.clz32(mh);
      if (z > 0) {
        mh = ((mh << z) | (ml >>> (32 - z))) >>> 0;
        ml = (ml << z) >>> 0;
      }
      e = 63 - z;
    } else {
      const z = Math.clz32(ml);
      mh = (ml << z) >>> 0;
      ml = 0;
      e = 31 - z;
    }
    this.rawLo[p] = ml;
    this.rawHi[p] = mh;
    this.rawSE[p] = s | (16383 + e);
  }

  /** Classification of a slot: 0 valid, 1 zero, 2 special (NaN, infinity, denormal, unsupported). */
  private classTag(p: number): number {
    if (this.rawOk[p] === 1) {
      const exp = this.rawSE[p] & 0x7fff;
      if (exp === 0x7fff) return 2;
      if (exp === 0) return (this.rawHi[p] | this.rawLo[p]) === 0 ? 1 : 2;
      return (this.rawHi[p] & 0x80000000) === 0 ? 2 : 0;
    }
    const x = this.val[p];
    return x === 0 ? 1 : Number.isFinite(x) ? 0 : 2;
  }

  /** Physical register `p`'s tag: 0 valid, 1 zero, 2 special, 3 empty. */
  private physTag(p: number): number {
    return this.empty[p] !== 0 ? 3 : this.classTag(p);
  }

  /** Does physical register `p` hold a signalling NaN? */
  private isSNaN(p: number): boolean {
    const hi = this.rawHi[p];
    return (this.rawSE[p] & 0x7fff) === 0x7fff && (hi & 0xc0000000) >>> 0 === 0x80000000 &&
      ((hi & 0x3fffffff) | this.rawLo[p]) !== 0;
  }

  /** Unsupported encodings: pseudo-NaN, pseudo-infinity, unnormal (integer bit clear, exponent non-zero). */
  private isUnsupported(p: number): boolean {
    return (this.rawSE[p] & 0x7fff) !== 0 && (this.rawHi[p] & 0x80000000) === 0;
  }

  /** Does physical register `p` hold a denormal (or pseudo-denormal)? */
  private isDenormal(p: number): boolean {
    return this.rawOk[p] === 2 ||
      (this.rawOk[p] === 1 && (this.rawSE[p] & 0x7fff) === 0 &&
        (this.rawHi[p] | this.rawLo[p]) !== 0);
  }

  /** Write the NaN in slot src, quieted, to dst. */
  private quietNaN(dst: number, src: number): void {
    this.val[dst] = NaN;
    this.rawLo[dst] = this.rawLo[src];
    this.rawHi[dst] = this.rawHi[src] | 0x40000000;
    this.rawSE[dst] = this.rawSE[src];
    this.rawOk[dst] = 1;
  }

  /**
   * Operand checks for a two-operand instruction whose operands are slots a and
   * b and whose result goes to dst: NaN propagation (SDM table 4-7),
   * unsupported encodings and SNaNs (IE), denormals (DE). True when the
   * instruction is finished (result written or unmasked exception).
   */
  private special2(a: number, b: number, dst: number): boolean {
    const na = this.rawOk[a] === 1 && this.val[a] !== this.val[a];
    const nb = this.rawOk[b] === 1 && this.val[b] !== this.val[b];
    if (na || nb) {
      if ((na && this.isUnsupported(a)) || (nb && this.isUnsupported(b))) {
        if (!this.ex(IE)) this.setIndef(dst);
        return true;
      }
      const sa = na && this.isSNaN(a), sb = nb && this.isSNaN(b);
      if ((sa || sb) && this.ex(IE)) return true;
      let pick = na ? a : b;
      if (na && nb) {
        if (sa !== sb) pick = sa ? b : a; // a QNaN wins over an SNaN
        else {
          const ha = this.rawHi[a] & 0x3fffffff, hb = this.rawHi[b] & 0x3fffffff;
          const la = this.rawLo[a], lb = this.rawLo[b];
          if (ha !== hb) pick = ha > hb ? a : b;
          else if (la !== lb) pick = la > lb ? a : b;
          else pick = this.rawSE[a] <= this.rawSE[b] ? a : b;
        }
      }
      this.quietNaN(dst, pick);
      return true;
    }
    if ((this.isDenormal(a) || this.isDenormal(b)) && this.ex(DE)) return true;
    return false;
  }

  /** Operand checks for a one-operand instruction (slot p, result to dst). */
  private special1(p: number, dst: number): boolean {
    if (this.rawOk[p] === 0) return false;
    if (this.val[p] !== this.val[p]) {
      if (this.isUnsupported(p)) {
        if (!this.ex(IE)) this.setIndef(dst);
        return true;
      }
      if (this.isSNaN(p) && this.ex(IE)) return true;
      this.quietNaN(dst, p);
      return true;
    }
    return this.isDenormal(p) && this.ex(DE);
  }

  /**
   * Deliver an arithmetic result r (rounded to nearest) whose exact value lies
   * in direction `dir` (sign of exact - r) to register dst: RC, PE/C1, UE, OE.
   */
  private deliver(r: number, dir: number, dst: number, over: boolean): void {
    let flags = 0;
    if (over) {
      flags = OE | PE;
      dir = r > 0 ? -1 : 1;
    }
    if (dir !== 0) {
      flags |= PE;
      const rc = this.rc;
      let d = dir;
      if (rc !== RC_NEAREST) {
        if (rc === RC_DOWN) {
          if (dir < 0) {
            r = nextDown(r);
            d = 1;
          }
        } else if (rc === RC_UP) {
          if (dir > 0) {
            r = nextUp(r);
            d = -1;
          }
        } else if (r > 0 && dir < 0) {
          r = nextDown(r);
          d = 1;
        } else if (r < 0 && dir > 0) {
          r = nextUp(r);
          d = -1;
        }
      }
      if (r > 0 ? d < 0 : r < 0 && d > 0) this.stat |= C1;
      if (Math.abs(r) < MIN_NORMAL) flags |= UE;
    } else if (r !== 0 && Math.abs(r) < MIN_NORMAL && (this.ctrl & UE) === 0) flags |= UE;
    if (flags !== 0) this.ex(flags);
    this.val[dst] = r;
    this.rawOk[dst] = 0;
  }

  // ---------------------------------------------------------------- memory operands

  /** m32fp into the scratch slot (no state change: a fault here leaves the FPU untouched). */
  private loadF32(lin: number): void {
    const bits = this.cpu.read32(lin);
    const e = (bits >>> 23) & 0xff, f = bits & 0x7fffff;
    if (e === 0xff && f !== 0) {
      this.val[TMP] = NaN;
      this.rawSE[TMP] = ((bits >>> 31) << 15) | 0x7fff;
      this.rawHi[TMP] = (0x80000000 | (f << 8)) >>> 0;
      this.rawLo[TMP] = 0;
      this.rawOk[TMP] = 1;
      return;
    }
    U32F[0] = bits;
    this.val[TMP] = F32[0];
    this.rawOk[TMP] = e === 0 && f !== 0 ? 2 : 0;
  }

  /** m64fp into the scratch slot. */
  private loadF64(lin: number): void {
    const lo = this.cpu.read32(lin), hi = this.cpu.read32((lin + 4) | 0);
    const e = (hi >>> 20) & 0x7ff, fh = hi & 0xfffff;
    if (e === 0x7ff && (fh | lo) !== 0) {
      this.val[TMP] = NaN;
      this.rawSE[TMP] = ((hi >>> 31) << 15) | 0x7fff;
      this.rawHi[TMP] = (0x80000000 | (fh << 11) | (lo >>> 21)) >>> 0;
      this.rawLo[TMP] = (lo << 11) >>> 0;
      this.rawOk[TMP] = 1;
      return;
    }
    U32[0] = lo;
    U32[1] = hi;
    this.val[TMP] = F64[0];
    this.rawOk[TMP] = e === 0 && (fh | lo) !== 0 ? 2 : 0;
  }

  /** m80fp into the scratch slot. */
  private loadF80(lin: number): void {
    const cpu = this.cpu;
    const lo = cpu.read32(lin), hi = cpu.read32((lin + 4) | 0), se = cpu.read16((lin + 8) | 0);
    this.setRaw(TMP, lo >>> 0, hi >>> 0, se);
  }

  /** An integer (m16int or m32int) into the scratch slot. */
  private loadInt(v: number): void {
    this.val[TMP] = v;
    this.rawOk[TMP] = 0;
  }

  /** m64int into the scratch slot (exact: the raw image is kept when float64 cannot hold it). */
  private loadI64(lin: number): void {
    const lo = this.cpu.read32(lin), hi = this.cpu.read32((lin + 4) | 0);
    const h = hi >> 21;
    if (h === 0 || h === -1) {
      this.val[TMP] = hi * TWO32 + (lo >>> 0);
      this.rawOk[TMP] = 0;
      return;
    }
    this.int64ToRaw(TMP, lo, hi);
    this.setRaw(TMP, this.rawLo[TMP], this.rawHi[TMP], this.rawSE[TMP]);
  }

  /** m80bcd (18 packed digits and a sign byte) into the scratch slot. */
  private loadBcd(lin: number): void {
    const cpu = this.cpu;
    const lo = cpu.read32(lin) >>> 0, mid = cpu.read32((lin + 4) | 0) >>> 0;
    const top = cpu.read16((lin + 8) | 0);
    let n = 0n;
    for (let k = 8; k >= 0; k--) {
      const byte = k === 8
        ? top & 0xff
        : k >= 4
        ? (mid >>> ((k - 4) * 8)) & 0xff
        : (lo >>> (k * 8)) & 0xff;
      n = n * 100n + BigInt((byte >> 4) * 10 + (byte & 15));
    }
    const neg = (top & 0x8000) !== 0;
    if (n === 0n) {
      this.val[TMP] = neg ? -0 : 0;
      this.rawOk[TMP] = 0;
      return;
    }
    if (neg) n = -n;
    this.int64ToRaw(TMP, Number(BigInt.asIntN(32, n)), Number(BigInt.asIntN(32, n >> 32n)));
    this.setRaw(TMP, this.rawLo[TMP], this.rawHi[TMP], this.rawSE[TMP]);
  }

  // ---------------------------------------------------------------- loads and stores

  /** FLD/FILD/FBLD of the scratch slot (the memory operand at lin). */
  private fldMem(lin: number): void {
    this.note(true, lin);
    if (!this.canPush()) return;
    this.stat &= ~C1;
    const k = this.rawOk[TMP];
    if (k === 1 && this.isSNaN(TMP) && this.curOp !== 0xdb) {
      // FLD m32/m64 of an SNaN: IE, the quieted NaN is loaded (FLD m80 loads it unchanged).
      if (this.ex(IE)) return;
      this.rawHi[TMP] |= 0x40000000;
    } else if (k === 2 && this.ex(DE)) return;
    this.pushSlot(TMP);
  }

  /** Probe a store, record the instruction and check ST(0); returns its physical index, or -1 on underflow. */
  private storeBegin(lin: number, size: number): number {
    this.cpu.probeWrite(lin, size);
    this.note(true, lin);
    this.stat &= ~C1;
    return this.tp;
  }

  /** FST/FSTP m32fp. */
  private fstF32(lin: number, pop: boolean): void {
    const p = this.storeBegin(lin, 4);
    let bits: number;
    if (this.empty[p] !== 0) {
      if (this.underflow()) return;
      bits = 0xffc00000 | 0;
    } else if (this.rawOk[p] !== 1) {
      const x = this.val[p];
      const f = Math.fround(x);
      if (f === x && (Math.abs(f) >= 1.1754943508222875e-38 || f === 0 || (this.ctrl & UE) !== 0)) {
        F32[0] = f;
        bits = U32F[0];
      } else {
        this.fromF64(x);
        const r = this.storeRound(24, -126, 127);
        if (r !== r) return;
        F32[0] = r;
        bits = U32F[0];
      }
    } else if (this.val[p] !== this.val[p]) {
      if (this.isUnsupported(p) || this.isSNaN(p)) {
        if (this.ex(IE)) return;
      }
      if (this.isUnsupported(p)) bits = 0xffc00000 | 0;
      else {
        const s = this.rawSE[p] >>> 15;
        bits = (s << 31) | 0x7fc00000 | ((this.rawHi[p] >>> 8) & 0x3fffff);
      }
    } else {
      this.oLo = this.rawLo[p];
      this.oHi = this.rawHi[p];
      this.oSE = this.rawSE[p];
      const r = this.storeRound(24, -126, 127);
      if (r !== r) return;
      F32[0] = r;
      bits = U32F[0];
    }
    this.cpu.write32(lin, bits);
    if (pop) this.pop();
  }

  /**
   * Round oLo/oHi/oSE (a finite number or infinity) for a memory store of
   * `prec` bits: sets PE/C1/UE/OE. NaN when an unmasked exception forbids the store.
   */
  private storeRound(prec: number, emin: number, emax: number): number {
    const se = this.oSE;
    if ((se & 0x7fff) === 0x7fff) return se & 0x8000 ? -Infinity : Infinity;
    const r = this.roundRaw(se >>> 15, se & 0x7fff, this.oHi, this.oLo, prec, emin, emax, this.rc);
    let flags = 0;
    if (this.rOver) flags = OE | PE;
    else {
      if (this.rInexact) flags = PE;
      if (this.rTiny && (this.rInexact || (this.ctrl & UE) === 0)) flags |= UE;
    }
    if (this.rUp) this.stat |= C1;
    if (flags !== 0 && this.ex(flags) && (flags & (OE | UE) & ~this.ctrl) !== 0) return NaN;
    return r;
  }

  /** FST/FSTP m64fp. */
  private fstF64(lin: number, pop: boolean): void {
    const p = this.storeBegin(lin, 8);
    let lo: number, hi: number;
    if (this.empty[p] !== 0) {
      if (this.underflow()) return;
      lo = 0;
      hi = 0xfff80000 | 0;
    } else if (this.rawOk[p] !== 1) {
      const x = this.val[p];
      if (x !== 0 && Math.abs(x) < MIN_NORMAL && (this.ctrl & UE) === 0) {
        this.ex(UE); // an exact tiny result still traps when UE is unmasked
        return;
      }
      F64[0] = x;
      lo = U32[0];
      hi = U32[1];
    } else if (this.val[p] !== this.val[p]) {
      if (this.isUnsupported(p) || this.isSNaN(p)) {
        if (this.ex(IE)) return;
      }
      if (this.isUnsupported(p)) {
        lo = 0;
        hi = 0xfff80000 | 0;
      } else {
        const mh = this.rawHi[p], ml = this.rawLo[p];
        hi = ((this.rawSE[p] >>> 15) << 31) | 0x7ff80000 | ((mh >>> 11) & 0x7ffff);
        lo = (mh << 21) | (ml >>> 11);
      }
    } else {
      this.oLo = this.rawLo[p];
      this.oHi = this.rawHi[p];
      this.oSE = this.rawSE[p];
      const r = this.storeRound(53, -1022, 1023);
      if (r !== r) return;
      F64[0] = r;
      lo = U32[0];
      hi = U32[1];
    }
    this.cpu.write32(lin, lo);
    this.cpu.write32((lin + 4) | 0, hi);
    if (pop) this.pop();
  }

  /** FSTP m80fp (exact: the raw image when there is one). */
  private fstF80(lin: number): void {
    const p = this.storeBegin(lin, 10);
    if (this.empty[p] !== 0) {
      if (this.underflow()) return;
      this.oLo = 0;
      this.oHi = 0xc0000000;
      this.oSE = 0xffff;
    } else this.raw80(p);
    const cpu = this.cpu;
    cpu.write32(lin, this.oLo);
    cpu.write32((lin + 4) | 0, this.oHi);
    cpu.write16((lin + 8) | 0, this.oSE);
    this.pop();
  }

  /**
   * Round ST(0) (physical p, not empty) to an integer per RC for FIST/FISTP/
   * FBSTP: iLo/iHi, PE/C1 noted in rInexact/rUp. False on NaN or int64 overflow.
   */
  private toInt64(p: number): boolean {
    if (this.rawOk[p] !== 1) {
      const x = this.val[p];
      if (!Number.isFinite(x)) return false;
      const r = roundToInt(x, this.rc);
      if (r >= 9223372036854775808 || r < -9223372036854775808) return false;
      this.rInexact = r !== x;
      this.rUp = Math.abs(r) > Math.abs(x);
      const h = Math.floor(r / TWO32);
      this.iHi = h | 0;
      this.iLo = (r - h * TWO32) | 0;
      return true;
    }
    if (this.val[p] !== this.val[p]) return false;
    if ((this.rawSE[p] & 0x7fff) === 0x7fff) return false;
    return this.rawToInt(p, this.rc);
  }

  /** FIST/FISTP m16int or m32int. */
  private fistSmall(lin: number, bits: number, pop: boolean): void {
    const p = this.storeBegin(lin, bits >> 3);
    let v: number;
    if (this.empty[p] !== 0) {
      if (this.underflow()) return;
      v = bits === 16 ? 0x8000 : 0x80000000 | 0;
    } else {
      let ok: boolean;
      if (this.rawOk[p] !== 1) {
        // Fast path: float64 rounding is exact here.
        const x = this.val[p];
        const r = roundToInt(x, this.rc);
        v = r;
        ok = bits === 16 ? r >= -32768 && r <= 32767 : r >= -2147483648 && r <= 2147483647;
        if (ok) {
          this.rInexact = r !== x;
          this.rUp = Math.abs(r) > Math.abs(x);
        }
      } else {
        ok = this.toInt64(p) && this.iHi === this.iLo >> 31 &&
          (bits === 32 || (this.iLo << 16) >> 16 === this.iLo);
        v = this.iLo;
      }
      if (!ok) {
        if (this.ex(IE)) return;
        v = bits === 16 ? 0x8000 : 0x80000000 | 0;
      } else if (this.rInexact) {
        if (this.rUp) this.stat |= C1;
        this.ex(PE);
      }
    }
    if (bits === 16) this.cpu.write16(lin, v & 0xffff);
    else this.cpu.write32(lin, v | 0);
    if (pop) this.pop();
  }

  /** FISTP m64int. */
  private fistp64(lin: number): void {
    const p = this.storeBegin(lin, 8);
    let lo = 0, hi = 0x80000000 | 0;
    if (this.empty[p] !== 0) {
      if (this.underflow()) return;
    } else if (this.toInt64(p)) {
      lo = this.iLo;
      hi = this.iHi;
      if (this.rInexact) {
        if (this.rUp) this.stat |= C1;
        this.ex(PE);
      }
    } else if (this.ex(IE)) return;
    this.cpu.write32(lin, lo);
    this.cpu.write32((lin + 4) | 0, hi);
    this.pop();
  }

  /** FBSTP m80bcd. */
  private fbstp(lin: number): void {
    const p = this.storeBegin(lin, 10);
    const cpu = this.cpu;
    let ok = false, neg = false, n = 0n;
    if (this.empty[p] !== 0) {
      if (this.underflow()) return;
    } else {
      if (this.rawOk[p] !== 1) {
        neg = this.val[p] < 0 || Object.is(this.val[p], -0);
      } else neg = (this.rawSE[p] & 0x8000) !== 0;
      if (this.toInt64(p)) {
        n = (BigInt(this.iHi) << 32n) | BigInt(this.iLo >>> 0);
        if (n < 0n) n = -n;
        ok = n <= 999999999999999999n;
      }
      if (!ok) {
        if (this.ex(IE)) return;
      } else if (this.rInexact) {
        if (this.rUp) this.stat |= C1;
        this.ex(PE);
      }
    }
    if (!ok) {
      // The packed BCD indefinite: FFFF C000000000000000.
      cpu.write32(lin, 0);
      cpu.write32((lin + 4) | 0, 0xc0000000 | 0);
      cpu.write16((lin + 8) | 0, 0xffff);
    } else {
      const b = this.buf;
      for (let k = 0; k < 9; k++) {
        const d2 = Number(n % 100n);
        n /= 100n;
        b[k] = ((d2 / 10) << 4) | (d2 % 10);
      }
      b[9] = neg ? 0x80 : 0;
      for (let k = 0; k < 10; k++) cpu.write8((lin + k) | 0, b[k]);
    }
    this.pop();
  }

  // ---------------------------------------------------------------- arithmetic

  /** D8/DA/DC/DE memory forms: arithmetic or compare of ST(0) with the scratch slot. */
  private memArith(reg: number, lin: number): void {
    this.note(true, lin);
    const p0 = this.tp;
    this.stat &= ~C1;
    if (reg === 2 || reg === 3) {
      if (this.empty[p0] !== 0) {
        this.stat = (this.stat & ~CC) | C0 | C2 | C3;
        if (!this.underflow() && reg === 3) this.pop();
        return;
      }
      const c = this.compare(p0, TMP, false);
      if (c >= 0) this.setCompareCC(c);
      if (c >= 0 && reg === 3) this.pop();
      return;
    }
    if (this.empty[p0] !== 0) {
      if (!this.underflow()) this.setIndef(p0);
      return;
    }
    this.arith(reg, p0, TMP, p0);
  }

  /**
   * Register forms: `toSti` false is D8 (ST(0) = ST(0) op ST(i)), true is DC/DE
   * (ST(i) = ST(i) op ST(0), with the reversed SUB/DIV encodings), `pop` for DE.
   */
  private arithSt(reg: number, i: number, toSti: boolean, pop: boolean): void {
    const p0 = this.tp, pi = (this.tp + i) & 7;
    const dst = toSti ? pi : p0;
    this.stat &= ~C1;
    if (this.empty[p0] !== 0 || this.empty[pi] !== 0) {
      if (this.underflow()) return;
      this.setIndef(dst);
    } else {
      this.arith(reg, p0, pi, dst);
      if (this.blocked()) return;
    }
    if (pop) this.pop();
  }

  /**
   * The arithmetic core. kind: 0 add, 1 mul, 4 s0 - src, 5 src - s0,
   * 6 s0 / src, 7 src / s0. Operands are slots; the result goes to dst.
   */
  private arith(kind: number, s0: number, src: number, dst: number): void {
    if ((this.rawOk[s0] | this.rawOk[src]) !== 0 && this.special2(s0, src, dst)) return;
    let a = this.val[s0], b = this.val[src];
    if (kind === 5 || kind === 7) {
      const t = a;
      a = b;
      b = t;
    }
    let r: number, dir: number;
    switch (kind) {
      case 0:
        r = a + b;
        dir = addDir(a, b, r);
        if (r === 0 && dir === 0 && this.rc === RC_DOWN && !(Object.is(a, 0) && Object.is(b, 0))) {
          r = -0;
        }
        break;
      case 1:
        r = a * b;
        dir = mulDir(a, b, r);
        break;
      case 4:
      case 5: {
        const nb = -b;
        r = a + nb;
        dir = addDir(a, nb, r);
        if (r === 0 && dir === 0 && this.rc === RC_DOWN && !(Object.is(a, 0) && Object.is(nb, 0))) {
          r = -0;
        }
        break;
      }
      default:
        if (b === 0 && a !== 0 && Number.isFinite(a)) {
          if (this.ex(ZE)) return;
          this.setVal(dst, a / b);
          return;
        }
        r = a / b;
        dir = r !== r || b === 0 || !Number.isFinite(b) ? 0 : divDir(a, b, r);
    }
    if (r !== r) {
      if (!this.ex(IE)) this.setIndef(dst);
      return;
    }
    this.deliver(r, dir, dst, !Number.isFinite(r) && Number.isFinite(a) && Number.isFinite(b));
  }

  // ---------------------------------------------------------------- compares

  /**
   * Compare slots a and b: 0 a > b, 1 a < b, 2 equal, 3 unordered; -1 when an
   * unmasked exception means no result. `quiet` (FUCOM*) raises IE only for
   * SNaNs and unsupported encodings.
   */
  private compare(a: number, b: number, quiet: boolean): number {
    const x = this.val[a], y = this.val[b];
    if (x !== x || y !== y) {
      let inv = !quiet;
      if (!inv) {
        inv = (x !== x && (this.isSNaN(a) || this.isUnsupported(a))) ||
          (y !== y && (this.isSNaN(b) || this.isUnsupported(b)));
      }
      if (inv && this.ex(IE)) return -1;
      return 3;
    }
    if ((this.rawOk[a] | this.rawOk[b]) !== 0) {
      if ((this.isDenormal(a) || this.isDenormal(b)) && this.ex(DE)) return -1;
      if (this.rawOk[a] === 1 || this.rawOk[b] === 1) return this.compareRaw(a, b);
    }
    return x > y ? 0 : x < y ? 1 : 2;
  }

  /** Exact comparison of two non-NaN slots through their 80-bit images. */
  private compareRaw(a: number, b: number): number {
    this.raw80(a);
    const sa = this.oSE >>> 15, ka = this.magKey();
    const ha = this.sHi, la = this.sLo;
    this.raw80(b);
    const sb = this.oSE >>> 15, kb = this.magKey();
    const hb = this.sHi, lb = this.sLo;
    // Magnitude order: exponent key, then the normalised mantissa.
    let m = ka !== kb
      ? (ka > kb ? 1 : -1)
      : ha !== hb
      ? (ha > hb ? 1 : -1)
      : la !== lb
      ? (la > lb ? 1 : -1)
      : 0;
    const za = ka === -Infinity, zb = kb === -Infinity;
    if (za && zb) return 2;
    if (sa !== sb) return sa ? 1 : 0;
    if (sa) m = -m;
    return m > 0 ? 0 : m < 0 ? 1 : 2;
  }

  /** Normalise oHi/oLo/oSE: returns an exponent key (-Infinity for zero) and leaves the mantissa in sHi/sLo. */
  private magKey(): number {
    let mh = this.oHi >>> 0, ml = this.oLo >>> 0;
    const exp = this.oSE & 0x7fff;
    if ((mh | ml) === 0) {
      this.sHi = this.sLo = 0;
      return exp === 0x7fff ? Infinity : -Infinity;
    }
    let e = exp === 0 ? 1 : exp;
    if (mh !== 0) {
      const z = Math.clz32(mh);
      if (z > 0) {
        mh = ((mh << z) | (ml >>> (32 - z))) >>> 0;
        ml = (ml << z) >>> 0;
      }
      e -= z;
    } else {
      const z = Math.clz32(ml);
      mh = (ml << z) >>> 0;
      ml = 0;
      e -= 32 + z;
    }
    this.sHi = mh;
    this.sLo = ml;
    return exp === 0x7fff ? Infinity : e;
  }

  /** Set C0, C2, C3 from a comparison: 0 greater, 1 less, 2 equal, 3 unordered. */
  private setCompareCC(c: number): void {
    const bits = c === 0 ? 0 : c === 1 ? C0 : c === 2 ? C3 : C0 | C2 | C3;
    this.stat = (this.stat & ~CC) | bits;
  }

  /** FCOM/FCOMP/FCOMPP/FUCOM* with a register: compare ST(0) with ST(i), then pop `pops` times. */
  private fcomSt(i: number, pops: number, quiet: boolean): void {
    const p0 = this.tp, pi = (this.tp + i) & 7;
    // C1 is cleared only by a stack underflow (observed: otherwise it is kept).
    if (this.empty[p0] !== 0 || this.empty[pi] !== 0) {
      this.stat = (this.stat & ~CC) | C0 | C2 | C3;
      if (this.underflow()) return;
    } else {
      const c = this.compare(p0, pi, quiet);
      if (c < 0) return;
      this.setCompareCC(c);
    }
    for (let k = 0; k < pops; k++) this.pop();
  }

  /** FCOMI/FCOMIP/FUCOMI/FUCOMIP: the result goes to ZF, PF, CF (OF, SF, AF cleared). */
  private fcomi(i: number, pop: boolean, quiet: boolean): void {
    this.wait();
    this.note(false);
    const p0 = this.tp, pi = (this.tp + i) & 7;
    this.stat &= ~C1;
    let c: number;
    if (this.empty[p0] !== 0 || this.empty[pi] !== 0) {
      if (this.underflow()) return;
      c = 3;
    } else {
      c = this.compare(p0, pi, quiet);
      if (c < 0) return;
    }
    const bits = c === 0 ? 0 : c === 1 ? CF : c === 2 ? ZF : ZF | PF | CF;
    this.cpu.setFlagBits(COMI_MASK, bits);
    if (pop) this.pop();
  }

  // ---------------------------------------------------------------- register operations

  /** FXCH ST(i): exchange ST(0) and ST(i). */
  private fxch(i: number): void {
    this.wait();
    this.note(false);
    const p0 = this.tp, pi = (this.tp + i) & 7;
    this.stat &= ~C1; // FXCH clears C1 (SDM), unlike FCMOVcc
    if (this.empty[p0] !== 0 || this.empty[pi] !== 0) {
      if (this.underflow()) return;
      if (this.empty[p0] !== 0) this.setIndef(p0);
      if (this.empty[pi] !== 0) this.setIndef(pi);
      this.empty[p0] = this.empty[pi] = 0;
    }
    this.copy(TMP, p0);
    this.copy(p0, pi);
    this.copy(pi, TMP);
  }

  /** FST/FSTP ST(i). */
  private fstSt(i: number, pop: boolean): void {
    this.wait();
    this.note(false);
    const p0 = this.tp, pi = (this.tp + i) & 7;
    this.stat &= ~C1;
    if (this.empty[p0] !== 0) {
      if (this.underflow()) return;
      this.setIndef(pi);
    } else this.copy(pi, p0);
    this.empty[pi] = 0;
    if (pop) this.pop();
  }

  /** FCMOVcc ST(0), ST(i) with the Jcc condition `cc`. */
  private fcmov(i: number, cc: number): void {
    this.wait();
    this.note(false);
    const p0 = this.tp, pi = (this.tp + i) & 7;
    // C1 is cleared only by a stack underflow (observed: otherwise it is kept).
    if (this.empty[p0] !== 0 || this.empty[pi] !== 0) {
      if (!this.underflow()) {
        this.setIndef(p0);
        this.empty[p0] = 0;
      }
      return;
    }
    if (this.cpu.cond(cc)) this.copy(p0, pi);
  }

  /** The D9 register forms (mod 3), by ModRM reg and rm: FLD ST(i), FXCH, FNOP, FCHS through FCOS. */
  private execD9(reg: number, i: number, modrm: number): void {
    switch (reg) {
      case 0: { // FLD ST(i)
        this.wait();
        this.note(false);
        const src = (this.tp + i) & 7;
        if (!this.canPush()) return;
        this.stat &= ~C1;
        if (this.empty[src] !== 0) {
          if (this.underflow()) return;
          this.setIndef(TMP);
          this.pushSlot(TMP);
        } else this.pushSlot(src);
        return;
      }
      case 1:
        return this.fxch(i);
      case 2:
        if (i !== 0) return this.cpu.ud();
        this.wait(); // FNOP
        this.note(false);
        return;
      case 3: // FSTP1 (the P6 executes D9 D8+i as FSTP ST(i))
        return this.fstSt(i, true);
      case 4:
        if (i === 2 || i === 3 || i === 6 || i === 7) return this.cpu.ud();
        this.wait();
        this.note(false);
        if (i === 5) return this.fxam();
        return this.unaryE(i);
      case 5:
        if (i === 7) return this.cpu.ud();
        this.wait();
        this.note(false);
        return this.fldConst(i);
      default:
        this.wait();
        this.note(false);
        return this.transcendental(modrm);
    }
  }

  /** FCHS (0), FABS (1), FTST (4). */
  private unaryE(i: number): void {
    const p = this.tp;
    this.stat &= ~C1;
    if (this.empty[p] !== 0) {
      if (i === 4) {
        this.stat = (this.stat & ~CC) | C0 | C2 | C3;
        this.underflow();
        return;
      }
      if (!this.underflow()) this.setIndef(p);
      return;
    }
    if (i === 4) {
      this.val[TMP] = 0;
      this.rawOk[TMP] = 0;
      const c = this.compare(p, TMP, false);
      if (c >= 0) this.setCompareCC(c);
      return;
    }
    const x = this.val[p];
    this.val[p] = i === 0 ? -x : Math.abs(x);
    if (this.rawOk[p] === 1) {
      this.rawSE[p] = i === 0 ? this.rawSE[p] ^ 0x8000 : this.rawSE[p] & 0x7fff;
    }
  }

  /** FXAM: classify ST(0) into C3 C2 C0, sign into C1. */
  private fxam(): void {
    const p = this.tp;
    let s: number, c: number;
    if (this.rawOk[p] === 1) s = this.rawSE[p] >>> 15;
    else s = this.val[p] < 0 || Object.is(this.val[p], -0) ? 1 : 0;
    if (this.empty[p] !== 0) c = C3 | C0;
    else if (this.rawOk[p] === 1) {
      const exp = this.rawSE[p] & 0x7fff, hi = this.rawHi[p], lo = this.rawLo[p];
      if (exp === 0) c = (hi | lo) === 0 ? C3 : C3 | C2;
      else if ((hi & 0x80000000) === 0) c = 0; // unsupported
      else if (exp === 0x7fff) c = ((hi & 0x7fffffff) | lo) === 0 ? C2 | C0 : C0;
      else c = C2;
    } else {
      const x = this.val[p];
      c = x === 0 ? C3 : Number.isFinite(x) ? C2 : C2 | C0;
    }
    this.stat = (this.stat & ~CC) | c | (s ? C1 : 0);
  }

  /** FLD1, FLDL2T, FLDL2E, FLDPI, FLDLG2, FLDLN2, FLDZ, rounded per RC. */
  private fldConst(i: number): void {
    if (!this.canPush()) return;
    this.stat &= ~C1;
    const k = CONSTS[i], rc = this.rc;
    let lo = k[2];
    if (rc === RC_UP) lo += k[4];
    else if (rc === RC_DOWN || rc === 3) lo += k[3];
    this.setRaw(TMP, lo >>> 0, k[1], k[0]);
    this.pushSlot(TMP);
  }

  /** D9 F0..FF. */
  private transcendental(modrm: number): void {
    const p0 = this.tp, p1 = (this.tp + 1) & 7;
    this.stat &= ~C1;
    switch (modrm) {
      case 0xf6: // FDECSTP
        this.tp = (this.tp - 1) & 7;
        return;
      case 0xf7: // FINCSTP
        this.tp = (this.tp + 1) & 7;
        return;
      case 0xf2: // FPTAN
      case 0xf4: // FXTRACT
      case 0xfb: // FSINCOS
        return this.unaryPush(modrm);
      case 0xf1: // FYL2X
      case 0xf3: // FPATAN
      case 0xf9: // FYL2XP1
        if (this.empty[p0] !== 0 || this.empty[p1] !== 0) {
          if (!this.underflow()) this.setIndef(p1);
          else return;
        } else if ((this.rawOk[p0] | this.rawOk[p1]) === 0 || !this.special2(p1, p0, p1)) {
          this.binaryPop(modrm, this.val[p0], this.val[p1], p1);
        }
        if (this.blocked()) return;
        this.pop();
        return;
      case 0xf5: // FPREM1
      case 0xf8: // FPREM
      case 0xfd: // FSCALE
        if (this.empty[p0] !== 0 || this.empty[p1] !== 0) {
          if (!this.underflow()) this.setIndef(p0);
          return;
        }
        if ((this.rawOk[p0] | this.rawOk[p1]) !== 0 && this.special2(p0, p1, p0)) return;
        if (modrm === 0xfd) return this.fscale(this.val[p0], this.val[p1]);
        return this.fprem(this.val[p0], this.val[p1], modrm === 0xf5);
      default: // F2XM1, FSQRT, FRNDINT, FSIN, FCOS
        if (this.empty[p0] !== 0) {
          if (!this.underflow()) this.setIndef(p0);
          return;
        }
        if (this.special1(p0, p0)) return;
        return this.unary(modrm, p0);
    }
  }

  /** F2XM1, FSQRT, FRNDINT, FSIN, FCOS on ST(0) (physical p, not empty, not NaN). */
  private unary(modrm: number, p: number): void {
    const x = this.val[p];
    switch (modrm) {
      case 0xfa: { // FSQRT
        if (x < 0) {
          if (!this.ex(IE)) this.setIndef(p);
          return;
        }
        const r = Math.sqrt(x);
        this.deliver(r, x === 0 || x === Infinity ? 0 : sqrtDir(x, r), p, false);
        return;
      }
      case 0xfc: // FRNDINT
        return this.frndint(p);
      case 0xf0: // F2XM1
        return this.transResult(Math.expm1(x * Math.LN2), x === 0 || !Number.isFinite(x), p);
      default: { // FSIN, FCOS
        if (!Number.isFinite(x)) {
          if (!this.ex(IE)) this.setIndef(p);
          return;
        }
        if (Math.abs(x) >= 9223372036854775808) {
          this.stat |= C2;
          return;
        }
        this.stat &= ~C2;
        if (modrm === 0xfe) this.transResult(Math.sin(x), x === 0, p);
        else this.transResult(Math.cos(x), false, p);
      }
    }
  }

  /** Store a transcendental result: PE unless `exact`. */
  private transResult(r: number, exact: boolean, dst: number): void {
    if (r !== r) {
      if (!this.ex(IE)) this.setIndef(dst);
      return;
    }
    if (!exact) this.ex(PE);
    if (r !== 0 && Math.abs(r) < MIN_NORMAL) this.ex(UE | PE);
    this.setVal(dst, r);
  }

  /** FRNDINT on physical p (finite or infinite). */
  private frndint(p: number): void {
    if (this.rawOk[p] !== 1) {
      const x = this.val[p];
      const r = roundToInt(x, this.rc);
      if (r !== x) {
        if (Math.abs(r) > Math.abs(x)) this.stat |= C1;
        this.ex(PE);
      }
      this.setVal(p, r);
      return;
    }
    const exp = this.rawSE[p] & 0x7fff;
    if (exp >= 16383 + 63) return; // already an integer (or infinity)
    const neg = (this.rawSE[p] & 0x8000) !== 0;
    if (!this.rawToInt(p, this.rc)) {
      // Rounded up to 2^63 exactly.
      this.stat |= C1;
      this.ex(PE);
      this.setVal(p, neg ? -9223372036854775808 : 9223372036854775808);
      return;
    }
    if (this.rInexact) {
      if (this.rUp) this.stat |= C1;
      this.ex(PE);
    }
    if (this.iLo === 0 && this.iHi === 0) {
      this.setVal(p, neg ? -0 : 0);
      return;
    }
    this.int64ToRaw(p, this.iLo, this.iHi);
    this.setRaw(p, this.rawLo[p], this.rawHi[p], this.rawSE[p]);
  }

  /** FYL2X, FPATAN, FYL2XP1: ST(1) = f(ST(1), ST(0)); x = ST(0), y = ST(1). */
  private binaryPop(modrm: number, x: number, y: number, dst: number): void {
    let r: number;
    if (modrm === 0xf3) r = Math.atan2(y, x);
    else if (modrm === 0xf1) {
      if (x === 0 && y !== 0 && Number.isFinite(y)) {
        if (this.ex(ZE)) return;
        this.setVal(dst, y > 0 ? -Infinity : Infinity);
        return;
      }
      r = x < 0 ? NaN : y * Math.log2(x);
    } else r = y * (Math.log1p(x) * Math.LOG2E);
    this.transResult(r, r === 0 || !Number.isFinite(r), dst);
  }

  /** FPTAN, FXTRACT, FSINCOS: replace ST(0) and push a second result. */
  private unaryPush(modrm: number): void {
    const p0 = this.tp;
    if (this.empty[p0] !== 0 || this.empty[(p0 - 1) & 7] === 0) {
      if (this.empty[p0] !== 0) this.stat &= ~C1;
      else this.stat |= C1;
      if (!this.ex(IE | SFLT)) {
        this.setIndef(p0);
        this.empty[p0] = 0;
        this.setIndef(TMP);
        this.pushSlot(TMP);
      }
      return;
    }
    if (this.special1(p0, p0)) {
      if (!this.blocked()) this.pushSlot(p0); // the NaN in both results
      return;
    }
    const x = this.val[p0];
    if (modrm === 0xf4) return this.fxtract(p0);
    if (!Number.isFinite(x)) {
      if (!this.ex(IE)) {
        this.setIndef(p0);
        this.pushSlot(p0);
      }
      return;
    }
    if (Math.abs(x) >= 9223372036854775808) {
      this.stat |= C2;
      return;
    }
    this.stat &= ~C2;
    if (x !== 0) this.ex(PE);
    if (modrm === 0xf2) {
      this.setVal(p0, Math.tan(x));
      this.val[TMP] = 1;
    } else {
      this.setVal(p0, Math.sin(x));
      this.val[TMP] = Math.cos(x);
    }
    this.rawOk[TMP] = 0;
    this.pushSlot(TMP);
  }

  /** FXTRACT: ST(0) = exponent, then push the significand (same sign, in [1,2)). */
  private fxtract(p0: number): void {
    const x = this.val[p0];
    if (this.rawOk[p0] !== 1 && x === 0) {
      if (this.ex(ZE)) return;
      this.setVal(p0, -Infinity);
      this.val[TMP] = x;
      this.rawOk[TMP] = 0;
      this.pushSlot(TMP);
      return;
    }
    if (!Number.isFinite(x) && this.rawOk[p0] !== 1) {
      this.setVal(p0, Infinity);
      this.val[TMP] = x;
      this.rawOk[TMP] = 0;
      this.pushSlot(TMP);
      return;
    }
    this.raw80(p0);
    const s = this.oSE & 0x8000;
    const e = this.magKey();
    if (e === -Infinity) {
      // An 80-bit zero held raw.
      if (this.ex(ZE)) return;
      this.setVal(p0, -Infinity);
      this.val[TMP] = s ? -0 : 0;
      this.rawOk[TMP] = 0;
    } else {
      this.setRaw(TMP, this.sLo, this.sHi, s | 0x3fff);
      this.setVal(p0, e - 16383);
    }
    this.pushSlot(TMP);
  }

  /** FSCALE: ST(0) * 2^trunc(ST(1)). */
  private fscale(x: number, y: number): void {
    const p0 = this.tp;
    if (!Number.isFinite(y)) {
      const bad = (y > 0 && x === 0) || (y < 0 && !Number.isFinite(x));
      if (bad) {
        if (!this.ex(IE)) this.setIndef(p0);
        return;
      }
      this.setVal(p0, x === 0 || !Number.isFinite(x) ? x : y > 0 ? x * Infinity : x * 0);
      return;
    }
    if (x === 0 || !Number.isFinite(x)) return;
    const n = Math.max(-4000, Math.min(4000, Math.trunc(y)));
    const e = ilogb(x), m = scale2(x, -e), t = e + n;
    if (t > 1023) {
      this.deliver(x > 0 ? Infinity : -Infinity, 0, p0, true);
      return;
    }
    let r: number;
    if (t >= -1074) r = m * p2(t);
    else if (t >= -1200) r = (m * p2(t + 1074)) * p2(-1074);
    else r = x > 0 ? 0 : -0;
    let dir = 0;
    if (t < -1022) {
      const back = r === 0 ? 0 : scale2(r, -t);
      dir = back === m ? 0 : back < m ? 1 : -1;
    }
    this.deliver(r, dir, p0, false);
  }

  /** FPREM (truncating) and FPREM1 (IEEE, round to nearest) of ST(0) by ST(1). */
  private fprem(a: number, b: number, ieee: boolean): void {
    const p0 = this.tp;
    this.stat &= ~(C0 | C1 | C2 | C3);
    if (!Number.isFinite(a) || b === 0) {
      if (!this.ex(IE)) this.setIndef(p0);
      return;
    }
    if (a === 0 || !Number.isFinite(b)) return; // ST(0) unchanged, quotient 0
    const ab = Math.abs(b);
    const d = ilogb(a) - ilogb(b);
    if (d >= 64) {
      // Partial remainder: reduce by a multiple of ST(1) * 2^(d - n), n in [32, 63].
      const n = 32 | (d & 31);
      this.setVal(p0, a % scale2(ab, d - n));
      this.stat |= C2;
      return;
    }
    const aa = Math.abs(a);
    let r = aa % ab;
    const b8 = ab * 8;
    let q = Number.isFinite(b8) ? Math.round(((aa % b8) - r) / ab) : Math.round((aa - r) / ab);
    if (ieee && (r > ab - r || (r === ab - r && (q & 1) !== 0))) {
      r = r - ab;
      q++;
    }
    let res = a < 0 ? -r : r;
    if (res === 0) res = a < 0 ? -0 : 0;
    this.setVal(p0, res);
    if (res !== 0 && Math.abs(res) < MIN_NORMAL && (this.ctrl & UE) === 0) this.ex(UE);
    this.stat |= ((q & 4) !== 0 ? C0 : 0) | ((q & 2) !== 0 ? C3 : 0) | ((q & 1) !== 0 ? C1 : 0);
  }

  // ---------------------------------------------------------------- environment

  /** Compose the FNSTENV image (14 or 28 bytes) into dv at 0; returns its size. */
  private composeEnv(dv: DataView, o16: boolean): number {
    const tw = this.tw;
    if (o16) {
      dv.setUint16(0, this.ctrl, true);
      dv.setUint16(2, this.sw, true);
      dv.setUint16(4, tw, true);
      dv.setUint16(6, this.fip & 0xffff, true);
      dv.setUint16(8, this.fcs, true);
      dv.setUint16(10, this.fdp & 0xffff, true);
      dv.setUint16(12, this.fds, true);
      return 14;
    }
    dv.setUint32(0, 0xffff0000 | this.ctrl, true);
    dv.setUint32(4, 0xffff0000 | this.sw, true);
    dv.setUint32(8, 0xffff0000 | tw, true);
    dv.setUint32(12, this.fip, true);
    dv.setUint32(16, (this.fcs & 0xffff) | (this.fop << 16), true);
    dv.setUint32(20, this.fdp, true);
    dv.setUint32(24, 0xffff0000 | this.fds, true);
    return 28;
  }

  /** Compose the FNSAVE image (94 or 108 bytes) into dv; returns its size. */
  private composeSave(dv: DataView, o16: boolean): number {
    const n = this.composeEnv(dv, o16);
    for (let i = 0; i < 8; i++) {
      this.raw80((this.tp + i) & 7);
      dv.setUint32(n + 10 * i, this.oLo, true);
      dv.setUint32(n + 10 * i + 4, this.oHi, true);
      dv.setUint16(n + 10 * i + 8, this.oSE, true);
    }
    return n + 80;
  }

  /** Load the environment from buf at 0 (the inverse of composeEnv); returns its size. */
  private loadEnv(o16: boolean): number {
    const dv = this.bv;
    let cw: number, sw: number, tw: number;
    if (o16) {
      cw = dv.getUint16(0, true);
      sw = dv.getUint16(2, true);
      tw = dv.getUint16(4, true);
      this.fip = dv.getUint16(6, true);
      this.fcs = dv.getUint16(8, true);
      this.fdp = dv.getUint16(10, true);
      this.fds = dv.getUint16(12, true);
      this.fop = 0;
    } else {
      cw = dv.getUint16(0, true);
      sw = dv.getUint16(4, true);
      tw = dv.getUint16(8, true);
      this.fip = dv.getUint32(12, true);
      this.fcs = dv.getUint16(16, true);
      this.fop = dv.getUint16(18, true) & 0x7ff;
      this.fdp = dv.getUint32(20, true);
      this.fds = dv.getUint16(24, true);
    }
    this.ctrl = (cw & ~0xe0c0) | 0x40;
    this.stat = sw & ~FSW_TOP;
    this.tp = (sw >> 11) & 7;
    // Only "empty or not" is kept: the P6 recomputes the other tags from the contents.
    for (let p = 0; p < 8; p++) this.empty[p] = ((tw >> (2 * p)) & 3) === 3 ? 1 : 0;
    this.syncES();
    return o16 ? 14 : 28;
  }

  /** Load a full FNSAVE image from buf (environment, then ST(0)..ST(7)). */
  private loadSave(o16: boolean): void {
    const n = this.loadEnv(o16), dv = this.bv;
    for (let i = 0; i < 8; i++) {
      this.setRaw(
        (this.tp + i) & 7,
        dv.getUint32(n + 10 * i, true),
        dv.getUint32(n + 10 * i + 4, true),
        dv.getUint16(n + 10 * i + 8, true),
      );
    }
  }

  /** FNSTENV: store the environment (14 or 28 bytes) at `lin`, then mask all exceptions. */
  private fnstenv(lin: number, o16: boolean): void {
    const n = o16 ? 14 : 28;
    this.cpu.probeWrite(lin, n);
    this.composeEnv(this.bv, o16);
    this.writeBlock(lin, n);
    this.ctrl |= 0x3f; // FNSTENV masks all exceptions
    this.syncES();
  }

  /** FLDENV: load the environment (14 or 28 bytes) from `lin`. */
  private fldenv(lin: number, o16: boolean): void {
    this.readBlock(lin, o16 ? 14 : 28);
    this.loadEnv(o16);
  }

  /** FNSAVE: store the environment and the eight registers (94 or 108 bytes), then FNINIT. */
  private fnsave(lin: number, o16: boolean): void {
    const n = o16 ? 94 : 108;
    this.cpu.probeWrite(lin, n);
    this.composeSave(this.bv, o16);
    this.writeBlock(lin, n);
    this.init();
  }

  /** FRSTOR: load the environment and the eight registers (94 or 108 bytes). */
  private frstor(lin: number, o16: boolean): void {
    this.readBlock(lin, o16 ? 94 : 108);
    this.loadSave(o16);
  }

  /**
   * Linear address of byte k of a multi-part operand at `lin`: with 16-bit
   * addressing the offset wraps within 64 KiB, as the hardware computes each part.
   */
  private part(lin: number, k: number): number {
    const cpu = this.cpu;
    if ((cpu.pfx & P_A16) === 0) return (lin + k) | 0;
    const base = cpu.sbase[cpu.eaSeg];
    return (base + ((lin - base + k) & 0xffff)) | 0;
  }

  /** Read n bytes at lin into buf (all reads happen before any state changes). */
  private readBlock(lin: number, n: number): void {
    const cpu = this.cpu, dv = this.bv;
    // The hardware touches the operand's last byte first (a fault there reports its address).
    cpu.read8(this.part(lin, n - 1));
    let k = 0;
    if ((cpu.pfx & P_A16) === 0) {
      for (; k + 4 <= n; k += 4) dv.setInt32(k, cpu.read32((lin + k) | 0), true);
    }
    for (; k < n; k++) this.buf[k] = cpu.read8(this.part(lin, k));
  }

  /** Write n bytes of buf at lin (the caller probed the range). */
  private writeBlock(lin: number, n: number): void {
    const cpu = this.cpu, dv = this.bv;
    let k = 0;
    if ((cpu.pfx & P_A16) === 0) {
      for (; k + 4 <= n; k += 4) cpu.write32((lin + k) | 0, dv.getInt32(k, true));
    }
    for (; k < n; k++) cpu.write8(this.part(lin, k), this.buf[k]);
  }
}
