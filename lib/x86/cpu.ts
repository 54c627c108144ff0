/**
 * The i386 CPU: architectural state, lazy flags, the flat TLB, instruction
 * fetch, ModRM address generation, and the run loop with its exits.
 *
 * This file holds the machine's state and the primitives every instruction
 * uses; the instructions themselves live in `exec.ts` (dispatch), `string.ts`,
 * `fpu.ts` and friends. It knows nothing of lguest: it is a plain CPU that an
 * embedder drives with `run(budget)` and that returns an *exit code* when
 * something the embedder must see happens (an exception, HLT, the budget).
 *
 * Speed model (see DESIGN.md): registers in an Int32Array with 8- and 16-bit
 * aliases; arithmetic flags computed lazily from the last result and operands;
 * linear→physical translation through two flat Int32Array TLBs (reads, writes)
 * holding `physPage ^ linPage | permission bits` per 4 KiB page, so a hit is a
 * load, a mask test and an xor; exceptions are thrown as one preallocated object
 * and caught once per `run`, never per instruction.
 *
 * @module
 */

import type { PhysicalMemory } from "./memory.ts";
import {
  AC,
  AF,
  ARITH_FLAGS,
  CF,
  DF,
  FLAG_R1,
  ID,
  IF,
  IOPL,
  NT,
  OF,
  PARITY,
  PF,
  RF,
  SF,
  TF,
  Vec,
  ZF,
} from "./flags.ts";
import { step } from "./exec.ts";
import { deliver, Source } from "./interrupts.ts";
import { type Block, HOT_THRESHOLD, translate as translateBlock } from "./jit.ts";
import { FPU } from "./fpu.ts";
import { Bus } from "./bus.ts";

/** Segment register numbers in encoding order. */
export const ES = 0, CS = 1, SS = 2, DS = 3, FS = 4, GS = 5;
/** General register numbers in encoding order. */
export const EAX = 0, ECX = 1, EDX = 2, EBX = 3, ESP = 4, EBP = 5, ESI = 6, EDI = 7;

/** Why `run` returned. Details of the exit are in `CPU.exitVector` and friends. */
export const Exit = {
  /** The instruction budget ran out. */
  Budget: 0,
  /** HLT executed (interrupts enabled or not: see `exitHaltIF`). */
  Halt: 1,
  /** An exception or software interrupt for the embedder: `exitVector`, `exitError`, `exitCr2`. */
  Exception: 2,
  /** A breakpoint address was reached (before executing it). */
  Breakpoint: 3,
  /** The machine cannot go on (fetch outside memory, triple fault): see `exitMessage`. */
  Shutdown: 4,
  /** A port I/O handler asked the run loop to stop after the current instruction. */
  Stop: 5,
} as const;
/** A value of {@link Exit}. */
export type ExitCode = typeof Exit[keyof typeof Exit];

/** Prefix bits kept in `CPU.pfx` while an instruction is decoded. */
export const P_O16 = 1, P_A16 = 2, P_REPZ = 4, P_REPNZ = 8, P_LOCK = 16;
/** Segment-override field: bits 8..10 hold segment+1 (0 = none). */
export const P_SEG_SHIFT = 8;

/** CR0 bits. */
export const CR0_PE = 1, CR0_MP = 2, CR0_EM = 4, CR0_TS = 8, CR0_ET = 0x10, CR0_NE = 0x20;
/** CR0 write-protect and paging bits. */
export const CR0_WP = 0x10000, CR0_AM = 0x40000, CR0_PG = 0x80000000 | 0;
/** CR4 bits. */
export const CR4_TSD = 4, CR4_PSE = 0x10, CR4_PAE = 0x20, CR4_PGE = 0x80, CR4_OSFXSR = 0x200;

/** TLB entry permission bits (low 12 bits of an entry; the rest is physPage ^ linPage). */
export const TLB_SUP = 1, TLB_USER = 2;

/** A codeMap value: this address starts no translatable block. */
const NO_BLOCK = -0x7fffffff;

/** A Set that tells its owner when it changes (breakpoints: translated code must be rebuilt). */
class BreakpointSet extends Set<number> {
  constructor(private readonly changed: () => void) {
    super();
  }
  override add(v: number): this {
    if (!this.has(v)) {
      super.add(v);
      this.changed?.();
    }
    return this;
  }
  override delete(v: number): boolean {
    const had = super.delete(v);
    if (had) this.changed();
    return had;
  }
  override clear(): void {
    if (this.size > 0) {
      super.clear();
      this.changed();
    }
  }
}

/** runSlice's private result: the slice was cut short (interrupt window or stop request). */
const SLICE_CUT = -1;

/** The object thrown (and caught by `run`) to leave an instruction early. */
export const CPU_EXIT: { readonly exit: true } = Object.freeze({ exit: true as const });

/** An i386 CPU with an x87 FPU, executing from a {@link PhysicalMemory}. */
export class CPU {
  /** Physical memory. */
  readonly mem: PhysicalMemory;
  /** Byte view of RAM (same buffer as `mem.u8`). */
  u8: Uint8Array;
  /** 32-bit view of RAM. */
  i32: Int32Array;
  /** DataView of RAM. */
  dv: DataView;

  /** General registers EAX..EDI as signed int32. */
  readonly regs: Int32Array = new Int32Array(8);
  /** Byte view of `regs` (AL = [0], AH = [1], CL = [4], ...). Use {@link r8} indexes. */
  readonly regs8: Uint8Array = new Uint8Array(this.regs.buffer);
  /** 16-bit view of `regs` (AX = [0], CX = [2], ...). */
  readonly regs16: Uint16Array = new Uint16Array(this.regs.buffer);
  /** Instruction pointer (offset in CS) of the next instruction. */
  eip = 0;
  /** EIP of the instruction being executed (where a fault restarts it). */
  instrStart = 0;

  /** CS base, kept apart from `sbase` because every fetch reads it. */
  csBase = 0;
  /** Segment selectors ES CS SS DS FS GS. */
  readonly sreg: Uint16Array = new Uint16Array(6);
  /** Segment bases. */
  readonly sbase: Int32Array = new Int32Array(6);
  /** Segment limits (byte granular, inclusive). */
  readonly slimit: Int32Array = new Int32Array(6).fill(-1);
  /** Segment access rights (descriptor bits 8..23 of the high dword, i.e. type..G). */
  readonly sflags: Int32Array = new Int32Array(6);

  /** Concrete EFLAGS bits (arithmetic bits in `lazy` are stale here). */
  flags: number = FLAG_R1;
  /** Which arithmetic flags are to be computed from la/lb/lr. */
  lazy = 0;
  /** Lazy-flag operands and result (result truncated to the operation size). */
  la = 0;
  /** Second operand of the last lazy operation. */
  lb = 0;
  /** Result of the last lazy operation. */
  lr = 0;
  /** 0: the last lazy operation was an addition, 1: a subtraction. */
  lop = 0;
  /** Sign-bit position of the last lazy operation (7, 15 or 31). */
  lsz = 31;

  /** Current privilege level. */
  cpl = 0;
  /** Control registers. */
  cr0 = CR0_PE | CR0_ET | CR0_NE;
  /** Page-fault linear address. */
  cr2 = 0;
  /** Page-directory base. */
  cr3 = 0;
  /** CR4. */
  cr4 = 0;
  /** Debug registers DR0..DR7 (plain storage: no hardware breakpoints). */
  readonly dr: Int32Array = new Int32Array(8);
  /** GDTR, IDTR base and limit. */
  gdtBase = 0;
  /** GDTR limit. */
  gdtLimit = 0xffff;
  /** IDTR base. */
  idtBase = 0;
  /** IDTR limit. */
  idtLimit = 0xffff;
  /** LDTR and TR selectors (descriptor caches live in ldtBase/ldtLimit, trBase/trLimit). */
  ldtr = 0;
  /** LDT base. */
  ldtBase = 0;
  /** LDT limit. */
  ldtLimit = 0;
  /** Task register selector. */
  tr = 0;
  /** TSS base. */
  trBase = 0;
  /** TSS limit. */
  trLimit = 0;
  /** Model-specific registers we keep (SYSENTER_CS/ESP/EIP). */
  readonly msr: Map<number, bigint> = new Map();
  /** Offset added to the instruction count to form the TSC. */
  tscOffset = 0;

