/**
 * String instructions: MOVS, CMPS, STOS, LODS, SCAS, INS, OUTS, with REP,
 * REPE and REPNE, both directions (DF), and 16- or 32-bit addressing.
 *
 * Each iteration reads, then writes, then updates ESI/EDI/ECX, so a fault in
 * iteration k leaves the registers exactly as after k-1 iterations and EIP at
 * the instruction: restarting it resumes where it stopped, as on the real CPU.
 * REP MOVS and REP STOS with 32-bit addressing take a bulk path over runs that
 * stay inside one page of source and destination (Linux clears and copies
 * pages this way at boot), with the same register results.
 *
 * @module
 */

import type { CPU } from "./cpu.ts";
import { DS, ES, P_A16, P_O16, P_REPNZ, P_REPZ } from "./cpu.ts";
import { DF } from "./flags.ts";
import { checkIO } from "./system.ts";

const EAX = 0, ECX = 1, EDX = 2, ESI = 6, EDI = 7;

function rd(cpu: CPU, a: number, size: number): number {
  return size === 1 ? cpu.read8(a) : size === 2 ? cpu.read16(a) : cpu.read32(a);
}

function wr(cpu: CPU, a: number, v: number, size: number): void {
  if (size === 1) cpu.write8(a, v);
  else if (size === 2) cpu.write16(a, v);
  else cpu.write32(a, v);
}

function cmp(cpu: CPU, a: number, b: number, size: number): void {
  if (size === 1) cpu.alu8(7, a, b);
  else if (size === 2) cpu.alu16(7, a, b);
  else cpu.alu32(7, a, b);
}

/** Execute string instruction `op` (6C-6F, A4-A7, AA-AF) with the current prefixes. */
export function stringOp(cpu: CPU, op: number): void {
  const pfx = cpu.pfx;
  const a16 = (pfx & P_A16) !== 0;
  const size = (op & 1) === 0 ? 1 : (pfx & P_O16) !== 0 ? 2 : 4;
  const delta = (cpu.flags & DF) !== 0 ? -size : size;
  const rep = (pfx & (P_REPZ | P_REPNZ)) !== 0;
  const regs = cpu.regs, r16 = cpu.regs16;
  const port = r16[EDX << 1];
  if (op <= 0x6f) checkIO(cpu, port, size);
  // Destination is always ES (no override): it must be writable for MOVS/STOS/INS.
  if (
    (op <= 0x6d || op === 0xa4 || op === 0xa5 || op === 0xaa || op === 0xab) &&
    (cpu.sflags[ES] & 0x1a) !== 0x12
  ) cpu.segWriteFault(ES);

  if (rep && !a16 && (op === 0xa4 || op === 0xa5 || op === 0xaa || op === 0xab) && delta > 0) {
    if (bulk(cpu, op, size)) return;
  }

  for (;;) {
    if (rep && (a16 ? r16[ECX << 1] : regs[ECX]) === 0) return;
    const si = a16 ? r16[ESI << 1] : regs[ESI];
    const di = a16 ? r16[EDI << 1] : regs[EDI];
    const src = cpu.segAddr(DS, si);
    const dst = (di + cpu.sbase[ES]) | 0;
    let useSi = false, useDi = false, cmpStop = false;
    switch (op) {
      case 0xa4:
      case 0xa5:
        wr(cpu, dst, rd(cpu, src, size), size);
        useSi = useDi = true;
        break;
      case 0xa6:
      case 0xa7: {
        const a = rd(cpu, src, size), b = rd(cpu, dst, size);
        cmp(cpu, a, b, size);
        useSi = useDi = cmpStop = true;
        break;
      }
      case 0xaa:
      case 0xab:
        wr(cpu, dst, size === 4 ? regs[EAX] : size === 2 ? r16[0] : cpu.regs8[0], size);
        useDi = true;
        break;
      case 0xac:
      case 0xad: {
        const v = rd(cpu, src, size);
        if (size === 4) regs[EAX] = v;
        else if (size === 2) r16[0] = v;
        else cpu.regs8[0] = v;
        useSi = true;
        break;
      }
      case 0xae:
      case 0xaf: {
        const b = rd(cpu, dst, size);
        cmp(cpu, size === 4 ? regs[EAX] : size === 2 ? r16[0] : cpu.regs8[0], b, size);
        useDi = cmpStop = true;
        break;
      }
      case 0x6c:
      case 0x6d: {
        // INS: probe the destination first so a fault does not lose the port read.
        cpu.probeWrite(dst, size);
        wr(cpu, dst, cpu.bus.portIn(port, size), size);
        useDi = true;
        break;
      }
      default: { // 6E/6F OUTS
        cpu.bus.portOut(port, rd(cpu, src, size), size);
        useSi = true;
        break;
      }
    }
    if (a16) {
      if (useSi) r16[ESI << 1] = si + delta;
      if (useDi) r16[EDI << 1] = di + delta;
    } else {
      if (useSi) regs[ESI] = (si + delta) | 0;
      if (useDi) regs[EDI] = (di + delta) | 0;
    }
    if (!rep) return;
    let c: number;
    if (a16) c = r16[ECX << 1] = r16[ECX << 1] - 1;
    else c = regs[ECX] = (regs[ECX] - 1) | 0;
    if (cmpStop) {
      const zf = cpu.getZF() !== 0;
      if ((pfx & P_REPZ) !== 0 ? !zf : zf) return;
    }
    if (c === 0) return;
    // Something asked the run loop to stop (an interrupt raised, a device that
    // killed its guest): a REP is interruptible between iterations, so end it
    // here and let it restart at its first prefix, the registers as they are.
    if (cpu.stopRequested) {
      cpu.eip = cpu.instrStart;
      return;
    }
  }
}

