/**
 * The virtio network card (lib/devices/virtio_net.ts) driven as a driver
 * drives it, on a plain memory host: features and the MAC in its config, an
 * ARP request and a ping to the built-in responder (10.0.2.2) answered in the
 * receive queue with the 12-byte header, frames held until buffers come,
 * dropped when too big, a short transmit a driver error; `--net` parsing and
 * the launcher's slot order; and two cards joined over TCP on loopback
 * (net_socket.ts) exchanging a frame both ways. And a guest driver
 * (examples/lguest/net.asm) that brings the card up under the launcher, ARPs
 * and pings the responder and checks the replies from the inside ("ok: …"
 * lines), asserted here with the same facts from the outside.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { MemoryDeviceHost } from "../lib/devices/host.ts";
import { VRING_DESC_F_WRITE } from "../lib/devices/virtqueue.ts";
import { REG, VIRTIO_PCI_DEVICE_CFG, VirtioPciFunction } from "../lib/devices/virtio_pci.ts";
import type { NetBackend } from "../lib/devices/net_backend.ts";
import {
  DEFAULT_MAC,
  NET_HDR_SIZE,
  VIRTIO_NET_F_MAC,
  VirtioNet,
} from "../lib/devices/virtio_net.ts";
import {
  GATEWAY_IP,
  GATEWAY_MAC,
  GUEST_IP,
  inetChecksum,
  NetResponder,
} from "../lib/devices/net_responder.ts";
import { NetSocket } from "../lib/devices/net_socket.ts";
import { parseLauncherArgs, parseNetArg } from "../lib/boot/cmdline.ts";
import { Launcher } from "../lib/boot/launcher.ts";

const N = 8;
/** Rings of queue q: desc, avail, used. */
const ring = (q: number) => ({
  desc: 0x1000 + q * 0x1000,
  avail: 0x1800 + q * 0x1000,
  used: 0x1c00 + q * 0x1000,
});
const RXBUF = 0x8000, TXBUF = 0xc000, BUF = 0x800;

