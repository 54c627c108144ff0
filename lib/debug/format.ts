/**
 * Small text helpers the debugger's views share: fixed-width hex, padding,
 * page-table entry flags spelled out, EFLAGS and control-register bits by
 * name, and segment descriptors decoded. Everything returns strings; nothing
 * here prints.
 *
 * @module
 */

import { EFLAGS_BITS } from "../x86/flags.ts";

/** `0x` and `digits` lower-case hex digits of `v` (taken as unsigned 32-bit). */
export function hex(v: number, digits = 8): string {
  return "0x" + (v >>> 0).toString(16).padStart(digits, "0");
}

/** `0x` and the shortest hex of `v` (unsigned 32-bit). */
export function hexs(v: number): string {
  return "0x" + (v >>> 0).toString(16);
}

/** Pad `s` on the right to `n` columns. */
export function pad(s: string, n: number): string {
  return s.length >= n ? s : s + " ".repeat(n - s.length);
}

/** Pad `s` on the left to `n` columns. */
export function lpad(s: string, n: number): string {
  return s.length >= n ? s : " ".repeat(n - s.length) + s;
}

/** Render rows as aligned columns (two spaces between columns, no trailing blanks). */
export function columns(rows: string[][], gap = 2): string[] {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) =>
    r.map((c, i) => (i === r.length - 1 ? c : pad(c, widths[i] + gap))).join("").trimEnd()
  );
}

/**
 * Like {@link columns}, but rows in different groups (`group(row)`) are
 * aligned separately, keeping their order: a directory entry's columns do
 * not widen to fit the runs listed under it.
 */
export function columnGroups(rows: string[][], group: (r: string[]) => number, gap = 2): string[] {
  const laid = new Map<number, string[]>();
  for (const g of new Set(rows.map(group))) {
    laid.set(
      g,
      columns(rows.filter((r) => group(r) === g), gap),
    );
  }
  const next = new Map<number, number>();
  return rows.map((r) => {
    const g = group(r), i = next.get(g) ?? 0;
    next.set(g, i + 1);
    return laid.get(g)![i];
  });
}

/** Page-table entry flag bits, in the order they are printed. */
const PTE_BITS: [number, string][] = [
  [0x001, "P"],
  [0x002, "RW"],
  [0x004, "US"],
  [0x008, "PWT"],
  [0x010, "PCD"],
  [0x020, "A"],
  [0x040, "D"],
  [0x080, "PS"],
  [0x100, "G"],
];

/**
 * A page-table entry's flags spelled out: `P RW US PWT PCD A D PS G`, the ones
 * set, plus `avl=N` for the three software bits. In a PTE bit 7 is PAT, in a
 * directory entry it is PS (a large page): `level` says which.
 */
export function pteFlags(e: number, level: "pde" | "pte" = "pte"): string {
  const out: string[] = [];
  for (const [bit, name] of PTE_BITS) {
    if ((e & bit) !== 0) out.push(bit === 0x80 && level === "pte" ? "PAT" : name);
  }
  const avl = (e >>> 9) & 7;
  if (avl !== 0) out.push(`avl=${avl}`);
  return out.join(" ");
}

/** EFLAGS decoded: `[ IF ZF ] IOPL=0`. */
export function eflagsText(f: number): string {
  const set = EFLAGS_BITS.filter(([b]) => (f & b) !== 0).map(([, n]) => n);
  return `[ ${set.join(" ")}${set.length ? " " : ""}] IOPL=${(f >> 12) & 3}`;
}

/** EFLAGS flag names a user may `set` one at a time (lower case), with their bits. */
export const EFLAGS_NAMES: Map<string, number> = new Map(
  EFLAGS_BITS.map(([b, n]) => [n.toLowerCase(), b]),
);