  /** Instructions retired before the current `run` slice began. */
  private icountBase = 0;
  /** Budget of the current `run` slice (a small integer: cheap to count). */
  private sliceBudget = 0;
  /** What is left of the slice; translated blocks subtract what they retire. */
  sliceLeft = 0;

  /**
   * Defaults for new CPUs: whether to translate hot code, and after how many
   * starts of an address (0: translate on first execution — how the tests
   * drive the translator through every differential case).
   */
  static defaults: { jit: boolean; jitThreshold: number } = {
    jit: true,
    jitThreshold: HOT_THRESHOLD,
  };
  /** Translate hot code into JavaScript (false: interpret everything). */
  jit: boolean = CPU.defaults.jit;
  /** Starts of an instruction address before it is translated. */
  jitThreshold: number = CPU.defaults.jitThreshold;
  /** Per physical page: per offset, a block id (> 0) or minus the times it started an instruction. */
  private codeMap: (Int32Array | undefined)[] = [];
  /** Per physical page: 1 when blocks were translated from it (the write TLB never maps it). */
  private codePage: Uint8Array = new Uint8Array(0);
  /** Block ids by page, so a write can drop a page's blocks. */
  private pageBlocks: Map<number, number[]> = new Map();
  /** Translated blocks by id (0 unused). */
  private blocks: (Block | null)[] = [null];
  private freeIds: number[] = [];
  /** The block running now (to count what it retired if it faults). */
  private curBlock: Block | null = null;
  /** Instructions of the running block already subtracted from the slice (jit.ts steps). */
  blockDone = 0;
  /** How many blocks have been translated (for the debugger and benchmarks). */
  blocksTranslated = 0;

  /** Retired instructions since reset: virtual time. */
  get icount(): number {
    return this.icountBase + (this.sliceBudget - this.sliceLeft);
  }
  set icount(v: number) {
    this.icountBase = v;
    this.sliceBudget = this.sliceLeft = 0;
  }

  /** x87 FPU. */
  readonly fpu: FPU;

  /** Read TLB: per 4 KiB linear page, `physPage ^ linPage | TLB_SUP | TLB_USER`, 0 = miss. */
  readonly tlbR: Int32Array = new Int32Array(1 << 20);
  /** Write TLB, same encoding; filled only once the page is dirty and writable. */
  readonly tlbW: Int32Array = new Int32Array(1 << 20);
  /** Which permission bit a hit needs: TLB_USER at CPL 3, else TLB_SUP. */
  tlbMask: number = TLB_SUP;
  /** Linear pages filled since the last flush (so a flush touches only those). */
  private tlbList: Int32Array = new Int32Array(4096);
  private tlbCount = 0;

  /** Linear page of the code page cached for fetch (1 = none). */
  fetchPage = 1;
  /** physPage ^ linPage of the cached code page. */
  fetchXor = 0;

  /** Prefixes of the current instruction (P_* bits). */
  pfx = 0;
  /** Segment a ModRM memory operand uses (after overrides). */
  eaSeg: number = DS;

  /** Details of the last Exit.Exception. */
  exitVector = 0;
  /** Error code of the last exception, or -1 when it has none. */
  exitError: number = -1;
  /** CR2 at the last #PF exit. */
  exitCr2 = 0;
  /** True when the last exception was a trap (EIP is after the instruction). */
  exitTrap = false;
  /** Why the machine shut down, for Exit.Shutdown. */
  exitMessage = "";
  /** The exit code the pending CPU_EXIT carries (and, after a failed delivery, why). */
  exitKind: ExitCode = Exit.Exception;
  /** Where the pending exception came from (interrupts.ts `Source`). */
  exitSource = 0;
  /** Per vector: 1 = leave `run` for the embedder (a hypervisor), 0 = deliver through the IDT. */
  readonly exitVectors: Uint8Array = new Uint8Array(256).fill(1);
  /** Pending external interrupts (bitmap) and how many. */
  private readonly irqPending: Int32Array = new Int32Array(8);
  private irqCount = 0;
  /** Interrupts are inhibited while icount < shadowUntil (STI, MOV SS, POP SS). */
  private shadowUntil = 0;
  /** The real remaining budget while a slice is cut short (-1: not cut). */
  sliceCut: number = -1;
  /** An exception or INT was delivered during the current slice (it discards a single-step trap). */
  private stepEvent = false;
  /** Set by interrupts.ts when delivering a software INT faulted (the INT then did not retire). */
  deliveryFaulted = false;
  /** Set by port handlers (via `requestStop`) to end `run` after this instruction. */
  stopRequested = false;
  /** True when the exit's instruction retired (a trap, INT n or HLT), false for a fault. */
  private retire = false;
  /** Fetches at or past this EIP raise #GP(0): the 15-byte instruction limit (long prefix runs). */
  fetchLimit = 0x7fffffff;

  /**
   * The I/O bus: port handlers and MMIO regions. A page holding device memory
   * never enters the TLB, so every access to it reaches the bus.
   */
  readonly bus: Bus = new Bus();
  /** The bus's per-page MMIO map (1 = device memory), held here for the slow path. */
  private readonly mmioPage: Uint8Array = this.bus.mmioPage;

  /**
   * Optional embedder hook for page faults (a hypervisor's demand paging):
   * called with the linear address and error code of a fault the page walk
   * found; returning true means the tables were filled and the walk is tried
   * once more. The fault then costs no exit from run() — a JavaScript throw
   * is expensive in some engines. Returning false raises #PF as usual.
   */
  pageFaultHook: ((lin: number, errcode: number) => boolean) | null = null;
  /**
   * Optional embedder hook for INT n / INT3 / INTO / INT1 on vectors it
   * intercepts (exitVectors): called once the instruction has retired (EIP
   * after it), with the vector and its source (interrupts.ts `Source`).
   * Returning true means the embedder handled it (it may have changed EIP,
   * CS, the stack…) and execution goes on without leaving run(); false exits
   * as usual.
   */
  softIntHook: ((vector: number, source: number) => boolean) | null = null;
  /** Error code of the fault a walk just found (for pageFaultHook). */
  private pfPendingErr = 0;
  /**
   * Optional embedder hook for IOPL-sensitive instructions the privilege
   * rules forbid (a hypervisor emulating them for a deprivileged kernel): for
   * IN/OUT, `in` returns the value read (NaN to refuse) and `out` returns
   * false to refuse; `cli` returns true to let a CLI pass as a no-op. A
   * refusal raises #GP(0) as if there were no hook. String I/O (INS/OUTS) is
   * not offered to it.
   */
  ioTrap: {
    in(port: number, size: number): number;
    out(port: number, v: number, size: number): boolean;
    cli(): boolean;
  } | null = null;

  /**
   * Breakpoints by linear address: `run` returns Exit.Breakpoint before
   * executing an instruction at one. Changing the set drops translated code
   * (blocks are cut at breakpoints).
   */
  readonly breakpoints: Set<number> = new BreakpointSet(() => this.dropAllCode());
  /** A breakpoint address to pass over once (see skipBreakpointOnce); NaN for none. */
  private bpSkip = NaN;

  /**
   * Watchpoint support (the debugger's, lib/debug): a page for which this
   * returns true (given a linear and the physical address it maps to) is never
   * entered in the TLB, so every data access to it takes the slow path and
   * reaches {@link onAccess}. Null (the default) costs nothing. Flush the TLB
   * after changing what it answers.
   */
  tlbExclude: ((lin: number, pa: number) => boolean) | null = null;
  /**
   * Called on every slow-path data access (a TLB miss, an excluded page, MMIO,
   * a page-crossing access) once translation has succeeded, just before the
   * access: linear and physical address, size in bytes, and direction. An
   * access crossing a page is reported as its two parts. Instruction fetches
   * are not data accesses and are not reported.
   */
  onAccess: ((lin: number, pa: number, size: number, write: boolean) => void) | null = null;

  /** Create a CPU on `mem`, reset into flat 32-bit protected mode at CPL 0. */
  constructor(mem: PhysicalMemory) {
    this.mem = mem;
    this.u8 = mem.u8;
    this.i32 = mem.i32;
    this.dv = mem.dv;
    this.fpu = new FPU(this);
    this.codePage = new Uint8Array(mem.size >>> 12);
    this.codeMap = new Array(mem.size >>> 12);
    this.bus.onRemap = () => this.flushTlb();
    this.reset();
  }