/** A live card behind its transport with both queues set up, as a driver does. */
function liveCard(backend: NetBackend) {
  const bytes = new Uint8Array(0x20000);
  const dv = new DataView(bytes.buffer);
  const host = new MemoryDeviceHost(bytes);
  const dev = new VirtioNet(host, backend);
  const fn = new VirtioPciFunction(dev, 2, 0x100000);
  fn.barWrite(REG.deviceStatus, 1, 1);
  fn.barWrite(REG.deviceStatus, 3, 1);
  fn.barWrite(REG.deviceFeatureSelect, 0, 4);
  const low = fn.barRead(REG.deviceFeature, 4);
  fn.barWrite(REG.driverFeatureSelect, 0, 4);
  fn.barWrite(REG.driverFeature, 1 << VIRTIO_NET_F_MAC, 4);
  fn.barWrite(REG.driverFeatureSelect, 1, 4);
  fn.barWrite(REG.driverFeature, 1, 4);
  fn.barWrite(REG.deviceStatus, 11, 1);
  fn.barRead(REG.deviceStatus, 1);
  for (const q of [0, 1]) {
    const r = ring(q);
    fn.barWrite(REG.queueSelect, q, 2);
    fn.barWrite(REG.queueSize, N, 2);
    fn.barWrite(REG.queueDescLo, r.desc, 4);
    fn.barWrite(REG.queueAvailLo, r.avail, 4);
    fn.barWrite(REG.queueUsedLo, r.used, 4);
    fn.barWrite(REG.queueEnable, 1, 2);
  }
  fn.barWrite(REG.deviceStatus, 15, 1);
  assert.deepEqual(host.failures, []);
  const setDesc = (q: number, i: number, addr: number, len: number, flags: number) => {
    const d = ring(q).desc + 16 * i;
    dv.setUint32(d, addr, true);
    dv.setUint32(d + 4, 0, true);
    dv.setUint32(d + 8, len, true);
    dv.setUint16(d + 12, flags, true);
    dv.setUint16(d + 14, 0, true);
  };
  const offer = (q: number, head: number) => {
    const a = ring(q).avail;
    const idx = dv.getUint16(a + 2, true);
    dv.setUint16(a + 4 + 2 * (idx % N), head, true);
    dv.setUint16(a + 2, idx + 1, true);
  };
  let rxPosted = 0, txSent = 0, rxSeen = 0;
  return {
    bytes,
    dv,
    host,
    dev,
    fn,
    low,
    /** Post receive buffer `len` bytes long (without kicking). */
    postRx(len = BUF) {
      const i = rxPosted++ % N;
      setDesc(0, i, RXBUF + i * BUF, len, VRING_DESC_F_WRITE);
      offer(0, i);
    },
    kickRx() {
      fn.barWrite(REG.notify, 0, 2);
    },
    /** Transmit `frame` behind a zero header (or `raw` bytes as the whole chain). */
    transmit(frame: Uint8Array, raw = false) {
      const i = txSent++ % N;
      const pkt = raw ? frame : new Uint8Array(NET_HDR_SIZE + frame.length);
      if (!raw) pkt.set(frame, NET_HDR_SIZE);
      bytes.set(pkt, TXBUF + i * BUF);
      setDesc(1, i, TXBUF + i * BUF, pkt.length, 0);
      offer(1, i);
      fn.barWrite(REG.notify, 1, 2);
    },
    /** Packets returned used on the receive queue since the last call: [header, frame]. */
    received(): [Uint8Array, Uint8Array][] {
      const u = ring(0).used, out: [Uint8Array, Uint8Array][] = [];
      const idx = dv.getUint16(u + 2, true);
      for (; rxSeen !== idx; rxSeen = (rxSeen + 1) & 0xffff) {
        const id = dv.getUint32(u + 4 + 8 * (rxSeen % N), true);
        const len = dv.getUint32(u + 8 + 8 * (rxSeen % N), true);
        const at = RXBUF + id * BUF;
        out.push([bytes.slice(at, at + NET_HDR_SIZE), bytes.slice(at + NET_HDR_SIZE, at + len)]);
      }
      return out;
    },
  };
}

const MAC = DEFAULT_MAC;

function arpRequest(target: readonly number[]): Uint8Array {
  const f = new Uint8Array(42);
  f.fill(0xff, 0, 6);
  f.set(MAC, 6);
  f.set([0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 1], 12);
  f.set(MAC, 22);
  f.set(GUEST_IP, 28);
  f.set(target, 38);
  return f;
}

function echoRequest(id: number, seq: number, data: number[]): Uint8Array {
  const total = 20 + 8 + data.length;
  const f = new Uint8Array(14 + total);
  f.set(GATEWAY_MAC, 0);
  f.set(MAC, 6);
  f.set([0x08, 0x00], 12);
  f.set([0x45, 0, total >> 8, total & 0xff, 0, 7, 0x40, 0, 64, 1, 0, 0], 14);
  f.set(GUEST_IP, 26);
  f.set(GATEWAY_IP, 30);
  const h = inetChecksum(f.subarray(14, 34));
  f[24] = h >> 8, f[25] = h & 0xff;
  f.set([8, 0, 0, 0, id >> 8, id & 0xff, seq >> 8, seq & 0xff, ...data], 34);
  const c = inetChecksum(f.subarray(34));
  f[36] = c >> 8, f[37] = c & 0xff;
  return f;
}

