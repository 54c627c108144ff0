/**
 * Generators for the integer instruction classes of the oracle corpus.
 *
 * Every generator adds one or more instructions to a {@link CaseBuilder}:
 * choosing an encoding (operand size, ModRM/SIB form, prefixes), giving the
 * registers and memory it touches interesting values, and declaring the
 * instruction's flag effects, including the flags the Intel SDM leaves
 * undefined (see README.md for the rules and their sources). The same builders
 * serve single-instruction classes and the random sequences of the `seq` class;
 * in sequence mode memory operands are restricted to addresses that no
 * instruction of the sequence can move (EBP- and ESP-relative, absolute), so a
 * sequence can never reach memory outside the mapped regions except on purpose.
 *
 * @module
 */

import {
  AF,
  ALL6,
  CaseBuilder,
  CF,
  DF,
  EAX,
  EBP,
  EBX,
  ECX,
  EDI,
  EDX,
  ESI,
  ESP,
  fx,
  hexs,
  hx,
  inRegion,
  type Insn,
  interesting,
  type MemRef,
  OF,
  PF,
  pushLE,
  type Rng,
  SF,
  widthMask,
  ZF,
} from "./gen_lib.ts";
import { DATA_BASE, DATA_SIZE, LOW_BASE, LOW_SIZE } from "./fixture.ts";

const R8 = ["al", "cl", "dl", "bl", "ah", "ch", "dh", "bh"];
const R16 = ["ax", "cx", "dx", "bx", "sp", "bp", "si", "di"];
const R32 = ["eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi"];
const ALU_NAMES = ["add", "or", "adc", "sbb", "and", "sub", "xor", "cmp"];
const SHIFT_NAMES = ["rol", "ror", "rcl", "rcr", "shl", "shr", "sal", "sar"];
const CC = ["o", "no", "b", "ae", "e", "ne", "be", "a", "s", "ns", "p", "np", "l", "ge", "le", "g"];

/** Name of register `reg` at width `w`. */
export function rname(reg: number, w: number): string {
  return w === 8 ? R8[reg] : w === 16 ? R16[reg] : R32[reg];
}

/** Flags condition code `cc` reads. */
export function ccReads(cc: number): number {
  return [OF, CF, ZF, CF | ZF, SF, PF, SF | OF, ZF | SF | OF][cc >> 1];
}

/** Flags effect of ALU op 0..7 (ADD OR ADC SBB AND SUB XOR CMP). */
function aluFx(op: number) {
  switch (op) {
    case 1:
    case 4:
    case 6:
      return fx(0, ALL6 & ~AF, AF); // logic: AF undefined (SDM AND/OR/XOR "Flags Affected")
    case 2:
    case 3:
      return fx(CF, ALL6, 0);
    default:
      return fx(0, ALL6, 0);
  }
}

/** Options shared by the builders. */
export interface GenCtx {
  /** Sequence mode: restricted registers and memory forms. */
  seq: boolean;
}

/** Random operand width with the given weights for 8/16/32. */
function width(r: Rng, w8 = 3, w16 = 2, w32 = 5): 8 | 16 | 32 {
  const k = r.int(w8 + w16 + w32);
  return k < w8 ? 8 : k < w8 + w16 ? 16 : 32;
}

/** Operand-size prefix bytes for width `w` (none for 8/32). */
function osz(w: number): number[] {
  return w === 16 ? [0x66] : [];
}

/** A register number usable as an operand in this context. */
function pickReg(b: CaseBuilder, ctx: GenCtx, w = 32): number {
  if (!ctx.seq) return b.r.int(8);
  // In sequences ESP and EBP (and SPL/BPL aliases AH.. are fine for 8-bit) are off limits.
  if (w === 8) return b.r.int(8);
  return b.r.pick([EAX, ECX, EDX, EBX, ESI, EDI]);
}

/** Make sure register `reg` (at width `w`) holds an interesting value. */
function regValue(b: CaseBuilder, reg: number, w: number): void {
  const r = b.r;
  if (w === 8) {
    const full = reg & 3, hi = reg >= 4;
    if (b.pinned[full]) return;
    let v = r.u32();
    const x = interesting(r, 8);
    v = hi ? (v & ~0xff00) | (x << 8) : (v & ~0xff) | x;
    b.pin(full, v);
    return;
  }
  if (b.pinned[reg]) return;
  const x = interesting(r, w);
  b.pin(reg, w === 16 ? ((r.u32() & 0xffff0000) | x) >>> 0 : x);
}

/** Set register `reg`'s `w`-bit part to `v` (pinning it). */
function setRegPart(b: CaseBuilder, reg: number, w: number, v: number): void {
  if (w === 8) {
    const full = reg & 3, sh = reg >= 4 ? 8 : 0;
    const cur = b.pinned[full] ? b.regs[full] : b.r.u32();
    b.pin(full, ((cur & ~(0xff << sh)) | ((v & 0xff) << sh)) >>> 0);
  } else if (w === 16) {
    const cur = b.pinned[reg] ? b.regs[reg] : b.r.u32();
    b.pin(reg, ((cur & 0xffff0000) | (v & 0xffff)) >>> 0);
  } else b.pin(reg, v >>> 0);
}

/** Read register `reg`'s `w`-bit part (must be pinned). */
function regPart(b: CaseBuilder, reg: number, w: number): number {
  if (w === 8) return (b.regs[reg & 3] >>> (reg >= 4 ? 8 : 0)) & 0xff;
  return b.regs[reg] & widthMask(w);
}

/** A ModRM operand: register or memory. */
export interface RM {
  /** Prefixes it needs (0x67, segment override). */
  pfx: number[];
  /** ModRM and following bytes. */
  bytes: number[];
  /** Text. */
  text: string;
  /** Memory reference when it is one. */
  mem?: MemRef;
  /** Register number when it is one. */
  reg?: number;
}

/** Options for {@link rmOperand}. */
interface RmOpts {
  /** Probability of a memory operand (default 0.6). */
  memRate?: number;
  /** Operand bytes in memory (default w/8). */
  size?: number;
  /** Naturally align memory operands (locked accesses). */
  align?: boolean;
  /** Probability of 16-bit addressing (default 0.12). */
  a16Rate?: number;
  /** Probability of an unmapped address (default 0.03). */
  wildRate?: number;
  /** Don't give memory an interesting value (caller sets it). */
  noValue?: boolean;
  /** Allow CS overrides (default true: a write through CS raises #GP). */
  noCs?: boolean;
  /** Registers the address may not use. */
  avoid?: number[];
}

/** Random segment-override prefixes for a memory operand. */
function segPrefix(r: Rng, noCs = false): number[] {
  if (!r.chance(0.2)) return [];
  const segs = noCs ? [0x26, 0x36, 0x3e] : [0x26, 0x36, 0x3e, 0x26, 0x36, 0x3e, 0x2e];
  const p = [r.pick(segs)];
  if (r.chance(0.15)) p.unshift(r.pick([0x26, 0x36, 0x3e])); // redundant: the last one wins
  return p;
}

/** Build a ModRM operand of width `w` with reg field `reg3`. */
export function rmOperand(
  b: CaseBuilder,
  ctx: GenCtx,
  reg3: number,
  w: number,
  o: RmOpts = {},
): RM {
  const r = b.r;
  if (!r.chance(o.memRate ?? 0.6)) {
    const rr = pickReg(b, ctx, w);
    regValue(b, rr, w);
    return { pfx: [], bytes: [0xc0 | (reg3 << 3) | rr], text: rname(rr, w), reg: rr };
  }
  const size = o.size ?? w / 8;
  let m: MemRef;
  const pfx: number[] = [];
  if (ctx.seq) {
    m = seqMem(b, reg3, size);
  } else {
    const a16 = r.chance(o.a16Rate ?? 0.12);
    if (a16) pfx.push(0x67);
    m = b.memOp(reg3, { size, a16, wildRate: o.wildRate, avoid: o.avoid });
    if (o.align && !m.wild && (m.addr % size) !== 0) {
      // Re-place at an aligned address (split locks can trap on some hosts).
      const t = m.addr - (m.addr % size);
      m = b.memOp(reg3, { size, a16, target: t, wildRate: 0, avoid: o.avoid });
    }
  }
  pfx.push(...segPrefix(r, o.noCs || ctx.seq));
  if (!o.noValue && !m.wild) {
    for (let i = 0; i < size; i += 4) {
      b.setMem(m.addr + i, interesting(r, Math.min(32, (size - i) * 8)), Math.min(4, size - i));
    }
  }
  return { pfx, bytes: m.bytes, text: `${sizeName(size)} ${m.text}`, mem: m };
}

function sizeName(size: number): string {
  return ({ 1: "byte", 2: "word", 4: "dword", 6: "fword", 8: "qword", 10: "tbyte" } as Record<
    number,
    string
  >)[
    size
  ] ?? `${size}b`;
}

