/**
 * Instruction dispatch: decode prefixes and the opcode, then execute.
 *
 * `step(cpu)` runs one instruction. It reads prefixes, switches on the
 * one-byte opcode (and on the second byte for the 0F map), fetches the ModRM,
 * SIB, displacement and immediates, and executes. Every handler fetches all of
 * its instruction bytes before it touches memory or registers, so a fault
 * (thrown as the CPU's exit object) leaves the machine as it was and EIP can be
 * rolled back to the instruction's start. Families with more machinery live in
 * their own files (`ops.ts`: shifts, multiply/divide, BCD, bit ops;
 * `string.ts`; `system.ts`; `fpu.ts`).
 *
 * @module
 */

import {
  type CPU,
  CR0_EM,
  CR0_MP,
  CR0_TS,
  CR4_TSD,
  CS,
  DS,
  EAX,
  EBP,
  EBX,
  ECX,
  EDX,
  ES,
  ESP,
  FS,
  GS,
  P_A16,
  P_LOCK,
  P_O16,
  P_REPNZ,
  P_REPZ,
  P_SEG_SHIFT,
  SS,
} from "./cpu.ts";
import { AF, CF, DF, IF, IOPL, PF, SF, Vec, ZF } from "./flags.ts";
import {
  aad,
  aam,
  asciiAdjust,
  bitOp,
  bsf,
  bsr,
  daaDas,
  divide,
  imul2,
  multiply,
  shift,
  shiftDouble,
} from "./ops.ts";
import { stringOp } from "./string.ts";
import { cpuid } from "./cpuid.ts";
import * as sys from "./system.ts";

/** Byte-register index in `regs8` for ModRM register number r (AL CL DL BL AH CH DH BH). */
export const R8: Uint8Array = new Uint8Array([0, 4, 8, 12, 1, 5, 9, 13]);

/** 1 for the bytes that are prefixes. */
const PREFIX = new Uint8Array(256);
for (const p of [0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65, 0x66, 0x67, 0xf0, 0xf2, 0xf3]) PREFIX[p] = 1;

/** No active instruction-length limit. */
export const NO_FETCH_LIMIT = 0x7fffffff;

/** Execute one instruction. */
export function step(cpu: CPU): void {
  let op = cpu.fetch8();
  if (PREFIX[op] === 0) {
    cpu.pfx = 0;
    exec(cpu, op);
    return;
  }
  let pfx = 0, n = 0;
  do {
    switch (op) {
      case 0x66:
        pfx |= P_O16;
        break;
      case 0x67:
        pfx |= P_A16;
        break;
      case 0xf0:
        pfx |= P_LOCK;
        break;
      case 0xf2:
        pfx = (pfx & ~P_REPZ) | P_REPNZ;
        break;
      case 0xf3:
        pfx = (pfx & ~P_REPNZ) | P_REPZ;
        break;
      case 0x64:
        pfx = (pfx & 0xff) | ((FS + 1) << P_SEG_SHIFT);
        break;
      case 0x65:
        pfx = (pfx & 0xff) | ((GS + 1) << P_SEG_SHIFT);
        break;
      default: // 26 2E 36 3E
        pfx = (pfx & 0xff) | ((((op >> 3) & 3) + 1) << P_SEG_SHIFT);
        break;
    }
    if (++n === 4) {
      // Long prefix runs may exceed the 15-byte limit: fetch the rest byte by byte, checked.
      cpu.fetchLimit = (cpu.instrStart + 15) | 0;
      cpu.fetchPage = 1;
    }
    op = cpu.fetch8();
  } while (PREFIX[op] !== 0);
  cpu.pfx = pfx;
  if ((pfx & P_LOCK) !== 0) checkLock(cpu, op);
  exec(cpu, op);
  cpu.fetchLimit = NO_FETCH_LIMIT;
}

/** Peek at code byte `i` bytes past the current fetch position. */
function peekCode(cpu: CPU, i: number): number {
  // Looking ahead counts against the 15-byte limit like a fetch would.
  if (cpu.fetchLimit !== NO_FETCH_LIMIT && ((cpu.eip + i - cpu.fetchLimit) | 0) >= 0) cpu.gp(0);
  return cpu.read8((cpu.csBase + cpu.eip + i) | 0);
}

/**
 * LOCK is valid only on read-modify-write instructions with a memory
 * destination. `op` is the opcode byte; `b1`, `b2` the bytes after it (for 0F,
 * the second opcode byte and the ModRM; otherwise the ModRM).
 */
export function isLockable(op: number, b1: number, b2: number): boolean {
  if (op === 0x0f) {
    const mem = b2 < 0xc0, reg = (b2 >> 3) & 7;
    switch (b1) {
      case 0xab:
      case 0xb3:
      case 0xbb:
      case 0xb0:
      case 0xb1:
      case 0xc0:
      case 0xc1:
        return mem;
      case 0xba:
        return mem && reg >= 5;
      case 0xc7:
        return mem && reg === 1;
    }
    return false;
  }
  const mem = b1 < 0xc0, reg = (b1 >> 3) & 7;
  if (op < 0x40 && (op & 7) < 2 && (op & 0x38) !== 0x38) return mem;
  if (op >= 0x80 && op <= 0x83) return mem && reg !== 7;
  if (op === 0x86 || op === 0x87) return mem;
  if (op === 0xf6 || op === 0xf7) return mem && (reg === 2 || reg === 3);
  if (op === 0xfe || op === 0xff) return mem && reg < 2;
  return false;
}

function checkLock(cpu: CPU, op: number): void {
  const b1 = peekCode(cpu, 0);
  const b2 = op === 0x0f ? peekCode(cpu, 1) : 0;
  if (!isLockable(op, b1, b2)) cpu.ud();
}

// ------------------------------------------------------------------ operand helpers

function getReg(cpu: CPU, r: number, o16: boolean): number {
  return o16 ? cpu.regs16[r << 1] : cpu.regs[r];
}

function setReg(cpu: CPU, r: number, v: number, o16: boolean): void {
  if (o16) cpu.regs16[r << 1] = v;
  else cpu.regs[r] = v;
}

/** Read the r/m operand of ModRM `m` at operand size (16 zero-extended, or 32). */
function readRM(cpu: CPU, m: number, o16: boolean): number {
  if (m >= 0xc0) return o16 ? cpu.regs16[(m & 7) << 1] : cpu.regs[m & 7];
  const a = cpu.modrmAddr(m);
  return o16 ? cpu.read16(a) : cpu.read32(a);
}

function readRM8(cpu: CPU, m: number): number {
  if (m >= 0xc0) return cpu.regs8[R8[m & 7]];
  return cpu.read8(cpu.modrmAddr(m));
}

function readRM16(cpu: CPU, m: number): number {
  if (m >= 0xc0) return cpu.regs16[(m & 7) << 1];
  return cpu.read16(cpu.modrmAddr(m));
}

function push(cpu: CPU, v: number, o16: boolean): void {
  if (o16) cpu.push16(v);
  else cpu.push32(v);
}

function pop(cpu: CPU, o16: boolean): number {
  return o16 ? cpu.pop16() : cpu.pop32();
}

/** Jump to `target` (an offset in CS), truncated to 16 bits for a 16-bit operand size. */
function jumpTo(cpu: CPU, target: number, o16: boolean): void {
  cpu.eip = o16 ? target & 0xffff : target | 0;
}

