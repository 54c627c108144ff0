/**
 * The block translator: hot straight-line code becomes JavaScript functions
 * that the engine's own JIT compiles, as DESIGN.md's performance model asks
 * (the path v86 takes with WebAssembly).
 *
 * The interpreter counts how often each instruction address starts an
 * instruction; when one gets hot, `translate` decodes a basic block from there
 * (up to a control transfer, an instruction it does not handle, or the end of
 * the page) and emits source that calls the *same* CPU methods the interpreter
 * uses for semantics (`alu32`, `incdec`, `read32`, `cond`, `shift`, …): only
 * decoding is done ahead of time, so the two paths cannot disagree on what an
 * instruction does. Operand addresses, immediates and instruction pointers are
 * baked in as constants.
 *
 * Instructions the translator does not spell out but whose length it can
 * decode (16-bit operand forms, string instructions with or without REP, BT*,
 * CMPXCHG, XADD, 8-bit shifts, ...: see `steppable`) stay inside the block:
 * the block calls the interpreter's `step` for them (one implementation, as
 * v86 calls its interpreter's instruction functions from generated code).
 * Before such a call the block brings the slice's count up to date (so the
 * instruction sees the exact instruction count, as virtual time), and after it
 * leaves unless EIP is the next instruction and the slice was not cut (an
 * interrupt window or a stop request lands right after the instruction, as in
 * the interpreter).
 *
 * Precision: each instruction stores its EIP in `cpu.instrStart` before it
 * runs, so a fault inside a block rolls back exactly as in the interpreter; the
 * run loop counts the instructions the block retired before the fault (less
 * `cpu.blockDone`, those it already counted).
 *
 * Coherence: blocks are keyed by physical address and remember the linear
 * address they were built for. A page holding blocks is a *code page*: the
 * write TLB never maps it, so every write to it takes the slow path, which
 * throws the page's blocks away (self-modifying code, Linux's alternatives and
 * paravirt patching). Writers that bypass the CPU (devices, the host) call
 * `cpu.invalidateCode`.
 *
 * @module
 */

import type { CPU } from "./cpu.ts";
import * as ops from "./ops.ts";
import * as exec from "./exec.ts";
import { isLockable } from "./exec.ts";

/** A translated block. */
export interface Block {
  /** Linear address of the first instruction (blocks are valid only there). */
  lin: number;
  /** Number of guest instructions. */
  n: number;
  /** EIP of each instruction, in order (to count retired instructions after a fault). */
  eips: Int32Array;
  /** The generated code. */
  fn: (cpu: CPU) => void;
}

/** How many times an address must start an instruction before it is translated. */
export const HOT_THRESHOLD = 5000;

/** Longest block, in instructions. */
const MAX_BLOCK = 64;

const R8NAME = ["r8[0]", "r8[4]", "r8[8]", "r8[12]", "r8[1]", "r8[5]", "r8[9]", "r8[13]"];

/** A cursor over code bytes in physical memory (never past the page end). */
class Code {
  constructor(readonly u8: Uint8Array, public pa: number, readonly end: number) {}
  ok(n: number): boolean {
    return this.pa + n <= this.end;
  }
  u(): number {
    if (this.pa >= this.end) throw PAGE_END;
    return this.u8[this.pa++];
  }
  s8(): number {
    return (this.u() << 24) >> 24;
  }
  u16(): number {
    return this.u() | (this.u() << 8);
  }
  i32(): number {
    return this.u() | (this.u() << 8) | (this.u() << 16) | (this.u() << 24);
  }
}

const PREFIX_BYTES = new Set([0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65, 0x66, 0x67, 0xf0, 0xf2, 0xf3]);

/** Segment of the last operand `eaExpr` decoded. */
let lastSeg = 3;

/** Code that raises #GP(0)/#SS(0) unless the last operand's segment is writable (as modrmAddrW). */
function wchk(): string {
  return `if ((c.sflags[${lastSeg}] & 0x1a) !== 0x12) c.segWriteFault(${lastSeg}); `;
}

/** emit's line for "run this instruction with the interpreter" (translate writes the code). */
const STEP = "\u0000step";

const PAGE_END = { pageEnd: true };
const UNSUPPORTED = { unsupported: true };