const CR0_BITS: [number, string][] = [
  [0x1, "PE"],
  [0x2, "MP"],
  [0x4, "EM"],
  [0x8, "TS"],
  [0x10, "ET"],
  [0x20, "NE"],
  [0x10000, "WP"],
  [0x40000, "AM"],
  [0x20000000, "NW"],
  [0x40000000, "CD"],
  [0x80000000, "PG"],
];
const CR4_BITS: [number, string][] = [
  [0x1, "VME"],
  [0x2, "PVI"],
  [0x4, "TSD"],
  [0x8, "DE"],
  [0x10, "PSE"],
  [0x20, "PAE"],
  [0x40, "MCE"],
  [0x80, "PGE"],
  [0x100, "PCE"],
  [0x200, "OSFXSR"],
  [0x400, "OSXMMEXCPT"],
];

/** CR0 bits by name. */
export function cr0Text(v: number): string {
  return CR0_BITS.filter(([b]) => (v & b) !== 0).map(([, n]) => n).join(" ");
}

/** CR4 bits by name. */
export function cr4Text(v: number): string {
  return CR4_BITS.filter(([b]) => (v & b) !== 0).map(([, n]) => n).join(" ");
}

/** A segment descriptor decoded from its two dwords. */
export interface Descriptor {
  /** Base address. */
  base: number;
  /** Limit in bytes, inclusive (granularity applied). */
  limit: number;
  /** Type field (4 bits). */
  type: number;
  /** S bit: 1 code/data, 0 system. */
  s: number;
  /** Descriptor privilege level. */
  dpl: number;
  /** Present. */
  present: boolean;
  /** D/B bit (32-bit). */
  db: number;
  /** Granularity (4 KiB). */
  g: number;
}

/** Decode a descriptor's low and high dwords. */
export function decodeDescriptor(lo: number, hi: number): Descriptor {
  const base = ((lo >>> 16) | ((hi & 0xff) << 16) | (hi & 0xff000000)) >>> 0;
  let limit = (lo & 0xffff) | (hi & 0xf0000);
  const g = (hi >>> 23) & 1;
  if (g) limit = ((limit << 12) | 0xfff) >>> 0;
  return {
    base,
    limit: limit >>> 0,
    type: (hi >>> 8) & 0xf,
    s: (hi >>> 12) & 1,
    dpl: (hi >>> 13) & 3,
    present: (hi & 0x8000) !== 0,
    db: (hi >>> 22) & 1,
    g,
  };
}

const SYSTEM_TYPES: Record<number, string> = {
  0x1: "TSS16 avail",
  0x2: "LDT",
  0x3: "TSS16 busy",
  0x4: "call gate16",
  0x5: "task gate",
  0x6: "intr gate16",
  0x7: "trap gate16",
  0x9: "TSS32 avail",
  0xb: "TSS32 busy",
  0xc: "call gate32",
  0xe: "intr gate32",
  0xf: "trap gate32",
};

/** A descriptor's type in words: `code ER A`, `data RW`, `TSS32 busy`… */
export function descriptorType(type: number, s: number): string {
  if (s === 0) return SYSTEM_TYPES[type] ?? `system type ${type}`;
  const a = (type & 1) !== 0 ? " A" : "";
  if ((type & 8) !== 0) {
    return `code ${(type & 2) !== 0 ? "ER" : "E"}${(type & 4) !== 0 ? " C" : ""}${a}`;
  }
  return `data ${(type & 2) !== 0 ? "RW" : "R"}${(type & 4) !== 0 ? " ED" : ""}${a}`;
}

/** One line describing a descriptor: base, limit, type, DPL, size. */
export function descriptorText(lo: number, hi: number): string {
  if (lo === 0 && hi === 0) return "null";
  const d = decodeDescriptor(lo, hi);
  const size = d.s ? (d.db ? " 32-bit" : " 16-bit") : "";
  return `base ${hex(d.base)} limit ${hex(d.limit)} ${descriptorType(d.type, d.s)} DPL${d.dpl}${
    d.present ? "" : " not-present"
  }${size}`;
}

/** Printable ASCII for a byte (others as '.'). */
export function asciiByte(b: number): string {
  return b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : ".";
}
