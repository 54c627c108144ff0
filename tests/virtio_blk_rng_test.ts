/**
 * Guest drivers for the virtio block and entropy devices over the modern PCI
 * transport (examples/lguest/virtio_blk.asm and virtio_rng.asm, sharing the
 * driver core in examples/include/virtio.inc), run under the launcher. Each
 * checks every answer from the inside ("ok: …" lines, a poweroff only when
 * all passed); this test asserts those lines and the same facts from the
 * outside: the disk file's bytes after the guest wrote and powered off, the
 * requests the device served, the interrupts raised, and the entropy bytes
 * against the seeded generator `--rng=seed:N` names.
 */

import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Launcher } from "../lib/boot/launcher.ts";
import { openDisk } from "../lib/boot/disk_file.ts";
import {
  BLOCK_ID,
  VIRTIO_BLK_T_FLUSH,
  VIRTIO_BLK_T_GET_ID,
  VIRTIO_BLK_T_IN,
  VIRTIO_BLK_T_OUT,
} from "../lib/devices/virtio_blk.ts";
import { seededBytes } from "../lib/devices/virtio_rng.ts";
import { replCommand } from "./tmux_pane.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const TMP = mkdtempSync(join(tmpdir(), "lguest-blkrng-"));
after(() => rmSync(TMP, { recursive: true, force: true }));

const guest = (name: string) =>
  new Uint8Array(readFileSync(new URL(`../examples/lguest/${name}`, import.meta.url)));

const oks = (out: string) =>
  out.split("\n").filter((s) => s.startsWith("ok: ")).map((s) => s.slice(4));

/** The checks a request makes in vio_kick, then its own. */
const KICK = [
  "the request came back used",
  "with one interrupt",
  "whose ISR read showed the queue bit",
];
const START = [
  "the PCI ID is the device's",
  "its interrupt line is its slot",
  "VERSION_1 offered",
  "FEATURES_OK reads back",
  "one queue",
  "DRIVER_OK: the device is live",
];

function runGuest(name: string, o: Partial<ConstructorParameters<typeof Launcher>[0]>) {
  const l = new Launcher({ memMiB: 16, kernel: guest(name), kernelName: name, ...o });
  const g = l.guest;
  const irqs: number[] = [];
  const set = g.setInterrupt.bind(g);
  g.setInterrupt = (irq: number) => (irqs.push(irq), set(irq));
  const stop = g.run(10_000_000);
  return { l, g, stop, out: l.text(), irqs };
}

/** A dword of `b` at `at`, little-endian, as the guest's early_puthex prints it. */
const hex = (b: Uint8Array, at: number) =>
  new DataView(b.buffer, b.byteOffset + at, 4).getUint32(0, true).toString(16).padStart(8, "0");

