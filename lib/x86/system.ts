/**
 * System instructions: segment loads through descriptor tables, far control
 * transfers, software interrupts and IRET, port I/O permission, control and
 * debug registers, MSRs, SYSENTER/SYSEXIT, and the 0F 00 / 0F 01 groups.
 *
 * Segment loads follow the SDM's protected-mode checks (null selectors, table
 * limits, type, RPL/CPL/DPL, presence) and raise #GP/#SS/#NP with the selector
 * as error code. Interrupts and exceptions leave `run` for the embedder (the
 * host seam); delivery through the IDT for a bare machine builds on this.
 *
 * @module
 */

import type { CPU } from "./cpu.ts";
import {
  CR0_PE,
  CR0_PG,
  CR0_WP,
  CR4_PAE,
  CR4_PGE,
  CR4_PSE,
  CS,
  DS,
  ES,
  FS,
  GS,
  P_O16,
  SS,
} from "./cpu.ts";
import { IOPL, RF, Vec, VM, ZF } from "./flags.ts";

const ESP = 4, EAX = 0, ECX = 1, EDX = 2;

/** A decoded segment descriptor. */
export interface Descriptor {
  /** Low dword. */
  lo: number;
  /** High dword. */
  hi: number;
  /** Linear address the descriptor was read from. */
  addr: number;
}

/** Descriptor fields. */
export function descBase(lo: number, hi: number): number {
  return ((lo >>> 16) | ((hi & 0xff) << 16) | (hi & 0xff000000)) | 0;
}

/** Byte-granular limit (inclusive) of a descriptor. */
export function descLimit(lo: number, hi: number): number {
  const raw = (lo & 0xffff) | (hi & 0xf0000);
  return (hi & 0x800000) !== 0 ? ((raw << 12) | 0xfff) : raw;
}

/** Read a descriptor-table dword as a supervisor access. */
function sysRead32(cpu: CPU, lin: number): number {
  const pa = cpu.translate(lin, false, false);
  return cpu.mem.read32(pa);
}

/**
 * Fetch the descriptor for `sel` from the GDT or LDT, or raise #GP(sel) if the
 * selector is outside the table. `sel` must not be null.
 */
export function fetchDescriptor(cpu: CPU, sel: number, vector: number = Vec.GP): Descriptor {
  const ldt = (sel & 4) !== 0;
  const base = ldt ? cpu.ldtBase : cpu.gdtBase;
  const limit = ldt ? cpu.ldtLimit : cpu.gdtLimit;
  if ((sel | 7) > limit || (ldt && cpu.ldtr === 0)) cpu.fault(vector, sel & 0xfffc);
  const addr = (base + (sel & 0xfff8)) | 0;
  return { lo: sysRead32(cpu, addr), hi: sysRead32(cpu, (addr + 4) | 0), addr };
}

/** Set the accessed bit of a descriptor in memory. */
function markAccessed(cpu: CPU, d: Descriptor): void {
  if ((d.hi & 0x100) === 0) {
    const pa = cpu.translate((d.addr + 4) | 0, true, false);
    cpu.mem.write32(pa, d.hi | 0x100);
    d.hi |= 0x100;
  }
}

/** Load a descriptor into segment register `seg`'s cache. */
function setCache(cpu: CPU, seg: number, sel: number, lo: number, hi: number): void {
  cpu.sreg[seg] = sel;
  cpu.sbase[seg] = descBase(lo, hi);
  cpu.slimit[seg] = descLimit(lo, hi);
  cpu.sflags[seg] = (hi >> 8) & 0xf0ff;
  if (seg === CS) cpu.csChanged();
}