/** Memory operand in sequence mode: [ebp+d8], [ebp+d32], [esp+d8], [disp32]. */
function seqMem(b: CaseBuilder, reg3: number, size: number): MemRef {
  const r = b.r;
  const k = r.int(4);
  const ebp = b.regs[EBP];
  if (k === 0) {
    const d = r.range(-128, 127 - size);
    return {
      bytes: [0x45 | (reg3 << 3), d & 0xff],
      addr: (ebp + d) >>> 0,
      text: `[ebp${hexs(d, 1)}]`,
      wild: false,
    };
  }
  if (k === 1) {
    const d = r.range(-0x3000, 0x3000);
    const bytes = [0x85 | (reg3 << 3)];
    pushLE(bytes, d, 4);
    return { bytes, addr: (ebp + d) >>> 0, text: `[ebp+${hexs(d, 4)}]`, wild: false };
  }
  if (k === 2) {
    const d = r.range(0, 120) & ~(r.chance(0.7) ? 3 : 0);
    return {
      bytes: [0x44 | (reg3 << 3), 0x24, d],
      addr: (b.regs[ESP] + d) >>> 0,
      text: `[esp+${hx(d)}]`,
      wild: false,
    };
  }
  const a = DATA_BASE + 0x100 + r.int(0x6000);
  const bytes = [0x05 | (reg3 << 3)];
  pushLE(bytes, a, 4);
  return { bytes, addr: a, text: `[${hx(a)}]`, wild: false };
}

/** Randomly order prefix groups and flatten them. */
function prefixes(r: Rng, ...groups: number[][]): number[] {
  const g = groups.filter((x) => x.length);
  for (let i = g.length - 1; i > 0; i--) {
    const j = r.int(i + 1);
    [g[i], g[j]] = [g[j], g[i]];
  }
  return g.flat();
}

function pfxText(p: number[]): string {
  return p.length ? `{${p.map((x) => x.toString(16)).join(" ")}} ` : "";
}

/** Immediate bytes of width `w`. */
function imm(v: number, w: number): number[] {
  const o: number[] = [];
  pushLE(o, v, w / 8);
  return o;
}

// ------------------------------------------------------------------ ALU

/** ALU forms: 00-3F, 80-83, 84/85, A8/A9, F6/F7 /0-3, INC/DEC 40-4F and FE/FF /0 /1. */
export function genAlu(b: CaseBuilder, ctx: GenCtx): void {
  const r = b.r;
  const w = width(r);
  const form = r.int(ctx.seq ? 8 : 9);
  const op = r.int(8);
  const os = osz(w);
  const wbit = w === 8 ? 0 : 1;
  switch (form) {
    case 0: // op r/m, r
    case 1: { // op r, r/m
      const reg = pickReg(b, ctx, w);
      regValue(b, reg, w);
      const m = rmOperand(b, ctx, reg, w);
      const opc = op * 8 + form * 2 + wbit;
      const p = prefixes(r, os, m.pfx);
      const t = form === 0 ? `${m.text}, ${rname(reg, w)}` : `${rname(reg, w)}, ${m.text}`;
      b.add({
        bytes: [...p, opc, ...m.bytes],
        text: `${pfxText(p)}${ALU_NAMES[op]} ${t}`,
        ...aluFx(op),
      });
      return;
    }
    case 2: { // op AL/eAX, imm
      regValue(b, EAX, w);
      const v = interesting(r, w);
      b.add({
        bytes: [...os, op * 8 + 4 + wbit, ...imm(v, w)],
        text: `${ALU_NAMES[op]} ${rname(0, w)}, ${hx(v)}`,
        ...aluFx(op),
      });
      return;
    }
    case 3: { // 80/81/82/83 /op
      const m = rmOperand(b, ctx, op, w);
      let opc: number, iv: number[], t: string;
      if (w === 8) {
        opc = r.chance(0.1) && !ctx.seq ? 0x82 : 0x80;
        const v = interesting(r, 8);
        iv = [v];
        t = hx(v);
      } else if (r.chance(0.5)) {
        opc = 0x83;
        const v = interesting(r, 8);
        iv = [v];
        t = hexs(v, 1);
      } else {
        opc = 0x81;
        const v = interesting(r, w);
        iv = imm(v, w);
        t = hx(v);
      }
      const p = prefixes(r, os, m.pfx);
      b.add({
        bytes: [...p, opc, ...m.bytes, ...iv],
        text: `${pfxText(p)}${ALU_NAMES[op]} ${m.text}, ${t}`,
        ...aluFx(op),
      });
      return;
    }
    case 4: { // F6/F7 /0 /1 TEST imm, /2 NOT, /3 NEG
      const sub = r.pick([0, 0, 1, 2, 3, 3]);
      const m = rmOperand(b, ctx, sub, w);
      const p = prefixes(r, os, m.pfx);
      if (sub <= 1) {
        const v = interesting(r, w);
        b.add({
          bytes: [...p, 0xf6 + wbit, ...m.bytes, ...imm(v, w)],
          text: `${pfxText(p)}test${sub ? "(/1)" : ""} ${m.text}, ${hx(v)}`,
          ...fx(0, ALL6 & ~AF, AF),
        });
      } else {
        b.add({
          bytes: [...p, 0xf6 + wbit, ...m.bytes],
          text: `${pfxText(p)}${sub === 2 ? "not" : "neg"} ${m.text}`,
          ...(sub === 2 ? fx(0, 0, 0) : fx(0, ALL6, 0)),
        });
      }
      return;
    }
    case 5: { // TEST r/m, r / TEST AL/eAX, imm
      if (r.chance(0.6)) {
        const reg = pickReg(b, ctx, w);
        regValue(b, reg, w);
        const m = rmOperand(b, ctx, reg, w);
        const p = prefixes(r, os, m.pfx);
        b.add({
          bytes: [...p, 0x84 + wbit, ...m.bytes],
          text: `${pfxText(p)}test ${m.text}, ${rname(reg, w)}`,
          ...fx(0, ALL6 & ~AF, AF),
        });
      } else {
        regValue(b, EAX, w);
        const v = interesting(r, w);
        b.add({
          bytes: [...os, 0xa8 + wbit, ...imm(v, w)],
          text: `test ${rname(0, w)}, ${hx(v)}`,
          ...fx(0, ALL6 & ~AF, AF),
        });
      }
      return;
    }
    case 6: { // INC/DEC
      const dec = r.int(2);
      if (w !== 8 && r.chance(0.5)) {
        const reg = pickReg(b, ctx, w);
        regValue(b, reg, w);
        b.add({
          bytes: [...os, 0x40 + dec * 8 + reg],
          text: `${dec ? "dec" : "inc"} ${rname(reg, w)}`,
          ...fx(0, ALL6 & ~CF, 0),
        });
      } else {
        const m = rmOperand(b, ctx, dec, w);
        const p = prefixes(r, os, m.pfx);
        b.add({
          bytes: [...p, 0xfe + wbit, ...m.bytes],
          text: `${pfxText(p)}${dec ? "dec" : "inc"} ${m.text}`,
          ...fx(0, ALL6 & ~CF, 0),
        });
      }
      return;
    }
    case 7: { // reg,reg forms with 8-bit high registers and the 02/03 direction
      const reg = pickReg(b, ctx, w), rr = pickReg(b, ctx, w);
      regValue(b, reg, w);
      regValue(b, rr, w);
      const dir = r.int(2) * 2;
      b.add({
        bytes: [...os, op * 8 + dir + wbit, 0xc0 | (reg << 3) | rr],
        text: `${ALU_NAMES[op]} ${dir ? rname(reg, w) : rname(rr, w)}, ${
          dir ? rname(rr, w) : rname(reg, w)
        }`,
        ...aluFx(op),
      });
      return;
    }
    default: { // LOCK forms (valid on memory destinations, #UD otherwise)
      genLock(b, ctx, w);
    }
  }
}

/** LOCK-prefixed forms; invalid ones (register destination, CMP, op r,r/m) raise #UD. */
function genLock(b: CaseBuilder, ctx: GenCtx, w: number): void {
  const r = b.r;
  const os = osz(w), wbit = w === 8 ? 0 : 1;
  const valid = r.chance(0.75);
  const kind = r.int(4);
  const memRate = valid ? 1 : 0.5;
  let op = r.int(7); // not CMP
  if (!valid && r.chance(0.3)) op = 7;
  const bad = !valid && op !== 7 ? "" : "";
  void bad;
  if (kind === 0) {
    const reg = pickReg(b, ctx, w);
    regValue(b, reg, w);
    const m = rmOperand(b, ctx, reg, w, { memRate, align: true, noCs: true, wildRate: 0 });
    const dir = !valid && r.chance(0.3) ? 2 : 0;
    const p = prefixes(r, [0xf0], os, m.pfx);
    b.add({
      bytes: [...p, op * 8 + dir + wbit, ...m.bytes],
      text: `${pfxText(p)}${ALU_NAMES[op]} ${m.text}, ${rname(reg, w)}`,
      ...aluFx(op),
    });
  } else if (kind === 1) {
    const m = rmOperand(b, ctx, op, w, { memRate, align: true, noCs: true, wildRate: 0 });
    const v = interesting(r, 8);
    const p = prefixes(r, [0xf0], os, m.pfx);
    b.add({
      bytes: [...p, w === 8 ? 0x80 : 0x83, ...m.bytes, v],
      text: `${pfxText(p)}${ALU_NAMES[op]} ${m.text}, ${hx(v)}`,
      ...aluFx(op),
    });
  } else if (kind === 2) {
    const sub = r.pick([2, 3, valid ? 2 : 0]);
    const m = rmOperand(b, ctx, sub, w, { memRate, align: true, noCs: true, wildRate: 0 });
    const p = prefixes(r, [0xf0], os, m.pfx);
    const tail = sub === 0 ? imm(interesting(r, w), w) : [];
    b.add({
      bytes: [...p, 0xf6 + wbit, ...m.bytes, ...tail],
      text: `${pfxText(p)}${["test", "", "not", "neg"][sub]} ${m.text}`,
      ...(sub === 2 ? fx(0, 0, 0) : sub === 3 ? fx(0, ALL6, 0) : fx(0, ALL6 & ~AF, AF)),
    });
  } else {
    const dec = r.int(2);
    const m = rmOperand(b, ctx, dec, w, { memRate, align: true, noCs: true, wildRate: 0 });
    const p = prefixes(r, [0xf0], os, m.pfx);
    b.add({
      bytes: [...p, 0xfe + wbit, ...m.bytes],
      text: `${pfxText(p)}${dec ? "dec" : "inc"} ${m.text}`,
      ...fx(0, ALL6 & ~CF, 0),
    });
  }
}

