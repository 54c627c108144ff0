/**
 * Runs one oracle case on OUR emulator and reports the result in the same shape
 * the native runner does (see fixture.ts).
 *
 * The emulated machine mirrors the native Linux process as far as the case can
 * see: flat segments with the selectors Linux gives a 32-bit process (CS=0x23,
 * DS=ES=SS=0x2b), CPL 3, EFLAGS.IF=1 and IOPL=0, and paging on with exactly the
 * three regions the runner maps (LOW, DATA, CODE) present and user-writable, so
 * that an access anywhere else raises #PF with the same error code and CR2 as
 * natively. The page tables live at the top of the 4 MiB of RAM, outside every
 * mapped region, so nothing a case does can reach them.
 *
 * One {@link CaseRunner} is reused for many cases (allocating a CPU per case
 * would dominate the run time): each case resets the CPU, restores memory and
 * tells the CPU that code in the regions changed (`invalidateCode`), since
 * every case runs different bytes at the same address. Because the CPU keeps
 * counting how hot 0x200000 is, later cases also run through the block
 * translator, not only the interpreter.
 *
 * @module
 */

import { PhysicalMemory } from "../../lib/x86/memory.ts";
import { CPU, CS, DS, ES, Exit, FS, GS, SS } from "../../lib/x86/cpu.ts";
import {
  CODE_BASE,
  CODE_SIZE,
  DATA_BASE,
  DATA_SIZE,
  fninitImage,
  fromHex,
  LOW_BASE,
  LOW_SIZE,
  makePattern,
  type OracleCase,
  type Outcome,
  PATTERN_SEED,
  REGIONS,
} from "./fixture.ts";

/** RAM size of the emulated machine. */
const RAM = 4 << 20;
/** Page directory and the one page table (mapping 0..4 MiB). */
const PD = 0x3ff000, PT = 0x3fe000;
/** CR0.PG. */
const CR0_PG = 0x80000000 | 0;
/** How many instructions a case may take before we call it a runaway. */
const BUDGET = 200000;

/** Runs cases on the emulator, reusing one CPU and one RAM. */
export class CaseRunner {
  /** Emulated RAM. */
  mem!: PhysicalMemory;
  /** The CPU under test. */
  cpu!: CPU;
  /** Pattern bytes of the low region, before overrides. */
  readonly patLow: Uint8Array;
  /** Pattern bytes of the main data region, before overrides. */
  readonly patData: Uint8Array;
  /** Initial bytes of the current case, per region (pattern + overrides, code). */
  private initLow = new Uint8Array(LOW_SIZE);
  private initData = new Uint8Array(DATA_SIZE);
  private initCode = new Uint8Array(CODE_SIZE);
  private readonly fninit = fninitImage();

  /** @param patternSeed seed of the memory pattern the cases assume */
  constructor(readonly patternSeed = PATTERN_SEED) {
    const p = makePattern(patternSeed);
    this.patLow = p.low;
    this.patData = p.data;
    this.fresh();
  }

  /** Start over with a new CPU (after the emulator threw, its state is suspect). */
  private fresh(): void {
    this.mem = new PhysicalMemory(RAM);
    this.cpu = new CPU(this.mem);
  }

  /** The initial byte of `addr` in the case last run (for memory comparison). */
  initByte(addr: number): number {
    if (addr >= LOW_BASE && addr < LOW_BASE + LOW_SIZE) return this.initLow[addr - LOW_BASE];
    if (addr >= DATA_BASE && addr < DATA_BASE + DATA_SIZE) return this.initData[addr - DATA_BASE];
    if (addr >= CODE_BASE && addr < CODE_BASE + CODE_SIZE) return this.initCode[addr - CODE_BASE];
    return 0;
  }

