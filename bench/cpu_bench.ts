/**
 * CPU benchmark, one runtime: prints JSON figures for the guest loops in
 * bench/guests (assembled by `deno task asm`) and the bare example program.
 *
 *   (a) alu_loop: a tight ALU loop inside one page;
 *   (b) page_walk: with paging on, each access touches a new page, across
 *       1024 pages;
 *   (c) decompressor: the Debian i386 kernel's decompressor from the 32-bit
 *       entry to the kernel entry (only when tests/debian_kernel.ts has cached
 *       the kernel), with the JIT and with a breakpoint (interpreter), and
 *       qemu-system-i386 (TCG) timed over the same stretch when QEMU and gdb
 *       are installed;
 *   (d) a Linux boot: the lguest guest kernel in $LGUEST_TS_GUEST_DIR
 *       (bzImage and initrd.cpio.gz, whose /init prints "== init done ==" and
 *       powers off) from its first instruction to the power-off, and to the
 *       /init marker when the console shows it; skipped with a message when
 *       the variable is not set.
 *
 * Arguments, when given, pick sections by name prefix (`alu_loop`,
 * `page_walk`, `hello.elf`, `decompressor`, `linux`); none runs them all.
 *
 * Each figure is millions of guest instructions retired per second of wall
 * time, over a run long enough that start-up and JIT warm-up are a small part
 * (the first, shorter run is a warm-up and is not reported). `bench/run.ts`
 * runs this under Deno and under Bun and prints the table for README.md.
 *
 * @module
 */

import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { CPU, Exit } from "../lib/x86/cpu.ts";
import { PhysicalMemory } from "../lib/x86/memory.ts";
import { BareMachine } from "../lib/boot/bare.ts";
import { kernelLoadAddress, parseBzImage } from "../lib/boot/bzimage.ts";
import { Launcher } from "../lib/boot/launcher.ts";
import { cachedKernelPath } from "../tests/debian_kernel.ts";

const here = (p: string) => new URL(p, import.meta.url);

const DECOMPRESSOR_CMDLINE = "nokaslr earlyprintk=serial,ttyS0,115200 console=ttyS0";

/**
 * Seconds qemu-system-i386 (TCG) spends from the bzImage's 32-bit entry
 * (0x100000) to the kernel entry (0x1000000), timed between two hardware
 * breakpoints by gdb through QEMU's gdb stub; or why it could not be timed.
 * The instruction count is taken to be ours: same image, same path.
 */