/**
 * REP MOVS/STOS forward with 32-bit addressing: do as many whole elements as
 * stay inside the current source and destination pages at once. Returns true
 * when the instruction finished (ECX reached 0); false leaves the rest to the
 * element loop (which also handles faults precisely).
 */
function bulk(cpu: CPU, op: number, size: number): boolean {
  const regs = cpu.regs, u8 = cpu.u8;
  const isMovs = op <= 0xa5;
  for (;;) {
    const count = regs[ECX] >>> 0;
    if (count === 0) return true;
    const di = regs[EDI], dst = (di + cpu.sbase[ES]) | 0;
    const dstRoom = (0x1000 - (dst & 0xfff)) / size;
    let n = Math.min(count, Math.floor(dstRoom));
    let src = 0, si = 0;
    if (isMovs) {
      si = regs[ESI];
      src = cpu.segAddr(DS, si);
      n = Math.min(n, Math.floor((0x1000 - (src & 0xfff)) / size));
    }
    if (n <= 1) return false;
    // Translate both pages through the TLB (may fault: nothing has changed yet),
    // the source first, as the element loop reads before it writes.
    const ps = isMovs ? cpu.physAddr(src, false) : 0;
    const pd = cpu.physAddr(dst, true);
    const bytes = n * size;
    if (pd < 0 || pd + bytes > cpu.mem.size || (isMovs && (ps < 0 || ps + bytes > cpu.mem.size))) {
      return false;
    }
    cpu.invalidateCode(pd, bytes);
    // Overlap where a forward element copy would read what it just wrote: let the
    // element loop reproduce that exactly.
    if (isMovs && ps < pd && ps + bytes > pd) return false;
    if (isMovs) {
      u8.copyWithin(pd, ps, ps + bytes);
      regs[ESI] = (si + bytes) | 0;
    } else if (size === 1) {
      u8.fill(cpu.regs8[0], pd, pd + bytes);
    } else {
      const v = regs[EAX];
      if (size === 4 && (pd & 3) === 0) cpu.i32.fill(v, pd >> 2, (pd + bytes) >> 2);
      else {
        for (let i = 0; i < bytes; i += size) {
          if (size === 2) cpu.dv.setUint16(pd + i, v, true);
          else cpu.dv.setInt32(pd + i, v, true);
        }
      }
    }
    regs[EDI] = (di + bytes) | 0;
    regs[ECX] = (count - n) | 0;
  }
}
