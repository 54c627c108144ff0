/**
 * CPU benchmark, one runtime: prints JSON figures for the guest loops in
 * bench/guests (assembled by `deno task asm`) and the bare example program.
 *
 *   (a) alu_loop: a tight ALU loop inside one page;
 *   (b) page_walk: with paging on, each access touches a new page, across
 *       1024 pages.
 *
 * Each figure is millions of guest instructions retired per second of wall
 * time, over a run long enough that start-up and JIT warm-up are a small part
 * (the first, shorter run is a warm-up and is not reported). `bench/run.ts`
 * runs this under Deno and under Bun and prints the table for README.md.
 *
 * @module
 */

import { readFileSync } from "node:fs";
import { CPU, Exit } from "../lib/x86/cpu.ts";
import { PhysicalMemory } from "../lib/x86/memory.ts";
import { BareMachine } from "../lib/boot/bare.ts";

const here = (p: string) => new URL(p, import.meta.url);

function runFlat(file: string, setup: (cpu: CPU) => void): { insns: number; seconds: number } {
  const mem = new PhysicalMemory(16 << 20);
  const cpu = new CPU(mem);
  mem.load(0x1000, new Uint8Array(readFileSync(here(file))));
  cpu.eip = 0x1000;
  setup(cpu);
  const t0 = performance.now();
  const exit = cpu.run(1e12);
  const seconds = (performance.now() - t0) / 1000;
  if (exit !== Exit.Halt) throw new Error(`${file}: unexpected exit ${exit}`);
  return { insns: cpu.icount, seconds };
}

function mips(r: { insns: number; seconds: number }): number {
  return Math.round(r.insns / r.seconds / 1e5) / 10;
}

const results: Record<string, { mips: number; insns: number; seconds: number }> = {};
function record(name: string, r: { insns: number; seconds: number }) {
  results[name] = { mips: mips(r), insns: r.insns, seconds: Math.round(r.seconds * 1000) / 1000 };
}

// (a) tight ALU loop: warm up, then 60M iterations x 5 instructions.
runFlat("guests/alu_loop.bin", (c) => (c.regs[1] = 2_000_000));
record("alu_loop", runFlat("guests/alu_loop.bin", (c) => (c.regs[1] = 60_000_000)));

// (b) a new page on every access: warm up, then 40000 passes x 1024 pages x 4 instructions.
runFlat("guests/page_walk.bin", (c) => (c.regs[2] = 1000));
record("page_walk", runFlat("guests/page_walk.bin", (c) => (c.regs[2] = 40_000)));

// The bare example program (DIV-heavy trial division, port I/O for output).
{
  const m = new BareMachine(16);
  m.loadKernel(new Uint8Array(readFileSync(here("../examples/hello.elf"))));
  const r = m.run();
  record("hello.elf", { insns: r.instructions, seconds: r.seconds });
}

console.log(JSON.stringify(results));
