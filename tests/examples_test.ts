/**
 * The scripts in examples/ run as a user would run them, and say what they
 * should: each exports `main(write)`, imported here with its output captured;
 * one is also run as a program under this runtime, as its header shows.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import process from "node:process";
import * as pagetableModes from "../examples/pagetable_modes.ts";
import * as hcallByHand from "../examples/hcall_by_hand.ts";
import * as demandPaging from "../examples/demand_paging.ts";
import * as bareFromBytes from "../examples/bare_from_bytes.ts";

const ROOT = new URL("..", import.meta.url).pathname;

function capture(): { write: (s: string) => void; text: () => string } {
  const lines: string[] = [];
  return { write: (s) => lines.push(s), text: () => lines.join("\n") };
}

describe("examples", () => {
  it(
    "pagetable_modes: 2011 and 2007 boots, before and after NEW_PGTABLE",
    { timeout: 60_000 },
    async () => {
      const c = capture();
      const runs = await pagetableModes.main(c.write);
      const [y2011, y2007] = runs;
      assert.equal(y2011.before.linear, true);
      assert.equal(y2007.before.linear, false);
      assert.equal(
        y2007.before.gpgdir,
        0x00fff000,
        "the launcher's tables just below the top of 16 MiB",
      );
      for (const r of runs) {
        assert.equal(r.after.linear, false);
        assert.equal(r.after.gpgdir, 0x102000);
        assert.equal(r.ended, "CRASH: Power down");
      }
      const t = c.text();
      assert.match(t, /slot 0: linear mode — the guest has no page tables of its own yet/);
      assert.match(
        t,
        /guest page directory 0x00fff000 \(slot 0, current\): 4 of 1024 entries present/,
      );
      assert.match(t, /0x00101000-0x003fffff -> 0x00101000-0x003fffff +P RW US +767 ptes/);
      assert.match(t, /0xc0000000-0xc03fffff -> 0x00000000-0x003fffff +P RW +1024 ptes/);
      assert.match(t, /=> 0x0010001b <switch_to_own_tables\+0xa>: +cd 1f +int 0x1f/);
      assert.match(t, /before: host mode +linear \(made-up 1:1\) +shadows guest tables/);
      assert.match(t, /after: guest pgdir +0x00102000 +0x00102000/);
    },
  );

  it(
    "hcall_by_hand: each hypercall's changes, then the guest finishes",
    { timeout: 60_000 },
    async () => {
      const c = capture();
      const out = await hcallByHand.main(c.write);
      assert.equal(out, "Hello from an lguest guest on lguest.ts!\n");
      const t = c.text();
      assert.match(
        t,
        /LHCALL_SET_CLOCKEVENT\(0x186a0\).*\n +clock event +off -> fires at \d+ ns \(in 100000 ns/,
      );
      assert.match(t, /IDT 0x20 INT 0x20 +\(none\) -> interrupt gate 0x00101000 cs 0x0061 DPL0/);
      assert.match(t, /cr0 +0x80010031 -> 0x80010039\n +ts +0 -> 1/);
      assert.match(t, /clock event +fires at \d+ ns .* -> off/);
      assert.match(t, /\[\d+\] +LHCALL_SHUTDOWN\(0x[0-9a-f]+, 0x1/);
    },
  );

  it("demand_paging: reflected fault, the guest's PTE write, SET_PTE, the host's fill", {
    timeout: 60_000,
  }, async () => {
    const c = capture();
    const faults = await demandPaging.main(c.write);
    const t = c.text();
    const d = faults.filter((f) => f.includes("0xd0000000"));
    assert.equal(d.length, 2, faults.join("\n"));
    assert.match(d[0], /guest's tables forbid it: #PF reflected into the guest/);
    assert.match(d[1], /host filled the shadow entry/);
    assert.match(
      t,
      /watchpoint 2: write of 4 bytes at physical 0x00105000 \(linear 0xc0105000\): 0x00000000 -> 0x00106003/,
    );
    assert.match(t, /hypercall LHCALL_SET_PTE\(0x102000, 0xd0000000, 0x106003/);
    assert.match(t, /PTE +\[0x00105000\] 0x00106023 P RW A +\[0x[0-9a-f]{8}\] 0x00106021 P A/);
    assert.match(t, /shadow: read-only until the guest's D bit is set/);
    // finish in the #PF handler returns through its IRET to the faulting instruction.
    assert.match(
      t,
      /\] returned to 0xc010024f\n=> 0xc010024f: +a1 00 00 00 d0 +mov eax, \[0xd0000000\]/,
    );
  });

  it("bare_from_bytes: a traced run, a watchpoint, COM1", { timeout: 60_000 }, async () => {
    const c = capture();
    const sum = await bareFromBytes.main(c.write);
    assert.equal(sum, 55);
    const t = c.text();
    assert.match(t, /\[2\] 0x0010000a <sum>: add eax, ecx/);
    assert.match(
      t,
      /watchpoint 1: write of 4 bytes at 0x00100040 <result> \(physical 0x00100040\): 0x00000000 -> 0x00000037/,
    );
    assert.match(t, /COM1: "done\\n"/);
  });

  it("runs as a program too", { timeout: 60_000 }, () => {
    const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";
    const [cmd, args] = isDeno
      ? [(globalThis as unknown as { Deno: { execPath(): string } }).Deno.execPath(), ["run", "-A"]]
      : [process.execPath, []];
    const r = spawnSync(cmd, [...args, "examples/bare_from_bytes.ts"], {
      cwd: ROOT,
      encoding: "utf8",
    });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /COM1: "done\\n"$/m);
  });
});
