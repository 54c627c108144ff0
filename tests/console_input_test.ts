/**
 * Console input to a guest: scripted lines typed at the guest's idle points
 * (lib/boot/console_input.ts), the same way in every run, and the end of a
 * run as `repl.ts --run` reports it (power-off 0, reboot 4, a guest that is
 * no lguest guest named so). The guest is tests/guests/console_echo.asm: it
 * posts a receive buffer, HALTs until the console's IRQ 1, echoes the line
 * after a "> " prompt, and powers off on "q" (reboots on "r").
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { Launcher } from "../lib/boot/launcher.ts";
import { ConsoleWatch, endReason } from "../lib/boot/diagnosis.ts";
import { elf32, X86 } from "../lib/debug/guest_builder.ts";
import { Pane, pause, replCommand } from "./tmux_pane.ts";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const ROOT = new URL("..", import.meta.url).pathname;
const ECHO = new Uint8Array(
  readFileSync(new URL("./guests/console_echo.elf", import.meta.url)),
);
const enc = new TextEncoder();

/** Boot the echo guest with `input`, running it in slices of `slice` instructions. */
function echo(input: string | undefined, slice = 1 << 24) {
  const l = new Launcher({
    memMiB: 16,
    kernel: ECHO,
    kernelName: "console_echo.elf",
    consoleScript: input === undefined ? undefined : enc.encode(input),
  });
  const g = l.guest;
  let stop;
  for (let i = 0; i < 1_000_000; i++) {
    stop = g.run(slice);
    if (stop !== "budget") break;
  }
  return { l, g, stop, out: l.text() };
}

describe("scripted console input", () => {
  it("types each line when the guest waits at its prompt, and it answers", () => {
    const r = echo("hello\nworld\nq\n");
    assert.equal(r.stop, "dead");
    assert.equal(r.g.deathReason, "CRASH: Power down");
    assert.equal(
      r.out,
      "echo: type lines; q ends\n> got: hello\n> got: world\n> got: q\nbye\n",
    );
    const d = r.l.consoleScript!.delivered;
    assert.deepEqual(d.map((x) => new TextDecoder().decode(x.bytes)), [
      "hello\n",
      "world\n",
      "q\n",
    ]);
    assert.equal(r.l.consoleScript!.remaining, 0);
    // Each line went in after the previous one's echo: counts strictly increase.
    assert.ok(d[0].icount < d[1].icount && d[1].icount < d[2].icount);
  });

  it("lands at the same instruction counts however the run is sliced", () => {
    const a = echo("one\ntwo\nthree\nq\n");
    const b = echo("one\ntwo\nthree\nq\n", 97);
    const c = echo("one\ntwo\nthree\nq\n", 1);
    for (const x of [b, c]) {
      assert.equal(x.out, a.out);
      assert.equal(x.g.cpu.icount, a.g.cpu.icount);
      assert.deepEqual(
        x.l.consoleScript!.delivered.map((d) => d.icount),
        a.l.consoleScript!.delivered.map((d) => d.icount),
      );
    }
  });

  it("a last line without a newline is typed too; without input the guest waits", () => {
    const r = echo("abc\nq");
    assert.match(r.out, /> got: abc\n> got: q\nbye\n$/);
    const l = new Launcher({ memMiB: 16, kernel: ECHO });
    assert.equal(l.guest.run(200_000), "budget");
    assert.equal(l.text(), "echo: type lines; q ends\n> ");
    assert.ok(l.guest.nowNs() > 60e9, "a minute of virtual time went by, idle");
  });

  it("the Appendix B watch stays quiet for a guest that is not Linux", () => {
    const l = new Launcher({ memMiB: 16, kernel: ECHO, consoleScript: enc.encode("q\n") });
    const w = new ConsoleWatch(l);
    while (l.guest.run(500) === "budget") assert.equal(w.check(), null);
    assert.equal(w.check(), null);
    assert.equal(l.guest.deathReason, "CRASH: Power down");
  });
});

describe("how a run ends", () => {
  it("a guest that traps before LHCALL_LGUEST_INIT is named as no lguest guest", () => {
    const a = new X86(0x100000);
    a.label("_start");
    a.hlt(); // privileged: #GP at ring 1, and no IDT yet
    const kernel = elf32({ entry: a.addr("_start"), segments: [a.segment()] });
    const l = new Launcher({ memMiB: 16, kernel });
    assert.equal(l.guest.run(1000), "dead");
    assert.match(l.guest.deathReason, /^unhandled trap 13/);
    assert.match(
      endReason(l),
      /^not an lguest guest: unhandled trap 13 \(#GP\) at 0x100000 .*LHCALL_LGUEST_INIT.*CONFIG_LGUEST_GUEST/,
    );
    // After its first hypercall the reason is the host's, unchanged.
    const ok = echo("q\n");
    assert.equal(endReason(ok.l), "CRASH: Power down");
  });

  const repl = (args: string[], input = "") => {
    const [cmd, argv] = replCommand(args);
    return spawnSync(cmd, argv, { cwd: ROOT, input, encoding: "utf8", timeout: 60_000 });
  };

  it("repl.ts --run --console-input=-: power-off is status 0, a reboot request 4", {
    timeout: 120_000,
  }, () => {
    const off = repl(
      ["--run", "--console-input=-", "16", "tests/guests/console_echo.elf"],
      "hi\nq\n",
    );
    assert.equal(off.status, 0, off.stderr);
    assert.equal(off.stdout, "echo: type lines; q ends\n> got: hi\n> got: q\nbye\n");
    assert.match(off.stderr, /CRASH: Power down; \d+ instructions .*2 lines typed, 0 left/);
    assert.doesNotMatch(off.stderr, /Appendix B/);
    const reboot = repl(
      ["--run", "--console-input=-", "16", "tests/guests/console_echo.elf"],
      "reboot\n",
    );
    assert.equal(reboot.status, 4, reboot.stderr);
    assert.match(reboot.stderr, /CRASH: Restarting system/);
    const help = repl(["--help"]);
    assert.match(help.stdout, /--console-input=FILE/);
    assert.match(help.stdout, /4 when it asks to reboot/);
  });
});

describe("the terminal belongs to the running guest (tmux)", () => {
  it("keys reach the guest's console, Ctrl-] returns to (lguest), c gives them back", {
    timeout: 120_000,
  }, async () => {
    const dir = mkdtempSync(join(tmpdir(), "lguest-keys-"));
    const p = new Pane(["16", "tests/guests/console_echo.elf"], join(dir, "history"));
    try {
      await p.prompt("(lguest) ");
      p.type("c");
      p.keys("Enter");
      await p.waitFor((s) => s.includes("echo: type lines; q ends\n>"), "the guest's prompt");
      p.type("typed here");
      p.keys("Enter");
      await p.waitFor((s) => s.includes("got: typed here"), "the guest's echo");
      p.keys("C-]");
      await p.waitFor((s) => /interrupted/.test(s), "the escape's stop");
      await p.prompt("(lguest) ");
      // The REPL has the keys again: a command runs.
      p.type("lguest");
      p.keys("Enter");
      await p.waitFor((s) => s.includes("irq_enabled"), "the lguest command's output");
      await p.prompt("(lguest) ");
      p.type("c");
      p.keys("Enter");
      await pause(500);
      p.type("q");
      p.keys("Enter");
      await p.waitFor((s) => /got: q\s+bye/.test(s), "the guest's last echo");
      await p.waitFor((s) => /the guest ended: CRASH: Power down/.test(s), "the power-off");
    } finally {
      p.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
