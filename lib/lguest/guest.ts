/**
 * The lguest host's view of one guest and its one vCPU, and the main loop
 * (drivers/lguest/core.c `run_guest`, x86/core.c `lguest_arch_handle_trap`).
 *
 * The loop: deliver a pending virtual interrupt if the guest allows it; if the
 * guest is halted, sleep until an interrupt (in virtual time: jump to the
 * timer's deadline); otherwise run the CPU until it exits — every exception
 * and software interrupt leaves the CPU for the host here — and handle the
 * trap with the one trap policy, `traps.ts` (lguest_arch_handle_trap). The
 * same policy also runs inside the CPU's instruction for the common cases (a
 * page fault demand paging fixes, a hypercall, an INT the guest takes, port
 * I/O at ring 1), so those cost no exit.
 *
 * Devices are not the host's business: the launcher wires them on the CPU's
 * bus (ports and MMIO regions), the shadows map the device window like RAM,
 * and the CPU's own decoder carries every access there to the bus.
 *
 * Time is virtual: the TSC is the retired-instruction count (one instruction
 * is one nanosecond of a 1 GHz TSC) plus the time skipped while halted, and
 * the clock event fires at an exact instruction count. So a run is
 * deterministic: same guest, same inputs, same output, same count.
 *
 * A guest can hurt only itself: anything it does wrong — a bad hypercall, a
 * page-table entry outside its RAM, a trap it has no handler for — kills it
 * with a one-line reason (`deathReason`), and the host carries on. Nor can
 * it hang the host: a loop that stops retiring instructions is killed too
 * (the progress guarantee, `run`).
 *
 * @module
 */

import { CPU, CS, DS, ES, Exit, FS, GS, SS } from "../x86/cpu.ts";
import { CR0_ET, CR0_NE, CR0_PE, CR0_PG, CR0_WP, CR4_PAE } from "../x86/cpu.ts";
import type { PhysicalMemory } from "../x86/memory.ts";
import { HCALL_NR_REG, KERNEL_CS, KERNEL_DS, LGUEST_DATA, LGUEST_IRQS } from "./abi.ts";
import { LGUEST_TRAP_ENTRY } from "./abi.ts";
import { HostPages } from "./hostmem.ts";
import { Demand, ShadowPageTables, SWITCHER_ADDR, SWITCHER_ADDR_PAE } from "./page_tables.ts";
import { GuestGdt } from "./segments.ts";
import { GuestIdt, maybeDeliverInterrupt } from "./interrupts_and_traps.ts";
import { doHcall, drainAsync, type HypercallRecord } from "./hypercalls.ts";
import { cli, handleTrap, portIn, portOut, Trap, TrapKind } from "./traps.ts";

/**
 * Host iterations in a row without progress — no instruction retired, no
 * virtual time passed — after which the guest is
 * killed. Legitimate runs of them are a handful (an instruction faulting on a
 * few pages in turn, an interrupt delivered before its handler's first
 * instruction); a guest that reaches this bound would spin for ever.
 */
export const NO_PROGRESS_LIMIT = 10_000;

/** Thrown internally to unwind the host when the guest is killed; never escapes. */
const GUEST_DEATH: { readonly death: true } = Object.freeze({ death: true as const });

/** How `Guest.run` ended. */
export type RunStop =
  | "dead" // killed (deathReason) or shut down
  | "budget" // the instruction budget ran out
  | "halted" // halted with no timer armed and no interrupt pending: nothing can wake it
  | "breakpoint" // a CPU breakpoint address was reached
  | "stop" // the CPU or a device asked to stop (cpu.requestStop)
  | "trap"; // a trap the caller asked to see (trapBreak)

/** Construction options. */
export interface GuestOptions {
  /** Guest RAM in bytes (multiple of 4 KiB). */
  ramSize: number;
  /**
   * End of the device window (guest-physical): pages [ramSize, deviceEnd) are
   * device memory, which the shadows map and the CPU's bus serves.
   */
  deviceEnd: number;
  /** Host-owned pages for shadow tables and the GDT. */
  hostPages?: number;
  /** Wall-clock time of boot, seconds since the epoch (virtual time adds to it). */
  bootEpoch?: number;
  /**
   * A PAE guest (3-level page tables with 8-byte entries; the CPU runs with
   * CR4.PAE). lguest fixed this when host and guest were built (§6.8).
   */
  pae?: boolean;
}

