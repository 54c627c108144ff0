/**
 * Page tables as a debugger sees them: walked, dumped and compared, without
 * touching anything. The CPU's own walk (lib/x86/cpu.ts) sets accessed and
 * dirty bits, fills the TLB and raises #PF; these walks only read memory, so
 * looking never changes what the guest will see.
 *
 * Three views of one address meet here, which is the point of lguest's
 * design: the *guest's* tables (what the guest kernel wrote, read from guest
 * memory), the host's *shadow* tables (what the CPU really walks, built lazily
 * by `demandPage`), and the CPU's *TLB* (what the last walks cached). A dump
 * compresses runs — consecutive entries mapping consecutive frames with equal
 * flags — into one line, so a 4 MiB kernel mapping is one line, not 1024.
 *
 * @module
 */

import { columnGroups, columns, hex, pad, pteFlags } from "./format.ts";

/** Reads a physical dword; null when the address is outside memory. */
export type Read32 = (pa: number) => number | null;

/** Paging mode of a set of tables. */
export interface PagingMode {
  /** PAE (three levels, 8-byte entries). */
  pae: boolean;
  /** CR4.PSE: directory entries with PS set map 4 MiB pages (non-PAE). */
  pse: boolean;
}

/** One level of a walk: which entry, where it lives, what it holds. */
export interface WalkStep {
  /** "PDPTE", "PDE" or "PTE". */
  level: "PDPTE" | "PDE" | "PTE";
  /** Index of the entry in its table. */
  index: number;
  /** Physical address of the entry. */
  addr: number;
  /** The entry (low dword for PAE). */
  value: number;
}

/** The result of walking tables for one linear address. */
export interface Walk {
  /** The entries visited, top level first. */
  steps: WalkStep[];
  /** Physical address, or null when not mapped. */
  pa: number | null;
  /** Size of the page that maps it (4096, 2 MiB or 4 MiB), when mapped. */
  pageSize: number;
  /** Why it is not mapped, when it is not. */
  why: string;
  /** Writable through every level. */
  writable: boolean;
  /** User-accessible through every level. */
  user: boolean;
}

/**
 * Walk tables rooted at physical `root` for linear `lin`, reading with
 * `read32`. No side effects: accessed/dirty bits are not set.
 */
export function walk(read32: Read32, root: number, lin: number, mode: PagingMode): Walk {
  lin >>>= 0;
  const steps: WalkStep[] = [];
  const w: Walk = { steps, pa: null, pageSize: 4096, why: "", writable: true, user: true };
  const entry = (level: WalkStep["level"], index: number, addr: number): number | null => {
    const v = read32(addr);
    if (v === null) {
      w.why = `${level} address ${hex(addr)} is outside physical memory`;
      return null;
    }
    steps.push({ level, index, addr, value: v });
    if ((v & 1) === 0) {
      w.why = `${level} ${index.toString(16)} not present`;
      return null;
    }
    if (level !== "PDPTE") {
      w.writable &&= (v & 2) !== 0;
      w.user &&= (v & 4) !== 0;
    }
    return v;
  };
  if (mode.pae) {
    const i3 = lin >>> 30, i2 = (lin >>> 21) & 0x1ff, i1 = (lin >>> 12) & 0x1ff;
    const pdpte = entry("PDPTE", i3, ((root & -32) + i3 * 8) >>> 0);
    if (pdpte === null) return w;
    const pde = entry("PDE", i2, ((pdpte & -4096) + i2 * 8) >>> 0);
    if (pde === null) return w;
    if ((pde & 0x80) !== 0) {
      w.pageSize = 2 << 20;
      w.pa = ((pde & 0xffe00000) | (lin & 0x1fffff)) >>> 0;
      return w;
    }
    const pte = entry("PTE", i1, ((pde & -4096) + i1 * 8) >>> 0);
    if (pte === null) return w;
    w.pa = ((pte & -4096) | (lin & 0xfff)) >>> 0;
    return w;
  }
  const i2 = lin >>> 22, i1 = (lin >>> 12) & 0x3ff;
  const pde = entry("PDE", i2, ((root & -4096) + i2 * 4) >>> 0);
  if (pde === null) return w;
  if ((pde & 0x80) !== 0 && mode.pse) {
    w.pageSize = 4 << 20;
    w.pa = ((pde & 0xffc00000) | (lin & 0x3fffff)) >>> 0;
    return w;
  }
  const pte = entry("PTE", i1, ((pde & -4096) + i1 * 4) >>> 0);
  if (pte === null) return w;
  w.pa = ((pte & -4096) | (lin & 0xfff)) >>> 0;
  return w;
}

