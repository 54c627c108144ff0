/**
 * Scripted console input: text typed into the guest's virtio console at
 * points the guest itself defines, so that two runs with the same input
 * print the same bytes and retire the same number of instructions
 * (`--console-input=FILE`, the `consoleInput` launch option).
 *
 * The input is cut into lines (each up to and including its "\n"; the last
 * may lack one). A line is typed only when the guest is idle — halted with
 * nothing to wake it, the host's `onIdle` point — its console driver has
 * posted receive buffers, and either
 *  - the guest printed something since the previous line and its last byte
 *    is not a newline: a prompt is waiting (`/ # `, `login: `), or
 *  - nothing was printed or typed for {@link QUIET_NS} of virtual time (for
 *    a program that reads without prompting).
 * Idle points, console output and virtual time are all functions of the
 * guest's own execution, so the instruction count at which each line lands
 * is the same in every run, however the run is sliced.
 *
 * Live keys from a terminal go straight to `VirtioConsole.input` instead,
 * and are not deterministic (a person types them).
 *
 * @module
 */

import type { Guest } from "../lguest/guest.ts";
import type { VirtioConsole } from "../devices/virtio_console.ts";
import { RECEIVEQ } from "../devices/virtio_console.ts";
import type { ConsoleLog } from "./console_log.ts";

/** Virtual time (ns) of console silence after which the next line is typed unprompted. */
export const QUIET_NS = 5_000_000_000;

/** One delivery: where a line went in. */
export interface ConsoleDelivery {
  /** Instruction count when it was typed. */
  icount: number;
  /** The bytes typed. */
  bytes: Uint8Array;
}

/** Feeds scripted input to a guest's console at its idle points. */
export class ScriptedConsoleInput {
  private readonly lines: Uint8Array[] = [];
  private next = 0;
  /** Output total when the last line was typed (or at the start). */
  private outputMark = 0;
  /** Virtual time (ns) of the last output or line typed. */
  private quietSince = 0;
  private lastTotal = 0;
  /** Every line typed so far, in order. */
  readonly delivered: ConsoleDelivery[] = [];

  /**
   * Input `bytes` for the console of `guest`, whose output is `log`; installs
   * itself as the guest's `onIdle`.
   *
   * @param guest the guest
   * @param console its virtio console
   * @param log its console output
   * @param bytes the input
   */
  constructor(
    private readonly guest: Guest,
    private readonly console: VirtioConsole,
    private readonly log: ConsoleLog,
    bytes: Uint8Array,
  ) {
    let start = 0;
    for (let i = 0; i < bytes.length; i++) {
      if (bytes[i] === 0x0a) {
        this.lines.push(bytes.slice(start, i + 1));
        start = i + 1;
      }
    }
    if (start < bytes.length) this.lines.push(bytes.slice(start));
    guest.onIdle = () => this.idle();
  }

  /** Lines not yet typed. */
  get remaining(): number {
    return this.lines.length - this.next;
  }

  /** The guest is idle: type the next line if it is waiting for one. */
  private idle(): void {
    if (this.next >= this.lines.length) return;
    const g = this.guest, log = this.log, now = g.nowNs();
    if (log.total !== this.lastTotal) {
      this.lastTotal = log.total;
      this.quietSince = now;
    }
    const q = this.console.queues[RECEIVEQ];
    if (!this.console.live || !q.enabled || !q.hasAvailable()) return;
    const prompted = log.total > this.outputMark && log.since(log.total - 1)[0] !== 0x0a;
    if (!prompted && now - this.quietSince < QUIET_NS) return;
    const bytes = this.lines[this.next++];
    this.delivered.push({ icount: g.cpu.icount, bytes });
    this.console.input(bytes);
    this.outputMark = log.total;
    this.quietSince = now;
  }
}