/** The address the switcher occupies (non-PAE): the guest must not use the top 4 MiB. */
export { SWITCHER_ADDR };

/** The switcher address the real 4.9 host reports to a guest on a 2-CPU machine (§6.3). */
export const REAL_SWITCHER_ADDR = 0xfffe1000;

/** A guest and its vCPU, run by the lguest host. */
export class Guest {
  /** Physical memory: guest RAM, then the device window, then host pages. */
  readonly mem: PhysicalMemory;
  /** The CPU the guest runs on. */
  readonly cpu: CPU;
  /** Host pages (shadow tables, GDT). */
  readonly pages: HostPages;
  /** Guest RAM size in bytes. */
  readonly ramSize: number;
  /** The guest may only use frames below this. */
  readonly pfnLimit: number;
  /** Frames in [pfnLimit, deviceLimit) are device memory. */
  readonly deviceLimit: number;
  /**
   * The switcher address: the guest must stay below it (the top page-table
   * span: 4 MiB, or 2 MiB under PAE).
   */
  readonly switcherAddr: number;
  /**
   * Where the guest is told its reserved top begins (`reserve_mem` = 2^32
   * minus this, §6.3): 0xfffe1000, what the real 4.9 host reports on a 2-CPU
   * machine (its switcher: one text page and two per CPU below FIXADDR_START),
   * so the guest's boot log reads the same. Linux rounds it down to its
   * page-table span — 4 MiB, or 2 MiB under PAE — which is exactly where this
   * host's own region, `switcherAddr`, starts.
   */
  readonly reservedFrom: number = REAL_SWITCHER_ADDR;
  /** TSC frequency reported to the guest: 1 GHz (one instruction per nanosecond). */
  readonly tscKhz = 1_000_000;
  /** Boot time, seconds since the epoch. */
  readonly bootEpoch: number;

  /** Shadow page tables. */
  readonly pt: ShadowPageTables;
  /** The guest's GDT (the CPU uses the host's copy). */
  readonly gdt: GuestGdt;
  /** The guest's IDT. */
  readonly idt: GuestIdt;

  /** Guest-physical address of lguest_data, -1 before LHCALL_LGUEST_INIT. */
  lguestData: number = -1;
  /** lguest_data.kernel_address: addresses from here up are the kernel's. */
  kernelAddress = 0xc0000000;
  /** lguest_data.noirq_iret. */
  noirqIret = 0;
  /** Kernel stack from LHCALL_SET_STACK. */
  ss1 = 0;
  /** Kernel stack pointer from LHCALL_SET_STACK. */
  esp1 = 0;
  /** Kernel stack pages from LHCALL_SET_STACK. */
  stackPages = 0;
  /** The guest's virtual CR0.TS. */
  ts = false;
  /** Pending virtual IRQs (bit n = IRQ n). */
  irqsPending = 0;
  /** Halted until an interrupt. */
  halted = false;
  /** Clock event deadline in TSC nanoseconds, or -1. */
  timerDeadline: number = -1;
  /** The host's async-ring cursor. */
  nextHcall = 0;

  /** The guest is dead: it will not run again. */
  dead = false;
  /** Why it died (the first reason only). */
  deathReason = "";
  /** The guest asked to be restarted (SHUTDOWN reason 2). */
  restartRequested = false;
  /** The guest powered off cleanly (SHUTDOWN "Power down", reason 1). */
  poweredOff = false;