  /** Lay out memory, page tables and CPU state for case `c`. */
  private setup(c: OracleCase): void {
    const { mem, cpu } = this;
    this.initLow.set(this.patLow);
    this.initData.set(this.patData);
    this.initCode.fill(0xcc);
    this.initCode.set(fromHex(c.code));
    for (const [addr, h] of c.mem ?? []) {
      const b = fromHex(h);
      for (let i = 0; i < b.length; i++) {
        const a = addr + i;
        if (a >= LOW_BASE && a < LOW_BASE + LOW_SIZE) this.initLow[a - LOW_BASE] = b[i];
        else if (a >= DATA_BASE && a < DATA_BASE + DATA_SIZE) this.initData[a - DATA_BASE] = b[i];
        else throw new Error(`case ${c.id}: override at 0x${a.toString(16)} outside the data`);
      }
    }
    mem.u8.set(this.initLow, LOW_BASE);
    mem.u8.set(this.initData, DATA_BASE);
    mem.u8.set(this.initCode, CODE_BASE);
    // These writes bypass the CPU: drop any code it translated from these pages.
    for (const r of REGIONS) cpu.invalidateCode(r.base, r.size);

    // Page tables: identity-map exactly the runner's regions, user read/write.
    mem.u8.fill(0, PT, PT + 0x2000);
    mem.write32(PD, PT | 7);
    for (const r of REGIONS) {
      for (let a = r.base; a < r.base + r.size; a += 0x1000) {
        mem.write32(PT + (a >>> 12) * 4, a | 7);
      }
    }

    cpu.reset();
    cpu.setSegFlat(CS, 0x23, 3);
    cpu.setSegFlat(SS, 0x2b, 3);
    cpu.setSegFlat(DS, 0x2b, 3);
    cpu.setSegFlat(ES, 0x2b, 3);
    cpu.setSegFlat(FS, 0, 3);
    cpu.setSegFlat(GS, 0, 3);
    cpu.cr3 = PD;
    cpu.cr0 = cpu.cr0 | CR0_PG;
    cpu.setCpl(3);
    cpu.flushTlb();
    for (let r = 0; r < 8; r++) cpu.regs[r] = c.regs[r] | 0;
    cpu.eip = CODE_BASE;
    cpu.setEflags(c.eflags);
    cpu.fpu.frstorImage(c.fpu ? fromHex(c.fpu) : this.fninit);
  }

  /** Run case `c` on the emulator and report what it did. */
  run(c: OracleCase): Outcome {
    const out: Outcome = {
      vec: -1,
      err: -1,
      cr2: 0,
      eip: 0,
      regs: [0, 0, 0, 0, 0, 0, 0, 0],
      eflags: 0,
      mem: new Map(),
    };
    let cpu: CPU;
    try {
      this.setup(c);
      cpu = this.cpu;
      const exit = cpu.run(BUDGET);
      if (exit === Exit.Exception) {
        out.vec = cpu.exitVector;
        out.err = cpu.exitError;
        out.cr2 = cpu.exitCr2;
      } else {
        const names = Object.entries(Exit).find(([, v]) => v === exit)?.[0] ?? String(exit);
        out.problem = `run() returned Exit.${names}` +
          (exit === Exit.Shutdown ? `: ${cpu.exitMessage}` : "");
      }
    } catch (e) {
      out.problem = `emulator threw: ${(e as Error)?.stack ?? String(e)}`.split("\n").slice(0, 4)
        .join(" | ");
      this.fresh();
      return out;
    }
    out.eip = cpu.eip >>> 0;
    for (let r = 0; r < 8; r++) out.regs[r] = cpu.regs[r] >>> 0;
    out.eflags = (cpu.getEflags() & ~0x10000) >>> 0;
    this.diff(LOW_BASE, this.initLow, out.mem);
    this.diff(DATA_BASE, this.initData, out.mem);
    this.diff(CODE_BASE, this.initCode, out.mem);
    if (c.expect.fpu !== undefined) {
      try {
        out.fpu = cpu.fpu.fsaveImage();
      } catch (e) {
        out.problem = `fsaveImage threw: ${(e as Error)?.message ?? String(e)}`;
      }
    }
    return out;
  }

  /** Record bytes of a region that differ from their initial values. */
  private diff(base: number, init: Uint8Array, into: Map<number, number>): void {
    const ram = this.mem.u8;
    const a32 = new Int32Array(ram.buffer, base, init.length >> 2);
    const b32 = new Int32Array(init.buffer, init.byteOffset, init.length >> 2);
    for (let i = 0; i < a32.length; i++) {
      if (a32[i] === b32[i]) continue;
      for (let k = 0; k < 4; k++) {
        const a = base + i * 4 + k;
        if (ram[a] !== init[i * 4 + k]) into.set(a, ram[a]);
      }
    }
  }
}
