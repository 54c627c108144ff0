/**
 * The host fuzzer from the command line: seeded hostile guests
 * (lib/debug/fuzz_guest.ts) run under the host with its invariants audited
 * (lib/debug/fuzz.ts), for a time or a number of seeds, or one seed replayed.
 *
 *   deno task fuzz --minutes 60 [--seed 1] [--insns 400000]
 *   deno task fuzz --count 200 [--seed 1]
 *   deno task fuzz --seed 1234 --kind pae [--insns 400000]     (replay one)
 *
 * Each seed runs once per page-table geometry (non-PAE and PAE); every tenth
 * seed runs twice, the second time audited every 997 instructions and without
 * the translator, and must give the same fingerprint (determinism, whatever
 * the slicing, with or without translated code). The runs
 * happen in a worker (tools/fuzz_worker.ts) watched by the wall clock: one
 * that gives no result in two minutes (`--wall-seconds`) is a hang, whatever the host was doing.
 * It prints
 * progress, then the seeds and guest instructions covered, how the runs
 * ended, and for each failure the command that replays it; the exit status is
 * 1 when anything failed.
 *
 * @module
 */

import type { FuzzJob } from "./fuzz_worker.ts";
import {
  FUZZ_KINDS,
  type FuzzKind,
  fuzzOne,
  type FuzzOptions,
  type FuzzRun,
  isFailure,
  replayCommand,
} from "../lib/debug/fuzz.ts";

function usage(msg: string): never {
  console.error(`fuzz: ${msg}`);
  console.error(
    "usage: deno task fuzz [--minutes N | --count N] [--seed S] [--kind nonpae|pae] [--insns N]" +
      " [--audit-every N] [--output-cap BYTES] [--wall-seconds N]",
  );
  Deno.exit(2);
}

const args = Deno.args;
const opt = new Map<string, string>();
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (!a.startsWith("--")) usage(`unexpected argument ${a}`);
  const v = args[i + 1];
  if (v === undefined) usage(`${a} needs a value`);
  opt.set(a.slice(2), v);
  i++;
}
for (const k of opt.keys()) {
  if (
    !["minutes", "count", "seed", "kind", "insns", "audit-every", "output-cap", "wall-seconds"]
      .includes(k)
  ) {
    usage(`unknown option --${k}`);
  }
}
const num = (k: string, dflt: number): number => {
  const s = opt.get(k);
  if (s === undefined) return dflt;
  const n = Number(s);
  if (!Number.isFinite(n) || n < 0) usage(`--${k} wants a number, not ${s}`);
  return n;
};
const kindOpt = opt.get("kind");
if (kindOpt !== undefined && !FUZZ_KINDS.includes(kindOpt as FuzzKind)) {
  usage(`--kind is nonpae or pae, not ${kindOpt}`);
}
const options: FuzzOptions = {
  insns: num("insns", 400_000),
  auditEvery: num("audit-every", 25_000),
  outputCap: num("output-cap", 4096),
};
const first = Math.floor(num("seed", 1));
const kinds = kindOpt ? [kindOpt as FuzzKind] : FUZZ_KINDS;

const describe = (r: FuzzRun) =>
  `${r.kind} seed ${r.seed}: ${r.ending}${r.reason ? ` (${r.reason})` : ""}` +
  ` after ${r.icount} instructions${r.where ? `, in ${r.where}` : ""}`;

// One seed replayed: run it, then again as the determinism check does (audited every 997
// instructions, interpreted only); when those differ, two more runs tell which it was.
if (opt.has("seed") && kindOpt && !opt.has("minutes") && !opt.has("count")) {
  const kind = kindOpt as FuzzKind;
  const a = fuzzOne(first, kind, options);
  const b = fuzzOne(first, kind, { ...options, auditEvery: 997, jit: false });
  console.log(describe(a));
  console.log(
    `  audits ${a.audits}, guest faults ${a.guestFaults}, guest IRQs ${a.guestIrqs}, ` +
      `console ${a.outputBytes} bytes, fingerprint ${a.fingerprint}, ${a.ms.toFixed(0)} ms`,
  );
  for (const v of a.violations) console.log(`  violation: ${v}`);
  const same = (x: FuzzRun, y: FuzzRun) => x.fingerprint === y.fingerprint && x.icount === y.icount;
  if (same(a, b)) {
    console.log("  deterministic: audited every 997 and interpreted only, it matches");
  } else {
    console.log(`  NOT deterministic: audited every 997 and interpreted only: ${describe(b)}`);
    const c = fuzzOne(first, kind, { ...options, jit: false });
    const d = fuzzOne(first, kind, { ...options, auditEvery: 997 });
    console.log(`    interpreted only, audited as before: ${same(a, c) ? "matches" : "differs"}`);
    console.log(`    audited every 997, translator on:    ${same(a, d) ? "matches" : "differs"}`);
  }
  Deno.exit(isFailure(a) || !same(a, b) ? 1 : 0);
}