/**
 * Decode a ModRM memory operand (32-bit addressing) into a JS expression for
 * its linear address. `seg` is the override (-1 none).
 */
function eaExpr(code: Code, m: number, seg: number): string {
  const mod = m >> 6, rm = m & 7;
  let base = "", def = 3;
  let disp = 0;
  if (rm === 4) {
    const sib = code.u();
    const b = sib & 7, idx = (sib >> 3) & 7, sc = sib >> 6;
    const parts: string[] = [];
    if (b === 5 && mod === 0) disp = code.i32();
    else {
      parts.push(`r[${b}]`);
      if (b === 4 || b === 5) def = 2;
    }
    if (idx !== 4) parts.push(sc === 0 ? `r[${idx}]` : `(r[${idx}] << ${sc})`);
    base = parts.join(" + ");
  } else if (rm === 5 && mod === 0) {
    disp = code.i32();
  } else {
    base = `r[${rm}]`;
    if (rm === 5) def = 2;
  }
  if (mod === 1) disp = code.s8();
  else if (mod === 2) disp = code.i32();
  const s = seg >= 0 ? seg : def;
  lastSeg = s;
  const terms = [base, disp !== 0 ? String(disp) : "", `sb[${s}]`].filter((t) => t !== "");
  return `((${terms.join(" + ")}) | 0)`;
}

/** Offset-only expression (for LEA). */
function offExpr(code: Code, m: number): string {
  const e = eaExpr(code, m, 0);
  return e.replace(" + sb[0]", "").replace("(sb[0])", "(0)");
}

/**
 * Translate the block starting at linear `lin` / physical `pa`. Returns null
 * when the first instruction is not one the translator handles.
 */
export function translate(cpu: CPU, lin: number, pa: number): Block | null {
  const code = new Code(cpu.u8, pa, (pa & -4096) + 4096);
  const lines: string[] = [];
  const eips: number[] = [];
  let eip = cpu.eip;
  let ended = false;
  /** Instructions already subtracted from the slice (by a step). */
  let counted = 0;
  const bps = cpu.breakpoints;
  while (eips.length < MAX_BLOCK && !ended) {
    // A block never runs across a breakpoint: end it before one.
    if (eips.length > 0 && bps.size > 0 && bps.has((cpu.csBase + eip) | 0)) break;
    const start = code.pa;
    const out: string[] = [];
    let term = false;
    try {
      term = emit(code, out, () => (eip + (code.pa - start)) | 0);
    } catch (e) {
      if (e !== PAGE_END && e !== UNSUPPORTED) throw e;
      break;
    }
    const k = eips.length, nx = (eip + (code.pa - start)) | 0;
    eips.push(eip);
    lines.push(`c.instrStart = ${eip};`);
    if (out.length === 1 && out[0] === STEP) {
      lines.push(
        `${k > counted ? `c.sliceLeft -= ${k - counted}; ` : ""}c.blockDone = ${k};`,
        `c.eip = ${eip}; exec.step(c); c.sliceLeft--; c.blockDone = ${k + 1};`,
        `if (c.eip !== ${nx} || c.sliceCut >= 0) { c.blockDone = 0; return; }`,
      );
      counted = k + 1;
    } else lines.push(...out);
    eip = nx;
    if (term) ended = true;
  }
  if (eips.length === 0) return null;
  const n = eips.length;
  if (!ended) lines.push(`c.eip = ${eip};`);
  const tail = counted > 0
    ? `c.sliceLeft -= ${n - counted}; c.blockDone = 0;`
    : `c.sliceLeft -= ${n};`;
  const body = `"use strict";
return function block_${(lin >>> 0).toString(16)}(c) {
  const r = c.regs, r8 = c.regs8, r16 = c.regs16, sb = c.sbase;
  ${lines.join("\n  ")}
  ${tail}
};`;
  const fn = new Function("ops", "exec", body)(ops, exec) as (cpu: CPU) => void;
  return { lin, n, eips: Int32Array.from(eips), fn };
}

/**
 * Emit one instruction. `next()` is the EIP after the bytes consumed so far
 * (call it after the whole instruction is decoded). Returns true when the
 * instruction ends the block (it set `c.eip`). Throws UNSUPPORTED for anything
 * the interpreter must run.
 */