  /**
   * Reset to flat 32-bit protected mode, paging off, CPL 0: every segment has
   * base 0 and limit 4 GiB; CS is a 32-bit code segment. (Real mode is not
   * modelled: lguest guests and the 32-bit boot protocol never need it.)
   */
  reset(): void {
    this.regs.fill(0);
    this.eip = 0;
    this.flags = FLAG_R1;
    this.lazy = 0;
    this.cpl = 0;
    this.cr0 = CR0_PE | CR0_ET | CR0_NE;
    this.cr2 = this.cr3 = this.cr4 = 0;
    for (let s = 0; s < 6; s++) this.setSegFlat(s, 0, 0);
    this.icount = 0;
    this.fpu.reset();
    this.flushTlb();
    this.dropAllCode();
  }

  /** Forget every translated block (after memory was rewritten behind the CPU's back). */
  dropAllCode(): void {
    for (const page of [...this.pageBlocks.keys()]) this.dropCodePage(page);
    this.codeMap = new Array(this.mem.size >>> 12);
    this.codePage.fill(0);
    this.blocks = [null];
    this.freeIds = [];
  }

  /**
   * Load segment register `seg` with a flat 4 GiB descriptor cache: base 0, the
   * given selector and DPL. Used by loaders and by tests; guests load segments
   * through descriptor tables.
   */
  setSegFlat(seg: number, sel: number, dpl: number): void {
    this.sreg[seg] = sel;
    this.sbase[seg] = 0;
    this.slimit[seg] = -1;
    // present, DPL, S=1, type (code: exec/read, accessed; data: read/write, accessed), D/B=1, G=1
    const type = seg === CS ? 0xb : 0x3;
    this.sflags[seg] = 0x80 | (dpl << 5) | 0x10 | type | 0xc000;
    if (seg === CS) this.csChanged();
  }

  /** Call after changing CS's cache (`sbase[CS]`): refreshes the fetch state. */
  csChanged(): void {
    this.csBase = this.sbase[CS];
    this.fetchPage = 1;
  }

  // ---------------------------------------------------------------- flags

  /** Compute the lazily held flags in `mask` (must be a subset of `lazy`). */
  private computeLazy(mask: number): number {
    const a = this.la, b = this.lb, r = this.lr, s = this.lsz;
    let f = 0;
    if (mask & CF) {
      f |= (this.lop === 0 ? (a & b) | ((a | b) & ~r) : (~a & b) | ((~a | b) & r)) >>> s & 1;
    }
    if (mask & PF) f |= PARITY[r & 0xff];
    if (mask & AF) f |= (a ^ b ^ r) & AF;
    if (mask & ZF) f |= r === 0 ? ZF : 0;
    if (mask & SF) f |= (r >>> s & 1) << 7;
    if (mask & OF) {
      f |= ((this.lop === 0 ? (a ^ r) & (b ^ r) : (a ^ b) & (a ^ r)) >>> s & 1) << 11;
    }
    return f;
  }

  /** Make the flags in `mask` concrete (computing any that are lazy). */
  fixFlags(mask: number): void {
    const l = this.lazy & mask;
    if (l !== 0) {
      this.flags = (this.flags & ~l) | this.computeLazy(l);
      this.lazy &= ~l;
    }
  }

  /** The full EFLAGS value. */
  getEflags(): number {
    const l = this.lazy;
    return l === 0 ? this.flags : (this.flags & ~l) | this.computeLazy(l);
  }

  /**
   * Set EFLAGS outright (no privilege checks; POPF/IRET apply those first).
   * Bit 1 always reads as 1; bits 3, 5, 15 and 22..31 always read as 0.
   */
  setEflags(v: number): void {
    this.flags = (v & 0x3f7fd5) | FLAG_R1;
    this.lazy = 0;
    if ((v & (TF | IF)) !== 0) {
      if ((v & TF) !== 0) this.cutSlice();
      else this.interruptWindow();
    }
  }

  /** Set the bits `mask` of EFLAGS to `bits`, all other flags unchanged. */
  setFlagBits(mask: number, bits: number): void {
    this.fixFlags(mask ^ ARITH_FLAGS);
    this.flags = (this.flags & ~mask) | (bits & mask);
    this.lazy &= ~mask;
  }

  /** CF as 0 or 1. */
  getCF(): number {
    return (this.lazy & CF) === 0 ? this.flags & CF : this.computeLazy(CF);
  }

  /** ZF as 0 or ZF. */
  getZF(): number {
    return (this.lazy & ZF) === 0 ? this.flags & ZF : (this.lr === 0 ? ZF : 0);
  }

  /** SF as 0 or 1. */
  getSF(): number {
    return (this.lazy & SF) === 0 ? (this.flags >> 7) & 1 : (this.lr >>> this.lsz) & 1;
  }

  /** OF as 0 or 1. */
  getOF(): number {
    return (this.lazy & OF) === 0 ? (this.flags >> 11) & 1 : this.computeLazy(OF) >> 11;
  }

  /** PF as 0 or PF. */
  getPF(): number {
    return (this.lazy & PF) === 0 ? this.flags & PF : PARITY[this.lr & 0xff];
  }

  /** AF as 0 or AF. */
  getAF(): number {
    return (this.lazy & AF) === 0 ? this.flags & AF : (this.la ^ this.lb ^ this.lr) & AF;
  }

  /** Evaluate condition code `cc` (0..15, the Jcc/SETcc/CMOVcc nibble). */
  cond(cc: number): boolean {
    let v: boolean;
    switch (cc >> 1) {
      case 0:
        v = this.getOF() !== 0;
        break;
      case 1:
        v = this.getCF() !== 0;
        break;
      case 2:
        v = this.getZF() !== 0;
        break;
      case 3:
        v = (this.getCF() | this.getZF()) !== 0;
        break;
      case 4:
        v = this.getSF() !== 0;
        break;
      case 5:
        v = this.getPF() !== 0;
        break;
      case 6:
        v = this.getSF() !== this.getOF();
        break;
      default:
        v = this.getZF() !== 0 || this.getSF() !== this.getOF();
        break;
    }
    return v !== ((cc & 1) !== 0);
  }

  /** Record an addition for lazy flags and return the truncated result. */
  add(a: number, b: number, r: number, sz: number): number {
    this.la = a;
    this.lb = b;
    this.lr = r;
    this.lop = 0;
    this.lsz = sz;
    this.lazy = ARITH_FLAGS;
    return r;
  }

  /** Record a subtraction for lazy flags and return the truncated result. */
  sub(a: number, b: number, r: number, sz: number): number {
    this.la = a;
    this.lb = b;
    this.lr = r;
    this.lop = 1;
    this.lsz = sz;
    this.lazy = ARITH_FLAGS;
    return r;
  }

  /** Record a logical result (CF = OF = AF = 0; ZF SF PF from r) and return r. */
  logic(r: number, sz: number): number {
    this.flags &= ~(CF | OF | AF);
    this.lr = r;
    this.lsz = sz;
    this.lazy = ZF | SF | PF;
    return r;
  }

  /** Record INC/DEC: like add/sub of 1 but CF is preserved. */
  incdec(a: number, r: number, sz: number, isDec: number): number {
    if ((this.lazy & CF) !== 0) {
      const la = this.la, lb = this.lb, lr = this.lr;
      const c = this.lop === 0 ? (la & lb) | ((la | lb) & ~lr) : (~la & lb) | ((~la | lb) & lr);
      this.flags = (this.flags & ~CF) | ((c >>> this.lsz) & 1);
    }
    this.la = a;
    this.lb = 1;
    this.lr = r;
    this.lop = isDec;
    this.lsz = sz;
    this.lazy = ARITH_FLAGS & ~CF;
    return r;
  }

  /** Record a result whose ZF/SF/PF are lazy and whose CF/OF/AF are given concretely. */
  result(r: number, sz: number, cfofaf: number): number {
    this.flags = (this.flags & ~(CF | OF | AF)) | cfofaf;
    this.lr = r;
    this.lsz = sz;
    this.lazy = ZF | SF | PF;
    return r;
  }