const minutes = num("minutes", 0), count = num("count", 0);
if (minutes === 0 && count === 0) usage("give --minutes N, --count N, or --seed S --kind K");
const deadline = minutes > 0 ? performance.now() + minutes * 60_000 : Infinity;
const t0 = performance.now();
const endings = new Map<string, number>();
const failures: string[] = [];
let seeds = 0, runs = 0, insns = 0, lastReport = t0;

const report = (final: boolean) => {
  const s = (performance.now() - t0) / 1000;
  console.log(
    `${final ? "done" : "..."}: ${seeds} seeds, ${runs} runs, ${insns} guest instructions, ` +
      `${s.toFixed(0)} s (${(seeds / s).toFixed(2)} seeds/s, ${
        (insns / s / 1e6).toFixed(2)
      } M instructions/s), ` +
      `${failures.length} failures`,
  );
};

// The runs happen in a worker, so a host that hangs inside one is caught by the wall clock.
const WALL_MS = num("wall-seconds", 120) * 1000;
let worker: Worker | null = null;
type JobResult = { first: FuzzRun; again: FuzzRun | null } | { error: string };
const runJob = (job: FuzzJob): Promise<JobResult> => {
  worker ??= new Worker(new URL("./fuzz_worker.ts", import.meta.url).href, { type: "module" });
  const w = worker;
  return new Promise((resolve) => {
    const end = (r: JobResult) => {
      clearTimeout(timer);
      if ("error" in r) {
        w.terminate();
        worker = null;
      }
      resolve(r);
    };
    const timer = setTimeout(
      () => end({ error: `hang (no result in ${WALL_MS / 1000} s of wall clock)` }),
      WALL_MS,
    );
    w.onmessage = (e) => end(e.data);
    w.onerror = (e) => {
      e.preventDefault();
      end({ error: `threw (in the worker: ${e.message})` });
    };
    w.postMessage(job);
  });
};

for (let seed = first; performance.now() < deadline && (count === 0 || seeds < count); seed++) {
  for (const kind of kinds) {
    const twice = seed % 10 === 0;
    const out = await runJob({ seed, kind, options, twice });
    const replay = `\n    replay: ${replayCommand(seed, kind, options)}`;
    runs += twice ? 2 : 1;
    if ("error" in out) {
      const msg = `${kind} seed ${seed}: ${out.error}`;
      const key = out.error.split(" ")[0];
      endings.set(key, (endings.get(key) ?? 0) + 1);
      failures.push(msg + replay);
      console.log(`FAIL ${msg}${replay}`);
      continue;
    }
    const r = out.first;
    insns += r.icount + (out.again?.icount ?? 0);
    const key = r.ending === "dead"
      ? `dead: ${r.reason.replace(/0x[0-9a-f]+|\d+/g, "N")}`
      : r.ending;
    endings.set(key, (endings.get(key) ?? 0) + 1);
    if (isFailure(r)) {
      failures.push(describe(r) + replay);
      console.log(`FAIL ${describe(r)}${replay}`);
    } else if (
      out.again && (out.again.fingerprint !== r.fingerprint || out.again.icount !== r.icount)
    ) {
      const msg = `${kind} seed ${seed} is not deterministic: ${r.icount}/${r.fingerprint} then ` +
        `${out.again.icount}/${out.again.fingerprint}`;
      failures.push(msg + replay);
      console.log(`FAIL ${msg}${replay}`);
    }
  }
  seeds++;
  if (performance.now() - lastReport > 30_000) {
    lastReport = performance.now();
    report(false);
  }
}
(worker as Worker | null)?.terminate();
report(true);
console.log("endings:");
for (const [k, n] of [...endings].sort((x, y) => y[1] - x[1])) console.log(`  ${n}\t${k}`);
if (failures.length > 0) {
  console.log(`failures (${failures.length}):`);
  for (const f of failures) console.log(`  ${f}`);
}
Deno.exit(failures.length > 0 ? 1 : 0);
