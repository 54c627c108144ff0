/**
 * The lguest launcher (lib/boot/launcher.ts) against the 4.9 boot protocol
 * (shared/reference/lguest-4.9-abi.md §1): every malformed input becomes a
 * BootError with a one-line message; the zero page holds exactly the fields
 * §1.3 lists and nothing else; the initial vCPU is as §1.4 says; the 2007
 * boot style puts its page tables where the 2007 launcher did. And the front
 * end end to end: repl.ts run as a subprocess, under whichever runtime runs
 * the tests (Deno or Bun).
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import process from "node:process";
import { gzipSync } from "../lib/boot/gzip.ts";
import { Launcher, type LaunchOptions } from "../lib/boot/launcher.ts";
import { BootError } from "../lib/boot/errors.ts";
import { elf32 } from "../lib/debug/guest_builder.ts";
import { CS, DS, ES, FS, GS, SS } from "../lib/x86/cpu.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const hello = new Uint8Array(
  readFileSync(new URL("../examples/lguest/hello.elf", import.meta.url)),
);
const MiB = 1 << 20;

function launch(o: Partial<LaunchOptions> = {}): Launcher {
  return new Launcher({ memMiB: 16, kernel: hello, kernelName: "hello.elf", ...o });
}

/** The launcher refuses `o` with a one-line BootError matching `re`. */
function refuses(o: Partial<LaunchOptions>, re: RegExp): void {
  assert.throws(() => launch(o), (e: unknown) => {
    assert.ok(e instanceof BootError, String(e));
    assert.match(e.message, re);
    assert.doesNotMatch(e.message, /\n/);
    return true;
  });
}

/** A copy of hello.elf with little-endian `bytes` written at `off`. */
function patched(off: number, value: number, size: 2 | 4): Uint8Array {
  const b = hello.slice();
  const dv = new DataView(b.buffer);
  if (size === 2) dv.setUint16(off, value, true);
  else dv.setUint32(off, value, true);
  return b;
}

/** A fake bzImage: setup sectors, the "HdrS" header, then `code` at (setup_sects + 1) * 512. */
function bzImage(code: Uint8Array, setupSects = 4): Uint8Array {
  const off = (setupSects + 1) * 512;
  const b = new Uint8Array(off + code.length);
  const dv = new DataView(b.buffer);
  b[0x1f1] = setupSects;
  dv.setUint16(0x1fe, 0xaa55, true);
  dv.setUint32(0x202, 0x53726448, true); // "HdrS"
  dv.setUint16(0x206, 0x020a, true);
  b[0x211] = 1; // LOADED_HIGH
  dv.setUint32(0x214, 0x100000, true); // code32_start
  dv.setUint32(0x260, 0x123456, true); // init_size: must NOT reach the zero page
  b.set(code, off);
  return b;
}

// ELF32 header and first program header offsets.
const E_TYPE = 16, E_MACHINE = 18, PHDR = 52, P_PADDR = PHDR + 12, P_FILESZ = PHDR + 16;

