/**
 * The devices (lib/devices) on a plain memory host: the split virtqueue
 * (chains, indirect tables, the used ring, interrupt suppression with and
 * without EVENT_IDX, malformed chains), the virtio PCI transport with the
 * console behind it (the driver's state machine, queue banking, notify, the
 * ISR), the block and entropy devices, each checked against the bytes in
 * guest RAM; and the launcher's slots for them.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { MemoryDeviceHost } from "../lib/devices/host.ts";
import {
  Virtqueue,
  VRING_AVAIL_F_NO_INTERRUPT,
  VRING_DESC_F_INDIRECT,
  VRING_DESC_F_NEXT,
  VRING_DESC_F_WRITE,
} from "../lib/devices/virtqueue.ts";
import { REG, STATUS, type VirtioDevice, VirtioPciFunction } from "../lib/devices/virtio_pci.ts";
import { EMERG_WR_OFFSET, VirtioConsole } from "../lib/devices/virtio_console.ts";
import {
  SEG_MAX,
  VIRTIO_BLK_F_RO,
  VIRTIO_BLK_S_IOERR,
  VIRTIO_BLK_S_OK,
  VIRTIO_BLK_S_UNSUPP,
  VIRTIO_BLK_T_FLUSH,
  VIRTIO_BLK_T_GET_ID,
  VIRTIO_BLK_T_IN,
  VIRTIO_BLK_T_OUT,
  VirtioBlock,
} from "../lib/devices/virtio_blk.ts";
import { seededBytes, VirtioRng } from "../lib/devices/virtio_rng.ts";
import { Launcher } from "../lib/boot/launcher.ts";
import { openDisk } from "../lib/boot/disk_file.ts";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const DESC = 0x1000, AVAIL = 0x2000, USED = 0x3000, N = 8;

function ram() {
  const bytes = new Uint8Array(0x10000);
  return { bytes, dv: new DataView(bytes.buffer), host: new MemoryDeviceHost(bytes) };
}

type Mem = ReturnType<typeof ram>;

function desc(m: Mem, table: number, i: number, addr: number, len: number, flags = 0, next = 0) {
  m.dv.setUint32(table + 16 * i, addr, true);
  m.dv.setUint32(table + 16 * i + 4, 0, true);
  m.dv.setUint32(table + 16 * i + 8, len, true);
  m.dv.setUint16(table + 16 * i + 12, flags, true);
  m.dv.setUint16(table + 16 * i + 14, next, true);
}

/** Make `heads` available, after whatever is there. */
function offer(m: Mem, ...heads: number[]) {
  let idx = m.dv.getUint16(AVAIL + 2, true);
  for (const h of heads) m.dv.setUint16(AVAIL + 4 + 2 * (idx++ % N), h, true);
  m.dv.setUint16(AVAIL + 2, idx, true);
}

function queue(m: Mem): Virtqueue {
  const q = new Virtqueue(m.host, "test queue", 256);
  q.size = N;
  q.desc = DESC;
  q.avail = AVAIL;
  q.used = USED;
  assert.ok(q.check());
  q.enabled = true;
  return q;
}

