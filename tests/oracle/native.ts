/**
 * Drives the native runner (build/runner): writes cases in its line protocol,
 * reads back one result line per case and parses it into {@link Expected}.
 * Deno-only (the generator is the only user; tests never need the compiler).
 *
 * @module
 */

import { type Expected, fromHex, PATTERN_SEED } from "./fixture.ts";
import { RUNNER_PATH } from "./build.ts";

/** The input of one native run. */
export interface NativeInput {
  /** Case id (echoed back). */
  id: number;
  /** Code hex. */
  code: string;
  /** EAX..EDI. */
  regs: number[];
  /** EFLAGS. */
  eflags: number;
  /** Memory overrides. */
  mem?: [number, string][];
  /** FNSAVE image hex. */
  fpu?: string;
}

/** Render one case as a runner input line. */
export function caseLine(c: NativeInput): string {
  const regs = c.regs.map((v) => (v >>> 0).toString(16)).join(" ");
  const mem = c.mem && c.mem.length
    ? c.mem.map(([a, h]) => `${a.toString(16)}:${h}`).join(",")
    : "-";
  return `${c.id} ${regs} ${(c.eflags >>> 0).toString(16)} ${c.code} ${mem} ${c.fpu ?? "-"}`;
}

/** Parse one runner output line. Returns the id and the result (vec -1 = timeout). */
export function parseResult(line: string): { id: number; e: Expected } {
  const t = line.trim().split(" ");
  if (t.length !== 16) throw new Error(`bad runner output: ${line}`);
  const h = (s: string) => parseInt(s, 16) >>> 0;
  const mem: [number, string][] = t[14] === "-" ? [] : t[14].split(",").map((p) => {
    const [a, b] = p.split(":");
    return [h(a), b] as [number, string];
  });
  const e: Expected = {
    vec: parseInt(t[1], 10),
    err: h(t[2]),
    cr2: h(t[3]),
    eip: h(t[4]),
    regs: t.slice(5, 13).map(h),
    eflags: (h(t[13]) & ~0x10000) >>> 0,
    mem,
    fpu: t[15],
  };
  void fromHex;
  return { id: parseInt(t[0], 10), e };
}

/** Run cases natively (in one runner process) and return results by id. */
export async function runNative(
  cases: NativeInput[],
  patternSeed = PATTERN_SEED,
): Promise<Map<number, Expected>> {
  try {
    await Deno.stat(RUNNER_PATH);
  } catch {
    throw new Error(`${RUNNER_PATH} is missing: run \`deno task oracle:build\` first`);
  }
  const child = new Deno.Command(RUNNER_PATH, {
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const text = `P ${patternSeed.toString(16)}\n` + cases.map(caseLine).join("\n") + "\n";
  const writer = (async () => {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(text));
    await w.close();
  })();
  const out = await child.output();
  await writer;
  if (!out.success) throw new Error(`runner exited with ${out.code}`);
  const res = new Map<number, Expected>();
  for (const line of new TextDecoder().decode(out.stdout).split("\n")) {
    if (!line.trim()) continue;
    const { id, e } = parseResult(line);
    res.set(id, e);
  }
  return res;
}