  /** Recent hypercalls, newest last (bounded). */
  readonly hcallLog: HypercallRecord[] = [];
  /** Most hypercalls kept in `hcallLog`. */
  hcallLogLimit = 4096;
  /** Called for every hypercall (tracing, breakpoints). */
  onHypercall: ((r: HypercallRecord) => void) | null = null;
  /** Called for every trap the CPU hands the host, before it is handled. */
  onTrap: ((vector: number, error: number, cr2: number) => void) | null = null;
  /**
   * Called when the guest is halted with nothing to wake it now — idle, in
   * virtual time, before the host skips to the clock event. A front end feeds
   * scripted console input here ("when the guest waits"), so where it lands
   * depends on the guest alone, never on how the run was sliced. An interrupt
   * it raises is delivered at once.
   */
  onIdle: (() => void) | null = null;
  /** Called when demandPage runs (vaddr, error code, result). */
  onPageFault: ((vaddr: number, errcode: number, result: number) => void) | null = null;
  /** Vectors for which `run` returns "trap" before handling (the debugger's trap breakpoints). */
  readonly trapBreak: Set<number> = new Set();
  /** Hypercall numbers for which `run` returns "trap" before executing them. */
  readonly hcallBreak: Set<number> = new Set();
  /** Let the next trap (resp. hypercall) pass a break on it: the one just reported. */
  private skipTrapBreak = false;
  private skipHcallBreak = false;
  /**
   * The address of the page fault the fast path just found demandPage could
   * not fix (NaN: none), so the exit path that follows does not ask again.
   */
  pfTried: number = NaN;
  private userStop = false;
  /** Host iterations in a row that made no progress (see NO_PROGRESS_LIMIT). */
  private stalls = 0;
  /** The page fault demand paging last called fixed (this iteration, when `fixed`). */
  private readonly lastFix = { vaddr: 0, err: 0, fixed: false };
  /** How many stalled iterations ended with that fault "fixed". */
  private stalledFixes = 0;
  /**
   * Something happened that may let an interrupt through: the CPU stopped for
   * a reason of its own (a trap, a hypercall that changed the schedule, a
   * stop), an IRQ was raised, the clock event fired. A stop that is only the
   * instruction budget running out is none of these: nothing happened at that
   * point, so it is not a point where the guest can take an interrupt.
   * Interrupts are looked for at the same points whatever the budgets (a run
   * in one go, in slices, or stepped in the debugger); otherwise a guest that
   * unblocks interrupts with a plain store would take them where the host's
   * loop happened to be sliced.
   */
  private lookForInterrupts = true;

  /** A guest at reset, before the launcher loads it. @param o sizes; the CPU's physical memory is made here */
  constructor(mem: PhysicalMemory, o: GuestOptions) {
    this.mem = mem;
    this.ramSize = o.ramSize;
    this.pfnLimit = o.ramSize >>> 12;
    this.deviceLimit = Math.ceil(o.deviceEnd / 4096);
    this.bootEpoch = o.bootEpoch ?? 1_767_225_600; // 2026-01-01T00:00:00Z
    const hostBase = this.deviceLimit * 4096;
    const hostPages = Math.floor((mem.size - hostBase) / 4096);
    if (hostPages < 16) throw new RangeError("physical memory leaves no room for host pages");
    this.pages = new HostPages(mem, hostBase, hostPages);
    this.cpu = new CPU(mem);
    this.switcherAddr = o.pae ? SWITCHER_ADDR_PAE : SWITCHER_ADDR;
    this.pt = new ShadowPageTables(this, o.pae ?? false);
    this.idt = new GuestIdt(this);
    this.gdt = new GuestGdt(this, this.pages.alloc());
  }

  /**
   * Set up the vCPU as lguest_arch_setup_regs does (§1.4): EIP = `start`,
   * CS 0x61, DS/ES/SS 0x69, FS/GS 0, EFLAGS 0x202, all registers 0, ring 1,
   * paging on through the shadows. `gpgdir` >= 0 starts on launcher-built page
   * tables (2007); otherwise the host fakes a linear mapping (2011).
   */
  start(startEip: number, gpgdir = -1): void {
    const cpu = this.cpu;
    cpu.reset();
    cpu.regs.fill(0);
    this.gdt.setupBoot();
    cpu.setCpl(1);
    this.gdt.loadSegment(CS, KERNEL_CS);
    for (const s of [DS, ES, SS]) this.gdt.loadSegment(s, KERNEL_DS);
    for (const s of [FS, GS]) this.gdt.loadSegment(s, 0);
    cpu.setEflags(0x202);
    cpu.eip = startEip | 0;
    cpu.cr0 = CR0_PE | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
    cpu.cr4 = this.pt.pae ? CR4_PAE : 0;
    cpu.exitVectors.fill(1); // every trap comes to the host
    this.stalls = this.stalledFixes = 0;
    if (gpgdir >= 0) this.pt.initWithPgdir(gpgdir);
    else this.pt.initLinear();
  }