describe("virtio net with the responder", () => {
  it("offers MAC and VERSION_1, no offloads, and shows the MAC in its config", () => {
    const c = liveCard(new NetResponder());
    assert.equal(c.low & (1 << VIRTIO_NET_F_MAC), 1 << VIRTIO_NET_F_MAC);
    assert.equal(c.low & 0x3b83, 0, "no CSUM/GUEST_CSUM/TSO/ECN offloads");
    const mac = [0, 1, 2, 3, 4, 5].map((i) => c.fn.barRead(VIRTIO_PCI_DEVICE_CFG + i, 1));
    assert.deepEqual(mac, [...DEFAULT_MAC]);
    assert.equal(c.fn.barRead(VIRTIO_PCI_DEVICE_CFG + 6, 2), 0, "status");
  });

  it("answers an ARP request for 10.0.2.2 and a ping, with interrupts", () => {
    const r = new NetResponder();
    const c = liveCard(r);
    c.postRx();
    c.postRx();
    c.kickRx();
    const before = c.host.raised.get(2) ?? 0;
    c.transmit(arpRequest(GATEWAY_IP));
    let got = c.received();
    assert.equal(got.length, 1);
    const [hdr, arp] = got[0];
    assert.deepEqual([...hdr], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0], "header, num_buffers 1");
    assert.deepEqual([...arp.subarray(0, 6)], [...MAC], "to the asker");
    assert.deepEqual([...arp.subarray(6, 12)], [...GATEWAY_MAC]);
    assert.deepEqual([...arp.subarray(12, 14)], [8, 6]);
    assert.equal(arp[21], 2, "ARP reply");
    assert.deepEqual([...arp.subarray(22, 28)], [...GATEWAY_MAC], "sender MAC");
    assert.deepEqual([...arp.subarray(28, 32)], [...GATEWAY_IP], "sender IP");
    assert.deepEqual([...arp.subarray(38, 42)], [...GUEST_IP], "target IP");
    assert.ok((c.host.raised.get(2) ?? 0) > before, "interrupted");

    c.transmit(echoRequest(0x1234, 7, [1, 2, 3, 4, 5]));
    got = c.received();
    assert.equal(got.length, 1);
    const e = got[0][1];
    assert.equal(e.length, 14 + 20 + 8 + 5);
    assert.deepEqual([...e.subarray(26, 30)], [...GATEWAY_IP], "from the gateway");
    assert.deepEqual([...e.subarray(30, 34)], [...GUEST_IP], "to the guest");
    assert.equal(inetChecksum(e.subarray(14, 34)), 0, "IP header checksum");
    assert.equal(e[34], 0, "echo reply");
    assert.equal(inetChecksum(e.subarray(34)), 0, "ICMP checksum");
    assert.deepEqual([...e.subarray(38, 47)], [0x12, 0x34, 0, 7, 1, 2, 3, 4, 5]);
    assert.equal(r.arpReplies, 1);
    assert.equal(r.echoReplies, 1);
    assert.deepEqual(c.host.failures, []);
  });

  it("ignores ARP for other addresses and bad pings; holds replies until buffers come", () => {
    const r = new NetResponder();
    const c = liveCard(r);
    c.transmit(arpRequest([10, 0, 2, 3]));
    const bad = echoRequest(1, 1, [9]);
    bad[24] ^= 0xff; // IP header checksum broken
    c.transmit(bad);
    assert.equal(r.ignored, 2);
    c.transmit(arpRequest(GATEWAY_IP)); // no receive buffers yet
    assert.equal(c.dev.pendingFrames, 1);
    assert.equal(c.received().length, 0);
    c.postRx();
    c.kickRx();
    assert.equal(c.dev.pendingFrames, 0);
    assert.equal(c.received().length, 1);
  });

  it("drops a frame bigger than the buffer; a transmit shorter than its header is a driver error", () => {
    const c = liveCard(new NetResponder());
    c.postRx(20);
    c.kickRx();
    c.transmit(arpRequest(GATEWAY_IP));
    assert.equal(c.dev.dropped, 1);
    const got = c.received();
    assert.equal(got.length, 1, "the buffer comes back");
    assert.equal(c.dv.getUint32(ring(0).used + 8, true), 0, "with length 0");
    c.transmit(new Uint8Array(5), true);
    assert.deepEqual(c.host.failures, ["virtio net: transmit of 5 bytes, less than its header"]);
  });
});