// ------------------------------------------------------------------ shifts

/** Flag effect of shift/rotate `op` (/0../7) at width `w` with raw count `raw`. */
export function shiftFx(
  op: number,
  w: number,
  raw: number,
): Pick<Insn, "reads" | "writes" | "undef"> {
  const c = raw & 31;
  const rc = op === 2 || op === 3 ? CF : 0;
  if (c === 0) return fx(0, 0, 0); // masked count 0: flags unaffected
  const of1 = c === 1 ? OF : 0, ofu = c === 1 ? 0 : OF;
  if (op <= 1) return fx(0, CF | of1, ofu); // ROL/ROR: CF, OF for count 1 only
  if (op <= 3) return fx(rc, CF | of1, ofu); // RCL/RCR
  // SHL/SAL/SHR: CF undefined when count >= width; SAR: CF defined. AF undefined.
  const cfu = (op === 4 || op === 5 || op === 6) && c >= w ? CF : 0;
  return fx(0, (CF & ~cfu) | SF | ZF | PF | of1, cfu | ofu | AF);
}

/** A shift count biased to the edges. */
function shiftCount(r: Rng, w: number): number {
  return r.pick([
    0,
    1,
    1,
    w - 1,
    w,
    w + 1,
    31,
    32,
    33,
    63,
    255,
    r.int(32),
    r.int(32),
    r.int(256),
    2,
    7,
    8,
    9,
    16,
    17,
  ]) & 0xff;
}

/** C0/C1/D0-D3 shifts and rotates. */
export function genShift(b: CaseBuilder, ctx: GenCtx): void {
  const r = b.r;
  const w = width(r);
  const os = osz(w), wbit = w === 8 ? 0 : 1;
  const op = r.int(8);
  const form = r.int(3); // 0 imm8, 1 by 1, 2 by CL
  let count = 1, cntBytes: number[] = [], opc: number, ctext: string;
  if (form === 0) {
    count = shiftCount(r, w);
    opc = 0xc0 + wbit;
    cntBytes = [count];
    ctext = hx(count);
  } else if (form === 1) {
    opc = 0xd0 + wbit;
    ctext = "1";
  } else {
    opc = 0xd2 + wbit;
    count = shiftCount(r, w);
    if (ctx.seq) {
      // In a sequence CL may have changed: be conservative, assume any count.
      count = -1;
    } else setRegPart(b, ECX, 8, count);
    ctext = "cl";
  }
  // CL was pinned first: a destination in ECX keeps that count in its low byte.
  const m = rmOperand(b, ctx, op, w);
  const p = prefixes(r, os, m.pfx);
  const f = count < 0
    ? fx(op === 2 || op === 3 ? CF : 0, 0, op <= 3 ? CF | OF : ALL6) // unknown count: anything may be undefined
    : shiftFx(op, w, count);
  b.add({
    bytes: [...p, opc, ...m.bytes, ...cntBytes],
    text: `${pfxText(p)}${SHIFT_NAMES[op]} ${m.text}, ${ctext}`,
    ...f,
  });
}

/** SHLD/SHRD (0F A4/A5/AC/AD); 16-bit counts above 16 are left out (result undefined). */
export function genShld(b: CaseBuilder, ctx: GenCtx): void {
  const r = b.r;
  const w = r.chance(0.35) ? 16 : 32;
  const right = r.int(2);
  // In a sequence CL may have changed, and a 16-bit count above 16 is undefined: no CL forms there.
  const byCl = ctx.seq ? 0 : r.int(2);
  let count = r.pick([0, 1, 1, 2, w - 1, w, 31, 32, 33, r.int(32), r.int(256), 8, 15, 16, 17]);
  if (w === 16) {
    while ((count & 31) > 16) {
      count = r.int(17) + (r.chance(0.3) ? 32 * r.int(8) : 0);
    }
  }
  const reg = pickReg(b, ctx, w);
  // CL is chosen first; if the register operands include ECX they keep that low byte.
  if (byCl) setRegPart(b, ECX, 8, count);
  regValue(b, reg, w);
  const m = rmOperand(b, ctx, reg, w);
  const c = count & 31;
  const p = prefixes(r, osz(w), m.pfx);
  const opc = 0xa4 + (right ? 8 : 0) + byCl;
  const f = c === 0
    ? fx(0, 0, 0)
    : fx(0, CF | SF | ZF | PF | (c === 1 ? OF : 0), AF | (c === 1 ? 0 : OF));
  b.add({
    bytes: [...p, 0x0f, opc, ...m.bytes, ...(byCl ? [] : [count & 0xff])],
    text: `${pfxText(p)}${right ? "shrd" : "shld"} ${m.text}, ${rname(reg, w)}, ${
      byCl ? "cl" : hx(count)
    }`,
    ...f,
  });
}

// ------------------------------------------------------------------ multiply / divide

/** MUL/IMUL (F6/F7 /4 /5, 0F AF, 69, 6B) and DIV/IDIV (F6/F7 /6 /7) including #DE. */
export function genMulDiv(b: CaseBuilder, ctx: GenCtx): void {
  const r = b.r;
  const k = r.int(10);
  if (k < 4) {
    const w = width(r);
    const sub = r.chance(0.5) ? 4 : 5;
    regValue(b, EAX, w);
    const m = rmOperand(b, ctx, sub, w);
    const p = prefixes(r, osz(w), m.pfx);
    b.add({
      bytes: [...p, w === 8 ? 0xf6 : 0xf7, ...m.bytes],
      text: `${pfxText(p)}${sub === 4 ? "mul" : "imul"} ${m.text}`,
      ...fx(0, CF | OF, SF | ZF | AF | PF),
    });
    return;
  }
  if (k < 6) {
    const w = r.chance(0.3) ? 16 : 32;
    const reg = pickReg(b, ctx, w);
    regValue(b, reg, w);
    const m = rmOperand(b, ctx, reg, w);
    const p = prefixes(r, osz(w), m.pfx);
    const form = r.int(3);
    let tail: number[] = [], opc: number[], t = "";
    if (form === 0) opc = [0x0f, 0xaf];
    else if (form === 1) {
      opc = [0x69];
      const v = interesting(r, w);
      tail = imm(v, w);
      t = `, ${hx(v)}`;
    } else {
      opc = [0x6b];
      const v = interesting(r, 8);
      tail = [v];
      t = `, ${hexs(v, 1)}`;
    }
    b.add({
      bytes: [...p, ...opc, ...m.bytes, ...tail],
      text: `${pfxText(p)}imul ${rname(reg, w)}, ${m.text}${t}`,
      ...fx(0, CF | OF, SF | ZF | AF | PF),
    });
    return;
  }
  // DIV / IDIV.
  const w = width(r, 3, 3, 4);
  const signed = r.int(2);
  const sub = 6 + signed;
  const m = rmOperand(b, ctx, sub, w, { noValue: true, avoid: [EAX, EDX] });
  const mask = widthMask(w);
  // Divisor.
  let d: number;
  const kind = r.int(8); // 0: zero divisor, 1: quotient overflow, else valid
  if (kind === 0) d = 0;
  else {d = r.chance(0.5)
      ? interesting(r, w)
      : (r.range(1, 1000) * (signed && r.chance(0.5) ? -1 : 1)) & mask;}
  if (d === 0 && kind !== 0) d = 1;
  if (m.mem) {
    if (!m.mem.wild) b.setMem(m.mem.addr, d, w / 8);
  } else setRegPart(b, m.reg!, w, d);
  if (m.reg !== undefined) d = regPart(b, m.reg, w); // the divisor may share a register with the dividend
  if (!ctx.seq) {
    // Dividend: quotient q and remainder chosen, or a random value for overflow.
    const big = BigInt;
    const W = big(w);
    const sx = (v: bigint, bits: bigint) => BigInt.asIntN(Number(bits), v);
    let dividend: bigint;
    if (kind === 1 || d === 0) {
      dividend = big(r.u32()) << 32n | big(r.u32());
    } else {
      const dv = signed ? sx(big(d), W) : big(d);
      const qmax = signed ? (1n << (W - 1n)) - 1n : (1n << W) - 1n;
      let q = big(r.u32()) % (qmax + 1n);
      if (r.chance(0.3)) q = big(r.int(100));
      if (signed && r.chance(0.5)) q = -q;
      const ad = dv < 0n ? -dv : dv;
      let rem = ad > 1n ? big(r.u32()) % ad : 0n;
      if (signed && ((q < 0n) !== (dv < 0n) ? true : false) && r.chance(0.5)) rem = -rem;
      if (signed && q === 0n && r.chance(0.5)) rem = -rem;
      dividend = q * dv + rem;
    }
    const dm = (1n << (2n * W)) - 1n;
    dividend &= dm;
    if (w === 8) setRegPart(b, EAX, 16, Number(dividend));
    else {
      setRegPart(b, EAX, w, Number(dividend & big(mask)));
      setRegPart(b, EDX, w, Number(dividend >> W));
    }
    if (m.reg !== undefined) {
      // Re-read the divisor: it may alias AL/AH/DX.
      d = regPart(b, m.reg, w);
    }
  }
  const p = prefixes(r, osz(w), m.pfx);
  b.add({
    bytes: [...p, w === 8 ? 0xf6 : 0xf7, ...m.bytes],
    text: `${pfxText(p)}${signed ? "idiv" : "div"} ${m.text}`,
    ...fx(0, 0, ALL6),
  });
}

