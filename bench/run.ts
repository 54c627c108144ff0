/**
 * `deno task bench`: run the CPU benchmark under Deno and under Bun and print
 * the figures (millions of guest instructions per second) as a table, ready
 * for README.md. Bun and Deno are the project's own npm dependencies.
 * Arguments pick sections (see cpu_bench.ts), e.g. `deno task bench linux`;
 * the Linux boot runs when LGUEST_TS_GUEST_DIR names a guest kernel's directory.
 *
 * @module
 */

import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import process from "node:process";

const root = fileURLToPath(new URL("..", import.meta.url));
const bin = (name: string) => `${root}node_modules/.bin/${name}`;

type Figures = Record<string, { mips: number; insns: number; seconds: number }>;

function runUnder(label: string, cmd: string, args: string[]): Figures | null {
  const r = spawnSync(cmd, args, { cwd: root, encoding: "utf8", maxBuffer: 1 << 24 });
  if (r.status !== 0) {
    console.error(`${label}: failed (${r.error?.message ?? r.stderr.trim().split("\n").pop()})`);
    return null;
  }
  if (r.stderr.trim() !== "") console.error(`${label}: ${r.stderr.trim()}`);
  const line = r.stdout.trim().split("\n").pop() ?? "{}";
  return JSON.parse(line) as Figures;
}

const sections = process.argv.slice(2);
const runs: [string, Figures | null][] = [
  ["Deno", runUnder("Deno", bin("deno"), ["run", "-A", "bench/cpu_bench.ts", ...sections])],
  ["Bun", runUnder("Bun", bin("bun"), ["bench/cpu_bench.ts", ...sections])],
];

const names = [...new Set(runs.flatMap(([, f]) => (f ? Object.keys(f) : [])))];
console.log(
  `| benchmark | ${runs.map(([l]) => `${l} MIPS`).join(" | ")} | ${
    runs.map(([l]) => `${l} s`).join(" | ")
  } | guest instructions |`,
);
console.log(`|---|${runs.map(() => "---:|---:").join("|")}|---:|`);
for (const n of names) {
  const mips = runs.map(([, f]) => (f?.[n] ? f[n].mips.toFixed(1) : "-"));
  const secs = runs.map(([, f]) => (f?.[n] ? f[n].seconds.toFixed(2) : "-"));
  const insns = runs.find(([, f]) => f?.[n])?.[1]?.[n].insns ?? 0;
  console.log(
    `| ${n} | ${mips.join(" | ")} | ${secs.join(" | ")} | ${insns.toLocaleString("en-US")} |`,
  );
}
// The same decompressor run under QEMU's TCG, when it was timed: how far behind we are.
for (const [label, f] of runs) {
  const ours = f?.["decompressor"], qemu = f?.["decompressor (QEMU TCG)"];
  if (ours && qemu) {
    console.log(
      `decompressor under ${label}: QEMU TCG is ${(qemu.mips / ours.mips).toFixed(1)}x faster ` +
        `(${ours.seconds.toFixed(1)} s vs ${qemu.seconds.toFixed(1)} s)`,
    );
  }
}
