/**
 * Rebuild every committed guest program from its nasm source.
 *
 * Guest programs (examples, test guests, benchmark loops) are committed both as
 * `.asm` sources and as assembled `.bin`/`.elf` files, so running the tests
 * needs no assembler. This task (`deno task asm`) re-assembles them with nasm
 * (Debian package `nasm`): `foo.asm` → `foo.elf` when the source says
 * `; output: elf`, else `foo.bin` (flat). Sources are assembled with `-f bin`;
 * ELF files are laid out by hand with `examples/include/elf32.inc`.
 *
 * @module
 */

import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

const ROOTS = ["examples", "tests/guests", "bench/guests"];

function* asmFiles(dir: string): Generator<string> {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const n of names) {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) yield* asmFiles(p);
    else if (n.endsWith(".asm")) yield p;
  }
}

let failed = 0;
for (const root of ROOTS) {
  for (const src of asmFiles(root)) {
    const text = readFileSync(src, "utf8");
    const ext = /^;\s*output:\s*elf/m.test(text) ? ".elf" : ".bin";
    const out = src.replace(/\.asm$/, ext);
    const r = spawnSync("nasm", ["-f", "bin", "-I", "examples/include/", "-o", out, src], {
      encoding: "utf8",
    });
    if (r.error) {
      console.error("nasm not found: install it with `apt-get install nasm`");
      Deno.exit(2);
    }
    if (r.status !== 0) {
      failed++;
      console.error(`${src}: ${r.stderr.trim()}`);
    } else console.log(`${src} -> ${out}`);
  }
}
if (failed) Deno.exit(1);
