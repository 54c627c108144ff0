/**
 * Views of the machine as text, for any target: registers (with EFLAGS,
 * segment descriptors and control registers decoded), the x87 unit, memory
 * dumps, disassembly listings, the stack, the CPU's descriptor tables, the
 * TLB, the hypercall log and the breakpoint list. Each returns lines; the
 * REPL prints them, a script may assert on them.
 *
 * @module
 */

import { CR0_PG, SS } from "../x86/cpu.ts";
import { vectorName } from "../x86/flags.ts";
import type { HypercallRecord } from "../lguest/hypercalls.ts";
import type { Guest } from "../lguest/guest.ts";
import type { Debugger } from "./debugger.ts";
import { Debugger as Dbg } from "./debugger.ts";
import { bytesText, type DisasmLine } from "./disasm.ts";
import {
  asciiByte,
  columns,
  cr0Text,
  cr4Text,
  descriptorText,
  descriptorType,
  eflagsText,
  hex,
  pad,
} from "./format.ts";
import { formatTlb, plural, tlbRuns } from "./paging.ts";
import { DebugError } from "./expr.ts";
import { SEGS } from "./registers.ts";

/** `regs`: general registers, EIP/EFLAGS, segments with their descriptor caches, CRs. */
export function regsText(d: Debugger): string[] {
  const c = d.cpu, r = c.regs;
  const g = (i: number, n: string) => `${n} ${hex(r[i])}`;
  const out = [
    [g(0, "eax"), g(3, "ebx"), g(1, "ecx"), g(2, "edx")].join("  "),
    [g(6, "esi"), g(7, "edi"), g(5, "ebp"), g(4, "esp")].join("  "),
    `eip ${hex(c.eip)} ${d.symbolize(d.pc()) ? `<${d.symbolize(d.pc())}>  ` : " "}eflags ${
      hex(c.getEflags())
    } ${eflagsText(c.getEflags())}`,
  ];
  const segRows: string[][] = SEGS.map(([n, i]) => {
    // The descriptor cache: sflags holds descriptor bits 8..23 (type, S, DPL, P, D/B, G).
    const f = c.sflags[i];
    if (f === 0) {
      return [
        n,
        hex(c.sreg[i], 4),
        `base ${hex(c.sbase[i])}`,
        `limit ${hex(c.slimit[i])}`,
        "",
        "",
        "unusable (null selector)",
      ];
    }
    const s = (f >> 4) & 1;
    return [
      n,
      hex(c.sreg[i], 4),
      `base ${hex(c.sbase[i])}`,
      `limit ${hex(c.slimit[i])}`,
      descriptorType(f & 0xf, s),
      `DPL${(f >> 5) & 3}${(f & 0x80) === 0 ? " not-present" : ""}`,
      s ? ((f >> 14) & 1 ? "32-bit" : "16-bit") : "",
    ];
  });
  out.push(...columns(segRows));
  out.push(
    `cr0 ${hex(c.cr0)} ${bits(cr0Text(c.cr0))}  cr2 ${hex(c.cr2)}  cr3 ${hex(c.cr3)}  cr4 ${
      hex(c.cr4)
    } ${bits(cr4Text(c.cr4))}`,
  );
  out.push(
    `gdtr ${hex(c.gdtBase)}/${hex(c.gdtLimit, 4)}  idtr ${hex(c.idtBase)}/${
      hex(c.idtLimit, 4)
    }  ldtr ${hex(c.ldtr, 4)}  tr ${hex(c.tr, 4)}  cpl ${c.cpl}  icount ${c.icount}`,
  );
  return out;
}

function bits(names: string): string {
  return names ? `[ ${names} ]` : "[ ]";
}

const TAGS = ["valid", "zero", "special", "empty"];

/** `regs fpu`: control, status and tag words, TOP, and ST(0)..ST(7). */
export function fpuText(d: Debugger): string[] {
  const f = d.cpu.fpu;
  const cw = f.cw, sw = f.sw;
  const rc = ["nearest", "down", "up", "zero"][(cw >> 10) & 3];
  const pc = ["single", "reserved", "double", "extended"][(cw >> 8) & 3];
  const out = [
    `fcw ${hex(cw, 4)} (precision ${pc}, rounding ${rc}, masks ${hex(cw & 0x3f, 2)})  ftw ${
      hex(f.tw, 4)
    }`,
    `fsw ${hex(sw, 4)} (top ${f.top}, C3..C0 ${(sw >> 14) & 1}${(sw >> 10) & 1}${(sw >> 9) & 1}${
      (sw >> 8) & 1
    }, exceptions ${hex(sw & 0x3f, 2)})`,
  ];
  const rows: string[][] = [];
  for (let i = 0; i < 8; i++) {
    const raw = f.stRaw80(i);
    const rawHex = Array.from(raw).reverse().map((b) => b.toString(16).padStart(2, "0")).join("");
    rows.push([`st(${i})`, TAGS[f.tag(i)], f.isEmpty(i) ? "" : String(f.st(i)), `raw ${rawHex}`]);
  }
  out.push(...columns(rows));
  return out;
}