/** The count register for LOOP/JECXZ and string instructions: ECX or CX by address size. */
function countReg(cpu: CPU): number {
  return (cpu.pfx & P_A16) !== 0 ? cpu.regs16[ECX << 1] : cpu.regs[ECX];
}

/** #GP(0) unless the (possibly overridden) segment `def` is a writable data segment. */
export function checkSegWrite(cpu: CPU, def: number): void {
  const ov = cpu.pfx >> P_SEG_SHIFT;
  const seg = ov !== 0 ? ov - 1 : def;
  if ((cpu.sflags[seg] & 0x1a) !== 0x12) cpu.segWriteFault(seg);
}

/** The x87 #NM check: CR0.EM or CR0.TS set. */
function fpuAvailable(cpu: CPU): void {
  if ((cpu.cr0 & (CR0_EM | CR0_TS)) !== 0) cpu.fault(Vec.NM);
}

/** Group 1 (80..83) and the 00..3D forms: ALU op on r/m and a value. */
function aluRM(cpu: CPU, op: number, m: number, b: number, o16: boolean): void {
  if (m >= 0xc0) {
    const r = m & 7;
    if (o16) {
      const v = cpu.alu16(op, cpu.regs16[r << 1], b & 0xffff);
      if (op !== 7) cpu.regs16[r << 1] = v;
    } else {
      const v = cpu.alu32(op, cpu.regs[r], b);
      if (op !== 7) cpu.regs[r] = v;
    }
  } else if (op === 7) {
    const a = cpu.modrmAddr(m);
    if (o16) cpu.alu16(op, cpu.read16(a), b & 0xffff);
    else cpu.alu32(op, cpu.read32(a), b);
  } else {
    const a = cpu.modrmAddrW(m);
    if (o16) cpu.write16(a, cpu.alu16(op, cpu.readW16(a), b & 0xffff));
    else cpu.write32(a, cpu.alu32(op, cpu.readW32(a), b));
  }
}

function aluRM8(cpu: CPU, op: number, m: number, b: number): void {
  if (m >= 0xc0) {
    const r = R8[m & 7];
    const v = cpu.alu8(op, cpu.regs8[r], b & 0xff);
    if (op !== 7) cpu.regs8[r] = v;
  } else if (op === 7) {
    cpu.alu8(op, cpu.read8(cpu.modrmAddr(m)), b & 0xff);
  } else {
    const a = cpu.modrmAddrW(m);
    cpu.write8(a, cpu.alu8(op, cpu.readW8(a), b & 0xff));
  }
}

// ------------------------------------------------------------------ one-byte map

