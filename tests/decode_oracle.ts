/**
 * Decoder cross-check: the CPU's instruction length and #UD decisions against
 * iced-x86, for seeded random byte strings.
 *
 * The CPU decodes inline (there is no separate length decoder to call), so its
 * length is measured by what it *fetches*. Paging is on; every linear page is
 * mapped (4 MiB PSE pages aliasing a 4 MiB scratch area of RAM) except the page
 * right after a "code page", which is not present. A candidate is placed so that
 * it ends exactly at that page boundary and run for one instruction at CPL 0:
 *
 * - with all `n` bytes of iced's length placed, the CPU must not take a #PF at
 *   the boundary (that would be a fetch of a byte the instruction does not own);
 * - with only the first `n - 1` bytes placed, it must take a #PF at the boundary
 *   (it needs the `n`-th byte), for `n >= 2`. Any other exception there means it
 *   started executing (checking operands) before it had fetched the whole
 *   instruction, which is wrong too: the fetch #PF has priority;
 * - when the instruction falls through (iced's FlowControl.Next) and completes,
 *   EIP must have advanced by exactly `n`.
 *
 * Data accesses land in the scratch alias, so only fetches past the instruction
 * can fault at the boundary (a random disp32 can hit the one absent page; every
 * failing check is therefore repeated at a second placement before it counts).
 * The CPU's state is restored before every run (registers, flags, segments,
 * CPL, CR0/CR3/CR4, descriptor-table registers, MSRs, and the FPU before x87
 * opcodes), so privileged instructions (MOV CR0, LGDT, SYSEXIT, ...) cannot
 * disturb the next candidate. Registers hold small values (ECX = 3 so REP and
 * LOOP end at once); the scratch RAM that all data accesses alias is not reset.
 *
 * What the CPU must do with each string depends on iced's verdict:
 *
 * - iced says invalid: the CPU must raise #UD, or #GP(0) for its 15-byte limit.
 *   iced reports an over-long instruction as invalid too, so #GP(0) is accepted
 *   when it can only be the limit: the string has at least 4 prefixes (nothing
 *   shorter can exceed 15 bytes) and, with only 14 bytes placed, the CPU faults
 *   fetching byte 15 (the limit trips on the fetch of byte 16, so it must have
 *   got that far). Over-long strings that are also invalid for other reasons
 *   may raise either. {@link tooLongForIced} labels the over-long ones.
 * - iced decodes an instruction the CPU claims to implement ({@link Verdict}
 *   `Claimed`, from iced's CPUID features, see {@link CLAIMED_FEATURES}): no #UD,
 *   and the same length.
 * - iced decodes an instruction of a feature this CPU does not have (MMX, SSE*,
 *   AVX*, 3DNow!, VMX, SMAP, ...): the CPU must raise #UD, which is what a P6
 *   without those features does (`MustUD`). A few have no CPUID bit a P6 could
 *   clear and are only reported (`ReportOnly`, see {@link REPORT_ONLY}).
 *
 * iced is run with options that make it decode as a P6-class CPU does (see
 * {@link ICED_OPTIONS}): the hint-NOP space 0F 18-1F as reserved NOPs, F3 0F BC/BD
 * as BSF/BSR, F3 0F 09 as WBINVD.
 *
 * The CPU has two decoders: the interpreter's and the block translator's
 * (`jit.ts`). By default the translator is off; with the `jit` option every
 * instruction it accepts is translated on first sight and run translated (see
 * {@link CrossCheckOptions.jit} for the extra check that needs).
 *
 * CLI: `deno run -A tests/decode_oracle.ts [count] [seed] [--jit]` prints the
 * mismatches grouped by opcode.
 *
 * @module
 */

import { vectorName } from "../lib/x86/flags.ts";
import process from "node:process";
import {
  Code,
  CpuidFeature,
  Decoder,
  DecoderError,
  DecoderOptions,
  FlowControl,
  Formatter,
  FormatterSyntax,
  Instruction,
  Mnemonic,
} from "iced-x86";
import { CPU, CR0_PG, CR4_PSE, Exit } from "../lib/x86/cpu.ts";
import { PhysicalMemory } from "../lib/x86/memory.ts";

// ------------------------------------------------------------------ iced side

/**
 * iced decoder options: 32-bit decoding as a P6-class CPU sees it.
 * - `ForceReservedNop`: 0F 18-1F (and 0F 0D) decode as reserved NOPs with a
 *   ModRM operand. On a CPU without SSE/MPX/CET those encodings (PREFETCHh,
 *   BNDxx, ENDBR32, ...) *are* hint NOPs, which is what our CPU executes.
 * - `NoMPFX_0FBC` / `NoMPFX_0FBD`: F3 0F BC/BD are BSF/BSR on a CPU without
 *   BMI1/LZCNT (the REP prefix is ignored), not TZCNT/LZCNT.
 * - `NoWbnoinvd`: F3 0F 09 is WBINVD on a CPU without WBNOINVD.
 */
export const ICED_OPTIONS: number = DecoderOptions.ForceReservedNop | DecoderOptions.NoMPFX_0FBC |
  DecoderOptions.NoMPFX_0FBD | DecoderOptions.NoWbnoinvd;