/** Unit sizes for `x`, as gdb names them: b byte, h halfword, w word (32-bit), g giant (64-bit). */
export const UNIT: Record<string, number> = { b: 1, h: 2, w: 4, g: 8 };

/** `x`'s value formats (gdb's): hex, signed and unsigned decimal, octal, binary, char, address. */
export type ValueFormat = "x" | "d" | "u" | "o" | "t" | "c" | "a";

/** One unit of memory as text in format `f` (`unit` bytes at `o` of `bytes`). */
function cell(bytes: Uint8Array, o: number, unit: number, f: ValueFormat, sym: Sym): string {
  let v = 0n;
  for (let i = unit - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[o + i]);
  const bits = BigInt(unit * 8);
  switch (f) {
    case "x":
      return unit === 1
        ? v.toString(16).padStart(2, "0")
        : "0x" + v.toString(16).padStart(unit * 2, "0");
    case "d": {
      const signed = v >= 1n << (bits - 1n) ? v - (1n << bits) : v;
      return String(signed).padStart(DEC_WIDTH[unit] + 1);
    }
    case "u":
      return String(v).padStart(DEC_WIDTH[unit]);
    case "o":
      return ("0" + v.toString(8)).padStart(Math.ceil(unit * 8 / 3) + 1);
    case "t":
      return v.toString(2).padStart(unit * 8, "0");
    case "c": {
      const b = Number(v & 0xffn);
      return `${String(b).padStart(3)} ${charLiteral(b).padEnd(6)}`;
    }
    case "a": {
      const n = Number(v & 0xffffffffn), name = sym(n);
      return hex(n) + (name ? ` <${name}>` : "");
    }
  }
}

const DEC_WIDTH: Record<number, number> = { 1: 3, 2: 5, 4: 10, 8: 20 };

/** A symbol lookup for `a`-format cells (`name+0x10`, or null). */
type Sym = (addr: number) => string | null;

/** A byte as a C character literal: 'A', '\\n', '\\x01'. */
export function charLiteral(b: number): string {
  const esc: Record<number, string> = { 0: "\\0", 9: "\\t", 10: "\\n", 13: "\\r", 39: "\\'" };
  if (b in esc) return `'${esc[b]}'`;
  if (b >= 0x20 && b < 0x7f) return `'${String.fromCharCode(b)}'`;
  return `'\\x${b.toString(16).padStart(2, "0")}'`;
}

/** How many units of `unit` bytes in format `f` go on one line (keeping lines within 100 columns). */
function unitsPerRow(unit: number, f: ValueFormat): number {
  if (f === "a") return 2;
  if (f === "c") return 8;
  if (f === "t") return Math.max(1, 8 / unit);
  if (f === "x") return unit === 1 ? 16 : 16 / unit;
  return unit === 1 ? 8 : 16 / unit;
}

/**
 * Memory as rows of units, as gdb's `x/NFU` shows it, with the bytes as
 * ASCII at the end of a row: `0x00100000: 0x464c457f 0x00010101  |.ELF....|`.
 * `read` returns the readable prefix and the reason it stopped.
 */
export function memoryText(
  addr: number,
  count: number,
  unit: number,
  read: (addr: number, n: number) => { bytes: Uint8Array; error: string | null },
  label: (a: number) => string = hex,
  f: ValueFormat = "x",
  sym: Sym = () => null,
): string[] {
  const { bytes, error } = read(addr, count * unit);
  const perRow = unitsPerRow(unit, f);
  const out: string[] = [];
  const units = Math.floor(bytes.length / unit);
  const rows: string[][] = [];
  for (let i = 0; i < units; i += perRow) {
    const cells: string[] = [];
    let ascii = "";
    for (let k = i; k < Math.min(units, i + perRow); k++) {
      cells.push(cell(bytes, k * unit, unit, f, sym));
      for (let b = 0; b < unit; b++) ascii += asciiByte(bytes[k * unit + b]);
    }
    rows.push([`${label((addr + i * unit) >>> 0)}:`, cells.join(" "), ascii]);
  }
  const width = Math.max(0, ...rows.map((r) => r[1].length));
  for (const [l, c, a] of rows) {
    out.push(f === "a" || f === "c" ? `${l} ${c}`.trimEnd() : `${l} ${pad(c, width)}  |${a}|`);
  }
  if (error) throw new DebugErrorWithOutput(error, out);
  return out;
}

