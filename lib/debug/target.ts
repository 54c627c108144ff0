/**
 * What the debugger debugs: a guest under the lguest host, or the bare
 * machine. Both are a CPU and physical memory; they differ in who runs the
 * CPU (the host's `Guest.run` loop, or a loop here that plays the bare
 * machine), in how a linear address reaches memory (through the guest's own
 * tables, which the host shadows, or through the CPU's tables), and in what
 * ends a run. This file hides those differences behind one small interface,
 * so the debugger above it has one stepping and breakpoint logic.
 *
 * @module
 */

import { type CPU, CPU_EXIT, Exit } from "../x86/cpu.ts";
import { CR0_PG, CR4_PAE, CR4_PSE } from "../x86/cpu.ts";
import type { PhysicalMemory } from "../x86/memory.ts";
import { IF, vectorName } from "../x86/flags.ts";
import { deliver } from "../x86/interrupts.ts";
import type { Guest } from "../lguest/guest.ts";
import type { Launcher } from "../boot/launcher.ts";
import type { BareMachine } from "../boot/bare.ts";
import type { ConsoleLog } from "../boot/console_log.ts";
import { HCALL_NR_REG, LGUEST_TRAP_ENTRY } from "../lguest/abi.ts";
import { type PagingMode, type Read32, type Walk, walk } from "./paging.ts";
import { hex } from "./format.ts";

/** How a run of the target ended. */
export type RunResult =
  | { kind: "budget" }
  | { kind: "breakpoint" }
  | { kind: "stop" }
  | { kind: "trap"; vector: number; error: number; cr2: number; hcall: number | null }
  | { kind: "halted" }
  | { kind: "ended"; reason: string; status: number };

/** A machine the debugger can drive. */
export interface Target {
  /** "lguest" (a guest under the host) or "bare" (the CPU alone). */
  readonly kind: "lguest" | "bare";
  /** The CPU. */
  readonly cpu: CPU;
  /** Physical memory. */
  readonly mem: PhysicalMemory;
  /** Kernel symbols (name → address), empty when the kernel has none. */
  readonly symbols: Map<string, number>;
  /** The lguest guest (null on the bare machine). */
  readonly guest: Guest | null;
  /** The launcher (null on the bare machine). */
  readonly launcher: Launcher | null;
  /** The bare machine (null under lguest). */
  readonly bare: BareMachine | null;
  /** Bytes of guest RAM. */
  readonly ramSize: number;
  /** The guest's console output (bounded; read it as a stream with `output.reader()`). */
  readonly output: ConsoleLog;
  /** Set once the machine can run no more. */
  readonly ended: { reason: string; status: number } | null;
  /** Vectors to stop at before they are handled or delivered. */
  readonly trapBreak: Set<number>;
  /** Called for every trap the machine sees (tracing). */
  onTrap: ((vector: number, error: number, cr2: number) => void) | null;
  /** Run at most `n` instructions. */
  run(n: number): RunResult;
  /** Stop the current run after this instruction (from inside a hook). */
  requestStop(): void;
  /** Apply changes to `trapBreak` (and tracing) before the next run. */
  syncTraps(traceAll: boolean): void;
  /** Linear → physical as the guest sees it, without side effects. */
  linear(lin: number): Walk;
  /** Read a physical dword (null outside memory). */
  read32: Read32;
}

const read32Of = (mem: PhysicalMemory): Read32 => (pa: number) =>
  pa >= 0 && pa + 4 <= mem.size ? mem.dv.getInt32(pa, true) : null;

/** A guest under the lguest host, as started by a {@link Launcher}. */
export class LguestTarget implements Target {
  /** Always "lguest". */
  readonly kind = "lguest" as const;
  /** The guest. */
  readonly guest: Guest;
  /** The CPU. */
  readonly cpu: CPU;
  /** Physical memory. */
  readonly mem: PhysicalMemory;
  /** Kernel symbols. */
  readonly symbols: Map<string, number>;
  /** Not on lguest. */
  readonly bare = null;
  /** Guest RAM bytes. */
  readonly ramSize: number;
  /** The guest's console output. */
  readonly output: ConsoleLog;
  /** Read a physical dword. */
  readonly read32: Read32;
  /** The guest's trapBreak set. */
  readonly trapBreak: Set<number>;
  /** Trap hook (forwarded from the guest). */
  onTrap: ((vector: number, error: number, cr2: number) => void) | null = null;