describe("virtio_blk: a guest driver for the block device", () => {
  const sector0 = new Uint8Array(512);
  crypto.getRandomValues(sector0);
  const rest = new Uint8Array(7 * 512).map((_, i) => i * 7);
  const image = () => {
    const path = join(TMP, `disk-${Math.random().toString(36).slice(2)}.img`);
    writeFileSync(path, new Uint8Array([...sector0, ...rest]));
    return path;
  };

  it("GET_ID, read, write, read back, flush, IOERR, UNSUPP; the file holds the write", () => {
    const path = image();
    const r = runGuest("virtio_blk.elf", { block: openDisk(path, false) });
    assert.equal(r.stop, "dead", r.out);
    assert.equal(r.g.deathReason, "CRASH: Power down", r.out);
    assert.doesNotMatch(r.out, /FAIL/, r.out);
    assert.deepEqual(oks(r.out), [
      ...START,
      "SEG_MAX offered",
      ...KICK,
      "GET_ID: OK",
      ...KICK,
      "read sector 0: OK",
      "used length: 512 bytes and the status",
      ...KICK,
      "write sector 1: OK",
      ...KICK,
      "read sector 1: OK",
      "sector 1 reads back as written",
      ...KICK,
      "FLUSH: OK",
      ...KICK,
      "a read past the end: IOERR",
      ...KICK,
      "request type 99: UNSUPP",
    ]);
    assert.match(r.out, new RegExp(`\nid: ${BLOCK_ID}\n`));
    assert.match(r.out, /\ncapacity: 00000008\n/);
    assert.match(r.out, new RegExp(`\nsector 0 starts: ${hex(sector0, 0)}\n`));
    // From the outside: the file after the poweroff.
    const file = new Uint8Array(readFileSync(path));
    assert.equal(file.length, 8 * 512);
    assert.deepEqual(file.subarray(0, 512), sector0, "sector 0 untouched");
    assert.deepEqual(file.subarray(512, 1024), sector0.map((b) => b ^ 0xff), "sector 1 written");
    assert.deepEqual(file.subarray(1024), rest.subarray(512), "the rest untouched");
    const served = r.l.block!.served;
    assert.deepEqual(
      [VIRTIO_BLK_T_GET_ID, VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT, VIRTIO_BLK_T_FLUSH, 99].map((t) =>
        served.get(t)
      ),
      [1, 3, 1, 1, 1],
    );
    assert.deepEqual(r.irqs, [2, 2, 2, 2, 2, 2, 2], "one interrupt on IRQ 2 per request");
    assert.match(r.out, /\ninterrupts: 00000007\n/);
  });

  it("through repl.ts: --block=FILE,ro refuses the write (IOERR) and leaves the file alone", {
    timeout: 60_000,
  }, () => {
    const path = image();
    const before = readFileSync(path);
    const [cmd, argv] = replCommand([
      "--run",
      `--block=${path},ro`,
      "16",
      "examples/lguest/virtio_blk.elf",
    ]);
    const r = spawnSync(cmd, argv, { cwd: ROOT, encoding: "utf8", timeout: 60_000 });
    assert.match(r.stdout, /\nFAIL: write sector 1: OK\n/, r.stdout);
    assert.match(r.stdout, /\nFAIL: sector 1 reads back as written\n/);
    assert.match(r.stdout, /\nok: read sector 0: OK\n/);
    assert.match(r.stdout, /\nok: a read past the end: IOERR\n/);
    assert.equal(r.status, 1, "checks failed: not a clean poweroff");
    assert.deepEqual(readFileSync(path), before);
    const bad = spawnSync(
      cmd,
      replCommand(["--run", `--block=${TMP}`, "16", "examples/lguest/virtio_blk.elf"])[1],
      {
        cwd: ROOT,
        encoding: "utf8",
        timeout: 60_000,
      },
    );
    assert.equal(bad.status, 2);
    assert.equal(bad.stderr, `repl.ts: --block=${TMP}: is a directory\n`);
  });
});

describe("virtio_rng: a guest driver for the entropy device", () => {
  const printed = (out: string) =>
    out.split("\n").filter((s) => s.startsWith("rng: ")).map((s) => s.slice(5));

  it("--rng=seed:N: two requests, the generator's next 32 bytes, in order", () => {
    for (const seed of [7, 123456789]) {
      const r = runGuest("virtio_rng.elf", { rngSeed: seed });
      assert.equal(r.g.deathReason, "CRASH: Power down", r.out);
      assert.doesNotMatch(r.out, /FAIL/, r.out);
      assert.deepEqual(oks(r.out), [
        ...START,
        "no features but VERSION_1 offered",
        ...KICK,
        "used length: 16 bytes",
        ...KICK,
        "used length: 16 bytes",
        "the two requests got different bytes",
      ]);
      const want = new Uint8Array(32);
      seededBytes(seed)(want);
      const words = (at: number) => [0, 4, 8, 12].map((i) => hex(want, at + i)).join(" ");
      assert.deepEqual(printed(r.out), [words(0), words(16)], `seed ${seed}`);
      assert.equal(r.l.rng!.given, 32);
      assert.deepEqual(r.irqs, [2, 2]);
    }
  });

  it("--rng: the host's randomness, different each run", () => {
    const a = runGuest("virtio_rng.elf", { rngSeed: "host" });
    const b = runGuest("virtio_rng.elf", { rngSeed: "host" });
    for (const r of [a, b]) {
      assert.equal(r.g.deathReason, "CRASH: Power down", r.out);
      assert.doesNotMatch(r.out, /FAIL/, r.out);
    }
    assert.equal(printed(a.out).length, 2);
    assert.notDeepEqual(printed(a.out), printed(b.out));
  });
});
