/**
 * The host fuzzer's runner: boot one seeded hostile guest (fuzz_guest.ts)
 * under the launcher, with the console, a 64 KiB virtio disk and the entropy
 * device plugged in, and run it in slices, auditing the host's invariants
 * (lguest/audit.ts) after every slice, until its budget ends or it dies.
 *
 * A run fails when the host throws, when the audit finds a violation, when
 * the host stops making progress — no guest instruction retired across a
 * great many host events (demand paging, traps, hypercalls), or a slice
 * taking longer than a wall-clock bound — or when the console output the
 * launcher keeps grows past its bound. Runs are deterministic, so a run's
 * `fingerprint` (instruction count, registers, RAM, output, how it ended)
 * must be the same every time, and a failing seed is replayed by its command
 * (`replayCommand`).
 *
 * @module
 */

import { Launcher } from "../boot/launcher.ts";
import { auditHost } from "../lguest/audit.ts";
import { buildFuzzGuest, type FuzzGuest, type FuzzKind } from "./fuzz_guest.ts";

export type { FuzzKind } from "./fuzz_guest.ts";
/** Both page-table geometries. */
export const FUZZ_KINDS: readonly FuzzKind[] = ["nonpae", "pae"];

/** How a fuzz run ended: the first three are a guest's business, the rest are host failures. */
export type FuzzEnding =
  | "budget" // ran its whole budget
  | "dead" // killed with a reason (or shut down)
  | "halted" // halted with nothing to wake it
  | "threw" // the host threw
  | "audit" // the audit found a violation
  | "hang" // the host stopped making progress
  | "output"; // console output kept beyond its bound

/** Options of one run. */
export interface FuzzOptions {
  /** Guest instructions to run at most (default 400 000). */
  insns?: number;
  /** Audit after every this many instructions (default 25 000). */
  auditEvery?: number;
  /** Longest a slice may take in wall-clock milliseconds (default 20 000). */
  sliceWallMs?: number;
  /** Host events without a retired guest instruction that count as a hang (default 200 000). */
  stallEvents?: number;
  /** Console bytes the launcher is told to keep, and may keep (default 4096). */
  outputCap?: number;
  /** Translate hot guest code (default true; the interpreter alone must give the same run). */
  jit?: boolean;
}

/** What one run did. */
export interface FuzzRun {
  /** The seed. */
  seed: number;
  /** The page-table geometry. */
  kind: FuzzKind;
  /** Guest instructions retired. */
  icount: number;
  /** How it ended. */
  ending: FuzzEnding;
  /** The guest's death reason, or what went wrong in the host. */
  reason: string;
  /** Audit violations (ending "audit"). */
  violations: string[];
  /** Audits run. */
  audits: number;
  /** Faults and IRQs the guest's own handlers took (read from its memory). */
  guestFaults: number;
  /** IRQs the guest's handler took. */
  guestIrqs: number;
  /** Console bytes the guest wrote. */
  outputBytes: number;
  /** A hash of the final state: equal for equal runs. */
  fingerprint: string;
  /** Wall-clock milliseconds. */
  ms: number;
  /** Where the guest was at the end: its program block and kind (e.g. "b17 ptedit"). */
  where: string;
}

/** Thrown from the host's hooks when it stops making progress; caught in fuzzOne. */
class HostHang extends Error {}

const DEFAULTS: Required<FuzzOptions> = {
  insns: 400_000,
  auditEvery: 25_000,
  sliceWallMs: 20_000,
  stallEvents: 200_000,
  outputCap: 4096,
  jit: true,
};

/** The fuzz guests' disk (a virtio block device in slot 2): 64 KiB of zeros. */
const FUZZ_DISK_BYTES = 65536;

/** Did the run find a host failure? */
export function isFailure(r: FuzzRun): boolean {
  return r.ending !== "budget" && r.ending !== "dead" && r.ending !== "halted";
}

/** The command that replays a run. */
export function replayCommand(seed: number, kind: FuzzKind, o: FuzzOptions = {}): string {
  const insns = o.insns ?? DEFAULTS.insns;
  const cap = o.outputCap !== undefined && o.outputCap !== DEFAULTS.outputCap
    ? ` --output-cap ${o.outputCap}`
    : "";
  return `deno task fuzz --seed ${seed} --kind ${kind} --insns ${insns}${cap}`;
}

/**
 * The machine seed `seed` of kind `kind` runs on: its guest loaded by the
 * launcher, with the fuzz disk and an entropy device seeded by the seed.
 */