  /** The target of `launcher`'s guest. @param launcher a launcher whose guest is at its entry point (or anywhere) */
  constructor(readonly launcher: Launcher) {
    this.guest = launcher.guest;
    this.cpu = this.guest.cpu;
    this.mem = this.guest.mem;
    this.symbols = launcher.kernel.symbols;
    this.ramSize = launcher.ramSize;
    this.output = launcher.output;
    this.read32 = read32Of(this.mem);
    this.trapBreak = this.guest.trapBreak;
    this.guest.onTrap = (v, e, c) => this.onTrap?.(v, e, c);
  }

  /** The guest's end, once dead. */
  get ended(): { reason: string; status: number } | null {
    const g = this.guest;
    return g.dead ? { reason: g.deathReason, status: g.poweredOff ? 0 : 1 } : null;
  }

  /** Run through the host's loop. */
  run(n: number): RunResult {
    const r = this.guest.run(n);
    switch (r) {
      case "dead":
        return { kind: "ended", ...this.ended! };
      case "trap": {
        const cpu = this.cpu, v = cpu.exitVector;
        const hcall = v === LGUEST_TRAP_ENTRY && !this.trapBreak.has(v)
          ? cpu.regs[HCALL_NR_REG] >>> 0
          : null;
        return { kind: "trap", vector: v, error: cpu.exitError, cr2: cpu.exitCr2, hcall };
      }
      default:
        return { kind: r };
    }
  }

  /** Ask the host loop to stop after this instruction. */
  requestStop(): void {
    this.guest.requestStop();
  }

  /** Nothing to do: the guest reads trapBreak itself, and every trap reaches the host. */
  syncTraps(): void {}

  /**
   * Linear → guest-physical through the guest's own tables (what the host
   * will shadow), or the host's made-up identity map in linear mode.
   */
  linear(lin: number): Walk {
    lin >>>= 0;
    const g = this.guest;
    if (g.pt.linear) {
      const ok = lin < this.ramSize;
      return {
        steps: [],
        pa: ok ? lin : null,
        pageSize: 4096,
        why: ok
          ? ""
          : lin < g.deviceLimit * 4096
          ? "device memory (MMIO): every access traps to the host"
          : "beyond guest RAM: the host fakes no mapping there",
        writable: true,
        user: false,
      };
    }
    return walk(this.guestRead32, g.pt.current.gpgdir, lin, { pae: g.pt.pae, pse: false });
  }

  /** Reads guest RAM only (the guest's tables cannot point elsewhere). */
  readonly guestRead32: Read32 = (pa: number) =>
    pa >= 0 && pa + 4 <= this.ramSize ? this.mem.dv.getInt32(pa, true) : null;
}

/** The bare machine: the CPU alone, exceptions delivered through its own IDT. */
export class BareTarget implements Target {
  /** Always "bare". */
  readonly kind = "bare" as const;
  /** The CPU. */
  readonly cpu: CPU;
  /** Physical memory. */
  readonly mem: PhysicalMemory;
  /** No lguest. */
  readonly guest = null;
  /** No launcher. */
  readonly launcher = null;
  /** RAM bytes. */
  readonly ramSize: number;
  /** The guest's console output. */
  readonly output: ConsoleLog;
  /** Read a physical dword. */
  readonly read32: Read32;
  /** Vectors to stop at before delivery. */
  readonly trapBreak: Set<number> = new Set();
  /** Trap hook. */
  onTrap: ((vector: number, error: number, cr2: number) => void) | null = null;
  /** How it ended. */
  ended: { reason: string; status: number } | null = null;
  /** An exception stopped at (trapBreak) and not yet delivered. */
  private pending: { vector: number; error: number; source: number } | null = null;

  /**
   * The target of a bare machine.
   *
   * @param bare a bare machine with its kernel loaded
   * @param symbols kernel symbols, if known
   */
  constructor(readonly bare: BareMachine, readonly symbols: Map<string, number> = new Map()) {
    this.cpu = bare.cpu;
    this.mem = bare.mem;
    this.output = bare.output;
    this.ramSize = bare.mem.size;
    this.read32 = read32Of(this.mem);
  }