/**
 * The iced CPUID features this CPU implements: the 8086..486 integer ISA, the
 * x87 (8087/287/387 instructions; FENI/FDISI/FSETPM are the NOPs a 387+ makes of
 * them), and the P5/P6 additions it advertises in CPUID (CMOV, CX8, TSC, MSR,
 * SEP, FXSR), plus CPUID itself, the multi-byte/hint NOPs (0F 1F, 0F 18-1F) and
 * PAUSE (F3 90 is a NOP on every CPU). An instruction is claimed iff *all* its
 * features are in this set.
 *
 * Not in the set: the "_ONLY" features (instructions a P6 no longer has), X64,
 * and every extension the CPU does not advertise (MMX, SSE..., AVX..., 3DNow!,
 * SYSCALL, RDTSCP, VMX, SMX, SVM, MONITOR, XSAVE, RTM, SMAP, CET, ...).
 */
export const CLAIMED_FEATURES: ReadonlySet<number> = new Set<number>([
  CpuidFeature.INTEL8086,
  CpuidFeature.INTEL186,
  CpuidFeature.INTEL286,
  CpuidFeature.INTEL386,
  CpuidFeature.INTEL486,
  CpuidFeature.FPU,
  CpuidFeature.FPU287,
  CpuidFeature.FPU387,
  CpuidFeature.CMOV,
  CpuidFeature.CX8,
  CpuidFeature.TSC,
  CpuidFeature.MSR,
  CpuidFeature.SEP,
  CpuidFeature.FXSR,
  CpuidFeature.CPUID,
  CpuidFeature.MULTIBYTENOP,
  CpuidFeature.PAUSE,
]);

/**
 * iced codes that decode as valid but must raise #UD architecturally even
 * though their features are claimed: UD0/UD1/UD2 exist to raise #UD, and RSM
 * raises #UD outside system-management mode (there is no SMM here).
 */
export const ARCH_UD_MNEMONICS: ReadonlySet<number> = new Set<number>([
  Mnemonic.Ud0,
  Mnemonic.Ud1,
  Mnemonic.Ud2,
  Mnemonic.Rsm,
]);

/**
 * Unclaimed instructions for which #UD is *not* asserted, only counted:
 * - RDPMC (0F 33): every P6 has it, with no CPUID bit to turn it off, so #UD
 *   is not what a P6 does; the CPU simply does not implement it.
 * - 0F 0D (AMD PREFETCH/PREFETCHW; with ForceReservedNop iced calls it a
 *   reserved NOP): a hint NOP on later Intel parts, #UD on early P6 parts; either
 *   is defensible for this CPU.
 */
export const REPORT_ONLY: ReadonlySet<number> = new Set<number>([
  Code.Rdpmc,
  Code.Reservednop_rm16_r16_0F0D,
  Code.Reservednop_rm32_r32_0F0D,
]);

/** What the CPU must do with an instruction iced decodes as valid. */
export const Verdict = {
  /** Implemented: no #UD, and the length must agree with iced. */
  Claimed: 0,
  /**
   * Must raise #UD: an instruction of a feature this CPU does not implement (and
   * does not advertise in CPUID: MMX, SSE*, AVX*, 3DNow!, VMX, SYSCALL, ...), whose
   * opcode is therefore reserved here — #UD is exactly what a P6 without the
   * feature does — or one that is #UD architecturally ({@link ARCH_UD_MNEMONICS}).
   */
  MustUD: 1,
  /** Unclaimed; #UD is expected but not asserted (see {@link REPORT_ONLY}). */
  ReportOnly: 2,
} as const;
/** A value of {@link Verdict}. */
export type VerdictValue = typeof Verdict[keyof typeof Verdict];

const verdictCache = new Map<number, VerdictValue>();

/** The {@link Verdict} for an iced instruction (cached per Code). */
export function verdictOf(instr: Instruction): VerdictValue {
  const code = instr.code;
  let v = verdictCache.get(code);
  if (v === undefined) {
    if (REPORT_ONLY.has(code)) v = Verdict.ReportOnly;
    else if (ARCH_UD_MNEMONICS.has(instr.mnemonic)) v = Verdict.MustUD;
    else {
      const feats = instr.cpuidFeatures();
      v = Verdict.Claimed;
      for (let i = 0; i < feats.length; i++) {
        if (!CLAIMED_FEATURES.has(feats[i])) v = Verdict.MustUD;
      }
    }
    verdictCache.set(code, v);
  }
  return v;
}

const fallThroughCache = new Map<number, boolean>();

/** Does the instruction continue at the next one (iced's FlowControl.Next)? Cached per Code. */
export function fallsThrough(instr: Instruction): boolean {
  const code = instr.code;
  let v = fallThroughCache.get(code);
  if (v === undefined) fallThroughCache.set(code, v = instr.flowControl === FlowControl.Next);
  return v;
}

/** The eleven legacy prefix bytes. */
export const PREFIXES: readonly number[] = [
  0x66,
  0x67,
  0xf2,
  0xf3,
  0xf0,
  0x26,
  0x2e,
  0x36,
  0x3e,
  0x64,
  0x65,
];
const IS_PREFIX = new Uint8Array(256);
for (const p of PREFIXES) IS_PREFIX[p] = 1;

/** Number of leading legacy prefix bytes of `s`. */
export function prefixCount(s: Uint8Array): number {
  let p = 0;
  while (p < s.length && IS_PREFIX[s[p]] !== 0) p++;
  return p;
}