// ------------------------------------------------------------------ bit operations

/** BT/BTS/BTR/BTC (register and immediate offsets), BSF/BSR. */
export function genBitOps(b: CaseBuilder, ctx: GenCtx): void {
  const r = b.r;
  const w = r.chance(0.3) ? 16 : 32;
  const op = r.int(4); // BT BTS BTR BTC
  const names = ["bt", "bts", "btr", "btc"];
  // Sequences leave out BSF/BSR (a zero source would leave a register undefined).
  const k = r.int(ctx.seq ? 7 : 10);
  const btFx = fx(0, CF, OF | SF | AF | PF);
  if (k < 4) {
    // Register bit offset. With a memory operand the offset is a signed bit
    // index that can reach far outside the addressed word.
    const reg = pickReg(b, ctx, w);
    const memForm = !ctx.seq && r.chance(0.6);
    let m: RM;
    if (memForm) {
      const bytesSpan = 0x6000;
      let off: number;
      const kk = r.int(4);
      if (kk === 0) off = r.int(w);
      else if (kk === 1) {
        off = w === 16 ? r.range(-0x8000, 0x7fff) : r.range(-bytesSpan * 8, bytesSpan * 8);
      } else if (kk === 2) off = -r.range(1, 64);
      else off = r.range(0, 256);
      const adj = w === 32 ? 4 * Math.floor(off / 32) : 2 * Math.floor(off / 16);
      setRegPart(b, reg, w, off);
      const fin = DATA_BASE + 0x100 + r.int(DATA_SIZE - 0x200);
      const ea = (fin - adj) >>> 0;
      const mr = b.memOp(reg, { size: w / 8, target: ea, wildRate: 0 });
      b.setMem(fin, interesting(r, w), w / 8);
      const pfx = segPrefix(r, true);
      m = { pfx, bytes: mr.bytes, text: `${w === 16 ? "word" : "dword"} ${mr.text}`, mem: mr };
      // The effective address may use the offset register itself: then the
      // offset is the address value; re-check the access stays in the region.
      const offNow = w === 16 ? (b.regs[reg] << 16) >> 16 : b.regs[reg] | 0;
      const adjNow = w === 32 ? 4 * Math.floor(offNow / 32) : 2 * Math.floor(offNow / 16);
      if (!inRegion((ea + adjNow) >>> 0, w / 8)) {
        // Start this case over with fresh registers.
        throw new Retry();
      }
    } else {
      regValue(b, reg, w);
      m = rmOperand(b, ctx, reg, w, { memRate: 0 });
    }
    const p = prefixes(r, osz(w), m.pfx);
    b.add({
      bytes: [...p, 0x0f, 0xa3 + op * 8, ...m.bytes],
      text: `${pfxText(p)}${names[op]} ${m.text}, ${rname(reg, w)}`,
      ...btFx,
    });
    return;
  }
  if (k < 7) {
    const m = rmOperand(b, ctx, 4 + op, w);
    const v = r.chance(0.5) ? r.int(w) : r.int(256);
    const p = prefixes(r, osz(w), m.pfx);
    b.add({
      bytes: [...p, 0x0f, 0xba, ...m.bytes, v],
      text: `${pfxText(p)}${names[op]} ${m.text}, ${hx(v)}`,
      ...btFx,
    });
    return;
  }
  // BSF / BSR: a zero source leaves the destination undefined (SDM) — masked.
  const rev = r.int(2);
  const reg = pickReg(b, ctx, w);
  regValue(b, reg, w);
  const m = rmOperand(b, ctx, reg, w, { noValue: true });
  const zero = r.chance(0.25);
  let src = zero ? 0 : interesting(r, w);
  if (!zero && src === 0) src = 1 << r.int(w);
  if (m.mem) {
    if (!m.mem.wild) b.setMem(m.mem.addr, src, w / 8);
  } else if (m.reg !== reg) setRegPart(b, m.reg!, w, src);
  else src = regPart(b, reg, w);
  const p = prefixes(r, osz(w), m.pfx);
  const ins: Insn = {
    bytes: [...p, 0x0f, 0xbc + rev, ...m.bytes],
    text: `${pfxText(p)}${rev ? "bsr" : "bsf"} ${rname(reg, w)}, ${m.text}`,
    ...fx(0, ZF, CF | OF | SF | AF | PF),
  };
  if (src === 0 || (m.mem?.wild ?? false)) ins.regUndef = [[reg, widthMask(w)]];
  b.add(ins);
}

/** Thrown by a generator to start its case over. */
export class Retry extends Error {
  constructor() {
    super("retry");
  }
}

// ------------------------------------------------------------------ BCD

/** DAA/DAS/AAA/AAS/AAM/AAD (AAM 0 → #DE). */
export function genBcd(b: CaseBuilder, _ctx: GenCtx): void {
  const r = b.r;
  const k = r.int(6);
  const al = r.chance(0.6)
    ? r.int(256)
    : r.pick([0, 9, 0x0a, 0x0f, 0x10, 0x99, 0x9a, 0x9f, 0xa0, 0xf9, 0xfa, 0xff]);
  const ah = r.int(256);
  setRegPart(b, EAX, 8, al);
  setRegPart(b, 4, 8, ah);
  switch (k) {
    case 0:
      b.add({ bytes: [0x27], text: "daa", ...fx(CF | AF, CF | AF | SF | ZF | PF, OF) });
      return;
    case 1:
      b.add({ bytes: [0x2f], text: "das", ...fx(CF | AF, CF | AF | SF | ZF | PF, OF) });
      return;
    case 2:
      b.add({ bytes: [0x37], text: "aaa", ...fx(AF, AF | CF, OF | SF | ZF | PF) });
      return;
    case 3:
      b.add({ bytes: [0x3f], text: "aas", ...fx(AF, AF | CF, OF | SF | ZF | PF) });
      return;
    case 4: {
      const base = r.pick([10, 10, 0, 16, 2, 7, 255, r.int(256)]);
      b.add({ bytes: [0xd4, base], text: `aam ${base}`, ...fx(0, SF | ZF | PF, OF | AF | CF) });
      return;
    }
    default: {
      const base = r.pick([10, 10, 0, 16, 2, 7, 255, r.int(256)]);
      b.add({ bytes: [0xd5, base], text: `aad ${base}`, ...fx(0, SF | ZF | PF, OF | AF | CF) });
    }
  }
}

// ------------------------------------------------------------------ strings

const STR = [
  { opc: 0xa4, name: "movs", src: true, dst: true, cmp: false },
  { opc: 0xa6, name: "cmps", src: true, dst: true, cmp: true },
  { opc: 0xaa, name: "stos", src: false, dst: true, cmp: false },
  { opc: 0xac, name: "lods", src: true, dst: false, cmp: false },
  { opc: 0xae, name: "scas", src: false, dst: true, cmp: true },
];

