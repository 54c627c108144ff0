/**
 * A packet backend that links two lguest.ts processes over TCP on loopback,
 * as QEMU's `-netdev socket,listen=…/connect=…` does: each frame travels as a
 * 4-byte big-endian length and then its bytes. One side listens on
 * 127.0.0.1:PORT and takes the first connection; the other connects. Frames
 * the guest sends before the link is up, or after it is gone, are dropped
 * (counted), as on an unplugged cable.
 *
 * Frames from the peer arrive on the event loop, so they enter the guest
 * between run chunks (when the REPL or `--run` yields): an outside input like
 * console keys, not deterministic. A bad length from the peer (0, or above
 * MAX_FRAME) closes the link with a reason in `error`; the host never throws.
 *
 * Uses `node:net`, which Deno and Bun both provide.
 *
 * @module
 */

import * as net from "node:net";
import { MAX_FRAME, type NetBackend } from "./net_backend.ts";

/** Bytes waiting to be written before more frames are dropped. */
export const SEND_BUFFER_LIMIT = 1 << 20;

/** The socket backend. */
export class NetSocket implements NetBackend {
  /** Set by the device. */
  deliver: (frame: Uint8Array) => void = () => {};
  /** Frames sent to and received from the peer, and dropped (no link). */
  sent = 0;
  /** Frames from the peer. */
  received = 0;
  /** Frames dropped for want of a link. */
  dropped = 0;
  /** Why the link went down (empty while up or never up). */
  error = "";
  private sock: net.Socket | null = null;
  private server: net.Server | null = null;
  private buf: Uint8Array = new Uint8Array(0);
  private closed = false;
  /** Resolves when the link is up (or rejects with a one-line reason). */
  readonly ready: Promise<void>;

  /**
   * A link: `listen` on 127.0.0.1:port (first peer taken) or `connect` to it.
   *
   * @param mode listen or connect
   * @param port the TCP port (0 with listen: any; see {@link port})
   */
  constructor(readonly mode: "listen" | "connect", private portNumber: number) {
    this.ready = new Promise((resolve, reject) => {
      const fail = (e: Error) => {
        this.error = `socket ${mode} ${this.portNumber}: ${e.message}`;
        reject(new Error(this.error));
      };
      if (mode === "connect") {
        const s = net.connect({ host: "127.0.0.1", port: portNumber });
        s.once("error", fail);
        s.once("connect", () => {
          s.off("error", fail);
          this.attach(s);
          resolve();
        });
      } else {
        const srv = this.server = net.createServer((s) => {
          if (this.sock !== null || this.closed) return void s.destroy();
          this.attach(s);
          srv.close();
          resolve();
        });
        srv.once("error", fail);
        srv.listen(portNumber, "127.0.0.1", () => {
          const a = srv.address();
          if (a !== null && typeof a === "object") this.portNumber = a.port;
          this.listening();
        });
      }
    });
    this.ready.catch(() => {}); // the reason stays in `error`
  }

  /** Called when a listening socket is bound (the port is known). */
  listening: () => void = () => {};

  /** The port (the one bound, when listening on 0). */
  get port(): number {
    return this.portNumber;
  }

  /** Its description. */
  get name(): string {
    return `socket ${this.mode} ${this.portNumber}`;
  }

  /** Take `s` as the link. */
  private attach(s: net.Socket): void {
    this.sock = s;
    s.setNoDelay(true);
    s.on("data", (d: Uint8Array) => this.take(d));
    s.on("error", (e: Error) => this.down(e.message));
    s.on("close", () => this.down("peer closed the link"));
  }

  /** The link is gone: keep the first reason. */
  private down(why: string): void {
    if (this.error === "") this.error = why;
    this.sock?.destroy();
    this.sock = null;
  }

  /** Bytes from the peer: deliver every whole frame. */
  private take(d: Uint8Array): void {
    const next = new Uint8Array(this.buf.length + d.length);
    next.set(this.buf);
    next.set(d, this.buf.length);
    let at = 0;
    while (next.length - at >= 4) {
      const len = ((next[at] << 24) | (next[at + 1] << 16) | (next[at + 2] << 8) | next[at + 3]) >>>
        0;
      if (len === 0 || len > MAX_FRAME) {
        this.down(`peer sent a frame length of ${len}`);
        this.buf = new Uint8Array(0);
        return;
      }
      if (next.length - at - 4 < len) break;
      const frame = next.slice(at + 4, at + 4 + len);
      at += 4 + len;
      this.received++;
      this.deliver(frame);
    }
    this.buf = next.slice(at);
  }

  /** A frame from the guest: to the peer, length first. */
  send(frame: Uint8Array): void {
    const s = this.sock;
    if (s === null || s.writableLength > SEND_BUFFER_LIMIT) {
      this.dropped++;
      return;
    }
    const out = new Uint8Array(4 + frame.length);
    new DataView(out.buffer).setUint32(0, frame.length);
    out.set(frame, 4);
    s.write(out);
    this.sent++;
  }

  /** Close the link and stop listening. */
  close(): void {
    this.closed = true;
    this.server?.close();
    this.server = null;
    this.sock?.destroy();
    this.sock = null;
  }
}