export function fuzzLauncher(
  seed: number,
  kind: FuzzKind,
  outputBytes: number = DEFAULTS.outputCap,
  fg: FuzzGuest = buildFuzzGuest(seed, kind),
): Launcher {
  return new Launcher({
    memMiB: fg.memMiB,
    kernel: fg.elf,
    kernelName: `fuzz-${kind}-${seed}`,
    hostPages: fg.hostPages,
    pae: fg.pae,
    pagetables: fg.pagetables,
    block: new Uint8Array(FUZZ_DISK_BYTES),
    rngSeed: seed,
    outputBytes,
  });
}

/** Run seed `seed` of kind `kind` under the host, auditing as it goes. */
export function fuzzOne(seed: number, kind: FuzzKind, options: FuzzOptions = {}): FuzzRun {
  const o = { ...DEFAULTS, ...options };
  const t0 = performance.now();
  const fg = buildFuzzGuest(seed, kind);
  const l = fuzzLauncher(seed, kind, o.outputCap, fg);
  const g = l.guest, cpu = g.cpu;
  cpu.jit = o.jit;
  let ending: FuzzEnding = "budget", reason = "", audits = 0;
  let violations: string[] = [];

  // Progress: the hooks see every host event; a hang shows as events without retired work.
  let events = 0, stallSince = 0, lastIcount = -1, sliceStart = 0;
  const watch = () => {
    if ((++events & 1023) !== 0) return;
    const ic = cpu.icount;
    if (ic !== lastIcount) {
      lastIcount = ic;
      stallSince = events;
    } else if (events - stallSince >= o.stallEvents) {
      throw new HostHang(
        `no guest instruction retired in ${events - stallSince} host events at EIP 0x${
          (cpu.eip >>> 0).toString(16)
        }`,
      );
    }
    if (performance.now() - sliceStart > o.sliceWallMs) {
      throw new HostHang(`a slice of ${o.auditEvery} instructions took over ${o.sliceWallMs} ms`);
    }
  };
  g.onPageFault = watch;
  g.onTrap = watch;
  g.onHypercall = watch;

  while (cpu.icount < o.insns) {
    sliceStart = performance.now();
    let stop: string;
    try {
      stop = g.run(Math.min(o.auditEvery, o.insns - cpu.icount));
    } catch (e) {
      if (e instanceof HostHang) {
        ending = "hang";
        reason = e.message;
      } else {
        ending = "threw";
        reason = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
        const frames = e instanceof Error ? e.stack?.split("\n") ?? [] : [];
        const at = (frames.find((f) => f.includes("/lib/")) ?? frames[1] ?? "").trim();
        if (at) reason += ` (${at})`;
      }
      break;
    }
    violations = auditHost(g);
    audits++;
    if (violations.length > 0) {
      ending = "audit";
      reason = violations[0];
      break;
    }
    if (l.output.length > o.outputCap) {
      ending = "output";
      reason =
        `the launcher keeps ${l.output.length} bytes of console output (bound ${o.outputCap})`;
      break;
    }
    if (stop === "budget") continue;
    if (stop === "dead") {
      ending = "dead";
      reason = g.deathReason;
    } else if (stop === "halted") ending = "halted";
    else {
      ending = "threw";
      reason = `Guest.run stopped with "${stop}"`;
    }
    break;
  }
  g.onPageFault = g.onTrap = g.onHypercall = null;

  const mem = g.mem;
  return {
    seed,
    kind,
    icount: cpu.icount,
    ending,
    reason,
    violations,
    audits,
    guestFaults: mem.read32(0x171004),
    guestIrqs: mem.read32(0x171008),
    outputBytes: l.output.length,
    fingerprint: fingerprint(l, ending, reason),
    ms: performance.now() - t0,
    where: fg.blockAt(cpu.eip),
  };
}

/** FNV-1a over the state a deterministic run must reproduce. */
function fingerprint(l: Launcher, ending: string, reason: string): string {
  const g = l.guest, cpu = g.cpu;
  let h = 0x811c9dc5;
  const mix = (v: number) => {
    h = Math.imul(h ^ (v | 0), 0x01000193);
  };
  mix(cpu.icount);
  mix(cpu.eip);
  mix(cpu.getEflags());
  mix(cpu.cpl);
  for (const v of cpu.regs) mix(v);
  for (const v of cpu.sreg) mix(v);
  for (const c of ending + reason) mix(c.charCodeAt(0));
  const ram = new Int32Array(g.mem.buffer, 0, g.ramSize >> 2);
  for (let i = 0; i < ram.length; i++) h = Math.imul(h ^ ram[i], 0x01000193);
  mix(l.output.length);
  return (h >>> 0).toString(16).padStart(8, "0");
}