/** MOVS/CMPS/STOS/LODS/SCAS with REP/REPE/REPNE, both directions, 0x67 forms. */
export function genString(b: CaseBuilder, _ctx: GenCtx): void {
  const r = b.r;
  const s = r.pick(STR);
  const w = width(r, 4, 2, 4);
  const sz = w / 8;
  const a16 = r.chance(0.2);
  const df = r.chance(0.4);
  b.eflags = df ? b.eflags | DF : b.eflags & ~DF;
  const rep = r.pick([0, 0xf3, 0xf3, 0xf2, 0xf2, 0]);
  const count = r.pick([0, 1, 2, 3, r.int(8), r.int(41), r.int(41), r.int(100)]);
  const iters = rep ? count : 1;
  const span = Math.max(iters, 1) * sz;
  const wild = r.chance(0.05);
  // Place ESI/EDI with room for `span` bytes in the chosen direction.
  const place = (): number => {
    if (a16) {
      const lo = LOW_BASE + span + 0x10, hi = LOW_BASE + LOW_SIZE - span - 0x10;
      return r.range(lo, hi);
    }
    if (wild) {
      // Run off an edge of the data region partway through.
      return df
        ? DATA_BASE + r.int(Math.max(1, span))
        : DATA_BASE + DATA_SIZE - r.int(Math.max(1, span)) - 1;
    }
    return r.range(DATA_BASE + span + 0x10, DATA_BASE + DATA_SIZE - span - 0x10);
  };
  const si = place();
  let di = place();
  if (s.src && s.dst && r.chance(0.25) && !wild) di = si + r.range(-8, 8); // overlapping copies
  const hiBits = () => r.chance(0.5) ? r.u32() & 0xffff0000 : 0;
  if (a16) {
    b.pin(ESI, (hiBits() | (si & 0xffff)) >>> 0);
    b.pin(EDI, (hiBits() | (di & 0xffff)) >>> 0);
    b.pin(ECX, (hiBits() | (count & 0xffff)) >>> 0);
  } else {
    b.pin(ESI, si);
    b.pin(EDI, di);
    b.pin(ECX, rep ? count : r.chance(0.5) ? count : r.u32());
  }
  // Memory contents: for compares, equal runs with a difference somewhere.
  const step = df ? -sz : sz;
  const elem = (base: number, i: number) => base + i * step;
  const n = Math.max(iters, 1);
  const vals: number[] = [];
  for (let i = 0; i < n; i++) vals.push(r.chance(0.3) ? interesting(r, w) : r.u32() & widthMask(w));
  if (s.cmp) {
    const diffAt = r.chance(0.3) ? -1 : r.int(n);
    if (s.name === "cmps") {
      for (let i = 0; i < n; i++) {
        if (inRegion(elem(si, i), sz)) b.setMem(elem(si, i), vals[i], sz);
        const v = i === diffAt ? (vals[i] ^ (1 << r.int(w))) : vals[i];
        if (inRegion(elem(di, i), sz)) b.setMem(elem(di, i), v, sz);
      }
    } else {
      // SCAS: REPE wants equal elements, REPNE wants different ones.
      const acc = interesting(r, w);
      setRegPart(b, EAX, w, acc);
      for (let i = 0; i < n; i++) {
        let v = rep === 0xf2 ? vals[i] : acc;
        if (i === diffAt) v = rep === 0xf2 ? acc : (acc ^ (1 << r.int(w)));
        if (rep === 0xf2 && i !== diffAt && v === acc) v ^= 1;
        if (inRegion(elem(di, i), sz)) b.setMem(elem(di, i), v, sz);
      }
    }
  } else if (s.src) {
    for (let i = 0; i < n; i++) if (inRegion(elem(si, i), sz)) b.setMem(elem(si, i), vals[i], sz);
  }
  if (s.name === "stos") regValue(b, EAX, w);
  const seg = s.src ? segPrefix(r, true) : [];
  const p = prefixes(r, rep ? [rep] : [], osz(w), a16 ? [0x67] : [], seg);
  const executed = iters > 0;
  const f = s.cmp && executed ? fx(0, ALL6, 0) : fx(0, 0, 0);
  const repName = rep === 0xf3
    ? (s.cmp ? "repe " : "rep ")
    : rep === 0xf2
    ? (s.cmp ? "repne " : "repne(rep) ")
    : "";
  b.add({
    bytes: [...p, s.opc + (w === 8 ? 0 : 1)],
    text: `${pfxText(p)}${repName}${s.name}${w === 8 ? "b" : w === 16 ? "w" : "d"}${
      a16 ? " (a16)" : ""
    } ecx=${count} df=${df ? 1 : 0}`,
    ...f,
  });
}

// ------------------------------------------------------------------ data movement

/** MOV, MOVZX/MOVSX, CBW.., XCHG, XADD, CMPXCHG(8B), BSWAP, SETcc, CMOVcc, LEA. */
export function genMove(b: CaseBuilder, ctx: GenCtx): void {
  const r = b.r;
  const k = r.int(ctx.seq ? 12 : 14);
  const none = fx(0, 0, 0);
  switch (k) {
    case 0: { // MOV 88/89/8A/8B
      const w = width(r);
      const reg = pickReg(b, ctx, w);
      regValue(b, reg, w);
      const dir = r.int(2);
      const m = rmOperand(b, ctx, reg, w);
      const p = prefixes(r, osz(w), m.pfx);
      b.add({
        bytes: [...p, 0x88 + dir * 2 + (w === 8 ? 0 : 1), ...m.bytes],
        text: `${pfxText(p)}mov ${
          dir ? rname(reg, w) + ", " + m.text : m.text + ", " + rname(reg, w)
        }`,
        ...none,
      });
      return;
    }
    case 1: { // MOV imm: C6/C7, B0-BF
      const w = width(r);
      const v = interesting(r, w);
      if (r.chance(0.5)) {
        const m = rmOperand(b, ctx, 0, w);
        const p = prefixes(r, osz(w), m.pfx);
        b.add({
          bytes: [...p, w === 8 ? 0xc6 : 0xc7, ...m.bytes, ...imm(v, w)],
          text: `${pfxText(p)}mov ${m.text}, ${hx(v)}`,
          ...none,
        });
      } else {
        const reg = pickReg(b, ctx, w);
        b.add({
          bytes: [...osz(w), (w === 8 ? 0xb0 : 0xb8) + reg, ...imm(v, w)],
          text: `mov ${rname(reg, w)}, ${hx(v)}`,
          ...none,
        });
      }
      return;
    }
    case 2: { // MOVZX / MOVSX
      const sw = r.chance(0.5) ? 8 : 16;
      const dw = sw === 8 ? (r.chance(0.3) ? 16 : 32) : 32;
      const sx = r.int(2);
      const reg = pickReg(b, ctx, dw);
      const m = rmOperand(b, ctx, reg, sw);
      const p = prefixes(r, osz(dw === 16 ? 16 : 32), m.pfx);
      b.add({
        bytes: [...p, 0x0f, 0xb6 + (sx ? 8 : 0) + (sw === 16 ? 1 : 0), ...m.bytes],
        text: `${pfxText(p)}${sx ? "movsx" : "movzx"} ${rname(reg, dw)}, ${m.text}`,
        ...none,
      });
      return;
    }
    case 3: { // CBW/CWDE/CWD/CDQ
      const w = r.chance(0.4) ? 16 : 32;
      const c = r.int(2);
      regValue(b, EAX, 32);
      if (r.chance(0.5)) {
        setRegPart(b, EAX, w === 16 ? 8 : 16, r.chance(0.5) ? 0x80 << (w === 16 ? 0 : 8) : r.u32());
      }
      b.add({
        bytes: [...osz(w), 0x98 + c],
        text: [w === 16 ? "cbw" : "cwde", w === 16 ? "cwd" : "cdq"][c],
        ...none,
      });
      return;
    }
    case 4: { // XCHG
      const w = width(r);
      const reg = pickReg(b, ctx, w);
      regValue(b, reg, w);
      if (w !== 8 && r.chance(0.3)) {
        regValue(b, EAX, w);
        b.add({
          bytes: [...osz(w), 0x90 + reg],
          text: `xchg ${rname(0, w)}, ${rname(reg, w)}`,
          ...none,
        });
        return;
      }
      const m = rmOperand(b, ctx, reg, w, { align: true, noCs: true });
      const p = prefixes(r, osz(w), m.pfx, r.chance(0.1) && m.mem ? [0xf0] : []);
      b.add({
        bytes: [...p, 0x86 + (w === 8 ? 0 : 1), ...m.bytes],
        text: `${pfxText(p)}xchg ${m.text}, ${rname(reg, w)}`,
        ...none,
      });
      return;
    }
    case 5: { // XADD
      const w = width(r);
      const reg = pickReg(b, ctx, w);
      regValue(b, reg, w);
      const m = rmOperand(b, ctx, reg, w, { align: true, noCs: true });
      const p = prefixes(r, osz(w), m.pfx, r.chance(0.3) && m.mem ? [0xf0] : []);
      b.add({
        bytes: [...p, 0x0f, 0xc0 + (w === 8 ? 0 : 1), ...m.bytes],
        text: `${pfxText(p)}xadd ${m.text}, ${rname(reg, w)}`,
        ...fx(0, ALL6, 0),
      });
      return;
    }
    case 6: { // CMPXCHG
      const w = width(r);
      const reg = pickReg(b, ctx, w);
      regValue(b, reg, w);
      const m = rmOperand(b, ctx, reg, w, { align: true, noCs: true, avoid: [EAX] });
      if (!ctx.seq && m.mem && !m.mem.wild && r.chance(0.5)) {
        // Make the accumulator equal to the destination.
        setRegPart(b, EAX, w, readOverride(b, m.mem.addr, w / 8));
      } else if (!ctx.seq && m.reg !== undefined && m.reg !== EAX && m.reg !== 4 && r.chance(0.5)) {
        setRegPart(b, EAX, w, regPart(b, m.reg, w));
      } else regValue(b, EAX, w);
      const p = prefixes(r, osz(w), m.pfx, r.chance(0.3) && m.mem ? [0xf0] : []);
      b.add({
        bytes: [...p, 0x0f, 0xb0 + (w === 8 ? 0 : 1), ...m.bytes],
        text: `${pfxText(p)}cmpxchg ${m.text}, ${rname(reg, w)}`,
        ...fx(0, ALL6, 0),
      });
      return;
    }
    case 7: { // CMPXCHG8B
      const m = rmOperand(b, ctx, 1, 32, {
        memRate: ctx.seq ? 1 : 0.93,
        size: 8,
        align: true,
        noCs: true,
        avoid: [EAX, EDX],
      });
      if (m.mem && !m.mem.wild && !ctx.seq && r.chance(0.5)) {
        b.pin(EAX, readOverride(b, m.mem.addr, 4));
        b.pin(EDX, readOverride(b, m.mem.addr + 4, 4));
      }
      const p = prefixes(r, m.pfx, r.chance(0.3) && m.mem ? [0xf0] : []);
      b.add({
        bytes: [...p, 0x0f, 0xc7, ...m.bytes],
        text: `${pfxText(p)}cmpxchg8b ${m.text}`,
        ...fx(0, ZF, 0),
      });
      return;
    }
    case 8: { // BSWAP (32-bit only: the 16-bit form is undefined)
      const reg = pickReg(b, ctx, 32);
      regValue(b, reg, 32);
      b.add({ bytes: [0x0f, 0xc8 + reg], text: `bswap ${rname(reg, 32)}`, ...none });
      return;
    }
    case 9: { // SETcc
      const cc = r.int(16);
      const m = rmOperand(b, ctx, r.int(8), 8);
      const p = prefixes(r, m.pfx);
      b.add({
        bytes: [...p, 0x0f, 0x90 + cc, ...m.bytes],
        text: `${pfxText(p)}set${CC[cc]} ${m.text}`,
        ...fx(ccReads(cc), 0, 0),
      });
      return;
    }
    case 10: { // CMOVcc (the memory source is read even when the condition is false)
      const cc = r.int(16);
      const w = r.chance(0.3) ? 16 : 32;
      const reg = pickReg(b, ctx, w);
      regValue(b, reg, w);
      const m = rmOperand(b, ctx, reg, w, { wildRate: 0.05 });
      const p = prefixes(r, osz(w), m.pfx);
      b.add({
        bytes: [...p, 0x0f, 0x40 + cc, ...m.bytes],
        text: `${pfxText(p)}cmov${CC[cc]} ${rname(reg, w)}, ${m.text}`,
        ...fx(ccReads(cc), 0, 0),
      });
      return;
    }
    case 11: { // LEA (16/32-bit operand and address sizes; nothing is accessed)
      const w = r.chance(0.3) ? 16 : 32;
      const reg = pickReg(b, ctx, w);
      const a16 = !ctx.seq && r.chance(0.3);
      const mr = ctx.seq ? seqMem(b, reg, 1) : b.memOp(reg, { size: 1, a16, wildRate: 0.2 });
      const p = prefixes(r, osz(w), a16 ? [0x67] : [], segPrefix(r));
      b.add({
        bytes: [...p, 0x8d, ...mr.bytes],
        text: `${pfxText(p)}lea ${rname(reg, w)}, ${mr.text}`,
        ...none,
      });
      return;
    }
    case 12: { // MOV moffs (A0-A3), 0x67 → 16-bit offset
      const w = width(r);
      const a16 = r.chance(0.3);
      const store = r.int(2);
      const size = w / 8;
      const wild = r.chance(0.03);
      const addr = a16
        ? LOW_BASE + r.int(LOW_SIZE - size)
        : wild
        ? DATA_BASE + DATA_SIZE - 1
        : DATA_BASE + r.int(DATA_SIZE - size);
      regValue(b, EAX, w);
      if (!store && inRegion(addr, size)) b.setMem(addr, interesting(r, w), size);
      const p = prefixes(r, osz(w), a16 ? [0x67] : [], segPrefix(r));
      const ab: number[] = [];
      pushLE(ab, addr, a16 ? 2 : 4);
      b.add({
        bytes: [...p, 0xa0 + store * 2 + (w === 8 ? 0 : 1), ...ab],
        text: `${pfxText(p)}mov ${
          store ? `[${hx(addr)}], ${rname(0, w)}` : `${rname(0, w)}, [${hx(addr)}]`
        }`,
        ...none,
      });
      return;
    }
    default: { // MOV r/m, Sreg (8C): a register destination is zero-extended at 32 bits
      const sreg = r.pick([0, 1, 2, 3]); // ES CS SS DS (FS/GS differ natively)
      const w = r.chance(0.5) ? 16 : 32;
      const m = rmOperand(b, ctx, sreg, w === 16 ? 16 : 32, { memRate: 0.4, size: 2 });
      const p = prefixes(r, osz(w), m.pfx);
      b.add({
        bytes: [...p, 0x8c, ...m.bytes],
        text: `${pfxText(p)}mov ${m.text}, ${["es", "cs", "ss", "ds"][sreg]}`,
        ...none,
      });
    }
  }
}