/** MOV/POP/LxS to a data or stack segment register, with protected-mode checks. */
export function loadSeg(cpu: CPU, seg: number, sel: number): void {
  sel &= 0xffff;
  if ((cpu.cr0 & CR0_PE) === 0) {
    cpu.sreg[seg] = sel;
    cpu.sbase[seg] = sel << 4;
    return;
  }
  const rpl = sel & 3, cpl = cpu.cpl;
  if ((sel & 0xfffc) === 0) {
    if (seg === SS) cpu.gp(0);
    cpu.sreg[seg] = sel;
    cpu.sbase[seg] = 0;
    cpu.slimit[seg] = 0;
    cpu.sflags[seg] = 0; // unusable
    return;
  }
  const d = fetchDescriptor(cpu, sel);
  const hi = d.hi;
  const dpl = (hi >> 13) & 3, s = (hi >> 12) & 1, type = (hi >> 8) & 0xf;
  const code = (type & 8) !== 0;
  const err = sel & 0xfffc;
  if (seg === SS) {
    if (rpl !== cpl || s === 0 || code || (type & 2) === 0 || dpl !== cpl) cpu.gp(err);
    if ((hi & 0x8000) === 0) cpu.fault(Vec.SS, err);
  } else {
    if (s === 0 || (code && (type & 2) === 0)) cpu.gp(err);
    const conforming = code && (type & 4) !== 0;
    if (!conforming && (rpl > dpl || cpl > dpl)) cpu.gp(err);
    if ((hi & 0x8000) === 0) cpu.fault(Vec.NP, err);
  }
  markAccessed(cpu, d);
  setCache(cpu, seg, sel, d.lo, d.hi);
}

/** PUSH Sreg. A 32-bit push writes only the low 16 bits of the slot (as recent Intel parts do). */
export function pushSeg(cpu: CPU, seg: number): void {
  const v = cpu.sreg[seg];
  if ((cpu.pfx & P_O16) !== 0) cpu.push16(v);
  else {
    const sp = (cpu.regs[ESP] - 4) | 0;
    cpu.probeWrite((sp + cpu.sbase[SS]) | 0, 4);
    cpu.write16((sp + cpu.sbase[SS]) | 0, v);
    cpu.regs[ESP] = sp;
  }
}

/** POP Sreg: read, load (which may fault), then adjust ESP. */
export function popSeg(cpu: CPU, seg: number): void {
  const o16 = (cpu.pfx & P_O16) !== 0;
  const sp = cpu.regs[ESP];
  const v = cpu.read16((sp + cpu.sbase[SS]) | 0);
  loadSeg(cpu, seg, v);
  cpu.regs[ESP] = (sp + (o16 ? 2 : 4)) | 0;
  if (seg === SS) cpu.setInterruptShadow();
}

/** LDS/LES/LSS/LFS/LGS: load a far pointer from memory into Sreg:reg. */
export function loadFarPointer(cpu: CPU, m: number, seg: number): void {
  const o16 = (cpu.pfx & P_O16) !== 0;
  const a = cpu.modrmAddr(m);
  const off = o16 ? cpu.read16(a) : cpu.read32(a);
  const sel = cpu.read16((a + (o16 ? 2 : 4)) | 0);
  loadSeg(cpu, seg, sel);
  const r = (m >> 3) & 7;
  if (o16) cpu.regs16[r << 1] = off;
  else cpu.regs[r] = off;
}

/** ARPL Ew, Gw. */
export function arpl(cpu: CPU): void {
  const m = cpu.fetch8();
  const src = cpu.regs16[((m >> 3) & 7) << 1];
  const a = m < 0xc0 ? cpu.modrmAddr(m) : 0;
  const d = m < 0xc0 ? cpu.read16(a) : cpu.regs16[(m & 7) << 1];
  if ((d & 3) < (src & 3)) {
    const v = (d & ~3) | (src & 3);
    // ARPL reads, and writes only when it raises the RPL (then the segment must be writable).
    if (m < 0xc0) {
      const seg = cpu.eaSeg;
      if ((cpu.sflags[seg] & 0x1a) !== 0x12) cpu.segWriteFault(seg);
      cpu.write16(a, v);
    } else cpu.regs16[(m & 7) << 1] = v;
    cpu.setFlagBits(ZF, ZF);
  } else cpu.setFlagBits(ZF, 0);
}