function exec(cpu: CPU, op: number): void {
  const regs = cpu.regs;
  switch (op) {
    // ALU: 00-3F in groups of 8: Eb,Gb / Ev,Gv / Gb,Eb / Gv,Ev / AL,Ib / eAX,Iv
    case 0x00:
    case 0x08:
    case 0x10:
    case 0x18:
    case 0x20:
    case 0x28:
    case 0x30:
    case 0x38: {
      const m = cpu.fetch8();
      aluRM8(cpu, op >> 3, m, cpu.regs8[R8[(m >> 3) & 7]]);
      return;
    }
    case 0x01:
    case 0x09:
    case 0x11:
    case 0x19:
    case 0x21:
    case 0x29:
    case 0x31:
    case 0x39: {
      const m = cpu.fetch8();
      if ((cpu.pfx & P_O16) === 0) {
        const o = op >> 3, b = regs[(m >> 3) & 7];
        if (m >= 0xc0) {
          const v = cpu.alu32(o, regs[m & 7], b);
          if (o !== 7) regs[m & 7] = v;
        } else if (o === 7) {
          cpu.alu32(o, cpu.read32(cpu.modrmAddr(m)), b);
        } else {
          const a = cpu.modrmAddrW(m);
          cpu.write32(a, cpu.alu32(o, cpu.readW32(a), b));
        }
        return;
      }
      aluRM(cpu, op >> 3, m, cpu.regs16[((m >> 3) & 7) << 1], true);
      return;
    }
    case 0x02:
    case 0x0a:
    case 0x12:
    case 0x1a:
    case 0x22:
    case 0x2a:
    case 0x32:
    case 0x3a: {
      const m = cpu.fetch8();
      const b = readRM8(cpu, m);
      const r = R8[(m >> 3) & 7];
      const v = cpu.alu8(op >> 3, cpu.regs8[r], b);
      if (op !== 0x3a) cpu.regs8[r] = v;
      return;
    }
    case 0x03:
    case 0x0b:
    case 0x13:
    case 0x1b:
    case 0x23:
    case 0x2b:
    case 0x33:
    case 0x3b: {
      const m = cpu.fetch8();
      const r = (m >> 3) & 7;
      if ((cpu.pfx & P_O16) !== 0) {
        const b = readRM16(cpu, m);
        const v = cpu.alu16(op >> 3, cpu.regs16[r << 1], b);
        if (op !== 0x3b) cpu.regs16[r << 1] = v;
      } else {
        const b = m >= 0xc0 ? regs[m & 7] : cpu.read32(cpu.modrmAddr(m));
        const v = cpu.alu32(op >> 3, regs[r], b);
        if (op !== 0x3b) regs[r] = v;
      }
      return;
    }
    case 0x04:
    case 0x0c:
    case 0x14:
    case 0x1c:
    case 0x24:
    case 0x2c:
    case 0x34:
    case 0x3c: {
      const b = cpu.fetch8();
      const v = cpu.alu8(op >> 3, cpu.regs8[0], b);
      if (op !== 0x3c) cpu.regs8[0] = v;
      return;
    }
    case 0x05:
    case 0x0d:
    case 0x15:
    case 0x1d:
    case 0x25:
    case 0x2d:
    case 0x35:
    case 0x3d: {
      if ((cpu.pfx & P_O16) !== 0) {
        const v = cpu.alu16(op >> 3, cpu.regs16[0], cpu.fetch16());
        if (op !== 0x3d) cpu.regs16[0] = v;
      } else {
        const v = cpu.alu32(op >> 3, regs[EAX], cpu.fetch32());
        if (op !== 0x3d) regs[EAX] = v;
      }
      return;
    }

    case 0x0f:
      return exec0F(cpu, cpu.fetch8());

    case 0x40:
    case 0x41:
    case 0x42:
    case 0x43:
    case 0x44:
    case 0x45:
    case 0x46:
    case 0x47: {
      const r = op & 7;
      if ((cpu.pfx & P_O16) !== 0) {
        const a = cpu.regs16[r << 1];
        cpu.regs16[r << 1] = cpu.incdec(a, (a + 1) & 0xffff, 15, 0);
      } else {
        const a = regs[r];
        regs[r] = cpu.incdec(a, (a + 1) | 0, 31, 0);
      }
      return;
    }
    case 0x48:
    case 0x49:
    case 0x4a:
    case 0x4b:
    case 0x4c:
    case 0x4d:
    case 0x4e:
    case 0x4f: {
      const r = op & 7;
      if ((cpu.pfx & P_O16) !== 0) {
        const a = cpu.regs16[r << 1];
        cpu.regs16[r << 1] = cpu.incdec(a, (a - 1) & 0xffff, 15, 1);
      } else {
        const a = regs[r];
        regs[r] = cpu.incdec(a, (a - 1) | 0, 31, 1);
      }
      return;
    }
    case 0x50:
    case 0x51:
    case 0x52:
    case 0x53:
    case 0x54:
    case 0x55:
    case 0x56:
    case 0x57:
      if ((cpu.pfx & P_O16) !== 0) cpu.push16(cpu.regs16[(op & 7) << 1]);
      else cpu.push32(regs[op & 7]);
      return;
    case 0x58:
    case 0x59:
    case 0x5a:
    case 0x5b:
    case 0x5c:
    case 0x5d:
    case 0x5e:
    case 0x5f:
      if ((cpu.pfx & P_O16) !== 0) cpu.regs16[(op & 7) << 1] = cpu.pop16();
      else regs[op & 7] = cpu.pop32();
      return;
    case 0x68:
      if ((cpu.pfx & P_O16) !== 0) cpu.push16(cpu.fetch16());
      else cpu.push32(cpu.fetch32());
      return;
    case 0x69:
    case 0x6b: {
      const m = cpu.fetch8();
      const o16 = (cpu.pfx & P_O16) !== 0;
      const a = readRM(cpu, m, o16);
      const b = op === 0x6b ? cpu.fetchS8() : o16 ? cpu.fetch16() : cpu.fetch32();
      // Note: the immediate follows the ModRM operand's bytes; readRM fetched them first.
      setReg(cpu, (m >> 3) & 7, imul2(cpu, a, b, o16), o16);
      return;
    }
    case 0x6a:
      if ((cpu.pfx & P_O16) !== 0) cpu.push16(cpu.fetchS8() & 0xffff);
      else cpu.push32(cpu.fetchS8());
      return;
    case 0x70:
    case 0x71:
    case 0x72:
    case 0x73:
    case 0x74:
    case 0x75:
    case 0x76:
    case 0x77:
    case 0x78:
    case 0x79:
    case 0x7a:
    case 0x7b:
    case 0x7c:
    case 0x7d:
    case 0x7e:
    case 0x7f: {
      const d = cpu.fetchS8();
      if (cpu.cond(op & 15)) jumpTo(cpu, cpu.eip + d, (cpu.pfx & P_O16) !== 0);
      return;
    }

    case 0x80:
    case 0x82: {
      const m = cpu.fetch8();
      if (m >= 0xc0) aluRM8(cpu, (m >> 3) & 7, m, cpu.fetch8());
      else {
        const o = (m >> 3) & 7;
        const a = cpu.modrmAddr(m);
        const b = cpu.fetch8();
        if (o === 7) cpu.alu8(o, cpu.read8(a), b);
        else {
          cpu.checkEaWrite();
          cpu.write8(a, cpu.alu8(o, cpu.readW8(a), b));
        }
      }
      return;
    }
    case 0x81:
    case 0x83: {
      const m = cpu.fetch8();
      const o16 = (cpu.pfx & P_O16) !== 0;
      const o = (m >> 3) & 7;
      if (m >= 0xc0) {
        const b = op === 0x83 ? cpu.fetchS8() : o16 ? cpu.fetch16() : cpu.fetch32();
        aluRM(cpu, o, m, b, o16);
      } else {
        const a = cpu.modrmAddr(m);
        const b = op === 0x83 ? cpu.fetchS8() : o16 ? cpu.fetch16() : cpu.fetch32();
        if (o === 7) {
          if (o16) cpu.alu16(o, cpu.read16(a), b & 0xffff);
          else cpu.alu32(o, cpu.read32(a), b);
        } else {
          cpu.checkEaWrite();
          if (o16) cpu.write16(a, cpu.alu16(o, cpu.readW16(a), b & 0xffff));
          else cpu.write32(a, cpu.alu32(o, cpu.readW32(a), b));
        }
      }
      return;
    }
    case 0x84: {
      const m = cpu.fetch8();
      cpu.logic(readRM8(cpu, m) & cpu.regs8[R8[(m >> 3) & 7]], 7);
      return;
    }
    case 0x85: {
      const m = cpu.fetch8();
      if ((cpu.pfx & P_O16) !== 0) {
        cpu.logic(readRM16(cpu, m) & cpu.regs16[((m >> 3) & 7) << 1], 15);
      } else cpu.logic(readRM(cpu, m, false) & regs[(m >> 3) & 7], 31);
      return;
    }
    case 0x86: {
      const m = cpu.fetch8();
      const r = R8[(m >> 3) & 7];
      if (m >= 0xc0) {
        const s = R8[m & 7], t = cpu.regs8[s];
        cpu.regs8[s] = cpu.regs8[r];
        cpu.regs8[r] = t;
      } else {
        const a = cpu.modrmAddrW(m);
        const t = cpu.readW8(a);
        cpu.write8(a, cpu.regs8[r]);
        cpu.regs8[r] = t;
      }
      return;
    }
    case 0x87: {
      const m = cpu.fetch8();
      const o16 = (cpu.pfx & P_O16) !== 0;
      const r = (m >> 3) & 7;
      if (m >= 0xc0) {
        const t = getReg(cpu, m & 7, o16);
        setReg(cpu, m & 7, getReg(cpu, r, o16), o16);
        setReg(cpu, r, t, o16);
      } else {
        const a = cpu.modrmAddrW(m);
        if (o16) {
          const t = cpu.readW16(a);
          cpu.write16(a, cpu.regs16[r << 1]);
          cpu.regs16[r << 1] = t;
        } else xchgMem32(cpu, a, r);
      }
      return;
    }
    case 0x88: {
      const m = cpu.fetch8();
      const v = cpu.regs8[R8[(m >> 3) & 7]];
      if (m >= 0xc0) cpu.regs8[R8[m & 7]] = v;
      else cpu.write8(cpu.modrmAddrW(m), v);
      return;
    }
    case 0x89: {
      const m = cpu.fetch8();
      if ((cpu.pfx & P_O16) !== 0) {
        const v = cpu.regs16[((m >> 3) & 7) << 1];
        if (m >= 0xc0) cpu.regs16[(m & 7) << 1] = v;
        else cpu.write16(cpu.modrmAddrW(m), v);
      } else {
        const v = regs[(m >> 3) & 7];
        if (m >= 0xc0) regs[m & 7] = v;
        else cpu.write32(cpu.modrmAddrW(m), v);
      }
      return;
    }
    case 0x8a: {
      const m = cpu.fetch8();
      cpu.regs8[R8[(m >> 3) & 7]] = readRM8(cpu, m);
      return;
    }
    case 0x8b: {
      const m = cpu.fetch8();
      if ((cpu.pfx & P_O16) !== 0) cpu.regs16[((m >> 3) & 7) << 1] = readRM16(cpu, m);
      else regs[(m >> 3) & 7] = m >= 0xc0 ? regs[m & 7] : cpu.read32(cpu.modrmAddr(m));
      return;
    }
    case 0x8c: {
      const m = cpu.fetch8();
      const s = (m >> 3) & 7;
      if (s > 5) cpu.ud();
      const v = cpu.sreg[s];
      if (m >= 0xc0) {
        // A 32-bit register destination gets the selector zero-extended (P6 behaviour).
        if ((cpu.pfx & P_O16) !== 0) cpu.regs16[(m & 7) << 1] = v;
        else regs[m & 7] = v;
      } else cpu.write16(cpu.modrmAddrW(m), v);
      return;
    }
    case 0x8d: {
      const m = cpu.fetch8();
      if (m >= 0xc0) cpu.ud();
      const off = cpu.modrmOffset(m);
      setReg(
        cpu,
        (m >> 3) & 7,
        (cpu.pfx & P_O16) !== 0 ? off & 0xffff : off,
        (cpu.pfx & P_O16) !== 0,
      );
      return;
    }
    case 0x8e: {
      const m = cpu.fetch8();
      const s = (m >> 3) & 7;
      if (s > 5 || s === CS) cpu.ud();
      sys.loadSeg(cpu, s, readRM16(cpu, m));
      if (s === SS) cpu.setInterruptShadow();
      return;
    }
    case 0x8f: {
      const m = cpu.fetch8();
      if (((m >> 3) & 7) !== 0) cpu.ud();
      const o16 = (cpu.pfx & P_O16) !== 0;
      if (m >= 0xc0) {
        setReg(cpu, m & 7, pop(cpu, o16), o16);
        return;
      }
      // The destination address is computed with ESP already incremented.
      const usesEsp = (cpu.pfx & P_A16) === 0 && (m & 7) === 4 && (peekCode(cpu, 0) & 7) === 4;
      const sp = regs[ESP];
      const v = o16 ? cpu.read16((sp + cpu.sbase[SS]) | 0) : cpu.read32((sp + cpu.sbase[SS]) | 0);
      let a = cpu.modrmAddrW(m);
      if (usesEsp) a = (a + (o16 ? 2 : 4)) | 0;
      if (o16) cpu.write16(a, v);
      else cpu.write32(a, v);
      regs[ESP] = (sp + (o16 ? 2 : 4)) | 0;
      return;
    }
    case 0x90:
      return; // NOP; F3 90 is PAUSE, also a no-op here
    case 0x91:
    case 0x92:
    case 0x93:
    case 0x94:
    case 0x95:
    case 0x96:
    case 0x97: {
      const r = op & 7;
      if ((cpu.pfx & P_O16) !== 0) {
        const t = cpu.regs16[0];
        cpu.regs16[0] = cpu.regs16[r << 1];
        cpu.regs16[r << 1] = t;
      } else {
        const t = regs[EAX];
        regs[EAX] = regs[r];
        regs[r] = t;
      }
      return;
    }
    case 0x98:
      if ((cpu.pfx & P_O16) !== 0) cpu.regs16[0] = (cpu.regs8[0] << 24) >> 24;
      else regs[EAX] = (regs[EAX] << 16) >> 16;
      return;
    case 0x99:
      if ((cpu.pfx & P_O16) !== 0) {
        cpu.regs16[EDX << 1] = (cpu.regs16[0] & 0x8000) !== 0 ? 0xffff : 0;
      } else regs[EDX] = regs[EAX] >> 31;
      return;
    case 0x9a: {
      const o16 = (cpu.pfx & P_O16) !== 0;
      const off = o16 ? cpu.fetch16() : cpu.fetch32();
      const sel = cpu.fetch16();
      return sys.farCall(cpu, sel, off, o16);
    }
    case 0xa8:
      cpu.logic(cpu.regs8[0] & cpu.fetch8(), 7);
      return;
    case 0xa9:
      if ((cpu.pfx & P_O16) !== 0) cpu.logic(cpu.regs16[0] & cpu.fetch16(), 15);
      else cpu.logic(regs[EAX] & cpu.fetch32(), 31);
      return;
    case 0xb0:
    case 0xb1:
    case 0xb2:
    case 0xb3:
    case 0xb4:
    case 0xb5:
    case 0xb6:
    case 0xb7:
      cpu.regs8[R8[op & 7]] = cpu.fetch8();
      return;
    case 0xb8:
    case 0xb9:
    case 0xba:
    case 0xbb:
    case 0xbc:
    case 0xbd:
    case 0xbe:
    case 0xbf:
      if ((cpu.pfx & P_O16) !== 0) cpu.regs16[(op & 7) << 1] = cpu.fetch16();
      else regs[op & 7] = cpu.fetch32();
      return;

    case 0xc0:
    case 0xc1:
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3:
      return shiftGroup(cpu, op);
    case 0xc2: {
      const n = cpu.fetch16();
      const o16 = (cpu.pfx & P_O16) !== 0;
      const t = pop(cpu, o16);
      regs[ESP] = (regs[ESP] + n) | 0;
      jumpTo(cpu, t, o16);
      return;
    }
    case 0xc3: {
      const o16 = (cpu.pfx & P_O16) !== 0;
      jumpTo(cpu, pop(cpu, o16), o16);
      return;
    }
    case 0xf6:
      return group3(cpu, true);
    case 0xf7:
      return group3(cpu, false);
    case 0xff:
      return group5(cpu);

    default:
      return execCold(cpu, op);
  }
}