function emit(code: Code, out: string[], next: () => number): boolean {
  let seg = -1, lock = false, o16 = false, rep = false;
  let op = code.u();
  // At most one LOCK, one segment override, one 66 and one REP/REPNE are handled here;
  // other prefixes (67) and longer runs (and the 15-byte limit they can reach) are left
  // to the interpreter.
  for (let n = 0; n < 4; n++) {
    if (op === 0xf0 && !lock) lock = true;
    else if (op === 0x66 && !o16) o16 = true;
    else if ((op === 0xf2 || op === 0xf3) && !rep) rep = true;
    else if (
      seg < 0 &&
      (op === 0x26 || op === 0x2e || op === 0x36 || op === 0x3e || op === 0x64 || op === 0x65)
    ) {
      seg = op === 0x64 ? 4 : op === 0x65 ? 5 : (op >> 3) & 3;
    } else break;
    op = code.u();
  }
  if (PREFIX_BYTES.has(op)) throw UNSUPPORTED;
  // LOCK on anything but a read-modify-write to memory is #UD: the interpreter raises it.
  // (A single CPU needs nothing more from LOCK.)
  if (lock && !code.ok(2)) throw UNSUPPORTED;
  if (lock && !isLockable(op, code.u8[code.pa], code.u8[code.pa + 1])) throw UNSUPPORTED;
  if (rep) {
    // REP/REPNE: string instructions (not INS/OUTS) and PAUSE, by the interpreter.
    if ((op >= 0xa4 && op <= 0xa7) || (op >= 0xaa && op <= 0xaf) || (op === 0x90 && !o16)) {
      out.push(STEP);
      return false;
    }
    throw UNSUPPORTED;
  }
  if (o16) return emit16(code, out, op, seg);
  if (op < 0x40 && (op & 7) < 6) {
    const aop = op >> 3, form = op & 7;
    const store = aop !== 7;
    switch (form) {
      case 0:
      case 2: {
        const m = code.u();
        const g = R8NAME[(m >> 3) & 7];
        if (m >= 0xc0) {
          const e = R8NAME[m & 7];
          const [d, s] = form === 0 ? [e, g] : [g, e];
          out.push(store ? `${d} = c.alu8(${aop}, ${d}, ${s});` : `c.alu8(${aop}, ${d}, ${s});`);
        } else {
          const a = eaExpr(code, m, seg);
          if (form === 0) {
            out.push(
              store
                ? `{ const a = ${a}; ${wchk()}c.write8(a, c.alu8(${aop}, c.readW8(a), ${g})); }`
                : `c.alu8(${aop}, c.read8(${a}), ${g});`,
            );
          } else {
            out.push(
              store
                ? `${g} = c.alu8(${aop}, ${g}, c.read8(${a}));`
                : `c.alu8(${aop}, ${g}, c.read8(${a}));`,
            );
          }
        }
        return false;
      }
      case 1:
      case 3: {
        const m = code.u();
        const g = `r[${(m >> 3) & 7}]`;
        if (m >= 0xc0) {
          const e = `r[${m & 7}]`;
          const [d, s] = form === 1 ? [e, g] : [g, e];
          if (aop === 6 && d === s) out.push(`${d} = c.logic(0, 31);`); // xor r, r
          else {out.push(
              store ? `${d} = c.alu32(${aop}, ${d}, ${s});` : `c.alu32(${aop}, ${d}, ${s});`,
            );}
        } else {
          const a = eaExpr(code, m, seg);
          if (form === 1) {
            out.push(
              store
                ? `{ const a = ${a}; ${wchk()}c.write32(a, c.alu32(${aop}, c.readW32(a), ${g})); }`
                : `c.alu32(${aop}, c.read32(${a}), ${g});`,
            );
          } else {
            out.push(
              store
                ? `${g} = c.alu32(${aop}, ${g}, c.read32(${a}));`
                : `c.alu32(${aop}, ${g}, c.read32(${a}));`,
            );
          }
        }
        return false;
      }
      case 4: {
        const i = code.u();
        out.push(store ? `r8[0] = c.alu8(${aop}, r8[0], ${i});` : `c.alu8(${aop}, r8[0], ${i});`);
        return false;
      }
      default: {
        const i = code.i32();
        out.push(store ? `r[0] = c.alu32(${aop}, r[0], ${i});` : `c.alu32(${aop}, r[0], ${i});`);
        return false;
      }
    }
  }
  if (op >= 0x40 && op <= 0x4f) {
    const n = op & 7, dec = op >= 0x48 ? 1 : 0;
    out.push(`r[${n}] = c.incdec(r[${n}], (r[${n}] ${dec ? "-" : "+"} 1) | 0, 31, ${dec});`);
    return false;
  }
  if (op >= 0x50 && op <= 0x57) {
    out.push(`c.push32(r[${op & 7}]);`);
    return false;
  }
  if (op >= 0x58 && op <= 0x5f) {
    out.push(`r[${op & 7}] = c.pop32();`);
    return false;
  }
  if (op >= 0x70 && op <= 0x7f) {
    const d = code.s8();
    const nx = next();
    out.push(`c.eip = c.cond(${op & 15}) ? ${(nx + d) | 0} : ${nx};`);
    return true;
  }
  if (op >= 0xb0 && op <= 0xb7) {
    out.push(`${R8NAME[op & 7]} = ${code.u()};`);
    return false;
  }
  if (op >= 0xb8 && op <= 0xbf) {
    out.push(`r[${op & 7}] = ${code.i32()};`);
    return false;
  }
  switch (op) {
    case 0x68:
      out.push(`c.push32(${code.i32()});`);
      return false;
    case 0x6a:
      out.push(`c.push32(${code.s8()});`);
      return false;
    case 0x69:
    case 0x6b: {
      const m = code.u();
      const src = m >= 0xc0 ? `r[${m & 7}]` : `c.read32(${eaExpr(code, m, seg)})`;
      const imm = op === 0x6b ? code.s8() : code.i32();
      out.push(`r[${(m >> 3) & 7}] = ops.imul2(c, ${src}, ${imm}, false);`);
      return false;
    }
    case 0x80:
    case 0x81:
    case 0x83: {
      const m = code.u();
      const aop = (m >> 3) & 7, store = aop !== 7;
      if (op === 0x80) {
        if (m >= 0xc0) {
          const d = R8NAME[m & 7], i = code.u();
          out.push(store ? `${d} = c.alu8(${aop}, ${d}, ${i});` : `c.alu8(${aop}, ${d}, ${i});`);
        } else {
          const a = eaExpr(code, m, seg), i = code.u();
          out.push(
            store
              ? `{ const a = ${a}; ${wchk()}c.write8(a, c.alu8(${aop}, c.readW8(a), ${i})); }`
              : `c.alu8(${aop}, c.read8(${a}), ${i});`,
          );
        }
        return false;
      }
      if (m >= 0xc0) {
        const d = `r[${m & 7}]`, i = op === 0x83 ? code.s8() : code.i32();
        out.push(store ? `${d} = c.alu32(${aop}, ${d}, ${i});` : `c.alu32(${aop}, ${d}, ${i});`);
      } else {
        const a = eaExpr(code, m, seg), i = op === 0x83 ? code.s8() : code.i32();
        out.push(
          store
            ? `{ const a = ${a}; ${wchk()}c.write32(a, c.alu32(${aop}, c.readW32(a), ${i})); }`
            : `c.alu32(${aop}, c.read32(${a}), ${i});`,
        );
      }
      return false;
    }
    case 0x84: {
      const m = code.u();
      const src = m >= 0xc0 ? R8NAME[m & 7] : `c.read8(${eaExpr(code, m, seg)})`;
      out.push(`c.logic(${src} & ${R8NAME[(m >> 3) & 7]}, 7);`);
      return false;
    }
    case 0x85: {
      const m = code.u();
      const src = m >= 0xc0 ? `r[${m & 7}]` : `c.read32(${eaExpr(code, m, seg)})`;
      out.push(`c.logic(${src} & r[${(m >> 3) & 7}], 31);`);
      return false;
    }
    case 0x88: {
      const m = code.u();
      const g = R8NAME[(m >> 3) & 7];
      if (m >= 0xc0) out.push(`${R8NAME[m & 7]} = ${g};`);
      else out.push(`{ const a = ${eaExpr(code, m, seg)}; ${wchk()}c.write8(a, ${g}); }`);
      return false;
    }
    case 0x89: {
      const m = code.u();
      const g = `r[${(m >> 3) & 7}]`;
      if (m >= 0xc0) out.push(`r[${m & 7}] = ${g};`);
      else out.push(`{ const a = ${eaExpr(code, m, seg)}; ${wchk()}c.write32(a, ${g}); }`);
      return false;
    }
    case 0x8a: {
      const m = code.u();
      const src = m >= 0xc0 ? R8NAME[m & 7] : `c.read8(${eaExpr(code, m, seg)})`;
      out.push(`${R8NAME[(m >> 3) & 7]} = ${src};`);
      return false;
    }
    case 0x8b: {
      const m = code.u();
      const src = m >= 0xc0 ? `r[${m & 7}]` : `c.read32(${eaExpr(code, m, seg)})`;
      out.push(`r[${(m >> 3) & 7}] = ${src};`);
      return false;
    }
    case 0x8d: {
      const m = code.u();
      if (m >= 0xc0) throw UNSUPPORTED;
      out.push(`r[${(m >> 3) & 7}] = ${offExpr(code, m)};`);
      return false;
    }
    case 0x90:
      return false;
    case 0x98:
      out.push(`r[0] = (r[0] << 16) >> 16;`);
      return false;
    case 0x99:
      out.push(`r[2] = r[0] >> 31;`);
      return false;
    case 0xa8:
      out.push(`c.logic(r8[0] & ${code.u()}, 7);`);
      return false;
    case 0xa9:
      out.push(`c.logic(r[0] & ${code.i32()}, 31);`);
      return false;
    case 0xc1:
    case 0xd1:
    case 0xd3: {
      const m = code.u();
      const kind = (m >> 3) & 7;
      if (m >= 0xc0) {
        const cnt = op === 0xc1 ? String(code.u()) : op === 0xd1 ? "1" : "r8[4]";
        out.push(`r[${m & 7}] = ops.shift(c, ${kind}, r[${m & 7}], ${cnt}, 32);`);
      } else {
        const a = eaExpr(code, m, seg);
        const cnt = op === 0xc1 ? String(code.u()) : op === 0xd1 ? "1" : "r8[4]";
        out.push(
          `{ const a = ${a}; ${wchk()}c.write32(a, ops.shift(c, ${kind}, c.readW32(a), ${cnt}, 32)); }`,
        );
      }
      return false;
    }
    case 0xc3:
      out.push(`c.eip = c.pop32();`);
      return true;
    case 0xc9:
      out.push(`exec.leave(c, false);`);
      return false;
    case 0x87: {
      const m = code.u();
      const g = (m >> 3) & 7;
      if (m >= 0xc0) out.push(`{ const t = r[${m & 7}]; r[${m & 7}] = r[${g}]; r[${g}] = t; }`);
      else out.push(`{ const a = ${eaExpr(code, m, seg)}; ${wchk()}exec.xchgMem32(c, a, ${g}); }`);
      return false;
    }
    case 0xf6: {
      if (((code.u8[code.pa] >> 3) & 7) > 1) {
        // NOT/NEG/MUL/IMUL/DIV/IDIV r/m8
        stepModrm(code, seg, 0);
        out.push(STEP);
        return false;
      }
      const m = code.u();
      const src = m >= 0xc0 ? R8NAME[m & 7] : `c.read8(${eaExpr(code, m, seg)})`;
      out.push(`c.logic(${src} & ${code.u()}, 7);`);
      return false;
    }
    case 0xc6:
    case 0xc7: {
      const m = code.u();
      if (((m >> 3) & 7) !== 0) throw UNSUPPORTED;
      if (m >= 0xc0) {
        out.push(op === 0xc6 ? `${R8NAME[m & 7]} = ${code.u()};` : `r[${m & 7}] = ${code.i32()};`);
      } else {
        const a = eaExpr(code, m, seg);
        const w = wchk();
        out.push(
          op === 0xc6
            ? `{ const a = ${a}; ${w}c.write8(a, ${code.u()}); }`
            : `{ const a = ${a}; ${w}c.write32(a, ${code.i32()}); }`,
        );
      }
      return false;
    }
    case 0xe8: {
      const d = code.i32();
      const nx = next();
      out.push(`c.push32(${nx});`, `c.eip = ${(nx + d) | 0};`);
      return true;
    }
    case 0xe9: {
      const d = code.i32();
      out.push(`c.eip = ${(next() + d) | 0};`);
      return true;
    }
    case 0xeb: {
      const d = code.s8();
      out.push(`c.eip = ${(next() + d) | 0};`);
      return true;
    }
    case 0xf7: {
      const m = code.u();
      const k = (m >> 3) & 7;
      const isReg = m >= 0xc0;
      const a = isReg ? "" : eaExpr(code, m, seg);
      const rd = isReg ? `r[${m & 7}]` : `c.read32(a)`;
      const pre = isReg ? "" : `const a = ${a}; `;
      switch (k) {
        case 0:
        case 1:
          out.push(`{ ${pre}c.logic(${rd} & ${code.i32()}, 31); }`);
          return false;
        case 2:
          out.push(
            isReg
              ? `r[${m & 7}] = ~r[${m & 7}];`
              : `{ ${pre}${wchk()}c.write32(a, ~c.readW32(a)); }`,
          );
          return false;
        case 3:
          out.push(
            isReg
              ? `{ const v = r[${m & 7}]; r[${m & 7}] = c.sub(0, v, -v | 0, 31); }`
              : `{ ${pre}${wchk()}const v = c.readW32(a); c.write32(a, c.sub(0, v, -v | 0, 31)); }`,
          );
          return false;
        case 4:
        case 5:
          out.push(`{ ${pre}ops.multiply(c, ${rd}, 32, ${k === 5}); }`);
          return false;
        default:
          out.push(`{ ${pre}ops.divide(c, ${rd}, 32, ${k === 7}); }`);
          return false;
      }
    }
    // falls through (never: every inner case returns)
    case 0xff: {
      const m = code.u();
      const k = (m >> 3) & 7;
      const isReg = m >= 0xc0;
      const a = isReg ? "" : eaExpr(code, m, seg);
      const rd = isReg ? `r[${m & 7}]` : `c.read32(${a})`;
      switch (k) {
        case 0:
        case 1:
          if (isReg) {
            const n = m & 7;
            out.push(`r[${n}] = c.incdec(r[${n}], (r[${n}] ${k ? "-" : "+"} 1) | 0, 31, ${k});`);
          } else {
            out.push(
              `{ const a = ${a}; ${wchk()}const v = c.readW32(a); c.write32(a, c.incdec(v, (v ${
                k ? "-" : "+"
              } 1) | 0, 31, ${k})); }`,
            );
          }
          return false;
        case 2: {
          const nx = next();
          out.push(`{ const t = ${rd}; c.push32(${nx}); c.eip = t; }`);
          return true;
        }
        case 4:
          out.push(`c.eip = ${rd};`);
          return true;
        case 6:
          out.push(`c.push32(${rd});`);
          return false;
        default:
          throw UNSUPPORTED;
      }
    }
    // falls through (never: every inner case returns or throws)
    case 0x0f:
      return emit0F(code, out, next, seg);
    case 0xa0:
    case 0xa1:
    case 0xa2:
    case 0xa3: {
      // MOV AL/EAX <-> moffs32 (DS unless overridden).
      const s = seg >= 0 ? seg : 3;
      const a = `((${code.i32()} + sb[${s}]) | 0)`;
      lastSeg = s;
      out.push(
        op === 0xa0
          ? `r8[0] = c.read8(${a});`
          : op === 0xa1
          ? `r[0] = c.read32(${a});`
          : `{ const a = ${a}; ${wchk()}c.${
            op === 0xa2 ? "write8(a, r8[0])" : "write32(a, r[0])"
          }; }`,
      );
      return false;
    }
    default:
      return steppable(code, out, op, seg);
  }
}

