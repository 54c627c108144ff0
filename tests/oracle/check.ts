/**
 * Debugging CLI for the oracle: runs fixture cases on the emulator and prints
 * every mismatch readably — the instruction bytes disassembled by iced-x86, the
 * initial registers and flags, and expected (native) versus emulated values for
 * each field that differs — followed by a per-class summary.
 *
 * Usage: deno run -A tests/oracle/check.ts [class[,class...]] [--max N] [--id N] [--quiet]
 *   --max N   print at most N mismatching cases per class (default 20)
 *   --id N    only case N (implies printing it even when it agrees)
 *   --quiet   summary only
 *
 * @module
 */

import { Decoder, DecoderOptions, Formatter, FormatterSyntax } from "iced-x86";
import {
  CODE_BASE,
  compareOutcome,
  flagNames,
  fromHex,
  hex32,
  listFixtureClasses,
  loadFixture,
  type OracleCase,
  REG_NAMES,
} from "./fixture.ts";
import { CaseRunner } from "./cpu_case.ts";

/** Disassemble `code` (as at CODE_BASE) into lines "addr: bytes  text". */
export function disassemble(code: Uint8Array): string[] {
  const dec = new Decoder(32, code, DecoderOptions.None);
  dec.ip = BigInt(CODE_BASE);
  const fmt = new Formatter(FormatterSyntax.Intel);
  const out: string[] = [];
  try {
    let off = 0;
    while (dec.canDecode) {
      const ins = dec.decode();
      const len = ins.length;
      const bytes = [...code.subarray(off, off + len)].map((b) => b.toString(16).padStart(2, "0"))
        .join(" ");
      out.push(`    ${hex32(CODE_BASE + off)}: ${bytes.padEnd(30)} ${fmt.format(ins)}`);
      off += len;
      ins.free();
    }
  } finally {
    fmt.free();
    dec.free();
  }
  return out;
}

const RED = "\x1b[31m", GREEN = "\x1b[32m", DIM = "\x1b[2m", BOLD = "\x1b[1m", RESET = "\x1b[0m";

function describeCase(cls: string, c: OracleCase): string {
  const lines = [`${BOLD}${cls} #${c.id}${RESET}  ${DIM}${c.desc ?? ""}${RESET}`];
  lines.push(...disassemble(fromHex(c.code)));
  const regs = c.regs.map((v, i) => `${REG_NAMES[i]}=${hex32(v)}`);
  lines.push(`    in:  ${regs.slice(0, 4).join(" ")}`);
  lines.push(`         ${regs.slice(4).join(" ")}`);
  lines.push(
    `         eflags=${hex32(c.eflags)} (${flagNames(c.eflags)})  compared flags ${
      hex32(c.flagsMask)
    }`,
  );
  if (c.mem?.length) {
    lines.push(
      `         mem ${c.mem.slice(0, 6).map(([a, h]) => `${hex32(a)}:${h}`).join(" ")}${
        c.mem.length > 6 ? " ..." : ""
      }`,
    );
  }
  const e = c.expect;
  lines.push(
    `    native: vector ${e.vec}${
      e.vec === 14
        ? ` err ${hex32(e.err, 4)} cr2 ${hex32(e.cr2)}`
        : e.vec === 13
        ? ` err ${hex32(e.err, 4)}`
        : ""
    } eip ${hex32(e.eip)}`,
  );
  return lines.join("\n");
}

/** Group mismatch fields for the summary ("mem 0x1234" → "mem", flag lists kept). */
function fieldKind(f: string): string {
  if (f.startsWith("mem ")) return "mem";
  if (f.startsWith("fpu st")) return "fpu st";
  if (f.startsWith("fpu sw")) return "fpu sw";
  if (f.startsWith("eflags")) return "eflags";
  return f.replace(/ \(mask .*\)$/, "");
}

if (import.meta.main) {
  const args = [...Deno.args];
  let max = 20, id = -1, quiet = false;
  let classes: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--max") max = Number(args[++i]);
    else if (args[i] === "--id") id = Number(args[++i]);
    else if (args[i] === "--quiet") quiet = true;
    else classes.push(...args[i].split(","));
  }
  if (classes.length === 0) classes = listFixtureClasses();
  const summary: [string, number, number, Map<string, number>][] = [];
  for (const cls of classes) {
    const f = loadFixture(cls);
    const runner = new CaseRunner(f.patternSeed);
    let bad = 0, shown = 0;
    const fields = new Map<string, number>();
    for (const c of f.cases) {
      if (id >= 0 && c.id !== id) continue;
      const got = runner.run(c);
      const mm = compareOutcome(c, got, (a) => runner.initByte(a));
      if (mm.length) bad++;
      for (const k of new Set(mm.map((m) => fieldKind(m.field)))) {
        fields.set(k, (fields.get(k) ?? 0) + 1);
      }
      if (quiet || (mm.length === 0 && id < 0) || shown >= max) continue;
      shown++;
      console.log(describeCase(cls, c));
      if (mm.length === 0) console.log(`    ${GREEN}agrees${RESET}`);
      for (const m of mm) {
        console.log(
          `    ${RED}${m.field}${RESET}: expected ${GREEN}${m.expected}${RESET}, got ${RED}${m.got}${RESET}`,
        );
      }
      console.log();
    }
    summary.push([cls, bad, id >= 0 ? 1 : f.cases.length, fields]);
  }
  console.log(`${BOLD}summary${RESET}`);
  let tb = 0, tn = 0;
  for (const [cls, bad, n, fields] of summary) {
    tb += bad;
    tn += n;
    const top = [...fields.entries()].sort((a, b) => b[1] - a[1]).slice(0, 8).map(([k, v]) =>
      `${k} ${v}`
    )
      .join(", ");
    console.log(
      `  ${cls.padEnd(10)} ${String(bad).padStart(6)} / ${String(n).padStart(6)} mismatching${
        bad ? `  (${top})` : "  ✓"
      }`,
    );
  }
  console.log(`  ${"total".padEnd(10)} ${String(tb).padStart(6)} / ${String(tn).padStart(6)}`);
}
