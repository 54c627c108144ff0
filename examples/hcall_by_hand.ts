/**
 * Hypercalls issued by hand. The smallest lguest guest
 * (examples/lguest/hello.elf) is stopped right after it registered its
 * lguest_data; then the script makes hypercalls on its behalf — arming the
 * clock event, installing an interrupt gate, setting the kernel stack, taking
 * the FPU away — and prints, for each, exactly what changed in the host's
 * state. Finally the guest runs to its end and the hypercall log is shown.
 *
 *     deno run -A examples/hcall_by_hand.ts
 *     bun examples/hcall_by_hand.ts
 *
 * @module
 */

import { readFileSync } from "node:fs";
import { Debugger, Launcher, LguestTarget, LHCALL } from "../mod.ts";
import { hcallsText } from "../lib/debug/views.ts";

const HELLO = new URL("./lguest/hello.elf", import.meta.url);

/** Run the demonstration; returns the guest's console output. */
export async function main(write: (s: string) => void = (s) => console.log(s)): Promise<string> {
  const l = new Launcher({
    memMiB: 16,
    kernel: new Uint8Array(readFileSync(HELLO)),
    kernelName: "hello.elf",
  });
  const dbg = new Debugger(new LguestTarget(l));
  // Let the guest make its own LHCALL_LGUEST_INIT (before it, any other call kills it).
  dbg.breakHcall(LHCALL.LGUEST_INIT);
  await dbg.continue();
  await dbg.step();
  dbg.delete();
  write(`stopped after LHCALL_LGUEST_INIT at ${dbg.addrText(dbg.pc())}, instruction ${dbg.icount}`);
  const calls: [number, number[], string][] = [
    [LHCALL.SET_CLOCKEVENT, [100_000], "arm the timer 100 µs (100,000 instructions) ahead"],
    [
      LHCALL.LOAD_IDT_ENTRY,
      [0x20, 0x1000, 0x00108e00],
      "an interrupt gate for IRQ 0 (vector 0x20)",
    ],
    [LHCALL.SET_STACK, [0x69, 0x00101770, 1], "the kernel stack for traps from user mode"],
    [LHCALL.TS, [1], "take the FPU away: the next x87 instruction traps"],
    [LHCALL.TS, [0], "and give it back"],
    [LHCALL.SET_CLOCKEVENT, [0], "disarm the timer"],
  ];
  for (const [nr, args, why] of calls) {
    const r = dbg.hypercall(nr, args);
    write(`\n${r.call}    (${why})`);
    if (r.changes.length === 0) write("  (no change)");
    for (const c of r.changes) write("  " + c);
  }
  const ev = await dbg.continue();
  write(`\nguest console: ${JSON.stringify(l.text())}`);
  write(ev.message);
  for (const line of hcallsText(l.guest.hcallLog)) write(line);
  return l.text();
}

if (import.meta.main) await main();