/** One compressed run of mappings. */
export interface MapRun {
  /** First linear address. */
  lin: number;
  /** First physical address. */
  pa: number;
  /** Number of entries in the run. */
  count: number;
  /** Bytes each entry maps. */
  pageSize: number;
  /** Flag bits (low 12 bits of the entries). */
  flags: number;
}

/**
 * Compress entries into runs: consecutive present entries whose frames are
 * consecutive and whose flag bits are equal. `entries[i]` maps linear
 * `lin0 + i * pageSize`; `frameMask` extracts the frame.
 */
export function compressRuns(
  entries: ArrayLike<number>,
  lin0: number,
  pageSize: number,
  frameMask: number,
): MapRun[] {
  const runs: MapRun[] = [];
  let cur: MapRun | null = null;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    if ((e & 1) === 0) {
      cur = null;
      continue;
    }
    const pa = (e & frameMask) >>> 0, flags = e & 0xfff;
    if (cur && cur.flags === flags && cur.pa + cur.count * pageSize === pa) {
      cur.count++;
      continue;
    }
    cur = { lin: (lin0 + i * pageSize) >>> 0, pa, count: 1, pageSize, flags };
    runs.push(cur);
  }
  return runs;
}

/** `0xc0000000-0xc03fffff -> 0x00000000-0x003fffff` for a run. */
export function runRange(r: MapRun): [string, string] {
  const bytes = r.count * r.pageSize;
  return [
    `${hex(r.lin)}-${hex(r.lin + bytes - 1)}`,
    `${hex(r.pa)}-${hex(r.pa + bytes - 1)}`,
  ];
}

/** Options for {@link dumpTables}. */
export interface DumpOptions {
  /** Title line. */
  title: string;
  /** Paging mode. */
  mode: PagingMode;
  /** Only directory entries mapping linear addresses in [from, to]. */
  from?: number;
  /** See `from`. */
  to?: number;
  /** Annotate a physical address (e.g. "guest RAM", "host page"). */
  where?: (pa: number) => string;
}

function readTable(read32: Read32, base: number, n: number, stride: number): Int32Array | null {
  const t = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const v = read32(base + i * stride);
    if (v === null) return null;
    t[i] = v;
  }
  return t;
}

/**
 * Dump the tables rooted at `root`: each present directory entry (address,
 * value, flags, what it points to), then its page table as compressed runs.
 */