/** Check a code-segment selector for a same-privilege far JMP/CALL and load CS. */
function loadCodeSame(cpu: CPU, sel: number): void {
  if ((sel & 0xfffc) === 0) cpu.gp(0);
  const d = fetchDescriptor(cpu, sel);
  const hi = d.hi, err = sel & 0xfffc;
  const dpl = (hi >> 13) & 3, type = (hi >> 8) & 0xf;
  if (((hi >> 12) & 1) === 0) {
    // Call gates (4, 0xC), task gates (5) and TSS descriptors (1, 3, 9, 0xB) would
    // transfer control; they are not modelled. Any other system type is #GP(selector).
    const t = type;
    if (t === 4 || t === 0xc || t === 5 || t === 1 || t === 3 || t === 9 || t === 0xb) {
      cpu.shutdown(
        `far transfer through a system descriptor (selector 0x${
          sel.toString(16)
        }): call gates and task switches are not supported`,
      );
    }
    cpu.gp(err);
  }
  if ((type & 8) === 0) cpu.gp(err);
  if ((type & 4) !== 0) {
    if (dpl > cpu.cpl) cpu.gp(err);
  } else if ((sel & 3) > cpu.cpl || dpl !== cpu.cpl) cpu.gp(err);
  if ((hi & 0x8000) === 0) cpu.fault(Vec.NP, err);
  markAccessed(cpu, d);
  setCache(cpu, CS, (sel & 0xfffc) | cpu.cpl, d.lo, d.hi);
}

/** JMP ptr16:32 / JMP m16:32 (same privilege; code segments only). */
export function farJump(cpu: CPU, sel: number, off: number): void {
  loadCodeSame(cpu, sel);
  cpu.eip = (cpu.pfx & P_O16) !== 0 ? off & 0xffff : off;
}

/** CALL ptr16:32 / CALL m16:32 (same privilege). */
export function farCall(cpu: CPU, sel: number, off: number, o16: boolean): void {
  const n = o16 ? 2 : 4;
  const sp = cpu.regs[ESP];
  cpu.probeWrite((sp - 2 * n + cpu.sbase[SS]) | 0, 2 * n);
  const oldCs = cpu.sreg[CS], oldEip = cpu.eip;
  loadCodeSame(cpu, sel);
  if (o16) {
    cpu.push16(oldCs);
    cpu.push16(oldEip);
  } else {
    cpu.push32(oldCs);
    cpu.push32(oldEip);
  }
  cpu.eip = o16 ? off & 0xffff : off;
}

/** Null any data segment register whose DPL is below the new CPL (on a return outward). */
function nullInaccessible(cpu: CPU): void {
  for (const s of [ES, DS, FS, GS]) {
    const f = cpu.sflags[s];
    const dpl = (f >> 5) & 3;
    const conformingCode = (f & 0x0c) === 0x0c && (f & 0x10) !== 0;
    if ((cpu.sreg[s] & 0xfffc) !== 0 && !conformingCode && dpl < cpu.cpl) {
      cpu.sreg[s] = 0;
      cpu.sflags[s] = 0;
      cpu.sbase[s] = 0;
    }
  }
}

/**
 * Common tail of RETF and IRET: `cs` is the popped selector; for an outward
 * return, `esp`/`ss` are the popped outer stack.
 */
