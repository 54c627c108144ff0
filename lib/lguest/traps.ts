/**
 * What the host does with each trap the guest takes: lguest's
 * `lguest_arch_handle_trap` (drivers/lguest/x86/core.c, §4.4), written once.
 *
 * Two paths reach it, and both call the same functions here:
 *  - the fast path, inside the CPU's instruction (the CPU's `pageFaultHook`,
 *    `softIntHook` and `ioTrap`): no exit from `cpu.run`, no JavaScript throw;
 *  - the exit path, `Guest.run`'s loop, when the CPU returned an exception.
 * Inside an instruction the host cannot reflect a fault (the instruction is
 * half done), so there `handleTrap` may answer `Trap.Exit`: "take the CPU's
 * exit", and the exit path finishes the same decision.
 *
 * The policy, vector by vector:
 *  - `int $0x1f` from ring 0/1: a hypercall (the registers per `abi.ts`),
 *    after draining the async ring;
 *  - any other INT n: the gate-DPL rule the host's own IDT would apply (the
 *    hypercall gate has DPL 1, the host's exception and IRQ vectors DPL 0,
 *    the rest the guest's gate), #GP(vector*8+2) when it fails, else the
 *    guest's handler;
 *  - #PF: `demandPage`; what it cannot fix is the guest's own page fault
 *    (`lguest_data.cr2` is written first). Device memory is no special case:
 *    the shadows map it, and the CPU's bus carries the access to the device;
 *  - #NM: nothing to restore unless the guest set its virtual TS;
 *  - #GP: reflected (the I/O the host emulates never becomes a #GP: the
 *    CPU's `ioTrap` hands it to `portIn`/`portOut` below);
 *  - anything else: reflected; a trap the guest has no handler for kills it.
 *
 * Port I/O (§7.1): the guest kernel runs with IOPL 0, so every IN/OUT at
 * ring 1 is the host's to emulate, and it goes to the CPU's bus where the
 * launcher wired its devices; a CLI at ring 1 is skipped (a leftover of
 * lguest's old cmpxchg8b emulation). Ring 3 gets the #GP.
 *
 * @module
 */

import type { Guest } from "./guest.ts";
import { HCALL_ARG_REGS, HCALL_NR_REG, LGUEST_DATA, LGUEST_TRAP_ENTRY } from "./abi.ts";
import { SYSCALL_VECTOR } from "./abi.ts";
import { Demand } from "./page_tables.ts";
import { deliverTrap } from "./interrupts_and_traps.ts";
import { doHcall, drainAsync } from "./hypercalls.ts";
import { vectorName } from "../x86/flags.ts";

/** handleTrap's answers. */
export const Trap = {
  /** Handled: the guest goes on (fixed, emulated, or its handler entered). */
  Done: 0,
  /** Only from inside an instruction: take the CPU's exit; the exit path finishes it. */
  Exit: 1,
} as const;

/** Where a trap came from: an exception, or a software INT n / INT3 / INTO. */
export const TrapKind = { Exception: 0, Software: 1 } as const;

/**
 * The DPL the host's gate for vector `v` has: the hypercall gate 1, the
 * host's #NM/#GP/#PF and interrupt vectors 0 (the system-call vector
 * excepted), everything else the guest's own gate.
 */
export function gateDpl(g: Guest, v: number): number {
  if (v === LGUEST_TRAP_ENTRY) return 1;
  if (v === 7 || v === 13 || v === 14 || (v >= 32 && v !== SYSCALL_VECTOR)) return 0;
  return g.idt.dpl(v);
}

/**
 * lguest_arch_handle_trap for vector `v` (error code `err`, -1 for none; for
 * a #PF the faulting address `cr2`) of kind `kind`. `inInsn`: called from
 * inside the CPU's instruction (the fast path), where only Done or Exit may
 * be answered and nothing is reflected. From the exit path it always answers
 * Done (or kills the guest).
 */
