/**
 * lguest.ts's front end: the launcher's command line, then a run.
 *
 *     deno run -A repl.ts [options] <mem-MiB> <kernel> [options] [kernel args…]
 *
 * With `--run` it boots the kernel under the lguest host and runs it to its
 * end: the guest's console goes to stdout; how it ended, the retired-instruction
 * count and MIPS go to stderr; the exit status is 0 for a power-off and 1 for
 * anything else. With `--bare --run` it runs the CPU alone (COM1 to stdout).
 * The interactive REPL builds on this; until it exists, asking for it says so.
 *
 * @module
 */

import { readFileSync } from "node:fs";
import process from "node:process";
import { BootError } from "./lib/boot/errors.ts";
import { type LauncherArgs, parseLauncherArgs, USAGE } from "./lib/boot/cmdline.ts";
import { Launcher } from "./lib/boot/launcher.ts";
import { BareMachine } from "./lib/boot/bare.ts";

function fail(message: string): never {
  process.stderr.write(`repl.ts: ${message}\n`);
  process.exit(2);
}

function readFile(path: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(path));
  } catch (e) {
    const code = (e as { code?: string }).code;
    throw new BootError(`${path}: ${code === "ENOENT" ? "no such file" : "cannot read"}`);
  }
}

/** Entry point: parse, load, run. Returns the process exit status. */
export function main(argv: string[]): number {
  const args = parseLauncherArgs(argv);
  if (args.help) {
    process.stdout.write(USAGE + "\n");
    return 0;
  }
  if (!args.run) {
    throw new BootError("the interactive REPL is not built yet: add --run to run to completion");
  }
  const kernel = readFile(args.kernel);
  if (!args.bare) return runLguest(args, kernel);
  const m = new BareMachine(args.memMiB, (b) => process.stdout.write(String.fromCharCode(b)));
  m.loadKernel(kernel, args.kernel, args.kernelArgs.join(" "));
  const r = m.run(args.maxInsns);
  const mips = r.seconds > 0 ? (r.instructions / r.seconds / 1e6).toFixed(1) : "-";
  process.stderr.write(
    `[${r.message}: ${r.instructions} instructions in ${r.seconds.toFixed(3)} s, ${mips} MIPS]\n`,
  );
  return r.status;
}

/** Boot `kernel` under the lguest host and run it to its end; returns the exit status. */
function runLguest(args: LauncherArgs, kernel: Uint8Array): number {
  const out = (b: number) => process.stdout.write(String.fromCharCode(b));
  const l = new Launcher({
    memMiB: args.memMiB,
    kernel,
    kernelName: args.kernel,
    initrd: args.initrd ? readFile(args.initrd) : undefined,
    initrdName: args.initrd,
    cmdline: args.kernelArgs.join(" "),
    pagetables: args.pagetables,
    console: out,
  });
  const g = l.guest;
  const t0 = performance.now();
  let stop;
  for (;;) {
    const slice = args.maxInsns > 0 ? Math.min(1 << 24, args.maxInsns - g.cpu.icount) : 1 << 24;
    if (slice <= 0) {
      stop = "limit";
      break;
    }
    stop = g.run(slice);
    if (stop !== "budget") break;
  }
  const secs = (performance.now() - t0) / 1000;
  const n = g.cpu.icount;
  const why = stop === "dead"
    ? g.deathReason
    : stop === "halted"
    ? "halted with no timer armed and no interrupt pending"
    : stop === "limit"
    ? `stopped after ${n} instructions (--max-insns)`
    : `stopped: ${stop}`;
  const mips = secs > 0 ? (n / secs / 1e6).toFixed(1) : "-";
  process.stderr.write(
    `[lguest: ${why}; ${n} instructions in ${secs.toFixed(3)} s, ${mips} MIPS]\n`,
  );
  return g.poweredOff ? 0 : 1;
}

if (import.meta.main) {
  let status: number;
  try {
    status = main(process.argv.slice(2));
  } catch (e) {
    if (e instanceof BootError) fail(e.message);
    throw e;
  }
  process.exit(status);
}