function returnTo(
  cpu: CPU,
  cs: number,
  eip: number,
  outer: boolean,
  esp: number,
  ss: number,
): void {
  if ((cs & 0xfffc) === 0) cpu.gp(0);
  const rpl = cs & 3;
  const d = fetchDescriptor(cpu, cs);
  const hi = d.hi, err = cs & 0xfffc;
  const dpl = (hi >> 13) & 3, type = (hi >> 8) & 0xf;
  if (((hi >> 12) & 1) === 0 || (type & 8) === 0) cpu.gp(err);
  if (rpl < cpu.cpl) cpu.gp(err);
  if ((type & 4) !== 0 ? dpl > rpl : dpl !== rpl) cpu.gp(err);
  if ((hi & 0x8000) === 0) cpu.fault(Vec.NP, err);
  if (outer) {
    // Validate the outer SS at the new privilege before changing anything.
    if ((ss & 0xfffc) === 0) cpu.gp(0);
    const sd = fetchDescriptor(cpu, ss);
    const shi = sd.hi, serr = ss & 0xfffc;
    const stype = (shi >> 8) & 0xf;
    if (
      (ss & 3) !== rpl || ((shi >> 13) & 3) !== rpl || ((shi >> 12) & 1) === 0 ||
      (stype & 8) !== 0 || (stype & 2) === 0
    ) cpu.gp(serr);
    if ((shi & 0x8000) === 0) cpu.fault(Vec.SS, serr);
    markAccessed(cpu, d);
    markAccessed(cpu, sd);
    cpu.setCpl(rpl);
    setCache(cpu, CS, cs, d.lo, d.hi);
    setCache(cpu, SS, ss, sd.lo, sd.hi);
    cpu.regs[ESP] = esp;
    nullInaccessible(cpu);
  } else {
    markAccessed(cpu, d);
    setCache(cpu, CS, cs, d.lo, d.hi);
  }
  cpu.eip = eip;
}

/** RETF [imm16]. */
export function farReturn(cpu: CPU, imm: number, o16: boolean): void {
  const n = o16 ? 2 : 4, ssb = cpu.sbase[SS];
  const sp = cpu.regs[ESP];
  const rd = (i: number) =>
    o16 ? cpu.read16((sp + i * n + ssb) | 0) : cpu.read32((sp + i * n + ssb) | 0);
  const eip = rd(0), cs = rd(1) & 0xffff;
  if ((cs & 3) > cpu.cpl) {
    const esp = rd(2 + imm / n), ss = rd(3 + imm / n) & 0xffff;
    returnTo(cpu, cs, eip, true, (esp + imm) | 0, ss);
  } else {
    returnTo(cpu, cs, eip, false, 0, 0);
    cpu.regs[ESP] = (sp + 2 * n + imm) | 0;
  }
}

/** IRET/IRETD in protected mode (no task return, no virtual-8086). */
export function iret(cpu: CPU, o16: boolean): void {
  if ((cpu.getEflags() & 0x4000) !== 0) {
    cpu.shutdown("IRET with EFLAGS.NT set (task return) is not supported");
  }
  const n = o16 ? 2 : 4, ssb = cpu.sbase[SS];
  const sp = cpu.regs[ESP];
  const rd = (i: number) =>
    o16 ? cpu.read16((sp + i * n + ssb) | 0) : cpu.read32((sp + i * n + ssb) | 0);
  const eip = rd(0), cs = rd(1) & 0xffff, fl = rd(2);
  if ((fl & VM) !== 0 && !o16 && cpu.cpl === 0) {
    cpu.shutdown("IRET to virtual-8086 mode is not supported");
  }
  const oldCpl = cpu.cpl;
  const outer = (cs & 3) > oldCpl;
  const mask = cpu.writableFlags(o16) | RF;
  const newFlags = (cpu.getEflags() & ~mask) | (fl & mask);
  if (outer) {
    const esp = rd(3), ss = rd(4) & 0xffff;
    returnTo(cpu, cs, eip, true, esp, ss);
  } else {
    returnTo(cpu, cs, eip, false, 0, 0);
    cpu.regs[ESP] = (sp + 3 * n) | 0;
  }
  // Privilege for IF/IOPL is judged at the old CPL.
  cpu.setEflags(newFlags & ~RF);
}

/**
 * INT n, INT3, INTO (source 1: the gate's DPL is checked against CPL) and
 * INT1/ICEBP (source 2: exempt). They retire, then deliver or exit.
 */
