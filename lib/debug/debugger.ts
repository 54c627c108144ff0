/**
 * The debugger core: breakpoints, watchpoints, stepping and running, memory
 * and symbols, tracing, and hypercalls issued by hand. It drives a
 * {@link Target} (a guest under the lguest host, or the bare machine) and
 * does no terminal I/O: results come back as values and one-line messages,
 * trace lines go to sinks the caller provides.
 *
 * How it stops where it should, cheaply:
 * - code breakpoints are the CPU's own `breakpoints` set (checked before each
 *   instruction; translated code is bypassed while any is set);
 * - a *physical* code breakpoint becomes linear breakpoints at every address
 *   that maps it in the guest's tables (recomputed as the guest changes its
 *   tables through hypercalls), checked against the real translation on a hit;
 * - watchpoints keep the watched pages out of the CPU's TLB
 *   (`cpu.tlbExclude`), so every access to them takes the slow path, where
 *   `cpu.onAccess` sees it; the instruction completes, then the run stops;
 * - hypercall and trap breakpoints are the host's `hcallBreak`/`trapBreak`:
 *   the run stops before the host handles them;
 * - a single step stops at the first instruction of a trap or interrupt
 *   handler the host (or the CPU) entered, by breakpoints on every IDT entry.
 * A long run goes in chunks, yielding to the event loop between them, so a
 * Ctrl-C (`interrupt()`) is seen.
 *
 * @module
 */

import { CPU_EXIT, CS, SS } from "../x86/cpu.ts";
import type { CPU } from "../x86/cpu.ts";
import { vectorName } from "../x86/flags.ts";
import type { HypercallRecord } from "../lguest/hypercalls.ts";
import { hypercallName } from "../lguest/hypercalls.ts";
import { hypercallArgs, LHCALL, LHCALL_NAMES } from "../lguest/abi.ts";
import { Demand } from "../lguest/page_tables.ts";
import type { RunResult, Target } from "./target.ts";
import {
  type DisasmLine,
  disassemble,
  disassemblerLoaded,
  loadDisassembler,
  type Syntax,
} from "./disasm.ts";
import { DebugError, evaluate, type ExprContext } from "./expr.ts";
import { readRegister, writeRegister } from "./registers.ts";
import { hex, hexs } from "./format.ts";
import { forEachMapping, type Read32 } from "./paging.ts";
import { diffSnapshots, type Snapshot, snapshotGuest } from "./lguest_view.ts";

/** Kinds of breakpoint. */
export type BreakKind = "break" | "pbreak" | "watch" | "hcall" | "trap" | "icount";

/** A breakpoint, watchpoint or catchpoint. */
export interface Breakpoint {
  /** Number shown to the user. */
  id: number;
  /** What it stops on. */
  kind: BreakKind;
  /** Enabled. */
  enabled: boolean;
  /** Deleted after its first hit (tbreak). */
  temporary: boolean;
  /** Times it stopped the guest. */
  hits: number;
  /** Address (linear for break and linear watchpoints, physical for pbreak and phys watchpoints). */
  addr: number;
  /** Watched bytes. */
  len: number;
  /** A watchpoint on physical addresses. */
  phys: boolean;
  /** Watch reads, writes or both. */
  access: "r" | "w" | "rw";
  /** Hypercall number or trap vector. */
  nr: number;
  /** Instruction count (icount breakpoints). */
  icount: number;
  /** How the user named it (a symbol, a hypercall name), for listings. */
  label: string;
  /** Stop only when this expression is non-zero ("" always stops): `break ADDR if eax == 1`. */
  cond: string;
  /** Hits still to pass without stopping (`ignore N COUNT`). */
  ignore: number;
}

/** A watchpoint hit. */
export interface WatchHit {
  /** The watchpoint. */
  bp: Breakpoint;
  /** Linear address accessed. */
  lin: number;
  /** Physical address accessed. */
  pa: number;
  /** Access size in bytes. */
  size: number;
  /** A write (else a read). */
  write: boolean;
  /** Value before (for a write) or the value read. */
  before: number;
  /** Value after the instruction (writes). */
  after: number;
  /** Linear address of the instruction that made the access. */
  pc: number;
  /** Instruction count when it happened. */
  icount: number;
}

/** Why a run stopped. */
export type StopReason =
  | "step"
  | "breakpoint"
  | "watchpoint"
  | "hcall"
  | "trap"
  | "icount"
  | "until"
  | "finish"
  | "interrupted"
  | "halted"
  | "ended";

/** What a step or run did and where it stopped. */
export interface StopEvent {
  /** Why it stopped. */
  reason: StopReason;
  /** One line for the user ("" for a plain step). */
  message: string;
  /** Noteworthy things on the way (hypercalls made, traps handled, interrupts delivered). */
  notes: string[];
  /** The breakpoint that stopped it. */
  breakpoint?: Breakpoint;
  /** The watchpoint hit. */
  watch?: WatchHit;
  /** Instructions retired. */
  retired: number;
}

/** Where trace lines go. */
export type TraceSink = (line: string) => void;

/** Trace kinds. */
export type TraceKind = "insn" | "hcall" | "trap" | "pf";

/** Options of a long run. */
export interface RunOptions {
  /** Called between chunks (after guest output may have arrived). */
  onChunk?: () => void;
}

/** What a hand-made hypercall did. */
export interface HcallResult {
  /** The call as text, e.g. `LHCALL_NEW_PGTABLE(0x00105000)`. */
  call: string;
  /** The state that changed, one line each. */
  changes: string[];
  /** Why the guest died, if the call killed it. */
  died: string | null;
}

/** Debugger options. */
export interface DebuggerOptions {
  /** Where trace lines go when no file is given (default: dropped). */
  print?: TraceSink;
  /** Disassembly syntax (default "intel"). */
  syntax?: Syntax;
}

const NOTE_LIMIT = 8;
const CHUNK_MIN = 1 << 12, CHUNK_MAX = 1 << 24;

/** The debugger. */
export class Debugger {
  /** The machine. */
  readonly target: Target;
  /** The CPU. */
  readonly cpu: CPU;
  /** Disassembly syntax. */
  syntax: Syntax;
  /** Trace sinks per kind (null: off). */
  readonly trace: Record<TraceKind, TraceSink | null> = {
    insn: null,
    hcall: null,
    trap: null,
    pf: null,
  };
  /** Default sink for trace lines and messages from hooks. */
  print: TraceSink;

  private bps: Breakpoint[] = [];
  private nextId = 1;
  private stopFlag = false;
  private busy = false;
  private notes: string[] | null = null;
  private watchHit: WatchHit | null = null;
  private watchLin = new Uint8Array(0);
  private watchPhys = new Uint8Array(0);
  private aliases = new Map<number, number>(); // linear alias -> physical breakpoint address
  private chunk = 1 << 16;
  /** The last stop was a hypercall or trap breakpoint: let that trap through once. */
  private passTrap = false;
  private sorted: [number, string][] | null = null;