/**
 * The interpreter runs this one-byte-opcode instruction inside the block, when
 * its length is known here and it neither transfers control nor changes the
 * mode, the interrupt flag or the code segment (see the module comment);
 * otherwise UNSUPPORTED.
 */
function steppable(code: Code, out: string[], op: number, seg: number): boolean {
  switch (op) {
    case 0x86: // XCHG r/m8, r8
    case 0xd0: // shifts and rotates by 1 and CL
    case 0xd2:
    case 0xd3:
      stepModrm(code, seg, 0);
      break;
    case 0xc0: // shifts and rotates by imm8
    case 0xc1:
      stepModrm(code, seg, 1);
      break;
    case 0xfe: { // INC/DEC r/m8
      if (((code.u8[code.pa] >> 3) & 7) > 1) throw UNSUPPORTED;
      stepModrm(code, seg, 0);
      break;
    }
    case 0xa4: // string instructions without REP (not INS/OUTS)
    case 0xa5:
    case 0xa6:
    case 0xa7:
    case 0xaa:
    case 0xab:
    case 0xac:
    case 0xad:
    case 0xae:
    case 0xaf:
    case 0x9c: // PUSHF (POPF can change IF and TF: not here)
    case 0x9e: // SAHF, LAHF
    case 0x9f:
    case 0xf5: // CMC, CLC, STC, CLD, STD
    case 0xf8:
    case 0xf9:
    case 0xfc:
    case 0xfd:
      break;
    default:
      throw UNSUPPORTED;
  }
  out.push(STEP);
  return false;
}

