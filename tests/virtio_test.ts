/**
 * A guest driver for the virtio console over the modern PCI transport
 * (examples/lguest/virtio.asm), run under the launcher: it discovers the
 * function through PCI config space, negotiates features, sets up both
 * queues, transmits three requests and receives input, checking each step
 * from the inside ("ok: …" lines). This test asserts those lines and then
 * the same facts from the outside: the transport's registers, the rings in
 * guest RAM, the bytes on the console, the interrupts the host raised.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { Launcher } from "../lib/boot/launcher.ts";
import { STATUS } from "../lib/devices/virtio_pci.ts";
import { RECEIVEQ, TRANSMITQ } from "../lib/devices/virtio_console.ts";

const kernel = new Uint8Array(
  readFileSync(new URL("../examples/lguest/virtio.elf", import.meta.url)),
);

function run(input?: string) {
  const l = new Launcher({ memMiB: 16, kernel, kernelName: "virtio.elf" });
  const g = l.guest;
  const irqs: number[] = [];
  const set = g.setInterrupt.bind(g);
  g.setInterrupt = (irq: number) => (irqs.push(irq), set(irq));
  if (input !== undefined) l.console.input(new TextEncoder().encode(input));
  const stop = g.run(10_000_000);
  return { l, g, stop, out: l.text(), irqs };
}

const OKS = [
  "slot 1 is a virtio console (1AF4:1043)",
  "BAR0 sizes as 128 bytes",
  "and reads back its address after the restore",
  "interrupt line 1",
  "five virtio capabilities (common, notify, ISR, PCI_CFG, device)",
  "notify at BAR0 offset 56",
  "ISR at BAR0 offset 58",
  "device config at BAR0 offset 60",
  "EMERG_WRITE offered",
  "VERSION_1 offered",
  "FEATURES_OK reads back",
  "two queues",
  "queue_size offers 256",
  "the queue is enabled",
  "queue_size offers 256",
  "the queue is enabled",
  "DRIVER_OK: the device is live",
  "the request is used when the notify write retires",
  "used.ring[0].id is its head, descriptor 0",
  "one queue interrupt",
  "the handler read ISR bit 0",
  "reading the ISR cleared it",
  "the chain is used",
  "used.ring[1].id is the chain's head, descriptor 1",
  "a second interrupt",
  "the third request is used",
  "with avail.flags NO_INTERRUPT, no interrupt",
];

const oks = (out: string) =>
  out.split("\n").filter((s) => s.startsWith("ok: ")).map((s) => s.slice(4));

describe("virtio: a guest driver on the modern PCI transport", () => {
  it("negotiates, sets up the queues and transmits; every step checked", () => {
    const r = run();
    assert.equal(r.stop, "dead", r.out);
    assert.equal(r.g.deathReason, "CRASH: Power down", r.out);
    assert.doesNotMatch(r.out, /FAIL/, r.out);
    assert.deepEqual(oks(r.out), OKS);
    // The transmitted text reached the console, in order, between the checks.
    const sent = r.out.split("\n").filter((s) => s.startsWith("virtio: ") && !s.includes("over"));
    assert.deepEqual(sent, [
      "virtio: hello through the transmit queue",
      "virtio: a chain of two descriptors",
      "virtio: hello through the transmit queue",
    ]);
    assert.match(r.out, /no input was waiting for the console\n/);
    // From the outside: the transport's state and the rings in guest RAM.
    const fn = r.l.consolePci, dev = r.l.console;
    assert.equal(
      fn.status,
      STATUS.ACKNOWLEDGE | STATUS.DRIVER | STATUS.FEATURES_OK | STATUS.DRIVER_OK,
    );
    assert.deepEqual(dev.driverFeatures, [0, 1], "VERSION_1 only");
    const tx = dev.queues[TRANSMITQ], rx = dev.queues[RECEIVEQ];
    assert.ok(tx.enabled && rx.enabled);
    assert.equal(tx.size, 8);
    assert.equal(tx.usedIdx, 3);
    assert.equal(r.g.mem.dv.getUint16(tx.used + 2, true), 3, "used.idx in guest RAM");
    assert.equal(rx.usedIdx, 0);
    assert.deepEqual(r.irqs, [1, 1], "two queue interrupts, none for NO_INTERRUPT");
    assert.equal(fn.isr, 0);
  });

  it("receives the input the host holds for the console", () => {
    const r = run("xyz");
    assert.equal(r.g.deathReason, "CRASH: Power down", r.out);
    assert.doesNotMatch(r.out, /FAIL/, r.out);
    assert.deepEqual(oks(r.out), [
      ...OKS,
      "no more than the buffer holds",
      "the receive interrupt",
    ]);
    assert.match(r.out, /received bytes: 00000003\n.*\nreceived: xyz\n/);
    assert.equal(r.l.console.pendingInput, 0);
    assert.equal(r.l.console.queues[RECEIVEQ].usedIdx, 1);
    assert.deepEqual(r.irqs, [1, 1, 1]);
  });

  it("is deterministic: same output and instruction count twice", () => {
    const a = run("q"), b = run("q");
    assert.equal(a.out, b.out);
    assert.equal(a.g.cpu.icount, b.g.cpu.icount);
  });
});