  /** ALU operation `op` (0 ADD, 1 OR, 2 ADC, 3 SBB, 4 AND, 5 SUB, 6 XOR, 7 CMP) on 32 bits. */
  alu32(op: number, a: number, b: number): number {
    switch (op) {
      case 0:
        return this.add(a, b, (a + b) | 0, 31);
      case 1:
        return this.logic(a | b, 31);
      case 2: {
        const c = this.getCF();
        return this.add(a, b, (a + b + c) | 0, 31);
      }
      case 3: {
        const c = this.getCF();
        return this.sub(a, b, (a - b - c) | 0, 31);
      }
      case 4:
        return this.logic(a & b, 31);
      case 6:
        return this.logic(a ^ b, 31);
      default:
        return this.sub(a, b, (a - b) | 0, 31);
    }
  }

  /** ALU operation on 16 bits (operands and result zero-extended). */
  alu16(op: number, a: number, b: number): number {
    switch (op) {
      case 0:
        return this.add(a, b, (a + b) & 0xffff, 15);
      case 1:
        return this.logic((a | b) & 0xffff, 15);
      case 2: {
        const c = this.getCF();
        return this.add(a, b, (a + b + c) & 0xffff, 15);
      }
      case 3: {
        const c = this.getCF();
        return this.sub(a, b, (a - b - c) & 0xffff, 15);
      }
      case 4:
        return this.logic(a & b & 0xffff, 15);
      case 6:
        return this.logic((a ^ b) & 0xffff, 15);
      default:
        return this.sub(a, b, (a - b) & 0xffff, 15);
    }
  }

  /** ALU operation on 8 bits. */
  alu8(op: number, a: number, b: number): number {
    switch (op) {
      case 0:
        return this.add(a, b, (a + b) & 0xff, 7);
      case 1:
        return this.logic((a | b) & 0xff, 7);
      case 2: {
        const c = this.getCF();
        return this.add(a, b, (a + b + c) & 0xff, 7);
      }
      case 3: {
        const c = this.getCF();
        return this.sub(a, b, (a - b - c) & 0xff, 7);
      }
      case 4:
        return this.logic(a & b & 0xff, 7);
      case 6:
        return this.logic((a ^ b) & 0xff, 7);
      default:
        return this.sub(a, b, (a - b) & 0xff, 7);
    }
  }

  // ---------------------------------------------------------------- exceptions

  /**
   * Raise exception `vector` (a fault: EIP rolls back to the instruction) with
   * an optional error code. Never returns.
   */
  fault(vector: number, error = -1): never {
    this.exitVector = vector;
    this.exitError = error;
    this.exitTrap = false;
    this.retire = false;
    this.exitSource = 0;
    this.exitKind = Exit.Exception;
    throw CPU_EXIT;
  }

  /**
   * Raise a trap-type exception or software interrupt (EIP stays after it).
   * `source` is interrupts.ts `Source` (0 exception, 1 INT n/INT3/INTO, 2 INT1).
   */
  trap(vector: number, source = 0): never {
    this.exitVector = vector;
    this.exitError = -1;
    this.exitTrap = true;
    this.retire = true;
    this.exitSource = source;
    this.exitKind = Exit.Exception;
    throw CPU_EXIT;
  }

  /** #GP(error). */
  gp(error = 0): never {
    return this.fault(Vec.GP, error);
  }

  /** #UD. */
  ud(): never {
    return this.fault(Vec.UD);
  }

  /** Stop with Exit.Shutdown and a reason. */
  shutdown(message: string): never {
    this.exitMessage = message;
    this.retire = false;
    this.exitKind = Exit.Shutdown;
    throw CPU_EXIT;
  }

  /** HLT: leave `run` with Exit.Halt, EIP after the HLT. */
  halt(): never {
    this.exitKind = Exit.Halt;
    this.retire = true;
    throw CPU_EXIT;
  }

  /** Ask `run` to return Exit.Stop after the current instruction (for device handlers). */
  requestStop(): void {
    this.stopRequested = true;
    this.cutSlice();
  }

  // ---------------------------------------------------------------- TLB and paging

  /** Forget every cached translation. */
  flushTlb(): void {
    const n = this.tlbCount;
    if (n > this.tlbList.length) {
      this.tlbR.fill(0);
      this.tlbW.fill(0);
    } else {
      const list = this.tlbList, r = this.tlbR, w = this.tlbW;
      for (let i = 0; i < n; i++) {
        r[list[i]] = 0;
        w[list[i]] = 0;
      }
    }
    this.tlbCount = 0;
    this.fetchPage = 1;
    this.tlbMask = this.cpl === 3 ? TLB_USER : TLB_SUP;
  }

  /** Forget the translation of the page holding linear address `lin` (INVLPG). */
  flushTlbPage(lin: number): void {
    this.tlbR[lin >>> 12] = 0;
    this.tlbW[lin >>> 12] = 0;
    if (((lin ^ this.fetchPage) & -4096) === 0) this.fetchPage = 1;
  }

  /** Change CPL (switching which TLB permission bit applies). */
  setCpl(cpl: number): void {
    this.cpl = cpl;
    this.tlbMask = cpl === 3 ? TLB_USER : TLB_SUP;
    this.fetchPage = 1;
  }

  /** Remember that linear `page` has TLB entries (for the next flush). */
  private tlbRecord(page: number): void {
    if (this.tlbCount < this.tlbList.length) this.tlbList[this.tlbCount] = page;
    this.tlbCount++;
  }

  /**
   * Translate linear `lin` for an access, filling the TLB; raises #PF when the
   * page tables forbid it. Returns the physical address.
   * @param write a write access
   * @param user the access is made at CPL 3 (or is an implicit user access)
   */
  translate(lin: number, write: boolean, user: boolean): number {
    const page = lin >>> 12;
    if ((this.cr0 & CR0_PG) === 0) {
      const pa = lin >>> 0;
      if (
        pa < this.mem.size && this.mmioPage[page] === 0 &&
        (this.tlbExclude === null || !this.tlbExclude(lin, pa))
      ) {
        if (this.tlbR[page] === 0 && this.tlbW[page] === 0) this.tlbRecord(page);
        this.tlbR[page] = TLB_SUP | TLB_USER;
        if (this.codePage[page] === 0) this.tlbW[page] = TLB_SUP | TLB_USER;
      }
      return pa;
    }
    const pae = (this.cr4 & CR4_PAE) !== 0;
    let pa = pae ? this.walkPae(lin, write, user) : this.walk32(lin, write, user);
    if (pa !== pa) {
      // A page fault the embedder may resolve without the fault leaving run():
      // if it fills the tables, walk again; a second fault is raised as usual.
      if (this.pageFaultHook!(lin, this.pfPendingErr)) {
        pa = pae ? this.walkPae(lin, write, user) : this.walk32(lin, write, user);
        if (pa === pa) return pa;
      }
      return this.raisePageFault(lin, this.pfPendingErr);
    }
    return pa;
  }

  /**
   * A walk found no usable entry. With a {@link pageFaultHook} the walk
   * returns NaN and translate() asks the hook first; otherwise #PF is raised.
   */
  private pageFault(lin: number, present: boolean, write: boolean, user: boolean): number {
    const err = (present ? 1 : 0) | (write ? 2 : 0) | (user ? 4 : 0);
    if (this.pageFaultHook !== null) {
      this.pfPendingErr = err;
      return NaN;
    }
    return this.raisePageFault(lin, err);
  }

  /** Raise #PF for linear `lin` with error code `err` (CR2 set). */
  private raisePageFault(lin: number, err: number): never {
    this.cr2 = lin;
    this.exitCr2 = lin;
    return this.fault(Vec.PF, err);
  }

  /** Fill the read (and, when allowed and dirty, the write) TLB entry for a translated page; device, watched and out-of-RAM pages stay on the slow path. */
  private fillTlb(
    lin: number,
    pa: number,
    write: boolean,
    uok: boolean,
    wok: boolean,
    dirty: boolean,
  ): void {
    const page = lin >>> 12;
    if (pa >= this.mem.size || pa < 0) return; // beyond RAM: always the slow path
    if (this.mmioPage[pa >>> 12] !== 0) return; // device memory: always the bus
    if (this.tlbExclude !== null && this.tlbExclude(lin, pa)) return; // watched: slow path
    const x = (pa ^ lin) & -4096;
    if (this.tlbR[page] === 0 && this.tlbW[page] === 0) this.tlbRecord(page);
    const perm = TLB_SUP | (uok ? TLB_USER : 0);
    this.tlbR[page] = x | perm;
    if ((dirty || write) && this.codePage[pa >>> 12] === 0) {
      const sw = wok || (this.cr0 & CR0_WP) === 0;
      this.tlbW[page] = (sw ? x | TLB_SUP : 0) | (uok && wok ? x | TLB_USER : 0);
    }
  }

