/**
 * The oracle's case and fixture format, the shared memory layout, and the
 * comparison of an emulator outcome with the native one.
 *
 * A *case* is instruction bytes plus an initial machine state (registers,
 * EFLAGS, memory overrides on top of a fixed pseudo-random pattern, an optional
 * x87 FNSAVE image) and the state the host CPU left when it ran them (see
 * runner.c). Each case also carries masks for what the architecture leaves
 * undefined (flags, register bits, memory bits, x87 status bits): only the
 * defined parts are compared. Fixtures are gzipped JSON, one file per class, so
 * the test suite needs no compiler.
 *
 * This module is used by the generator (gen.ts), the test (tests/oracle_test.ts)
 * and the debugging CLI (check.ts), and must run under both Deno and Bun.
 *
 * @module
 */

import { EFLAGS_BITS } from "../../lib/x86/flags.ts";
import { gunzipSync, gzipSync } from "../../lib/boot/gzip.ts";
import { readdirSync, readFileSync } from "node:fs";

/** Low data region: reachable by 16-bit addressing (page 0 stays unmapped). */
export const LOW_BASE = 0x1000;
/** Size of the low data region. */
export const LOW_SIZE = 0xf000;
/** Main data region; the stack lives in it (ESP around 0x108000). */
export const DATA_BASE = 0x100000;
/** Size of the main data region. */
export const DATA_SIZE = 0x10000;
/** Code page: the case's bytes, then int3, the rest of the page is 0xCC too. */
export const CODE_BASE = 0x200000;
/** Size of the code page. */
export const CODE_SIZE = 0x1000;
/** Default seed of the memory pattern. */
export const PATTERN_SEED = 0x5eed1234;

/** The regions the runner maps (and the emulator maps through its page tables). */
export const REGIONS: readonly { base: number; size: number }[] = [
  { base: LOW_BASE, size: LOW_SIZE },
  { base: DATA_BASE, size: DATA_SIZE },
  { base: CODE_BASE, size: CODE_SIZE },
];

/** EFLAGS bits the oracle talks about. */
export const F = {
  CF: 0x1,
  PF: 0x4,
  AF: 0x10,
  ZF: 0x40,
  SF: 0x80,
  TF: 0x100,
  IF: 0x200,
  DF: 0x400,
  OF: 0x800,
  IOPL: 0x3000,
  NT: 0x4000,
  RF: 0x10000,
  AC: 0x40000,
  VIF: 0x80000,
  VIP: 0x100000,
  ID: 0x200000,
} as const;
/** The six arithmetic flags. */
export const ARITH = 0x8d5;

/** Register names in encoding order. */
export const REG_NAMES = ["eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi"] as const;

/** Vectors whose exceptions push an error code (the only ones whose `err` is compared). */
export const VECTORS_WITH_ERROR: ReadonlySet<number> = new Set([8, 10, 11, 12, 13, 14, 17]);

/** What the native CPU did with a case. */
export interface Expected {
  /** Exception vector: 3 = reached the trailing int3 (normal end). */
  vec: number;
  /** Error code (compared only for vectors that push one). */
  err: number;
  /** CR2 (compared only for #PF). */
  cr2: number;
  /** EIP: after the int3 for a normal end, the faulting instruction for a fault. */
  eip: number;
  /** EAX..EDI. */
  regs: number[];
  /** EFLAGS with RF masked out. */
  eflags: number;
  /** Bytes that changed, as [address, hex] runs. */
  mem: [number, string][];
  /** Final x87 state as a 108-byte FNSAVE image in hex (x87 cases only). */
  fpu?: string;
}

/** One differential-testing case. */
export interface OracleCase {
  /** Index within its class. */
  id: number;
  /** Instruction bytes (hex); the runner appends int3. */
  code: string;
  /** A readable rendering of what was generated (for humans; not compared). */
  desc?: string;
  /** Initial EAX..EDI (unsigned). */
  regs: number[];
  /** Initial EFLAGS (IF=1, IOPL=0, as a Linux user process has them). */
  eflags: number;
  /** Memory overrides on top of the pattern: [address, hex]. */
  mem?: [number, string][];
  /** Initial x87 state as a 108-byte FNSAVE image (hex); absent = FNINIT state. */
  fpu?: string;
  /** EFLAGS bits compared (the architecturally defined ones; RF never). */
  flagsMask: number;
  /** Per-register bits compared (absent = all bits of all registers). */
  regMask?: number[];
  /** Byte masks for memory whose bits are partly undefined: [address, hex mask]. */
  memMask?: [number, string][];
  /** x87 status-word bits compared (absent = all but the exception-pointer fields). */
  fpuSwMask?: number;
  /** The native result. */
  expect: Expected;
}