  // ------------------------------------------------------------------ guest memory

  /** True when guest-physical `[gpa, gpa+len)` is guest RAM. */
  ramContains(gpa: number, len: number): boolean {
    return gpa >= 0 && len >= 0 && gpa + len <= this.ramSize;
  }

  /** Kill the guest unless `[gpa, gpa+len)` is guest RAM. */
  checkGuestAddress(gpa: number, len: number, what: string): void {
    if (!this.ramContains(gpa >>> 0, len)) this.kill(`${what} 0x${(gpa >>> 0).toString(16)}`);
  }

  /** Read a dword of guest RAM (guest-physical); outside RAM kills the guest. */
  readGuest32(gpa: number): number {
    gpa >>>= 0;
    if (gpa + 4 > this.ramSize) this.kill(`bad read address 0x${gpa.toString(16)} len 4`);
    return this.mem.dv.getInt32(gpa, true);
  }

  /** Write a dword of guest RAM; outside RAM kills the guest. */
  writeGuest32(gpa: number, v: number): void {
    gpa >>>= 0;
    if (gpa + 4 > this.ramSize) this.kill(`bad write address 0x${gpa.toString(16)} len 4`);
    this.mem.dv.setInt32(gpa, v, true);
    this.cpu.invalidateCode(gpa, 4);
  }

  /**
   * Write a byte of guest RAM; outside RAM kills the guest. Like every host
   * write to guest memory it drops translated code there: the guest may be
   * executing that page.
   */
  writeGuest8(gpa: number, v: number): void {
    gpa >>>= 0;
    if (gpa + 1 > this.ramSize) this.kill(`bad write address 0x${gpa.toString(16)} len 1`);
    this.mem.u8[gpa] = v;
    this.cpu.invalidateCode(gpa, 1);
  }

  /** Read a field of lguest_data. */
  readLguestData(off: number): number {
    return this.readGuest32(this.lguestData + off);
  }

  /** Write a field of lguest_data. */
  writeLguestData(off: number, v: number): void {
    this.writeGuest32(this.lguestData + off, v);
  }