describe("launcher: malformed input is a one-line BootError", () => {
  it("a file that is not ELF, bzImage or a 2007 gzip image", () => {
    refuses({ kernel: new Uint8Array(4096).fill(0x90) }, /not an ELF, a bzImage \(no HdrS\)/);
    refuses({ kernel: new Uint8Array(0) }, /not an ELF/);
  });

  it("truncated ELF headers", () => {
    refuses({ kernel: hello.slice(0, 40) }, /truncated ELF header/);
    refuses({ kernel: hello.slice(0, 60) }, /truncated program headers/);
  });

  it("ELF files the launcher does not take", () => {
    refuses({ kernel: patched(E_TYPE, 3, 2) }, /not an executable ELF \(e_type 3\)/);
    refuses({ kernel: patched(E_MACHINE, 62, 2) }, /not an i386 ELF/);
    refuses({ kernel: patched(P_FILESZ, 0x100000, 4) }, /runs past the end of the file/);
  });

  it("ELF segments outside guest RAM (or over boot_params and the command line)", () => {
    refuses({ kernel: patched(P_PADDR, 16 * MiB - 100, 4) }, /lies outside guest RAM/);
    refuses({ kernel: patched(P_PADDR, 0x2000000, 4) }, /hello\.elf: segment at 0x2000000/);
    refuses({ kernel: patched(P_PADDR, 0x1000, 4) }, /lies outside guest RAM above 0x1800/);
  });

  it("PT_LOAD segments that overlap in physical memory, or with more file than memory", () => {
    const seg = (paddr: number, len: number) => ({
      paddr,
      vaddr: paddr,
      bytes: new Uint8Array(len),
    });
    const two = (a: number, alen: number, b: number, blen: number) =>
      elf32({ entry: a, segments: [seg(a, alen), seg(b, blen)] });
    refuses(
      { kernel: two(0x100000, 0x2000, 0x101000, 0x1000), kernelName: "two.elf" },
      /^two\.elf: segments 0 and 1 overlap at physical 0x101000$/,
    );
    // Listed in the other order, and one wholly inside the other.
    refuses({ kernel: two(0x108000, 0x100, 0x100000, 0x10000) }, /segments 0 and 1 overlap/);
    // Overlapping only through the zeroed tail (memsz > filesz).
    const bss = two(0x100000, 0x1000, 0x101000, 0x1000);
    new DataView(bss.buffer).setUint32(PHDR + 20, 0x1001, true); // segment 0's p_memsz
    refuses({ kernel: bss }, /segments 0 and 1 overlap at physical 0x101000/);
    // Touching is fine; so is an empty segment anywhere.
    const k = launch({ kernel: two(0x100000, 0x1000, 0x101000, 0x1000) }).kernel;
    assert.equal(k.end, 0x102000);
    assert.equal(launch({ kernel: two(0x100000, 0x1000, 0x100800, 0) }).kernel.end, 0x101000);
    // filesz > memsz.
    refuses({ kernel: patched(PHDR + 20, 0, 4) }, /segment 0 has filesz > memsz/);
  });

  it("a truncated bzImage", () => {
    const full = bzImage(new Uint8Array(64));
    refuses({ kernel: full.slice(0, 0x210) }, /truncated bzImage \(the setup header ends early\)/);
    refuses({ kernel: full.slice(0, 5 * 512) }, /truncated bzImage \(no protected-mode code\)/);
    refuses({ kernel: bzImage(new Uint8Array(20 * MiB)) }, /bzImage does not fit in guest RAM/);
  });

  it("2007 gzip images without the magic, or corrupt", () => {
    const noMagic = gzipSync(new Uint8Array(100), { mtime: 0 });
    refuses({ kernel: noMagic }, /no "GenuineLguest" entry magic/);
    const corrupt = noMagic.slice(0, 12);
    refuses({ kernel: corrupt }, /corrupt gzip stream at offset 0/);
  });

  it("a gzip bomb is refused when its output passes the end of RAM, not after inflating it", () => {
    // 4 MiB of zeros, its deflate stream cut short (the trailer kept, ISIZE plausible):
    // inflating it whole would end in "corrupt"; the launcher must stop at 1 MiB first.
    const full = gzipSync(new Uint8Array(4 * MiB), { level: 1, mtime: 0 });
    const cut = full.slice(0, full.length - 8 - 64);
    const bomb = new Uint8Array(cut.length + 8);
    bomb.set(cut);
    bomb.set(full.subarray(full.length - 8), cut.length);
    refuses(
      { memMiB: 2, kernel: bomb, kernelName: "bomb.gz" },
      /^bomb\.gz: gzip stream inflates to more than 1048576 bytes \(what fits in guest RAM above 1 MiB\)$/,
    );
    // Members one after another, 1 MiB of input inflating to 1 GiB (as zlib, each is inflated in turn).
    const member = gzipSync(new Uint8Array(MiB), { level: 9, mtime: 0 });
    const members = new Uint8Array(member.length * 1024);
    for (let i = 0; i < 1024; i++) members.set(member, i * member.length);
    refuses({ memMiB: 16, kernel: members }, /gzip stream inflates to more than 15728640 bytes/);
  });

  it("a 2007 image's ISIZE is not trusted, and bytes after its gzip stream are ignored", () => {
    const img = new Uint8Array(
      readFileSync(new URL("../examples/lguest/boot2007.img", import.meta.url)),
    );
    const good = launch({ kernel: img }).kernel;
    assert.equal(good.format, "lguest-2007");
    for (const isize of [0, 0xffffffff, 1]) {
      const lied = img.slice();
      new DataView(lied.buffer).setUint32(lied.length - 4, isize, true);
      assert.deepEqual(launch({ kernel: lied }).kernel, good, `ISIZE ${isize}`);
    }
    const trailed = new Uint8Array(img.length + 5000).fill(0x55);
    trailed.set(img);
    assert.deepEqual(launch({ kernel: trailed }).kernel, good);
  });

  it("a 2007 image may fill guest RAM above 1 MiB exactly, and not one byte more", () => {
    const flat = new Uint8Array(MiB);
    flat.set(new TextEncoder().encode("GenuineLguest"), 100);
    const k = launch({ memMiB: 2, kernel: gzipSync(flat, { mtime: 0 }) }).kernel;
    assert.equal(k.end, 2 * MiB);
    assert.equal(k.entry, MiB + 113);
    const over = new Uint8Array(MiB + 1);
    over.set(flat);
    refuses(
      { memMiB: 2, kernel: gzipSync(over, { mtime: 0 }) },
      /inflates to more than 1048576 bytes/,
    );
  });

  it("an initrd larger than RAM, or one that does not fit above the kernel", () => {
    refuses(
      { initrd: new Uint8Array(16 * MiB) },
      /initrd: 16777216 bytes is larger than guest RAM/,
    );
    refuses(
      { memMiB: 2, initrd: new Uint8Array(1.5 * MiB), initrdName: "big.cpio" },
      /big\.cpio: does not fit above the kernel in 2 MiB/,
    );
  });

  it("memory size out of range", () => {
    for (const memMiB of [0, 1, 1025, 2048, 1.5, NaN, -16]) {
      refuses({ memMiB }, /memory size must be 2 to 1024 MiB for an lguest guest/);
    }
  });

  it("a command line too long", () => {
    refuses({ cmdline: "x".repeat(2048) }, /kernel command line longer than 2047 bytes/);
    assert.doesNotThrow(() => launch({ cmdline: "x".repeat(2047) }));
  });

  it("a PAE guest on the 2007 (non-PAE) launcher-built tables", () => {
    refuses({ pae: true, pagetables: "launcher" }, /2007 page tables are non-PAE/);
    assert.equal(launch({ pae: true }).guest.pt.pae, true);
  });

  it("no room for the 2007 page tables below the initrd", () => {
    // hello.elf ends just above 1 MiB: leave room for it, but not for 2 more pages.
    const end = 0x100000 + new DataView(hello.buffer).getUint32(PHDR + 20, true);
    const top = Math.ceil(end / 4096) * 4096;
    refuses(
      { memMiB: 2, initrd: new Uint8Array(2 * MiB - top), pagetables: "launcher" },
      /no room below the initrd for the launcher's page tables in 2 MiB/,
    );
  });
});

