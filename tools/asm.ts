/**
 * Rebuild every committed guest program from its nasm source.
 *
 * Guest programs (examples, test guests, benchmark loops) are committed both as
 * `.asm` sources and as assembled `.bin`/`.elf` files, so running the tests
 * needs no assembler. This task (`deno task asm`) re-assembles them with nasm
 * (Debian package `nasm`): `foo.asm` → `foo.elf` when the source says
 * `; output: elf`, else `foo.bin` (flat). Sources are assembled with `-f bin`;
 * ELF files are laid out by hand with `examples/include/elf32.inc`, which
 * gives them no symbol table, so each ELF also gets `foo.map`, a System.map
 * made from nasm's symbol map: the REPL loads it beside the kernel.
 *
 * @module
 */

import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
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

/**
 * nasm's `[map symbols]` listing as a System.map: the labels of the program's
 * section (`Real Virtual Name` rows), by address; `T` for a label, `t` for a
 * local one (`.loop`). The ELF header labels and assemble-time constants (the
 * "No Section" part) are left out.
 */
function systemMap(nasm: string): string {
  const rows: [number, string][] = [];
  let inSection = false;
  for (const line of nasm.split("\n")) {
    if (/^---- Section /.test(line)) inSection = true;
    else if (/^---- /.test(line)) inSection = false;
    const m = /^\s*([0-9A-F]+)\s+([0-9A-F]+)\s+(\S+)$/.exec(line);
    if (!inSection || !m || m[3] === "ehdr" || m[3] === "phdr") continue;
    rows.push([parseInt(m[2], 16), m[3]]);
  }
  rows.sort((a, b) => a[0] - b[0]);
  return rows.map(([a, n]) =>
    `${a.toString(16).padStart(8, "0")} ${n.includes(".") ? "t" : "T"} ${n}\n`
  ).join("");
}

let failed = 0;
for (const root of ROOTS) {
  for (const src of asmFiles(root)) {
    const text = readFileSync(src, "utf8");
    const ext = /^;\s*output:\s*elf/m.test(text) ? ".elf" : ".bin";
    const out = src.replace(/\.asm$/, ext);
    const nasmMap = src.replace(/\.asm$/, ".nasm-map");
    const mapArgs = ext === ".elf" ? ["--before", `[map symbols ${nasmMap}]`] : [];
    const r = spawnSync(
      "nasm",
      ["-f", "bin", "-I", "examples/include/", ...mapArgs, "-o", out, src],
      { encoding: "utf8" },
    );
    if (r.error) {
      console.error("nasm not found: install it with `apt-get install nasm`");
      Deno.exit(2);
    }
    if (r.status !== 0) {
      failed++;
      console.error(`${src}: ${r.stderr.trim()}`);
    } else console.log(`${src} -> ${out}`);
    if (ext === ".elf" && r.status === 0) {
      const map = src.replace(/\.asm$/, ".map");
      writeFileSync(map, systemMap(readFileSync(nasmMap, "utf8")));
      rmSync(nasmMap);
      console.log(`${src} -> ${map}`);
    }
  }
}
if (failed) Deno.exit(1);