/** A fixture file: all cases of one class. */
export interface Fixture {
  /** Format version. */
  version: 1;
  /** Class name (also the file name). */
  class: string;
  /** Seed of the memory pattern the cases assume. */
  patternSeed: number;
  /** Generator seed that produced the file. */
  seed: number;
  /** Short description of the class. */
  about: string;
  /** The host CPU the native results come from (model name). */
  host?: string;
  /** The cases. */
  cases: OracleCase[];
}

/** Directory of the committed fixtures. */
export const FIXTURE_DIR: string = new URL("./fixtures/", import.meta.url).pathname;

/** Encode bytes as lowercase hex. */
export function toHex(b: ArrayLike<number>): string {
  let s = "";
  for (let i = 0; i < b.length; i++) s += (b[i] & 0xff).toString(16).padStart(2, "0");
  return s;
}

/** Decode lowercase or uppercase hex. */
export function fromHex(s: string): Uint8Array {
  const out = new Uint8Array(s.length >> 1);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.substr(2 * i, 2), 16);
  return out;
}

/** Format a number as 0x-prefixed hex (unsigned). */
export function hex32(v: number, width = 8): string {
  return "0x" + (v >>> 0).toString(16).padStart(width, "0");
}

/**
 * The memory pattern: little-endian xorshift32 words, the main region first and
 * then the low region, continuing the same generator (exactly as runner.c).
 */
export function makePattern(seed: number): { low: Uint8Array; data: Uint8Array } {
  let x = seed >>> 0 || 1;
  const fill = (n: number): Uint8Array => {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i += 4) {
      x ^= x << 13;
      x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      out[i] = x & 0xff;
      out[i + 1] = (x >>> 8) & 0xff;
      out[i + 2] = (x >>> 16) & 0xff;
      out[i + 3] = x >>> 24;
    }
    return out;
  };
  const data = fill(DATA_SIZE);
  const low = fill(LOW_SIZE);
  return { low, data };
}

/** The FNINIT state as a 108-byte FNSAVE image (CW 0x037F, tags all empty). */
export function fninitImage(): Uint8Array {
  const img = new Uint8Array(108);
  img[0] = 0x7f;
  img[1] = 0x03;
  img[8] = 0xff;
  img[9] = 0xff;
  return img;
}

/** Serialize a fixture as gzipped JSON. */
export function encodeFixture(f: Fixture): Uint8Array {
  const json = JSON.stringify(f);
  return gzipSync(new TextEncoder().encode(json), { level: 9, mtime: 0 });
}

/** Parse a gzipped JSON fixture. */
export function decodeFixture(bytes: Uint8Array): Fixture {
  const f = JSON.parse(new TextDecoder().decode(gunzipSync(bytes))) as Fixture;
  if (f.version !== 1) throw new Error(`unknown fixture version ${f.version}`);
  return f;
}

/** Names of the fixture files present (class names), sorted. */
export function listFixtureClasses(dir = FIXTURE_DIR): string[] {
  return readdirSync(dir).filter((n) => n.endsWith(".json.gz")).map((n) => n.slice(0, -8)).sort();
}

/** Load one class's fixture. */
export function loadFixture(cls: string, dir = FIXTURE_DIR): Fixture {
  return decodeFixture(new Uint8Array(readFileSync(`${dir}${cls}.json.gz`)));
}

/** What the emulator did with a case (same shape as {@link Expected}, plus diagnostics). */
export interface Outcome {
  /** Exception vector (3 = reached the int3), or -1 if `run` ended otherwise. */
  vec: number;
  /** Error code, -1 when none. */
  err: number;
  /** CR2 reported with #PF. */
  cr2: number;
  /** Final EIP. */
  eip: number;
  /** Final EAX..EDI (unsigned). */
  regs: number[];
  /** Final EFLAGS. */
  eflags: number;
  /** Changed bytes: address → new value. */
  mem: Map<number, number>;
  /** Final FNSAVE image, when the case has x87 state. */
  fpu?: Uint8Array;
  /** A non-exception end of `run` or a JavaScript error, described. */
  problem?: string;
}