  /**
   * `n` bytes at guest-virtual `vaddr`, through the guest's tables; bytes on an
   * unmapped page read as 0 (as the host copies instruction bytes).
   */
  readVirtual(vaddr: number, n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const pa = this.pt.guestPa((vaddr + i) | 0);
      if (pa >= 0 && pa < this.ramSize) out[i] = this.mem.u8[pa];
    }
    return out;
  }

  // ------------------------------------------------------------------ time

  /** Virtual time in nanoseconds since boot (the TSC). */
  nowNs(): number {
    return this.cpu.icount + this.cpu.tscOffset;
  }

  /** Write the wall-clock time into lguest_data.time. */
  writeTime(): void {
    if (this.lguestData < 0) return;
    const ns = this.nowNs();
    const sec = this.bootEpoch + Math.floor(ns / 1e9);
    this.writeLguestData(LGUEST_DATA.time_sec, sec | 0);
    this.writeLguestData(LGUEST_DATA.time_nsec, ns % 1e9);
  }

  /** LHCALL_SET_CLOCKEVENT: one-shot timer `deltaNs` from now (0 stops it). */
  setClockEvent(deltaNs: number): void {
    this.timerDeadline = deltaNs === 0 ? -1 : this.nowNs() + deltaNs;
  }

  // ------------------------------------------------------------------ state changes

  /** Raise virtual IRQ `irq` (the timer is 0; devices 1, 2, …). */
  setInterrupt(irq: number): void {
    if (irq >>> 0 >= LGUEST_IRQS) return;
    this.irqsPending |= 1 << irq;
    this.lookForInterrupts = true;
    this.cpu.requestStop();
  }

  /**
   * Withdraw virtual IRQ `irq` if it is still pending (a device lowered its
   * line before the guest took the interrupt).
   */
  clearInterrupt(irq: number): void {
    if (irq >>> 0 < LGUEST_IRQS) this.irqsPending &= ~(1 << irq);
  }

  /** LHCALL_SET_STACK(ss, esp, pages). */
  setStack(ss: number, esp: number, pages: number): void {
    // 4.9 checks only the RPL; a selector the host could not load on a trap from
    // ring 3 (null, the host's own, not a ring-1 data segment) is refused here too.
    if ((ss & 3) !== 1 || !this.gdt.usable(SS, ss)) {
      this.kill(`bad stack segment 0x${(ss >>> 0).toString(16)}`);
    }
    if (pages >>> 0 > 2) this.kill(`bad stack pages ${pages >>> 0}`);
    this.ss1 = ss & 0xffff;
    this.esp1 = esp;
    this.stackPages = pages;
    this.pinStackPages();
  }

  /** Make sure the kernel stack pages are mapped writable in the current shadow. */
  pinStackPages(): void {
    for (let i = 0; i < this.stackPages; i++) {
      const v = (this.esp1 - 1 - i * 4096) | 0;
      if (this.pt.shadowWritable(v)) continue;
      if (this.pt.demandPage(v, 2) !== Demand.Ok) {
        this.kill(`bad stack page 0x${(v >>> 0).toString(16)}`);
      }
    }
  }

  /**
   * Kill the guest with a reason (only the first is kept). Never returns: it
   * unwinds the host back to `run`, which reports "dead".
   */
  kill(reason: string): never {
    if (!this.dead) {
      this.dead = true;
      this.deathReason = reason;
    }
    throw GUEST_DEATH;
  }

  /**
   * Kill the guest from code that must not unwind the CPU — a device handler
   * inside the guest's instruction (lguest's launcher exits on a driver's
   * protocol violation, `bad_driver`): the guest is marked dead and the CPU
   * stops after this instruction; `run` then reports "dead".
   */
  die(reason: string): void {
    if (!this.dead) {
      this.dead = true;
      this.deathReason = reason;
    }
    this.cpu.requestStop();
  }

  /** Log a hypercall and tell the tracer. */
  recordHypercall(r: HypercallRecord): void {
    this.hcallLog.push(r);
    if (this.hcallLog.length > this.hcallLogLimit) {
      this.hcallLog.splice(0, this.hcallLog.length >> 1);
    }
    this.onHypercall?.(r);
  }

  /**
   * Run `fn` as host code on the guest's behalf: a kill inside it marks the
   * guest dead instead of escaping. Returns false if the guest died.
   */
  guarded(fn: () => void): boolean {
    try {
      fn();
      return !this.dead;
    } catch (e) {
      if (e === GUEST_DEATH) return false;
      throw e;
    }
  }

  /**
   * Issue a hypercall by hand (the REPL's `hcall`), as if the guest had made it
   * synchronously. Returns false if it killed the guest.
   */
  hypercall(nr: number, a1 = 0, a2 = 0, a3 = 0, a4 = 0): boolean {
    if (this.dead) return false;
    this.lookForInterrupts = true; // what it changes is looked at on the next run
    return this.guarded(() => {
      drainAsync(this);
      doHcall(this, nr, a1, a2, a3, a4);
    });
  }

  // ------------------------------------------------------------------ the main loop

  /** Ask `run` to return "stop" soon (after the current instruction). */
  requestStop(): void {
    this.userStop = true;
    this.cpu.requestStop();
  }

  /**
   * The host's fast paths: the trap policy (traps.ts) run inside the CPU's
   * instruction — a page fault demand paging fixes, a hypercall, an INT the
   * guest takes, port I/O and CLI at ring 1 — with the same outcome as the
   * exit path and no exit from cpu.run (a JavaScript throw is expensive in
   * some engines). A vector the debugger breaks on takes the exit, so it
   * sees every such trap.
   */
  private setFastPaths(): void {
    const cpu = this.cpu;
    cpu.pageFaultHook = this.trapBreak.has(14) ? null : this.fastPageFault;
    cpu.softIntHook = this.fastSoftInt;
    cpu.ioTrap = this.fastIo;
  }

  private readonly fastPageFault = (lin: number, err: number): boolean => {
    this.skipTrapBreak = false;
    return handleTrap(this, 14, err, TrapKind.Exception, lin, true) === Trap.Done;
  };

  private readonly fastSoftInt = (v: number, source: number): boolean => {
    const cpu = this.cpu;
    if (this.trapBreak.has(v) || source !== 1) return false;
    if (v === LGUEST_TRAP_ENTRY) {
      if (this.hcallBreak.has(cpu.regs[HCALL_NR_REG] >>> 0)) return false;
      this.skipHcallBreak = false;
    }
    this.skipTrapBreak = false; // a break passed once is passed: this one is new
    this.onTrap?.(v, -1, 0);
    if (handleTrap(this, v, -1, TrapKind.Software, 0, true) === Trap.Done) return true;
    this.trapReported = true; // the exit that follows is the same trap
    return false;
  };
  /** The trap the CPU is exiting with was reported to onTrap already (by the fast path). */
  private trapReported = false;

  /** IN/OUT/CLI at ring 1 (a #GP(0) without the hook): a debugger's break on #GP sees it first. */
  private ioBreak(): boolean {
    if (!this.trapBreak.has(13) || this.skipTrapBreak) {
      this.skipTrapBreak = false;
      return false;
    }
    return true;
  }

  private readonly fastIo = {
    in: (port: number, size: number): number => this.ioBreak() ? NaN : portIn(this, port, size),
    out: (port: number, v: number, size: number): boolean =>
      !this.ioBreak() && portOut(this, port, v, size),
    cli: (): boolean => !this.ioBreak() && cli(this),
  };

  /**
   * Run for at most `maxInsns` guest instructions.
   *
   * Progress guarantee: every iteration of the host loop must retire an
   * instruction or let virtual time pass (port I/O and MMIO are emulated
   * inside the instruction, which retires). An iteration that does neither
   * (a page fault demand paging calls fixed but the CPU still faults on, a
   * trap whose delivery faults again) counts as a stall; NO_PROGRESS_LIMIT stalls in a row kill the guest with a
   * reason, so `run` returns whatever the guest does, and so do the
   * instruction limit and the debugger's Ctrl-C between runs. The count
   * carries across calls (a debugger resuming a trap breakpoint goes round too).
   */
  run(maxInsns: number): RunStop {
    this.setFastPaths();
    const cpu = this.cpu;
    const stopAt = cpu.icount + maxInsns;
    const out: { stop: RunStop | null } = { stop: null };
    for (;;) {
      if (this.dead) return "dead";
      const icount = cpu.icount, tsc = cpu.tscOffset;
      this.lastFix.fixed = false;
      if (!this.guarded(() => (out.stop = this.iteration(stopAt)))) return "dead";
      if (cpu.icount !== icount || cpu.tscOffset !== tsc) {
        this.stalls = this.stalledFixes = 0;
      } else if (out.stop === null || out.stop === "trap") {
        // (The other stops return before the CPU runs: nothing was attempted.)
        this.stalls++;
        if (this.lastFix.fixed) this.stalledFixes++;
        if (this.stalls >= NO_PROGRESS_LIMIT) {
          this.guarded(() => this.kill(this.noProgressReason()));
          return "dead";
        }
      }
      if (out.stop !== null) return out.stop;
    }
  }

  /**
   * The exit path's demand paging fixed the fault at `vaddr`: if the
   * instruction still does not complete, the progress guarantee names it.
   */
  noteFixedFault(vaddr: number, err: number): void {
    this.lastFix.vaddr = vaddr;
    this.lastFix.err = err;
    this.lastFix.fixed = true;
  }

  /** Why the progress guarantee killed the guest, naming the fault it was stuck on. */
  private noProgressReason(): string {
    const hex = (n: number) => `0x${(n >>> 0).toString(16)}`;
    const at = `eip ${hex(this.cpu.eip)}`;
    if (this.lastFix.fixed) {
      const f = this.lastFix;
      return `no progress: page fault at ${
        hex(f.vaddr)
      } (error ${f.err}) fixed ${this.stalledFixes} times without the instruction completing (${at})`;
    }
    return `no progress: ${this.stalls} host iterations without an instruction completing (${at})`;
  }

  /** One turn of run_guest; returns a stop reason, or null to go round again. */
  private iteration(stopAt: number): RunStop | null {
    const cpu = this.cpu;
    if (this.timerDeadline >= 0 && this.nowNs() >= this.timerDeadline) {
      this.timerDeadline = -1;
      this.irqsPending |= 1; // IRQ 0: the timer
      this.lookForInterrupts = true;
    }
    if (this.lookForInterrupts) {
      this.lookForInterrupts = false;
      maybeDeliverInterrupt(this);
    }
    if (this.halted) {
      const blocked = this.lguestData >= 0
        ? this.readLguestData(LGUEST_DATA.blocked_interrupts)
        : -1;
      if ((this.irqsPending & ~blocked) !== 0) return null;
      if (this.onIdle) {
        this.onIdle();
        if (this.dead) return "dead";
        if ((this.irqsPending & ~blocked) !== 0) return null;
      }
      if (this.timerDeadline >= 0) {
        // Sleep until the clock event: in virtual time, skip straight to it.
        cpu.tscOffset += this.timerDeadline - this.nowNs();
        return null;
      }
      return "halted";
    }
    const left = stopAt - cpu.icount;
    if (left <= 0) return "budget";
    let budget = left;
    if (this.timerDeadline >= 0) {
      budget = Math.max(1, Math.min(budget, this.timerDeadline - this.nowNs()));
    }
    const exit = cpu.run(budget);
    if (exit !== Exit.Budget) this.lookForInterrupts = true;
    switch (exit) {
      case Exit.Budget:
        return null;
      case Exit.Exception:
        return this.handleTrap();
      case Exit.Breakpoint:
        return "breakpoint";
      case Exit.Stop:
        if (!this.userStop) return null; // an interrupt was raised: go round and deliver it
        this.userStop = false;
        return "stop";
      case Exit.Shutdown:
        return this.kill(cpu.exitMessage);
      default: // Exit.Halt cannot happen at ring 1 (HLT raises #GP)
        return this.kill("halted the CPU outside the hypervisor's control");
    }
  }

  /** A trap the CPU exited with: the debugger's break, else the trap policy. */
  private handleTrap(): RunStop | null {
    const cpu = this.cpu;
    const v = cpu.exitVector, err = cpu.exitError;
    if (!this.trapReported) this.onTrap?.(v, err, cpu.exitCr2);
    this.trapReported = false;
    if (this.trapBreak.has(v) && !this.skipTrapBreak) {
      // Stop before handling: put EIP back so continuing re-raises it (and the
      // INT, if it was one, has not retired after all).
      if (cpu.exitTrap) {
        cpu.eip = cpu.instrStart;
        cpu.unretire();
      }
      this.skipTrapBreak = true;
      return "trap";
    }
    this.skipTrapBreak = false;
    const kind = cpu.exitSource === 1 ? TrapKind.Software : TrapKind.Exception;
    if (kind === TrapKind.Software && v === LGUEST_TRAP_ENTRY && cpu.cpl <= 1) {
      const nr = cpu.regs[HCALL_NR_REG] >>> 0;
      if (this.hcallBreak.has(nr) && !this.skipHcallBreak) {
        cpu.eip = cpu.instrStart;
        cpu.unretire();
        this.skipHcallBreak = true;
        return "trap";
      }
      this.skipHcallBreak = false;
    }
    handleTrap(this, v, err, kind, cpu.exitCr2, false);
    return null;
  }
}