/** A DebugError that comes after some output (the readable part of a dump). */
export class DebugErrorWithOutput extends DebugError {
  /** @param message the error; @param output the lines printed before it */
  constructor(message: string, readonly output: string[]) {
    super(message);
  }
}

/** A NUL-terminated string at `addr` (at most `max` bytes). */
export function stringText(
  addr: number,
  read: (addr: number, n: number) => { bytes: Uint8Array; error: string | null },
  max = 256,
  label: (a: number) => string = hex,
): string[] {
  const { bytes, error } = read(addr, max);
  const end = bytes.indexOf(0);
  const s = bytes.subarray(0, end < 0 ? bytes.length : end);
  const text = Array.from(
    s,
    (b) =>
      b === 10
        ? "\\n"
        : b === 9
        ? "\\t"
        : b >= 0x20 && b < 0x7f
        ? String.fromCharCode(b)
        : `\\x${b.toString(16).padStart(2, "0")}`,
  ).join("");
  const out = [`${label(addr)}: "${text}"${end < 0 && !error ? "…" : ""}`];
  if (end < 0 && error) throw new DebugErrorWithOutput(error, s.length ? out : []);
  return out;
}

/** Disassembly lines: `=> 0x00100074 <start+4>:  b8 01 00 00 00   mov eax, 1`, breakpoints marked `*`. */
export function disasmText(d: Debugger, lines: DisasmLine[]): string[] {
  const pc = d.pc();
  const bps = new Set(
    d.breakpoints().filter((b) => b.enabled && b.kind === "break").map((b) => b.addr),
  );
  const rows = lines.map((l) => {
    const mark = (l.addr === pc ? "=>" : "  ") + (bps.has(l.addr) ? "*" : " ");
    const sym = d.symbolize(l.addr);
    let text = l.text;
    if (l.target !== null) {
      const ts = d.symbolize(l.target);
      if (ts) text += `  <${ts}>`;
    }
    return [`${mark}${hex(l.addr)}${sym ? ` <${sym}>` : ""}:`, bytesText(l.bytes), text];
  });
  return columns(rows);
}

/**
 * `stack [N]`: dwords from SS:ESP up, annotated with symbols; at most `max`
 * of them are read and shown, and a last line counts the rest.
 */
export function stackText(d: Debugger, n = 16, max = 500): string[] {
  const c = d.cpu;
  const esp = (c.sbase[SS] + c.regs[4]) >>> 0;
  const shown = Math.min(n, max);
  const { bytes, error } = d.readLinearPartial(esp, shown * 4);
  const dv = new DataView(bytes.buffer);
  const out = [`stack at ss:esp = ${hex(c.sreg[SS], 4)}:${hex(c.regs[4])} (linear ${hex(esp)})`];
  const ebp = (c.sbase[SS] + c.regs[5]) >>> 0;
  for (let i = 0; i * 4 + 4 <= bytes.length; i++) {
    const a = (esp + i * 4) >>> 0, v = dv.getUint32(i * 4, true);
    const sym = d.symbolize(v);
    const notes = [sym ? `<${sym}>` : "", a === ebp ? "<- ebp" : ""].filter(Boolean).join(" ");
    out.push(
      `  ${hex(a)}  +${(i * 4).toString(16).padStart(2, "0")}  ${hex(v)}  ${notes}`.trimEnd(),
    );
  }
  if (error) out.push("  " + error);
  else if (n > shown) out.push(`… ${n - shown} more dwords (set max-lines N shows up to N)`);
  return out;
}

/** The CPU's GDT (bare machine) read through linear memory. */
export function cpuGdtText(d: Debugger): string[] {
  const c = d.cpu;
  const n = Math.min(8192, Math.floor((c.gdtLimit + 1) / 8));
  const { bytes, error } = d.readLinearPartial(c.gdtBase, n * 8);
  const dv = new DataView(bytes.buffer);
  const rows: string[][] = [];
  for (let i = 0; i * 8 + 8 <= bytes.length; i++) {
    const lo = dv.getUint32(i * 8, true), hi = dv.getUint32(i * 8 + 4, true);
    if (lo === 0 && hi === 0) continue;
    rows.push([String(i), hex(i << 3, 4), `${hex(lo)} ${hex(hi)}`, descriptorText(lo, hi)]);
  }
  const out = [
    `GDT at ${hex(c.gdtBase)}, limit ${hex(c.gdtLimit, 4)}: ${
      plural(rows.length, "non-null entry", "non-null entries")
    }`,
  ];
  out.push(...columns(rows).map((l) => "  " + l));
  if (error) out.push("  " + error);
  return out;
}