/**
 * For a string iced calls invalid: is it merely longer than 15 bytes? iced
 * reports both "no such instruction" and "more than 15 bytes" as invalid, but
 * the CPU answers the second with #GP(0) (as real processors do). Redundant
 * prefixes are collapsed to one of each kind (last segment override, last of
 * F2/F3, 66, 67, F0 — the same meaning to the decoder), and the rest decoded
 * without iced's validity checks (so that, say, a misplaced LOCK does not hide
 * the length); if the original would be longer than 15 bytes, it is too long.
 * Whether #GP(0) or #UD wins for an over-long instruction that is also invalid
 * is not something this test asserts: both are accepted.
 */
export function tooLongForIced(s: Uint8Array): boolean {
  const p = prefixCount(s);
  if (p < 4) return false; // no instruction is longer than 12 bytes before prefixes
  // Shortest possible rest: an opcode byte, two for the 0F map, four for 0F 38/3A (+ModRM).
  const minRest = s[p] !== 0x0f ? 1 : s[p + 1] === 0x38 || s[p + 1] === 0x3a ? 4 : 2;
  if (p + minRest > 15) return true;
  let seg = -1, rep = -1, o16 = false, a16 = false, lock = false;
  for (let i = 0; i < p; i++) {
    const b = s[i];
    if (b === 0x66) o16 = true;
    else if (b === 0x67) a16 = true;
    else if (b === 0xf0) lock = true;
    else if (b === 0xf2 || b === 0xf3) rep = b;
    else seg = b;
  }
  const canon: number[] = [];
  if (seg >= 0) canon.push(seg);
  if (o16) canon.push(0x66);
  if (a16) canon.push(0x67);
  if (lock) canon.push(0xf0);
  if (rep >= 0) canon.push(rep);
  const buf = new Uint8Array(canon.length + 32); // zero padding past the string
  buf.set(canon);
  buf.set(s.subarray(p), canon.length);
  const d = new Decoder(32, buf, ICED_OPTIONS | DecoderOptions.NoInvalidCheck);
  const instr = d.decode();
  const long = instr.code !== Code.INVALID && instr.length - canon.length + p > 15;
  instr.free();
  d.free();
  return long;
}

// ------------------------------------------------------------------ CPU side

/** Where a candidate is placed: the code page and the absent page after it. */
export interface Placement {
  /** Linear address of the (mapped) code page. */
  readonly codeLin: number;
  /** Linear address of the first byte of the absent page (codeLin + 4096). */
  readonly boundary: number;
  /** Physical address of the code page. */
  readonly codePhys: number;
  /** Physical address of the page table for the code page's 4 MiB region. */
  readonly ptPhys: number;
}

/** Result of one run, summarized. */
export const Outcome = {
  /** #UD. */
  UD: 0,
  /** #PF with CR2 = the boundary: the CPU fetched past the placed bytes. */
  FetchPF: 1,
  /** #GP(0) (the CPU's 15-byte limit, among other causes). */
  GP0: 2,
  /** Anything else: the instruction was decoded in full and did something. */
  Other: 3,
  /** The emulator threw a JavaScript error (a bug in the CPU). */
  Threw: 4,
} as const;
/** A value of {@link Outcome}. */
export type OutcomeValue = typeof Outcome[keyof typeof Outcome];

const SCRATCH = 4 << 20; // PSE pages alias physical 0 .. 4 MiB
const PD_PHYS = SCRATCH;
const RAM_SIZE = SCRATCH + 5 * 4096;
/** Initial general registers: small, distinct, far from the code regions. */
const INIT_REGS = new Int32Array([
  0x00011000, // EAX
  0x00000003, // ECX: small, so REP/LOOP finish at once
  0x00002000, // EDX: port 0x2000 (nothing there)
  0x00013000, // EBX
  0x00018000, // ESP
  0x00019000, // EBP
  0x0001a000, // ESI
  0x0001b000, // EDI
]);

/** The two placements (the second re-checks failures; see the module comment). */
export const PLACEMENTS: readonly Placement[] = [
  {
    codeLin: 0x6b5ff000,
    boundary: 0x6b600000,
    codePhys: SCRATCH + 3 * 4096,
    ptPhys: SCRATCH + 1 * 4096,
  },
  {
    codeLin: 0x2c9ff000,
    boundary: 0x2ca00000,
    codePhys: SCRATCH + 4 * 4096,
    ptPhys: SCRATCH + 2 * 4096,
  },
];

/** Does the opcode of `s` (after prefixes) use the FPU state (x87, WAIT, 0F AE)? */
function touchesFpu(s: Uint8Array): boolean {
  const p = prefixCount(s);
  const op = s[p];
  return (op >= 0xd8 && op <= 0xdf) || op === 0x9b || (op === 0x0f && s[p + 1] === 0xae);
}

/**
 * A CPU set up for length measurement: paging on, all of linear memory mapped
 * except the page after each placement's code page.
 */
export class Harness {
  /** The CPU under test. */
  readonly cpu: CPU;
  /** Its RAM. */
  readonly mem: PhysicalMemory;
  /** Error message when the last run threw. */
  thrown = "";
  /** Exit code of the last run (-1 when it threw). */
  lastExit = 0;
  private readonly sreg0: Uint16Array;
  private readonly sbase0: Int32Array;
  private readonly slimit0: Int32Array;
  private readonly sflags0: Int32Array;
  private readonly cr0: number;
  private readonly cr4: number;

