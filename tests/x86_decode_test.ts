/**
 * Decoder cross-check against iced-x86: for 1,000,000 seeded random byte
 * strings, the CPU's instruction length and its #UD decision must agree with
 * iced-x86 for every instruction the CPU claims to implement, invalid strings
 * must raise #UD (or #GP(0) past the 15-byte limit), and instructions of
 * features the CPU does not have must raise #UD. The machinery, and what
 * "claims to implement" means, is in `decode_oracle.ts`; its CLI prints the
 * disagreements grouped by opcode:
 *
 *     deno run -A tests/decode_oracle.ts 1000000 1
 *
 * The strings are checked in chunks of 100,000, each with its own seed, so a
 * failure names a seed and index that reproduce it. A million go through the
 * interpreter; two more chunks run with the block translator on, so that its
 * decoder is held to the same standard.
 *
 * @module
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  crossCheck,
  type CrossCheckResult,
  formatMismatch,
  Harness,
  Outcome,
  PLACEMENTS,
} from "./decode_oracle.ts";

/** Strings per chunk, and chunks: 10 x 100,000 = 1,000,000 through the interpreter. */
const CHUNK = 100_000, CHUNKS = 10;
/**
 * Chunks run with the block translator on (each instruction translated on first
 * sight). Translation costs ~25 us a string (new Function per block), so these
 * check 200,000 strings, not a million.
 */
const JIT_CHUNKS = 2;
/** Base seed of the chunks (chunk i uses BASE_SEED + i). */
const BASE_SEED = 0x1ced;
/** Per-chunk time limit (a chunk takes well under a second under Deno). */
const TIMEOUT = 120_000;

function hex(s: string): Uint8Array {
  const b = new Uint8Array(16);
  s.trim().split(/\s+/).forEach((x, i) => b[i] = parseInt(x, 16));
  return b;
}

/** The failure message: totals, the first 20 mismatches, and counts by opcode group. */
function explain(r: CrossCheckResult): string {
  const lines = [
    `seed ${r.seed}${r.jitBlocks > 0 ? " (translated)" : ""}: ${r.mismatchCount} mismatches ` +
    `in ${r.count} strings (claimed ${r.claimed}, invalid ${r.invalid}, must-#UD ${r.mustUD})`,
  ];
  const kinds = new Map<string, number>();
  for (const [k, g] of r.groups) {
    const kind = k.slice(0, k.indexOf(":"));
    if (kind !== "report-only-not-ud") kinds.set(kind, (kinds.get(kind) ?? 0) + g.count);
  }
  lines.push(`by kind: ${[...kinds].map(([k, n]) => `${k} ${n}`).join(", ")}`);
  // The first 20, spread over the kinds so that one prolific bug does not hide the others.
  const perKind = Math.ceil(20 / Math.max(1, kinds.size)), shown = new Map<string, number>();
  for (const m of r.mismatches) {
    const n = shown.get(m.kind) ?? 0;
    if (n >= perKind) continue;
    shown.set(m.kind, n + 1);
    lines.push(`#${m.index} ${formatMismatch(m)}`);
  }
  const groups = [...r.groups.entries()]
    .filter(([k]) => !k.startsWith("report-only"))
    .sort((a, b) => b[1].count - a[1].count);
  lines.push("by group:");
  for (const [k, g] of groups.slice(0, 30)) lines.push(`${String(g.count).padStart(7)}  ${k}`);
  if (groups.length > 30) lines.push(`    ... ${groups.length - 30} more groups`);
  return lines.join("\n");
}

describe("x86 decoder cross-check against iced-x86", () => {
  it("measures lengths by what the CPU fetches", () => {
    // The length probe itself: these must hold for any correct CPU, so a broken
    // harness (one that could never see an overfetch) fails here.
    const h = new Harness();
    const cases: [string, number][] = [
      ["90", 1],
      ["81 04 24 11 22 33 44", 7], // add dword [esp], imm32: ModRM + SIB + imm32
      ["66 81 84 88 11 22 33 44 55 66", 10], // o16, disp32, imm16
      ["67 c7 46 10 11 22 33 44", 8], // a16 [bp+disp8], imm32
      ["0f 8f 00 00 00 00", 6], // jg rel32
      ["d9 05 00 10 00 00", 6], // fld dword [disp32]
      ["f0 0f c7 0d 00 10 00 00", 8], // lock cmpxchg8b [disp32]
    ];
    for (const [bytes, n] of cases) {
      const s = hex(bytes);
      for (const pl of PLACEMENTS) {
        assert.notEqual(h.run(s, n, pl), Outcome.FetchPF, `${bytes}: fetched past ${n} bytes`);
        assert.equal(h.run(s, n - 1, pl), Outcome.FetchPF, `${bytes}: did not need byte ${n}`);
      }
      assert.equal(h.cpuLength(s), n, bytes);
    }
    assert.equal(h.run(hex("0f 0b"), 2, PLACEMENTS[0]), Outcome.UD, "ud2");
  });

  for (let i = 0; i < CHUNKS; i++) {
    const seed = BASE_SEED + i;
    it(`agrees on ${CHUNK} random strings (seed ${seed})`, { timeout: TIMEOUT }, () => {
      const r = crossCheck(seed, CHUNK, { maxRecords: 100 });
      assert.equal(r.count, CHUNK);
      assert.ok(r.claimed > CHUNK / 2, `too few claimed instructions: ${r.claimed}`);
      if (r.mismatchCount !== 0) assert.fail(explain(r));
    });
  }

  for (let i = 0; i < JIT_CHUNKS; i++) {
    const seed = BASE_SEED + CHUNKS + i;
    it(`agrees on ${CHUNK} random strings, translated (seed ${seed})`, { timeout: TIMEOUT }, () => {
      const r = crossCheck(seed, CHUNK, { maxRecords: 100, jit: true });
      assert.ok(r.jitBlocks > CHUNK / 4, `the translator was hardly used: ${r.jitBlocks} blocks`);
      if (r.mismatchCount !== 0) assert.fail(explain(r));
    });
  }
});