/** The less frequent one-byte opcodes, kept out of `exec` so the hot switch stays small. */
function execCold(cpu: CPU, op: number): void {
  const regs = cpu.regs;
  switch (op) {
    case 0x06:
      return sys.pushSeg(cpu, ES);
    case 0x07:
      return sys.popSeg(cpu, ES);
    case 0x0e:
      return sys.pushSeg(cpu, CS);
    case 0x16:
      return sys.pushSeg(cpu, SS);
    case 0x17:
      return sys.popSeg(cpu, SS);
    case 0x1e:
      return sys.pushSeg(cpu, DS);
    case 0x1f:
      return sys.popSeg(cpu, DS);
    case 0x27:
      return daaDas(cpu, false);
    case 0x2f:
      return daaDas(cpu, true);
    case 0x37:
      return asciiAdjust(cpu, false);
    case 0x3f:
      return asciiAdjust(cpu, true);

    case 0x60:
      return pusha(cpu, (cpu.pfx & P_O16) !== 0);
    case 0x61:
      return popa(cpu, (cpu.pfx & P_O16) !== 0);
    case 0x62:
      return bound(cpu);
    case 0x63:
      return sys.arpl(cpu);
    case 0x6c:
    case 0x6d:
    case 0x6e:
    case 0x6f:
      return stringOp(cpu, op);

    case 0x9b:
      if ((cpu.cr0 & (CR0_MP | CR0_TS)) === (CR0_MP | CR0_TS)) cpu.fault(Vec.NM);
      cpu.fpu.fwait();
      return;
    case 0x9c: {
      // PUSHF: VM and RF are cleared in the image.
      const f = cpu.getEflags();
      if ((cpu.pfx & P_O16) !== 0) cpu.push16(f & 0xffff);
      else cpu.push32(f & 0x00fcffff);
      return;
    }
    case 0x9d: {
      const o16 = (cpu.pfx & P_O16) !== 0;
      const v = pop(cpu, o16);
      const mask = cpu.writableFlags(o16);
      cpu.setEflags((cpu.getEflags() & ~mask) | (v & mask));
      return;
    }
    case 0x9e: // SAHF
      cpu.setFlagBits(SF | ZF | AF | PF | CF, cpu.regs8[1]);
      return;
    case 0x9f: // LAHF
      cpu.regs8[1] = (cpu.getEflags() & (SF | ZF | AF | PF | CF)) | 2;
      return;
    case 0xa0:
    case 0xa1:
    case 0xa2:
    case 0xa3: {
      const off = (cpu.pfx & P_A16) !== 0 ? cpu.fetch16() : cpu.fetch32();
      const a = cpu.segAddr(DS, off);
      const o16 = (cpu.pfx & P_O16) !== 0;
      switch (op) {
        case 0xa0:
          cpu.regs8[0] = cpu.read8(a);
          break;
        case 0xa1:
          if (o16) cpu.regs16[0] = cpu.read16(a);
          else regs[EAX] = cpu.read32(a);
          break;
        case 0xa2:
          checkSegWrite(cpu, DS);
          cpu.write8(a, cpu.regs8[0]);
          break;
        default:
          checkSegWrite(cpu, DS);
          if (o16) cpu.write16(a, cpu.regs16[0]);
          else cpu.write32(a, regs[EAX]);
      }
      return;
    }
    case 0xa4:
    case 0xa5:
    case 0xa6:
    case 0xa7:
    case 0xaa:
    case 0xab:
    case 0xac:
    case 0xad:
    case 0xae:
    case 0xaf:
      return stringOp(cpu, op);
    case 0xc4:
    case 0xc5: {
      const m = cpu.fetch8();
      if (m >= 0xc0) cpu.ud();
      return sys.loadFarPointer(cpu, m, op === 0xc4 ? ES : DS);
    }
    case 0xc6: {
      const m = cpu.fetch8();
      if (((m >> 3) & 7) !== 0) cpu.ud();
      if (m >= 0xc0) cpu.regs8[R8[m & 7]] = cpu.fetch8();
      else {
        const a = cpu.modrmAddr(m);
        const v = cpu.fetch8();
        cpu.checkEaWrite();
        cpu.write8(a, v);
      }
      return;
    }
    case 0xc7: {
      const m = cpu.fetch8();
      if (((m >> 3) & 7) !== 0) cpu.ud();
      const o16 = (cpu.pfx & P_O16) !== 0;
      if (m >= 0xc0) setReg(cpu, m & 7, o16 ? cpu.fetch16() : cpu.fetch32(), o16);
      else {
        const a = cpu.modrmAddr(m);
        const v = o16 ? cpu.fetch16() : cpu.fetch32();
        cpu.checkEaWrite();
        if (o16) cpu.write16(a, v);
        else cpu.write32(a, v);
      }
      return;
    }
    case 0xc8: {
      const size = cpu.fetch16();
      const level = cpu.fetch8() & 31;
      return enter(cpu, size, level, (cpu.pfx & P_O16) !== 0);
    }
    case 0xc9:
      return leave(cpu, (cpu.pfx & P_O16) !== 0);
    case 0xca:
      return sys.farReturn(cpu, cpu.fetch16(), (cpu.pfx & P_O16) !== 0);
    case 0xcb:
      return sys.farReturn(cpu, 0, (cpu.pfx & P_O16) !== 0);
    case 0xcc:
      return sys.softwareInterrupt(cpu, Vec.BP, 1);
    case 0xcd:
      return sys.softwareInterrupt(cpu, cpu.fetch8(), 1);
    case 0xce:
      if (cpu.getOF() !== 0) sys.softwareInterrupt(cpu, Vec.OF, 1);
      return;
    case 0xcf:
      return sys.iret(cpu, (cpu.pfx & P_O16) !== 0);
    case 0xd4:
      return aam(cpu, cpu.fetch8());
    case 0xd5:
      return aad(cpu, cpu.fetch8());
    case 0xd6: // SALC (undocumented): AL = CF ? FF : 00
      cpu.regs8[0] = cpu.getCF() !== 0 ? 0xff : 0;
      return;
    case 0xd7: {
      const off = (cpu.pfx & P_A16) !== 0
        ? (cpu.regs16[EBX << 1] + cpu.regs8[0]) & 0xffff
        : (regs[EBX] + cpu.regs8[0]) | 0;
      cpu.regs8[0] = cpu.read8(cpu.segAddr(DS, off));
      return;
    }
    case 0xd8:
    case 0xd9:
    case 0xda:
    case 0xdb:
    case 0xdc:
    case 0xdd:
    case 0xde:
    case 0xdf: {
      const m = cpu.fetch8();
      const lin = m < 0xc0 ? cpu.modrmAddr(m) : 0;
      fpuAvailable(cpu);
      cpu.fpu.exec(op, m, lin, (cpu.pfx & P_O16) !== 0);
      return;
    }
    case 0xe0:
    case 0xe1:
    case 0xe2: {
      const d = cpu.fetchS8();
      const a16 = (cpu.pfx & P_A16) !== 0;
      let c: number;
      if (a16) c = cpu.regs16[ECX << 1] = (cpu.regs16[ECX << 1] - 1) & 0xffff;
      else c = regs[ECX] = (regs[ECX] - 1) | 0;
      const take = c !== 0 && (op === 0xe2 || (op === 0xe1) === (cpu.getZF() !== 0));
      if (take) jumpTo(cpu, cpu.eip + d, (cpu.pfx & P_O16) !== 0);
      return;
    }
    case 0xe3: {
      const d = cpu.fetchS8();
      if (countReg(cpu) === 0) jumpTo(cpu, cpu.eip + d, (cpu.pfx & P_O16) !== 0);
      return;
    }
    case 0xe4:
    case 0xe5:
    case 0xe6:
    case 0xe7:
      return sys.portIO(cpu, op, cpu.fetch8());
    case 0xec:
    case 0xed:
    case 0xee:
    case 0xef:
      return sys.portIO(cpu, op, cpu.regs16[EDX << 1]);
    case 0xe8: {
      const o16 = (cpu.pfx & P_O16) !== 0;
      const d = o16 ? cpu.fetch16() : cpu.fetch32();
      const next = cpu.eip;
      push(cpu, next, o16);
      jumpTo(cpu, next + d, o16);
      return;
    }
    case 0xe9: {
      const o16 = (cpu.pfx & P_O16) !== 0;
      const d = o16 ? cpu.fetch16() : cpu.fetch32();
      jumpTo(cpu, cpu.eip + d, o16);
      return;
    }
    case 0xea: {
      const o16 = (cpu.pfx & P_O16) !== 0;
      const off = o16 ? cpu.fetch16() : cpu.fetch32();
      const sel = cpu.fetch16();
      return sys.farJump(cpu, sel, off);
    }
    case 0xeb: {
      const d = cpu.fetchS8();
      jumpTo(cpu, cpu.eip + d, (cpu.pfx & P_O16) !== 0);
      return;
    }
    case 0xf1: // INT1 / ICEBP
      return sys.softwareInterrupt(cpu, Vec.DB, 2);
    case 0xf4:
      if (cpu.cpl !== 0) cpu.gp(0);
      return cpu.halt();
    case 0xf5:
      cpu.setFlagBits(CF, cpu.getCF() ^ 1);
      return;
    case 0xf8:
      cpu.setFlagBits(CF, 0);
      return;
    case 0xf9:
      cpu.setFlagBits(CF, CF);
      return;
    case 0xfa:
      if (cpu.cpl > ((cpu.flags & IOPL) >> 12)) {
        if (cpu.ioTrap === null || !cpu.ioTrap.cli()) cpu.gp(0);
        return;
      }
      cpu.flags &= ~IF;
      return;
    case 0xfb:
      if (cpu.cpl > ((cpu.flags & IOPL) >> 12)) cpu.gp(0);
      if ((cpu.flags & IF) === 0) {
        cpu.flags |= IF;
        cpu.setInterruptShadow();
        cpu.interruptWindow();
      }
      return;
    case 0xfc:
      cpu.flags &= ~DF;
      return;
    case 0xfd:
      cpu.flags |= DF;
      return;
    case 0xfe: {
      const m = cpu.fetch8();
      const o = (m >> 3) & 7;
      if (o > 1) cpu.ud();
      if (m >= 0xc0) {
        const r = R8[m & 7], a = cpu.regs8[r];
        cpu.regs8[r] = cpu.incdec(a, (o === 0 ? a + 1 : a - 1) & 0xff, 7, o);
      } else {
        const ad = cpu.modrmAddrW(m), a = cpu.readW8(ad);
        cpu.write8(ad, cpu.incdec(a, (o === 0 ? a + 1 : a - 1) & 0xff, 7, o));
      }
      return;
    }
    default:
      // 0x26.. prefixes never reach here; D8-DF handled; remaining: none valid.
      cpu.ud();
  }
}