/** The CPU's IDT (bare machine) read through linear memory. */
export function cpuIdtText(d: Debugger): string[] {
  const c = d.cpu;
  const n = Math.min(256, Math.floor((c.idtLimit + 1) / 8));
  if (n === 0) {
    return [
      `IDT at ${hex(c.idtBase)}, limit ${
        hex(c.idtLimit, 4)
      }: empty (any exception is a triple fault)`,
    ];
  }
  const { bytes, error } = d.readLinearPartial(c.idtBase, n * 8);
  const dv = new DataView(bytes.buffer);
  const rows: string[][] = [];
  for (let v = 0; v * 8 + 8 <= bytes.length; v++) {
    const lo = dv.getUint32(v * 8, true), hi = dv.getUint32(v * 8 + 4, true);
    if ((hi & 0x8000) === 0) continue;
    const type = (hi >> 8) & 0x1f;
    const off = ((lo & 0xffff) | (type & 8 ? hi & 0xffff0000 : 0)) >>> 0;
    const kind = {
      5: "task gate",
      6: "interrupt gate16",
      7: "trap gate16",
      14: "interrupt gate",
      15: "trap gate",
    }[type] ??
      `type ${type}`;
    rows.push([
      hex(v, 2),
      vectorName(v),
      kind,
      `${hex(lo >>> 16, 4)}:${hex(off)}`,
      `DPL${(hi >> 13) & 3}`,
    ]);
  }
  const out = [
    `IDT at ${hex(c.idtBase)}, limit ${hex(c.idtLimit, 4)}: ${plural(rows.length, "present gate")}`,
  ];
  out.push(...columns(rows).map((l) => "  " + l));
  if (error) out.push("  " + error);
  return out;
}

/** `tlb`: the CPU's live TLB entries, compressed. */
export function tlbText(d: Debugger): string[] {
  const c = d.cpu;
  const runs = tlbRuns(c.tlbR, c.tlbW);
  let pages = 0;
  for (const r of runs) pages += r.count;
  const paging = (c.cr0 & CR0_PG) !== 0 ? `cr3 ${hex(c.cr3)}` : "paging off";
  const out = [
    `CPU TLB (${paging}, CPL ${c.cpl}: a hit needs the ${c.cpl === 3 ? "user" : "sup"} bit): ${
      plural(pages, "page")
    } cached in ${plural(runs.length, "run")}`,
  ];
  if (runs.length === 0) out.push("  (empty: the next access to any page walks the tables)");
  else out.push(...formatTlb(runs).map((l) => "  " + l));
  if (c.tlbExclude) out.push("  (watched pages are never cached: their accesses go the slow way)");
  return out;
}

/** `hcalls [N]`: the host's hypercall log, newest last. */
export function hcallsText(log: readonly HypercallRecord[], n = 20): string[] {
  if (log.length === 0) return ["no hypercalls yet"];
  const shown = log.slice(-n);
  const out = [`${plural(log.length, "hypercall")} logged; the last ${shown.length}:`];
  const rows = shown.map((r) => [`[${r.icount}]`, Dbg.hcallText(r), r.async ? "async" : ""]);
  out.push(...columns(rows).map((l) => "  " + l));
  return out;
}

/** `info break`: every breakpoint, watchpoint and catchpoint. */
export function breakpointsText(d: Debugger): string[] {
  const bps = d.breakpoints();
  if (bps.length === 0) return ["no breakpoints or watchpoints"];
  const rows: string[][] = [["Num", "Type", "Enb", "What", "Hits"]];
  for (const b of bps) {
    let type: string = b.kind, what: string;
    switch (b.kind) {
      case "break":
        type = b.temporary ? "tbreak" : "break";
        what = d.addrText(b.addr);
        break;
      case "pbreak":
        type = b.temporary ? "tbreak phys" : "break phys";
        what = `physical ${hex(b.addr)}`;
        break;
      case "watch":
        type = b.access === "w" ? "watch" : b.access === "r" ? "rwatch" : "awatch";
        what = `${b.phys ? "physical " : ""}${hex(b.addr)}, ${plural(b.len, "byte")}${
          b.label ? ` (${b.label})` : ""
        }`;
        break;
      case "hcall":
        what = `hypercall ${b.label} (${b.nr})`;
        break;
      case "trap":
        what = `trap ${b.nr} ${b.label}`;
        break;
      default:
        what = `instruction count ${b.icount}`;
    }
    if (b.cond) what += ` if ${b.cond}`;
    if (b.ignore) what += ` (passes ${plural(b.ignore, "more hit")})`;
    rows.push([String(b.id), type, b.enabled ? "y" : "n", what, String(b.hits)]);
  }
  return columns(rows);
}

/** Throw a DebugError unless the target is lguest; returns the guest. */
export function needGuest(d: Debugger, what: string): Guest {
  const g = d.target.guest;
  if (!g) throw new DebugError(`${what} needs the lguest host (this is the bare machine)`);
  return g;
}
