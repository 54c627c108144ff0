/**
 * Instruction families with more arithmetic than a line: shifts and rotates
 * (incl. SHLD/SHRD), multiply and divide, bit tests and scans, and the BCD
 * adjustments.
 *
 * Each function takes the CPU, performs the operation on values the caller has
 * already fetched, sets the flags the SDM defines, and returns the result for
 * the caller to store. Where the SDM leaves a flag undefined we follow what P6
 * and later Intel parts are observed to do when that is cheap, and otherwise
 * leave a plausible value; the differential tests mask undefined flags.
 *
 * @module
 */

import type { CPU } from "./cpu.ts";
import { P_O16 } from "./cpu.ts";
import { AF, CF, OF, Vec, ZF } from "./flags.ts";

const EAX = 0, EDX = 2;

/**
 * Shift or rotate `v` (zero-extended to `size` bits) by `count`.
 * kind: 0 ROL, 1 ROR, 2 RCL, 3 RCR, 4 SHL, 5 SHR, 6 SAL (= SHL), 7 SAR.
 */
export function shift(cpu: CPU, kind: number, v: number, count: number, size: number): number {
  count &= 31;
  if (count === 0) return v;
  const sz = size - 1;
  const mask = size === 32 ? -1 : (1 << size) - 1;
  v &= mask;
  switch (kind) {
    case 0: { // ROL
      const c = count & sz;
      const r = c === 0 ? v : ((v << c) | (v >>> (size - c))) & mask;
      const cf = r & 1;
      cpu.setFlagBits(CF | OF, cf | ((((r >>> sz) & 1) ^ cf) << 11));
      return r;
    }
    case 1: { // ROR
      const c = count & sz;
      const r = c === 0 ? v : ((v >>> c) | (v << (size - c))) & mask;
      const cf = (r >>> sz) & 1;
      cpu.setFlagBits(CF | OF, cf | ((cf ^ ((r >>> (sz - 1)) & 1)) << 11));
      return r;
    }
    case 2: { // RCL: rotate the (size+1)-bit value CF:v
      const c = size === 32 ? count : count % (size + 1);
      if (c === 0) return v;
      const cf = cpu.getCF();
      const third = size + 1 - c >= 32 ? 0 : v >>> (size + 1 - c);
      const r = ((v << c) | (cf << (c - 1)) | third) & mask;
      const ncf = (v >>> (size - c)) & 1;
      cpu.setFlagBits(CF | OF, ncf | ((((r >>> sz) & 1) ^ ncf) << 11));
      return r;
    }
    case 3: { // RCR
      const c = size === 32 ? count : count % (size + 1);
      if (c === 0) return v;
      const cf = cpu.getCF();
      const third = size + 1 - c >= 32 ? 0 : v << (size + 1 - c);
      const r = ((v >>> c) | (cf << (size - c)) | third) & mask;
      const ncf = (v >>> (c - 1)) & 1;
      cpu.setFlagBits(CF | OF, ncf | ((((r >>> sz) ^ (r >>> (sz - 1))) & 1) << 11));
      return r;
    }
    case 4:
    case 6: { // SHL/SAL
      const r = (v << count) & mask;
      const cf = ((v << (count - 1)) >>> sz) & 1;
      return cpu.result(r, sz, cf | ((((r >>> sz) & 1) ^ cf) << 11));
    }
    case 5: { // SHR
      const r = (v >>> count) & mask;
      const cf = (v >>> (count - 1)) & 1;
      return cpu.result(r, sz, cf | (((v >>> sz) & 1) << 11));
    }
    default: { // SAR
      const sv = (v << (31 - sz)) >> (31 - sz);
      const r = (sv >> count) & mask;
      const cf = (sv >> (count - 1)) & 1;
      return cpu.result(r, sz, cf);
    }
  }
}