function shiftGroup(cpu: CPU, op: number): void {
  const m = cpu.fetch8();
  const kind = (m >> 3) & 7;
  const size = (op & 1) === 0 ? 8 : (cpu.pfx & P_O16) !== 0 ? 16 : 32;
  if (m >= 0xc0) {
    const count = op <= 0xc1 ? cpu.fetch8() : op <= 0xd1 ? 1 : cpu.regs8[4];
    const r = m & 7;
    if (size === 8) cpu.regs8[R8[r]] = shift(cpu, kind, cpu.regs8[R8[r]], count, 8);
    else if (size === 16) cpu.regs16[r << 1] = shift(cpu, kind, cpu.regs16[r << 1], count, 16);
    else cpu.regs[r] = shift(cpu, kind, cpu.regs[r], count, 32);
    return;
  }
  const a = cpu.modrmAddr(m);
  const count = op <= 0xc1 ? cpu.fetch8() : op <= 0xd1 ? 1 : cpu.regs8[4];
  cpu.checkEaWrite();
  if (size === 8) cpu.write8(a, shift(cpu, kind, cpu.readW8(a), count, 8));
  else if (size === 16) cpu.write16(a, shift(cpu, kind, cpu.readW16(a), count, 16));
  else cpu.write32(a, shift(cpu, kind, cpu.readW32(a), count, 32));
}

