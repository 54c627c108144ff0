/**
 * What a virtio-net device is plugged into: a packet backend. The device
 * hands it every Ethernet frame the guest transmits (`send`), and the backend
 * hands frames for the guest to `deliver`, which the device sets when it is
 * attached. Frames are whole Ethernet frames (destination MAC first), without
 * the virtio-net header.
 *
 * Two backends exist: net_responder.ts (a gateway on a private subnet that
 * answers ARP and ping, synchronously: deterministic) and net_socket.ts (a TCP
 * link to another lguest.ts process, like QEMU's `-netdev socket`: its frames
 * arrive from the event loop, an outside input like console keys).
 *
 * @module
 */

/** A packet backend. */
export interface NetBackend {
  /** A one-word description for messages ("responder", "socket listen 5555"). */
  readonly name: string;
  /** The guest transmitted `frame` (the backend may keep it: it is a copy). */
  send(frame: Uint8Array): void;
  /** Set by the device: give `frame` to the guest. */
  deliver: (frame: Uint8Array) => void;
  /** Release what the backend holds (sockets); safe to call twice. */
  close(): void;
}

/** Shortest Ethernet frame the device passes on (two MACs and the type). */
export const ETH_HEADER = 14;
/** Longest frame the device passes on (a 64 KiB GSO-less frame is plenty). */
export const MAX_FRAME = 65536;