/** Value of `size` bytes of initial memory as set by overrides (0 where unset). */
function readOverride(b: CaseBuilder, addr: number, size: number): number {
  let v = 0;
  for (let i = 0; i < size; i++) v |= (b.mem.get(addr + i) ?? 0) << (8 * i);
  return v >>> 0;
}

// ------------------------------------------------------------------ stack

/** Write a 32-bit value at ESP+off (initial stack contents). */
function stackWord(b: CaseBuilder, off: number, v: number, size = 4): void {
  b.setMem((b.regs[ESP] + off) >>> 0, v, size);
}

/** A random EFLAGS image for POPF: never TF or AC (they would trap). */
function popfValue(r: Rng): number {
  return (r.u32() & ~0x40100) >>> 0;
}

/** PUSH/POP (all forms), PUSHA/POPA, PUSHF/POPF, PUSH sreg, ENTER/LEAVE. */
export function genStack(b: CaseBuilder, ctx: GenCtx): void {
  const r = b.r;
  const k = r.int(ctx.seq ? 8 : 12);
  const none = fx(0, 0, 0);
  const w: 16 | 32 = r.chance(0.25) ? 16 : 32;
  const os = osz(w);
  switch (k) {
    case 0: { // PUSH reg
      const reg = ctx.seq ? pickReg(b, ctx) : r.int(8);
      regValue(b, reg, 32);
      b.add({ bytes: [...os, 0x50 + reg], text: `push ${rname(reg, w)}`, ...none });
      return;
    }
    case 1: { // POP reg
      const reg = ctx.seq ? pickReg(b, ctx) : r.int(8);
      if (!ctx.seq) stackWord(b, 0, interesting(r, 32));
      b.add({ bytes: [...os, 0x58 + reg], text: `pop ${rname(reg, w)}`, ...none });
      return;
    }
    case 2: { // PUSH imm
      if (r.chance(0.5)) {
        const v = interesting(r, 8);
        b.add({
          bytes: [...os, 0x6a, v],
          text: `push${w === 16 ? "w" : ""} ${hexs(v, 1)}`,
          ...none,
        });
      } else {
        const v = interesting(r, w);
        b.add({
          bytes: [...os, 0x68, ...imm(v, w)],
          text: `push${w === 16 ? "w" : ""} ${hx(v)}`,
          ...none,
        });
      }
      return;
    }
    case 3: { // PUSH r/m (FF /6) — an ESP-based address uses ESP before the decrement
      const m = rmOperand(b, ctx, 6, w, { memRate: 0.8 });
      const p = prefixes(r, os, m.pfx);
      b.add({ bytes: [...p, 0xff, ...m.bytes], text: `${pfxText(p)}push ${m.text}`, ...none });
      return;
    }
    case 4: { // POP r/m (8F /0) — an ESP-based address uses ESP after the increment
      if (!ctx.seq) stackWord(b, 0, interesting(r, 32));
      const m = rmOperand(b, ctx, 0, w, { memRate: 0.8, noCs: true });
      const p = prefixes(r, os, m.pfx);
      b.add({ bytes: [...p, 0x8f, ...m.bytes], text: `${pfxText(p)}pop ${m.text}`, ...none });
      return;
    }
    case 5: { // PUSHF
      b.add({ bytes: [...os, 0x9c], text: `pushf${w === 16 ? "w" : "d"}`, ...fx(ALL6, 0, 0) });
      return;
    }
    case 6: { // POPF: IF and IOPL are not writable at CPL 3 (IOPL 0); VIP/VIF/VM untouched
      const v = popfValue(r);
      if (!ctx.seq) stackWord(b, 0, v);
      else {
        // In a sequence: push a known image first.
        const pv = v & 0xffff & ~0x100;
        b.add({ bytes: [0x68, ...imm(pv, 32)], text: `push ${hx(pv)}`, ...none });
        b.add({ bytes: [0x9d], text: "popfd", ...fx(0, ALL6 | DF, 0) });
        return;
      }
      b.add({
        bytes: [...os, 0x9d],
        text: `popf${w === 16 ? "w" : "d"} (${hx(v & (w === 16 ? 0xffff : -1))})`,
        ...fx(0, ALL6 | DF, 0),
      });
      return;
    }
    case 7: { // PUSHA
      for (let i = 0; i < 8; i++) if (i !== ESP) regValue(b, i, 32);
      b.add({ bytes: [...os, 0x60], text: `pusha${w === 16 ? "w" : "d"}`, ...none });
      return;
    }
    case 8: { // POPA (the saved ESP slot is skipped)
      for (let i = 0; i < 8; i++) stackWord(b, i * (w / 8), interesting(r, w), w / 8);
      b.add({ bytes: [...os, 0x61], text: `popa${w === 16 ? "w" : "d"}`, ...none });
      return;
    }
    case 9: { // PUSH ES/CS/SS/DS: a 32-bit push may write only 16 bits (SDM PUSH)
      const s = r.pick([0x06, 0x0e, 0x16, 0x1e]);
      const sp = b.regs[ESP];
      const ins: Insn = {
        bytes: [...os, s],
        text: `push ${({ 6: "es", 14: "cs", 22: "ss", 30: "ds" } as Record<number, string>)[s]}`,
        ...none,
      };
      if (w === 32) ins.memUndef = [[sp - 2, 0xff], [sp - 1, 0xff]];
      b.add(ins);
      return;
    }
    case 10: { // ENTER size, level (level 0..3 mostly)
      const level = r.pick([0, 0, 1, 1, 2, 3, 3, r.int(8), 31, 32, 33]);
      const size = r.pick([0, 4, 8, 0x10, r.int(0x100), r.int(0x10000)]);
      const ebp = DATA_BASE + 0x9000 + r.int(0x4000);
      b.pin(EBP, ebp);
      // Frame pointers the nesting copies: the slots below EBP (a 32-bit stack uses all of EBP).
      for (let i = 1; i < 4; i++) b.setMem(ebp - (w / 8) * i, interesting(r, w), w / 8);
      // When the final ESP faults, whether the pushes already reached memory is
      // implementation-specific (AMD writes them): mask the frame area then.
      const sp = b.regs[ESP], frame = ((level & 31) + 1) * (w / 8);
      const onFault: [number, number][] = [];
      for (let a = sp - frame; a < sp; a++) onFault.push([a, 0xff]);
      b.add({
        bytes: [...os, 0xc8, size & 0xff, size >> 8, level],
        text: `enter${w === 16 ? "w" : ""} ${hx(size)}, ${level}`,
        ...none,
        memUndefOnFault: onFault,
      });
      return;
    }
    default: { // LEAVE
      const ebp = DATA_BASE + 0x9000 + r.int(0x4000);
      b.pin(EBP, ebp);
      b.setMem(ebp, interesting(r, 32), 4);
      b.add({ bytes: [...os, 0xc9], text: `leave${w === 16 ? "w" : ""}`, ...none });
    }
  }
}