/** Consume a ModRM operand (32-bit addressing) and `imm` immediate bytes, for a stepped instruction. */
function stepModrm(code: Code, seg: number, imm: number): void {
  const m = code.u();
  if (m < 0xc0) eaExpr(code, m, seg);
  for (let i = 0; i < imm; i++) code.u();
}

/**
 * An instruction with the operand-size prefix: 16-bit MOVs between registers
 * and memory and MOV r16, imm16 inline; the common integer forms (ALU, TEST,
 * INC/DEC, PUSH/POP, shifts, MOVZX/MOVSX, BT*, CMPXCHG, XADD, ...) through the
 * interpreter (see `steppable`); anything else UNSUPPORTED.
 */
function emit16(code: Code, out: string[], op: number, seg: number): boolean {
  if (op === 0x89 || op === 0x8b) {
    const m = code.u();
    const g = `r16[${((m >> 3) & 7) << 1}]`;
    if (m >= 0xc0) {
      const e = `r16[${(m & 7) << 1}]`;
      out.push(op === 0x89 ? `${e} = ${g};` : `${g} = ${e};`);
    } else {
      const a = eaExpr(code, m, seg);
      out.push(
        op === 0x89 ? `{ const a = ${a}; ${wchk()}c.write16(a, ${g}); }` : `${g} = c.read16(${a});`,
      );
    }
    return false;
  }
  if (op >= 0xb8 && op <= 0xbf) {
    out.push(`r16[${(op & 7) << 1}] = ${code.u16()};`);
    return false;
  }
  if (op === 0xa1 || op === 0xa3) {
    const s = seg >= 0 ? seg : 3;
    const a = `((${code.i32()} + sb[${s}]) | 0)`;
    lastSeg = s;
    out.push(
      op === 0xa1
        ? `r16[0] = c.read16(${a});`
        : `{ const a = ${a}; ${wchk()}c.write16(a, r16[0]); }`,
    );
    return false;
  }
  if (op < 0x40 && (op & 7) < 6) {
    // ALU r/m16, r16 / r16, r/m16 / AX, imm16
    const form = op & 7;
    if (form < 4) stepModrm(code, seg, 0);
    else code.u16();
  } else if (
    (op >= 0x40 && op <= 0x5f) || op === 0x98 || op === 0x99 || (op >= 0xa4 && op <= 0xaf)
  ) {
    // INC/DEC/PUSH/POP r16, CBW/CWD, 16-bit string instructions
    if (op === 0xa8) code.u();
    else if (op === 0xa9) code.u16();
  } else {
    switch (op) {
      case 0x69:
        stepModrm(code, seg, 2);
        break;
      case 0x6b:
      case 0x83:
      case 0xc1:
        stepModrm(code, seg, 1);
        break;
      case 0x81:
        stepModrm(code, seg, 2);
        break;
      case 0x85:
      case 0x87:
      case 0xd1:
      case 0xd3:
        stepModrm(code, seg, 0);
        break;
      case 0x8d: // LEA r16 (a register operand is #UD: the interpreter raises it)
        stepModrm(code, seg, 0);
        break;
      case 0xc7: {
        if (((code.u8[code.pa] >> 3) & 7) !== 0) throw UNSUPPORTED;
        stepModrm(code, seg, 2);
        break;
      }
      case 0xf7: {
        const k = (code.u8[code.pa] >> 3) & 7;
        stepModrm(code, seg, k < 2 ? 2 : 0);
        break;
      }
      case 0xff: {
        const k = (code.u8[code.pa] >> 3) & 7;
        if (k !== 0 && k !== 1 && k !== 6) throw UNSUPPORTED;
        stepModrm(code, seg, 0);
        break;
      }
      case 0x0f: {
        const op2 = code.u();
        if (!steppable0F(code, op2, seg)) throw UNSUPPORTED;
        break;
      }
      default:
        throw UNSUPPORTED;
    }
  }
  out.push(STEP);
  return false;
}

