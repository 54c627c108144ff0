/**
 * Runs the system-test guests on QEMU (TCG) and on lguest.ts and compares
 * what they report, line by line.
 *
 * The guests (tests/guests/*.asm) are flat Multiboot images, so QEMU boots
 * them unchanged with `-kernel`; they print `name=XXXXXXXX` lines on port 0xE9
 * (`-debugcon`) and stop through isa-debug-exit on port 0x501. QEMU is a
 * second implementation of the same architecture, not the architecture itself:
 * where the two differ for a reason we understand (QEMU's TCG skips a check
 * the SDM asks for, or the value is the machine's own, like CPUID and the TSC)
 * the difference is listed in KNOWN below with the reason, and only other
 * differences fail the check.
 *
 * Not part of the test suite (CI has no QEMU). Run it by hand:
 *
 *   apt-get install -y qemu-system-x86
 *   deno run -A tests/guests/qemu_check.ts [guest ...]
 *
 * @module
 */

import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GuestRun, Results } from "../system_harness.ts";

const DIR = new URL(".", import.meta.url).pathname;

/** Guests that need this harness's interrupt port, which QEMU does not have. */
const LGUEST_ONLY = new Set(["irq"]);

/** Differences we expect, by guest and key (a RegExp source), with the reason. */
const KNOWN: Record<string, [string, string][]> = {
  segments: [
    [
      "^acc\\.conf_after$|^p3_code3\\.lar$",
      "QEMU does not set the accessed bit of a code descriptor loaded by far JMP/IRET " +
      "(SDM Vol. 3A 3.4.5.1: any load sets it; lguest.ts does)",
    ],
  ],
  pae: [
    [
      "^ad\\.pdpte$",
      "QEMU sets the accessed bit in a PAE PDPTE, where bits 8:5 are reserved " +
      "(SDM Vol. 3A Table 4-8); lguest.ts leaves it clear",
    ],
  ],
  doublefault: [
    [
      "^ud_np_gate\\.err$",
      "QEMU never sets EXT (bit 0) in the error code of a fault raised while delivering " +
      "an earlier exception (SDM Vol. 3A 6.13); lguest.ts does",
    ],
  ],
  privileged: [
    ["^cpuid\\.", "CPUID describes each machine's own CPU model"],
    ["^tsc\\.delta$", "QEMU's TSC is host time; lguest.ts counts retired instructions"],
    [
      "^(rd|wr)msr_unknown\\.",
      "QEMU 7.2's TCG reads unknown MSRs as 0 and ignores writes; the SDM (RDMSR/WRMSR) " +
      "says #GP(0), as lguest.ts does",
    ],
  ],
};

interface Outcome {
  text: string;
  end: string;
}

function runQemu(bin: string): Outcome {
  const tmp = mkdtempSync(join(tmpdir(), "qemu-check-"));
  const out = join(tmp, "debugcon.txt");
  try {
    const r = spawnSync("qemu-system-i386", [
      "-machine",
      "pc",
      "-accel",
      "tcg",
      "-m",
      "32",
      "-display",
      "none",
      "-monitor",
      "none",
      "-serial",
      "none",
      "-parallel",
      "none",
      "-no-reboot",
      "-debugcon",
      `file:${out}`,
      "-device",
      "isa-debug-exit,iobase=0x501,iosize=1",
      "-kernel",
      bin,
    ], { encoding: "utf8", timeout: 60_000 });
    if (r.error) throw r.error;
    let text = "";
    try {
      text = readFileSync(out, "latin1");
    } catch { /* no output */ }
    // isa-debug-exit: status (v << 1) | 1; a triple fault with -no-reboot: status 0.
    const end = r.status === 1
      ? "debug-exit 0"
      : r.status === 0
      ? "shutdown"
      : `status ${r.status}`;
    return { text, end };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

function runOurs(name: string): Outcome {
  const g = new GuestRun(name);
  const stop = g.run();
  const end = stop === "exit" ? `debug-exit ${g.machine.debugExit}` : stop;
  return { text: g.text, end };
}

function parse(text: string): Results {
  const r = new Results();
  r.parse(text);
  return r;
}

const which = Deno.args.length > 0 ? Deno.args : readdirSync(DIR)
  .filter((f) => f.endsWith(".bin"))
  .map((f) => f.slice(0, -4))
  .filter((n) => !LGUEST_ONLY.has(n))
  .sort();

let failed = 0;
for (const name of which) {
  const q = runQemu(join(DIR, `${name}.bin`));
  const o = runOurs(name);
  const qr = parse(q.text), or = parse(o.text);
  const known = (KNOWN[name] ?? []).map(([re, why]) => [new RegExp(re), why] as const);
  const lines: string[] = [];
  let unexpected = 0, expected = 0, same = 0;
  const keys = new Set([...qr.values.keys(), ...or.values.keys()]);
  for (const k of keys) {
    const a = or.values.get(k), b = qr.values.get(k);
    if (a === b) {
      same++;
      continue;
    }
    const hex = (v: number | undefined) => v === undefined ? "(missing)" : `0x${v.toString(16)}`;
    const why = known.find(([re]) => re.test(k));
    if (why) expected++;
    else unexpected++;
    lines.push(
      `  ${why ? "known" : "DIFF "} ${k}: lguest.ts ${hex(a)}, qemu ${hex(b)}${
        why ? ` (${why[1]})` : ""
      }`,
    );
  }
  if (o.end !== q.end) {
    unexpected++;
    lines.push(`  DIFF  end: lguest.ts ${o.end}, qemu ${q.end}`);
  }
  console.log(
    `${name}: ${same} values agree, ${expected} known differences, ${unexpected} unexpected (end: ${o.end})`,
  );
  for (const l of lines) console.log(l);
  if (unexpected) failed++;
}
if (failed) Deno.exit(1);