/** One disagreement between native and emulated results. */
export interface Mismatch {
  /** Which part of the state differs (e.g. "eax", "eflags", "mem 0x100004", "fpu st0"). */
  field: string;
  /** Native value, formatted. */
  expected: string;
  /** Emulated value, formatted. */
  got: string;
}

/** Names of the EFLAGS bits, for readable diffs (IOPL as one two-bit field). */
const FLAG_BITS: readonly (readonly [number, string])[] = [...EFLAGS_BITS, [0x3000, "IOPL"]];

/** Render the flag bits of `v` selected by `mask` as names ("CF ZF"). */
export function flagNames(v: number, mask = -1): string {
  const out: string[] = [];
  for (const [b, n] of FLAG_BITS) if ((mask & b) !== 0 && (v & b) !== 0) out.push(n);
  return out.join(" ") || "-";
}

/** Offsets into an FNSAVE image. */
const FPU_CW = 0, FPU_SW = 4, FPU_TAG = 8, FPU_ST0 = 28;

/** Read a 16-bit little-endian field. */
function rd16(b: Uint8Array, off: number): number {
  return b[off] | (b[off + 1] << 8);
}

/**
 * Physical tags (2 bits per register) of an FNSAVE image; ST(i) lives in
 * physical register (TOP + i) & 7.
 */
export function stTag(img: Uint8Array, i: number): number {
  const top = (rd16(img, FPU_SW) >> 11) & 7;
  return (rd16(img, FPU_TAG) >> (((top + i) & 7) * 2)) & 3;
}

/** Format an 80-bit register from an image as hex "sign/exp mantissa" plus its value. */
export function fmtF80(img: Uint8Array, off: number): string {
  const mant = [...img.subarray(off, off + 8)].reverse().map((x) => x.toString(16).padStart(2, "0"))
    .join("");
  const se = rd16(img, off + 8);
  const exp = se & 0x7fff, sign = se >> 15;
  let val = "";
  if (exp !== 0 && exp !== 0x7fff) {
    const m = BigInt("0x" + mant);
    const v = Number(m) * Math.pow(2, exp - 16383 - 63);
    val = Number.isFinite(v) && v !== 0
      ? ` (${sign ? "-" : ""}${v})`
      : ` (${sign ? "-" : ""}0x${mant}*2^${exp - 16383 - 63})`;
  } else if (exp === 0 && mant !== "0000000000000000") val = " (denormal)";
  return `${se.toString(16).padStart(4, "0")}:${mant}${val}`;
}

/**
 * Compare an emulator outcome with the native result of a case, honouring the
 * case's masks. `init` gives initial memory bytes for addresses not listed in a
 * diff. Returns every disagreement (empty when they agree).
 */