/** Read the r/m operand of ModRM `m` (memory at `a`) at `sz` bits; `w`: with write intent. */
function rmRead(cpu: CPU, m: number, a: number, sz: number, w: boolean): number {
  if (m >= 0xc0) {
    const r = m & 7;
    return sz === 8 ? cpu.regs8[R8[r]] : sz === 16 ? cpu.regs16[r << 1] : cpu.regs[r];
  }
  if (w) return sz === 8 ? cpu.readW8(a) : sz === 16 ? cpu.readW16(a) : cpu.readW32(a);
  return sz === 8 ? cpu.read8(a) : sz === 16 ? cpu.read16(a) : cpu.read32(a);
}

/** Write the r/m operand of ModRM `m` (memory at `a`) at `sz` bits. */
function rmWrite(cpu: CPU, m: number, a: number, sz: number, v: number): void {
  if (m >= 0xc0) {
    const r = m & 7;
    if (sz === 8) cpu.regs8[R8[r]] = v;
    else if (sz === 16) cpu.regs16[r << 1] = v;
    else cpu.regs[r] = v;
  } else if (sz === 8) cpu.write8(a, v);
  else if (sz === 16) cpu.write16(a, v);
  else cpu.write32(a, v);
}

function group3(cpu: CPU, byte: boolean): void {
  const m = cpu.fetch8();
  const o = (m >> 3) & 7;
  const sz = byte ? 8 : (cpu.pfx & P_O16) !== 0 ? 16 : 32;
  const rmw = o === 2 || o === 3;
  const a = m < 0xc0 ? (rmw ? cpu.modrmAddrW(m) : cpu.modrmAddr(m)) : 0;
  switch (o) {
    case 0:
    case 1: {
      const imm = sz === 8 ? cpu.fetch8() : sz === 16 ? cpu.fetch16() : cpu.fetch32();
      cpu.logic(rmRead(cpu, m, a, sz, false) & imm, sz - 1);
      return;
    }
    case 2: {
      const v = rmRead(cpu, m, a, sz, true);
      rmWrite(cpu, m, a, sz, sz === 32 ? ~v : ~v & ((1 << sz) - 1));
      return;
    }
    case 3: {
      const v = rmRead(cpu, m, a, sz, true);
      rmWrite(cpu, m, a, sz, cpu.sub(0, v, sz === 32 ? -v | 0 : -v & ((1 << sz) - 1), sz - 1));
      return;
    }
    case 4:
    case 5:
      return multiply(cpu, rmRead(cpu, m, a, sz, false), sz, o === 5);
    default:
      return divide(cpu, rmRead(cpu, m, a, sz, false), sz, o === 7);
  }
}

function group5(cpu: CPU): void {
  const m = cpu.fetch8();
  const o = (m >> 3) & 7;
  const o16 = (cpu.pfx & P_O16) !== 0;
  const regs = cpu.regs;
  switch (o) {
    case 0:
    case 1: {
      const dec = o;
      if (m >= 0xc0) {
        const r = m & 7;
        if (o16) {
          const a = cpu.regs16[r << 1];
          cpu.regs16[r << 1] = cpu.incdec(a, (dec ? a - 1 : a + 1) & 0xffff, 15, dec);
        } else {
          const a = regs[r];
          regs[r] = cpu.incdec(a, (dec ? a - 1 : a + 1) | 0, 31, dec);
        }
      } else {
        const ad = cpu.modrmAddrW(m);
        if (o16) {
          const a = cpu.readW16(ad);
          cpu.write16(ad, cpu.incdec(a, (dec ? a - 1 : a + 1) & 0xffff, 15, dec));
        } else {
          const a = cpu.readW32(ad);
          cpu.write32(ad, cpu.incdec(a, (dec ? a - 1 : a + 1) | 0, 31, dec));
        }
      }
      return;
    }
    case 2: {
      const t = readRM(cpu, m, o16);
      push(cpu, cpu.eip, o16);
      jumpTo(cpu, t, o16);
      return;
    }
    case 4:
      jumpTo(cpu, readRM(cpu, m, o16), o16);
      return;
    case 3:
    case 5: {
      if (m >= 0xc0) cpu.ud();
      const a = cpu.modrmAddr(m);
      const off = o16 ? cpu.read16(a) : cpu.read32(a);
      const sel = cpu.read16((a + (o16 ? 2 : 4)) | 0);
      if (o === 3) sys.farCall(cpu, sel, off, o16);
      else sys.farJump(cpu, sel, off);
      return;
    }
    case 6:
      push(cpu, readRM(cpu, m, o16), o16);
      return;
    default:
      cpu.ud();
  }
}

/** LEAVE: ESP = EBP, then pop EBP (read first so a fault changes nothing). */
export function leave(cpu: CPU, o16: boolean): void {
  const regs = cpu.regs;
  const bp = regs[EBP];
  const a = (bp + cpu.sbase[SS]) | 0;
  const v = o16 ? cpu.read16(a) : cpu.read32(a);
  regs[ESP] = (bp + (o16 ? 2 : 4)) | 0;
  setReg(cpu, EBP, v, o16);
}

/** XCHG of 32-bit register `r` with memory at `a` (a write-intent read, then the write). */
export function xchgMem32(cpu: CPU, a: number, r: number): void {
  const t = cpu.readW32(a);
  cpu.write32(a, cpu.regs[r]);
  cpu.regs[r] = t;
}