  /** Two-level (non-PAE) page walk with 4 KiB and, with CR4.PSE, 4 MiB pages. */
  private walk32(lin: number, write: boolean, user: boolean): number {
    const mem = this.mem;
    const pdeAddr = (this.cr3 & -4096) + ((lin >>> 22) << 2);
    const pde = mem.read32(pdeAddr);
    if ((pde & 1) === 0) return this.pageFault(lin, false, write, user);
    if ((pde & 0x80) !== 0 && (this.cr4 & CR4_PSE) !== 0) {
      const uok = (pde & 4) !== 0, wok = (pde & 2) !== 0;
      if (this.checkPerm(lin, write, user, uok, wok) !== 0) return NaN;
      const nd = pde | 0x20 | (write ? 0x40 : 0);
      if (nd !== pde) mem.write32(pdeAddr, nd);
      const pa = ((pde & 0xffc00000) | (lin & 0x3ff000)) + (lin & 0xfff);
      this.fillTlb(lin, pa, write, uok, wok, (nd & 0x40) !== 0);
      return pa;
    }
    const pteAddr = (pde & -4096) + (((lin >>> 12) & 0x3ff) << 2);
    const pte = mem.read32(pteAddr);
    if ((pte & 1) === 0) return this.pageFault(lin, false, write, user);
    const uok = (pde & pte & 4) !== 0, wok = (pde & pte & 2) !== 0;
    if (this.checkPerm(lin, write, user, uok, wok) !== 0) return NaN;
    if ((pde & 0x20) === 0) mem.write32(pdeAddr, pde | 0x20);
    const nt = pte | 0x20 | (write ? 0x40 : 0);
    if (nt !== pte) mem.write32(pteAddr, nt);
    const pa = (pte & -4096) + (lin & 0xfff);
    this.fillTlb(lin, pa, write, uok, wok, (nt & 0x40) !== 0);
    return pa;
  }

  /** PAE page walk: PDPT (from CR3) → page directory → page table, 8-byte entries. */
  private walkPae(lin: number, write: boolean, user: boolean): number {
    const mem = this.mem;
    const pdpteAddr = (this.cr3 & -32) + ((lin >>> 30) << 3);
    const pdpte = mem.read32(pdpteAddr);
    if ((pdpte & 1) === 0) return this.pageFault(lin, false, write, user);
    const pdeAddr = (pdpte & -4096) + (((lin >>> 21) & 0x1ff) << 3);
    const pde = mem.read32(pdeAddr);
    if ((pde & 1) === 0) return this.pageFault(lin, false, write, user);
    if ((pde & 0x80) !== 0) {
      const uok = (pde & 4) !== 0, wok = (pde & 2) !== 0;
      if (this.checkPerm(lin, write, user, uok, wok) !== 0) return NaN;
      const nd = pde | 0x20 | (write ? 0x40 : 0);
      if (nd !== pde) mem.write32(pdeAddr, nd);
      const pa = ((pde & 0xffe00000) | (lin & 0x1ff000)) + (lin & 0xfff);
      this.fillTlb(lin, pa, write, uok, wok, (nd & 0x40) !== 0);
      return pa;
    }
    const pteAddr = (pde & -4096) + (((lin >>> 12) & 0x1ff) << 3);
    const pte = mem.read32(pteAddr);
    if ((pte & 1) === 0) return this.pageFault(lin, false, write, user);
    const uok = (pde & pte & 4) !== 0, wok = (pde & pte & 2) !== 0;
    if (this.checkPerm(lin, write, user, uok, wok) !== 0) return NaN;
    if ((pde & 0x20) === 0) mem.write32(pdeAddr, pde | 0x20);
    const nt = pte | 0x20 | (write ? 0x40 : 0);
    if (nt !== pte) mem.write32(pteAddr, nt);
    const pa = (pte & -4096) + (lin & 0xfff);
    this.fillTlb(lin, pa, write, uok, wok, (nt & 0x40) !== 0);
    return pa;
  }

  /** Permission check at the end of a walk: NaN (a pending fault, see pageFault) or 0. */
  private checkPerm(
    lin: number,
    write: boolean,
    user: boolean,
    uok: boolean,
    wok: boolean,
  ): number {
    if (user) {
      if (!uok || (write && !wok)) return this.pageFault(lin, true, write, user);
    } else if (write && !wok && (this.cr0 & CR0_WP) !== 0) {
      return this.pageFault(lin, true, write, user);
    }
    return 0;
  }

  // ---------------------------------------------------------------- memory (linear)

  /**
   * Translate `lin` for an access by the current CPL and return the physical
   * address (through the TLB; may raise #PF). Returns -1 for a page kept out of
   * the TLB by {@link tlbExclude}: bulk callers then fall back to element-wise
   * accesses, which the watchpoint hook sees.
   */
  physAddr(lin: number, write: boolean): number {
    const e = (write ? this.tlbW : this.tlbR)[lin >>> 12];
    if ((e & this.tlbMask) !== 0) return (e & -4096) ^ lin;
    const pa = this.translate(lin, write, this.cpl === 3);
    if (this.mmioPage[pa >>> 12] !== 0) return -1;
    if (this.tlbExclude !== null && this.tlbExclude(lin, pa)) return -1;
    return pa;
  }

  /** Read a byte at linear address `lin`. */
  read8(lin: number): number {
    const e = this.tlbR[lin >>> 12];
    if ((e & this.tlbMask) !== 0) return this.u8[(e & -4096) ^ lin];
    return this.readSlow(lin, 1);
  }

  /** Read a 16-bit value (zero-extended). */
  read16(lin: number): number {
    const e = this.tlbR[lin >>> 12];
    if ((e & this.tlbMask) !== 0 && (lin & 0xfff) !== 0xfff) {
      return this.dv.getUint16((e & -4096) ^ lin, true);
    }
    return this.readSlow(lin, 2);
  }

  /** Read a 32-bit value (signed int32). */
  read32(lin: number): number {
    const e = this.tlbR[lin >>> 12];
    if ((e & this.tlbMask) !== 0) {
      const pa = (e & -4096) ^ lin;
      if ((pa & 3) === 0) return this.i32[pa >>> 2];
      if ((lin & 0xfff) <= 0xffc) return this.dv.getInt32(pa, true);
    }
    return this.readSlow(lin, 4);
  }

  /**
   * Reads for read-modify-write instructions: the CPU reads with write intent,
   * so a fault reports W=1 and a read-only page faults before anything changes.
   */
  readW8(lin: number): number {
    const e = this.tlbW[lin >>> 12];
    if ((e & this.tlbMask) !== 0) return this.u8[(e & -4096) ^ lin];
    return this.readSlowW(lin, 1);
  }

  /** 16-bit read with write intent (see readW8). */
  readW16(lin: number): number {
    const e = this.tlbW[lin >>> 12];
    if ((e & this.tlbMask) !== 0 && (lin & 0xfff) !== 0xfff) {
      return this.dv.getUint16((e & -4096) ^ lin, true);
    }
    return this.readSlowW(lin, 2);
  }

  /** 32-bit read with write intent (see readW8). */
  readW32(lin: number): number {
    const e = this.tlbW[lin >>> 12];
    if ((e & this.tlbMask) !== 0) {
      const pa = (e & -4096) ^ lin;
      if ((pa & 3) === 0) return this.i32[pa >>> 2];
      if ((lin & 0xfff) <= 0xffc) return this.dv.getInt32(pa, true);
    }
    return this.readSlowW(lin, 4);
  }

  /** A read for a read-modify-write: check the write first, so a fault comes before any effect. */
  private readSlowW(lin: number, size: number): number {
    this.probeWrite(lin, size);
    return this.readSlow(lin, size);
  }

  /** Write a byte. */
  write8(lin: number, v: number): void {
    const e = this.tlbW[lin >>> 12];
    if ((e & this.tlbMask) !== 0) this.u8[(e & -4096) ^ lin] = v;
    else this.writeSlow(lin, v, 1);
  }

  /** Write a 16-bit value. */
  write16(lin: number, v: number): void {
    const e = this.tlbW[lin >>> 12];
    if ((e & this.tlbMask) !== 0 && (lin & 0xfff) !== 0xfff) {
      this.dv.setUint16((e & -4096) ^ lin, v, true);
    } else this.writeSlow(lin, v, 2);
  }