describe("split virtqueue", () => {
  it("walks a chain (readable, then writable) and returns it in the used ring", () => {
    const m = ram(), q = queue(m);
    m.bytes.set([1, 2, 3], 0x8000);
    m.bytes.set([4, 5], 0x8100);
    desc(m, DESC, 3, 0x8000, 3, VRING_DESC_F_NEXT, 5);
    desc(m, DESC, 5, 0x8100, 2, VRING_DESC_F_NEXT, 1);
    desc(m, DESC, 1, 0x9000, 4, VRING_DESC_F_WRITE);
    assert.equal(q.pop(), null, "nothing offered yet");
    offer(m, 3);
    const c = q.pop()!;
    assert.deepEqual(c, {
      head: 3,
      out: [{ addr: 0x8000, len: 3 }, { addr: 0x8100, len: 2 }],
      in: [{ addr: 0x9000, len: 4 }],
    });
    assert.deepEqual([...q.gather(c, 100)!], [1, 2, 3, 4, 5]);
    assert.deepEqual([...q.gather(c, 4)!], [1, 2, 3, 4]);
    assert.equal(q.scatter(c, new Uint8Array([9, 8, 7, 6, 5, 4])), 4);
    assert.deepEqual([...m.bytes.subarray(0x9000, 0x9005)], [9, 8, 7, 6, 0]);
    q.push(c.head, 4);
    assert.equal(m.dv.getUint16(USED + 2, true), 1, "used.idx");
    assert.equal(m.dv.getUint32(USED + 4, true), 3, "used.ring[0].id");
    assert.equal(m.dv.getUint32(USED + 8, true), 4, "used.ring[0].len");
    assert.equal(q.needsInterrupt(), true);
    assert.equal(q.needsInterrupt(), false, "nothing new since");
    assert.equal(q.pop(), null);
    assert.deepEqual(m.host.failures, []);
  });

  it("honours avail.flags NO_INTERRUPT", () => {
    const m = ram(), q = queue(m);
    desc(m, DESC, 0, 0x8000, 1);
    offer(m, 0);
    m.dv.setUint16(AVAIL, VRING_AVAIL_F_NO_INTERRUPT, true);
    q.push(q.pop()!.head, 0);
    assert.equal(q.needsInterrupt(), false);
  });

  it("follows an indirect table only when negotiated", () => {
    const m = ram(), q = queue(m);
    const TABLE = 0x4000;
    desc(m, TABLE, 0, 0x8000, 10, VRING_DESC_F_NEXT, 1);
    desc(m, TABLE, 1, 0x9000, 20, VRING_DESC_F_WRITE);
    desc(m, DESC, 2, TABLE, 32, VRING_DESC_F_INDIRECT);
    offer(m, 2);
    assert.equal(q.pop(), null);
    assert.deepEqual(m.host.failures, ["test queue: indirect descriptor not negotiated"]);
    q.indirect = true;
    offer(m, 2);
    assert.deepEqual(q.pop(), {
      head: 2,
      out: [{ addr: 0x8000, len: 10 }],
      in: [{ addr: 0x9000, len: 20 }],
    });
    desc(m, TABLE, 1, TABLE, 16, VRING_DESC_F_INDIRECT);
    offer(m, 2);
    assert.equal(q.pop(), null);
    assert.equal(m.host.failures.at(-1), "test queue: nested indirect descriptors");
  });

  it("refuses loops, readable-after-writable, bad heads and runaway avail indexes", () => {
    const m = ram(), q = queue(m);
    desc(m, DESC, 0, 0x8000, 1, VRING_DESC_F_NEXT, 1);
    desc(m, DESC, 1, 0x8000, 1, VRING_DESC_F_NEXT, 0);
    desc(m, DESC, 2, 0x8000, 1, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 3);
    desc(m, DESC, 3, 0x8000, 1);
    offer(m, 0, 2, 9);
    for (let i = 0; i < 3; i++) assert.equal(q.pop(), null);
    assert.deepEqual(m.host.failures, [
      "test queue: descriptor chain loops",
      "test queue: readable buffer after a writable one",
      "test queue: descriptor 9 out of range",
    ]);
    m.dv.setUint16(AVAIL + 2, q.lastAvail + N + 1, true);
    assert.equal(q.pop(), null);
    assert.match(m.host.failures.at(-1)!, /avail idx \d+ is more than 8 ahead/);
  });

  it("with EVENT_IDX: interrupts only past used_event, and publishes avail_event", () => {
    const m = ram(), q = queue(m);
    q.eventIdx = true;
    desc(m, DESC, 0, 0x8000, 1);
    const usedEvent = AVAIL + 4 + 2 * N, availEvent = USED + 4 + 8 * N;
    m.dv.setUint16(usedEvent, 0, true); // "interrupt me when used.idx passes 0"
    offer(m, 0, 0, 0);
    q.push(q.pop()!.head, 0);
    assert.equal(m.dv.getUint16(availEvent, true), 1, "avail_event = next avail index");
    assert.equal(q.needsInterrupt(), true, "used.idx went 0 -> 1: past used_event 0");
    q.push(q.pop()!.head, 0);
    assert.equal(q.needsInterrupt(), false, "1 -> 2 does not cross used_event 0");
    m.dv.setUint16(usedEvent, 2, true);
    q.push(q.pop()!.head, 0);
    assert.equal(q.needsInterrupt(), true, "2 -> 3 crosses used_event 2");
    assert.equal(m.dv.getUint16(availEvent, true), 3);
  });

  it("checks the rings when enabled: alignment, inside RAM, used.flags 0", () => {
    const m = ram();
    const q = new Virtqueue(m.host, "q", 256);
    q.size = N;
    q.desc = DESC + 8;
    q.avail = AVAIL;
    q.used = USED;
    assert.equal(q.check(), false);
    q.desc = 0xfff0;
    assert.equal(q.check(), false);
    q.desc = DESC;
    m.dv.setUint16(USED, 1, true);
    assert.equal(q.check(), false);
    assert.deepEqual(m.host.failures, [
      "q: misaligned rings",
      "q: ring at 0xfff0 outside guest RAM",
      "q: used.flags is not 0",
    ]);
  });
});