function pusha(cpu: CPU, o16: boolean): void {
  const n = o16 ? 2 : 4;
  const sp = cpu.regs[ESP];
  cpu.probeWrite((sp - 8 * n + cpu.sbase[SS]) | 0, 8 * n);
  for (let r = 0; r < 8; r++) {
    const v = r === ESP ? (o16 ? sp & 0xffff : sp) : getReg(cpu, r, o16);
    push(cpu, v, o16);
  }
}

function popa(cpu: CPU, o16: boolean): void {
  const n = o16 ? 2 : 4;
  const sp = cpu.regs[ESP], base = cpu.sbase[SS];
  const vals = popaScratch;
  for (let i = 0; i < 8; i++) {
    const a = (sp + i * n + base) | 0;
    vals[i] = o16 ? cpu.read16(a) : cpu.read32(a);
  }
  for (let i = 0; i < 8; i++) {
    const r = 7 - i;
    if (r !== ESP) setReg(cpu, r, vals[i], o16);
  }
  cpu.regs[ESP] = (sp + 8 * n) | 0;
}
const popaScratch = new Int32Array(8);

function bound(cpu: CPU): void {
  const m = cpu.fetch8();
  if (m >= 0xc0) cpu.ud();
  const a = cpu.modrmAddr(m);
  const o16 = (cpu.pfx & P_O16) !== 0;
  const r = (m >> 3) & 7;
  let idx: number, lo: number, hi: number;
  if (o16) {
    idx = (cpu.regs16[r << 1] << 16) >> 16;
    lo = (cpu.read16(a) << 16) >> 16;
    hi = (cpu.read16((a + 2) | 0) << 16) >> 16;
  } else {
    idx = cpu.regs[r];
    lo = cpu.read32(a);
    hi = cpu.read32((a + 4) | 0);
  }
  if (idx < lo || idx > hi) cpu.fault(Vec.BR);
}

function enter(cpu: CPU, size: number, level: number, o16: boolean): void {
  const regs = cpu.regs;
  const n = o16 ? 2 : 4;
  const ssb = cpu.sbase[SS];
  const sp0 = regs[ESP], bp0 = regs[EBP];
  // Probe the whole frame first so a fault leaves every register unchanged.
  cpu.probeWrite((sp0 - n * (level + 1) + ssb) | 0, n * (level + 1));
  let sp = (sp0 - n) | 0;
  if (o16) cpu.write16((sp + ssb) | 0, bp0);
  else cpu.write32((sp + ssb) | 0, bp0);
  const frame = sp;
  let bp = bp0;
  if (level > 0) {
    for (let i = 1; i < level; i++) {
      bp = (bp - n) | 0;
      const v = o16 ? cpu.read16(((bp & 0xffffffff) + ssb) | 0) : cpu.read32((bp + ssb) | 0);
      sp = (sp - n) | 0;
      if (o16) cpu.write16((sp + ssb) | 0, v);
      else cpu.write32((sp + ssb) | 0, v);
    }
    sp = (sp - n) | 0;
    if (o16) cpu.write16((sp + ssb) | 0, frame);
    else cpu.write32((sp + ssb) | 0, frame);
  }
  // Then the processor checks that the new stack top is writable: a fault here leaves
  // the frame written but every register unchanged (as observed on Intel parts).
  if (size > 0) cpu.probeWrite((sp - size + ssb) | 0, n);
  if (o16) cpu.regs16[EBP << 1] = frame;
  else regs[EBP] = frame;
  regs[ESP] = (sp - size) | 0;
}

// ------------------------------------------------------------------ 0F map