export function dumpTables(read32: Read32, root: number, o: DumpOptions): string[] {
  if (o.mode.pae) return dumpPae(read32, root, o);
  const out = [o.title];
  const dir = readTable(read32, root & -4096, 1024, 4);
  if (dir === null) return [...out, `  page directory ${hex(root)} is outside physical memory`];
  const from = (o.from ?? 0) >>> 0, to = (o.to ?? 0xffffffff) >>> 0;
  let present = 0;
  for (let i = 0; i < 1024; i++) if ((dir[i] & 1) !== 0) present++;
  out[0] += `: ${present} of 1024 entries present`;
  const rows: string[][] = [];
  const seenTables = new Map<number, number>();
  for (let i = 0; i < 1024; i++) {
    const e = dir[i];
    const lin = (i << 22) >>> 0;
    if (lin + 0x3fffff < from || lin > to) continue;
    if (e === 0) continue;
    const at = hex((root & -4096) + i * 4);
    if ((e & 1) === 0) {
      rows.push([`PDE ${idx(i)}`, hex(lin), `[${at}]`, hex(e), "not present", ""]);
      continue;
    }
    if ((e & 0x80) !== 0 && o.mode.pse) {
      // Group consecutive 4 MiB pages with consecutive frames and equal flags.
      let j = i + 1;
      while (
        j < 1024 && (dir[j] & 0x81) === 0x81 && (dir[j] & 0xfff) === (e & 0xfff) &&
        (((dir[j] & 0xffc00000) >>> 0) === ((e & 0xffc00000) >>> 0) + (j - i) * (4 << 20)) &&
        ((j << 22) >>> 0) <= to
      ) j++;
      const n = j - i;
      const pa = (e & 0xffc00000) >>> 0;
      rows.push([
        n === 1 ? `PDE ${idx(i)}` : `PDE ${idx(i)}-${idx(j - 1)}`,
        hex(lin),
        `[${at}]`,
        hex(e),
        pteFlags(e, "pde"),
        n === 1 ? "4 MiB page" : `${n} x 4 MiB pages`,
      ]);
      // The mapping itself, as the runs under a page table are shown.
      rows.push([
        "",
        `${linSpan(lin, n * (4 << 20))} -> ${hex(pa)}-${hex(pa + n * (4 << 20) - 1)}`,
        "",
        "",
        pteFlags(e, "pde"),
        n === 1 ? "4 MiB" : `${n} x 4 MiB`,
      ]);
      i = j - 1;
      continue;
    }
    const pt = (e & -4096) >>> 0;
    const table = readTable(read32, pt, 1024, 4);
    const same = seenTables.get(pt);
    seenTables.set(pt, same ?? i);
    if (table === null) {
      rows.push([
        `PDE ${idx(i)}`,
        hex(lin),
        `[${at}]`,
        hex(e),
        pteFlags(e, "pde"),
        `page table ${hex(pt)} outside memory`,
      ]);
      continue;
    }
    let n = 0;
    for (let k = 0; k < 1024; k++) if ((table[k] & 1) !== 0) n++;
    const where = o.where ? ` (${o.where(pt)})` : "";
    rows.push([
      `PDE ${idx(i)}`,
      hex(lin),
      `[${at}]`,
      hex(e),
      pteFlags(e, "pde"),
      `PT ${hex(pt)}${where}: ${plural(n, "pte")}` +
      (same !== undefined ? ` (as PDE ${idx(same)})` : ""),
    ]);
    for (const r of compressRuns(table, lin, 4096, -4096)) {
      if (r.lin + r.count * 4096 - 1 < from || r.lin > to) continue;
      const [l, p] = runRange(r);
      const w = o.where ? o.where(r.pa) : "";
      const note = w && w !== "guest RAM" ? `, ${w}` : "";
      rows.push(["", `${l} -> ${p}`, "", "", pteFlags(r.flags), plural(r.count, "pte") + note]);
    }
    let np = 0;
    for (let k = 0; k < 1024; k++) if (table[k] !== 0 && (table[k] & 1) === 0) np++;
    if (np > 0) {
      rows.push([
        "",
        "",
        "",
        "",
        "",
        `${plural(np, "non-zero entry", "non-zero entries")} not present`,
      ]);
    }
  }
  if (rows.length === 0) out.push("  (nothing mapped)");
  for (const line of columnGroups(rows, (r) => (r[0] === "" ? 1 : 0))) out.push("  " + line);
  return out;
}

