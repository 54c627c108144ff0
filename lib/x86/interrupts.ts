/**
 * Delivering exceptions and interrupts through the IDT, as the hardware does.
 *
 * When `run` meets an exception, a software interrupt or an external
 * interrupt, the per-vector switch `cpu.exitVectors` decides: 1 leaves `run`
 * for the embedder (a hypervisor that wants to see the trap), 0 delivers it
 * here through the guest's IDT (a bare machine). Delivery reads the gate,
 * checks it (type, DPL for software interrupts, presence), switches to the
 * inner stack from the TSS when the handler runs at a more privileged level,
 * pushes SS:ESP (on a switch), EFLAGS, CS, EIP and the error code, clears TF,
 * NT, RF (and IF for an interrupt gate), and enters the handler.
 *
 * A fault while delivering escalates as the SDM says: contributory after
 * contributory, or anything but a benign fault after #PF, becomes #DF; a fault
 * while delivering #DF shuts the machine down (triple fault). A fault whose
 * vector the embedder intercepts leaves `run` instead, with EIP at the
 * instruction, so it restarts once the embedder has dealt with it.
 *
 * Task gates and virtual-8086 mode are not supported: they shut the machine
 * down with a clear message.
 *
 * @module
 */

import type { CPU } from "./cpu.ts";
import { CPU_EXIT, CS, SS } from "./cpu.ts";
import { IF, NT, RF, TF, Vec, vectorName, VM } from "./flags.ts";
import { descBase, descLimit, fetchDescriptor } from "./system.ts";

/** Why a vector is being delivered. */
export const Source = {
  /** A CPU exception (fault or trap). */
  Exception: 0,
  /** INT n / INT3 / INTO (gate DPL is checked against CPL). */
  Software: 1,
  /** INT1 (ICEBP): software, but exempt from the gate-DPL check. */
  Icebp: 2,
  /** An external (hardware) interrupt. */
  External: 3,
} as const;

/** Vectors that push an error code. */
export function hasErrorCode(v: number): boolean {
  return v === 8 || (v >= 10 && v <= 14) || v === 17;
}

function isContributory(v: number): boolean {
  return v === 0 || (v >= 10 && v <= 13);
}

/** Write a dword of an exception frame as a privileged access. */
function frameWrite(cpu: CPU, pa: Int32Array, i: number, v: number): void {
  cpu.mem.write32(pa[i], v);
}

const framePa = new Int32Array(6);

/**
 * Deliver `vector` through the IDT. Throws CPU_EXIT (with the CPU's exit
 * fields set) if delivery itself faults; the caller escalates.
 */