/**
 * Consume a 0F-prefixed instruction the interpreter may run inside a block
 * (BT*, CMPXCHG, XADD, BSF/BSR, SHLD/SHRD, BSWAP, and the 16-bit forms of
 * MOVZX/MOVSX, IMUL and CMOVcc); false when it is not one of them.
 */
function steppable0F(code: Code, op: number, seg: number): boolean {
  if (op >= 0xc8 && op <= 0xcf) return true; // BSWAP
  if (op >= 0x40 && op <= 0x4f) {
    stepModrm(code, seg, 0);
    return true;
  }
  switch (op) {
    case 0xa3:
    case 0xab:
    case 0xb3:
    case 0xbb:
    case 0xb0:
    case 0xb1:
    case 0xc0:
    case 0xc1:
    case 0xbc:
    case 0xbd:
    case 0xa5:
    case 0xad:
    case 0xaf:
    case 0xb6:
    case 0xb7:
    case 0xbe:
    case 0xbf:
      stepModrm(code, seg, 0);
      return true;
    case 0xba: {
      if (((code.u8[code.pa] >> 3) & 7) < 4) return false; // BT imm8 group: /4-/7 only
      stepModrm(code, seg, 1);
      return true;
    }
    case 0xa4:
    case 0xac:
      stepModrm(code, seg, 1);
      return true;
    default:
      return false;
  }
}