function dumpPae(read32: Read32, root: number, o: DumpOptions): string[] {
  const out = [o.title + " (PAE)"];
  const rows: string[][] = [];
  for (let i3 = 0; i3 < 4; i3++) {
    const at = ((root & -32) + i3 * 8) >>> 0;
    const e3 = read32(at);
    if (e3 === null) return [...out, `  PDPT ${hex(root)} is outside physical memory`];
    if ((e3 & 1) === 0) continue;
    rows.push([
      `PDPTE ${i3}`,
      linSpan(i3 * 0x40000000, 0x40000000),
      `[${hex(at)}]`,
      hex(e3),
      pteFlags(e3, "pde"),
      "",
    ]);
    const dir = readTable(read32, e3 & -4096, 512, 8);
    if (dir === null) continue;
    for (let i2 = 0; i2 < 512; i2++) {
      const e = dir[i2];
      if ((e & 1) === 0) continue;
      const lin = (i3 * 0x40000000 + i2 * 0x200000) >>> 0;
      const dat = hex(((e3 & -4096) + i2 * 8) >>> 0);
      if ((e & 0x80) !== 0) {
        const pa = (e & 0xffe00000) >>> 0;
        rows.push([
          ` PDE ${idx(i2)}`,
          hex(lin),
          `[${dat}]`,
          hex(e),
          pteFlags(e, "pde"),
          "2 MiB page",
        ]);
        rows.push([
          "",
          `${linSpan(lin, 0x200000)} -> ${hex(pa)}-${hex(pa + 0x1fffff)}`,
          "",
          "",
          pteFlags(e, "pde"),
          "2 MiB",
        ]);
        continue;
      }
      const table = readTable(read32, e & -4096, 512, 8);
      rows.push([
        ` PDE ${idx(i2)}`,
        hex(lin),
        `[${dat}]`,
        hex(e),
        pteFlags(e, "pde"),
        `PT ${hex(e & -4096)}`,
      ]);
      if (table === null) continue;
      for (const r of compressRuns(table, lin, 4096, -4096)) {
        const [l, p] = runRange(r);
        rows.push(["", `${l} -> ${p}`, "", "", pteFlags(r.flags), plural(r.count, "pte")]);
      }
    }
  }
  for (const line of columnGroups(rows, (r) => (r[0] === "" ? 1 : 0))) out.push("  " + line);
  return out;
}

function idx(i: number): string {
  return i.toString(16).padStart(3, "0");
}

function linSpan(lin: number, bytes: number): string {
  return `${hex(lin)}-${hex(lin + bytes - 1)}`;
}

/** "1 pte" / "3 ptes". */
export function plural(n: number, one: string, many = one + "s"): string {
  return `${n} ${n === 1 ? one : many}`;
}

/**
 * Visit every present mapping of the tables at `root`: `visit(lin, pa, size)`
 * per 4 KiB page, or per large page (2 or 4 MiB). Entries that cannot be read
 * are skipped.
 */
export function forEachMapping(
  read32: Read32,
  root: number,
  mode: PagingMode,
  visit: (lin: number, pa: number, size: number) => void,
): void {
  const r = (pa: number) => read32(pa) ?? 0;
  if (mode.pae) {
    for (let i3 = 0; i3 < 4; i3++) {
      const e3 = r(((root & -32) + i3 * 8) >>> 0);
      if ((e3 & 1) === 0) continue;
      for (let i2 = 0; i2 < 512; i2++) {
        const e2 = r(((e3 & -4096) + i2 * 8) >>> 0);
        if ((e2 & 1) === 0) continue;
        const lin2 = (i3 * 0x40000000 + i2 * 0x200000) >>> 0;
        if ((e2 & 0x80) !== 0) {
          visit(lin2, (e2 & 0xffe00000) >>> 0, 0x200000);
          continue;
        }
        for (let i1 = 0; i1 < 512; i1++) {
          const e1 = r(((e2 & -4096) + i1 * 8) >>> 0);
          if ((e1 & 1) !== 0) visit((lin2 + i1 * 4096) >>> 0, (e1 & -4096) >>> 0, 4096);
        }
      }
    }
    return;
  }
  for (let i = 0; i < 1024; i++) {
    const pde = r(((root & -4096) + i * 4) >>> 0);
    if ((pde & 1) === 0) continue;
    if (mode.pse && (pde & 0x80) !== 0) {
      visit((i << 22) >>> 0, (pde & 0xffc00000) >>> 0, 0x400000);
      continue;
    }
    for (let k = 0; k < 1024; k++) {
      const pte = r(((pde & -4096) + k * 4) >>> 0);
      if ((pte & 1) !== 0) visit(((i << 22) | (k << 12)) >>> 0, (pte & -4096) >>> 0, 4096);
    }
  }
}