describe("virtio PCI transport with the console", () => {
  function consoleFn() {
    const m = ram(), out: number[] = [];
    const dev = new VirtioConsole(m.host, (b) => out.push(b));
    const fn = new VirtioPciFunction(dev, 1, 0x100000);
    return { m, out, dev, fn };
  }

  /** The driver's side of probing: status, features, both queues, DRIVER_OK. */
  function bringUp(fn: VirtioPciFunction) {
    fn.barWrite(REG.deviceStatus, STATUS.ACKNOWLEDGE, 1);
    fn.barWrite(REG.deviceStatus, STATUS.ACKNOWLEDGE | STATUS.DRIVER, 1);
    fn.barWrite(REG.deviceFeatureSelect, 1, 4);
    assert.equal(fn.barRead(REG.deviceFeature, 4), 1, "VERSION_1");
    fn.barWrite(REG.driverFeatureSelect, 1, 4);
    fn.barWrite(REG.driverFeature, 1, 4);
    fn.barWrite(REG.deviceStatus, 1 | 2 | STATUS.FEATURES_OK, 1);
    assert.equal(fn.barRead(REG.deviceStatus, 1), 1 | 2 | 8);
    for (const [i, base] of [[0, 0x1000], [1, 0x5000]]) {
      fn.barWrite(REG.queueSelect, i, 2);
      assert.equal(fn.barRead(REG.queueSize, 2), 256);
      fn.barWrite(REG.queueSize, N, 2);
      fn.barWrite(REG.queueDescLo, base, 4);
      fn.barWrite(REG.queueAvailLo, base + 0x1000, 4);
      fn.barWrite(REG.queueUsedLo, base + 0x2000, 4);
      fn.barWrite(REG.queueEnable, 1, 2);
      assert.equal(fn.barRead(REG.queueEnable, 2), 1);
    }
    fn.barWrite(REG.deviceStatus, 1 | 2 | 8 | STATUS.DRIVER_OK, 1);
  }

  it("offers the console's identity and capabilities in config space", () => {
    const { fn } = consoleFn();
    assert.equal(fn.configRead(0, 4) >>> 0, 0x10431af4);
    assert.equal(fn.configRead(0x34, 1), 0x40);
    assert.equal(fn.configRead(0x3c, 1), 1, "interrupt line");
    assert.equal(fn.barSize, 128);
    assert.equal(fn.regsSize, 72);
  });

  it("transmits on notify, returns the buffer used, interrupts; ISR reads clear", () => {
    const { m, out, dev, fn } = consoleFn();
    bringUp(fn);
    assert.deepEqual(m.host.failures, []);
    assert.ok(dev.live);
    const TX_DESC = 0x5000, TX_AVAIL = 0x6000, TX_USED = 0x7000;
    m.bytes.set(new TextEncoder().encode("hi!"), 0x9000);
    desc(m, TX_DESC, 0, 0x9000, 2, VRING_DESC_F_NEXT, 1);
    desc(m, TX_DESC, 1, 0x9002, 1);
    m.dv.setUint16(TX_AVAIL + 4, 0, true);
    m.dv.setUint16(TX_AVAIL + 2, 1, true);
    fn.barWrite(REG.notify, 1, 2);
    assert.equal(new TextDecoder().decode(new Uint8Array(out)), "hi!");
    assert.equal(m.dv.getUint16(TX_USED + 2, true), 1);
    assert.equal(m.host.raised.get(1), 1);
    assert.equal(fn.barRead(REG.isr, 1), 1);
    assert.equal(m.host.irqs.get(1), false, "reading the ISR lowered the line");
    assert.equal(fn.barRead(REG.isr, 1), 0);
    fn.barWrite(EMERG_WR_OFFSET, 0x1234_5621, 4);
    assert.equal(out.at(-1), 0x21);
    assert.deepEqual(m.host.failures, []);
  });

  it("feeds input into posted receive buffers, holding it until there are some", () => {
    const { m, dev, fn } = consoleFn();
    dev.input(new TextEncoder().encode("abc"));
    assert.equal(dev.pendingInput, 3);
    bringUp(fn);
    assert.equal(dev.pendingInput, 3, "no receive buffers yet");
    desc(m, 0x1000, 0, 0xa000, 2, VRING_DESC_F_WRITE);
    desc(m, 0x1000, 1, 0xb000, 16, VRING_DESC_F_WRITE);
    m.dv.setUint16(0x2000 + 4, 0, true);
    m.dv.setUint16(0x2000 + 6, 1, true);
    m.dv.setUint16(0x2000 + 2, 2, true);
    fn.barWrite(REG.notify, 0, 2);
    assert.equal(dev.pendingInput, 0);
    assert.equal(new TextDecoder().decode(m.bytes.subarray(0xa000, 0xa002)), "ab");
    assert.equal(new TextDecoder().decode(m.bytes.subarray(0xb000, 0xb001)), "c");
    assert.equal(m.dv.getUint16(0x3000 + 2, true), 2, "two used");
    assert.equal(m.dv.getUint32(0x3000 + 8, true), 2, "first len");
    assert.equal(m.dv.getUint32(0x3000 + 16, true), 1, "second len");
    assert.equal(m.host.raised.get(1), 1, "one interrupt for the batch");
  });

  it("reports a driver breaking the protocol, and the access does nothing", () => {
    const { m, fn } = consoleFn();
    const fails = m.host.failures;
    assert.equal(fn.barRead(REG.deviceFeature, 4), 0);
    assert.equal(fails.at(-1), "virtio console: feature read before DRIVER");
    fn.barWrite(REG.deviceStatus, STATUS.DRIVER, 1);
    assert.equal(fails.at(-1), "virtio console: status 0x2 out of order");
    assert.equal(fn.status, 0);
    fn.barWrite(REG.deviceStatus, 1, 1);
    fn.barWrite(REG.deviceStatus, 3, 1);
    fn.barWrite(REG.driverFeature, 1 << 5, 4);
    assert.equal(fails.at(-1), "virtio console: accepted features 0x20 not offered");
    fn.barWrite(REG.queueDescLo, 0x1000, 4);
    assert.equal(fails.at(-1), "virtio console: queue set up before FEATURES_OK");
    fn.barWrite(REG.deviceStatus, 3 | 8, 1);
    assert.equal(fn.status, 3, "no VERSION_1: FEATURES_OK refused");
    assert.equal(fn.barRead(REG.deviceFeature, 2), 0);
    assert.match(fails.at(-1)!, /read of 2 bytes at BAR0 offset 0x4: not a register/);
    fn.barRead(0x46, 4);
    assert.match(fails.at(-1)!, /outside its 72 bytes of registers/);
    fn.barWrite(REG.deviceStatus, 1, 1);
    assert.equal(fails.at(-1), "virtio console: status 0x1 clears bits");
    fn.barWrite(REG.deviceStatus, 0, 1);
    assert.equal(fn.status, 0, "0 resets");
  });
});

