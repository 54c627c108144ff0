#!/usr/bin/env node
/**
 * `lguest-ts`, the installed package's command: repl.ts (the launcher's
 * command line and the REPL) for `npx lguest-ts 16 guest.elf` and `bunx
 * lguest-ts 16 guest.elf`.
 *
 * repl.ts is TypeScript, which Deno and Bun run as it is. Started by one of
 * them (`bunx --bun`, `deno run -A`), this file imports it and runs it in the
 * same process. Started by Node (npx, npm scripts, bunx when Node is
 * installed) it hands the command line to Deno, or else Bun (Bun first when
 * bunx started it): the first found in a node_modules/.bin from this package
 * up (`npm install deno` puts one there), then on PATH. Node ignores Ctrl-C
 * while the child runs: the REPL uses it to stop a running guest.
 *
 * Deno runs repl.ts with `--no-config`: it will not strip types from a file
 * under node_modules when it resolves packages from node_modules, so it takes
 * fflate and iced-x86 from its own npm cache instead (fetched from the npm
 * registry on first use); the user's own deno.json has no say either.
 *
 * @module
 */

import { spawn } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { constants as os } from "node:os";
import { delimiter, dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

const repl = fileURLToPath(new URL("../repl.ts", import.meta.url));
const argv = process.argv.slice(2);

/** An executable named `name` in a node_modules/.bin from `dir` up, then on PATH. */
function find(name, dir) {
  const places = [];
  for (let d = dir;; d = dirname(d)) {
    places.push(join(d, "node_modules", ".bin"));
    if (dirname(d) === d) break;
  }
  places.push(...(process.env.PATH ?? "").split(delimiter).filter((p) => p));
  for (const p of places) {
    const f = join(p, name);
    try {
      accessSync(f, constants.X_OK);
      return f;
    } catch { /* not here */ }
  }
  return null;
}

if ("Deno" in globalThis || "Bun" in globalThis) {
  const { cli } = await import("../repl.ts");
  await cli(argv);
} else {
  const here = dirname(repl);
  const bunFirst = (process.env.npm_config_user_agent ?? "").startsWith("bun");
  const bun0 = bunFirst ? find("bun", here) : null;
  const deno = bun0 ? null : find("deno", here);
  const bun = bun0 ?? (deno ? null : find("bun", here));
  if (!deno && !bun) {
    process.stderr.write(
      "lguest-ts: needs Deno or Bun to run (it is TypeScript): install one, e.g. " +
        "`npm install deno` beside it, or see https://deno.com or https://bun.sh\n",
    );
    process.exit(2);
  }
  const args = deno ? ["run", "-A", "--no-config", repl, ...argv] : [repl, ...argv];
  const child = spawn(deno ?? bun, args, { stdio: "inherit" });
  process.on("SIGINT", () => {});
  child.on("error", (e) => {
    process.stderr.write(`lguest-ts: cannot start ${deno ?? bun}: ${e.message}\n`);
    process.exit(2);
  });
  child.on("exit", (code, signal) => {
    process.exit(signal ? 128 + (os.signals[signal] ?? 0) : code ?? 1);
  });
}
