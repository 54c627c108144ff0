/**
 * What a user needs told about a Linux guest that does not get where it
 * should, in one line each:
 *
 * - {@link ConsoleWatch}: the guest's console went silent for good when its
 *   virtio console driver bound. That is the known guest-side bug of Linux
 *   4.9.180 and later (ABI reference, Appendix B): the driver numbers its port
 *   hvc1 while the kernel console stays on hvc0, so every later console byte
 *   is dropped and /dev/console cannot be opened. Seen from the host: the
 *   guest printed "console [hvc0] enabled" on the early console, the console
 *   device is live, its transmit queue never used, and the guest powers
 *   off, or stays quiet 2 s of virtual time.
 * - {@link endReason}: how a guest ended, and when it died before its first
 *   hypercall (LHCALL_LGUEST_INIT) of a trap, that it is not an lguest guest
 *   at all (a kernel built without CONFIG_LGUEST_GUEST, such as a
 *   distribution's i386 kernel, faults on its first privileged instruction).
 *
 * @module
 */

import type { Launcher } from "./launcher.ts";
import { TRANSMITQ } from "../devices/virtio_console.ts";

/** Virtual time (ns) of silence after the console driver binds before the watch speaks up. */
export const SILENCE_NS = 2_000_000_000;

/** The Appendix B note (one line). */
export const APPENDIX_B_NOTE: string =
  "the guest's console went silent when its virtio console driver bound: a Linux 4.9.180+ " +
  "guest numbers its port hvc1 while the kernel console stays on hvc0 (ABI reference, " +
  "Appendix B); use a guest with commit 4b0a2c5ff721 reverted, or give init a shell on " +
  "/dev/hvc1 (README: A Linux guest)";

/** Watches a Linux guest's console for the Appendix B silence. */
export class ConsoleWatch {
  private liveAt = -1;
  private transmitted = false;
  private said = false;

  /** A watch over `launcher`'s console. @param launcher the machine */
  constructor(private readonly launcher: Launcher) {}

  /**
   * Look now (call it between runs and once at the end): the note, the first
   * time the situation is seen, else null.
   */
  check(): string | null {
    if (this.said || this.transmitted) return null;
    const l = this.launcher, c = l.console, g = l.guest;
    if (c.queues[TRANSMITQ].usedIdx !== 0) {
      this.transmitted = true;
      return null;
    }
    if (!c.live) return null;
    if (this.liveAt < 0) this.liveAt = g.nowNs();
    if (!g.dead && g.nowNs() - this.liveAt < SILENCE_NS) return null;
    this.said = true;
    // Only a Linux guest whose kernel console is hvc0 (it said so on the early console).
    if (!l.output.text().includes("console [hvc0] enabled")) return null;
    return APPENDIX_B_NOTE;
  }
}

/** How the guest ended (or why it stopped), as one line. */
export function endReason(launcher: Launcher): string {
  const g = launcher.guest;
  if (!g.dead) return "";
  if (g.lguestData < 0 && /^unhandled trap/.test(g.deathReason)) {
    return `not an lguest guest: ${g.deathReason} before its first hypercall ` +
      `(LHCALL_LGUEST_INIT): a kernel built without CONFIG_LGUEST_GUEST?`;
  }
  return g.deathReason;
}
