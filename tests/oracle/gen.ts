/**
 * The oracle's corpus generator: makes seeded random cases per instruction
 * class, runs them natively through build/runner, and writes the results as
 * fixtures (tests/oracle/fixtures/<class>.json.gz) that tests/oracle_test.ts
 * replays on the emulator.
 *
 * Deterministic for a given seed (and host CPU): the same command regenerates
 * the same files. Cases whose native run timed out are dropped (none are
 * expected; the count is reported).
 *
 * Usage: deno task oracle:gen [--seed N] [--only class,class] [--scale F]
 *        (run `deno task oracle:build` first)
 *
 * @module
 */

import {
  ARITH,
  encodeFixture,
  type Expected,
  type Fixture,
  FIXTURE_DIR,
  flagNames,
  type OracleCase,
  PATTERN_SEED,
  VECTORS_WITH_ERROR,
} from "./fixture.ts";
import { CaseBuilder, completeCase, finishCase, hashString, type Pending, Rng } from "./gen_lib.ts";
import {
  genAlu,
  genBcd,
  genBitOps,
  genControl,
  type GenCtx,
  genFaulting,
  genFlagMisc,
  genMove,
  genMulDiv,
  genPrefixes,
  genSeq,
  genShift,
  genShld,
  genStack,
  genString,
  Retry,
} from "./gen_int.ts";
import { genX87 } from "./gen_x87.ts";
import { runNative } from "./native.ts";

/** A class of cases: its generator and how many cases to make. */
export interface ClassDef {
  /** File name and test name. */
  name: string;
  /** One line for humans. */
  about: string;
  /** Number of cases. */
  count: number;
  /** Adds the case's instructions to a builder. */
  gen: (b: CaseBuilder, ctx: GenCtx) => void;
  /** Compare x87 state. */
  fpu?: boolean;
}

/** Every class of the corpus. */
export const CLASSES: ClassDef[] = [
  {
    name: "alu",
    about: "ADD..CMP, 80-83, TEST/NOT/NEG, INC/DEC, LOCK forms; all ModRM/SIB forms",
    count: 4000,
    gen: genAlu,
  },
  {
    name: "shift",
    about: "ROL/ROR/RCL/RCR/SHL/SHR/SAL/SAR by 1, imm8, CL with edge counts",
    count: 2500,
    gen: genShift,
  },
  { name: "shld", about: "SHLD/SHRD by imm8 and CL", count: 900, gen: genShld },
  {
    name: "muldiv",
    about: "MUL/IMUL (all forms), DIV/IDIV incl. #DE",
    count: 1800,
    gen: genMulDiv,
  },
  {
    name: "bitops",
    about: "BT/BTS/BTR/BTC (register offsets far outside the operand), BSF/BSR",
    count: 1600,
    gen: genBitOps,
  },
  { name: "bcd", about: "DAA/DAS/AAA/AAS/AAM/AAD (AAM 0 → #DE)", count: 800, gen: genBcd },
  {
    name: "string",
    about: "MOVS/CMPS/STOS/LODS/SCAS, REP/REPE/REPNE, DF=0/1, 0x67",
    count: 2200,
    gen: genString,
  },
  {
    name: "move",
    about: "MOV/MOVZX/MOVSX/CBW/CWD/XCHG/XADD/CMPXCHG(8B)/BSWAP/SETcc/CMOVcc/LEA",
    count: 2600,
    gen: genMove,
  },
  {
    name: "stack",
    about: "PUSH/POP all forms, PUSHA/POPA, PUSHF/POPF, PUSH sreg, ENTER/LEAVE",
    count: 1500,
    gen: genStack,
  },
  {
    name: "flagmisc",
    about: "CLC/STC/CMC/CLD/STD/LAHF/SAHF/SALC, XLAT, NOPs, INTO, BOUND, ARPL",
    count: 1000,
    gen: genFlagMisc,
  },
  {
    name: "faulting",
    about: "privileged and invalid instructions at CPL 3 (#GP, #UD)",
    count: 300,
    gen: genFaulting,
  },
  {
    name: "prefixes",
    about: "redundant/repeated prefixes, ignored REP, the 15-byte limit",
    count: 600,
    gen: genPrefixes,
  },
  {
    name: "control",
    about: "JMP/Jcc/LOOP/JECXZ/CALL/RET/indirect branches (forward)",
    count: 900,
    gen: genControl,
  },
  { name: "seq", about: "random sequences of 2-6 instructions", count: 2500, gen: genSeq },
  {
    name: "x87",
    about: "x87 arithmetic, compares, loads/stores of every format, control (exact in float64)",
    count: 4000,
    gen: genX87,
    fpu: true,
  },
];

