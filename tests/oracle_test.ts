/**
 * Differential test of the CPU against the host processor.
 *
 * Every fixture in tests/oracle/fixtures/ holds cases that were run natively on
 * a real i386-compatible CPU (see tests/oracle/README.md); here each case is run
 * on our emulator and the architecturally defined parts of the final state must
 * agree. One test per instruction class; a failure lists the first mismatches
 * with the instruction bytes, so `deno run -A tests/oracle/check.ts <class>` can
 * take it from there. Runs under `deno test` and `bun test` (node:test API).
 *
 * Every class runs twice: once on the interpreter alone, and once with the
 * block translator translating every instruction address on its first
 * execution, so both execution paths are held to the same truth.
 *
 * @module
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  compareOutcome,
  hex32,
  listFixtureClasses,
  loadFixture,
  type Mismatch,
} from "./oracle/fixture.ts";
import { CaseRunner } from "./oracle/cpu_case.ts";
import { CPU } from "../lib/x86/cpu.ts";

const SHOW = 10;

const MODES = [
  { name: "interpreter", jit: false, jitThreshold: 0 },
  { name: "translator", jit: true, jitThreshold: 0 },
] as const;

for (const mode of MODES) {
  describe(`oracle (${mode.name}): emulator agrees with the host CPU`, () => {
    const classes = listFixtureClasses();
    it("has fixtures", () => {
      assert.ok(
        classes.length > 0,
        "no fixtures in tests/oracle/fixtures (run deno task oracle:gen)",
      );
    });
    for (const cls of classes) {
      it(cls, () => {
        const saved = { ...CPU.defaults };
        CPU.defaults.jit = mode.jit;
        CPU.defaults.jitThreshold = mode.jitThreshold;
        const f = loadFixture(cls);
        let runner: CaseRunner;
        try {
          runner = new CaseRunner(f.patternSeed);
        } finally {
          Object.assign(CPU.defaults, saved);
        }
        const bad: string[] = [];
        let nbad = 0;
        for (const c of f.cases) {
          const got = runner.run(c);
          const mm: Mismatch[] = compareOutcome(c, got, (a) => runner.initByte(a));
          if (mm.length === 0) continue;
          nbad++;
          if (bad.length < SHOW) {
            const lines = mm.slice(0, 6).map((m) =>
              `    ${m.field}: expected ${m.expected}, got ${m.got}`
            );
            bad.push(
              `  ${cls} #${c.id} code ${c.code}${c.desc ? ` (${c.desc})` : ""}\n` +
                `    regs ${c.regs.map((v) => hex32(v)).join(" ")} eflags ${hex32(c.eflags)}\n` +
                lines.join("\n"),
            );
          }
        }
        if (nbad > 0) {
          assert.fail(
            `${nbad} of ${f.cases.length} ${cls} cases disagree with the host CPU; first ${bad.length}:\n` +
              bad.join("\n") + `\n  (details: deno run -A tests/oracle/check.ts ${cls})`,
          );
        }
      });
    }
  });
}
