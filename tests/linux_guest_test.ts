/**
 * A real Linux 4.9 lguest guest, booted by `repl.ts --run` under the runtime
 * running these tests. The kernels are not part of the repository: they are
 * found through the environment variable LGUEST_TS_GUEST_DIR, a directory
 * holding `bzImage`, `vmlinux`, `initrd.cpio.gz` (busybox; /init prints
 * "== init start ==", uname, /proc/cmdline and "== init done ==", then runs a
 * shell if the command line says `shell`, else `poweroff -f`) and
 * `pae/bzImage`. Without it every test here is skipped, saying why (the skip
 * is decided before the tests are defined, so Deno reports them ignored and
 * Bun skipped; never passed).
 *
 * The guest is 4.9.337, so it has the console bug of the ABI reference's
 * Appendix B: its boot log stops when the virtio console driver binds, and
 * repl.ts says so. With the command line below (README: "A Linux guest") init
 * runs a shell on /dev/hvc1, and scripted console input drives it.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { Pane, pause, replCommand } from "./tmux_pane.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const DIR = process.env.LGUEST_TS_GUEST_DIR ?? "";
const FILES = ["bzImage", "vmlinux", "initrd.cpio.gz", "pae/bzImage"];
const missing = DIR === "" ? null : FILES.filter((f) => !existsSync(join(DIR, f)));
const skip: string | false = DIR === ""
  ? "LGUEST_TS_GUEST_DIR is not set (a directory with a Linux 4.9 lguest guest)"
  : missing!.length > 0
  ? `LGUEST_TS_GUEST_DIR=${DIR} lacks ${missing!.join(", ")}`
  : false;
if (skip) console.warn(`linux_guest_test: skipped: ${skip}`);

/** repl.ts with `args` under this runtime. */
function repl(args: string[], input = "") {
  const [cmd, argv] = replCommand(args);
  const r = spawnSync(cmd, argv, { cwd: ROOT, input, encoding: "utf8", timeout: 600_000 });
  return { status: r.status, out: r.stdout ?? "", err: r.stderr ?? "" };
}

const initrd = () => `--initrd=${join(DIR, "initrd.cpio.gz")}`;

/** The kernel command line that gives init a shell on /dev/hvc1 (the Appendix B workaround). */
export const HVC1_SHELL = [
  "shell",
  "rdinit=/bin/busybox",
  "--",
  "sh",
  "-c",
  `"/bin/busybox --install -s /bin; mount -t proc p /proc; mount -t sysfs s /sys; ` +
  `mount -t devtmpfs d /dev; setsid sh -c 'exec sh </dev/hvc1 >/dev/hvc1 2>&1'; poweroff -f"`,
];

/** The kernel command line that runs the initramfs's own /init with its stdio on /dev/hvc1. */
export const HVC1_INIT = [
  "rdinit=/bin/busybox",
  "--",
  "sh",
  "-c",
  `"/bin/busybox mount -t devtmpfs d /dev; exec /init </dev/hvc1 >/dev/hvc1 2>&1"`,
];

/** The boot log lines every 4.9 guest prints up to its console driver binding, in order. */
const BOOT_LINES = [
  "Reserving virtual address space above 0xfffe1000",
  "Linux version 4.9.",
  "LGUEST: [mem 0x0000000000000000-0x0000000003ffffff] usable",
  "Booting paravirtualized kernel on lguest",
  "lguest: Console via virtio-pci emerg_wr",
  "console [hvc0] enabled",
  "clocksource: lguest: mask: 0xffffffffffffffff",
  "PCI: Using configuration type 1 for base access",
  "pci 0000:00:01.0: BAR 6: assigned [mem 0x04000000-0x040007ff pref]",
  "Unpacking initramfs...",
  "virtio-pci 0000:00:01.0: enabling device (0000 -> 0002)",
];

function assertBootLog(out: string, lines = BOOT_LINES): void {
  let at = 0;
  for (const l of lines) {
    const i = out.indexOf(l, at);
    assert.ok(i >= 0, `boot log lacks (in order) '${l}'`);
    at = i + l.length;
  }
}