// ------------------------------------------------------------------ flags and misc

/** CLC/STC/CMC/CLD/STD/LAHF/SAHF/SALC, CLI/STI (#GP at CPL 3), XLAT, NOPs, INTO, BOUND. */
export function genFlagMisc(b: CaseBuilder, ctx: GenCtx): void {
  const r = b.r;
  const none = fx(0, 0, 0);
  const k = r.int(ctx.seq ? 8 : 13);
  switch (k) {
    case 0:
      b.add({ bytes: [0xf8], text: "clc", ...fx(0, CF, 0) });
      return;
    case 1:
      b.add({ bytes: [0xf9], text: "stc", ...fx(0, CF, 0) });
      return;
    case 2:
      b.add({ bytes: [0xf5], text: "cmc", ...fx(CF, CF, 0) });
      return;
    case 3:
      b.add(
        r.chance(0.5)
          ? { bytes: [0xfc], text: "cld", ...none }
          : { bytes: [0xfd], text: "std", ...none },
      );
      return;
    case 4:
      regValue(b, EAX, 32);
      b.add({ bytes: [0x9f], text: "lahf", ...fx(SF | ZF | AF | PF | CF, 0, 0) });
      return;
    case 5:
      regValue(b, EAX, 32);
      b.add({ bytes: [0x9e], text: "sahf", ...fx(0, SF | ZF | AF | PF | CF, 0) });
      return;
    case 6:
      regValue(b, EAX, 32);
      b.add({ bytes: [0xd6], text: "salc", ...fx(CF, 0, 0) });
      return;
    case 7: { // NOP forms: 90, 66 90, F3 90 (PAUSE), 0F 1F /0 with any ModRM (no access)
      const kk = r.int(4);
      if (kk === 0) b.add({ bytes: [0x90], text: "nop", ...none });
      else if (kk === 1) b.add({ bytes: [0x66, 0x90], text: "xchg ax,ax", ...none });
      else if (kk === 2 && !ctx.seq) b.add({ bytes: [0xf3, 0x90], text: "pause", ...none });
      else {
        const w = r.chance(0.3) ? 16 : 32;
        const a16 = !ctx.seq && r.chance(0.15);
        const m = ctx.seq
          ? seqMem(b, 0, 4)
          : r.chance(0.2)
          ? { bytes: [0xc0 | r.int(8)], text: "reg", addr: 0, wild: false }
          : b.memOp(0, { size: 4, a16, wildRate: 0.3 });
        const p = prefixes(r, osz(w), a16 ? [0x67] : [], segPrefix(r));
        b.add({
          bytes: [...p, 0x0f, 0x1f, ...m.bytes],
          text: `${pfxText(p)}nop ${m.text}`,
          ...none,
        });
      }
      return;
    }
    case 8: // CLI / STI: #GP(0) at CPL 3 with IOPL 0
      b.add(
        r.chance(0.5)
          ? { bytes: [0xfa], text: "cli", ...none }
          : { bytes: [0xfb], text: "sti", ...none },
      );
      return;
    case 9: { // XLAT: AL = [EBX + AL] (BX with 0x67)
      const a16 = r.chance(0.25);
      const al = r.int(256);
      setRegPart(b, EAX, 8, al);
      const t = a16 ? LOW_BASE + r.int(LOW_SIZE - 0x100) : DATA_BASE + r.int(DATA_SIZE - 0x100);
      b.pin(EBX, a16 ? ((r.u32() & 0xffff0000) | t) >>> 0 : t);
      b.setMem(t + al, r.int(256), 1);
      const p = prefixes(r, a16 ? [0x67] : [], segPrefix(r));
      b.add({ bytes: [...p, 0xd7], text: `${pfxText(p)}xlat`, ...none });
      return;
    }
    case 10: { // INTO: #OF (a trap) when OF=1
      b.eflags = r.chance(0.5) ? b.eflags | OF : b.eflags & ~OF;
      b.add({ bytes: [0xce], text: "into", ...fx(OF, 0, 0) });
      return;
    }
    case 11: { // BOUND r, m (#BR when out of range; a register operand is #UD)
      const w = r.chance(0.3) ? 16 : 32;
      const reg = r.int(8);
      // Memory only: with mod=11 the 0x62 byte is an EVEX prefix on AVX-512 hosts.
      const m = rmOperand(b, ctx, reg, w, { memRate: 1, size: w / 4, noValue: true, avoid: [reg] });
      const lo = interesting(r, w),
        hi = r.chance(0.7) ? (lo + r.int(1000)) & widthMask(w) : interesting(r, w);
      if (m.mem && !m.mem.wild) {
        b.setMem(m.mem.addr, lo, w / 8);
        b.setMem(m.mem.addr + w / 8, hi, w / 8);
      }
      const sx = (v: number) => w === 16 ? (v << 16) >> 16 : v | 0;
      const pick = r.int(4);
      const idx = pick === 0
        ? sx(lo)
        : pick === 1
        ? sx(hi)
        : pick === 2
        ? sx(lo) - 1
        : sx(lo) + r.int(50);
      if (!b.pinned[reg]) setRegPart(b, reg, w, idx);
      const p = prefixes(r, osz(w), m.pfx);
      b.add({
        bytes: [...p, 0x62, ...m.bytes],
        text: `${pfxText(p)}bound ${rname(reg, w)}, ${m.text}`,
        ...none,
      });
      return;
    }
    default: { // ARPL r/m16, r16 (ZF)
      const reg = r.int(8);
      regValue(b, reg, 16);
      const m = rmOperand(b, ctx, reg, 16);
      const p = prefixes(r, m.pfx);
      b.add({
        bytes: [...p, 0x63, ...m.bytes],
        text: `${pfxText(p)}arpl ${m.text}, ${rname(reg, 16)}`,
        ...fx(0, ZF, 0),
      });
    }
  }
}

/** Privileged or invalid at CPL 3: #GP(0) or #UD. */
export function genFaulting(b: CaseBuilder, ctx: GenCtx): void {
  const r = b.r;
  const none = fx(0, 0, 0);
  const list: [number[], string][] = [
    [[0xf4], "hlt"],
    [[0xfa], "cli"],
    [[0xfb], "sti"],
    [[0xe4, r.int(256)], "in al, imm8"],
    [[0xe5, r.int(256)], "in eax, imm8"],
    [[0xec], "in al, dx"],
    [[0xed], "in eax, dx"],
    [[0x66, 0xed], "in ax, dx"],
    [[0xe6, r.int(256)], "out imm8, al"],
    [[0xe7, r.int(256)], "out imm8, eax"],
    [[0xee], "out dx, al"],
    [[0xef], "out dx, eax"],
    [[0x6c], "insb"],
    [[0x6d], "insd"],
    [[0x6e], "outsb"],
    [[0x6f], "outsd"],
    [[0xf3, 0x6c], "rep insb"],
    [[0x0f, 0x06], "clts"],
    [[0x0f, 0x08], "invd"],
    [[0x0f, 0x09], "wbinvd"],
    [[0x0f, 0x30], "wrmsr"],
    [[0x0f, 0x32], "rdmsr"],
    [[0x0f, 0x20, 0xc0 | r.pick([0, 2, 3, 4]) << 3 | r.int(8)], "mov r32, crN"],
    [[0x0f, 0x22, 0xc0 | r.pick([0, 2, 3, 4]) << 3 | r.int(8)], "mov crN, r32"],
    [[0x0f, 0x21, 0xc0 | r.int(8) << 3 | r.int(8)], "mov r32, drN"],
    [[0x0f, 0x23, 0xc0 | r.int(8) << 3 | r.int(8)], "mov drN, r32"],
    [[0x0f, 0x0b], "ud2"],
    [[0x0f, 0xff, 0xc0], "ud0"],
    [[0x0f, 0xb9, 0xc0], "ud1"],
    [[0xff, 0xf8 | r.int(8)], "ff /7 (invalid)"],
    [[0xfe, 0xc0 | (r.range(2, 6) << 3) | r.int(8)], "fe /2-6 (invalid)"],
    [[0x8d, 0xc0 | r.int(64)], "lea reg,reg (invalid)"],
    [[0x0f, 0xc7, 0xc8 | r.int(8)], "cmpxchg8b reg (invalid)"],
    [[0xf0, 0x90], "lock nop (#UD)"],
    [[0xf0, 0x01, 0xc0 | r.int(64)], "lock add reg,reg (#UD)"],
    [[0xf0, 0x39, 0x05, 0, 0x10, 0x10, 0], "lock cmp (#UD)"],
    [[0xf0, 0x8b, 0x05, 0, 0x10, 0x10, 0], "lock mov (#UD)"],
  ];
  const [bytes, text] = r.pick(list);
  // LGDT/LIDT/LLDT/LTR/LMSW/INVLPG with memory operands.
  if (r.chance(0.25)) {
    const forms: [number[], number, string][] = [
      [[0x0f, 0x01], 2, "lgdt"],
      [[0x0f, 0x01], 3, "lidt"],
      [[0x0f, 0x01], 6, "lmsw"],
      [[0x0f, 0x01], 7, "invlpg"],
      [[0x0f, 0x00], 2, "lldt"],
      [[0x0f, 0x00], 3, "ltr"],
    ];
    const [opc, sub, name] = r.pick(forms);
    const m = rmOperand(b, ctx, sub, 16, { memRate: 1, size: 6, wildRate: 0 });
    b.add({ bytes: [...m.pfx, ...opc, ...m.bytes], text: `${name} ${m.text}`, ...none });
    return;
  }
  b.add({ bytes, text, ...none });
}