  /**
   * Build the machine and its page tables.
   * @param jit false: interpret every instruction (`cpu.jit = false`); true:
   *   translate every instruction the block translator accepts on first sight
   *   (`jitThreshold = 0`), so that `run` exercises the translator's decoder.
   */
  constructor(readonly jit = false) {
    this.mem = new PhysicalMemory(RAM_SIZE);
    const cpu = this.cpu = new CPU(this.mem);
    cpu.exitVectors.fill(1); // every exception leaves run() (none is delivered via the IDT)
    cpu.jit = jit;
    if (jit) cpu.jitThreshold = 0;
    const m = this.mem;
    for (let i = 0; i < 1024; i++) m.write32(PD_PHYS + i * 4, 0x87); // 4 MiB, P RW US PS
    for (const pl of PLACEMENTS) {
      const region = pl.codeLin >>> 22;
      m.write32(PD_PHYS + region * 4, pl.ptPhys | 7);
      for (let i = 0; i < 1024; i++) m.write32(pl.ptPhys + i * 4, (i << 12) | 7);
      const idx = (pl.codeLin >>> 12) & 0x3ff;
      if (idx === 1023) throw new Error("code page must not end its 4 MiB region");
      m.write32(pl.ptPhys + idx * 4, pl.codePhys | 7);
      m.write32(pl.ptPhys + (idx + 1) * 4, 0);
    }
    cpu.cr3 = PD_PHYS;
    cpu.cr4 |= CR4_PSE;
    cpu.cr0 |= CR0_PG;
    cpu.flushTlb();
    this.cr0 = cpu.cr0;
    this.cr4 = cpu.cr4;
    this.sreg0 = cpu.sreg.slice();
    this.sbase0 = cpu.sbase.slice();
    this.slimit0 = cpu.slimit.slice();
    this.sflags0 = cpu.sflags.slice();
  }

  /** Restore everything an instruction may have changed (except scratch RAM). */
  private restore(fpu: boolean): void {
    const cpu = this.cpu;
    cpu.regs.set(INIT_REGS);
    cpu.setEflags(2);
    if (cpu.cpl !== 0) cpu.setCpl(0);
    for (let s = 0; s < 6; s++) {
      if (
        cpu.sreg[s] !== this.sreg0[s] || cpu.sbase[s] !== this.sbase0[s] ||
        cpu.slimit[s] !== this.slimit0[s] || cpu.sflags[s] !== this.sflags0[s]
      ) {
        cpu.setSegFlat(s, this.sreg0[s], 0);
      }
    }
    if (cpu.cr0 !== this.cr0 || cpu.cr3 !== PD_PHYS || cpu.cr4 !== this.cr4) {
      cpu.cr0 = this.cr0;
      cpu.cr3 = PD_PHYS;
      cpu.cr4 = this.cr4;
      cpu.flushTlb();
    }
    cpu.gdtBase = 0;
    cpu.gdtLimit = 0xffff;
    cpu.idtBase = 0;
    cpu.idtLimit = 0xffff;
    cpu.ldtr = cpu.ldtBase = cpu.ldtLimit = 0;
    cpu.tr = cpu.trBase = cpu.trLimit = 0;
    if (cpu.msr.size !== 0) cpu.msr.clear();
    cpu.tscOffset = 0;
    cpu.fetchLimit = 0x7fffffff;
    cpu.pfx = 0;
    if (fpu) cpu.fpu.reset();
  }

  /**
   * Place the first `k` bytes of `s` so they end at `pl.boundary`, run one
   * instruction, and summarize what happened.
   */
  run(s: Uint8Array, k: number, pl: Placement): OutcomeValue {
    return this.runAt(s, k, pl, 4096 - k);
  }

  /**
   * Place the first `k` bytes of `s` at offset `off` of the code page (the
   * rest of the page keeps what it holds), run one instruction from there, and
   * summarize what happened. In JIT mode the code page's translations are
   * dropped first and the instruction is run twice, the first run only to let
   * the translator see the address (its first visit is always interpreted).
   */
  runAt(s: Uint8Array, k: number, pl: Placement, off: number): OutcomeValue {
    const cpu = this.cpu;
    const fpu = touchesFpu(s);
    const u8 = cpu.u8, at = pl.codePhys + off;
    for (let i = 0; i < k; i++) u8[at + i] = s[i];
    if (this.jit) {
      cpu.invalidateCode(pl.codePhys, 4096);
      // invalidateCode only acts on pages that hold blocks; an address the translator
      // refused before stays refused. Forget the page's marks too (private field).
      const priv = cpu as unknown as { codeMap?: (Int32Array | undefined)[] };
      if (priv.codeMap !== undefined) priv.codeMap[pl.codePhys >>> 12] = undefined;
      this.restore(fpu);
      cpu.eip = (pl.codeLin + off) | 0;
      try {
        cpu.run(1);
      } catch {
        // reported by the real run below
      }
      for (let i = 0; i < k; i++) u8[at + i] = s[i]; // in case the first run wrote there
    }
    this.restore(fpu);
    cpu.eip = (pl.codeLin + off) | 0;
    let ex: number;
    try {
      ex = cpu.run(1);
    } catch (e) {
      const where = e instanceof Error
        ? (e.stack ?? "").split("\n").find((l) => /lib\/x86/.test(l))?.trim() ?? ""
        : "";
      this.thrown = e instanceof Error ? `${e.name}: ${e.message} ${where}` : String(e);
      this.lastExit = -1;
      cpu.fetchLimit = 0x7fffffff;
      cpu.fetchPage = 1;
      cpu.pfx = 0;
      return Outcome.Threw;
    }
    this.lastExit = ex;
    if (ex !== Exit.Exception) return Outcome.Other;
    const v = cpu.exitVector;
    if (v === 6 && !cpu.exitTrap) return Outcome.UD; // (INT 6 is a trap with vector 6)
    if (v === 14 && cpu.exitCr2 === pl.boundary) return Outcome.FetchPF;
    if (v === 13 && cpu.exitError === 0) return Outcome.GP0;
    return Outcome.Other;
  }

