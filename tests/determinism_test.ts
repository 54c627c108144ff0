/**
 * The same guest gives the same run however the host's loop is sliced: in one
 * go, in slices of a few hundred instructions (as the fuzzer's audit and the
 * debugger's `continue` chunks do), or nearly instruction by instruction. The
 * run loop's budget is the host's business, not the guest's, so no budget
 * boundary may become a point where the guest can observe anything — above all
 * an interrupt delivered there instead of at the next point where the host
 * really looks (a trap, a hypercall, the clock event, a device raising a line).
 *
 * And the translator is no more the guest's business than the slicing: a run
 * with every hot block translated ends in the same state as one interpreted.
 *
 * The guests are the fuzzer's (lib/debug/fuzz_guest.ts). The first seeds
 * below unblock interrupts with a plain store to lguest_data.irq_enabled, or
 * raise an IRQ in the instruction where a slice ends: that is what made runs
 * sliced every 61 or 997 instructions take their interrupts elsewhere (and
 * write a different lguest_data.time) than a run in one go. The sweep after
 * them covers both page-table geometries.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { fuzzLauncher } from "../lib/debug/fuzz.ts";
import type { FuzzKind } from "../lib/debug/fuzz_guest.ts";

/** Run to `insns` in slices of `slice`; the state a deterministic run must reproduce. */
function runSliced(seed: number, kind: FuzzKind, insns: number, slice: number, jit = true) {
  const l = fuzzLauncher(seed, kind);
  const g = l.guest, cpu = g.cpu;
  cpu.jit = jit;
  let stop = "budget";
  while (cpu.icount < insns && stop === "budget") stop = g.run(Math.min(slice, insns - cpu.icount));
  return {
    stop,
    reason: g.deathReason,
    icount: cpu.icount,
    eip: cpu.eip >>> 0,
    regs: Array.from(cpu.regs),
    ram: new Uint8Array(g.mem.buffer, 0, g.ramSize).slice(),
    output: l.output.text(),
  };
}

function assertSame(seed: number, kind: FuzzKind, insns: number, jit = false): void {
  const whole = runSliced(seed, kind, insns, insns);
  for (const slice of jit ? [insns] : [997, 61]) {
    const sliced = runSliced(seed, kind, insns, slice, !jit);
    const what = `seed ${seed} ${kind}, ${jit ? "interpreted" : `slices of ${slice}`}`;
    assert.equal(sliced.stop, whole.stop, what);
    assert.equal(sliced.reason, whole.reason, what);
    assert.equal(sliced.icount, whole.icount, what);
    assert.equal(sliced.eip, whole.eip, what);
    assert.deepEqual(sliced.regs, whole.regs, what);
    assert.equal(sliced.output, whole.output, what);
    let firstDiff = -1;
    for (let i = 0; i < whole.ram.length; i++) {
      if (sliced.ram[i] !== whole.ram[i]) {
        firstDiff = i;
        break;
      }
    }
    assert.equal(firstDiff, -1, `${what}: guest RAM differs at 0x${firstDiff.toString(16)}`);
  }
}

describe("determinism whatever the slicing", () => {
  for (const seed of [1, 9, 101110]) {
    it(`fuzz guest ${seed}: one run, slices of 997 and of 61 end in the same state`, () => {
      assertSame(seed, "nonpae", 200_000);
    });
  }
  it("fuzz guests 2 to 8, non-PAE and PAE: the same", () => {
    for (let seed = 2; seed <= 8; seed++) {
      for (const kind of ["nonpae", "pae"] as const) assertSame(seed, kind, 100_000);
    }
  });
  // A guest the host kills inside an instruction (here: a bad page-table
  // entry met by demand paging) must die at the same instruction, with the
  // same count, whether that instruction ran in a translated block or not.
  for (const seed of [205480, 206140]) {
    it(`fuzz guest ${seed} (PAE): translated and interpreted, it dies in the same state`, () => {
      assertSame(seed, "pae", 400_000, true);
    });
  }
});
