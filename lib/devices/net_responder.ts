/**
 * A built-in packet backend: a gateway on a private subnet that answers ARP
 * and ping, so `ping` inside a guest gets replies with no host networking.
 * The addresses are QEMU's user-mode network's:
 *
 *   subnet   10.0.2.0/24
 *   gateway  10.0.2.2, MAC 52:55:0a:00:02:02 (this responder)
 *   guest    10.0.2.15 by convention (any address in the subnet works: the
 *            responder answers whoever asks)
 *
 * It answers an ARP request for 10.0.2.2 with its MAC, and an ICMP echo
 * request to 10.0.2.2 (valid IPv4 header checksum, unfragmented) with the echo
 * reply: same identifier, sequence and data, checksums recomputed. Everything
 * else is counted and ignored. Replies are delivered at once, inside the
 * guest's transmit kick, so a run with the responder is deterministic.
 *
 * @module
 */

import type { NetBackend } from "./net_backend.ts";

/** The gateway's IPv4 address, 10.0.2.2. */
export const GATEWAY_IP: readonly number[] = [10, 0, 2, 2];
/** The gateway's MAC. */
export const GATEWAY_MAC: readonly number[] = [0x52, 0x55, 0x0a, 0x00, 0x02, 0x02];
/** The guest's conventional address, 10.0.2.15. */
export const GUEST_IP: readonly number[] = [10, 0, 2, 15];
/** Ethernet types. */
export const ETH_P_IP = 0x0800, ETH_P_ARP = 0x0806;

/** The Internet checksum (RFC 1071) of `b`. */
export function inetChecksum(b: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i + 1 < b.length; i += 2) sum += (b[i] << 8) | b[i + 1];
  if (b.length % 2 === 1) sum += b[b.length - 1] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function equal(b: Uint8Array, at: number, want: readonly number[]): boolean {
  for (let i = 0; i < want.length; i++) if (b[at + i] !== want[i]) return false;
  return true;
}

/** The gateway responder. */
export class NetResponder implements NetBackend {
  /** Its description. */
  readonly name = "responder";
  /** Set by the device. */
  deliver: (frame: Uint8Array) => void = () => {};
  /** ARP requests answered. */
  arpReplies = 0;
  /** Echo requests answered. */
  echoReplies = 0;
  /** Frames neither answered. */
  ignored = 0;

  /** A frame from the guest: answer it if it is ARP or ping for the gateway. */
  send(f: Uint8Array): void {
    const type = (f[12] << 8) | f[13];
    const reply = type === ETH_P_ARP ? this.arp(f) : type === ETH_P_IP ? this.ping(f) : null;
    if (reply === null) this.ignored++;
    else this.deliver(reply);
  }

  /** Nothing held. */
  close(): void {}

  /** An ARP request (Ethernet/IPv4) for the gateway: its reply. */
  private arp(f: Uint8Array): Uint8Array | null {
    const a = 14;
    if (f.length < a + 28) return null;
    if (((f[a] << 8) | f[a + 1]) !== 1 || ((f[a + 2] << 8) | f[a + 3]) !== ETH_P_IP) return null;
    if (f[a + 4] !== 6 || f[a + 5] !== 4 || ((f[a + 6] << 8) | f[a + 7]) !== 1) return null;
    if (!equal(f, a + 24, GATEWAY_IP)) return null;
    const r = new Uint8Array(a + 28);
    r.set(f.subarray(a + 8, a + 14), 0); // to the asker's MAC
    r.set(GATEWAY_MAC, 6);
    r[12] = ETH_P_ARP >> 8, r[13] = ETH_P_ARP & 0xff;
    r.set(f.subarray(a, a + 6), a); // htype, ptype, hlen, plen
    r[a + 7] = 2; // reply
    r.set(GATEWAY_MAC, a + 8);
    r.set(GATEWAY_IP, a + 14);
    r.set(f.subarray(a + 8, a + 18), a + 18); // the asker's MAC and IP
    this.arpReplies++;
    return r;
  }

  /** An ICMP echo request to the gateway: its reply. */
  private ping(f: Uint8Array): Uint8Array | null {
    const ip = 14;
    if (f.length < ip + 20 || f[ip] >> 4 !== 4) return null;
    const ihl = (f[ip] & 15) * 4;
    const total = (f[ip + 2] << 8) | f[ip + 3];
    if (ihl < 20 || total < ihl + 8 || ip + total > f.length) return null;
    if (inetChecksum(f.subarray(ip, ip + ihl)) !== 0) return null;
    if ((((f[ip + 6] << 8) | f[ip + 7]) & 0x3fff) !== 0) return null; // a fragment
    if (f[ip + 9] !== 1 || !equal(f, ip + 16, GATEWAY_IP)) return null;
    const icmp = ip + ihl;
    if (f[icmp] !== 8 || f[icmp + 1] !== 0) return null;
    const r = f.slice(0, ip + total);
    r.set(f.subarray(6, 12), 0);
    r.set(GATEWAY_MAC, 6);
    r.set(f.subarray(ip + 16, ip + 20), ip + 12); // from the gateway
    r.set(f.subarray(ip + 12, ip + 16), ip + 16); // to the asker
    r[ip + 8] = 64; // TTL
    r[ip + 10] = r[ip + 11] = 0;
    const hsum = inetChecksum(r.subarray(ip, ip + ihl));
    r[ip + 10] = hsum >> 8, r[ip + 11] = hsum & 0xff;
    r[icmp] = 0; // echo reply
    r[icmp + 2] = r[icmp + 3] = 0;
    const csum = inetChecksum(r.subarray(icmp, ip + total));
    r[icmp + 2] = csum >> 8, r[icmp + 3] = csum & 0xff;
    this.echoReplies++;
    return r;
  }
}