  /** Write a 32-bit value. */
  write32(lin: number, v: number): void {
    const e = this.tlbW[lin >>> 12];
    if ((e & this.tlbMask) !== 0) {
      const pa = (e & -4096) ^ lin;
      if ((pa & 3) === 0) {
        this.i32[pa >>> 2] = v;
        return;
      }
      if ((lin & 0xfff) <= 0xffc) {
        this.dv.setInt32(pa, v, true);
        return;
      }
    }
    this.writeSlow(lin, v, 4);
  }

  /**
   * Check that a write of `size` bytes at `lin` would succeed (raising #PF if
   * not) without writing. Instructions that write several places use it to stay
   * precise: nothing changes unless everything can.
   */
  probeWrite(lin: number, size: number): void {
    const e = this.tlbW[lin >>> 12];
    if ((e & this.tlbMask) !== 0 && (lin & 0xfff) <= 0x1000 - size) return;
    const user = this.cpl === 3;
    this.translate(lin, true, user);
    if (((lin & 0xfff) + size) > 0x1000) this.translate((lin + size - 1) & -4096, true, user);
  }

  /** Read `size` bytes at physical `pa`: RAM, a device on the bus, or all ones beyond both. */
  private physRead(pa: number, size: number): number {
    if (this.mmioPage[pa >>> 12] !== 0) return this.bus.read(pa, size);
    if (pa >= 0 && pa + size <= this.mem.size) {
      return size === 1
        ? this.u8[pa]
        : size === 2
        ? this.dv.getUint16(pa, true)
        : this.dv.getInt32(pa, true);
    }
    return size === 4 ? -1 : (1 << (size * 8)) - 1;
  }

  /** Write `size` bytes at physical `pa` to RAM (dropping translated code there) or a device; ignored beyond both. */
  private physWrite(pa: number, v: number, size: number): void {
    if (this.mmioPage[pa >>> 12] !== 0) this.bus.write(pa, size, v);
    else if (pa >= 0 && pa + size <= this.mem.size) {
      if (this.codePage[pa >>> 12] !== 0) this.dropCodePage(pa >>> 12);
      if (size === 1) this.u8[pa] = v;
      else if (size === 2) this.dv.setUint16(pa, v, true);
      else this.dv.setInt32(pa, v, true);
    }
  }

  /** A read that missed the TLB: translate (both pages when it crosses one), then read. */
  private readSlow(lin: number, size: number): number {
    const user = this.cpl === 3;
    if (((lin & 0xfff) + size) > 0x1000) {
      // Crosses a page: translate both pages before reading anything.
      const pa0 = this.translate(lin, false, user);
      const pa1 = this.translate((lin + size - 1) & -4096, false, user);
      if (this.onAccess !== null) {
        const first = 0x1000 - (lin & 0xfff);
        this.onAccess(lin, pa0, first, false);
        this.onAccess((lin + first) | 0, pa1, size - first, false);
      }
      let v = 0;
      for (let i = 0; i < size; i++) {
        const l = (lin + i) | 0;
        const pa = (l & 0xfff) >= (lin & 0xfff) && i < 0x1000 - (lin & 0xfff)
          ? pa0 + i
          : pa1 + (l & 0xfff);
        v |= this.physRead(pa, 1) << (i * 8);
      }
      return size === 2 ? v & 0xffff : v;
    }
    const pa = this.translate(lin, false, user);
    if (this.onAccess !== null) this.onAccess(lin, pa, size, false);
    return this.physRead(pa, size);
  }

  /** A write that missed the write TLB: translate (both pages when it crosses one), then write. */
  private writeSlow(lin: number, v: number, size: number): void {
    const user = this.cpl === 3;
    if (((lin & 0xfff) + size) > 0x1000) {
      const first = 0x1000 - (lin & 0xfff);
      const pa0 = this.translate(lin, true, user);
      const pa1 = this.translate((lin + size - 1) & -4096, true, user);
      if (this.onAccess !== null) {
        this.onAccess(lin, pa0, first, true);
        this.onAccess((lin + first) | 0, pa1, size - first, true);
      }
      for (let i = 0; i < size; i++) {
        this.physWrite(i < first ? pa0 + i : pa1 + (i - first), (v >>> (i * 8)) & 0xff, 1);
      }
      return;
    }
    const pa = this.translate(lin, true, user);
    if (this.onAccess !== null) this.onAccess(lin, pa, size, true);
    this.physWrite(pa, v, size);
  }

  /** Read `n` bytes at linear `lin` without side effects on failure: null if unmapped. */
  peekLinear(lin: number, n: number): Uint8Array | null {
    const out = new Uint8Array(n);
    try {
      for (let i = 0; i < n; i++) out[i] = this.read8((lin + i) | 0);
    } catch (e) {
      if (e === CPU_EXIT) return null;
      throw e;
    }
    return out;
  }

  // ---------------------------------------------------------------- stack

  /** Push a 32-bit value. */
  push32(v: number): void {
    const sp = (this.regs[ESP] - 4) | 0;
    this.write32((sp + this.sbase[SS]) | 0, v);
    this.regs[ESP] = sp;
  }

  /** Push a 16-bit value. */
  push16(v: number): void {
    const sp = (this.regs[ESP] - 2) | 0;
    this.write16((sp + this.sbase[SS]) | 0, v);
    this.regs[ESP] = sp;
  }

  /** Pop a 32-bit value. */
  pop32(): number {
    const sp = this.regs[ESP];
    const v = this.read32((sp + this.sbase[SS]) | 0);
    this.regs[ESP] = (sp + 4) | 0;
    return v;
  }

  /** Pop a 16-bit value. */
  pop16(): number {
    const sp = this.regs[ESP];
    const v = this.read16((sp + this.sbase[SS]) | 0);
    this.regs[ESP] = (sp + 2) | 0;
    return v;
  }

  // ---------------------------------------------------------------- fetch and decode

  /** Point instruction fetch at the page holding linear `lin` (translating it; outside RAM stops the machine). */
  private fetchRefill(lin: number): void {
    if (this.fetchLimit !== 0x7fffffff) {
      // Checked mode for long prefix runs: every byte comes through here.
      if (((this.eip - this.fetchLimit) | 0) >= 0) this.gp(0);
      const e = this.tlbR[lin >>> 12];
      const pa = (e & this.tlbMask) !== 0
        ? (e & -4096) ^ lin
        : this.translate(lin, false, this.cpl === 3);
      if (pa < 0 || pa >= this.mem.size || this.mmioPage[pa >>> 12] !== 0) {
        this.shutdown(`instruction fetch outside RAM at linear 0x${(lin >>> 0).toString(16)}`);
      }
      this.fetchXor = (pa ^ lin) & -4096;
      return;
    }
    const user = this.cpl === 3;
    const e = this.tlbR[lin >>> 12];
    let pa: number;
    if ((e & this.tlbMask) !== 0) pa = (e & -4096) ^ lin;
    else pa = this.translate(lin, false, user);
    if (pa < 0 || pa >= this.mem.size || this.mmioPage[pa >>> 12] !== 0) {
      this.shutdown(`instruction fetch outside RAM at linear 0x${(lin >>> 0).toString(16)}`);
    }
    this.fetchPage = lin & -4096;
    this.fetchXor = (pa ^ lin) & -4096;
  }

  /** Fetch the next instruction byte. */
  fetch8(): number {
    const lin = (this.csBase + this.eip) | 0;
    if ((lin & -4096) !== this.fetchPage) this.fetchRefill(lin);
    this.eip = (this.eip + 1) | 0;
    return this.u8[lin ^ this.fetchXor];
  }

  /** Fetch a sign-extended byte. */
  fetchS8(): number {
    return (this.fetch8() << 24) >> 24;
  }

  /** Fetch a 16-bit immediate (zero-extended). */
  fetch16(): number {
    const lin = (this.csBase + this.eip) | 0;
    if ((lin & -4096) === this.fetchPage && (lin & 0xfff) !== 0xfff) {
      this.eip = (this.eip + 2) | 0;
      return this.dv.getUint16(lin ^ this.fetchXor, true);
    }
    return this.fetch8() | (this.fetch8() << 8);
  }