export function softwareInterrupt(cpu: CPU, vector: number, source: number): void {
  // An embedder that intercepts the vector may handle it right here: the
  // instruction has done its work, so nothing needs unwinding.
  const hook = cpu.softIntHook;
  if (hook !== null && cpu.exitVectors[vector] !== 0 && hook(vector, source)) return;
  cpu.trap(vector, source);
}

/**
 * I/O permission: at CPL > IOPL, every byte of the access must be allowed by
 * the TSS I/O bitmap.
 */
export function ioPermitted(cpu: CPU, port: number, size: number): boolean {
  if (cpu.cpl <= ((cpu.flags & IOPL) >> 12)) return true;
  if (cpu.tr === 0 || cpu.trLimit < 0x67) return false;
  const base = sysReadU16(cpu, (cpu.trBase + 0x66) | 0);
  const at = base + (port >> 3);
  if (at + 1 > cpu.trLimit) return false;
  const bits = sysReadU16(cpu, (cpu.trBase + at) | 0);
  const mask = ((1 << size) - 1) << (port & 7);
  return (bits & mask) === 0;
}

/** #GP(0) unless the access is permitted (see ioPermitted). */
export function checkIO(cpu: CPU, port: number, size: number): void {
  if (!ioPermitted(cpu, port, size)) cpu.gp(0);
}

function sysReadU16(cpu: CPU, lin: number): number {
  return cpu.mem.read16(cpu.translate(lin, false, false));
}

/** IN/OUT with an immediate or DX port (E4-E7, EC-EF). */
export function portIO(cpu: CPU, op: number, port: number): void {
  const size = (op & 1) === 0 ? 1 : (cpu.pfx & P_O16) !== 0 ? 2 : 4;
  let trap = null;
  if (!ioPermitted(cpu, port, size)) {
    trap = cpu.ioTrap; // an embedder that emulates forbidden I/O, else #GP(0)
    if (trap === null) cpu.gp(0);
  }
  if ((op & 2) === 0) {
    const v = trap !== null ? trap.in(port, size) : cpu.bus.portIn(port, size);
    if (v !== v) cpu.gp(0); // the embedder declined (NaN)
    if (size === 1) cpu.regs8[0] = v;
    else if (size === 2) cpu.regs16[0] = v;
    else cpu.regs[EAX] = v;
  } else {
    const v = size === 1 ? cpu.regs8[0] : size === 2 ? cpu.regs16[0] : cpu.regs[EAX];
    if (trap === null) cpu.bus.portOut(port, v, size);
    else if (!trap.out(port, v, size)) cpu.gp(0);
  }
}

/** 0F 00: SLDT, STR, LLDT, LTR, VERR, VERW. */
export function group6(cpu: CPU, m: number): void {
  const o = (m >> 3) & 7;
  const isMem = m < 0xc0;
  const a = isMem ? cpu.modrmAddr(m) : 0;
  const storeSel = (v: number) => {
    if (isMem) cpu.write16(a, v);
    else if ((cpu.pfx & P_O16) !== 0) cpu.regs16[(m & 7) << 1] = v;
    else cpu.regs[m & 7] = v;
  };
  const src = () => (isMem ? cpu.read16(a) : cpu.regs16[(m & 7) << 1]);
  switch (o) {
    case 0:
      return storeSel(cpu.ldtr);
    case 1:
      return storeSel(cpu.tr);
    case 2: {
      if (cpu.cpl !== 0) cpu.gp(0);
      const sel = src();
      if ((sel & 0xfffc) === 0) {
        cpu.ldtr = 0;
        cpu.ldtBase = cpu.ldtLimit = 0;
        return;
      }
      if ((sel & 4) !== 0) cpu.gp(sel & 0xfffc);
      const d = fetchDescriptor(cpu, sel);
      if (((d.hi >> 8) & 0x1f) !== 0x02) cpu.gp(sel & 0xfffc);
      if ((d.hi & 0x8000) === 0) cpu.fault(Vec.NP, sel & 0xfffc);
      cpu.ldtr = sel;
      cpu.ldtBase = descBase(d.lo, d.hi);
      cpu.ldtLimit = descLimit(d.lo, d.hi);
      return;
    }
    case 3: {
      if (cpu.cpl !== 0) cpu.gp(0);
      const sel = src();
      if ((sel & 0xfffc) === 0 || (sel & 4) !== 0) cpu.gp(sel & 0xfffc);
      const d = fetchDescriptor(cpu, sel);
      const t = (d.hi >> 8) & 0x1f;
      if (t !== 0x09 && t !== 0x01) cpu.gp(sel & 0xfffc); // available TSS (32- or 16-bit)
      if ((d.hi & 0x8000) === 0) cpu.fault(Vec.NP, sel & 0xfffc);
      // Mark busy.
      const pa = cpu.translate((d.addr + 4) | 0, true, false);
      cpu.mem.write32(pa, d.hi | 0x200);
      cpu.tr = sel;
      cpu.trBase = descBase(d.lo, d.hi);
      cpu.trLimit = descLimit(d.lo, d.hi);
      return;
    }
    case 4:
    case 5: {
      const sel = src();
      cpu.setFlagBits(ZF, verify(cpu, sel, o === 5) ? ZF : 0);
      return;
    }
    default:
      cpu.ud();
  }
}

