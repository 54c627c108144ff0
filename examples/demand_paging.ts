/**
 * Demand paging, watched. examples/lguest/paging.elf touches 0xd0000000
 * before mapping it: the host finds no guest PTE and reflects the page fault
 * into the guest; the guest's handler writes a PTE and tells the host
 * (LHCALL_SET_PTE); the retried access faults once more, and this time the
 * host fills its shadow from the guest's new entry.
 *
 * The script traces every page fault the host handles, stops at the
 * handler's SET_PTE with a watchpoint on the guest's PTE to show the write
 * that came before it, and prints `translate 0xd0000000` — guest tables and
 * shadow side by side — at each stage.
 *
 *     deno run -A examples/demand_paging.ts
 *     bun examples/demand_paging.ts
 *
 * @module
 */

import { readFileSync } from "node:fs";
import { Debugger, Launcher, LguestTarget, LHCALL, Session } from "../mod.ts";

const PAGING = new URL("./lguest/paging.elf", import.meta.url);
const DEMAND = 0xd0000000;

/** Run the demonstration; returns the page-fault trace. */
export async function main(write: (s: string) => void = (s) => console.log(s)): Promise<string[]> {
  const l = new Launcher({
    memMiB: 16,
    kernel: new Uint8Array(readFileSync(PAGING)),
    kernelName: "paging.elf",
  });
  const dbg = new Debugger(new LguestTarget(l));
  const s = new Session(dbg, { write });
  const faults: string[] = [];
  dbg.setTrace("pf", (line) => faults.push(line));

  // Up to the guest's own page tables.
  dbg.breakHcall(LHCALL.NEW_PGTABLE);
  await s.exec("continue; step");
  dbg.delete();
  write("\n-- the guest runs on its own tables; 0xd0000000 has a page table but no PTE --");
  await s.exec(`translate ${DEMAND.toString(16)}`);

  // Watch the guest's PTE for 0xd0000000 (physical: wherever the guest maps its table).
  const pteAddr = dbg.target.linear(DEMAND).steps.find((st) => st.level === "PTE")!.addr;
  await s.exec(`watch phys ${pteAddr.toString(16)} 4`);
  await s.exec("continue");
  write("\n-- the guest's #PF handler wrote its PTE; now it tells the host --");
  await s.exec("delete all; break hcall set_pte; continue");
  await s.exec(`translate ${DEMAND.toString(16)}`);
  write("\n-- back from the handler (iret), the access is retried --");
  await s.exec("delete all; finish; step");
  await s.exec(`translate ${DEMAND.toString(16)}`);
  await s.exec("continue");
  write("\n-- every page fault the host handled --");
  for (const f of faults) write(f);
  return faults;
}

if (import.meta.main) await main();