describe("virtio block and entropy devices", () => {
  /** A live device behind its transport, with its one queue at 0x1000. */
  function live<T extends VirtioDevice>(make: (h: MemoryDeviceHost) => T) {
    const m = ram();
    const dev = make(m.host);
    const fn = new VirtioPciFunction(dev, 2, 0x100000);
    fn.barWrite(REG.deviceStatus, 1, 1);
    fn.barWrite(REG.deviceStatus, 3, 1);
    fn.barWrite(REG.driverFeatureSelect, 1, 4);
    fn.barWrite(REG.driverFeature, 1, 4);
    fn.barWrite(REG.deviceStatus, 11, 1);
    fn.barWrite(REG.queueSize, N, 2);
    fn.barWrite(REG.queueDescLo, DESC, 4);
    fn.barWrite(REG.queueAvailLo, AVAIL, 4);
    fn.barWrite(REG.queueUsedLo, USED, 4);
    fn.barWrite(REG.queueEnable, 1, 2);
    fn.barWrite(REG.deviceStatus, 15, 1);
    assert.deepEqual(m.host.failures, []);
    return { m, dev, fn };
  }

  /** A block request: header (type, sector), optional data out, `inLen` bytes in. */
  function request(
    m: Mem,
    head: number,
    type: number,
    sector: number,
    inLen: number,
    data?: number[],
  ) {
    const hdr = 0x8000 + head * 0x400;
    m.dv.setUint32(hdr, type, true);
    m.dv.setUint32(hdr + 8, sector, true);
    let d = head;
    desc(m, DESC, d, hdr, 16, VRING_DESC_F_NEXT, d + 1);
    if (data) {
      m.bytes.set(data, hdr + 0x20);
      desc(m, DESC, ++d, hdr + 0x20, data.length, VRING_DESC_F_NEXT, d + 1);
    }
    desc(m, DESC, ++d, hdr + 0x100, inLen, VRING_DESC_F_WRITE);
    offer(m, head);
    return hdr + 0x100;
  }

  it("block: capacity, reads, writes, flush, GET_ID, and the status byte", () => {
    const disk = new Uint8Array(4 * 512);
    disk.set([0xde, 0xad, 0xbe, 0xef], 512);
    const { m, dev, fn } = live((h) => new VirtioBlock(h, disk));
    assert.equal(fn.barRead(60, 4), 4, "capacity: 4 sectors");
    assert.equal(fn.barRead(64, 4), 0);
    assert.equal(fn.barRead(72, 4), SEG_MAX);
    const rd = request(m, 0, VIRTIO_BLK_T_IN, 1, 513);
    fn.barWrite(REG.notify, 0, 2);
    assert.deepEqual([...m.bytes.subarray(rd, rd + 4)], [0xde, 0xad, 0xbe, 0xef]);
    assert.equal(m.bytes[rd + 512], VIRTIO_BLK_S_OK, "status after the data");
    assert.equal(m.dv.getUint32(USED + 8, true), 513, "used len: data + status");
    const wr = request(m, 3, VIRTIO_BLK_T_OUT, 3, 1, [1, 2, 3]);
    fn.barWrite(REG.notify, 0, 2);
    assert.deepEqual([...disk.subarray(1536, 1539)], [1, 2, 3]);
    assert.equal(m.bytes[wr], VIRTIO_BLK_S_OK);
    assert.equal(m.dv.getUint32(USED + 16, true), 1);
    const id = request(m, 5, VIRTIO_BLK_T_GET_ID, 0, 21);
    fn.barWrite(REG.notify, 0, 2);
    assert.equal(new TextDecoder().decode(m.bytes.subarray(id, id + 9)), "lguest.ts");
    const un = request(m, 0, 99, 0, 1);
    fn.barWrite(REG.notify, 0, 2);
    assert.equal(m.bytes[un], VIRTIO_BLK_S_UNSUPP);
    const past = request(m, 3, VIRTIO_BLK_T_IN, 5, 513);
    fn.barWrite(REG.notify, 0, 2);
    assert.equal(m.bytes[past + 512], VIRTIO_BLK_S_IOERR);
    assert.deepEqual(m.host.failures, []);
    request(m, 5, VIRTIO_BLK_T_OUT, 4, 1, [9]);
    fn.barWrite(REG.notify, 0, 2);
    assert.deepEqual(m.host.failures, ["virtio block: write past the end of the disk (sector 4)"]);
    assert.equal(dev.served.get(VIRTIO_BLK_T_IN), 2);
    assert.equal(m.host.raised.get(2), 6, "an interrupt per kick");
  });

  it("block: a writable buffer of 4 GiB is neither allocated nor trusted", () => {
    const disk = new Uint8Array(2 * 512).fill(7);
    const { m, fn } = live((h) => new VirtioBlock(h, disk));
    const rd = request(m, 0, VIRTIO_BLK_T_IN, 0, 0xfffffff0);
    assert.doesNotThrow(() => fn.barWrite(REG.notify, 0, 2));
    assert.equal(m.bytes[rd + 1023], 7, "the disk's bytes were copied");
    assert.equal(m.dv.getUint32(USED + 8, true), 1025, "used len: the data + the status");
    assert.deepEqual(m.host.failures, ["virtio block: status byte outside guest RAM"]);
  });

  it("block: read-only disks offer VIRTIO_BLK_F_RO and answer writes with IOERR", () => {
    const disk = new Uint8Array(2 * 512).fill(3);
    const { m, fn } = live((h) => new VirtioBlock(h, { bytes: disk, readOnly: true }));
    fn.barWrite(REG.deviceFeatureSelect, 0, 4);
    assert.equal(fn.barRead(REG.deviceFeature, 4) & (1 << VIRTIO_BLK_F_RO), 1 << VIRTIO_BLK_F_RO);
    const wr = request(m, 0, VIRTIO_BLK_T_OUT, 1, 1, [9, 9]);
    fn.barWrite(REG.notify, 0, 2);
    assert.equal(m.bytes[wr], VIRTIO_BLK_S_IOERR);
    assert.deepEqual([...disk.subarray(512, 514)], [3, 3], "the disk is unchanged");
    const rd = request(m, 3, VIRTIO_BLK_T_IN, 1, 3);
    fn.barWrite(REG.notify, 0, 2);
    assert.deepEqual([...m.bytes.subarray(rd, rd + 3)], [3, 3, VIRTIO_BLK_S_OK], "reads work");
    const rw = live((h) => new VirtioBlock(h, new Uint8Array(512)));
    rw.fn.barWrite(REG.deviceFeatureSelect, 0, 4);
    assert.equal(rw.fn.barRead(REG.deviceFeature, 4) & (1 << VIRTIO_BLK_F_RO), 0);
  });

  it("block: writes go through to the backing store, FLUSH flushes it, its errors are IOERR", () => {
    const calls: string[] = [];
    let broken = false;
    const bytes = new Uint8Array(4 * 512);
    const { m, fn, dev } = live((h) =>
      new VirtioBlock(h, {
        bytes,
        write: (off, data) => {
          if (broken) throw new Error("disk full");
          calls.push(`write ${off} ${[...data]}`);
        },
        flush: () => calls.push("flush"),
      })
    );
    request(m, 0, VIRTIO_BLK_T_OUT, 2, 1, [4, 5, 6]);
    fn.barWrite(REG.notify, 0, 2);
    const fl = request(m, 3, VIRTIO_BLK_T_FLUSH, 0, 1);
    fn.barWrite(REG.notify, 0, 2);
    assert.deepEqual(calls, ["write 1024 4,5,6", "flush"]);
    assert.equal(m.bytes[fl], VIRTIO_BLK_S_OK);
    broken = true;
    const wr = request(m, 5, VIRTIO_BLK_T_OUT, 3, 1, [7]);
    fn.barWrite(REG.notify, 0, 2);
    assert.equal(m.bytes[wr], VIRTIO_BLK_S_IOERR);
    assert.equal(dev.storeError, "disk full");
    assert.deepEqual(m.host.failures, [], "the host's trouble is not the driver's");
  });

  it("block: a disk file holds each write as soon as it is made", () => {
    const dir = mkdtempSync(join(tmpdir(), "blk-"));
    try {
      const path = join(dir, "disk.img");
      writeFileSync(path, new Uint8Array(2 * 512).fill(1));
      const { m, fn } = live((h) => new VirtioBlock(h, openDisk(path, false)));
      request(m, 0, VIRTIO_BLK_T_OUT, 1, 1, [0xca, 0xfe]);
      fn.barWrite(REG.notify, 0, 2);
      const file = readFileSync(path);
      assert.deepEqual([...file.subarray(510, 516)], [1, 1, 0xca, 0xfe, 1, 1]);
      assert.equal(file.length, 1024);
      const ro = live((h) => new VirtioBlock(h, openDisk(path, true)));
      request(ro.m, 0, VIRTIO_BLK_T_OUT, 0, 1, [0]);
      ro.fn.barWrite(REG.notify, 0, 2);
      assert.equal(readFileSync(path)[0], 1, ",ro leaves the file alone");
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  it("block: bad disk files get one-line errors", () => {
    const dir = mkdtempSync(join(tmpdir(), "blk-"));
    try {
      writeFileSync(join(dir, "odd.img"), new Uint8Array(1000));
      writeFileSync(join(dir, "empty.img"), new Uint8Array(0));
      mkdirSync(join(dir, "sub"));
      const cases: [string, RegExp][] = [
        ["missing.img", /missing\.img: no such file$/],
        ["odd.img", /odd\.img: 1000 bytes, not a whole number of 512-byte sectors$/],
        ["empty.img", /empty\.img: 0 bytes, not a whole number/],
        ["sub", /sub: is a directory$/],
      ];
      for (const [name, re] of cases) {
        assert.throws(() => openDisk(join(dir, name), false), (e: Error) => {
          assert.match(e.message, re);
          assert.doesNotMatch(e.message, /\n/);
          return true;
        });
      }
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  it("rng: --rng draws from the host, seed:N from the generator tests can rerun", () => {
    const fill = (seed: number | "host") => {
      const { m, fn } = live((h) => new VirtioRng(h, seed));
      desc(m, DESC, 0, 0x8000, 32, VRING_DESC_F_WRITE);
      offer(m, 0);
      fn.barWrite(REG.notify, 0, 2);
      assert.equal(m.dv.getUint32(USED + 8, true), 32);
      return [...m.bytes.subarray(0x8000, 0x8020)];
    };
    const want = new Uint8Array(32);
    seededBytes(42)(want);
    assert.deepEqual(fill(42), [...want]);
    const a = fill("host"), b = fill("host");
    assert.notDeepEqual(a, b, "two host draws of 32 bytes differ");
    assert.notDeepEqual(a, [...want]);
  });

  it("rng: fills the buffers from its seed, deterministically", () => {
    const fill = (seed: number) => {
      const { m, dev, fn } = live((h) => new VirtioRng(h, seed));
      desc(m, DESC, 0, 0x8000, 8, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
      desc(m, DESC, 1, 0x8100, 8, VRING_DESC_F_WRITE);
      offer(m, 0);
      fn.barWrite(REG.notify, 0, 2);
      assert.equal(m.dv.getUint32(USED + 8, true), 16);
      assert.equal(dev.given, 16);
      assert.equal(fn.regsSize, 60);
      assert.equal(fn.barSize, 64);
      return [...m.bytes.subarray(0x8000, 0x8008), ...m.bytes.subarray(0x8100, 0x8108)];
    };
    const a = fill(7);
    assert.deepEqual(fill(7), a);
    assert.notDeepEqual(fill(8), a);
    assert.ok(new Set(a).size > 8, "not a constant");
  });

  it("the launcher plugs them into slots 2 and 3, IRQs 2 and 3, BARs aligned", () => {
    const kernel = readFileSync(new URL("../examples/lguest/hello.elf", import.meta.url));
    const l = new Launcher({
      memMiB: 16,
      kernel: new Uint8Array(kernel),
      block: new Uint8Array(1024),
      rngSeed: 5,
    });
    const cfg = (slot: number, reg: number) => {
      l.pci.out(0xcf8, 0x80000000 | (slot << 11) | reg, 4);
      return l.pci.in(0xcfc, 4) >>> 0;
    };
    const bar = (16 << 20) + 0x100000;
    assert.deepEqual([1, 2, 3].map((s) => cfg(s, 0)), [0x10431af4, 0x10421af4, 0x10441af4]);
    assert.deepEqual([1, 2, 3].map((s) => cfg(s, 0x3c) & 0xff), [1, 2, 3]);
    assert.deepEqual([1, 2, 3].map((s) => cfg(s, 0x10)), [bar, bar + 128, bar + 256]);
    assert.equal(cfg(4, 0), 0xffffffff, "slot 4 is empty");
    assert.equal(l.block!.capacity, 2);
    assert.equal(l.functions.length, 3);
  });

  it("the launcher plugs one block device per disk, in option order", () => {
    const kernel = readFileSync(new URL("../examples/lguest/hello.elf", import.meta.url));
    const l = new Launcher({
      memMiB: 16,
      kernel: new Uint8Array(kernel),
      block: [new Uint8Array(1024), { bytes: new Uint8Array(2048), readOnly: true }],
      rngSeed: 5,
      deviceOrder: ["block", "rng", "block"],
    });
    assert.deepEqual(l.functions.map((f) => f.device.name), [
      "virtio console",
      "virtio block",
      "virtio rng",
      "virtio block",
    ]);
    assert.deepEqual(l.blocks.map((b) => b.capacity), [2, 4]);
    assert.equal(l.block, l.blocks[0]);
    assert.equal(l.blocks[1].store.readOnly, true);
  });
});