  /** Run like {@link Harness.runAt} and describe the result in words. */
  describe(
    s: Uint8Array,
    k: number,
    pl: Placement = PLACEMENTS[0],
    off: number = 4096 - k,
  ): string {
    const o = this.runAt(s, k, pl, off);
    const cpu = this.cpu;
    if (o === Outcome.Threw) return `threw ${this.thrown}`;
    if (o === Outcome.FetchPF) return `#PF fetching byte ${k + 1}`;
    if (this.lastExit === Exit.Shutdown) return `Shutdown (${cpu.exitMessage})`;
    if (this.lastExit !== Exit.Exception) {
      const d = (cpu.eip - pl.codeLin - off) | 0;
      return `executed (${EXIT_NAMES[this.lastExit]}, EIP ${d < 0 ? "" : "+"}${d})`;
    }
    const v = cpu.exitVector;
    const name = vectorName(v);
    const err = cpu.exitError >= 0 ? `(${cpu.exitError.toString(16)})` : "";
    const cr2 = v === 14 ? ` cr2=${(cpu.exitCr2 >>> 0).toString(16)}` : "";
    return `${cpu.exitTrap ? "trap " : ""}${name}${err}${cr2}`;
  }

  /**
   * The CPU's behavioural length: the smallest `k` such that with the first
   * `k` bytes placed it does not fetch beyond them (it executed, or raised
   * something other than a fetch #PF). 17 if it always wants more.
   */
  cpuLength(s: Uint8Array, pl: Placement = PLACEMENTS[0]): number {
    for (let k = 1; k <= 16; k++) {
      if (this.run(s, k, pl) !== Outcome.FetchPF) return k;
    }
    return 17;
  }
}

const EXIT_NAMES = ["Budget", "Halt", "Exception", "Breakpoint", "Shutdown", "Stop"];

// ------------------------------------------------------------------ random strings

/** Length of every generated string. */
export const STRING_LEN = 16;

/** A small, fast, seeded PRNG (sfc32) returning uint32s. */
export function sfc32(seed: number): () => number {
  let a = 0x9e3779b9, b = 0x243f6a88, c = 0xb7e15162, d = seed | 0;
  const next = (): number => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return t >>> 0;
  };
  for (let i = 0; i < 16; i++) next();
  return next;
}

/** Opcodes that accept LOCK (with a memory destination, for the right /r). */
const LOCKABLE_1 = [
  0x00,
  0x01,
  0x08,
  0x09,
  0x10,
  0x11,
  0x18,
  0x19,
  0x20,
  0x21,
  0x28,
  0x29,
  0x30,
  0x31,
  0x80,
  0x81,
  0x82,
  0x83,
  0x86,
  0x87,
  0xf6,
  0xf7,
  0xfe,
  0xff,
];
const LOCKABLE_0F = [0xab, 0xb3, 0xbb, 0xba, 0xb0, 0xb1, 0xc0, 0xc1, 0xc7];

/**
 * Fill `out` (16 bytes) with the next candidate. The mix: 30% uniform bytes,
 * 25% 0F-map, 15% 1-4 random prefixes, 15% x87 (D8-DF, any ModRM), 10% LOCK
 * forms (F0 among other prefixes, lockable opcodes, mostly memory ModRM), 5%
 * long prefix runs (4-15 prefixes, for the 15-byte limit).
 */
export function nextString(rng: () => number, out: Uint8Array): void {
  for (let i = 0; i < STRING_LEN; i += 4) {
    const r = rng();
    out[i] = r;
    out[i + 1] = r >>> 8;
    out[i + 2] = r >>> 16;
    out[i + 3] = r >>> 24;
  }
  const cat = rng() % 100;
  const pfx = (at: number, n: number): number => {
    for (let i = 0; i < n; i++) out[at + i] = PREFIXES[rng() % PREFIXES.length];
    return at + n;
  };
  if (cat < 30) return;
  if (cat < 55) {
    out[0] = 0x0f;
    return;
  }
  if (cat < 70) {
    const p = pfx(0, 1 + (rng() & 3));
    if ((rng() & 1) === 0) out[p] = 0x0f;
    return;
  }
  if (cat < 85) {
    const p = (rng() % 10) < 3 ? pfx(0, 1 + (rng() & 1)) : 0;
    out[p] = 0xd8 + (rng() & 7);
    return;
  }
  if (cat < 95) {
    const n = 1 + rng() % 3;
    const p = pfx(0, n);
    out[rng() % n] = 0xf0; // LOCK somewhere in the prefix run
    let m: number;
    if ((rng() & 1) === 0) {
      out[p] = LOCKABLE_1[rng() % LOCKABLE_1.length];
      m = p + 1;
    } else {
      out[p] = 0x0f;
      out[p + 1] = LOCKABLE_0F[rng() % LOCKABLE_0F.length];
      m = p + 2;
    }
    if ((rng() & 3) !== 0) out[m] &= 0xbf; // memory operand (mod 0..2) most of the time
    return;
  }
  const p = pfx(0, 4 + rng() % 12);
  if (p < STRING_LEN && (rng() & 1) === 0) out[p] = 0x0f;
}