describe("--net and the launcher", () => {
  it("parses the backends and refuses bad ones in one line", () => {
    assert.deepEqual(parseNetArg("responder"), { kind: "responder" });
    assert.deepEqual(parseNetArg("socket,listen=5555"), {
      kind: "socket",
      mode: "listen",
      port: 5555,
    });
    assert.deepEqual(parseNetArg("socket,connect=1"), { kind: "socket", mode: "connect", port: 1 });
    assert.deepEqual(parseNetArg("socket,connect=9,mac=52:54:00:12:34:57"), {
      kind: "socket",
      mode: "connect",
      port: 9,
      mac: [0x52, 0x54, 0, 0x12, 0x34, 0x57],
    });
    assert.deepEqual(parseNetArg("responder,mac=02:00:00:00:00:0a").mac, [2, 0, 0, 0, 0, 10]);
    assert.throws(() => parseNetArg("responder,mac=01:00:00:00:00:00"), /multicast/);
    assert.throws(() => parseNetArg("responder,mac=52:54"), /bad MAC '52:54'/);
    for (
      const bad of ["", "tap", "socket", "socket,listen=0", "socket,listen=70000", "socket,x=1"]
    ) {
      assert.throws(
        () => parseNetArg(bad),
        /^BootError: --net must be responder, socket,listen=PORT[^\n]*$/,
      );
    }
    assert.deepEqual(
      parseLauncherArgs(["--rng", "--net=responder", "--block=d", "16", "k"]).deviceOrder,
      ["rng", "net", "block"],
    );
  });

  it("plugs devices in option order: slot and IRQ follow", () => {
    const kernel = readFileSync(new URL("../examples/lguest/hello.elf", import.meta.url));
    const l = new Launcher({
      memMiB: 16,
      kernel,
      net: new NetResponder(),
      block: new Uint8Array(1024),
      rngSeed: 1,
      deviceOrder: ["rng", "block", "net"],
    });
    assert.deepEqual(l.functions.map((f) => f.device.name), [
      "virtio console",
      "virtio rng",
      "virtio block",
      "virtio net",
    ]);
    assert.equal(l.functions[3].device, l.net);
    assert.deepEqual([...l.net!.mac], [...DEFAULT_MAC]);
    const d = new Launcher({
      memMiB: 16,
      kernel,
      net: new NetResponder(),
      netMac: [2, 0, 0, 0, 0, 9],
      rngSeed: 1,
    });
    assert.deepEqual([...d.net!.mac], [2, 0, 0, 0, 0, 9]);
    assert.deepEqual(d.functions.map((f) => f.device.name), [
      "virtio console",
      "virtio rng",
      "virtio net",
    ]);
  });
});

describe("two cards over a socket on loopback", () => {
  it("a frame each way, length-prefixed over TCP", async () => {
    const a = new NetSocket("listen", 0);
    const bound = new Promise<void>((r) => (a.listening = r));
    await bound;
    const b = new NetSocket("connect", a.port);
    try {
      await Promise.all([a.ready, b.ready]);
      const ca = liveCard(a), cb = liveCard(b);
      ca.postRx();
      ca.kickRx();
      cb.postRx();
      cb.kickRx();
      const arrived = (c: ReturnType<typeof liveCard>) =>
        new Promise<[Uint8Array, Uint8Array][]>((resolve, reject) => {
          const t0 = Date.now();
          const poll = () => {
            const got = c.received();
            if (got.length > 0) return resolve(got);
            if (Date.now() - t0 > 5000) return reject(new Error("no frame in 5 s"));
            setTimeout(poll, 5);
          };
          poll();
        });
      const ping = echoRequest(1, 1, [0xaa, 0xbb]);
      ca.transmit(ping);
      const atB = await arrived(cb);
      assert.deepEqual([...atB[0][1]], [...ping]);
      const arp = arpRequest([10, 0, 2, 16]);
      cb.transmit(arp);
      const atA = await arrived(ca);
      assert.deepEqual([...atA[0][1]], [...arp]);
      assert.equal(a.sent, 1);
      assert.equal(b.received, 1);
      assert.equal(b.sent, 1);
      assert.equal(a.received, 1);
    } finally {
      a.close();
      b.close();
    }
  });

  it("a connect to a closed port fails with a one-line reason; frames are dropped", async () => {
    const probe = new NetSocket("listen", 0);
    await new Promise<void>((r) => (probe.listening = r));
    const port = probe.port;
    probe.close();
    const s = new NetSocket("connect", port);
    await assert.rejects(s.ready, /^Error: socket connect \d+: /);
    assert.match(s.error, /^socket connect \d+: [^\n]+$/);
    s.send(arpRequest(GATEWAY_IP));
    assert.equal(s.dropped, 1);
    s.close();
  });
});

