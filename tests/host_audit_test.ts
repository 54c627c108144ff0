/**
 * The host-invariant audit (lib/lguest/audit.ts): silent on well-behaved
 * guests all the way through their runs, and loud on every kind of violation
 * planted by hand into a live host — a shadow leaf or TLB entry reaching a
 * host page, a directory entry outside the pool or a huge page, pool
 * accounting that does not add up, a changed host GDT, the CPU at ring 0 or
 * on a foreign CR3. A fuzzer whose audit could not see these would find
 * nothing by construction.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { Launcher } from "../lib/boot/launcher.ts";
import type { Guest } from "../lib/lguest/guest.ts";
import { auditHost } from "../lib/lguest/audit.ts";
import { PTE } from "../lib/lguest/abi.ts";
import { TLB_SUP, TLB_USER } from "../lib/x86/cpu.ts";
import { IOPL } from "../lib/x86/flags.ts";

function example(name: string): Uint8Array {
  return new Uint8Array(readFileSync(new URL(`../examples/lguest/${name}`, import.meta.url)));
}

/** Run an example in slices, auditing after each; returns the launcher and every finding. */
function runAudited(name: string, pae: boolean, slice: number, maxInsns: number) {
  const l = new Launcher({ memMiB: 16, kernel: example(name), kernelName: name, pae });
  const found: string[] = [];
  let audits = 0;
  while (!l.guest.dead && l.guest.cpu.icount < maxInsns) {
    const stop = l.guest.run(slice);
    found.push(...auditHost(l.guest).map((v) => `at ${l.guest.cpu.icount}: ${v}`));
    audits++;
    if (stop !== "budget") break;
  }
  return { l, g: l.guest, found, audits };
}

/**
 * A live guest with its own page tables in use: the paging (or PAE) example,
 * stopped once the current shadow maps pages through a shadow page table.
 */
function live(pae: boolean): { l: Launcher; g: Guest; leaf: number; dir: number } {
  const name = pae ? "pae.elf" : "paging.elf";
  const l = new Launcher({ memMiB: 16, kernel: example(name), kernelName: name, pae });
  const g = l.guest;
  for (let i = 0; i < 1000; i++) {
    assert.equal(g.run(200), "budget", `${name} ended before its tables were in use`);
    const at = findLeaf(g);
    if (!g.pt.linear && at) {
      assert.deepEqual(auditHost(g), [], "the audit is silent before anything is planted");
      return { l, g, ...at };
    }
  }
  throw new Error(`${name}: never got a shadow leaf`);
}

/** A present leaf of the current shadow and the directory entry above it (addresses). */
function findLeaf(g: Guest): { leaf: number; dir: number } | null {
  const m = g.mem, pae = g.pt.pae, top = g.pt.current.shadow, esz = pae ? 8 : 4;
  const dirs: number[] = [];
  if (!pae) { for (let i = 0; i < 1023; i++) dirs.push(top + i * 4); }
  else {
    for (let i = 0; i < 4; i++) {
      const e = m.read32(top + i * 8);
      if ((e & PTE.P) === 0) continue;
      for (let j = 0; j < (i === 3 ? 510 : 512); j++) dirs.push((e & -4096) + j * 8);
    }
  }
  for (const dir of dirs) {
    const d = m.read32(dir);
    if ((d & PTE.P) === 0) continue;
    for (let k = 0; k < 4096 / esz; k++) {
      const leaf = (d & -4096) + k * esz;
      if ((m.read32(leaf) & PTE.P) !== 0) return { leaf, dir };
    }
  }
  return null;
}

/** A page of the host pool that nothing uses. */
function freeHostPage(g: Guest): number {
  const free = g.pages.freePages;
  return free[free.length - 1];
}

/** Plant one violation into a live host and expect the audit to name it. */
function planted(pae: boolean, plant: (x: ReturnType<typeof live>) => void, expect: RegExp) {
  const x = live(pae);
  plant(x);
  const found = auditHost(x.g);
  assert.ok(
    found.some((v) => expect.test(v)),
    `expected ${expect}, the audit said: ${JSON.stringify(found)}`,
  );
}