function emit0F(code: Code, out: string[], next: () => number, seg: number): boolean {
  const op = code.u();
  if (op >= 0x80 && op <= 0x8f) {
    const d = code.i32();
    const nx = next();
    out.push(`c.eip = c.cond(${op & 15}) ? ${(nx + d) | 0} : ${nx};`);
    return true;
  }
  if (op >= 0x40 && op <= 0x4f) {
    const m = code.u();
    const src = m >= 0xc0 ? `r[${m & 7}]` : `c.read32(${eaExpr(code, m, seg)})`;
    out.push(`{ const v = ${src}; if (c.cond(${op & 15})) r[${(m >> 3) & 7}] = v; }`);
    return false;
  }
  if (op >= 0x90 && op <= 0x9f) {
    const m = code.u();
    if (m >= 0xc0) out.push(`${R8NAME[m & 7]} = c.cond(${op & 15}) ? 1 : 0;`);
    else {out.push(
        `{ const a = ${eaExpr(code, m, seg)}; ${wchk()}c.write8(a, c.cond(${op & 15}) ? 1 : 0); }`,
      );}
    return false;
  }
  switch (op) {
    case 0xb6:
    case 0xbe: {
      const m = code.u();
      const src = m >= 0xc0 ? R8NAME[m & 7] : `c.read8(${eaExpr(code, m, seg)})`;
      out.push(`r[${(m >> 3) & 7}] = ${op === 0xbe ? `(${src} << 24) >> 24` : src};`);
      return false;
    }
    case 0xb7:
    case 0xbf: {
      const m = code.u();
      const src = m >= 0xc0 ? `r16[${(m & 7) << 1}]` : `c.read16(${eaExpr(code, m, seg)})`;
      out.push(`r[${(m >> 3) & 7}] = ${op === 0xbf ? `(${src} << 16) >> 16` : src};`);
      return false;
    }
    case 0xaf: {
      const m = code.u();
      const g = `r[${(m >> 3) & 7}]`;
      const src = m >= 0xc0 ? `r[${m & 7}]` : `c.read32(${eaExpr(code, m, seg)})`;
      out.push(`${g} = ops.imul2(c, ${g}, ${src}, false);`);
      return false;
    }
    case 0x1f: {
      const m = code.u();
      if (m < 0xc0) eaExpr(code, m, seg);
      return false;
    }
    default:
      if (!steppable0F(code, op, seg)) throw UNSUPPORTED;
      out.push(STEP);
      return false;
  }
}