describe("net.asm: a guest driver pings the responder", () => {
  const kernel = new Uint8Array(
    readFileSync(new URL("../examples/lguest/net.elf", import.meta.url)),
  );
  const OKS = [
    "slot 2 is a virtio network card (1AF4:1041)",
    "interrupt line 2",
    "MAC offered",
    "no checksum or segmentation offloads offered",
    "VERSION_1 offered",
    "FEATURES_OK reads back",
    "the MAC in the device config: 52:54:00:12:34:56",
    "two queues",
    "DRIVER_OK: the card is live",
    "the ARP request is used when the notify write retires",
    "and the reply is already in the receive ring",
    "in the first buffer",
    "header + 42 bytes of ARP",
    "num_buffers is 1",
    "the queue interrupt came",
    "an ARP frame",
    "an ARP reply",
    "from 10.0.2.2",
    "to our MAC",
    "the echo request is used",
    "the echo reply is in the receive ring",
    "in the second buffer",
    "header + the whole IP packet",
    "another interrupt",
    "from 10.0.2.2",
    "to 10.0.2.15",
    "the IP header checksum verifies",
    "an ICMP echo reply",
    "the ICMP checksum verifies",
    "the same identifier, sequence and data",
  ];
  const oks = (out: string) =>
    out.split("\n").filter((s) => s.startsWith("ok: ")).map((s) => s.slice(4));

  function run(net?: NetResponder) {
    const l = new Launcher({ memMiB: 16, kernel, kernelName: "net.elf", net });
    const irqs: number[] = [];
    const g = l.guest, set = g.setInterrupt.bind(g);
    g.setInterrupt = (irq: number) => (irqs.push(irq), set(irq));
    const stop = g.run(10_000_000);
    return { l, g, stop, out: l.text(), irqs };
  }

  it("brings the card up, ARPs and pings; every step checked inside and out", () => {
    const r = new NetResponder();
    const a = run(r);
    assert.equal(a.stop, "dead", a.out);
    assert.equal(a.g.deathReason, "CRASH: Power down", a.out);
    assert.doesNotMatch(a.out, /FAIL/, a.out);
    assert.deepEqual(oks(a.out), OKS);
    assert.match(a.out, /net: the gateway answered ARP and ping\n/);
    assert.equal(r.arpReplies, 1);
    assert.equal(r.echoReplies, 1);
    assert.equal(r.ignored, 0);
    assert.equal(a.l.net!.sent, 2);
    assert.equal(a.l.net!.received, 2);
    assert.equal(a.l.net!.dropped, 0);
    assert.ok(a.irqs.includes(2), "IRQ 2 raised");
    // Deterministic: the replies come inside the kick, so a second run is the same run.
    const b = run(new NetResponder());
    assert.equal(b.g.cpu.icount, a.g.cpu.icount);
    assert.equal(b.out, a.out);
  });

  it("without --net the guest finds no card in slot 2 and says so", () => {
    const a = run();
    assert.match(a.out, /FAIL: slot 2 is a virtio network card/);
  });
});