describe("launcher: boot_params at guest-physical 0 (§1.3)", () => {
  /** Byte ranges the launcher may write; everything else in the page must be 0. */
  const WRITTEN: [number, number][] = [
    [0x1e8, 1], // e820_entries
    [0x2d0, 20], // e820_map[0]
    [0x206, 2], // hdr.version
    [0x210, 1], // type_of_loader
    [0x211, 1], // loadflags
    [0x218, 4], // ramdisk_image
    [0x21c, 4], // ramdisk_size
    [0x228, 4], // cmd_line_ptr
    [0x230, 4], // kernel_alignment
    [0x23c, 4], // hardware_subarch
  ];

  function zeroPage(l: Launcher) {
    const m = l.guest.mem;
    const u8 = m.u8, dv = m.dv;
    for (let i = 0; i < 4096; i++) {
      if (WRITTEN.some(([at, n]) => i >= at && i < at + n)) continue;
      assert.equal(u8[i], 0, `boot_params byte 0x${i.toString(16)}`);
    }
    return { u8, dv };
  }

  it("without an initrd", () => {
    const l = launch({ cmdline: "console=hvc0 root=/dev/vda" });
    const { u8, dv } = zeroPage(l);
    assert.equal(u8[0x1e8], 1);
    assert.equal(dv.getBigUint64(0x2d0, true), 0n);
    assert.equal(dv.getBigUint64(0x2d8, true), BigInt(16 * MiB));
    assert.equal(dv.getUint32(0x2e0, true), 1, "E820_RAM");
    assert.equal(dv.getUint16(0x206, true), 0x207);
    assert.equal(u8[0x211], 0x40, "KEEP_SEGMENTS only");
    assert.equal(dv.getUint32(0x228, true), 0x1000);
    assert.equal(dv.getUint32(0x230, true), 0x1000000);
    assert.equal(dv.getUint32(0x23c, true), 1, "X86_SUBARCH_LGUEST");
    assert.equal(u8[0x210], 0, "type_of_loader only with an initrd");
    assert.equal(dv.getUint32(0x218, true), 0);
    assert.equal(dv.getUint32(0x21c, true), 0);
    const cmd = new TextDecoder().decode(u8.subarray(0x1000, 0x1000 + 26));
    assert.equal(cmd, "console=hvc0 root=/dev/vda");
    assert.equal(u8[0x1000 + 26], 0);
  });

  it("with an initrd: loader 0xFF, the image at the top of RAM, its size page-aligned", () => {
    const initrd = new Uint8Array(5000).map((_, i) => i & 0xff);
    const l = launch({ memMiB: 32, initrd });
    const { u8, dv } = zeroPage(l);
    assert.equal(u8[0x210], 0xff);
    assert.equal(dv.getUint32(0x218, true), 32 * MiB - 8192);
    assert.equal(dv.getUint32(0x21c, true), 8192, "page-aligned, not 5000");
    assert.equal(l.initrdStart, 32 * MiB - 8192);
    assert.deepEqual(u8.slice(l.initrdStart, l.initrdStart + 5000), initrd);
    assert.equal(dv.getBigUint64(0x2d8, true), BigInt(32 * MiB));
    assert.equal(u8[0x1000], 0, "an empty command line");
  });

  it("a bzImage: code at 1 MiB, entry code32_start, its setup header not copied (§1.2)", () => {
    const code = new Uint8Array([0xcd, 0x1f, 0xeb, 0xfe]);
    const l = launch({ kernel: bzImage(code) });
    assert.equal(l.kernel.format, "bzImage");
    assert.equal(l.kernel.entry, 0x100000);
    assert.deepEqual(l.guest.mem.u8.slice(0x100000, 0x100004), code);
    zeroPage(l); // no HdrS, setup_sects or init_size at 0
    assert.equal(l.guest.mem.dv.getUint32(0x260, true), 0, "init_size stays 0");
  });
});