function parseArgs(args: string[]): { seed: number; only?: Set<string>; scale: number } {
  let seed = 0x0dac1e, scale = 1;
  let only: Set<string> | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--seed") seed = Number(args[++i]) >>> 0;
    else if (a === "--only") only = new Set(args[++i].split(","));
    else if (a === "--scale") scale = Number(args[++i]);
    else throw new Error(`unknown argument ${a}`);
  }
  return { seed, only, scale };
}

/** Generate one class's pending cases. */
export function generateClass(def: ClassDef, seed: number, count: number): Pending[] {
  const r = new Rng((seed ^ hashString(def.name)) >>> 0);
  const out: Pending[] = [];
  let attempts = 0;
  while (out.length < count) {
    if (++attempts > count * 50) throw new Error(`${def.name}: generator keeps failing`);
    const b = new CaseBuilder(r);
    b.wantFpu = !!def.fpu;
    try {
      def.gen(b, { seq: false });
    } catch (e) {
      if (e instanceof Retry) continue;
      throw e;
    }
    const p = finishCase(b, out.length);
    if (p) out.push(p);
  }
  return out;
}

/**
 * Sanity check of the flag rules against the hardware: a single instruction
 * that ran to the end must leave every arithmetic flag it neither writes nor
 * leaves undefined as it was.
 */
function checkUnchangedFlags(cls: string, p: Pending, e: Expected): void {
  if (p.b.insns.length !== 1 || e.vec !== 3) return;
  const i = p.b.insns[0];
  const same = ARITH & ~(i.writes | i.undef);
  const diff = (e.eflags ^ p.c.eflags) & same;
  if (diff !== 0) {
    console.warn(
      `  ${cls} #${p.c.id} (${i.text}): flags ${
        flagNames(diff)
      } changed but the rules say unaffected`,
    );
  }
}

/** The host CPU's model name (fixture provenance). */
function hostCpu(): string {
  try {
    const m = /^model name\s*:\s*(.*)$/m.exec(Deno.readTextFileSync("/proc/cpuinfo"));
    return m ? m[1].trim() : "unknown";
  } catch {
    return "unknown";
  }
}

/** Run a class natively and build its fixture. */
export async function buildFixture(def: ClassDef, seed: number, count: number): Promise<Fixture> {
  const pending = generateClass(def, seed, count);
  const res = await runNative(pending.map((p) => p.c), PATTERN_SEED);
  const cases: OracleCase[] = [];
  let timeouts = 0;
  const vecs = new Map<number, number>();
  for (const p of pending) {
    const e = res.get(p.c.id);
    if (!e) throw new Error(`${def.name}: no native result for case ${p.c.id}`);
    if (e.vec === -1) {
      timeouts++;
      continue;
    }
    if (!def.fpu) delete e.fpu;
    // Stale values the kernel reports for vectors that have none: keep fixtures clean.
    if (e.vec !== 14) e.cr2 = 0;
    if (!VECTORS_WITH_ERROR.has(e.vec)) e.err = 0;
    checkUnchangedFlags(def.name, p, e);
    vecs.set(e.vec, (vecs.get(e.vec) ?? 0) + 1);
    const oc = completeCase(p, e);
    oc.id = cases.length;
    cases.push(oc);
  }
  const vs = [...vecs.entries()].sort((a, b) => a[0] - b[0]).map(([v, n]) => `#${v}:${n}`).join(
    " ",
  );
  console.log(
    `${def.name.padEnd(10)} ${String(cases.length).padStart(6)} cases  ${vs}${
      timeouts ? `  (${timeouts} timeouts dropped)` : ""
    }`,
  );
  return {
    version: 1,
    class: def.name,
    patternSeed: PATTERN_SEED,
    seed,
    about: def.about,
    host: hostCpu(),
    cases,
  };
}

if (import.meta.main) {
  const { seed, only, scale } = parseArgs(Deno.args);
  await Deno.mkdir(FIXTURE_DIR, { recursive: true });
  let total = 0;
  for (const def of CLASSES) {
    if (only && !only.has(def.name)) continue;
    const f = await buildFixture(def, seed, Math.max(1, Math.round(def.count * scale)));
    total += f.cases.length;
    await Deno.writeFile(`${FIXTURE_DIR}${def.name}.json.gz`, encodeFixture(f));
  }
  console.log(`total ${total} cases → ${FIXTURE_DIR}`);
}