// ------------------------------------------------------------------ the check

/** Kinds of disagreement. */
export type MismatchKind =
  | "ud-on-claimed" // iced: valid and claimed; CPU: #UD
  | "overfetch" // claimed; CPU fetched past iced's length
  | "underfetch" // claimed; CPU finished (or #UD) before iced's last byte
  | "fault-before-fetch" // claimed; CPU raised an execution fault before fetching the last byte
  | "eip-mismatch" // claimed, falls through, executed; EIP did not advance by iced's length
  | "invalid-not-ud" // iced: invalid; CPU did something other than #UD
  | "too-long-not-gp" // iced: too long (>15 bytes); CPU neither #GP(0) nor #UD
  | "must-ud-not-ud" // iced: valid, unclaimed or architecturally #UD; CPU: not #UD
  | "report-only-not-ud" // iced: valid, unclaimed, not asserted; CPU: not #UD
  | "threw"; // the emulator threw a JavaScript error

/** One disagreement, with what both sides said. */
export interface Mismatch {
  /** Index of the string in its run. */
  index: number;
  /** The string (16 bytes) in hex. */
  bytes: string;
  /** What disagreed. */
  kind: MismatchKind;
  /** Opcode key for grouping, e.g. "66 0F AE /0 mem". */
  group: string;
  /** iced's disassembly ("(bad)" when invalid). */
  iced: string;
  /** iced's Code name. */
  icedCode: string;
  /** iced's CPUID features. */
  features: string;
  /** iced's length (0 when invalid). */
  icedLen: number;
  /** The CPU's behavioural length (see {@link Harness.cpuLength}). */
  cpuLen: number;
  /** What the CPU did with `cpuLen` bytes placed ("" when it wanted more than 16). */
  cpuAt: string;
  /** What the CPU did with the bytes the check placed. */
  cpu: string;
}

/** Totals and mismatches of a {@link crossCheck} run. */
export interface CrossCheckResult {
  /** Seed of the run. */
  seed: number;
  /** Strings checked. */
  count: number;
  /** Strings iced decoded as claimed instructions (length compared). */
  claimed: number;
  /** Strings iced decoded as invalid. */
  invalid: number;
  /** ...of which too long (> 15 bytes). */
  tooLong: number;
  /** Strings iced decoded as unclaimed / architecturally-#UD instructions. */
  mustUD: number;
  /** Strings iced decoded as report-only instructions. */
  reportOnly: number;
  /** Asserted mismatches (kept up to `maxRecords`). */
  mismatches: Mismatch[];
  /** Number of asserted mismatches. */
  mismatchCount: number;
  /** Report-only disagreements (kept up to `maxRecords`). */
  notes: Mismatch[];
  /** Number of report-only disagreements. */
  noteCount: number;
  /** Counts of every disagreement (asserted and report-only) by group key. */
  groups: Map<string, { count: number; example: Mismatch }>;
  /** Blocks the translator made (JIT mode: how often the translated path was exercised). */
  jitBlocks: number;
  /** Wall time in milliseconds. */
  ms: number;
}

const hex = (s: Uint8Array): string =>
  Array.from(s, (b) => b.toString(16).padStart(2, "0")).join(" ");
const h2 = (b: number | undefined): string =>
  b === undefined ? ".." : b.toString(16).toUpperCase().padStart(2, "0");

/** ModRM-group opcodes (the reg field selects the instruction). */
const GROUP_1 = new Set([
  0x80,
  0x81,
  0x82,
  0x83,
  0x8f,
  0xc0,
  0xc1,
  0xc6,
  0xc7,
  0xd0,
  0xd1,
  0xd2,
  0xd3,
  0xf6,
  0xf7,
  0xfe,
  0xff,
]);
const GROUP_0F = new Set([0x00, 0x01, 0x0d, 0x18, 0x71, 0x72, 0x73, 0xae, 0xb9, 0xba, 0xc7]);

/**
 * A grouping key from the raw bytes: the prefixes that change meaning (66 67
 * F0 F2 F3), the opcode, and for ModRM groups and x87 the /reg and mod.
 */
export function opcodeKey(s: Uint8Array): string {
  const p = prefixCount(s);
  const seen: string[] = [];
  let rep = "";
  for (let i = 0; i < p; i++) {
    const b = s[i];
    if (b === 0xf2 || b === 0xf3) rep = h2(b);
    else if ((b === 0x66 || b === 0x67 || b === 0xf0) && !seen.includes(h2(b))) seen.push(h2(b));
  }
  seen.sort();
  if (rep) seen.push(rep);
  if (p >= 4) seen.unshift("4+pfx"); // long prefix runs: the 15-byte limit is in play
  const op = s[p];
  let key: string;
  let m: number;
  let grouped: boolean;
  if (op === 0x0f) {
    const op2 = s[p + 1];
    if (op2 === 0x38 || op2 === 0x3a) {
      key = `0F ${h2(op2)} ${h2(s[p + 2])}`;
      m = s[p + 3];
      grouped = false;
    } else {
      key = `0F ${h2(op2)}`;
      m = s[p + 2];
      grouped = GROUP_0F.has(op2);
    }
  } else {
    key = h2(op);
    m = s[p + 1];
    if (op >= 0xd8 && op <= 0xdf) {
      key += m >= 0xc0 ? ` ${h2(m)}` : ` /${(m >> 3) & 7} mem`;
      return [...seen, key].join(" ");
    }
    grouped = GROUP_1.has(op);
  }
  if (grouped && m !== undefined) key += ` /${(m >> 3) & 7} ${m >= 0xc0 ? "reg" : "mem"}`;
  return [...seen, key].join(" ");
}