describe("launcher: the guest it starts", () => {
  it("the initial vCPU (§1.4): EIP = entry, ring 1, 0x61/0x69, EFLAGS 0x202, registers 0", () => {
    const l = launch();
    const g = l.guest, cpu = g.cpu;
    assert.equal(l.kernel.format, "elf");
    assert.equal(cpu.eip, l.kernel.entry);
    assert.equal(cpu.cpl, 1);
    assert.equal(cpu.sreg[CS], 0x61);
    for (const s of [DS, ES, SS]) assert.equal(cpu.sreg[s], 0x69);
    for (const s of [FS, GS]) assert.equal(cpu.sreg[s], 0);
    assert.equal(cpu.getEflags(), 0x202);
    assert.deepEqual([...cpu.regs], [0, 0, 0, 0, 0, 0, 0, 0]);
    assert.ok(g.pt.linear);
    assert.equal(g.lguestData, -1);
    for (let v = 0; v < 256; v++) assert.equal(g.idt.present(v), false);
    const gdt = [...g.gdt.entries].map((x) => x >>> 0);
    assert.deepEqual(gdt.slice(24, 28), [0x0000ffff, 0x00cfbb00, 0x0000ffff, 0x00cfb300]);
    assert.equal(gdt.filter((x) => x !== 0).length, 4, "all else zero");
    assert.equal(g.pfnLimit, 16 * MiB / 4096);
  });

  it("2007 page tables: the directory just below the initrd, PTE pages below it, flags 7", () => {
    const initrd = new Uint8Array(3 * 4096 + 1);
    const l = launch({ memMiB: 16, initrd, pagetables: "launcher" });
    const dv = l.guest.mem.dv;
    assert.equal(l.initrdStart, 16 * MiB - 4 * 4096);
    assert.equal(l.pgdir, l.initrdStart - 4096);
    const first = l.pgdir - 4 * 4096; // 16 MiB: 4 PTE pages
    for (let i = 0; i < 1024; i++) {
      const pde = dv.getUint32(l.pgdir + i * 4, true);
      assert.equal(pde, i < 4 ? (first + i * 4096) | 7 : 0, `pgd[${i}]`);
    }
    for (let p = 0; p < 4096; p++) {
      assert.equal(dv.getUint32(first + p * 4, true), (p << 12) | 7, `pte ${p}`);
    }
    assert.equal(l.guest.pt.linear, false);
    assert.equal(l.guest.pt.current.gpgdir, l.pgdir);
    // Without an initrd: at the top of RAM.
    const top = launch({ memMiB: 8, pagetables: "launcher" });
    assert.equal(top.pgdir, 8 * MiB - 4096);
    assert.equal(top.guest.mem.dv.getUint32(top.pgdir, true), (8 * MiB - 3 * 4096) | 7);
  });
});

