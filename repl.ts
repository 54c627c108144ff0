/**
 * lguest.ts's front end: the launcher's command line, then a run.
 *
 *     deno run -A repl.ts [options] <mem-MiB> <kernel> [options] [kernel args…]
 *
 * With `--bare --run` it runs the CPU alone on an ELF kernel: COM1 goes to
 * stdout, and the retired-instruction count and MIPS go to stderr when the
 * guest halts. The lguest host and the interactive REPL build on this; until
 * they exist, asking for them says so in one line.
 *
 * @module
 */

import { readFileSync } from "node:fs";
import process from "node:process";
import { BootError } from "./lib/boot/errors.ts";
import { parseLauncherArgs, USAGE } from "./lib/boot/cmdline.ts";
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
  if (!args.bare) {
    throw new BootError("the lguest host is not built yet: use --bare to run the CPU alone");
  }
  if (!args.run) {
    throw new BootError("the interactive REPL is not built yet: add --run to run to completion");
  }
  const kernel = readFile(args.kernel);
  const m = new BareMachine(args.memMiB, (b) => process.stdout.write(String.fromCharCode(b)));
  m.loadKernel(kernel, args.kernel);
  const r = m.run(args.maxInsns);
  const mips = r.seconds > 0 ? (r.instructions / r.seconds / 1e6).toFixed(1) : "-";
  process.stderr.write(
    `[${r.message}: ${r.instructions} instructions in ${r.seconds.toFixed(3)} s, ${mips} MIPS]\n`,
  );
  return r.status;
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