  /**
   * A debugger over `target`, with no breakpoints.
   *
   * @param target the machine to debug (its hooks are chained, not replaced)
   * @param o disassembly syntax and where messages go
   */
  constructor(target: Target, o: DebuggerOptions = {}) {
    this.target = target;
    this.cpu = target.cpu;
    this.syntax = o.syntax ?? "intel";
    this.print = o.print ?? (() => {});
    const g = target.guest;
    if (g) {
      const prevH = g.onHypercall, prevP = g.onPageFault;
      g.onHypercall = (r) => {
        prevH?.(r);
        this.onHypercall(r);
      };
      g.onPageFault = (v, e, r) => {
        prevP?.(v, e, r);
        this.onPageFault(v, e, r);
      };
    }
    const prevT = target.onTrap;
    target.onTrap = (v, e, c) => {
      prevT?.(v, e, c);
      this.onTrap(v, e, c);
    };
  }

  // ------------------------------------------------------------------ where we are

  /** Linear address of the next instruction (CS base + EIP). */
  pc(): number {
    return (this.cpu.sbase[CS] + this.cpu.eip) >>> 0;
  }

  /** Retired instructions (virtual time). */
  get icount(): number {
    return this.cpu.icount;
  }

  /** True while a run is in progress (between chunks). */
  get running(): boolean {
    return this.busy;
  }

  /** The machine has ended (guest dead, bare machine halted). */
  get ended(): { reason: string; status: number } | null {
    return this.target.ended;
  }

  // ------------------------------------------------------------------ symbols and expressions

  /** Kernel symbols. */
  get symbols(): Map<string, number> {
    return this.target.symbols;
  }

  /** Add symbols (a System.map's, another ELF's): they name addresses everywhere from now on. */
  addSymbols(syms: ReadonlyMap<string, number>): void {
    for (const [n, a] of syms) this.symbols.set(n, a >>> 0);
    this.sorted = null;
  }

