/**
 * The two boot styles of lguest's history, side by side, on a guest built
 * from bytes right here (no assembler): it registers its lguest_data, hands
 * the host its own page directory (LHCALL_NEW_PGTABLE) — the first 4 MiB
 * mapped at 0 and at PAGE_OFFSET — jumps to its high alias, writes through
 * it, and powers off.
 *
 * - 2011 (linear): the launcher builds no page tables; until NEW_PGTABLE the
 *   host makes up a 1:1 mapping, one page per fault, and writes nothing back.
 * - 2007 (launcher): the launcher builds virtual == physical tables for all of
 *   RAM below the top of memory; the guest starts on them, the host shadows
 *   them like any guest tables.
 *
 * For each, the script single-steps from the entry point to the hypercall,
 * prints the host's shadow directories and the guest's tables before and
 * after it, and ends with a comparison.
 *
 *     deno run -A examples/pagetable_modes.ts
 *     bun examples/pagetable_modes.ts
 *
 * @module
 */

import { Debugger, elf32, Launcher, LguestTarget, LHCALL, R, Session, X86 } from "../mod.ts";

const PAGE_OFFSET = 0xc0000000;

/** The guest: an ELF with symbols, so the debugger can break on its labels. */
export function buildGuest(): Uint8Array {
  const a = new X86(0x100000);
  a.label("start_kernel")
    .movImm(R.ESP, "stack_top")
    .hcall(LHCALL.LGUEST_INIT, "lguest_data")
    .label("switch_to_own_tables")
    .hcall(LHCALL.NEW_PGTABLE, "swapper_pg_dir")
    .movImm(R.EAX, ["running_high", PAGE_OFFSET])
    .jmpReg(R.EAX)
    .label("running_high")
    .movImm(R.EAX, 0x600dc0de)
    .store(["scratch", PAGE_OFFSET], R.EAX)
    .hcall(LHCALL.SHUTDOWN, "bye", 1)
    .label("hang")
    .jmp("hang");
  a.label("bye").db("Power down", 0);
  a.lguestData();
  a.align(4).label("scratch").dd(0);
  a.align(16).zeros(4096).label("stack_top");
  // The page directory: PDE 0 and PDE 0x300 both point at pg0 (flags _PAGE_TABLE).
  a.align(4096).label("swapper_pg_dir");
  for (let i = 0; i < 1024; i++) a.dd(i === 0 || i === PAGE_OFFSET >>> 22 ? ["pg0", 0x67] : 0);
  // pg0: the first 4 MiB, present and writable (the host sets A and D as they are used).
  a.label("pg0");
  for (let i = 0; i < 1024; i++) a.dd((i << 12) | 3);
  return elf32({ entry: a.addr("start_kernel"), segments: [a.segment()], symbols: a.symbols });
}

/** What one boot looked like, for the comparison. */
export interface ModeSummary {
  /** "2011" or "2007". */
  mode: string;
  /** Host state before NEW_PGTABLE. */
  before: { linear: boolean; gpgdir: number; shadowPdes: number; hostPages: number };
  /** Host state after NEW_PGTABLE. */
  after: { linear: boolean; gpgdir: number; shadowPdes: number; hostPages: number };
  /** Guest instructions until NEW_PGTABLE. */
  steps: number;
  /** How the guest ended. */
  ended: string;
}

/** Boot the guest in one mode, printing as it goes. */
export async function boot(
  kernel: Uint8Array,
  mode: "2011" | "2007",
  write: (s: string) => void,
): Promise<ModeSummary> {
  const l = new Launcher({
    memMiB: 16,
    kernel,
    kernelName: "pagetable-demo",
    pagetables: mode === "2007" ? "launcher" : "linear",
  });
  const g = l.guest;
  const dbg = new Debugger(new LguestTarget(l));
  const s = new Session(dbg, { write });
  const state = () => {
    let shadowPdes = 0;
    for (let i = 0; i < 1024; i++) {
      if ((g.mem.read32(g.pt.current.shadow + i * 4) & 1) !== 0) shadowPdes++;
    }
    return {
      linear: g.pt.linear,
      gpgdir: g.pt.current.gpgdir,
      shadowPdes,
      hostPages: g.pages.inUse,
    };
  };
  write(
    `\n=== ${mode} boot (${mode === "2007" ? "launcher-built page tables" : "linear mode"}) ===`,
  );
  for (const line of await s.banner("pagetable-demo")) write(line);
  // Single-step to the NEW_PGTABLE hypercall, one instruction at a time.
  const target = dbg.symbols.get("switch_to_own_tables")!;
  let steps = 0;
  while (true) {
    const line = dbg.disasm(dbg.pc(), 1)[0];
    if (dbg.pc() > target && line.mnemonic === "int") break;
    await s.exec("step");
    steps++;
  }
  write("-- before LHCALL_NEW_PGTABLE --");
  await s.exec("pgdirs");
  await s.exec("pgdir guest");
  await s.exec("pgdir shadow");
  const before = state();
  await s.exec("step");
  write("-- after LHCALL_NEW_PGTABLE --");
  await s.exec("pgdirs");
  await s.exec("pgdir guest");
  await s.exec("step 4");
  await s.exec("translate eip");
  await s.exec("pgdir shadow");
  const after = state();
  await s.exec("continue");
  return { mode, before, after, steps: steps + 1, ended: dbg.ended?.reason ?? "running" };
}

/** Boot both ways and compare. */
export async function main(
  write: (s: string) => void = (s) => console.log(s),
): Promise<ModeSummary[]> {
  const kernel = buildGuest();
  const runs = [await boot(kernel, "2011", write), await boot(kernel, "2007", write)];
  const hex = (n: number) => "0x" + (n >>> 0).toString(16).padStart(8, "0");
  write("\n=== comparison ===");
  write("                         2011 (linear)              2007 (launcher)");
  const row = (name: string, f: (r: ModeSummary) => string) =>
    write(name.padEnd(25) + f(runs[0]).padEnd(27) + f(runs[1]));
  row(
    "before: host mode",
    (r) => (r.before.linear ? "linear (made-up 1:1)" : "shadows guest tables"),
  );
  row("before: guest pgdir", (r) => (r.before.linear ? "-" : hex(r.before.gpgdir)));
  row("before: shadow PDEs", (r) => String(r.before.shadowPdes));
  row("after: guest pgdir", (r) => hex(r.after.gpgdir));
  row("after: shadow PDEs", (r) => String(r.after.shadowPdes));
  row("host pages before/after", (r) => `${r.before.hostPages}/${r.after.hostPages}`);
  row("instructions to switch", (r) => String(r.steps));
  row("ended", (r) => r.ended);
  return runs;
}

if (import.meta.main) await main();