function exec0F(cpu: CPU, op: number): void {
  const regs = cpu.regs;
  switch (op) {
    case 0x00:
      return sys.group6(cpu, cpu.fetch8());
    case 0x01:
      return sys.group7(cpu, cpu.fetch8());
    case 0x02:
    case 0x03:
      return sys.larLsl(cpu, cpu.fetch8(), op === 0x03);
    case 0x06:
      if (cpu.cpl !== 0) cpu.gp(0);
      cpu.cr0 &= ~CR0_TS;
      return;
    case 0x08:
    case 0x09:
      if (cpu.cpl !== 0) cpu.gp(0);
      return;
    case 0x0b:
      return cpu.ud();
    case 0x18:
    case 0x19:
    case 0x1a:
    case 0x1b:
    case 0x1c:
    case 0x1d:
    case 0x1e:
    case 0x1f: {
      // Hint NOPs (PREFETCHh, multi-byte NOP): decode the operand, touch nothing.
      const m = cpu.fetch8();
      if (m < 0xc0) cpu.modrmOffset(m);
      return;
    }
    case 0x20:
    case 0x21:
    case 0x22:
    case 0x23:
      return sys.movCrDr(cpu, op, cpu.fetch8());
    case 0x30:
      return sys.wrmsr(cpu);
    case 0x31:
      if ((cpu.cr4 & CR4_TSD) !== 0 && cpu.cpl !== 0) cpu.gp(0);
      {
        const t = cpu.tsc();
        regs[EAX] = Number(t & 0xffffffffn) | 0;
        regs[EDX] = Number((t >> 32n) & 0xffffffffn) | 0;
      }
      return;
    case 0x32:
      return sys.rdmsr(cpu);
    case 0x34:
      return sys.sysenter(cpu);
    case 0x35:
      return sys.sysexit(cpu);
    case 0x40:
    case 0x41:
    case 0x42:
    case 0x43:
    case 0x44:
    case 0x45:
    case 0x46:
    case 0x47:
    case 0x48:
    case 0x49:
    case 0x4a:
    case 0x4b:
    case 0x4c:
    case 0x4d:
    case 0x4e:
    case 0x4f: {
      const m = cpu.fetch8();
      const o16 = (cpu.pfx & P_O16) !== 0;
      const v = readRM(cpu, m, o16); // the source is read whether or not the move happens
      if (cpu.cond(op & 15)) setReg(cpu, (m >> 3) & 7, v, o16);
      return;
    }
    case 0x80:
    case 0x81:
    case 0x82:
    case 0x83:
    case 0x84:
    case 0x85:
    case 0x86:
    case 0x87:
    case 0x88:
    case 0x89:
    case 0x8a:
    case 0x8b:
    case 0x8c:
    case 0x8d:
    case 0x8e:
    case 0x8f: {
      const o16 = (cpu.pfx & P_O16) !== 0;
      const d = o16 ? cpu.fetch16() : cpu.fetch32();
      if (cpu.cond(op & 15)) jumpTo(cpu, cpu.eip + d, o16);
      return;
    }
    case 0x90:
    case 0x91:
    case 0x92:
    case 0x93:
    case 0x94:
    case 0x95:
    case 0x96:
    case 0x97:
    case 0x98:
    case 0x99:
    case 0x9a:
    case 0x9b:
    case 0x9c:
    case 0x9d:
    case 0x9e:
    case 0x9f: {
      const m = cpu.fetch8();
      const a = m < 0xc0 ? cpu.modrmAddrW(m) : 0;
      const v = cpu.cond(op & 15) ? 1 : 0;
      if (m >= 0xc0) cpu.regs8[R8[m & 7]] = v;
      else cpu.write8(a, v);
      return;
    }
    case 0xa0:
      return sys.pushSeg(cpu, FS);
    case 0xa1:
      return sys.popSeg(cpu, FS);
    case 0xa8:
      return sys.pushSeg(cpu, GS);
    case 0xa9:
      return sys.popSeg(cpu, GS);
    case 0xa2:
      return cpuid(cpu);
    case 0xa3:
    case 0xab:
    case 0xb3:
    case 0xbb:
      return bitOp(cpu, cpu.fetch8(), (op >> 3) & 3, -1);
    case 0xba: {
      const m = cpu.fetch8();
      const o = (m >> 3) & 7;
      if (o < 4) cpu.ud();
      return bitOp(cpu, m, o & 3, -2);
    }
    case 0xa4:
    case 0xa5:
    case 0xac:
    case 0xad:
      return shiftDouble(cpu, op);
    case 0xaf: {
      const m = cpu.fetch8();
      const o16 = (cpu.pfx & P_O16) !== 0;
      const r = (m >> 3) & 7;
      setReg(cpu, r, imul2(cpu, getReg(cpu, r, o16), readRM(cpu, m, o16), o16), o16);
      return;
    }
    case 0xae: {
      const m = cpu.fetch8();
      const o = (m >> 3) & 7;
      if (m >= 0xc0 || o > 1 || (cpu.pfx & (P_O16 | P_REPZ | P_REPNZ)) !== 0) cpu.ud();
      const a = cpu.modrmAddr(m);
      fpuAvailable(cpu);
      if (o === 0) cpu.fpu.fxsave(a);
      else cpu.fpu.fxrstor(a);
      return;
    }
    case 0xb0:
    case 0xb1:
      return cmpxchg(cpu, op === 0xb0);
    case 0xb2:
    case 0xb4:
    case 0xb5: {
      const m = cpu.fetch8();
      if (m >= 0xc0) cpu.ud();
      return sys.loadFarPointer(cpu, m, op === 0xb2 ? SS : op === 0xb4 ? FS : GS);
    }
    case 0xb6:
    case 0xb7:
    case 0xbe:
    case 0xbf: {
      const m = cpu.fetch8();
      const o16 = (cpu.pfx & P_O16) !== 0;
      let v: number;
      if ((op & 1) === 0) {
        v = readRM8(cpu, m);
        if (op === 0xbe) v = (v << 24) >> 24;
      } else {
        v = readRM16(cpu, m);
        if (op === 0xbf) v = (v << 16) >> 16;
      }
      setReg(cpu, (m >> 3) & 7, o16 ? v & 0xffff : v, o16);
      return;
    }
    case 0xbc:
    case 0xbd: {
      const m = cpu.fetch8();
      const o16 = (cpu.pfx & P_O16) !== 0;
      const v = readRM(cpu, m, o16);
      const r = (m >> 3) & 7;
      const res = op === 0xbc ? bsf(cpu, v) : bsr(cpu, v, o16 ? 16 : 32);
      if (res >= 0) setReg(cpu, r, res, o16);
      return;
    }
    case 0xc0:
    case 0xc1:
      return xadd(cpu, op === 0xc0);
    case 0xc7: {
      const m = cpu.fetch8();
      if (m >= 0xc0 || ((m >> 3) & 7) !== 1) cpu.ud();
      const a = cpu.modrmAddrW(m);
      cpu.probeWrite(a, 8);
      const lo = cpu.read32(a), hi = cpu.read32((a + 4) | 0);
      if (lo === regs[EAX] && hi === regs[EDX]) {
        cpu.write32(a, regs[EBX]);
        cpu.write32((a + 4) | 0, regs[ECX]);
        cpu.setFlagBits(ZF, ZF);
      } else {
        // The processor writes the old value back, then loads EDX:EAX.
        cpu.write32(a, lo);
        cpu.write32((a + 4) | 0, hi);
        regs[EAX] = lo;
        regs[EDX] = hi;
        cpu.setFlagBits(ZF, 0);
      }
      return;
    }
    case 0xc8:
    case 0xc9:
    case 0xca:
    case 0xcb:
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf: {
      const r = op & 7;
      if ((cpu.pfx & P_O16) !== 0) {
        // BSWAP of a 16-bit register is undefined; P6-family parts clear it.
        cpu.regs16[r << 1] = 0;
      } else {
        const v = regs[r];
        regs[r] = (v >>> 24) | ((v >> 8) & 0xff00) | ((v & 0xff00) << 8) | (v << 24);
      }
      return;
    }
    default:
      cpu.ud();
  }
}

function cmpxchg(cpu: CPU, byte: boolean): void {
  const m = cpu.fetch8();
  const o16 = (cpu.pfx & P_O16) !== 0;
  const r = (m >> 3) & 7;
  const isMem = m < 0xc0;
  const a = isMem ? cpu.modrmAddrW(m) : 0;
  if (byte) {
    const d = isMem ? cpu.readW8(a) : cpu.regs8[R8[m & 7]];
    cpu.alu8(7, cpu.regs8[0], d);
    if (cpu.regs8[0] === d) {
      const s = cpu.regs8[R8[r]];
      if (isMem) cpu.write8(a, s);
      else cpu.regs8[R8[m & 7]] = s;
    } else {
      if (isMem) cpu.write8(a, d);
      cpu.regs8[0] = d;
    }
    return;
  }
  const d = isMem ? (o16 ? cpu.readW16(a) : cpu.readW32(a)) : getReg(cpu, m & 7, o16);
  const acc = getReg(cpu, EAX, o16);
  if (o16) cpu.alu16(7, acc, d);
  else cpu.alu32(7, acc, d);
  if (acc === d) {
    const s = getReg(cpu, r, o16);
    if (isMem) {
      if (o16) cpu.write16(a, s);
      else cpu.write32(a, s);
    } else setReg(cpu, m & 7, s, o16);
  } else {
    if (isMem) {
      if (o16) cpu.write16(a, d);
      else cpu.write32(a, d);
    }
    setReg(cpu, EAX, d, o16);
  }
}

function xadd(cpu: CPU, byte: boolean): void {
  const m = cpu.fetch8();
  const o16 = (cpu.pfx & P_O16) !== 0;
  const r = (m >> 3) & 7;
  if (byte) {
    const rr = R8[r];
    if (m >= 0xc0) {
      const d = cpu.regs8[R8[m & 7]], s = cpu.regs8[rr];
      const t = cpu.alu8(0, d, s);
      cpu.regs8[rr] = d;
      cpu.regs8[R8[m & 7]] = t;
    } else {
      const a = cpu.modrmAddrW(m);
      const d = cpu.readW8(a), s = cpu.regs8[rr];
      const t = cpu.alu8(0, d, s);
      cpu.write8(a, t);
      cpu.regs8[rr] = d;
    }
    return;
  }
  if (m >= 0xc0) {
    const d = getReg(cpu, m & 7, o16), s = getReg(cpu, r, o16);
    const t = o16 ? cpu.alu16(0, d, s) : cpu.alu32(0, d, s);
    setReg(cpu, r, d, o16);
    setReg(cpu, m & 7, t, o16);
  } else {
    const a = cpu.modrmAddrW(m);
    const d = o16 ? cpu.readW16(a) : cpu.readW32(a), s = getReg(cpu, r, o16);
    const t = o16 ? cpu.alu16(0, d, s) : cpu.alu32(0, d, s);
    if (o16) cpu.write16(a, t);
    else cpu.write32(a, t);
    setReg(cpu, r, d, o16);
  }
}