function qemuDecompressorSeconds(bzImage: string): number | string {
  for (const tool of ["qemu-system-i386", "gdb"]) {
    if (spawnSync(tool, ["--version"]).status !== 0) return `${tool} not installed, skipped`;
  }
  const port = 20000 + (process.pid % 20000);
  const script = [
    "import gdb, time",
    `gdb.execute("target remote 127.0.0.1:${port}")`,
    'gdb.execute("hbreak *0x100000")',
    'gdb.execute("continue")',
    "t0 = time.time()",
    'gdb.execute("delete")',
    'gdb.execute("hbreak *0x1000000")',
    'gdb.execute("continue")',
    "t = time.time() - t0",
    'print("QEMU-EIP %s SECONDS %f" % (gdb.parse_and_eval("$eip"), t))',
    'gdb.execute("kill")',
  ].join("\n");
  const dir = mkdtempSync(join(tmpdir(), "lguest-bench-"));
  try {
    writeFileSync(join(dir, "time.py"), script);
    const qemu = spawn("qemu-system-i386", [
      "-accel",
      "tcg",
      "-m",
      "256",
      "-kernel",
      bzImage,
      "-append",
      DECOMPRESSOR_CMDLINE,
      "-display",
      "none",
      "-monitor",
      "none",
      "-serial",
      "null",
      "-no-reboot",
      "-gdb",
      `tcp:127.0.0.1:${port}`,
      "-S",
    ], { stdio: "ignore" });
    try {
      let r;
      for (let i = 0; i < 50; i++) {
        r = spawnSync("gdb", ["-batch", "-nx", "-x", join(dir, "time.py")], {
          encoding: "utf8",
          timeout: 120_000,
        });
        if (!/Connection refused/.test(r.stderr ?? "")) break;
        spawnSync("sleep", ["0.1"]);
      }
      const m = /QEMU-EIP (0x[0-9a-f]+) SECONDS ([\d.]+)/.exec(r?.stdout ?? "");
      if (!m) {
        return `gdb did not reach the kernel entry (${(r?.stderr ?? "").trim().split("\n").pop()})`;
      }
      if (Number(m[1]) !== 0x1000000) return `QEMU stopped at ${m[1]}, not 0x1000000`;
      return Number(m[2]);
    } finally {
      qemu.kill();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

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

/** The sections named on the command line (by prefix), or all of them. */
const only = process.argv.slice(2);
const want = (name: string) => only.length === 0 || only.some((o) => name.startsWith(o));

const results: Record<string, { mips: number; insns: number; seconds: number }> = {};
function record(name: string, r: { insns: number; seconds: number }) {
  results[name] = { mips: mips(r), insns: r.insns, seconds: Math.round(r.seconds * 1000) / 1000 };
}

// (a) tight ALU loop: warm up, then 60M iterations x 5 instructions.
if (want("alu_loop")) {
  runFlat("guests/alu_loop.bin", (c) => (c.regs[1] = 2_000_000));
  record("alu_loop", runFlat("guests/alu_loop.bin", (c) => (c.regs[1] = 60_000_000)));
}

// (b) a new page on every access: warm up, then 40000 passes x 1024 pages x 4 instructions.
if (want("page_walk")) {
  runFlat("guests/page_walk.bin", (c) => (c.regs[2] = 1000));
  record("page_walk", runFlat("guests/page_walk.bin", (c) => (c.regs[2] = 40_000)));
}

// The bare example program (DIV-heavy trial division, port I/O for output).
if (want("hello.elf")) {
  const m = new BareMachine(16);
  m.loadKernel(new Uint8Array(readFileSync(here("../examples/hello.elf"))));
  const r = m.run();
  record("hello.elf", { insns: r.instructions, seconds: r.seconds });
}

// (c) The Debian i386 kernel's decompressor (tests/x86_decompressor_test.ts), when its
// bzImage is already cached: the bench never downloads. First with a breakpoint on the
// kernel entry (the interpreter, as the test runs), which gives the exact instruction
// count; then the same count again with the JIT, which must stop at the same EIP.
if (want("decompressor")) {
  const path = cachedKernelPath();
  if (path === null) {
    console.error(
      "decompressor: no cached Debian kernel (sh tools/test-setup.sh fetches it)",
    );
  } else {
    const bz = new Uint8Array(readFileSync(path));
    const entry = kernelLoadAddress(parseBzImage(bz, path).header);
    const boot = () => {
      const m = new BareMachine(64);
      m.loadKernel(bz, path, DECOMPRESSOR_CMDLINE);
      return m;
    };
    const m = boot();
    m.cpu.breakpoints.add(entry);
    let t0 = performance.now();
    let exit = m.cpu.run(20e9);
    const bpSeconds = (performance.now() - t0) / 1000;
    if (exit !== Exit.Breakpoint) {
      throw new Error(`decompressor: exit ${exit}, not the kernel entry`);
    }
    const insns = m.cpu.icount;
    const j = boot();
    t0 = performance.now();
    exit = j.cpu.run(insns);
    const seconds = (performance.now() - t0) / 1000;
    if (exit !== Exit.Budget || j.cpu.eip !== entry) {
      throw new Error(
        `decompressor (JIT): exit ${exit} at 0x${j.cpu.eip.toString(16)}, not the kernel entry`,
      );
    }
    record("decompressor", { insns, seconds });
    record("decompressor (breakpoint)", { insns, seconds: bpSeconds });
    const q = qemuDecompressorSeconds(path);
    if (typeof q === "number") record("decompressor (QEMU TCG)", { insns, seconds: q });
    else console.error(`decompressor (QEMU TCG): ${q}`);
  }
}

// (d) A Linux boot under the lguest host, when a guest kernel is given: the whole run,
// decompressor and kernel init included (mostly cold code, so translation cost counts).
if (want("linux")) {
  const dir = process.env.LGUEST_TS_GUEST_DIR;
  if (!dir) {
    console.error(
      "linux boot: LGUEST_TS_GUEST_DIR is not set (a directory with bzImage and initrd.cpio.gz), skipped",
    );
  } else {
    const MARKER = "== init done ==";
    let text = "", markerAt = -1, markerSeconds = 0, t0 = 0;
    const l = new Launcher({
      memMiB: 64,
      kernel: new Uint8Array(readFileSync(join(dir, "bzImage"))),
      initrd: new Uint8Array(readFileSync(join(dir, "initrd.cpio.gz"))),
      console: (b) => {
        if (markerAt >= 0) return;
        text = (text + String.fromCharCode(b)).slice(-MARKER.length);
        if (text === MARKER) {
          markerAt = l.guest.cpu.icount;
          markerSeconds = (performance.now() - t0) / 1000;
        }
      },
    });
    const g = l.guest;
    t0 = performance.now();
    let stop;
    do stop = g.run(1 << 24); while (stop === "budget");
    const seconds = (performance.now() - t0) / 1000;
    if (!g.poweredOff) throw new Error(`linux boot: ${stop} (${g.deathReason}), not a power-off`);
    if (markerAt >= 0) {
      record("linux boot (to /init marker)", { insns: markerAt, seconds: markerSeconds });
    }
    record("linux boot (to power-off)", { insns: g.cpu.icount, seconds });
  }
}

console.log(JSON.stringify(results));
