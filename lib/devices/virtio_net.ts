/**
 * The virtio network device (virtio type 1), as lguest's launcher offers it
 * (§9.6 d) but over a packet backend (net_backend.ts) instead of a tap:
 * queue 0 receives, queue 1 transmits; every packet starts with the 12-byte
 * `virtio_net_hdr_v1` (VERSION_1). Features: MAC (5), VERSION_1 and indirect
 * descriptors (28) as lguest offers them — but none of the checksum or TSO
 * offloads, so every frame the guest sends is complete (its checksums
 * filled in) and a backend may answer it as it is. Device config: the 6-byte
 * MAC, then `status`, `max_virtqueue_pairs` and `mtu` (12 bytes; they read 0,
 * their features are not offered).
 *
 * - transmit: on a kick of queue 1, every chain waiting is gathered, its
 *   header dropped, the frame handed to the backend, and the chain returned
 *   used with length 0 (lguest: `add_used(0)`), before the guest resumes.
 *   A chain shorter than the header is the driver's error (`fail`).
 * - receive: frames from the backend wait (at most RX_PENDING_LIMIT, then
 *   dropped and counted) until the driver has receive buffers, then go in with
 *   a zeroed header whose `num_buffers` is 1, returned used with header +
 *   frame length, and the driver interrupted. A frame larger than the chain
 *   posted for it is dropped (counted), as a NIC drops it.
 *
 * When frames arrive is the backend's business: the responder answers inside
 * the transmit kick (so a run stays deterministic); a socket's frames arrive
 * between run chunks.
 *
 * @module
 */

import type { DeviceHost } from "./host.ts";
import { ETH_HEADER, MAX_FRAME, type NetBackend } from "./net_backend.ts";
import { VIRTIO_F_VERSION_1, VirtioDevice } from "./virtio_pci.ts";
import { VIRTIO_RING_F_INDIRECT_DESC } from "./virtqueue.ts";

/** virtio type of a network card. */
export const VIRTIO_ID_NET = 1;
/** VIRTIO_NET_F_MAC: the device config holds the MAC. */
export const VIRTIO_NET_F_MAC = 5;
/** Size of `virtio_net_hdr_v1` (with `num_buffers`, as VERSION_1 has it). */
export const NET_HDR_SIZE = 12;
/** Queue indexes. */
export const RXQ = 0, TXQ = 1;
/** Frames held while the driver has no receive buffers. */
export const RX_PENDING_LIMIT = 256;
/** Bytes of device config. */
export const NET_CONFIG_SIZE = 12;
/** The default MAC (locally administered, QEMU's guest default). */
export const DEFAULT_MAC: readonly number[] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];

/** The network device. */
export class VirtioNet extends VirtioDevice {
  private pending: Uint8Array[] = [];
  /** The card's MAC. */
  readonly mac: Uint8Array;
  /** Frames the guest sent, and frames it was given. */
  sent = 0;
  /** Frames put in the guest's receive buffers. */
  received = 0;
  /** Frames dropped: no room while waiting, or larger than the buffer posted. */
  dropped = 0;

  /**
   * A card on `backend` with address `mac`.
   *
   * @param host the machine
   * @param backend where transmitted frames go and received ones come from
   * @param mac the card's 6-byte MAC (DEFAULT_MAC when not given)
   */
  constructor(
    host: DeviceHost,
    readonly backend: NetBackend,
    mac: readonly number[] = DEFAULT_MAC,
  ) {
    super(
      host,
      "virtio net",
      VIRTIO_ID_NET,
      0x0200,
      [
        (1 << VIRTIO_NET_F_MAC) | (1 << VIRTIO_RING_F_INDIRECT_DESC),
        1 << (VIRTIO_F_VERSION_1 - 32),
      ],
      NET_CONFIG_SIZE,
      ["rx", "tx"],
    );
    this.mac = Uint8Array.from(mac);
    backend.deliver = (frame) => this.receive(frame);
  }

  /** The MAC, then status, max_virtqueue_pairs and mtu as 0. */
  configRead(off: number, size: number): number {
    const cfg = new Uint8Array(NET_CONFIG_SIZE);
    cfg.set(this.mac);
    const dv = new DataView(cfg.buffer);
    return size === 1
      ? dv.getUint8(off)
      : size === 2
      ? dv.getUint16(off, true)
      : dv.getInt32(off, true);
  }

  /** The config is read-only. */
  configWrite(_off: number, _v: number, _size: number): boolean {
    return false;
  }

  /** A kick: transmit everything queued, or take newly posted receive buffers. */
  notify(index: number): void {
    if (index === TXQ) {
      const q = this.queues[TXQ];
      for (let chain = q.pop(); chain !== null; chain = q.pop()) {
        const bytes = q.gather(chain, NET_HDR_SIZE + MAX_FRAME);
        q.push(chain.head, 0);
        if (bytes === null) continue;
        if (bytes.length < NET_HDR_SIZE) {
          this.host.fail(`${this.name}: transmit of ${bytes.length} bytes, less than its header`);
          continue;
        }
        const frame = bytes.slice(NET_HDR_SIZE);
        if (frame.length < ETH_HEADER) continue; // not a frame: nothing to send
        this.sent++;
        this.backend.send(frame);
      }
      this.signalUsed(q);
    }
    this.deliverPending();
  }

  /** A frame for the guest: held until the driver has receive buffers. */
  receive(frame: Uint8Array): void {
    if (frame.length < ETH_HEADER || frame.length > MAX_FRAME) {
      this.dropped++;
      return;
    }
    if (this.pending.length >= RX_PENDING_LIMIT) {
      this.dropped++;
      return;
    }
    this.pending.push(frame.slice());
    this.deliverPending();
  }

  /** Frames waiting for receive buffers. */
  get pendingFrames(): number {
    return this.pending.length;
  }

  /** Once live: frames may have arrived before the driver did. */
  override driverOk(): void {
    this.deliverPending();
  }

  /** The driver reset the card: what was waiting is gone. */
  override reset(): void {
    super.reset();
    this.pending = [];
  }

  /** Copy waiting frames into the receive buffers the driver posted. */
  private deliverPending(): void {
    const q = this.queues[RXQ];
    if (!this.live || !q.enabled) return;
    while (this.pending.length > 0) {
      const chain = q.pop();
      if (chain === null) break;
      const frame = this.pending.shift()!;
      let room = 0;
      for (const b of chain.in) room += b.len;
      if (room < NET_HDR_SIZE + frame.length) {
        this.dropped++;
        q.push(chain.head, 0);
        continue;
      }
      const packet = new Uint8Array(NET_HDR_SIZE + frame.length);
      packet[10] = 1; // num_buffers
      packet.set(frame, NET_HDR_SIZE);
      const n = q.scatter(chain, packet);
      q.push(chain.head, n);
      if (n === packet.length) this.received++;
    }
    this.signalUsed(q);
  }
}
