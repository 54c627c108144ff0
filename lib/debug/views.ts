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
    `fcw ${hex(cw, 4)} (precision ${pc}, rounding ${rc}, masks ${hex(cw & 0x3f, 2)})  fsw ${
      hex(sw, 4)
    } (top ${f.top}, C3..C0 ${(sw >> 14) & 1}${(sw >> 10) & 1}${(sw >> 9) & 1}${
      (sw >> 8) & 1
    }, exceptions ${hex(sw & 0x3f, 2)})  ftw ${hex(f.tw, 4)}`,
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

/** Unit sizes for `x`: b byte, w 16-bit word, d 32-bit dword. */
export const UNIT: Record<string, number> = { b: 1, h: 2, w: 2, d: 4 };

/**
 * Memory as rows of units with ASCII: `0x00100000: 0x00000000 0x12345678  |....xV4.|`.
 * `read` returns the readable prefix and the reason it stopped.
 */
export function memoryText(
  addr: number,
  count: number,
  unit: number,
  read: (addr: number, n: number) => { bytes: Uint8Array; error: string | null },
  label: (a: number) => string = hex,
): string[] {
  const { bytes, error } = read(addr, count * unit);
  const perRow = unit === 1 ? 16 : unit === 2 ? 8 : 4;
  const out: string[] = [];
  const dv = new DataView(bytes.buffer);
  const units = Math.floor(bytes.length / unit);
  for (let i = 0; i < units; i += perRow) {
    const cells: string[] = [];
    let ascii = "";
    for (let k = i; k < Math.min(units, i + perRow); k++) {
      const o = k * unit;
      const v = unit === 1 ? bytes[o] : unit === 2 ? dv.getUint16(o, true) : dv.getUint32(o, true);
      cells.push(hex(v, unit * 2).slice(unit === 1 ? 2 : 0));
      for (let b = 0; b < unit; b++) ascii += asciiByte(bytes[o + b]);
    }
    const width = units > perRow ? perRow * (unit === 1 ? 3 : unit * 2 + 3) - 1 : 0;
    out.push(`${label((addr + i * unit) >>> 0)}: ${pad(cells.join(" "), width)}  |${ascii}|`);
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
  const out = [`${hex(addr)}: "${text}"${end < 0 && !error ? "…" : ""}`];
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