describe("host audit", () => {
  it("is silent through whole runs of the example guests", () => {
    for (
      const [name, pae] of [
        ["paging.elf", false],
        ["pae.elf", true],
        ["usermode.elf", false],
        ["async.elf", false],
        ["timer.elf", false],
      ] as const
    ) {
      const r = runAudited(name, pae, 1000, 2_000_000);
      assert.equal(r.g.deathReason, "CRASH: Power down", name);
      assert.ok(r.audits > 10, `${name}: only ${r.audits} audits`);
      assert.deepEqual(r.found, [], name);
    }
  });

  for (const pae of [false, true]) {
    const mode = pae ? "PAE" : "non-PAE";
    it(`${mode}: a shadow leaf pointing at a host page`, () => {
      planted(pae, ({ g, leaf }) => {
        g.mem.write32(leaf, freeHostPage(g) | PTE.P | PTE.RW | PTE.US);
      }, /shadow PTE .* maps neither guest RAM nor device memory/);
    });

    it(`${mode}: a shadow leaf onto a device-window page no device serves`, () => {
      planted(pae, ({ l, g, leaf }) => {
        g.mem.write32(leaf, (g.pfnLimit << 12) | PTE.P | PTE.RW);
        assert.deepEqual(auditHost(g), [], "device memory on the bus may be mapped");
        g.cpu.bus.unmapMmio(l.pci);
      }, /shadow PTE .* maps neither guest RAM nor device memory/);
    });

    it(`${mode}: a shadow directory entry pointing at guest RAM`, () => {
      planted(pae, ({ g, dir }) => {
        g.mem.write32(dir, 0x200000 | PTE.P | PTE.RW | PTE.US);
      }, /not a host pool page/);
    });

    it(`${mode}: a huge page in a shadow directory`, () => {
      planted(pae, ({ g, dir }) => {
        g.mem.write32(dir, g.mem.read32(dir) | PTE.PSE);
      }, /flags the host never sets/);
    });

    it(`${mode}: a host page leaked from the pool`, () => {
      planted(pae, ({ g }) => {
        assert.ok(g.pages.alloc() >= 0);
      }, /a leak or a double free/);
    });

    it(`${mode}: a page in use given back to the pool`, () => {
      planted(pae, ({ g, dir }) => {
        g.pages.release(g.mem.read32(dir) & -4096);
      }, /is free and in use/);
    });

    it(`${mode}: the pool's count off by one`, () => {
      planted(pae, ({ g }) => {
        g.pages.inUse++;
      }, /in use \+ \d+ free != \d+ pages/);
    });

    it(`${mode}: a writable TLB entry onto a host page`, () => {
      planted(pae, ({ g }) => {
        const lin = 0x00400000, pa = freeHostPage(g);
        g.cpu.tlbW[lin >>> 12] = ((pa ^ lin) & -4096) | TLB_SUP;
      }, /write TLB maps linear 0x400000 to/);
    });

    it(`${mode}: a user-readable TLB entry onto the GDT page`, () => {
      planted(pae, ({ g }) => {
        const lin = g.gdt.linear, pa = g.gdt.page;
        g.cpu.tlbR[lin >>> 12] = ((pa ^ lin) & -4096) | TLB_SUP | TLB_USER;
      }, pae ? /read TLB maps linear 0xffe00000/ : /read TLB maps linear 0xffc00000/);
    });

    it(`${mode}: the host's code segment changed in the GDT page`, () => {
      planted(pae, ({ g }) => {
        const at = g.gdt.page + 10 * 8 + 4;
        g.mem.write32(at, g.mem.read32(at) | (3 << 13)); // entry 10 (LGUEST_CS) made DPL 3
      }, /GDT page dword 21 \(entry 10\)/);
    });

    it(`${mode}: a guest segment left at DPL 0`, () => {
      planted(pae, ({ g }) => {
        const i = 12 * 2 + 1; // KERNEL_CS as the host holds it, and in the GDT page
        g.gdt.entries[i] &= ~(3 << 13);
        g.mem.write32(g.gdt.page + i * 4, g.gdt.entries[i]);
      }, /GDT entry 12 is a DPL 0 segment/);
    });

    it(`${mode}: the switcher's GDT mapping made writable`, () => {
      planted(pae, ({ g }) => {
        g.mem.write32(g.pt.switcherPt, g.mem.read32(g.pt.switcherPt) | PTE.RW);
      }, /switcher PTE 0 is/);
    });

    it(`${mode}: CR3 on a guest page`, () => {
      planted(pae, ({ g }) => {
        g.cpu.cr3 = 0x200000;
      }, /CR3 0x200000 is not the current shadow/);
    });

    it(`${mode}: the guest at ring 0, with IOPL, and a vector the CPU delivers`, () => {
      planted(pae, ({ g }) => g.cpu.setCpl(0), /runs at ring 0/);
      planted(pae, ({ g }) => g.cpu.setEflags(g.cpu.getEflags() | IOPL), /IOPL or VM set/);
      planted(pae, ({ g }) => (g.cpu.exitVectors[14] = 0), /vector 14 is delivered by the CPU/);
    });
  }

  it("PAE: a shadow leaf with a high half (a frame above 4 GiB)", () => {
    planted(
      true,
      ({ g, leaf }) => g.mem.write32(leaf + 4, 1),
      /\(high 0x1\) maps neither guest RAM nor device memory/,
    );
  });
});