// ------------------------------------------------------------------ the TLB

/** TLB permission bits as the CPU stores them (low bits of an entry). */
export const TLB_SUP = 1, TLB_USER = 2;

/** A decoded TLB entry. */
export interface TlbEntry {
  /** Physical page address. */
  pa: number;
  /** Permission bits (TLB_SUP | TLB_USER). */
  perm: number;
}

/** Decode entry `e` of the TLB slot for linear page `lin`; null for a miss. */
export function decodeTlb(e: number, lin: number): TlbEntry | null {
  if (e === 0) return null;
  const perm = e & 3;
  if (perm === 0) return null;
  return { pa: ((e & -4096) ^ (lin & -4096)) >>> 0, perm };
}

/** "sup", "sup+user", "user" or "-". */
export function tlbPermText(perm: number): string {
  return perm === 3 ? "sup+user" : perm === 1 ? "sup" : perm === 2 ? "user" : "-";
}

/** One entry of a TLB slot as text: `0x00101000 sup+user` or `miss`. */
export function tlbText(e: number, lin: number): string {
  const d = decodeTlb(e, lin);
  return d === null ? "miss" : `${hex(d.pa)} ${tlbPermText(d.perm)}`;
}

/** A run of live TLB entries. */
export interface TlbRun {
  /** First linear page address. */
  lin: number;
  /** First physical page address. */
  pa: number;
  /** Pages in the run. */
  count: number;
  /** Read permission bits. */
  r: number;
  /** Write permission bits (0: not cached for writing). */
  w: number;
}

/**
 * Every live entry of the CPU's TLB (both arrays scanned: a million slots
 * each), compressed into runs of consecutive pages with consecutive frames
 * and equal permissions.
 */
export function tlbRuns(tlbR: Int32Array, tlbW: Int32Array): TlbRun[] {
  const runs: TlbRun[] = [];
  let cur: TlbRun | null = null;
  for (let p = 0; p < tlbR.length; p++) {
    const er = tlbR[p], ew = tlbW[p];
    if (er === 0 && ew === 0) {
      cur = null;
      continue;
    }
    const lin = (p << 12) >>> 0;
    const dr = decodeTlb(er, lin), dw = decodeTlb(ew, lin);
    const pa = (dr ?? dw)!.pa;
    const r = dr?.perm ?? 0, w = dw?.perm ?? 0;
    if (cur && cur.r === r && cur.w === w && cur.pa + cur.count * 4096 === pa) {
      cur.count++;
      continue;
    }
    cur = { lin, pa, count: 1, r, w };
    runs.push(cur);
  }
  return runs;
}

/** The TLB runs as aligned lines. */
export function formatTlb(runs: TlbRun[]): string[] {
  const rows: string[][] = [["linear", "", "physical", "read", "write", "pages"]];
  for (const r of runs) {
    const bytes = r.count * 4096;
    rows.push([
      `${hex(r.lin)}-${hex(r.lin + bytes - 1)}`,
      "->",
      `${hex(r.pa)}-${hex(r.pa + bytes - 1)}`,
      tlbPermText(r.r),
      r.w ? tlbPermText(r.w) : "-",
      String(r.count),
    ]);
  }
  return columns(rows);
}

/** A walk's step as `[0x00105c00] 0x00106067 P RW US A D`. */
export function stepText(s: WalkStep): string {
  return `[${hex(s.addr)}] ${hex(s.value)} ${
    pad(pteFlags(s.value, s.level === "PTE" ? "pte" : "pde"), 0)
  }`
    .trimEnd();
}