/** VERR/VERW: is the segment readable/writable from CPL and RPL? */
function verify(cpu: CPU, sel: number, write: boolean): boolean {
  if ((sel & 0xfffc) === 0) return false;
  const ldt = (sel & 4) !== 0;
  if ((sel | 7) > (ldt ? cpu.ldtLimit : cpu.gdtLimit)) return false;
  const d = fetchDescriptor(cpu, sel);
  const hi = d.hi, type = (hi >> 8) & 0xf, dpl = (hi >> 13) & 3;
  if (((hi >> 12) & 1) === 0) return false;
  const code = (type & 8) !== 0;
  const conforming = code && (type & 4) !== 0;
  if (!conforming && (dpl < cpu.cpl || dpl < (sel & 3))) return false;
  if (write) return !code && (type & 2) !== 0;
  return !code || (type & 2) !== 0;
}

/** LAR (lsl = false) and LSL (lsl = true). */
export function larLsl(cpu: CPU, m: number, lsl: boolean): void {
  const o16 = (cpu.pfx & P_O16) !== 0;
  const sel = m < 0xc0 ? cpu.read16(cpu.modrmAddr(m)) : cpu.regs16[(m & 7) << 1];
  const r = (m >> 3) & 7;
  let ok = false, value = 0;
  if ((sel & 0xfffc) !== 0 && (sel | 7) <= ((sel & 4) !== 0 ? cpu.ldtLimit : cpu.gdtLimit)) {
    const d = fetchDescriptor(cpu, sel);
    const hi = d.hi, dpl = (hi >> 13) & 3, s = (hi >> 12) & 1, type = (hi >> 8) & 0xf;
    let typeOk: boolean;
    if (s === 1) typeOk = true;
    else {
      // System types valid for LAR: 1,2,3,9,B (+4,5,C for LAR only); LSL: 1,2,3,9,B.
      typeOk = [1, 2, 3, 9, 0xb].includes(type) || (!lsl && [4, 5, 0xc].includes(type));
    }
    const conforming = s === 1 && (type & 0xc) === 0xc;
    if (typeOk && (conforming || (dpl >= cpu.cpl && dpl >= (sel & 3)))) {
      ok = true;
      value = lsl ? descLimit(d.lo, hi) : hi & 0x00f0ff00;
    }
  }
  if (ok) {
    if (o16) cpu.regs16[r << 1] = value;
    else cpu.regs[r] = value;
  }
  cpu.setFlagBits(ZF, ok ? ZF : 0);
}

