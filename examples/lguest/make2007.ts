/**
 * Package examples/lguest/boot2007.bin (assembled flat at 1 MiB by
 * `deno task asm`) as a kernel in lguest's 2007 format: one gzip stream whose
 * header says OS 3 ("Unix") — the 2.6.23 launcher scanned the file for
 * 1F 8B 08 with that byte — and whose content holds the magic
 * "GenuineLguest", the entry point being the byte after it. Writes
 * examples/lguest/boot2007.img.
 *
 * The output is deterministic (no timestamp, fixed compression level), so
 * the committed image can be checked against a fresh build:
 *
 *     deno task asm && deno run -A examples/lguest/make2007.ts
 *
 * @module
 */

import { readFileSync, writeFileSync } from "node:fs";
import { gzipSync } from "../../lib/boot/gzip.ts";

/** The gzip image of a flat 2007-style kernel: deterministic, OS byte 3. */
export function make2007Image(flat: Uint8Array): Uint8Array {
  const gz = gzipSync(flat, { level: 9, mtime: 0 });
  gz[9] = 3; // OS: Unix, what the 2007 launcher looked for (fflate writes 3 already)
  return gz;
}

if (import.meta.main) {
  const dir = new URL(".", import.meta.url);
  const flat = new Uint8Array(readFileSync(new URL("boot2007.bin", dir)));
  const img = make2007Image(flat);
  writeFileSync(new URL("boot2007.img", dir), img);
  console.log(`examples/lguest/boot2007.img: ${flat.length} bytes -> ${img.length} gzipped`);
}
