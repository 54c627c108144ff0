/**
 * The bare machine end to end: the example program runs on the CPU, prints
 * through the UART, halts, and does so deterministically; the launcher's
 * command line and its one-line errors for bad input.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { BareMachine } from "../lib/boot/bare.ts";
import { parseLauncherArgs } from "../lib/boot/cmdline.ts";
import { BootError } from "../lib/boot/errors.ts";
import { parseElf } from "../lib/boot/elf.ts";

const hello = new Uint8Array(readFileSync(new URL("../examples/hello.elf", import.meta.url)));

/** Primes below n by a sieve: the answer the guest must print, computed independently. */
function primesBelow(n: number): number {
  const composite = new Uint8Array(n);
  let count = 0;
  for (let i = 2; i < n; i++) {
    if (composite[i]) continue;
    count++;
    for (let j = i * i; j < n; j += i) composite[j] = 1;
  }
  return count;
}

describe("bare machine", () => {
  it("runs examples/hello.elf to cli;hlt with the right answer", () => {
    const m = new BareMachine(16);
    m.loadKernel(hello, "hello.elf");
    const r = m.run(50_000_000);
    assert.equal(r.reason, "halt");
    assert.equal(r.status, 0);
    const out = m.output.text();
    assert.match(out, /^Hello from lguest\.ts/);
    assert.ok(out.includes(`primes below 20000: ${primesBelow(20000)}\n`), out);
  });

  it("is deterministic: same output and instruction count twice", () => {
    const runs = [0, 1].map(() => {
      const m = new BareMachine(16);
      m.loadKernel(hello);
      const r = m.run();
      return { out: m.output.text(), n: r.instructions };
    });
    assert.equal(runs[0].out, runs[1].out);
    assert.equal(runs[0].n, runs[1].n);
    assert.ok(runs[0].n > 1_000_000);
  });

  it("reports a fault with no IDT as a triple fault, naming the first fault", () => {
    const m = new BareMachine(1);
    // nop; ud2 — with the empty IDT of a fresh bare machine. The #GP error codes are
    // vector*8 + IDT(2) + EXT(1): each arises while delivering an earlier exception.
    m.mem.load(0x1000, new Uint8Array([0x90, 0x0f, 0x0b]));
    m.cpu.eip = 0x1000;
    const r = m.run();
    assert.equal(r.reason, "shutdown");
    assert.match(
      r.message,
      /^shutdown: triple fault: #UD at eip=0x1001 -> #GP\(0x33\) -> #GP\(0x6b\) -> #DF\(0\) -> #GP\(0x43\)$/,
    );
  });

  it("stops at isa-debug-exit with QEMU's status convention", () => {
    const m = new BareMachine(1);
    // mov al, 0x21 ; mov dx, 0x501 ; out dx, al ; jmp $
    m.mem.load(0x1000, new Uint8Array([0xb0, 0x21, 0x66, 0xba, 0x01, 0x05, 0xee, 0xeb, 0xfe]));
    m.cpu.eip = 0x1000;
    const r = m.run();
    assert.equal(r.reason, "debug-exit");
    assert.equal(r.status, (0x21 << 1) | 1);
    assert.equal(r.instructions, 3);
  });
});

describe("launcher command line", () => {
  it("takes options before the memory size and after the kernel", () => {
    const a = parseLauncherArgs([
      "--bare",
      "32",
      "vmlinux",
      "--run",
      "--initrd=ird",
      "console=hvc0",
      "--x",
    ]);
    assert.equal(a.bare, true);
    assert.equal(a.run, true);
    assert.equal(a.memMiB, 32);
    assert.equal(a.kernel, "vmlinux");
    assert.equal(a.initrd, "ird");
    assert.deepEqual(a.kernelArgs, ["console=hvc0", "--x"]);
  });

  it("takes the devices: --block=FILE[,ro] (repeatable) and --rng[=seed:N]", () => {
    const a = parseLauncherArgs(["--block=disk.img", "--rng", "16", "k", "--block=b.img,ro"]);
    assert.deepEqual(a.blocks, [
      { path: "disk.img", readOnly: false },
      { path: "b.img", readOnly: true },
    ]);
    assert.deepEqual(a.deviceOrder, ["block", "rng", "block"]);
    assert.equal(a.rngSeed, "host", "--rng alone: the host's randomness");
    assert.equal(parseLauncherArgs(["16", "k", "--rng=seed:77"]).rngSeed, 77);
    assert.equal(parseLauncherArgs(["16", "k", "--rng=seed:0"]).rngSeed, 0);
    assert.equal(parseLauncherArgs(["16", "k"]).rngSeed, undefined);
    assert.equal(parseLauncherArgs(["--input=in.txt", "16", "k"]).input, "in.txt");
    for (const bad of ["--rng=x", "--rng=77", "--rng=seed:", "--rng=seed:-1", "--rng=seed:2x"]) {
      assert.throws(() => parseLauncherArgs([bad, "16", "k"]), /--rng takes seed:N/, bad);
    }
    assert.throws(() => parseLauncherArgs(["--block=,ro", "16", "k"]), /--block needs a file/);
  });

  it("gives one-line errors for bad input", () => {
    const bad: string[][] = [[], ["0", "k"], ["abc", "k"], ["4096", "k"], ["2048", "k"], [
      "--nope",
      "16",
      "k",
    ], [
      "16",
    ], [
      "--pagetables=sideways",
      "16",
      "k",
    ]];
    for (const argv of bad) {
      assert.throws(() => parseLauncherArgs(argv), (e: unknown) => {
        return e instanceof BootError && !e.message.includes("\n") && e.message.length > 0;
      }, argv.join(" "));
    }
  });

  it("rejects malformed ELF files with a BootError", () => {
    const cases: Uint8Array[] = [
      new Uint8Array([1, 2, 3]),
      hello.slice(0, 40),
      hello.slice(0, 60),
      (() => {
        const b = hello.slice();
        b[4] = 2; // 64-bit class
        return b;
      })(),
      (() => {
        const b = hello.slice();
        new DataView(b.buffer).setUint32(52 + 16, 0x7fffffff, true); // p_filesz past the end
        return b;
      })(),
    ];
    for (const c of cases) assert.throws(() => parseElf(c), BootError);
    const m = new BareMachine(1);
    assert.throws(() => m.loadKernel(hello), /outside 1 MiB of RAM/);
  });
});