describe("a Linux 4.9 lguest guest (LGUEST_TS_GUEST_DIR)", () => {
  for (const k of ["vmlinux", "bzImage"]) {
    it(`${k}: the boot log, the Appendix B note, power-off with status 0`, {
      skip,
      timeout: 600_000,
    }, () => {
      const r = repl(["--run", initrd(), "64", join(DIR, k)]);
      assert.equal(r.status, 0, r.err);
      assertBootLog(r.out);
      assert.match(r.err, /console went silent .* hvc1 .* hvc0 .*Appendix B/);
      assert.match(r.err, /CRASH: Power down; \d+ instructions/);
    });
  }

  it("/init on hvc1: its markers, uname and the command line, then power-off", {
    skip,
    timeout: 600_000,
  }, () => {
    const r = repl(["--run", initrd(), "64", join(DIR, "bzImage"), ...HVC1_INIT]);
    assert.equal(r.status, 0, r.err);
    assertBootLog(r.out);
    assert.match(
      r.out,
      /== init start ==\r?\nLinux \(none\) 4\.9\.\d+ .* i586 GNU\/Linux\r?\nrdinit=\/bin\/busybox -- sh -c .*\r?\n== init done ==/,
    );
    assert.doesNotMatch(r.err, /Appendix B/);
  });

  it("--net=responder: Linux's virtio-net is eth0 with our MAC, and ping 10.0.2.2 answers", {
    skip,
    timeout: 600_000,
  }, () => {
    const r = repl([
      "--run",
      "--net=responder",
      initrd(),
      "64",
      join(DIR, "bzImage"),
      "rdinit=/bin/busybox",
      "--",
      "sh",
      "-c",
      `"/bin/busybox --install -s /bin; mount -t sysfs s /sys; mount -t devtmpfs d /dev; ` +
      `exec >/dev/hvc1 2>&1; ifconfig eth0 10.0.2.15 netmask 255.255.255.0 up; ifconfig eth0; ` +
      `ping -c 3 10.0.2.2; echo ping status $?; poweroff -f"`,
    ]);
    assert.equal(r.status, 0, r.err);
    assert.match(r.out, /virtio-pci 0000:00:02\.0: enabling device/);
    assert.match(r.out, /eth0 +Link encap:Ethernet +HWaddr 52:54:00:12:34:56/);
    for (const seq of [0, 1, 2]) {
      assert.match(r.out, new RegExp(`64 bytes from 10\\.0\\.2\\.2: seq=${seq} ttl=64`));
    }
    assert.match(r.out, /3 packets transmitted, 3 packets received, 0% packet loss/);
    assert.match(r.out, /ping status 0\r?\n/);
  });

  it("the REPL says the Appendix B line too, after the run that shows it", {
    skip,
    timeout: 600_000,
  }, () => {
    const r = repl([initrd(), "64", join(DIR, "vmlinux")], "c\nquit\n");
    assert.equal(r.status, 0, r.err);
    assert.match(
      r.out,
      /the guest ended: CRASH: Power down[^]*\[lguest: the guest's console went silent/,
    );
  });

  it("PAE: the same boot with --pae", { skip, timeout: 600_000 }, () => {
    const r = repl(["--run", "--pae", initrd(), "64", join(DIR, "pae/bzImage")]);
    assert.equal(r.status, 0, r.err);
    assertBootLog(r.out, BOOT_LINES.slice(1));
    assert.match(r.err, /CRASH: Power down/);
  });

  it("a shell on hvc1 answers scripted input, the same bytes and count twice", {
    skip,
    timeout: 600_000,
  }, () => {
    const input = "echo hello $((6*7))\nuname -r\npoweroff -f\n";
    const args = [
      "--run",
      "--console-input=-",
      initrd(),
      "64",
      join(DIR, "vmlinux"),
      ...HVC1_SHELL,
    ];
    const a = repl(args, input);
    assert.equal(a.status, 0, a.err);
    assert.match(a.out, /\/ # .*echo hello \$\(\(6\*7\)\)\r?\nhello 42\r?\n/);
    assert.match(a.out, /uname -r\r?\n4\.9\.\d+\r?\n/);
    assert.doesNotMatch(a.err, /Appendix B/);
    const count = (e: string) => e.match(/; (\d+) instructions/)?.[1];
    assert.ok(count(a.err), a.err);
    const b = repl(args, input);
    assert.equal(b.out, a.out);
    assert.equal(count(b.err), count(a.err));
  });

  it("a panic ends the run with its text as the reason, status 1", {
    skip,
    timeout: 600_000,
  }, () => {
    const r = repl(["--run", initrd(), "64", join(DIR, "vmlinux"), "rdinit=/nonexistent"]);
    assert.equal(r.status, 1, r.err);
    assert.match(r.err, /\[lguest: CRASH: VFS: Unable to mount root fs on unknown-block\(0,0\);/);
  });

  it("in the REPL (tmux): c, the shell answers, Ctrl-] to (lguest), the kernel's tables, c again", {
    skip,
    timeout: 600_000,
  }, async () => {
    const dir = mkdtempSync(join(tmpdir(), "lguest-linux-"));
    const p = new Pane([initrd(), "64", join(DIR, "vmlinux"), ...HVC1_SHELL], join(dir, "h"));
    try {
      await p.prompt("(lguest) ");
      p.type("c");
      p.keys("Enter");
      await p.waitFor((s) => /\/ #$/.test(s), "the shell's prompt", 300_000);
      p.type("echo hi $((6*7))");
      p.keys("Enter");
      await p.waitFor((s) => /\nhi 42\s/.test(s), "the shell's answer", 120_000);
      await pause(500);
      p.keys("C-]");
      await p.prompt("(lguest) ");
      p.type("pgdirs");
      p.keys("Enter");
      await p.waitFor((s) => /shadow page directories/.test(s), "pgdirs");
      await p.prompt("(lguest) ");
      p.type("translate 0xc1000000");
      p.keys("Enter");
      await p.waitFor((s) => /physical +0x01000000 +0x01000000/.test(s), "the kernel's text");
      await p.prompt("(lguest) ");
      p.type("c");
      p.keys("Enter");
      await pause(1000);
      p.type("echo back $((1+1))");
      p.keys("Enter");
      await p.waitFor((s) => /\nback 2\s/.test(s), "the shell again", 120_000);
      p.type("poweroff -f");
      p.keys("Enter");
      await p.waitFor((s) => /CRASH: Power down/.test(s), "the power-off", 120_000);
    } finally {
      p.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