  /** Fetch a 32-bit immediate. */
  fetch32(): number {
    const lin = (this.csBase + this.eip) | 0;
    if ((lin & -4096) === this.fetchPage && (lin & 0xfff) <= 0xffc) {
      this.eip = (this.eip + 4) | 0;
      return this.dv.getInt32(lin ^ this.fetchXor, true);
    }
    const a = this.fetch8(), b = this.fetch8(), c = this.fetch8(), d = this.fetch8();
    return a | (b << 8) | (c << 16) | (d << 24);
  }

  /**
   * Decode the memory operand of ModRM byte `m` (mod != 3), fetching SIB and
   * displacement, and return its *offset* (effective address before the segment
   * base). Sets `eaSeg` to the segment it uses, honouring overrides.
   */
  modrmOffset(m: number): number {
    const mod = m >> 6, rm = m & 7, regs = this.regs;
    let seg = DS, off: number;
    if ((this.pfx & P_A16) !== 0) return this.modrmOffset16(m);
    if (rm === 4) {
      const sib = this.fetch8();
      const base = sib & 7, idx = (sib >> 3) & 7;
      if (base === 5 && mod === 0) off = this.fetch32();
      else {
        off = regs[base];
        if (base === 4 || base === 5) seg = SS;
      }
      if (idx !== 4) off = (off + (regs[idx] << (sib >> 6))) | 0;
    } else if (rm === 5 && mod === 0) {
      off = this.fetch32();
    } else {
      off = regs[rm];
      if (rm === 5) seg = SS;
    }
    if (mod === 1) off = (off + this.fetchS8()) | 0;
    else if (mod === 2) off = (off + this.fetch32()) | 0;
    const ov = this.pfx >> P_SEG_SHIFT;
    this.eaSeg = ov !== 0 ? ov - 1 : seg;
    return off;
  }

  /** The offset of a 16-bit-addressing ModRM memory operand (sets eaSeg). */
  private modrmOffset16(m: number): number {
    const mod = m >> 6, rm = m & 7, r = this.regs16;
    let seg = DS, off: number;
    switch (rm) {
      case 0:
        off = r[6] + r[12];
        break; // BX+SI
      case 1:
        off = r[6] + r[14];
        break; // BX+DI
      case 2:
        off = r[10] + r[12];
        seg = SS;
        break; // BP+SI
      case 3:
        off = r[10] + r[14];
        seg = SS;
        break; // BP+DI
      case 4:
        off = r[12];
        break;
      case 5:
        off = r[14];
        break;
      case 6:
        if (mod === 0) off = this.fetch16();
        else {
          off = r[10];
          seg = SS;
        }
        break;
      default:
        off = r[6];
        break;
    }
    if (mod === 1) off += this.fetchS8();
    else if (mod === 2) off += this.fetch16();
    const ov = this.pfx >> P_SEG_SHIFT;
    this.eaSeg = ov !== 0 ? ov - 1 : seg;
    return off & 0xffff;
  }

  /** Decode the memory operand of ModRM `m` and return its linear address. */
  modrmAddr(m: number): number {
    const off = this.modrmOffset(m);
    return (off + this.sbase[this.eaSeg]) | 0;
  }

  /**
   * Like modrmAddr, for an operand the instruction writes: the segment must be
   * a writable data segment (a code segment or a null selector raises #GP(0)).
   */
  modrmAddrW(m: number): number {
    const off = this.modrmOffset(m);
    const seg = this.eaSeg;
    if ((this.sflags[seg] & 0x1a) !== 0x12) this.segWriteFault(seg);
    return (off + this.sbase[seg]) | 0;
  }

  /**
   * The writable-segment check of modrmAddrW, for instructions that must fetch
   * an immediate after the operand first (the fetch's own faults come first).
   */
  checkEaWrite(): void {
    const seg = this.eaSeg;
    if ((this.sflags[seg] & 0x1a) !== 0x12) this.segWriteFault(seg);
  }

  /** #GP(0) for a write through segment `seg` (#SS(0) for SS). */
  segWriteFault(seg: number): never {
    return this.fault(seg === SS ? Vec.SS : Vec.GP, 0);
  }

  /** Linear address for a string/implicit operand at `off` in the default-or-override segment. */
  segAddr(defSeg: number, off: number): number {
    const ov = this.pfx >> P_SEG_SHIFT;
    return (off + this.sbase[ov !== 0 ? ov - 1 : defSeg]) | 0;
  }

  // ---------------------------------------------------------------- run loop

  /**
   * Execute up to `budget` instructions. Returns an {@link Exit} code; on
   * Exit.Exception, `exitVector`/`exitError`/`exitCr2` describe it and EIP is
   * the faulting instruction (a fault) or the next one (a trap or INT n).
   */
  run(budget: number): ExitCode {
    this.stopRequested = false;
    let remaining = budget;
    while (remaining > 0) {
      // Instruction boundary between slices: external interrupts and single-step.
      if (this.irqCount !== 0 && (this.flags & IF) !== 0 && this.icount >= this.shadowUntil) {
        const v = this.takeIrq();
        if (!deliver(this, v, -1, Source.External)) return this.exitKind;
      }
      const stepping = (this.flags & TF) !== 0;
      let slice = remaining > 0x20000000 ? 0x20000000 : remaining;
      if (stepping || (this.irqCount !== 0 && this.icount < this.shadowUntil)) slice = 1;
      this.stepEvent = false;
      const code = this.runSlice(slice);
      const ran = this.sliceBudget - this.sliceLeft;
      this.icountBase += ran;
      remaining -= ran;
      this.sliceBudget = this.sliceLeft = 0;
      if (code === Exit.Budget) {
        // Single-step: #DB after an instruction that began with TF set, unless the
        // instruction itself delivered an exception or interrupt (SDM; Bochs and QEMU agree).
        if (stepping && ran === 1 && !this.stepEvent && this.exitVectors[Vec.DB] === 0) {
          this.dr[6] |= 0x4000; // DR6.BS
          if (!deliver(this, Vec.DB, -1, Source.Exception)) return this.exitKind;
        } else if (stepping && ran === 1 && !this.stepEvent) {
          this.dr[6] |= 0x4000;
          this.exitVector = Vec.DB;
          this.exitError = -1;
          this.exitTrap = true;
          return Exit.Exception;
        }
        continue;
      }
      if (code === SLICE_CUT) {
        if (this.stopRequested) return Exit.Stop;
        continue;
      }
      return code;
    }
    return Exit.Budget;
  }

  /** End the current slice after this instruction (interrupt window, stop request, TF set). */
  cutSlice(): void {
    if (this.sliceCut >= 0 || this.sliceLeft <= 0) return;
    this.sliceCut = this.sliceLeft - 1;
    this.sliceLeft = 1;
  }

  /** Run up to `budget` instructions (translated blocks or the interpreter) until an exit or a cut. */
  private runSlice(budget: number): ExitCode | typeof SLICE_CUT {
    this.sliceBudget = budget;
    this.sliceLeft = budget;
    this.sliceCut = -1;
    for (;;) {
      try {
        if (this.jit) {
          // Breakpoints are checked at each dispatch; blocks end before any breakpoint
          // address (jit.ts), and changing the set drops translated code.
          const bps = this.breakpoints.size === 0 ? null : this.breakpoints;
          while (this.sliceLeft > 0) {
            const eip = this.eip;
            this.instrStart = eip;
            const lin = (this.csBase + eip) | 0;
            if (bps !== null && bps.has(lin)) {
              if (lin !== this.bpSkip) {
                this.uncut();
                return Exit.Breakpoint;
              }
              this.bpSkip = NaN;
            }
            if ((lin & -4096) !== this.fetchPage) this.fetchRefill(lin);
            const pa = lin ^ this.fetchXor;
            let map = this.codeMap[pa >>> 12];
            if (map === undefined) map = this.codeMap[pa >>> 12] = new Int32Array(4096);
            const id = map[pa & 0xfff];
            if (id > 0) {
              const b = this.blocks[id];
              if (b !== null && b.lin === lin && b.n <= this.sliceLeft) {
                this.curBlock = b;
                b.fn(this);
                this.curBlock = null;
                continue;
              }
            } else if (id > -this.jitThreshold) map[pa & 0xfff] = id - 1;
            else if (id !== NO_BLOCK && this.compileAt(lin, pa, map)) continue;
            step(this);
            this.sliceLeft--;
          }
        } else if (this.breakpoints.size === 0) {
          while (this.sliceLeft > 0) {
            this.instrStart = this.eip;
            step(this);
            this.sliceLeft--;
          }
        } else {
          while (this.sliceLeft > 0) {
            const lin = (this.csBase + this.eip) | 0;
            if (this.breakpoints.has(lin)) {
              if (lin !== this.bpSkip) {
                this.uncut();
                return Exit.Breakpoint;
              }
              this.bpSkip = NaN;
            }
            this.instrStart = this.eip;
            step(this);
            this.sliceLeft--;
          }
        }
        return this.uncut() ? SLICE_CUT : Exit.Budget;
      } catch (e) {
        if (e !== CPU_EXIT) {
          this.abandonSlice();
          throw e;
        }
        const code = this.exitKind;
        this.exitKind = Exit.Exception;
        this.countBlockBeforeFault();
        if (this.retire) this.sliceLeft--;
        else this.eip = this.instrStart;
        this.fetchLimit = 0x7fffffff;
        this.pfx = 0;
        if (code === Exit.Exception && this.exitVectors[this.exitVector] === 0) {
          if (deliver(this, this.exitVector, this.exitError, this.exitSource)) {
            this.stepEvent = true;
            if (this.retire && this.deliveryFaulted) this.sliceLeft++; // a faulting INT did not retire
            if (this.sliceLeft > 0) continue;
            return this.uncut() ? SLICE_CUT : Exit.Budget;
          }
          // Delivery was intercepted or shut down: the instruction restarts.
          if (this.retire) {
            this.sliceLeft++;
            this.eip = this.instrStart;
          }
          this.uncut();
          const k = this.exitKind;
          this.exitKind = Exit.Exception;
          return k;
        }
        this.uncut();
        return code;
      }
    }
  }