/** 0F 01: SGDT, SIDT, LGDT, LIDT, SMSW, LMSW, INVLPG. */
export function group7(cpu: CPU, m: number): void {
  const o = (m >> 3) & 7;
  const o16 = (cpu.pfx & P_O16) !== 0;
  if (m >= 0xc0) {
    if (o === 4) {
      if (o16) cpu.regs16[(m & 7) << 1] = cpu.cr0 & 0xffff;
      else cpu.regs[m & 7] = cpu.cr0;
      return;
    }
    if (o === 6) return lmsw(cpu, cpu.regs16[(m & 7) << 1]);
    return cpu.ud();
  }
  const a = cpu.modrmAddr(m);
  switch (o) {
    case 0:
    case 1: {
      const base = o === 0 ? cpu.gdtBase : cpu.idtBase;
      const limit = o === 0 ? cpu.gdtLimit : cpu.idtLimit;
      cpu.probeWrite(a, 6);
      cpu.write16(a, limit);
      cpu.write32((a + 2) | 0, o16 ? base & 0xffffff : base);
      return;
    }
    case 2:
    case 3: {
      if (cpu.cpl !== 0) cpu.gp(0);
      const limit = cpu.read16(a);
      let base = cpu.read32((a + 2) | 0);
      if (o16) base &= 0xffffff;
      if (o === 2) {
        cpu.gdtBase = base;
        cpu.gdtLimit = limit;
      } else {
        cpu.idtBase = base;
        cpu.idtLimit = limit;
      }
      return;
    }
    case 4:
      cpu.write16(a, cpu.cr0 & 0xffff);
      return;
    case 6:
      return lmsw(cpu, cpu.read16(a));
    case 7:
      if (cpu.cpl !== 0) cpu.gp(0);
      cpu.flushTlbPage(a);
      return;
    default:
      cpu.ud();
  }
}

function lmsw(cpu: CPU, v: number): void {
  if (cpu.cpl !== 0) cpu.gp(0);
  // LMSW changes PE (set only), MP, EM, TS.
  cpu.cr0 = (cpu.cr0 & ~0xe) | (v & 0xf) | (cpu.cr0 & 1);
}

/** MOV to/from CR0/CR2/CR3/CR4 and DR0-DR7 (0F 20-23). The mod field is ignored. */
export function movCrDr(cpu: CPU, op: number, m: number): void {
  const n = (m >> 3) & 7, r = m & 7;
  const isCr = (op & 1) === 0;
  if (isCr && (n === 1 || n > 4)) cpu.ud();
  if (cpu.cpl !== 0) cpu.gp(0);
  if (op === 0x20) {
    cpu.regs[r] = n === 0 ? cpu.cr0 : n === 2 ? cpu.cr2 : n === 3 ? cpu.cr3 : cpu.cr4;
  } else if (op === 0x21) {
    cpu.regs[r] = cpu.dr[n === 4 ? 6 : n === 5 ? 7 : n];
  } else if (op === 0x23) {
    cpu.dr[n === 4 ? 6 : n === 5 ? 7 : n] = cpu.regs[r];
  } else {
    const v = cpu.regs[r];
    switch (n) {
      case 0: {
        if ((v & CR0_PG) !== 0 && (v & CR0_PE) === 0) cpu.gp(0);
        const changed = cpu.cr0 ^ v;
        cpu.cr0 = v | 0x10; // ET is hardwired to 1
        if ((changed & (CR0_PG | CR0_WP | CR0_PE)) !== 0) cpu.flushTlb();
        break;
      }
      case 2:
        cpu.cr2 = v;
        break;
      case 3:
        cpu.cr3 = v;
        cpu.flushTlb();
        break;
      default: {
        const allowed = 0x4 | 0x8 | CR4_PSE | CR4_PAE | CR4_PGE | 0x100 | 0x200 | 0x400;
        if ((v & ~allowed) !== 0) cpu.gp(0);
        const changed = cpu.cr4 ^ v;
        cpu.cr4 = v;
        if ((changed & (CR4_PSE | CR4_PAE | CR4_PGE)) !== 0) cpu.flushTlb();
      }
    }
  }
}