  /** `name+0x10` for the nearest symbol at or below `addr` (within 1 MiB), or null. */
  symbolize(addr: number): string | null {
    if (this.symbols.size === 0) return null;
    if (!this.sorted) {
      this.sorted = [...this.symbols].map(([n, a]) => [a >>> 0, n] as [number, string])
        .sort((a, b) => a[0] - b[0]);
    }
    const s = this.sorted;
    let lo = 0, hi = s.length - 1, best = -1;
    addr >>>= 0;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (s[mid][0] <= addr) {
        best = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (best < 0 || addr - s[best][0] > 0x100000) return null;
    const off = addr - s[best][0];
    return off === 0 ? s[best][1] : `${s[best][1]}+${hexs(off)}`;
  }

  /** `0x00100074 <start+4>` */
  addrText(addr: number): string {
    const s = this.symbolize(addr);
    return s ? `${hex(addr)} <${s}>` : hex(addr);
  }

  /** The context expressions are evaluated in: registers, symbols, memory. */
  readonly exprContext: ExprContext = {
    register: (n) => readRegister(this.cpu, n),
    symbol: (n) => this.symbols.get(n),
    deref: (a) => {
      const b = this.readLinear(a, 4);
      return new DataView(b.buffer).getInt32(0, true);
    },
  };

  /** Evaluate an address expression (hex numbers, registers, symbols, `[addr]`). */
  eval(text: string): number {
    return evaluate(text, this.exprContext);
  }

  // ------------------------------------------------------------------ memory

  /**
   * Linear → physical as the guest sees it (the guest's own tables under
   * lguest; the CPU's tables on the bare machine). Throws DebugError with the
   * reason when unmapped.
   */
  linToPhys(lin: number): number {
    const w = this.target.linear(lin);
    if (w.pa === null) throw new DebugError(`${hex(lin)} is not mapped: ${w.why}`);
    return w.pa;
  }

  /** Read `n` bytes at linear `addr`, page by page; throws DebugError at the first unreadable byte. */
  readLinear(addr: number, n: number): Uint8Array {
    const { bytes, error } = this.readLinearPartial(addr, n);
    if (error) throw new DebugError(error);
    return bytes;
  }

  /** Read up to `n` bytes at linear `addr`: the readable prefix and, if short, why. */
  readLinearPartial(addr: number, n: number): { bytes: Uint8Array; error: string | null } {
    const out = new Uint8Array(n);
    let i = 0;
    const limit = this.target.kind === "lguest" ? this.target.ramSize : this.target.mem.size;
    while (i < n) {
      const lin = (addr + i) >>> 0;
      const w = this.target.linear(lin);
      if (w.pa === null) {
        return { bytes: out.slice(0, i), error: `cannot read ${hex(lin)}: ${w.why}` };
      }
      const room = Math.min(n - i, 0x1000 - (lin & 0xfff));
      if (w.pa + room > limit) {
        return {
          bytes: out.slice(0, i),
          error: `cannot read ${hex(lin)}: physical ${hex(w.pa)} is ${
            this.target.kind === "lguest" ? "outside guest RAM (device memory)" : "outside memory"
          }`,
        };
      }
      out.set(this.target.mem.u8.subarray(w.pa, w.pa + room), i);
      i += room;
    }
    return { bytes: out, error: null };
  }

  /** Read `n` physical bytes (any physical memory: guest RAM and the host's pages). */
  readPhys(pa: number, n: number): Uint8Array {
    pa >>>= 0;
    const size = this.target.mem.size;
    if (pa >= size) {
      throw new DebugError(`physical ${hex(pa)} is outside memory (${hex(size)} bytes)`);
    }
    return this.target.mem.u8.slice(pa, Math.min(size, pa + n));
  }

  /** Write bytes at linear `addr` (through the guest's tables). */
  writeLinear(addr: number, bytes: Uint8Array): void {
    for (let i = 0; i < bytes.length; i++) {
      const pa = this.linToPhys((addr + i) >>> 0);
      if (this.target.kind === "lguest" && pa >= this.target.ramSize) {
        throw new DebugError(`cannot write ${hex(addr + i)}: not guest RAM`);
      }
      this.writePhys(pa, bytes.subarray(i, i + 1));
    }
  }

  /** Write bytes at physical `pa` (translated code there is dropped). */
  writePhys(pa: number, bytes: Uint8Array): void {
    pa >>>= 0;
    if (pa + bytes.length > this.target.mem.size) {
      throw new DebugError(`physical ${hex(pa)} is outside memory`);
    }
    this.target.mem.u8.set(bytes, pa);
    this.cpu.invalidateCode(pa, bytes.length);
  }

  /** Read a register by name. */
  getRegister(name: string): number {
    const v = readRegister(this.cpu, name.toLowerCase());
    if (v === undefined) throw new DebugError(`no register named '${name}'`);
    return v;
  }

  /** Write a register by name. */
  setRegister(name: string, v: number): void {
    const err = writeRegister(this.cpu, name.toLowerCase(), v);
    if (err) throw new DebugError(err);
  }

  /**
   * Disassemble `n` instructions at linear `addr` (default: the next
   * instruction). The disassembler loads on first use: `await
   * loadDisassembler()` before the first call (the debugger's own commands
   * that disassemble — next, until, finish, an instruction trace — do).
   */
  disasm(addr: number = this.pc(), n = 1): DisasmLine[] {
    const { bytes, error } = this.readLinearPartial(addr, n * 15);
    if (bytes.length === 0) throw new DebugError(error ?? `cannot read ${hex(addr)}`);
    return disassemble(bytes, addr, n, this.syntax);
  }

  // ------------------------------------------------------------------ breakpoints

  /** All breakpoints, watchpoints and catchpoints, by number. */
  breakpoints(): readonly Breakpoint[] {
    return this.bps;
  }

  /** Add a breakpoint of any kind, numbered next, and bring the hooks up to date. */
  private add(p: Partial<Breakpoint> & { kind: BreakKind }): Breakpoint {
    const bp: Breakpoint = {
      id: this.nextId++,
      enabled: true,
      temporary: false,
      hits: 0,
      addr: 0,
      len: 0,
      phys: false,
      access: "w",
      nr: -1,
      icount: -1,
      label: "",
      cond: "",
      ignore: 0,
      ...p,
    };
    this.bps.push(bp);
    this.sync();
    return bp;
  }

  /** Break before executing the instruction at linear `addr`. */
  breakAt(addr: number, o: { temporary?: boolean; label?: string } = {}): Breakpoint {
    return this.add({ kind: "break", addr: addr >>> 0, ...o });
  }

  /** Break before executing an instruction at physical `pa`, whatever linear address maps it. */
  breakPhys(pa: number, o: { temporary?: boolean; label?: string } = {}): Breakpoint {
    return this.add({ kind: "pbreak", addr: pa >>> 0, ...o });
  }

  /** Stop after an instruction that reads and/or writes `[addr, addr+len)`. */
  watch(
    addr: number,
    len = 4,
    o: { access?: "r" | "w" | "rw"; phys?: boolean; label?: string } = {},
  ): Breakpoint {
    if (len < 1 || len > 0x10000000) throw new DebugError(`watch length ${len} out of range`);
    return this.add({ kind: "watch", addr: addr >>> 0, len, access: o.access ?? "w", ...o });
  }

  /** Stop before the host executes hypercall `nr` (a synchronous `int $0x1f`). */
  breakHcall(nr: number, label = ""): Breakpoint {
    if (!this.target.guest) throw new DebugError("no hypercalls on the bare machine");
    return this.add({ kind: "hcall", nr, label: label || hypercallName(nr) });
  }

  /** Stop before trap `vector` is handled (lguest) or delivered (bare). */
  breakTrap(vector: number): Breakpoint {
    if (vector < 0 || vector > 255) throw new DebugError(`vector ${vector} out of range`);
    return this.add({ kind: "trap", nr: vector, label: vectorName(vector) });
  }

  /** Stop when the instruction count reaches `n`. */
  breakIcount(n: number): Breakpoint {
    if (n <= this.icount) {
      throw new DebugError(`instruction ${n} is in the past (now ${this.icount})`);
    }
    return this.add({ kind: "icount", icount: n, label: String(n) });
  }

  /** Delete a breakpoint by number (all of them when omitted). */
  delete(id?: number): void {
    if (id === undefined) this.bps = [];
    else {
      const i = this.bps.findIndex((b) => b.id === id);
      if (i < 0) throw new DebugError(`no breakpoint number ${id}`);
      this.bps.splice(i, 1);
    }
    this.sync();
  }

  /** Enable or disable a breakpoint by number (all of them when omitted). */
  enable(id: number | undefined, on: boolean): void {
    if (id === undefined) { for (const b of this.bps) b.enabled = on; }
    else {
      const b = this.bps.find((b) => b.id === id);
      if (!b) throw new DebugError(`no breakpoint number ${id}`);
      b.enabled = on;
    }
    this.sync();
  }

  /** Push the breakpoint list into the machine: host sets, watch pages, aliases. */
  private sync(): void {
    const t = this.target, g = t.guest;
    const on = this.bps.filter((b) => b.enabled);
    t.trapBreak.clear();
    for (const b of on) if (b.kind === "trap") t.trapBreak.add(b.nr);
    // Tracing traps under lguest: the host's fast paths (page faults resolved and
    // port I/O emulated inside the CPU) must be off so every trap reaches it.
    if (g && this.trace.trap) { for (const v of [13, 14]) t.trapBreak.add(v); }
    if (g) {
      g.hcallBreak.clear();
      for (const b of on) if (b.kind === "hcall") g.hcallBreak.add(b.nr);
    }
    t.syncTraps(this.trace.trap !== null);
    this.syncWatch(on.filter((b) => b.kind === "watch"));
    this.recomputeAliases();
  }

  /** Arm the CPU's access hook and TLB exclusion for the enabled watchpoints `ws` (or disarm them). */
  private syncWatch(ws: Breakpoint[]): void {
    const cpu = this.cpu;
    if (ws.length === 0) {
      if (cpu.onAccess !== null) {
        cpu.onAccess = null;
        cpu.tlbExclude = null;
        cpu.flushTlb();
      }
      return;
    }
    const lin = new Uint8Array(1 << 20);
    const phys = new Uint8Array(Math.ceil(this.target.mem.size / 4096) + 1);
    for (const w of ws) {
      const first = w.addr >>> 12, last = ((w.addr + w.len - 1) >>> 0) >>> 12;
      for (let p = first; p <= last; p++) {
        if (w.phys) {
          if (p < phys.length) phys[p] = 1;
        } else lin[p & 0xfffff] = 1;
      }
    }
    this.watchLin = lin;
    this.watchPhys = phys;
    cpu.tlbExclude = (l, pa) => this.watchLin[l >>> 12] !== 0 || this.watchPhys[pa >>> 12] === 1;
    cpu.onAccess = (l, pa, size, write) => this.onAccess(ws, l, pa, size, write);
    cpu.flushTlb();
  }

  /** A memory access on a watched page: record the first watchpoint it hits (with the old value). */
  private onAccess(ws: Breakpoint[], lin: number, pa: number, size: number, write: boolean): void {
    if (this.watchHit !== null) return;
    for (const w of ws) {
      if (write ? w.access === "r" : w.access === "w") continue;
      const a = w.phys ? pa >>> 0 : lin >>> 0;
      if (a + size <= w.addr || a >= w.addr + w.len) continue;
      const mem = this.target.mem;
      const v = pa + size <= mem.size
        ? size === 1
          ? mem.u8[pa]
          : size === 2
          ? mem.dv.getUint16(pa, true)
          : mem.dv.getUint32(pa, true)
        : 0;
      this.watchHit = {
        bp: w,
        lin: lin >>> 0,
        pa: pa >>> 0,
        size,
        write,
        before: v,
        after: v,
        pc: this.pcAtInstr(),
        icount: this.icount,
      };
      this.target.requestStop();
      return;
    }
  }

  /** Linear address of the instruction being executed. */
  private pcAtInstr(): number {
    return (this.cpu.sbase[CS] + this.cpu.instrStart) >>> 0;
  }

  /** Physical breakpoints → linear addresses in the guest's current tables. */
  private recomputeAliases(): void {
    this.aliases.clear();
    const pbs = this.bps.filter((b) => b.enabled && b.kind === "pbreak");
    if (pbs.length === 0) return;
    const want = new Map<number, number[]>();
    for (const b of pbs) {
      const k = b.addr >>> 12;
      if (!want.has(k)) want.set(k, []);
      want.get(k)!.push(b.addr);
    }
    const t = this.target, g = t.guest;
    const addAll = (pageLin: number, frame: number) => {
      const list = want.get(frame >>> 12);
      if (list) { for (const pa of list) this.aliases.set((pageLin | (pa & 0xfff)) >>> 0, pa); }
    };
    const identity = g ? g.pt.linear : (this.cpu.cr0 & 0x80000000) === 0;
    if (identity) {
      for (const b of pbs) this.aliases.set(b.addr, b.addr);
      return;
    }
    const roots: number[] = [];
    if (g) { for (const s of g.pt.slots) if (s) roots.push(s.gpgdir); }
    if (!g) roots.push(this.cpu.cr3);
    for (const root of roots) this.scanTables(root, addAll);
  }

  /** Visit every present mapping (per page) of the guest's tables at `root`. */
  private scanTables(root: number, visit: (lin: number, frame: number) => void): void {
    const t = this.target, g = t.guest;
    const read: Read32 = g
      ? (pa) => (pa >= 0 && pa + 4 <= t.ramSize ? t.mem.dv.getInt32(pa, true) : null)
      : t.read32;
    const mode = g
      ? { pae: g.pt.pae, pse: false }
      : { pae: (this.cpu.cr4 & 0x20) !== 0, pse: (this.cpu.cr4 & 0x10) !== 0 };
    forEachMapping(read, root, mode, (lin, pa, size) => {
      for (let o = 0; o < size; o += 4096) visit((lin + o) >>> 0, (pa + o) >>> 0);
    });
  }

  /** Keep physical-breakpoint aliases current as the guest changes its tables. */
  private aliasHypercall(r: HypercallRecord): void {
    if (this.aliases.size === 0 && !this.bps.some((b) => b.enabled && b.kind === "pbreak")) return;
    const g = this.target.guest!;
    const [a1, a2, a3] = r.args;
    const pbs = this.bps.filter((b) => b.enabled && b.kind === "pbreak");
    const add = (pageLin: number, frame: number) => {
      for (const b of pbs) {
        if (b.addr >>> 12 === frame >>> 12) {
          const lin = (pageLin | (b.addr & 0xfff)) >>> 0;
          this.aliases.set(lin, b.addr);
          this.cpu.breakpoints.add(lin | 0);
        }
      }
    };
    if (r.nr === LHCALL.NEW_PGTABLE) this.scanTables(a1 & (g.pt.pae ? -32 : -4096), add);
    else if (r.nr === LHCALL.SET_PTE && (a3 & 1) !== 0) add((a2 & -4096) >>> 0, (a3 & -4096) >>> 0);
    else if (r.nr === LHCALL.SET_PGD && !g.pt.pae) {
      const pde = g.ramContains((a1 & -4096) + a2 * 4, 4) ? g.mem.read32((a1 & -4096) + a2 * 4) : 0;
      if ((pde & 1) !== 0) {
        for (let k = 0; k < 1024; k++) {
          const at = (pde & -4096) + k * 4;
          const pte = g.ramContains(at, 4) ? g.mem.read32(at) : 0;
          if ((pte & 1) !== 0) add(((a2 << 22) | (k << 12)) >>> 0, (pte & -4096) >>> 0);
        }
      }
    }
  }

  // ------------------------------------------------------------------ hooks

  /** Add a line to what the current step did (capped at NOTE_LIMIT, then "…"). */
  private note(s: string): void {
    if (this.notes && this.notes.length < NOTE_LIMIT) this.notes.push(s);
    else if (this.notes && this.notes.length === NOTE_LIMIT) this.notes.push("…");
  }

  /** The instruction count as trace lines begin: `[1234]`. */
  private stamp(): string {
    return `[${this.icount}]`;
  }

  /** A hypercall as text: `LHCALL_NEW_PGTABLE(0x105000, 0, 0, 0)`. */
  static hcallText(r: { nr: number; args: readonly number[] }): string {
    const args = r.args.map((a) => hexs(a));
    while (args.length > 1 && args[args.length - 1] === "0x0") args.pop();
    return `${hypercallName(r.nr)}(${args.join(", ")})`;
  }

  /** The host ran a hypercall: note it, trace it, follow page-table changes for physical breakpoints. */
  private onHypercall(r: HypercallRecord): void {
    const text = `hypercall ${Debugger.hcallText(r)}${r.async ? " (async, from the ring)" : ""}`;
    this.note(text);
    this.trace.hcall?.(`${this.stamp()} ${text}`);
    this.aliasHypercall(r);
  }

  private lastTrap = "";
  private lastPf = "";

  /** The machine took a trap or interrupt (the target reports it): note and trace it, once. */
  private onTrap(v: number, err: number, cr2: number): void {
    if (v === 0x1f && this.target.guest) return; // a hypercall: reported by onHypercall
    // A trap stopped at (trapBreak) is raised again when the guest resumes: report it once.
    const key = `${this.icount}:${v}:${this.cpu.instrStart}:${err}`;
    if (key === this.lastTrap) return;
    this.lastTrap = key;
    const detail = (err >= 0 ? ` error ${hexs(err)}` : "") + (v === 14 ? ` cr2 ${hex(cr2)}` : "");
    const text = `trap ${v} ${vectorName(v)}${detail} at ${this.addrText(this.pcAtInstr())}`;
    if (v !== 14 && v !== 13) this.note(text);
    this.trace.trap?.(`${this.stamp()} ${text}`);
  }

  /** The host handled a page fault (filled a shadow or reflected it): note and trace it (once). */
  private onPageFault(vaddr: number, err: number, result: number): void {
    // The host's fast path and its trap path may both look at one fault: report it once.
    const key = `${this.icount}:${vaddr}:${err}:${result}`;
    if (key === this.lastPf) return;
    this.lastPf = key;
    const how = (err & 2 ? "write" : "read") + (err & 4 ? " from user" : "") +
      (err & 1 ? ", protection" : ", not present");
    const what = result === Demand.Ok
      ? "host filled the shadow entry"
      : "guest's tables forbid it: #PF reflected into the guest";
    const text = `page fault at ${hex(vaddr)} (${how}): ${what}`;
    this.note(text);
    this.trace.pf?.(`${this.stamp()} ${text}`);
  }

  /** Turn a trace on (to `sink`, default the print sink) or off (null). */
  setTrace(kind: TraceKind, sink: TraceSink | null): void {
    if (sink !== null && kind !== "insn" && kind !== "trap" && !this.target.guest) {
      throw new DebugError(
        `no ${kind === "hcall" ? "hypercalls" : "host page faults"} on the bare machine`,
      );
    }
    this.trace[kind] = sink;
    if (kind === "trap") this.sync();
  }

  // ------------------------------------------------------------------ execution

  /** Ask a run in progress to stop at the next chunk boundary (Ctrl-C). */
  interrupt(): void {
    this.stopFlag = true;
  }

  /** Start a step or run: refuse a second one, reset the stop state; the instruction count now. */
  private begin(): number {
    if (this.busy) throw new DebugError("the guest is running: interrupt it first (Ctrl-C)");
    this.busy = true;
    this.stopFlag = false;
    this.watchHit = null;
    this.notes = [];
    return this.icount;
  }

  /** The stop event for a run that began at instruction `t0`, with the notes gathered. */
  private finishEvent(
    t0: number,
    reason: StopReason,
    message: string,
    extra: Partial<StopEvent> = {},
  ): StopEvent {
    const notes = this.notes ?? [];
    if (this.condError) notes.push(this.condError);
    this.condError = "";
    this.notes = null;
    this.busy = false;
    return { reason, message, notes, retired: this.icount - t0, ...extra };
  }

  /** Linear addresses of every IDT handler (to stop a step at a handler's first instruction). */
  private handlerEntries(): Map<number, number[]> {
    const m = new Map<number, number[]>();
    const g = this.target.guest;
    const put = (addr: number, v: number) => {
      const l = m.get(addr);
      if (l) l.push(v);
      else m.set(addr, [v]);
    };
    if (g) {
      const gates = g.idt.gates;
      for (let v = 0; v < 256; v++) {
        const hi = gates[v * 2 + 1];
        if ((hi & 0x8000) !== 0) put(((gates[v * 2] & 0xffff) | (hi & 0xffff0000)) >>> 0, v);
      }
      return m;
    }
    const cpu = this.cpu;
    const n = Math.min(256, Math.floor((cpu.idtLimit + 1) / 8));
    if (n <= 0) return m;
    const { bytes } = this.readLinearPartial(cpu.idtBase, n * 8);
    const dv = new DataView(bytes.buffer);
    for (let v = 0; v * 8 + 8 <= bytes.length; v++) {
      const lo = dv.getInt32(v * 8, true), hi = dv.getInt32(v * 8 + 4, true);
      const type = (hi >> 8) & 0x1f;
      if ((hi & 0x8000) === 0 || (type !== 0xe && type !== 0xf && type !== 6 && type !== 7)) {
        continue;
      }
      const base = this.segmentBase(lo >>> 16);
      put((base + ((lo & 0xffff) | (type & 8 ? hi & 0xffff0000 : 0))) >>> 0, v);
    }
    return m;
  }

  /** Base of the segment `sel` names in the CPU's GDT (0 when unreadable). */
  private segmentBase(sel: number): number {
    const cpu = this.cpu;
    if ((sel & 0xfffc) === 0 || (sel & 4) !== 0 || (sel | 7) > cpu.gdtLimit) return 0;
    const { bytes } = this.readLinearPartial((cpu.gdtBase + (sel & ~7)) >>> 0, 8);
    if (bytes.length < 8) return 0;
    const dv = new DataView(bytes.buffer);
    const lo = dv.getUint32(0, true), hi = dv.getUint32(4, true);
    return ((lo >>> 16) | ((hi & 0xff) << 16) | (hi & 0xff000000)) >>> 0;
  }

  /**
   * Make the CPU's breakpoint set equal `want`, touching only what differs:
   * every change makes the CPU drop its translated code, so a run that keeps
   * the same stops keeps its translations.
   */
  private applyStops(want: Set<number>): void {
    const bp = this.cpu.breakpoints;
    for (const a of [...bp]) if (!want.has(a >>> 0)) bp.delete(a);
    for (const a of want) if (!bp.has(a | 0)) bp.add(a | 0);
  }

  /**
   * Run `n` instructions with `stops` as the CPU's breakpoints; `skipHere`
   * passes over a breakpoint at the current instruction. Right after a
   * hypercall or trap breakpoint stopped the guest, the first instruction runs
   * with those breakpoints lifted, so the trap that stopped it goes through.
   */
  private runWith(stops: Set<number>, n: number, skipHere: boolean): RunResult {
    this.applyStops(stops);
    if (skipHere) this.cpu.skipBreakpointOnce();
    const pass = this.passTrap;
    this.passTrap = false;
    if (pass) {
      n = 1;
      this.target.trapBreak.clear();
      this.target.guest?.hcallBreak.clear();
    }
    try {
      return this.target.run(n);
    } catch (e) {
      if (e === CPU_EXIT) throw new DebugError("the CPU stopped outside an instruction");
      throw e;
    } finally {
      if (pass) this.sync();
    }
  }

  /** A trap stop no breakpoint asked for (the debugger's own, for tracing): resume it. */
  private internalTrap(r: RunResult): boolean {
    if (r.kind !== "trap") return false;
    if (r.hcall !== null) {
      return !this.bps.some((b) => b.enabled && b.kind === "hcall" && b.nr === r.hcall);
    }
    return !this.bps.some((b) => b.enabled && b.kind === "trap" && b.nr === r.vector);
  }

  /**
   * One instruction, regardless of a breakpoint on it, stopping at the first
   * instruction of a handler if the host (or CPU) entered one on the way.
   */
  private stepRaw(ctx: GoContext | null = null): { r: RunResult; handler: number[] | null } {
    const stops = this.stopSet(ctx);
    let r = this.runWith(stops, 1, true);
    for (let k = 0; k < 4 && this.internalTrap(r); k++) r = this.runWith(stops, 1, false);
    const handler = r.kind === "breakpoint" ? this.entries.get(this.pc()) ?? null : null;
    return { r, handler };
  }

  /** The watchpoint hit by the last instruction, with the value after it, or null. */
  private takeWatch(): WatchHit | null {
    const w = this.watchHit;
    this.watchHit = null;
    if (!w) return null;
    const mem = this.target.mem, pa = w.pa;
    if (pa + w.size <= mem.size) {
      w.after = w.size === 1
        ? mem.u8[pa]
        : w.size === 2
        ? mem.dv.getUint16(pa, true)
        : mem.dv.getUint32(pa, true);
    }
    return w;
  }

  /** Classify a run result that is not a plain budget end. Null: keep going. */
  private classify(r: RunResult, t0: number, ctx: GoContext | null): StopEvent | null {
    switch (r.kind) {
      case "budget":
        return null;
      case "ended":
        return this.finishEvent(t0, "ended", `the guest ended: ${r.reason}`);
      case "halted":
        return this.finishEvent(
          t0,
          "halted",
          "the guest is halted with no timer armed and no interrupt pending: nothing can wake it",
        );
      case "stop": {
        const w = this.takeWatch();
        if (w && !this.counts(w.bp)) return null;
        if (w) {
          const msg = watchText(w, this);
          if (w.bp.temporary) this.delete(w.bp.id);
          return this.finishEvent(t0, "watchpoint", msg, { watch: w, breakpoint: w.bp });
        }
        if (this.stopFlag) return this.finishEvent(t0, "interrupted", "interrupted");
        return null;
      }
      case "trap": {
        if (r.hcall !== null) {
          const bp = this.bps.find((b) =>
            b.enabled && b.kind === "hcall" && b.nr === r.hcall && this.counts(b)
          );
          if (!bp && this.bps.some((b) => b.enabled && b.kind === "hcall" && b.nr === r.hcall)) {
            this.passTrap = true; // its condition or ignore count let it through
          }
          if (bp) {
            const regs = this.cpu.regs;
            const call = Debugger.hcallText({ nr: r.hcall, args: hypercallArgs(regs).args });
            if (bp.temporary) this.delete(bp.id);
            this.passTrap = true;
            return this.finishEvent(
              t0,
              "hcall",
              `breakpoint ${bp.id}: hypercall ${call} at ${
                this.addrText(this.pc())
              }, before the host runs it`,
              { breakpoint: bp },
            );
          }
          return null;
        }
        const bp = this.bps.find((b) =>
          b.enabled && b.kind === "trap" && b.nr === r.vector && this.counts(b)
        );
        if (!bp) {
          if (this.bps.some((b) => b.enabled && b.kind === "trap" && b.nr === r.vector)) {
            this.passTrap = true; // its condition or ignore count let it through
          }
          return null;
        }
        if (bp.temporary) this.delete(bp.id);
        this.passTrap = true;
        const detail = (r.error >= 0 ? ` error ${hexs(r.error)}` : "") +
          (r.vector === 14 ? ` cr2 ${hex(r.cr2)}` : "");
        const who = this.target.guest ? "before the host handles it" : "before it is delivered";
        return this.finishEvent(
          t0,
          "trap",
          `breakpoint ${bp.id}: trap ${r.vector} ${vectorName(r.vector)}${detail} at ${
            this.addrText(this.pc())
          }, ${who}`,
          { breakpoint: bp },
        );
      }
      case "breakpoint": {
        const pc = this.pc();
        if (ctx && ctx.stops.has(pc) && (ctx.accept?.() ?? true)) {
          return this.finishEvent(t0, ctx.reason, ctx.message(pc));
        }
        const bp = this.codeBreak(pc);
        if (bp) {
          if (bp.temporary) this.delete(bp.id);
          return this.finishEvent(t0, "breakpoint", `breakpoint ${bp.id} at ${this.addrText(pc)}`, {
            breakpoint: bp,
          });
        }
        const pa = this.aliases.get(pc);
        if (pa !== undefined && this.target.linear(pc).pa === pa) {
          const pb = this.bps.find((b) =>
            b.enabled && b.kind === "pbreak" && b.addr === pa && this.counts(b)
          );
          if (pb) {
            if (pb.temporary) this.delete(pb.id);
            return this.finishEvent(
              t0,
              "breakpoint",
              `breakpoint ${pb.id} at physical ${hex(pa)} (linear ${this.addrText(pc)})`,
              { breakpoint: pb },
            );
          }
        }
        return null; // a stale alias, or a temporary stop whose condition failed: step over it
      }
    }
  }

  /**
   * A breakpoint was reached: does it stop the guest? Its condition must hold
   * (a condition that cannot be evaluated stops, saying why), then the hit is
   * counted, and its ignore count, if any, passes it once more.
   */
  private counts(bp: Breakpoint): boolean {
    if (bp.cond) {
      let v: number;
      try {
        v = this.eval(bp.cond);
      } catch (e) {
        const why = e instanceof DebugError ? e.message : String(e);
        this.condError = `the condition of breakpoint ${bp.id} (${bp.cond}) failed: ${why}`;
        bp.hits++;
        return true;
      }
      if (v === 0) return false;
    }
    bp.hits++;
    if (bp.ignore > 0) {
      bp.ignore--;
      return false;
    }
    return true;
  }

  /** The first enabled code breakpoint at linear `pc` that stops the guest now, if any. */
  private codeBreak(pc: number): Breakpoint | undefined {
    return this.bps.find((b) => b.enabled && b.kind === "break" && b.addr === pc && this.counts(b));
  }

  /** Why the last condition could not be evaluated (reported with the stop). */
  private condError = "";

  /** Handler entries as of the last stopSet (vector lists by address). */
  private entries = new Map<number, number[]>();

  /**
   * The CPU's stop set for a run: enabled code breakpoints, physical-breakpoint
   * aliases, the first instruction of every IDT handler (a step stops where the
   * host or CPU entered one; a run passes them), and the run's own stops. It
   * changes only when one of those does.
   */
  private stopSet(ctx: GoContext | null): Set<number> {
    const s = new Set<number>();
    for (const b of this.bps) if (b.enabled && b.kind === "break") s.add(b.addr);
    for (const a of this.aliases.keys()) s.add(a);
    this.entries = this.handlerEntries();
    for (const a of this.entries.keys()) s.add(a);
    if (ctx) { for (const a of ctx.stops) s.add(a); }
    return s;
  }

  /** The nearest enabled instruction-count breakpoint ahead, or Infinity. */
  private nextIcountStop(): number {
    let n = Infinity;
    for (const b of this.bps) {
      if (b.enabled && b.kind === "icount" && b.icount > this.icount) n = Math.min(n, b.icount);
    }
    return n;
  }

  /** The stop for instruction-count breakpoints reached now (they are deleted), or null. */
  private icountEvent(t0: number): StopEvent | null {
    const hit = this.bps.filter((b) =>
      b.enabled && b.kind === "icount" && b.icount === this.icount
    );
    if (hit.length === 0) return null;
    const bp = hit[0];
    bp.hits++;
    for (const b of hit) this.delete(b.id); // an instruction count comes once
    return this.finishEvent(t0, "icount", `breakpoint ${bp.id}: instruction count ${bp.icount}`, {
      breakpoint: bp,
    });
  }

  /** Throw a DebugError when the guest has ended. */
  private checkRunnable(): void {
    const e = this.ended;
    if (e) throw new DebugError(`the guest has ended (${e.reason}): nothing more to run`);
  }

  /**
   * Execute `n` instructions (stepi). Stops early at breakpoints after the
   * first instruction, watchpoints, hypercall/trap breakpoints, or the end. A
   * step into a trap or interrupt stops at the first instruction of its handler.
   */
  async step(n = 1): Promise<StopEvent> {
    this.checkRunnable();
    await this.traceReady();
    const t0 = this.begin();
    try {
      for (let i = 0; i < n; i++) {
        if (i > 0) {
          const pc = this.pc();
          const bp = this.codeBreak(pc);
          if (bp) {
            if (bp.temporary) this.delete(bp.id);
            return this.finishEvent(
              t0,
              "breakpoint",
              `breakpoint ${bp.id} at ${this.addrText(pc)}`,
              {
                breakpoint: bp,
              },
            );
          }
          if (this.stopFlag) return this.finishEvent(t0, "interrupted", "interrupted");
          if ((i & 0xfff) === 0) await tick();
        }
        this.traceInsn();
        const from = this.pc();
        const { r, handler: stopped } = this.stepRaw();
        // The host may also deliver an interrupt after the instruction (waking
        // from LHCALL_HALT, say) without the CPU reaching the handler's entry.
        const landed = this.pc();
        const handler = stopped ??
          (r.kind === "budget" && landed !== from ? this.entries.get(landed) ?? null : null);
        if (handler) {
          const v = handler[0];
          const what = this.target.guest && v >= 0x20 && v < 0x40
            ? `IRQ ${v - 0x20}`
            : vectorName(v);
          this.note(
            `entered the handler for vector ${handler.map((x) => hexs(x)).join("/")} (${what})`,
          );
          continue;
        }
        const ev = this.classify(r, t0, null);
        if (ev) return ev;
        const ic = this.icountEvent(t0);
        if (ic) return ic;
      }
      return this.finishEvent(t0, "step", "");
    } finally {
      this.busy = false;
      this.notes = null;
    }
  }

  /** An instruction trace disassembles: load the disassembler first (a failure shows in the trace). */
  private async traceReady(): Promise<void> {
    if (this.trace.insn && !disassemblerLoaded()) await loadDisassembler().catch(() => {});
  }

  /** Write the instruction about to run to the instruction trace. */
  private traceInsn(): void {
    const sink = this.trace.insn;
    if (!sink) return;
    const pc = this.pc();
    let text: string;
    try {
      const l = this.disasm(pc, 1)[0];
      text = l ? l.text : "(unreadable)";
    } catch (e) {
      text = e instanceof DebugError ? `(${e.message})` : "(unreadable)";
    }
    sink(`${this.stamp()} ${this.addrText(pc)}: ${text}`);
  }

  /** Run until something stops the guest (breakpoint, watchpoint, end, `interrupt()`). */
  continue(o: RunOptions = {}): Promise<StopEvent> {
    return this.go(null, o);
  }

  /**
   * Step over: like `step`, but a CALL or INT n runs until the instruction
   * after it is reached at the same stack depth (breakpoints inside still stop).
   */
  async next(o: RunOptions = {}): Promise<StopEvent> {
    this.checkRunnable();
    await loadDisassembler();
    const line = this.disasm(this.pc(), 1)[0];
    if (!line || (line.flow !== "call" && line.flow !== "int")) return await this.step(1);
    const ret = (line.addr + line.len) >>> 0;
    const esp0 = this.cpu.regs[4] >>> 0;
    return await this.go({
      stops: new Set([ret]),
      accept: () => (this.cpu.regs[4] >>> 0) >= esp0,
      reason: "step",
      message: () => "",
    }, o);
  }

  /** Run until linear `addr` is reached (default: the instruction after this one). */
  async until(addr?: number, o: RunOptions = {}): Promise<StopEvent> {
    this.checkRunnable();
    if (addr === undefined) {
      await loadDisassembler();
      const line = this.disasm(this.pc(), 1)[0];
      if (!line) return await this.step(1);
      addr = (line.addr + line.len) >>> 0;
    }
    const target = addr >>> 0;
    return await this.go({
      stops: new Set([target]),
      reason: "until",
      message: (pc) => `reached ${this.addrText(pc)}`,
    }, o);
  }

  /**
   * Run until the current function returns, at full speed: a breakpoint on
   * its return address, taken only once the stack has popped the frame (so a
   * recursive call of the same function does not stop it). The return
   * address comes from the stack: at a function's first instruction or its
   * RET it is [esp]; inside a frame with a frame pointer, [ebp+4]; otherwise
   * the nearest stack slot that holds the address just after a CALL, or the
   * EIP of a trap frame (a handler returns with IRET). With
   * none of these (the outermost frame) it refuses, saying so.
   */
  async finish(o: RunOptions = {}): Promise<StopEvent> {
    this.checkRunnable();
    if (this.running) throw new DebugError("the guest is running: interrupt it first (Ctrl-C)");
    await loadDisassembler();
    const f = this.callerFrame();
    if (!f) {
      throw new DebugError(
        "finish: no caller here (the outermost frame: no return address on the stack); " +
          "use until ADDR or continue",
      );
    }
    const ssBase = this.cpu.sbase[SS];
    return await this.go({
      stops: new Set([f.ret]),
      // Back through an IRET to an outer ring the stack is another one: the address is enough.
      accept: () => f.stackSwitch || ((ssBase + this.cpu.regs[4]) >>> 0) > f.slot,
      reason: "finish",
      message: (pc) => `returned to ${this.addrText(pc)}`,
    }, o);
  }

  /**
   * Where the current function returns to: the return address and the linear
   * address of the stack slot holding it; null in the outermost frame.
   */
  callerFrame(): { ret: number; slot: number; stackSwitch?: boolean } | null {
    const c = this.cpu, ssBase = c.sbase[SS];
    const esp = (ssBase + c.regs[4]) >>> 0, ebp = (ssBase + c.regs[5]) >>> 0;
    // A return address as a linear address (CS base + the EIP pushed), or null when unreadable.
    const dword = (a: number): number | null => {
      const { bytes } = this.readLinearPartial(a, 4);
      if (bytes.length < 4) return null;
      return (c.sbase[CS] + new DataView(bytes.buffer).getUint32(0, true)) >>> 0;
    };
    const pc = this.pc();
    let line: DisasmLine | undefined;
    try {
      line = this.disasm(pc, 1)[0];
    } catch { /* unreadable: no RET here */ }
    const atEntry = this.symbols.size > 0 && [...this.symbols.values()].includes(pc);
    if (line?.flow === "ret" || atEntry) {
      const ret = dword(esp);
      if (ret !== null && this.afterCall(ret)) return { ret, slot: esp };
    }
    if (c.regs[5] !== 0 && ebp >= esp && ebp - esp < 0x100000) {
      const ret = dword((ebp + 4) >>> 0);
      if (ret !== null && this.afterCall(ret)) return { ret, slot: (ebp + 4) >>> 0 };
    }
    for (let i = 0; i < 64; i++) {
      const slot = (esp + i * 4) >>> 0, ret = dword(slot);
      if (ret === null) break;
      if (this.afterCall(ret)) return { ret, slot };
      const cs = dword((slot + 4) >>> 0), fl = dword((slot + 8) >>> 0);
      if (
        cs !== null && fl !== null && this.iretFrame(cs - c.sbase[CS], fl - c.sbase[CS]) &&
        this.readLinearPartial(ret, 1).bytes.length === 1
      ) {
        // A trap or interrupt frame: the handler returns (IRET) to the EIP saved there.
        return { ret, slot, stackSwitch: ((cs - c.sbase[CS]) & 3) !== c.cpl };
      }
    }
    return null;
  }

  /** Do `cs` and `eflags` look like the CS and EFLAGS of a trap frame (above its EIP)? */
  private iretFrame(cs: number, eflags: number): boolean {
    cs >>>= 0;
    eflags >>>= 0;
    // The CS of a frame is this ring's own (a trap in the kernel) or a user one (from ring 3).
    const csOk = cs === this.cpu.sreg[CS] || ((cs & 3) === 3 && this.cpu.cpl < 3 && cs > 3);
    return csOk && cs <= 0xffff && (eflags & 2) !== 0 && (eflags & 0xffc08028) === 0;
  }

  /** Is `addr` just after a CALL instruction (a plausible return address)? */
  private afterCall(addr: number): boolean {
    if (addr < 7) return false;
    const { bytes } = this.readLinearPartial((addr - 7) >>> 0, 7);
    if (bytes.length < 7) return false;
    // E8 rel32; FF /2 with a ModRM of 2, 3 or 6 bytes (register, [reg+disp8], [disp32]/[reg+disp32]).
    if (bytes[2] === 0xe8) return true;
    const modrmCall = (k: number) => bytes[k] === 0xff && ((bytes[k + 1] >> 3) & 7) === 2;
    return (modrmCall(5) && bytes[6] >> 6 === 3) || (modrmCall(4) && bytes[5] >> 6 === 1) ||
      (modrmCall(1) && (bytes[2] >> 6 === 2 || (bytes[2] & 0xc7) === 5)) ||
      (modrmCall(5) && bytes[6] >> 6 === 0 && (bytes[6] & 7) !== 4 && (bytes[6] & 7) !== 5);
  }

  /** The run loop shared by continue, next, until. */
  private async go(ctx: GoContext | null, o: RunOptions): Promise<StopEvent> {
    this.checkRunnable();
    await this.traceReady();
    const t0 = this.begin();
    // A long run reports where it stopped, not everything on the way (traces do that).
    if (ctx === null) this.notes = null;
    try {
      // Off the current instruction first, even if a breakpoint sits on it.
      let ev = this.stepOver(t0, ctx);
      if (ev) return ev;
      let lastTick = performance.now();
      let skip = false;
      for (;;) {
        if (this.stopFlag) return this.finishEvent(t0, "interrupted", "interrupted");
        if (this.trace.insn) {
          ev = this.traceChunk(t0, ctx, 256);
        } else {
          if (!this.target.guest && this.bps.some((b) => b.enabled && b.kind === "pbreak")) {
            this.recomputeAliases(); // the bare CPU's tables may have changed under us
          }
          let budget = this.chunk;
          const ic = this.nextIcountStop();
          if (ic - this.icount < budget) budget = ic - this.icount;
          const started = performance.now();
          const r = this.runWith(this.stopSet(ctx), budget, skip);
          const ms = performance.now() - started;
          if (r.kind === "budget") {
            if (ms < 10 && this.chunk < CHUNK_MAX) this.chunk *= 2;
            else if (ms > 50 && this.chunk > CHUNK_MIN) this.chunk >>= 1;
          }
          ev = this.classify(r, t0, ctx) ?? this.icountEvent(t0);
          // Stopped where nobody asked (a handler entry, a stale alias, a `next`
          // return reached deeper in a recursion): pass it and go on.
          skip = !ev && r.kind === "breakpoint";
        }
        if (ev) return ev;
        // Let the event loop in (Ctrl-C, output) every few milliseconds, not after
        // every early return of the run (a trap or handler the debugger passes).
        const now = performance.now();
        if (now - lastTick > 15) {
          o.onChunk?.();
          await tick();
          lastTick = performance.now();
        }
      }
    } finally {
      this.busy = false;
      this.notes = null;
    }
  }

  /** Execute the instruction at the current address regardless of a breakpoint there. */
  private stepOver(t0: number, ctx: GoContext | null): StopEvent | null {
    this.traceInsn();
    const { r, handler } = this.stepRaw(ctx);
    if (handler && !this.isUserStop(ctx)) return this.icountEvent(t0);
    return this.classify(r, t0, ctx) ?? this.icountEvent(t0);
  }

  /** Is the current address a stop the user (or the run) asked for? */
  private isUserStop(ctx: GoContext | null): boolean {
    const pc = this.pc();
    return (ctx?.stops.has(pc) ?? false) || this.aliases.has(pc) ||
      this.bps.some((b) => b.enabled && b.kind === "break" && b.addr === pc);
  }

  /** Instruction tracing: up to `n` single steps, each traced, checking stops before each. */
  private traceChunk(t0: number, ctx: GoContext | null, n: number): StopEvent | null {
    for (let i = 0; i < n; i++) {
      if (this.isUserStop(ctx)) {
        const ev = this.classify({ kind: "breakpoint" }, t0, ctx);
        if (ev) return ev;
      }
      this.traceInsn();
      const { r, handler } = this.stepRaw(ctx);
      if (handler && !this.isUserStop(ctx)) continue;
      const ev = this.classify(r, t0, ctx) ?? this.icountEvent(t0);
      if (ev) return ev;
    }
    return null;
  }

  // ------------------------------------------------------------------ hypercalls by hand

  /**
   * Issue hypercall `nr` with arguments as if the guest had made it now, and
   * report what changed in the host's state for this guest.
   */
  hypercall(nr: number, args: number[] = []): HcallResult {
    const g = this.target.guest;
    if (!g) throw new DebugError("no hypervisor on the bare machine: hypercalls need lguest");
    if (g.dead) throw new DebugError(`the guest is dead (${g.deathReason})`);
    if (this.running) throw new DebugError("the guest is running: interrupt it first (Ctrl-C)");
    const [a1 = 0, a2 = 0, a3 = 0, a4 = 0] = args;
    const before: Snapshot = snapshotGuest(g);
    g.hypercall(nr, a1, a2, a3, a4);
    const after = snapshotGuest(g);
    return {
      call: Debugger.hcallText({ nr, args: [a1, a2, a3, a4] }),
      changes: diffSnapshots(before, after),
      died: g.dead ? g.deathReason : null,
    };
  }

  /** Hypercall number for a name (`NEW_PGTABLE`, `lhcall_new_pgtable`, `new_pgtable`) or number. */
  static hcallNumber(s: string): number | null {
    const up = s.toUpperCase().replace(/^LHCALL_/, "");
    for (const [nr, name] of LHCALL_NAMES) if (name === `LHCALL_${up}`) return nr;
    if (/^(0x[0-9a-f]+|0n[0-9]+|[0-9]+)$/i.test(s)) {
      return s.startsWith("0x") ? parseInt(s, 16) : Number(s.replace(/^0n/i, ""));
    }
    return null;
  }
}

/** A stop condition of a run (until, next). */
interface GoContext {
  stops: Set<number>;
  accept?: () => boolean;
  reason: StopReason;
  message: (pc: number) => string;
}

function tick(): Promise<void> {
  return new Promise((r) => setTimeout(r, 0));
}

/** A watchpoint hit as one line. */
export function watchText(w: WatchHit, d: Debugger): string {
  const where = w.bp.phys
    ? `physical ${hex(w.pa)} (linear ${d.addrText(w.lin)})`
    : `${d.addrText(w.lin)} (physical ${hex(w.pa)})`;
  const val = (v: number) => hex(v, w.size * 2);
  const what = w.write
    ? `write of ${w.size} byte${w.size > 1 ? "s" : ""} at ${where}: ${val(w.before)} -> ${
      val(w.after)
    }`
    : `read of ${w.size} byte${w.size > 1 ? "s" : ""} at ${where}: ${val(w.before)}`;
  return `watchpoint ${w.bp.id}: ${what}, by the instruction at ${d.addrText(w.pc)} [${w.icount}]`;
}