export function compareOutcome(
  c: OracleCase,
  got: Outcome,
  init: (addr: number) => number,
): Mismatch[] {
  const e = c.expect, out: Mismatch[] = [];
  if (got.problem) out.push({ field: "run", expected: `vector ${e.vec}`, got: got.problem });
  if (got.vec !== e.vec) {
    out.push({ field: "vector", expected: String(e.vec), got: String(got.vec) });
  } else {
    if (VECTORS_WITH_ERROR.has(e.vec) && (got.err >>> 0) !== (e.err >>> 0)) {
      out.push({ field: "error code", expected: hex32(e.err, 4), got: hex32(got.err, 4) });
    }
    if (e.vec === 14 && (got.cr2 >>> 0) !== (e.cr2 >>> 0)) {
      out.push({ field: "cr2", expected: hex32(e.cr2), got: hex32(got.cr2) });
    }
  }
  if ((got.eip >>> 0) !== (e.eip >>> 0)) {
    out.push({ field: "eip", expected: hex32(e.eip), got: hex32(got.eip) });
  }
  for (let r = 0; r < 8; r++) {
    const m = c.regMask ? c.regMask[r] : -1;
    if (((got.regs[r] ^ e.regs[r]) & m) !== 0) {
      out.push({
        field: REG_NAMES[r] + (m !== -1 && m !== 0xffffffff ? ` (mask ${hex32(m)})` : ""),
        expected: hex32(e.regs[r]),
        got: hex32(got.regs[r]),
      });
    }
  }
  const fm = c.flagsMask;
  if (((got.eflags ^ e.eflags) & fm) !== 0) {
    const d = (got.eflags ^ e.eflags) & fm;
    out.push({
      field: `eflags [${flagNames(d)}]`,
      expected: `${hex32(e.eflags & fm)} (${flagNames(e.eflags, fm)})`,
      got: `${hex32(got.eflags & fm)} (${flagNames(got.eflags, fm)})`,
    });
  }
  // Memory: the union of changed addresses, compared under the byte masks.
  const exp = new Map<number, number>();
  for (const [a, h] of e.mem) {
    const b = fromHex(h);
    for (let i = 0; i < b.length; i++) exp.set(a + i, b[i]);
  }
  const mm = new Map<number, number>();
  for (const [a, h] of c.memMask ?? []) {
    const b = fromHex(h);
    for (let i = 0; i < b.length; i++) mm.set(a + i, b[i]);
  }
  const addrs = new Set<number>([...exp.keys(), ...got.mem.keys()]);
  const bad: number[] = [];
  for (const a of addrs) {
    const m = mm.get(a) ?? 0xff;
    const ev = exp.get(a) ?? init(a), gv = got.mem.get(a) ?? init(a);
    if (((ev ^ gv) & m) !== 0) bad.push(a);
  }
  bad.sort((x, y) => x - y);
  for (let i = 0; i < bad.length;) {
    let j = i + 1;
    while (j < bad.length && bad[j] === bad[j - 1] + 1 && j - i < 16) j++;
    const a = bad[i];
    const ev: number[] = [], gv: number[] = [];
    for (let k = i; k < j; k++) {
      ev.push(exp.get(bad[k]) ?? init(bad[k]));
      gv.push(got.mem.get(bad[k]) ?? init(bad[k]));
    }
    out.push({ field: `mem ${hex32(a)}`, expected: toHex(ev), got: toHex(gv) });
    i = j;
  }
  if (e.fpu !== undefined) {
    const ef = fromHex(e.fpu), gf = got.fpu;
    if (!gf) out.push({ field: "fpu", expected: "image", got: "none" });
    else compareFpu(ef, gf, c.fpuSwMask ?? 0xffff, out);
  }
  return out;
}

/**
 * Compare two FNSAVE images: control word, status word (under `swMask`), tag
 * word, and the contents of every non-empty register. The instruction and
 * operand pointers (FIP, FCS, FOP, FDP, FDS) are not compared: AMD processors
 * save them only when an exception is pending, and nothing we run depends on them.
 */
export function compareFpu(ef: Uint8Array, gf: Uint8Array, swMask: number, out: Mismatch[]): void {
  const h16 = (v: number) => "0x" + v.toString(16).padStart(4, "0");
  const ecw = rd16(ef, FPU_CW), gcw = rd16(gf, FPU_CW);
  if (ecw !== gcw) out.push({ field: "fpu cw", expected: h16(ecw), got: h16(gcw) });
  const esw = rd16(ef, FPU_SW), gsw = rd16(gf, FPU_SW);
  if (((esw ^ gsw) & swMask) !== 0) {
    out.push({
      field: `fpu sw (mask ${h16(swMask)})`,
      expected: h16(esw & swMask),
      got: h16(gsw & swMask),
    });
  }
  const etag = rd16(ef, FPU_TAG), gtag = rd16(gf, FPU_TAG);
  if (etag !== gtag) out.push({ field: "fpu tag", expected: h16(etag), got: h16(gtag) });
  for (let i = 0; i < 8; i++) {
    if (stTag(ef, i) === 3) continue;
    const off = FPU_ST0 + 10 * i;
    let same = true;
    for (let k = 0; k < 10; k++) if (ef[off + k] !== gf[off + k]) same = false;
    if (!same) out.push({ field: `fpu st${i}`, expected: fmtF80(ef, off), got: fmtF80(gf, off) });
  }
}
