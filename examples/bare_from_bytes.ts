/**
 * The bare machine, from bytes: a ten-instruction program written here in
 * TypeScript (no assembler) that adds 1..10, stores the sum, says "done" on
 * COM1 and halts. The script traces every instruction, stops on the write to
 * `result` with a watchpoint, and shows the registers there.
 *
 *     deno run -A examples/bare_from_bytes.ts
 *     bun examples/bare_from_bytes.ts
 *
 * @module
 */

import { BareMachine, BareTarget, Debugger, elf32, parseElf, R, Session, X86 } from "../mod.ts";

const COM1 = 0x3f8;

/** The program, as an ELF with symbols. */
export function buildProgram(): Uint8Array {
  const a = new X86(0x100000);
  a.label("_start")
    .movImm(R.ECX, 10)
    .movImm(R.EAX, 0)
    .label("sum")
    .addReg(R.EAX, R.ECX)
    .dec(R.ECX)
    .jnz("sum")
    .store("result", R.EAX)
    .label("say_done");
  for (const c of "done\n") a.movAl(c.charCodeAt(0)).outAl(COM1);
  a.cli().hlt();
  a.align(4).label("result").dd(0);
  return elf32({ entry: a.addr("_start"), segments: [a.segment()], symbols: a.symbols });
}

/** Run the demonstration; returns the sum the program stored. */
export async function main(write: (s: string) => void = (s) => console.log(s)): Promise<number> {
  const elf = buildProgram();
  let com1 = "";
  const m = new BareMachine(4, (b) => (com1 += String.fromCharCode(b)));
  m.loadKernel(elf, "sum.elf");
  const dbg = new Debugger(new BareTarget(m, parseElf(elf).symbols));
  const s = new Session(dbg, { write });
  for (const line of await s.banner("sum.elf")) write(line);
  await s.exec("trace insn on");
  await s.exec("watch result");
  await s.exec("continue");
  await s.exec("trace insn off");
  await s.exec("regs");
  await s.exec("x/1d result");
  await s.exec("continue");
  write(`COM1: ${JSON.stringify(com1)}`);
  return m.mem.read32(dbg.symbols.get("result")!);
}

if (import.meta.main) await main();