// ------------------------------------------------------------------ prefixes

/** Redundant and repeated prefixes, prefixes that do nothing, and the 15-byte limit. */
export function genPrefixes(b: CaseBuilder, ctx: GenCtx): void {
  const r = b.r;
  const k = r.int(5);
  // A base instruction from the ALU/move classes.
  const sub = new CaseBuilder(r);
  for (let i = 0; i < 8; i++) if (b.pinned[i]) sub.pin(i, b.regs[i]);
  (r.chance(0.5) ? genAlu : genMove)(sub, ctx);
  const ins = sub.insns[0];
  for (let i = 0; i < 8; i++) if (sub.pinned[i]) b.pin(i, sub.regs[i]);
  for (const [a, v] of sub.mem) b.mem.set(a, v);
  let extra: number[];
  if (k === 0) extra = [r.pick([0x3e, 0x26, 0x36])]; // segment overrides that change nothing
  else if (k === 1) {
    extra = Array.from({ length: r.range(1, 4) }, () => r.pick([0x3e, 0x26, 0x36, 0x2e]));
  } else if (k === 2) extra = [r.pick([0xf3, 0xf2])]; // REP on a non-string one-byte opcode: ignored
  else if (k === 3) {
    // Pad to exactly 15 bytes (legal) or 16+ (#GP).
    const n = Math.max(0, 15 - ins.bytes.length + (r.chance(0.5) ? r.range(1, 3) : 0));
    extra = Array.from({ length: n }, () => r.pick([0x3e, 0x26, 0x36, 0x66, 0x66]));
  } else extra = [0x66, 0x66].slice(0, r.range(1, 2));
  let npfx = 0;
  while ([0x66, 0x67, 0x26, 0x2e, 0x36, 0x3e, 0xf0, 0xf2, 0xf3].includes(ins.bytes[npfx])) npfx++;
  const opc = ins.bytes[npfx];
  // REP prefixes on 0F-map opcodes select other instructions (TZCNT, POPCNT...): skip those.
  if (k === 2 && opc === 0x0f) extra = [0x3e];
  // An operand-size prefix changes the operand and immediate size: only repeat one already there.
  if (extra.includes(0x66) && !ins.bytes.slice(0, npfx).includes(0x66)) {
    extra = extra.map((x) => x === 0x66 ? 0x3e : x);
  }
  b.add({
    ...ins,
    bytes: [...extra, ...ins.bytes],
    text: `{${extra.map((x) => x.toString(16)).join(" ")}} ${ins.text}`,
  });
}

// ------------------------------------------------------------------ control transfer

/** JMP/Jcc/LOOP/JECXZ/CALL/RET/indirect JMP and CALL, forward (and bounded backward) only. */
export function genControl(b: CaseBuilder, ctx: GenCtx): void {
  const r = b.r;
  const n = r.range(2, 5);
  void ctx;
  // Fillers between the branches.
  const filler = () => {
    const g = r.pick([genAlu, genMove, genFlagMisc]);
    g(b, { seq: true });
  };
  b.pin(EBP, DATA_BASE + 0x4000 + r.int(0x2000));
  const start = b.insns.length;
  // Second halves of PUSH+RET and MOV+JMP reg pairs: never a branch target.
  const pairs = new Set<number>();
  for (let i = 0; i < n; i++) {
    const k = r.int(9);
    switch (k) {
      case 0: { // Jcc rel8 / rel32
        const cc = r.int(16);
        const long = r.chance(0.3);
        b.add({
          bytes: long ? [0x0f, 0x80 + cc, 0, 0, 0, 0] : [0x70 + cc, 0],
          text: `j${CC[cc]}`,
          ...fx(ccReads(cc), 0, 0),
          target: -1,
          relSize: long ? 4 : 1,
        });
        break;
      }
      case 1: { // JMP rel8/rel32
        const long = r.chance(0.3);
        b.add({
          bytes: long ? [0xe9, 0, 0, 0, 0] : [0xeb, 0],
          text: "jmp",
          ...fx(0, 0, 0),
          target: -1,
          relSize: long ? 4 : 1,
          noFall: true,
        });
        break;
      }
      case 2: { // LOOP/LOOPE/LOOPNE/JECXZ (0x67: CX)
        const op = r.pick([0xe0, 0xe1, 0xe2, 0xe3]);
        const a16 = r.chance(0.2);
        b.pin(ECX, r.pick([0, 1, 2, 0x10000, 0x10001, r.int(5), r.u32()]) >>> 0);
        const reads = op === 0xe0 || op === 0xe1 ? ZF : 0;
        b.add({
          bytes: [...(a16 ? [0x67] : []), op, 0],
          text: ["loopne", "loope", "loop", a16 ? "jcxz" : "jecxz"][op - 0xe0] +
            (a16 ? " (a16)" : ""),
          ...fx(reads, 0, 0),
          target: -1,
          relSize: 1,
        });
        break;
      }
      case 3: { // CALL rel32 (pushes the return address)
        b.add({
          bytes: [0xe8, 0, 0, 0, 0],
          text: "call",
          ...fx(0, 0, 0),
          target: -1,
          relSize: 4,
          noFall: true,
        });
        break;
      }
      case 4: { // PUSH imm32 (code address); RET / RET imm16
        const retImm = r.chance(0.3) ? r.pick([0, 4, 8, 0x100]) : -1;
        b.add({ bytes: [0x68, 0, 0, 0, 0], text: "push <addr>", ...fx(0, 0, 0) });
        const pushIdx = b.insns.length - 1;
        b.add({
          bytes: retImm >= 0 ? [0xc2, retImm & 0xff, retImm >> 8] : [0xc3],
          text: retImm >= 0 ? `ret ${hx(retImm)}` : "ret",
          ...fx(0, 0, 0),
          noFall: true,
          absFix: { insn: pushIdx, at: 1, target: -1 },
        });
        pairs.add(b.insns.length - 1);
        break;
      }
      case 5: { // MOV reg, imm32 (code address); JMP reg / CALL reg
        const reg = r.pick([EAX, ECX, EDX, EBX, ESI, EDI]);
        b.add({
          bytes: [0xb8 + reg, 0, 0, 0, 0],
          text: `mov ${rname(reg, 32)}, <addr>`,
          ...fx(0, 0, 0),
        });
        const movIdx = b.insns.length - 1;
        const call = r.int(2);
        b.add({
          bytes: [0xff, 0xc0 | ((call ? 2 : 4) << 3) | reg],
          text: `${call ? "call" : "jmp"} ${rname(reg, 32)}`,
          ...fx(0, 0, 0),
          noFall: true,
          absFix: { insn: movIdx, at: 1, target: -1 },
        });
        pairs.add(b.insns.length - 1);
        break;
      }
      case 6: { // JMP [mem] (address stored in memory)
        // The slot is far from anything the fillers write (they stay below 0x10a000).
        const slot = DATA_BASE + 0xc000 + 4 * b.insns.length;
        const bytes = [0xff, 0x25];
        pushLE(bytes, slot, 4);
        b.add({
          bytes,
          text: `jmp [${hx(slot)}]`,
          ...fx(0, 0, 0),
          noFall: true,
          absMem: { addr: slot, target: -1 },
        });
        break;
      }
      default:
        filler();
    }
  }
  // A few fillers after, so branches have somewhere to land.
  for (let i = 0; i < 2; i++) filler();
  // Resolve targets: each branch goes forward to a later instruction (or the end).
  const total = b.insns.length;
  for (let i = start; i < total; i++) {
    const ins = b.insns[i];
    let tgt = Math.min(total, i + 1 + r.int(3));
    while (pairs.has(tgt)) tgt++;
    if (ins.target === -1) ins.target = tgt;
    if (ins.absFix && ins.absFix.target === -1) ins.absFix.target = tgt;
    if (ins.absMem && ins.absMem.target === -1) ins.absMem.target = tgt;
  }
}

// ------------------------------------------------------------------ sequences

/** Random sequences of 2-6 instructions mixing the classes above. */
export function genSeq(b: CaseBuilder, _ctx: GenCtx): void {
  const r = b.r;
  const ctx = { seq: true };
  b.pin(EBP, DATA_BASE + 0x3000 + r.int(0x8000));
  const n = r.range(2, 6);
  const gens = [
    genAlu,
    genAlu,
    genAlu,
    genShift,
    genShld,
    genMulDiv,
    genBitOps,
    genBcd,
    genMove,
    genMove,
    genStack,
    genFlagMisc,
  ];
  for (let i = 0; i < n; i++) {
    const g = r.pick(gens);
    g(b, ctx);
  }
}