/** SHLD/SHRD (0F A4/A5/AC/AD): decode, execute, store. */
export function shiftDouble(cpu: CPU, op: number): void {
  const m = cpu.fetch8();
  const o16 = (cpu.pfx & P_O16) !== 0;
  const isMem = m < 0xc0;
  const a = isMem ? cpu.modrmAddr(m) : 0;
  const count = ((op & 1) === 0 ? cpu.fetch8() : cpu.regs8[4]) & 31;
  if (isMem) cpu.checkEaWrite();
  const r = (m >> 3) & 7;
  const d = isMem
    ? (o16 ? cpu.readW16(a) : cpu.readW32(a))
    : o16
    ? cpu.regs16[(m & 7) << 1]
    : cpu.regs[m & 7];
  if (count === 0) return;
  const left = op < 0xa8;
  let res: number, cf: number;
  if (!o16) {
    const s = cpu.regs[r];
    if (left) {
      res = (d << count) | (count === 0 ? 0 : s >>> (32 - count));
      cf = (d >>> (32 - count)) & 1;
    } else {
      res = (d >>> count) | (s << (32 - count));
      cf = (d >>> (count - 1)) & 1;
    }
    res |= 0;
    const of = ((res ^ d) >>> 31) & 1;
    cpu.result(res, 31, cf | (of << 11));
  } else {
    // 16-bit forms with counts above 16 are undefined; like P6 parts, shift the
    // 48-bit pattern dest:src:dest.
    const s = cpu.regs16[r << 1];
    const x = d * 4294967296 + s * 65536 + d;
    if (left) {
      res = Math.floor(x / 2 ** (32 - count)) % 65536;
      cf = Math.floor(x / 2 ** (48 - count)) % 2;
    } else {
      res = Math.floor(x / 2 ** count) % 65536;
      cf = Math.floor(x / 2 ** (count - 1)) % 2;
    }
    const of = ((res ^ d) >>> 15) & 1;
    cpu.result(res, 15, cf | (of << 11));
  }
  if (isMem) {
    if (o16) cpu.write16(a, res);
    else cpu.write32(a, res);
  } else if (o16) cpu.regs16[(m & 7) << 1] = res;
  else cpu.regs[m & 7] = res;
}

/** High half of the last 32×32 multiply. */
let mulHigh = 0;