describe("repl.ts --run as a subprocess", () => {
  const bun = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined";

  /** Run repl.ts with `args` under the runtime running these tests. */
  function repl(...args: string[]) {
    const argv = bun ? ["repl.ts", ...args] : ["run", "-A", "repl.ts", ...args];
    const r = spawnSync(process.execPath, argv, { cwd: ROOT, encoding: "utf8" });
    assert.equal(r.error, undefined);
    return r;
  }

  it("runs hello to its power-off: exit status 0", () => {
    const r = repl("--run", "16", "examples/lguest/hello.elf");
    assert.equal(r.stdout, "Hello from an lguest guest on lguest.ts!\n");
    assert.match(r.stderr, /\[lguest: CRASH: Power down; \d+ instructions in [\d.]+ s/);
    assert.equal(r.status, 0, r.stderr);
  });

  it("reports a killed guest's reason: exit status 1", () => {
    const r = repl("--run", "16", "examples/lguest/hostile.elf", "gdt40");
    assert.match(r.stdout, /^hostile: gdt40: /);
    assert.match(r.stderr, /\[lguest: too many gdt entries 40; /);
    assert.equal(r.status, 1);
  });

  it("boots the 2007 image on the launcher's page tables", () => {
    const r = repl("--run", "--pagetables=launcher", "16", "examples/lguest/boot2007.img");
    assert.doesNotMatch(r.stdout, /FAIL/);
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });

  it("a bad kernel file is one line on stderr: exit status 2", () => {
    const r = repl("--run", "16", "examples/lguest/no-such-kernel.elf");
    assert.equal(r.stdout, "");
    assert.equal(r.stderr, "repl.ts: examples/lguest/no-such-kernel.elf: no such file\n");
    assert.equal(r.status, 2);
  });
});