  /** Intercept the vectors in trapBreak (all of them when tracing traps). */
  syncTraps(traceAll: boolean): void {
    const ev = this.cpu.exitVectors;
    for (let v = 0; v < 256; v++) ev[v] = traceAll || this.trapBreak.has(v) ? 1 : 0;
  }

  /** Stop after this instruction. */
  requestStop(): void {
    this.cpu.requestStop();
  }

  /** Record that the machine has ended, and say so. */
  private end(reason: string, status: number): RunResult {
    this.ended = { reason, status };
    return { kind: "ended", reason, status };
  }

  /** Run the bare machine as BareMachine.run does, stopping where the debugger asks. */
  run(n: number): RunResult {
    if (this.ended) return { kind: "ended", ...this.ended };
    const cpu = this.cpu;
    const stopAt = cpu.icount + n;
    if (this.pending) {
      const p = this.pending;
      this.pending = null;
      const r = this.deliver(p.vector, p.error, p.source);
      if (r) return r;
    }
    for (;;) {
      const left = stopAt - cpu.icount;
      if (left <= 0) return { kind: "budget" };
      const exit = cpu.run(left);
      switch (exit) {
        case Exit.Budget:
          continue;
        case Exit.Breakpoint:
          return { kind: "breakpoint" };
        case Exit.Stop: {
          const d = this.bare.debugExit;
          if (d !== null) return this.end(`debug exit ${hex(d, 2)}`, (d << 1) | 1);
          return { kind: "stop" };
        }
        case Exit.Halt:
          return this.end(
            (cpu.getEflags() & IF) === 0
              ? "halted with interrupts off"
              : "halted waiting for an interrupt (none can come on the bare machine)",
            0,
          );
        case Exit.Exception: {
          const v = cpu.exitVector, err = cpu.exitError, cr2 = cpu.exitCr2;
          this.onTrap?.(v, err, cr2);
          if (this.trapBreak.has(v)) {
            this.pending = { vector: v, error: err, source: cpu.exitSource };
            return { kind: "trap", vector: v, error: err, cr2, hcall: null };
          }
          const r = this.deliver(v, err, cpu.exitSource);
          if (r) return r;
          continue;
        }
        default:
          return this.end(`shutdown: ${cpu.exitMessage}`, 1);
      }
    }
  }

  /** Deliver an intercepted exception through the IDT; a result when the run must stop. */
  private deliver(v: number, err: number, source: number, depth = 0): RunResult | null {
    const cpu = this.cpu;
    let ok: boolean;
    try {
      ok = deliver(cpu, v, err, source);
    } catch (e) {
      if (e !== CPU_EXIT) throw e;
      ok = false;
    }
    if (ok) return null;
    if (cpu.exitKind === Exit.Shutdown) return this.end(`shutdown: ${cpu.exitMessage}`, 1);
    // A fault while delivering, itself intercepted: report it as the next trap.
    const nv = cpu.exitVector;
    this.onTrap?.(nv, cpu.exitError, cpu.exitCr2);
    if (this.trapBreak.has(nv)) {
      this.pending = { vector: nv, error: cpu.exitError, source: 0 };
      return { kind: "trap", vector: nv, error: cpu.exitError, cr2: cpu.exitCr2, hcall: null };
    }
    if (depth > 3) return this.end(`unhandled ${vectorName(nv)} at eip=${hex(cpu.eip)}`, 1);
    return this.deliver(nv, cpu.exitError, 0, depth + 1);
  }

  /** Paging mode of the CPU's tables. */
  get mode(): PagingMode {
    return { pae: (this.cpu.cr4 & CR4_PAE) !== 0, pse: (this.cpu.cr4 & CR4_PSE) !== 0 };
  }

  /** Linear → physical through the CPU's tables (identity with paging off). */
  linear(lin: number): Walk {
    lin >>>= 0;
    const cpu = this.cpu;
    if ((cpu.cr0 & CR0_PG) === 0) {
      const ok = lin < this.mem.size;
      return {
        steps: [],
        pa: ok ? lin : null,
        pageSize: 4096,
        why: ok ? "" : "beyond physical memory (paging is off)",
        writable: true,
        user: true,
      };
    }
    return walk(this.read32, cpu.cr3, lin, this.mode);
  }
}