/** Unsigned 32×32 → 64 multiply: returns the low half, leaves the high half in mulHigh. */
function mulu32(a: number, b: number): number {
  const al = a & 0xffff, ah = a >>> 16, bl = b & 0xffff, bh = b >>> 16;
  const ll = al * bl, lh = al * bh, hl = ah * bl, hh = ah * bh;
  const mid = (ll >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  mulHigh = (hh + (lh >>> 16) + (hl >>> 16) + Math.floor(mid / 65536)) | 0;
  return ((ll & 0xffff) | (mid << 16)) | 0;
}

/** MUL/IMUL with one operand (F6/F7 /4 /5): AX, DX:AX or EDX:EAX = acc × src. */
export function multiply(cpu: CPU, src: number, size: number, signed: boolean): void {
  const regs = cpu.regs;
  let over: boolean, lo: number;
  if (size === 8) {
    const a = cpu.regs8[0];
    const p = signed ? ((a << 24) >> 24) * ((src << 24) >> 24) : a * src;
    cpu.regs16[0] = p & 0xffff;
    lo = p & 0xff;
    over = signed ? p !== ((p << 24) >> 24) : (p & 0xff00) !== 0;
  } else if (size === 16) {
    const a = cpu.regs16[0];
    const p = signed ? ((a << 16) >> 16) * ((src << 16) >> 16) : a * src;
    lo = p & 0xffff;
    cpu.regs16[0] = lo;
    cpu.regs16[EDX << 1] = (p >> 16) & 0xffff;
    over = signed ? p !== ((p << 16) >> 16) : (p >>> 16) !== 0;
  } else {
    const a = regs[EAX];
    lo = mulu32(a, src);
    let hi = mulHigh;
    if (signed) {
      if (a < 0) hi = (hi - src) | 0;
      if ((src | 0) < 0) hi = (hi - a) | 0;
      over = hi !== (lo >> 31);
    } else over = hi !== 0;
    regs[EAX] = lo;
    regs[EDX] = hi;
  }
  cpu.result(lo, size - 1, over ? CF | OF : 0);
}

/** Two- and three-operand IMUL: the truncated signed product; CF = OF = it overflowed. */
export function imul2(cpu: CPU, a: number, b: number, o16: boolean): number {
  if (o16) {
    const p = ((a << 16) >> 16) * ((b << 16) >> 16);
    const r = p & 0xffff;
    return cpu.result(r, 15, p !== ((r << 16) >> 16) ? CF | OF : 0);
  }
  const r = Math.imul(a, b);
  return cpu.result(r, 31, (a | 0) * (b | 0) !== r ? CF | OF : 0);
}

/** DIV/IDIV (F6/F7 /6 /7). Raises #DE on a zero divisor or a quotient that does not fit. */
export function divide(cpu: CPU, src: number, size: number, signed: boolean): void {
  const regs = cpu.regs;
  if (size === 8) {
    const n = cpu.regs16[0];
    if (src === 0) cpu.fault(Vec.DE);
    let q: number, r: number;
    if (signed) {
      const sn = (n << 16) >> 16, sd = (src << 24) >> 24;
      q = Math.trunc(sn / sd);
      r = sn - q * sd;
      if (q > 127 || q < -128) cpu.fault(Vec.DE);
    } else {
      q = Math.floor(n / src);
      r = n - q * src;
      if (q > 0xff) cpu.fault(Vec.DE);
    }
    cpu.regs8[0] = q & 0xff;
    cpu.regs8[1] = r & 0xff;
    return;
  }
  if (size === 16) {
    const n = (cpu.regs16[EDX << 1] << 16) | cpu.regs16[0];
    if (src === 0) cpu.fault(Vec.DE);
    let q: number, r: number;
    if (signed) {
      const sd = (src << 16) >> 16;
      q = Math.trunc(n / sd);
      r = n - q * sd;
      if (q > 32767 || q < -32768) cpu.fault(Vec.DE);
    } else {
      const un = n >>> 0;
      q = Math.floor(un / src);
      r = un - q * src;
      if (q > 0xffff) cpu.fault(Vec.DE);
    }
    cpu.regs16[0] = q & 0xffff;
    cpu.regs16[EDX << 1] = r & 0xffff;
    return;
  }
  const hi = regs[EDX], lo = regs[EAX];
  if (src === 0) cpu.fault(Vec.DE);
  if (!signed) {
    const d = src >>> 0;
    if ((hi >>> 0) >= d) cpu.fault(Vec.DE);
    divu64(hi >>> 0, lo >>> 0, d);
    regs[EAX] = divQ | 0;
    regs[EDX] = divR | 0;
    return;
  }
  // Signed: divide magnitudes, then fix signs and range-check the quotient.
  const neg = hi < 0;
  let mh = hi >>> 0, ml = lo >>> 0;
  if (neg) {
    ml = (~ml + 1) >>> 0;
    mh = (~mh + (ml === 0 ? 1 : 0)) >>> 0;
  }
  const sd = src | 0;
  const md = Math.abs(sd);
  if (mh >= md) cpu.fault(Vec.DE);
  divu64(mh, ml, md);
  const qneg = neg !== (sd < 0);
  const q = qneg ? -divQ : divQ;
  if (q > 0x7fffffff || q < -0x80000000) cpu.fault(Vec.DE);
  regs[EAX] = q | 0;
  regs[EDX] = (neg ? -divR : divR) | 0;
}

let divQ = 0, divR = 0;

/** Unsigned (hi:lo) / d with hi < d: quotient in divQ, remainder in divR (exact, no BigInt). */
function divu64(hi: number, lo: number, d: number): void {
  if (hi === 0) {
    divQ = Math.floor(lo / d);
    divR = lo - divQ * d;
    return;
  }
  // Two 16-bit long-division steps keep every intermediate below 2^48.
  let n = hi * 65536 + (lo >>> 16);
  const q1 = Math.floor(n / d);
  let r = n - q1 * d;
  n = r * 65536 + (lo & 0xffff);
  const q0 = Math.floor(n / d);
  r = n - q0 * d;
  divQ = q1 * 65536 + q0;
  divR = r;
}

/**
 * BT/BTS/BTR/BTC. kind: 0 BT, 1 BTS, 2 BTR, 3 BTC. `src` -1: bit offset from the
 * ModRM reg register (may reach outside the addressed word); -2: imm8 (taken modulo size).
 */
export function bitOp(cpu: CPU, m: number, kind: number, src: number): void {
  const o16 = (cpu.pfx & P_O16) !== 0;
  const size = o16 ? 16 : 32;
  let v: number, bit: number, a = 0;
  const isMem = m < 0xc0;
  if (isMem) {
    a = cpu.modrmAddr(m);
    if (src === -2) bit = cpu.fetch8() & (size - 1);
    else {
      const r = (m >> 3) & 7;
      const off = o16 ? (cpu.regs16[r << 1] << 16) >> 16 : cpu.regs[r];
      if (o16) a = (a + ((off >> 4) << 1)) | 0;
      else a = (a + ((off >> 5) << 2)) | 0;
      bit = off & (size - 1);
    }
    if (kind !== 0) cpu.checkEaWrite();
    v = kind === 0 ? (o16 ? cpu.read16(a) : cpu.read32(a)) : o16 ? cpu.readW16(a) : cpu.readW32(a);
  } else {
    bit = src === -2 ? cpu.fetch8() & (size - 1) : cpu.regs[(m >> 3) & 7] & (size - 1);
    v = o16 ? cpu.regs16[(m & 7) << 1] : cpu.regs[m & 7];
  }
  const cf = (v >>> bit) & 1;
  if (kind !== 0) {
    const b = 1 << bit;
    const nv = kind === 1 ? v | b : kind === 2 ? v & ~b : v ^ b;
    if (isMem) {
      if (o16) cpu.write16(a, nv);
      else cpu.write32(a, nv);
    } else if (o16) cpu.regs16[(m & 7) << 1] = nv;
    else cpu.regs[m & 7] = nv;
  }
  cpu.setFlagBits(CF, cf);
}

/** BSF: index of the lowest set bit, or -1 (ZF = 1, destination unchanged) for 0. */
export function bsf(cpu: CPU, v: number): number {
  if (v === 0) {
    cpu.setFlagBits(ZF, ZF);
    return -1;
  }
  cpu.setFlagBits(ZF, 0);
  return 31 - Math.clz32(v & -v);
}

/** BSR: index of the highest set bit, or -1 (ZF = 1, destination unchanged) for 0. */
export function bsr(cpu: CPU, v: number, _size: number): number {
  if (v === 0) {
    cpu.setFlagBits(ZF, ZF);
    return -1;
  }
  cpu.setFlagBits(ZF, 0);
  return 31 - Math.clz32(v);
}

/** DAA (das = false) and DAS (das = true), as the SDM's pseudocode gives them. */
export function daaDas(cpu: CPU, das: boolean): void {
  const al = cpu.regs8[0];
  const cf = cpu.getCF(), af = cpu.getAF();
  let r = al, ncf = 0, naf = 0;
  if ((al & 0xf) > 9 || af !== 0) {
    r = das ? al - 6 : al + 6;
    ncf = cf | (r < 0 || r > 0xff ? 1 : 0);
    r &= 0xff;
    naf = AF;
  }
  if (al > 0x99 || cf !== 0) {
    r = (das ? r - 0x60 : r + 0x60) & 0xff;
    ncf = 1;
  } else if (!das) ncf = 0; // DAA clears CF here; DAS keeps the borrow from the first step
  cpu.regs8[0] = r;
  cpu.result(r, 7, ncf | naf);
}

/** AAA (aas = false) and AAS (aas = true). */
export function asciiAdjust(cpu: CPU, aas: boolean): void {
  const al = cpu.regs8[0];
  if ((al & 0xf) > 9 || cpu.getAF() !== 0) {
    if (aas) {
      cpu.regs16[0] = (cpu.regs16[0] - 6) & 0xffff;
      cpu.regs8[1] = (cpu.regs8[1] - 1) & 0xff;
    } else cpu.regs16[0] = (cpu.regs16[0] + 0x106) & 0xffff;
    cpu.regs8[0] &= 0xf;
    cpu.setFlagBits(AF | CF, AF | CF);
  } else {
    cpu.regs8[0] &= 0xf;
    cpu.setFlagBits(AF | CF, 0);
  }
}

/** AAM imm8: AH = AL / base, AL = AL % base; #DE for base 0. */
export function aam(cpu: CPU, base: number): void {
  if (base === 0) cpu.fault(Vec.DE);
  const al = cpu.regs8[0];
  cpu.regs8[1] = Math.floor(al / base);
  const r = al % base;
  cpu.regs8[0] = r;
  cpu.result(r, 7, 0);
}

/** AAD imm8: AL = AL + AH × base, AH = 0. */
export function aad(cpu: CPU, base: number): void {
  const r = (cpu.regs8[0] + cpu.regs8[1] * base) & 0xff;
  cpu.regs16[0] = r;
  cpu.result(r, 7, 0);
}
