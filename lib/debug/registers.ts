/**
 * Registers by name: read and written by the debugger's `set`, read by
 * expressions (`x/4d esp`, `break [esp]`), listed for tab completion. The
 * general registers come in their 32-, 16- and 8-bit names; EFLAGS bits can be
 * set one at a time (`set zf 1`); segment registers are read-only here (a
 * selector means nothing without its descriptor).
 *
 * @module
 */

import { type CPU, CS, DS, ES, FS, GS, SS } from "../x86/cpu.ts";
import { EFLAGS_NAMES } from "./format.ts";

/** The 32-bit general registers, in encoding order. */
export const GPR32: readonly string[] = ["eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi"];
const GPR16 = ["ax", "cx", "dx", "bx", "sp", "bp", "si", "di"];
const GPR8 = ["al", "cl", "dl", "bl", "ah", "ch", "dh", "bh"];
/** The segment registers and their numbers, in display order. */
export const SEGS: readonly (readonly [string, number])[] = [
  ["cs", CS],
  ["ss", SS],
  ["ds", DS],
  ["es", ES],
  ["fs", FS],
  ["gs", GS],
];

/** Every register name the debugger knows, for completion. */
export const REGISTER_NAMES: readonly string[] = [
  ...GPR32,
  "eip",
  "eflags",
  ...GPR16,
  ...GPR8,
  ...SEGS.map(([n]) => n),
  "cr0",
  "cr2",
  "cr3",
  "cr4",
  "cpl",
  ...EFLAGS_NAMES.keys(),
];

/** Read register `name` (lower case); undefined when there is no such register. */
export function readRegister(cpu: CPU, name: string): number | undefined {
  let i = GPR32.indexOf(name);
  if (i >= 0) return cpu.regs[i] >>> 0;
  i = GPR16.indexOf(name);
  if (i >= 0) return cpu.regs16[i * 2];
  i = GPR8.indexOf(name);
  if (i >= 0) return cpu.regs8[i < 4 ? i * 4 : (i - 4) * 4 + 1];
  const seg = SEGS.find(([n]) => n === name);
  if (seg) return cpu.sreg[seg[1]];
  switch (name) {
    case "eip":
    case "pc":
      return cpu.eip >>> 0;
    case "eflags":
    case "flags":
      return cpu.getEflags() >>> 0;
    case "cr0":
      return cpu.cr0 >>> 0;
    case "cr2":
      return cpu.cr2 >>> 0;
    case "cr3":
      return cpu.cr3 >>> 0;
    case "cr4":
      return cpu.cr4 >>> 0;
    case "cpl":
      return cpu.cpl;
  }
  const bit = EFLAGS_NAMES.get(name);
  if (bit !== undefined) return (cpu.getEflags() & bit) !== 0 ? 1 : 0;
  return undefined;
}

/**
 * Write register `name`. Returns an error message (one line) when the
 * register cannot be written, or null on success.
 */
export function writeRegister(cpu: CPU, name: string, v: number): string | null {
  let i = GPR32.indexOf(name);
  if (i >= 0) {
    cpu.regs[i] = v;
    return null;
  }
  i = GPR16.indexOf(name);
  if (i >= 0) {
    cpu.regs16[i * 2] = v;
    return null;
  }
  i = GPR8.indexOf(name);
  if (i >= 0) {
    cpu.regs8[i < 4 ? i * 4 : (i - 4) * 4 + 1] = v;
    return null;
  }
  if (SEGS.some(([n]) => n === name)) {
    return `segment registers cannot be set here: a selector needs its descriptor loaded`;
  }
  switch (name) {
    case "eip":
    case "pc":
      cpu.eip = v | 0;
      return null;
    case "eflags":
    case "flags":
      cpu.setEflags(v);
      return null;
    case "cr0":
      cpu.cr0 = v | 0;
      cpu.flushTlb();
      return null;
    case "cr2":
      cpu.cr2 = v | 0;
      return null;
    case "cr3":
      cpu.cr3 = v | 0;
      cpu.flushTlb();
      return null;
    case "cr4":
      cpu.cr4 = v | 0;
      cpu.flushTlb();
      return null;
    case "cpl":
      return "cpl follows CS: it cannot be set by itself";
  }
  const bit = EFLAGS_NAMES.get(name);
  if (bit !== undefined) {
    if (v !== 0 && v !== 1) return `a flag is 0 or 1`;
    const f = cpu.getEflags();
    cpu.setEflags(v ? f | bit : f & ~bit);
    return null;
  }
  return `no register named '${name}'`;
}