/** MSR numbers the CPU keeps. */
export const MSR = {
  TSC: 0x10,
  SYSENTER_CS: 0x174,
  SYSENTER_ESP: 0x175,
  SYSENTER_EIP: 0x176,
  /** IA32_BIOS_SIGN_ID: the microcode revision (EDX on read); every P6 has it. */
  BIOS_SIGN_ID: 0x8b,
} as const;

/** RDMSR: CPL 0; unknown MSRs raise #GP(0). */
export function rdmsr(cpu: CPU): void {
  if (cpu.cpl !== 0) cpu.gp(0);
  const n = cpu.regs[ECX] >>> 0;
  let v: bigint;
  if (n === MSR.TSC) v = cpu.tsc();
  else if (n === MSR.BIOS_SIGN_ID) v = 0n; // no microcode update loaded
  else if (n === MSR.SYSENTER_CS || n === MSR.SYSENTER_ESP || n === MSR.SYSENTER_EIP) {
    v = cpu.msr.get(n) ?? 0n;
  } else return cpu.gp(0);
  cpu.regs[EAX] = Number(v & 0xffffffffn) | 0;
  cpu.regs[EDX] = Number((v >> 32n) & 0xffffffffn) | 0;
}

/** WRMSR: CPL 0; unknown MSRs raise #GP(0). */
export function wrmsr(cpu: CPU): void {
  if (cpu.cpl !== 0) cpu.gp(0);
  const n = cpu.regs[ECX] >>> 0;
  const v = (BigInt(cpu.regs[EDX] >>> 0) << 32n) | BigInt(cpu.regs[EAX] >>> 0);
  if (n === MSR.TSC) cpu.tscOffset = Number(v) - cpu.icount;
  else if (n === MSR.BIOS_SIGN_ID) return; // writing 0 before CPUID latches the revision: nothing to keep
  else if (n === MSR.SYSENTER_CS || n === MSR.SYSENTER_ESP || n === MSR.SYSENTER_EIP) {
    cpu.msr.set(n, n === MSR.SYSENTER_CS ? v & 0xffffn : v & 0xffffffffn);
  } else cpu.gp(0);
}

/** Flat descriptor cache values for SYSENTER/SYSEXIT (base 0, 4 GiB, 32-bit). */
function flat(cpu: CPU, seg: number, sel: number, dpl: number): void {
  cpu.setSegFlat(seg, sel, dpl);
}

/** SYSENTER: to CPL 0 with flat segments from the SYSENTER MSRs. */
export function sysenter(cpu: CPU): void {
  const cs = Number(cpu.msr.get(MSR.SYSENTER_CS) ?? 0n);
  if ((cs & 0xfffc) === 0) cpu.gp(0);
  cpu.setEflags(cpu.getEflags() & ~(VM | 0x200 | RF));
  cpu.setCpl(0);
  flat(cpu, CS, cs & 0xfffc, 0);
  flat(cpu, SS, (cs + 8) & 0xfffc, 0);
  cpu.regs[ESP] = Number(cpu.msr.get(MSR.SYSENTER_ESP) ?? 0n) | 0;
  cpu.eip = Number(cpu.msr.get(MSR.SYSENTER_EIP) ?? 0n) | 0;
}

/** SYSEXIT: to CPL 3 with flat segments; EIP = EDX, ESP = ECX. */
export function sysexit(cpu: CPU): void {
  const cs = Number(cpu.msr.get(MSR.SYSENTER_CS) ?? 0n);
  if (cpu.cpl !== 0 || (cs & 0xfffc) === 0) cpu.gp(0);
  cpu.setCpl(3);
  flat(cpu, CS, ((cs + 16) & 0xfffc) | 3, 3);
  flat(cpu, SS, ((cs + 24) & 0xfffc) | 3, 3);
  cpu.regs[ESP] = cpu.regs[ECX];
  cpu.eip = cpu.regs[EDX];
}