function deliverOnce(cpu: CPU, vector: number, error: number, source: number): void {
  const ext = source === 3 || source === 0 ? 1 : 0;
  const idtErr = (vector << 3) | 2 | ext;
  if (vector * 8 + 7 > cpu.idtLimit) cpu.gp(idtErr);
  const gate = (cpu.idtBase + vector * 8) | 0;
  const lo = cpu.mem.read32(cpu.translate(gate, false, false));
  const hi = cpu.mem.read32(cpu.translate((gate + 4) | 0, false, false));
  const type = (hi >> 8) & 0x1f;
  const gdpl = (hi >> 13) & 3;
  if (type === 0x05) {
    cpu.shutdown(`task gate in IDT vector ${vector}: task switches are not supported`);
  }
  if (type !== 0x0e && type !== 0x0f && type !== 0x06 && type !== 0x07) cpu.gp(idtErr);
  if (source === 1 && gdpl < cpu.cpl) cpu.gp(idtErr);
  if ((hi & 0x8000) === 0) cpu.fault(Vec.NP, idtErr);
  const gate32 = (type & 8) !== 0;
  const sel = lo >>> 16;
  const offset = gate32 ? ((lo & 0xffff) | (hi & 0xffff0000)) | 0 : lo & 0xffff;
  if ((sel & 0xfffc) === 0) cpu.gp(ext);
  const cd = fetchDescriptor(cpu, sel);
  const chi = cd.hi;
  const cdpl = (chi >> 13) & 3;
  if (((chi >> 12) & 1) === 0 || (chi & 0x800) === 0 || cdpl > cpu.cpl) {
    cpu.gp((sel & 0xfffc) | ext);
  }
  if ((chi & 0x8000) === 0) cpu.fault(Vec.NP, (sel & 0xfffc) | ext);
  const conforming = (chi & 0x400) !== 0;
  const flags = cpu.getEflags();
  if ((flags & VM) !== 0) cpu.shutdown("interrupt from virtual-8086 mode is not supported");
  const newCpl = conforming ? cpu.cpl : cdpl;
  const n = gate32 ? 4 : 2;
  const withErr = source === 0 && hasErrorCode(vector) && error >= 0;
  const oldCs = cpu.sreg[CS], oldEip = cpu.eip;

  let ss = cpu.sreg[SS], ssBase = cpu.sbase[SS], esp = cpu.regs[4];
  let ssLo = 0, ssHi = 0;
  const inner = newCpl < cpu.cpl;
  if (inner) {
    // Inner stack from the TSS: ESPn at 4 + 8n, SSn at 8 + 8n (32-bit TSS).
    if (cpu.trLimit < 8 + 8 * newCpl + 1) cpu.fault(Vec.TS, cpu.tr & 0xfffc);
    const tssEsp = cpu.mem.read32(cpu.translate((cpu.trBase + 4 + 8 * newCpl) | 0, false, false));
    const tssSs = cpu.mem.read16(cpu.translate((cpu.trBase + 8 + 8 * newCpl) | 0, false, false));
    if ((tssSs & 0xfffc) === 0) cpu.fault(Vec.TS, ext);
    const sd = fetchDescriptor(cpu, tssSs, Vec.TS);
    const shi = sd.hi, stype = (shi >> 8) & 0xf;
    if (
      (tssSs & 3) !== newCpl || ((shi >> 13) & 3) !== newCpl || ((shi >> 12) & 1) === 0 ||
      (stype & 8) !== 0 || (stype & 2) === 0
    ) cpu.fault(Vec.TS, (tssSs & 0xfffc) | ext);
    if ((shi & 0x8000) === 0) cpu.fault(Vec.SS, (tssSs & 0xfffc) | ext);
    ss = tssSs;
    ssLo = sd.lo;
    ssHi = sd.hi;
    ssBase = descBase(sd.lo, sd.hi);
    esp = tssEsp;
  }
  // Lay out the frame: [SS, ESP,] EFLAGS, CS, EIP [, error], highest address first.
  const words: number[] = [];
  if (inner) words.push(cpu.sreg[SS], cpu.regs[4]);
  words.push(flags, oldCs, oldEip);
  if (withErr) words.push(error);
  const user = newCpl === 3;
  let sp = esp;
  for (let i = 0; i < words.length; i++) {
    sp = (sp - n) | 0;
    const lin = (ssBase + sp) | 0;
    if (((lin & 0xfff) + n) > 0x1000) {
      cpu.shutdown("exception frame crosses a page boundary mid-word");
    }
    framePa[i] = cpu.translate(lin, true, user);
  }
  // Everything checked: commit.
  for (let i = 0; i < words.length; i++) {
    if (n === 4) frameWrite(cpu, framePa, i, words[i]);
    else cpu.mem.write16(framePa[i], words[i]);
  }
  if (inner) {
    cpu.sreg[SS] = ss;
    cpu.sbase[SS] = ssBase;
    cpu.slimit[SS] = descLimit(ssLo, ssHi);
    cpu.sflags[SS] = (ssHi >> 8) & 0xf0ff;
  }
  cpu.regs[4] = sp;
  cpu.setCpl(newCpl);
  cpu.sreg[CS] = (sel & 0xfffc) | newCpl;
  cpu.sbase[CS] = descBase(cd.lo, chi);
  cpu.slimit[CS] = descLimit(cd.lo, chi);
  cpu.sflags[CS] = (chi >> 8) & 0xf0ff;
  cpu.csChanged();
  let nf = flags & ~(TF | NT | RF | VM);
  if ((type & 1) === 0) nf &= ~IF; // interrupt gate
  cpu.setEflags(nf);
  cpu.eip = offset;
}

/**
 * Deliver an exception or interrupt, escalating faults that happen while doing
 * so. Returns true when the CPU is now at a handler; false when `run` must
 * exit to the embedder (the CPU's exit fields describe why).
 */
export function deliver(cpu: CPU, vector: number, error: number, source: number): boolean {
  let v = vector, e = error, src = source;
  cpu.deliveryFaulted = false;
  const chain = [describe(v, e) + ` at eip=0x${(cpu.eip >>> 0).toString(16)}`];
  for (let depth = 0;; depth++) {
    try {
      deliverOnce(cpu, v, e, src);
      return true;
    } catch (x) {
      if (x !== CPU_EXIT) throw x;
    }
    if (cpu.exitKind !== 2) return false; // shutdown while delivering
    // A fault raised by the gate checks of INT n / INT3 / INTO is a fault of that
    // instruction (SDM INT n: #GP(vector*8+2), #NP(...)): the frame must point at
    // the INT, not past it. Exceptions and external interrupts keep their EIP.
    if (src === Source.Software || src === Source.Icebp) {
      cpu.eip = cpu.instrStart;
      cpu.deliveryFaulted = true; // the INT did not retire
    }
    const second = cpu.exitVector;
    chain.push(describe(second, cpu.exitError));
    if (v === Vec.DF || depth > 3) {
      cpu.setShutdown(`triple fault: ${chain.join(" -> ")}`);
      return false;
    }
    const df = src === 0 &&
      ((isContributory(v) && isContributory(second)) ||
        (v === Vec.PF && (second === Vec.PF || isContributory(second))));
    if (df) {
      v = Vec.DF;
      e = 0;
      chain.push("#DF(0)");
    } else {
      v = second;
      e = cpu.exitError;
    }
    src = 0;
    if (cpu.exitVectors[v] !== 0) {
      cpu.exitVector = v;
      cpu.exitError = e;
      return false;
    }
  }
}

function describe(v: number, e: number): string {
  return vectorName(v) + (e >= 0 && hasErrorCode(v) ? `(0x${e.toString(16)})` : "");
}