/** Options for {@link crossCheck}. */
export interface CrossCheckOptions {
  /** Keep at most this many mismatch and note records (counts are exact). Default 2000. */
  maxRecords?: number;
  /** Strings per iced Decoder batch. Default 4096. */
  batch?: number;
  /**
   * Exercise the block translator instead of the interpreter (see
   * {@link Harness}). It adds a check the page-boundary probe cannot make for
   * translated code (the translator reads code from physical memory and never
   * past the page end, so it falls back to the interpreter instead of
   * faulting): the instruction is also run from the middle of the page,
   * followed by HLTs (which the translator leaves to the interpreter, so the
   * block is that one instruction), and a fall-through instruction must end
   * exactly `n` bytes on. Default false.
   */
  jit?: boolean;
}

/** Offset in the code page of the mid-page placement (JIT mode). */
const MID = 0x800;

/**
 * Check `count` strings from seed `seed`: decode each with iced, run it on the
 * CPU as described in the module comment, and collect the disagreements.
 */
export function crossCheck(
  seed: number,
  count: number,
  options: CrossCheckOptions = {},
): CrossCheckResult {
  const t0 = performance.now();
  const maxRecords = options.maxRecords ?? 2000;
  const batch = options.batch ?? 4096;
  const jit = options.jit ?? false;
  let h = new Harness(jit);
  const rng = sfc32(seed);
  const res: CrossCheckResult = {
    seed,
    count,
    claimed: 0,
    invalid: 0,
    tooLong: 0,
    mustUD: 0,
    reportOnly: 0,
    mismatches: [],
    mismatchCount: 0,
    notes: [],
    noteCount: 0,
    groups: new Map(),
    jitBlocks: 0,
    ms: 0,
  };
  const formatter = new Formatter(FormatterSyntax.Nasm);
  const instr = new Instruction();
  const buf = new Uint8Array(batch * STRING_LEN);
  const [A, B] = PLACEMENTS;

  /** Check string `s` at placement `pl`; null when the CPU agrees. */
  const check = (
    s: Uint8Array,
    code: number,
    n: number,
    next: boolean,
    verdict: VerdictValue | -1,
    tooLong: boolean,
    pl: Placement,
  ): MismatchKind | null => {
    if (code === Code.INVALID) {
      const o = h.run(s, STRING_LEN, pl);
      if (o === Outcome.UD) return null;
      if (o === Outcome.Threw) return "threw";
      // #GP(0) is the CPU's 15-byte limit iff it had to fetch byte 15 to get there
      // (the limit can only trip on the fetch of byte 16). See the module comment.
      if (
        o === Outcome.GP0 && prefixCount(s) >= 4 && h.run(s, 14, pl) === Outcome.FetchPF
      ) return null;
      return tooLong ? "too-long-not-gp" : "invalid-not-ud";
    }
    if (verdict !== Verdict.Claimed) {
      const o = h.run(s, STRING_LEN, pl);
      if (o === Outcome.UD) return null;
      if (o === Outcome.Threw) return "threw";
      return verdict === Verdict.MustUD ? "must-ud-not-ud" : "report-only-not-ud";
    }
    const o = h.run(s, n, pl);
    if (o === Outcome.UD) return "ud-on-claimed";
    if (o === Outcome.FetchPF) return "overfetch";
    if (o === Outcome.Threw) return "threw";
    if (next && h.lastExit === Exit.Budget && h.cpu.eip !== pl.boundary) return "eip-mismatch";
    if (jit) {
      const u8 = h.cpu.u8, t = pl.codePhys + MID + n;
      for (let i = 0; i < STRING_LEN; i++) u8[t + i] = 0xf4; // HLT trailer
      const o3 = h.runAt(s, n, pl, MID);
      if (o3 === Outcome.Threw) return "threw";
      if (o3 === Outcome.UD) return "ud-on-claimed";
      if (next && h.lastExit === Exit.Budget && h.cpu.eip !== ((pl.codeLin + MID + n) | 0)) {
        return "eip-mismatch";
      }
    }
    if (n >= 2) {
      const o2 = h.run(s, n - 1, pl);
      if (o2 === Outcome.Threw) return "threw";
      if (o2 !== Outcome.FetchPF) {
        // An exception other than #UD without byte n: the instruction is executing
        // (checking its operands) before it is fully fetched; a fetch #PF must win.
        return o2 === Outcome.GP0 || (o2 === Outcome.Other && h.lastExit === Exit.Exception)
          ? "fault-before-fetch"
          : "underfetch";
      }
    }
    return null;
  };

  const record = (i: number, s: Uint8Array, kind: MismatchKind, code: number, n: number): void => {
    const thrown = h.thrown;
    const cpuLen = h.cpuLength(s);
    const d = new Decoder(32, s, ICED_OPTIONS);
    const ins = d.decode();
    const feats = Array.from(ins.cpuidFeatures(), (f) => CpuidFeature[f]).join(",");
    const text = code === Code.INVALID ? "(bad)" : formatter.format(ins);
    ins.free();
    d.free();
    const placed = code === Code.INVALID || kind === "must-ud-not-ud" ||
        kind === "report-only-not-ud"
      ? STRING_LEN
      : kind === "underfetch" || kind === "fault-before-fetch"
      ? n - 1
      : n;
    const m: Mismatch = {
      index: i,
      bytes: hex(s),
      kind,
      group: `${kind}: ${opcodeKey(s)}`,
      iced: text,
      icedCode: Code[code],
      features: code === Code.INVALID ? "" : feats,
      icedLen: code === Code.INVALID ? 0 : n,
      cpuLen,
      cpuAt: cpuLen <= STRING_LEN ? h.describe(s, cpuLen) : "",
      cpu: kind === "threw"
        ? `threw ${thrown}`
        : `${h.describe(s, placed)} with ${placed} bytes placed` +
          (jit && kind === "eip-mismatch"
            ? `; mid-page, HLTs after: ${h.describe(s, n, PLACEMENTS[0], MID)}`
            : ""),
    };
    const note = kind === "report-only-not-ud";
    if (note) {
      res.noteCount++;
      if (res.notes.length < maxRecords) res.notes.push(m);
    } else {
      res.mismatchCount++;
      if (res.mismatches.length < maxRecords) res.mismatches.push(m);
    }
    const g = res.groups.get(m.group);
    if (g) g.count++;
    else res.groups.set(m.group, { count: 1, example: m });
  };

  for (let base = 0; base < count; base += batch) {
    const k = Math.min(batch, count - base);
    for (let j = 0; j < k; j++) nextString(rng, buf.subarray(j * STRING_LEN, (j + 1) * STRING_LEN));
    const decoder = new Decoder(32, buf, ICED_OPTIONS);
    try {
      for (let j = 0; j < k; j++) {
        const s = buf.subarray(j * STRING_LEN, (j + 1) * STRING_LEN);
        decoder.position = j * STRING_LEN;
        decoder.decodeOut(instr);
        const code = instr.code;
        let n = 0, verdict: VerdictValue | -1 = -1, tooLong = false, next = false;
        if (code === Code.INVALID) {
          res.invalid++;
          if (decoder.lastError !== DecoderError.InvalidInstruction) {
            throw new Error(`iced: ${DecoderError[decoder.lastError]} for ${hex(s)}`);
          }
          tooLong = tooLongForIced(s);
          if (tooLong) res.tooLong++;
        } else {
          n = instr.length;
          verdict = verdictOf(instr);
          next = fallsThrough(instr);
          if (verdict === Verdict.Claimed) res.claimed++;
          else if (verdict === Verdict.MustUD) res.mustUD++;
          else res.reportOnly++;
        }
        const kind = check(s, code, n, next, verdict, tooLong, A);
        if (kind !== null && check(s, code, n, next, verdict, tooLong, B) !== null) {
          record(base + j, s, kind, code, n);
          if (kind === "threw") { // a JS error may leave the CPU inconsistent
            res.jitBlocks += h.cpu.blocksTranslated;
            h = new Harness(jit);
          }
        }
      }
    } finally {
      decoder.free();
    }
  }
  instr.free();
  formatter.free();
  res.jitBlocks += h.cpu.blocksTranslated;
  res.ms = performance.now() - t0;
  return res;
}

