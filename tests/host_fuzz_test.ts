/**
 * A guest can hurt only itself: seeded random guests under the lguest host.
 *
 * Each guest is random code — random bytes interleaved with hypercalls whose
 * number and arguments are random — after a valid LHCALL_LGUEST_INIT, so the
 * host sees wild hypercalls, wild page-table pointers, stray traps and
 * garbage instructions. Whatever happens, `Guest.run` must return (the host
 * never throws), a dead guest must carry a one-line reason, and the launcher
 * must still boot a well-behaved guest afterwards.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { Launcher } from "../lib/boot/launcher.ts";
import { elf32 } from "../lib/debug/guest_builder.ts";

const LOAD = 0x100000, LGUEST_DATA = 0x170000, STACK = 0x180000;

/** xorshift32: deterministic across runtimes. */
function rng(seed: number): () => number {
  let x = seed | 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

/** A random guest: INIT with a valid lguest_data, then chaos. */
function randomGuest(seed: number): Uint8Array {
  const r = rng(seed);
  const code: number[] = [];
  const imm32 = (v: number) => code.push(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24);
  code.push(0xbc), imm32(STACK); // mov esp, STACK
  code.push(0xb8), imm32(1); // mov eax, LHCALL_LGUEST_INIT
  code.push(0xbb), imm32(LGUEST_DATA); // mov ebx, lguest_data
  code.push(0xcd, 0x1f); // int 0x1f
  while (code.length < 3800) {
    if (r() % 4 === 0) {
      // A hypercall with a plausible-or-wild number and random arguments.
      const nr = r() % 3 === 0 ? r() : r() % 24;
      code.push(0xb8), imm32(nr);
      code.push(0xbb), imm32(r() % 2 ? r() : r() % 0x2000000);
      code.push(0xb9), imm32(r() % 2 ? r() : r() % 1024);
      code.push(0xba), imm32(r());
      code.push(0xcd, 0x1f);
    } else {
      for (let i = 0, n = 1 + (r() % 12); i < n; i++) code.push(r() & 0xff);
    }
  }
  const data = new Uint8Array(1388);
  const dv = new DataView(data.buffer);
  dv.setUint32(4, 1, true); // blocked_interrupts: the timer
  data.fill(0xff, 24, 88); // the async ring: empty
  dv.setUint32(1380, 0xc0000000, true); // kernel_address
  dv.setUint32(1384, 0x80, true); // syscall_vec
  return elf32({
    entry: LOAD,
    segments: [
      { paddr: LOAD, vaddr: LOAD, bytes: new Uint8Array(code) },
      { paddr: LGUEST_DATA, vaddr: LGUEST_DATA, bytes: data },
    ],
  });
}

describe("host under random guests", () => {
  it("never throws, and every death has a one-line reason", { timeout: 120_000 }, () => {
    const ends = new Map<string, number>();
    for (let seed = 1; seed <= 300; seed++) {
      const l = new Launcher({ memMiB: 32, kernel: randomGuest(seed), kernelName: `fuzz${seed}` });
      let stop: string;
      try {
        stop = l.guest.run(30_000);
      } catch (e) {
        assert.fail(`seed ${seed}: the host threw: ${e instanceof Error ? e.stack : String(e)}`);
      }
      assert.ok(["dead", "budget", "halted"].includes(stop), `seed ${seed}: stopped with ${stop}`);
      if (stop === "dead") {
        const why = l.guest.deathReason;
        assert.ok(
          why.length > 0 && !why.includes("\n"),
          `seed ${seed}: reason ${JSON.stringify(why)}`,
        );
        const kind = why.replace(/0x[0-9a-f]+|\d+/g, "N");
        ends.set(kind, (ends.get(kind) ?? 0) + 1);
      } else ends.set(stop, (ends.get(stop) ?? 0) + 1);
    }
    // The random guests must actually reach the host's checks, not just die at once.
    if (process.env.FUZZ_SHOW) console.log(ends);
    assert.ok(ends.size >= 5, `only ${ends.size} kinds of end: ${[...ends.keys()].join("; ")}`);
  });

  it("leaves the launcher able to boot a well-behaved guest", () => {
    const hello = new Uint8Array(
      readFileSync(new URL("../examples/lguest/hello.elf", import.meta.url)),
    );
    const l = new Launcher({ memMiB: 16, kernel: hello });
    assert.equal(l.guest.run(1_000_000), "dead");
    assert.equal(l.guest.poweredOff, true);
    assert.match(l.text(), /Hello from an lguest guest/);
  });
});
