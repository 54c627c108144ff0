/**
 * What a long run is doing, in one line: instructions retired, MIPS, virtual
 * time (the instruction count on lguest's 1 GHz clock) and the phase the
 * guest is in — 'decompressing' (a bzImage before it reaches lguest_init),
 * 'starting', 'linear mode' (the 2011 boot before the first
 * LHCALL_NEW_PGTABLE), 'kernel'. `repl.ts --run` shows it on a terminal
 * about once a second, and the same figures end every run. Text only: the
 * front end decides where it goes.
 *
 * @module
 */

import type { Guest } from "../lguest/guest.ts";

/** The phase an lguest guest is in, from the host's state (`format` is the kernel file's). */
export function guestPhase(g: Guest, format: string): string {
  if (g.dead) return "ended";
  if (g.lguestData < 0) return format === "bzImage" ? "decompressing" : "starting";
  const phase = g.pt.linear ? "linear mode" : "kernel";
  return g.halted ? `${phase}, idle` : phase;
}

/** Figures of a run so far. */
export interface RunFigures {
  /** Instructions retired. */
  instructions: number;
  /** Wall-clock seconds. */
  seconds: number;
  /** The phase ({@link guestPhase}), or "" when there is none to tell. */
  phase: string;
}

/** `123,456,789 instructions  45.2 MIPS  virtual 0.123 s  linear mode` */
export function statusLine(f: RunFigures): string {
  const mips = f.seconds > 0 ? (f.instructions / f.seconds / 1e6).toFixed(1) : "-";
  return [
    `${f.instructions.toLocaleString("en-US")} instructions`,
    `${mips} MIPS`,
    `virtual ${(f.instructions / 1e9).toFixed(3)} s`,
    ...(f.phase ? [f.phase] : []),
  ].join("  ");
}