/** One mismatch as a readable line. */
export function formatMismatch(m: Mismatch): string {
  const iced = m.icedLen > 0
    ? `iced: ${m.iced} (${m.icedCode}, len ${m.icedLen}, ${m.features})`
    : `iced: ${m.iced}`;
  return `[${m.kind}] ${m.bytes}\n    ${iced}\n    cpu:  ${m.cpu}; ${cpuLength(m)}`;
}

/** The CPU's behavioural length of a mismatch, in words. */
function cpuLength(m: Mismatch): string {
  return m.cpuLen > STRING_LEN
    ? "it fetches beyond 16 bytes"
    : `its length is ${m.cpuLen} (there: ${m.cpuAt})`;
}

/** A report of a run: totals, then disagreements grouped by opcode key, biggest first. */
export function formatReport(r: CrossCheckResult, maxGroups = 200): string {
  const lines = [
    `seed ${r.seed}: ${r.count} strings in ${(r.ms / 1000).toFixed(1)} s — ` +
    `claimed ${r.claimed}, invalid ${r.invalid} (too long ${r.tooLong}), ` +
    `must-#UD ${r.mustUD}, report-only ${r.reportOnly}` +
    (r.jitBlocks > 0 ? `; ${r.jitBlocks} blocks translated` : ""),
    `mismatches: ${r.mismatchCount}; report-only notes: ${r.noteCount}`,
  ];
  const groups = [...r.groups.entries()].sort((a, b) => b[1].count - a[1].count);
  for (const [key, g] of groups.slice(0, maxGroups)) {
    lines.push(`${String(g.count).padStart(7)}  ${key}`);
    lines.push(
      `         e.g. ${g.example.bytes} | ${g.example.iced}` +
        (g.example.icedLen ? ` len ${g.example.icedLen}` : "") +
        ` | cpu: ${g.example.cpu}; ${cpuLength(g.example)}`,
    );
  }
  if (groups.length > maxGroups) lines.push(`... ${groups.length - maxGroups} more groups`);
  return lines.join("\n");
}

if (import.meta.main) {
  const args = process.argv.slice(2).filter((a) => !a.startsWith("-"));
  const count = args[0] ? Number(args[0]) : 100000;
  const seed = args[1] ? Number(args[1]) : 1;
  const jit = process.argv.includes("--jit");
  console.log(formatReport(crossCheck(seed, count, { jit })));
}
