/**
 * Symbol files the debugger can load besides the kernel's own ELF symbol
 * table: another ELF's symbol table (a vmlinux beside a bzImage), or a
 * `System.map` (`c1000000 T startup_32`, one symbol a line, as the kernel
 * build and `nm` write it). `deno task asm` writes one beside each example
 * ELF, whose hand-made headers carry no symbol table. Parsing only: the
 * caller reads the file.
 *
 * @module
 */

import { elfSymbols, isElf } from "../boot/elf.ts";
import { BootError } from "../boot/errors.ts";
import { DebugError } from "./expr.ts";

/** The most bytes of a symbol file read (a distribution kernel's System.map is ~5 MiB). */
export const SYMBOL_FILE_MAX = 64 << 20;

/** Symbol types of System.map lines that name no address in the image (undefined, weak undefined). */
const NO_ADDRESS = new Set(["U", "u", "w", "v"]);

/**
 * Parse a System.map (or `nm` output): `ADDRESS TYPE NAME` lines, address in
 * hex. Lines that are not of that shape are skipped; a text with none at all
 * is refused.
 */
export function parseSystemMap(text: string, name = "System.map"): Map<string, number> {
  const syms = new Map<string, number>();
  let seen = 0;
  for (const line of text.split("\n")) {
    const m = /^([0-9a-fA-F]{1,16})\s+(\S)\s+(\S+)/.exec(line);
    if (!m) continue;
    seen++;
    if (NO_ADDRESS.has(m[2])) continue;
    const v = parseInt(m[1].slice(-8), 16);
    if (!syms.has(m[3])) syms.set(m[3], v >>> 0);
  }
  if (seen === 0) {
    throw new DebugError(
      `${name}: neither an ELF file nor a System.map (no 'ADDRESS TYPE NAME' lines)`,
    );
  }
  return syms;
}

/** Symbols from a file's bytes: an ELF's symbol tables, or a System.map. */
export function readSymbolFile(bytes: Uint8Array, name: string): {
  symbols: Map<string, number>;
  kind: "ELF" | "System.map";
} {
  if (bytes.length > SYMBOL_FILE_MAX) {
    throw new DebugError(`${name}: larger than ${SYMBOL_FILE_MAX >> 20} MiB`);
  }
  if (isElf(bytes)) {
    try {
      const symbols = elfSymbols(bytes, name);
      if (symbols.size === 0) throw new DebugError(`${name}: the ELF file has no symbol table`);
      return { symbols, kind: "ELF" };
    } catch (e) {
      if (e instanceof BootError) throw new DebugError(e.message);
      throw e;
    }
  }
  const text = new TextDecoder("utf-8", { fatal: false }).decode(bytes);
  return { symbols: parseSystemMap(text, name), kind: "System.map" };
}