export function handleTrap(
  g: Guest,
  v: number,
  err: number,
  kind: number,
  cr2: number,
  inInsn: boolean,
): number {
  const cpu = g.cpu;
  if (kind === TrapKind.Software) {
    if (v === LGUEST_TRAP_ENTRY && cpu.cpl <= 1) {
      hypercall(g, inInsn);
      return Trap.Done;
    }
    const ok = cpu.cpl <= gateDpl(g, v);
    if (inInsn && (!ok || !g.idt.present(v))) return Trap.Exit;
    if (!ok) {
      cpu.eip = cpu.instrStart; // #GP is a fault at the INT instruction
      return reflect(g, 13, (v << 3) | 2);
    }
    return reflect(g, v, -1);
  }
  switch (v) {
    case 14: {
      // The exit after a fast-path attempt that failed: demandPage has run (and was reported).
      const tried = !inInsn && g.pfTried === cr2;
      g.pfTried = NaN;
      if (!tried) {
        const r = g.pt.demandPage(cr2, err);
        g.onPageFault?.(cr2, err, r);
        if (r === Demand.Ok) {
          if (!inInsn) g.noteFixedFault(cr2, err);
          return Trap.Done;
        }
      }
      if (inInsn) {
        g.pfTried = cr2;
        return Trap.Exit;
      }
      if (g.lguestData >= 0) g.writeLguestData(LGUEST_DATA.cr2, cr2);
      break;
    }
    case 7:
      if (!g.ts) return Trap.Done; // the FPU is the guest's; nothing to restore
      break;
  }
  if (inInsn) return Trap.Exit;
  return reflect(g, v, err);
}

/** The guest made a hypercall: drain the async ring, then execute it. */
function hypercall(g: Guest, inInsn: boolean): void {
  const r = g.cpu.regs;
  const deadline = g.timerDeadline;
  drainAsync(g);
  if (!g.dead) {
    const [a1, a2, a3, a4] = HCALL_ARG_REGS;
    doHcall(g, r[HCALL_NR_REG] >>> 0, r[a1], r[a2], r[a3], r[a4]);
  }
  // Inside the instruction: come round to the host loop when the call changed what it
  // schedules, or an interrupt is pending (SEND_INTERRUPTS exists for exactly that).
  if (inInsn && (g.halted || g.timerDeadline !== deadline || g.irqsPending !== 0)) {
    g.cpu.requestStop();
  }
}

/** Reflect trap `v` into the guest, or kill it if it has no handler (lguest's deliver_trap). */
function reflect(g: Guest, v: number, err: number): number {
  if (!deliverTrap(g, v, err)) {
    const cpu = g.cpu;
    // As 4.9 reports it: CR2 for a page fault, else the error code (0 for a
    // vector without one: the switcher pushes a 0 in its place).
    const detail = v === 14
      ? `cr2 0x${(cpu.exitCr2 >>> 0).toString(16)}`
      : `err 0x${(err < 0 ? 0 : err >>> 0).toString(16)}`;
    g.kill(
      `unhandled trap ${v} (${vectorName(v)}) at 0x${(cpu.eip >>> 0).toString(16)} (${detail})`,
    );
  }
  return Trap.Done;
}

/** IN at ring 1: the bus answers (NaN refuses: #GP for ring 3). */
export function portIn(g: Guest, port: number, size: number): number {
  return g.cpu.cpl === 1 ? g.cpu.bus.portIn(port, size) : NaN;
}

/** OUT at ring 1 to the bus; false (a #GP) for ring 3 or a write the device refused. */
export function portOut(g: Guest, port: number, v: number, size: number): boolean {
  return g.cpu.cpl === 1 && g.cpu.bus.portOut(port, v, size);
}

/** CLI at ring 1: skipped, as lguest's launcher does. */
export function cli(g: Guest): boolean {
  return g.cpu.cpl === 1;
}