  /**
   * Translate the block at `lin`/`pa`. Returns true when the block was made
   * (the loop then runs it); false marks the address as not translatable.
   */
  private compileAt(lin: number, pa: number, map: Int32Array): boolean {
    const b = translateBlock(this, lin, pa);
    if (b === null) {
      map[pa & 0xfff] = NO_BLOCK;
      return false;
    }
    const id = this.freeIds.length > 0 ? this.freeIds.pop()! : this.blocks.length;
    this.blocks[id] = b;
    map[pa & 0xfff] = id;
    const page = pa >>> 12;
    let list = this.pageBlocks.get(page);
    if (list === undefined) this.pageBlocks.set(page, list = []);
    list.push(id);
    this.blocksTranslated++;
    if (this.codePage[page] === 0) {
      this.codePage[page] = 1;
      this.unmapWrites(page);
    }
    return true;
  }

  /** Remove write-TLB entries that map physical page `page`. */
  private unmapWrites(page: number): void {
    if (this.tlbCount > this.tlbList.length) {
      this.flushTlb();
      return;
    }
    const list = this.tlbList, w = this.tlbW;
    for (let i = 0; i < this.tlbCount; i++) {
      const lp = list[i], e = w[lp];
      if (e !== 0 && (((e & -4096) ^ (lp << 12)) >>> 12) === page) w[lp] = 0;
    }
  }

  /**
   * Forget translated code in physical `[pa, pa+len)`: for writers that bypass
   * the CPU (devices, a hypervisor writing guest memory). The CPU's own writes
   * do this by themselves.
   */
  invalidateCode(pa: number, len = 1): void {
    for (let p = pa >>> 12; p <= (pa + len - 1) >>> 12 && p < this.codePage.length; p++) {
      if (this.codePage[p] !== 0) this.dropCodePage(p);
      else this.codeMap[p] = undefined; // forget counters and "not translatable" marks too
    }
  }

  /** Forget the translated blocks on physical `page` (it was written). */
  private dropCodePage(page: number): void {
    const ids = this.pageBlocks.get(page);
    if (ids !== undefined) {
      for (const id of ids) {
        this.blocks[id] = null;
        this.freeIds.push(id);
      }
      this.pageBlocks.delete(page);
    }
    this.codeMap[page] = undefined;
    this.codePage[page] = 0;
  }

  /**
   * Take back the count of the last retired instruction: for an embedder that
   * puts EIP back to a trap-type instruction (INT n) it stopped at, so that
   * running on re-executes it without counting it twice.
   */
  unretire(): void {
    this.icountBase--;
  }

  /** A fault inside a translated block: count the instructions it retired before the faulting one. */
  private countBlockBeforeFault(): void {
    if (this.curBlock === null) return;
    const k = this.curBlock.eips.indexOf(this.instrStart);
    if (k >= 0) this.sliceLeft -= k - this.blockDone;
    this.blockDone = 0;
    this.curBlock = null;
  }

  /**
   * Something other than the CPU threw through an instruction (a host hook:
   * the host killing its guest inside a page fault or a port write). Leave the
   * machine as a fault would, at the instruction it happened in, not retired —
   * with the retired count committed — whether that instruction ran in a
   * translated block or in the interpreter, so the two agree on EIP and on
   * virtual time.
   */
  private abandonSlice(): void {
    this.countBlockBeforeFault();
    this.uncut();
    this.eip = this.instrStart;
    this.fetchLimit = 0x7fffffff;
    this.pfx = 0;
    this.icountBase += this.sliceBudget - this.sliceLeft;
    this.sliceBudget = this.sliceLeft = 0;
  }

  /** Undo a slice cut: restore the real remaining budget. True if there was one. */
  private uncut(): boolean {
    if (this.sliceCut < 0) return false;
    this.sliceLeft = this.sliceCut + this.sliceLeft;
    this.sliceCut = -1;
    return true;
  }

  /**
   * Raise external interrupt `vector` (the embedder plays the interrupt
   * controller). It is delivered through the IDT at the next instruction
   * boundary where EFLAGS.IF is set and no STI/MOV SS shadow is in force.
   */
  raiseIrq(vector: number): void {
    const w = vector >> 5, b = 1 << (vector & 31);
    if ((this.irqPending[w] & b) === 0) {
      this.irqPending[w] |= b;
      this.irqCount++;
    }
    if ((this.flags & IF) !== 0) this.cutSlice();
  }

  /** Withdraw a pending external interrupt. */
  lowerIrq(vector: number): void {
    const w = vector >> 5, b = 1 << (vector & 31);
    if ((this.irqPending[w] & b) !== 0) {
      this.irqPending[w] &= ~b;
      this.irqCount--;
    }
  }

  /** Take the lowest pending interrupt vector off the pending set. */
  private takeIrq(): number {
    for (let w = 0; w < 8; w++) {
      const bits = this.irqPending[w];
      if (bits !== 0) {
        const i = 31 - Math.clz32(bits & -bits);
        this.irqPending[w] &= ~(1 << i);
        this.irqCount--;
        return (w << 5) | i;
      }
    }
    return 0;
  }

  /** Called when IF may have become 1 (STI, POPF, IRET): take a pending interrupt soon. */
  interruptWindow(): void {
    if (this.irqCount !== 0 && (this.flags & IF) !== 0) this.cutSlice();
  }

  /** Inhibit interrupts until after the next instruction (STI, MOV SS, POP SS). */
  setInterruptShadow(): void {
    this.shadowUntil = this.icount + 2;
  }

  /** Set the exit kind for a shutdown found outside an instruction (e.g. a triple fault). */
  setShutdown(message: string): void {
    this.exitMessage = message;
    this.exitKind = Exit.Shutdown;
  }

  /**
   * Resume from a breakpoint: the next `run` does not stop at the breakpoint
   * at the current instruction (it stops there again the next time round).
   */
  skipBreakpointOnce(): void {
    this.bpSkip = (this.csBase + this.eip) | 0;
  }

  /** Execute exactly one instruction (or stop at its exception), ignoring a breakpoint on it. */
  stepOne(): ExitCode {
    this.skipBreakpointOnce();
    const r = this.run(1);
    this.bpSkip = NaN;
    return r;
  }

  /** Time-stamp counter: virtual time from the retired-instruction count. */
  tsc(): bigint {
    return BigInt(this.icount + this.tscOffset);
  }

  /** POPF/IRET rules for which EFLAGS bits the current privilege may change. */
  writableFlags(o16: boolean): number {
    let m = CF | PF | AF | ZF | SF | TF | DF | OF | NT | AC | ID;
    if (this.cpl === 0) m |= IOPL;
    if (this.cpl <= ((this.flags & IOPL) >> 12)) m |= IF;
    if (o16) m &= 0xffff;
    return m & ~RF;
  }
}
