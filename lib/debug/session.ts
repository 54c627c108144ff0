/**
 * The debugger's command language: one line in, text out. This is everything
 * the REPL does except the terminal — parsing a command, calling the
 * {@link Debugger}, formatting what comes back, `help` for every command, tab
 * completion, and trace files. A script can drive it directly
 * (`await session.exec("pgdirs")`) and read the output from its sink.
 *
 * Conventions a gdb, Bochs or QEMU-monitor user will recognise: `step`/`s`,
 * `next`/`n`, `continue`/`c`, `break`/`b`, `x/16b`, `info break`; addresses are
 * hexadecimal (`0n` for decimal), counts decimal. An error is one line and the
 * session goes on.
 *
 * @module
 */

import { closeSync, existsSync, openSync, readFileSync, statSync, writeSync } from "node:fs";
import { CS, SS } from "../x86/cpu.ts";
import { vectorName } from "../x86/flags.ts";
import { LHCALL } from "../lguest/abi.ts";
import { hypercallName } from "../lguest/hypercalls.ts";
import { type Breakpoint, Debugger, type StopEvent, type TraceKind } from "./debugger.ts";
import {
  disassemble,
  disassemblerLoaded,
  loadDisassembler,
  type Syntax,
  SYNTAXES,
} from "./disasm.ts";
import { DebugError, parseCount } from "./expr.ts";
import { columns, cr0Text, cr4Text, hex, hexs } from "./format.ts";
import { REGISTER_NAMES } from "./registers.ts";
import { dumpTables, plural } from "./paging.ts";
import { readSymbolFile, SYMBOL_FILE_MAX } from "./symbols.ts";
import { devicesText } from "./devices_view.ts";
import {
  guestGdtText,
  guestIdtText,
  guestPgdirText,
  lguestText,
  pgdirsText,
  shadowPgdirText,
  translateText,
} from "./lguest_view.ts";
import {
  breakpointsText,
  charLiteral,
  cpuGdtText,
  cpuIdtText,
  DebugErrorWithOutput,
  disasmText,
  fpuText,
  hcallsText,
  memoryText,
  needGuest,
  regsText,
  stackText,
  stringText,
  tlbText,
  UNIT,
  type ValueFormat,
} from "./views.ts";
import type { BareTarget } from "./target.ts";
import { stepText, tlbText as tlbEntryText, walk } from "./paging.ts";

/** Where session output goes: one call per block of lines (no trailing newline). */
export type Write = (text: string) => void;

/** Session options. */
export interface SessionOptions {
  /** Receives output (command results, stop reports, trace lines to the terminal). */
  write: Write;
  /** Called by `quit` with the exit status. */
  onQuit?: (status: number) => void;
  /** Called between chunks of a run (e.g. to flush guest output). */
  onChunk?: () => void;
  /** Called when a background run stops, after its report was written. */
  onBackgroundStop?: (ev: StopEvent) => void;
}

/** One command of the language. */
export interface Command {
  /** Its name, then its aliases (e.g. `["step", "s", "stepi", "si"]`). */
  names: string[];
  /** The heading `help` lists it under. */
  group: string;
  /** How to call it, e.g. `step [N]`. */
  usage: string;
  /** One line for `help`. */
  summary: string;
  /** The text of `help NAME`. */
  help: string;
  /** Run it: `args` are the words after the name, `rest` the text, `word` the name typed. */
  run: (s: Session, args: string[], rest: string, word: string) => Promise<void> | void;
  /** Tab completions for its arguments, given the words so far. */
  complete?: (s: Session, words: string[]) => string[];
}

const TRAP_NAMES: Record<string, number> = {
  de: 0,
  db: 1,
  nmi: 2,
  bp: 3,
  of: 4,
  br: 5,
  ud: 6,
  nm: 7,
  df: 8,
  ts: 10,
  np: 11,
  ss: 12,
  gp: 13,
  pf: 14,
  mf: 16,
  ac: 17,
  mc: 18,
  xm: 19,
};

const HCALL_SHORT = [...Object.keys(LHCALL)].map((k) => k.toLowerCase());

/** A debugging session: the command language over a {@link Debugger}. */
export class Session {
  /** The debugger. */
  readonly dbg: Debugger;
  /** Output sink. */
  write: Write;
  /** Status asked for by `quit`, or null. */
  quitStatus: number | null = null;
  /** A background run (`continue &`) in progress. */
  background: Promise<StopEvent> | null = null;
  /** The options (hooks) this session was made with. */
  readonly o: SessionOptions;
  private traceFiles = new Map<TraceKind, { fd: number; path: string }>();
  /** What the last `x` showed, so `x` alone continues. */
  lastX: Fmt & { next: number | null; phys: boolean } = {
    count: 1,
    format: "x",
    unit: "w",
    next: null,
    phys: false,
  };
  /** Where the last `disasm` ended, so `disasm` alone continues. */
  lastDisasm = 0;
  /** The most lines one listing prints (`set max-lines N`); the rest become one '… N more' line. */
  maxLines: number = DEFAULT_MAX_LINES;

  /**
   * A session over `dbg`, writing to `o.write`.
   *
   * @param dbg the debugger
   * @param o output and hooks
   */
  constructor(dbg: Debugger, o: SessionOptions) {
    this.dbg = dbg;
    this.o = o;
    this.write = o.write;
    dbg.print = (line) => this.write(line);
  }

  /** Files symbols were loaded from (besides the kernel's own table). */
  readonly symbolFiles: string[] = [];

  /**
   * Load a System.map or an ELF's symbol table into the debugger; returns the
   * line saying what was loaded. Throws DebugError for a file that is neither.
   */
  loadSymbols(path: string): string {
    let bytes: Uint8Array;
    try {
      if (statSync(path).size > SYMBOL_FILE_MAX) {
        throw new DebugError(`${path}: larger than ${SYMBOL_FILE_MAX >> 20} MiB`);
      }
      bytes = new Uint8Array(readFileSync(path));
    } catch (e) {
      if (e instanceof DebugError) throw e;
      throw new DebugError(`cannot read ${path}: ${(e as { code?: string }).code ?? String(e)}`);
    }
    const { symbols, kind } = readSymbolFile(bytes, path);
    this.dbg.addSymbols(symbols);
    this.symbolFiles.push(path);
    return `${plural(symbols.size, "symbol")} from ${path} (${kind})`;
  }

  /** Write lines: at most {@link maxLines} of them, then one line saying how many more there were. */
  out(lines: string | string[]): void {
    if (typeof lines === "string") return this.write(lines);
    this.write(capLines(lines, this.maxLines).join("\n"));
  }

  /** Find a command by name or alias. */
  find(name: string): Command | undefined {
    const n = name.toLowerCase();
    return COMMANDS.find((c) => c.names.includes(n));
  }

  /**
   * Run one command line. Errors are written as one line; returns false when
   * the command failed. Several commands may be separated by `;`.
   */
  async exec(line: string): Promise<boolean> {
    let ok = true;
    for (const part of splitCommands(line)) {
      if (this.quitStatus !== null) break;
      ok = (await this.execOne(part)) && ok;
    }
    return ok;
  }

  /** Run one command (no `;`); false when it failed, after writing the error line. */
  private async execOne(line: string): Promise<boolean> {
    const text = line.trim();
    if (text === "" || text.startsWith("#")) return true;
    let m = /^(\S+?)(\/\S*)?(?:\s+(.*))?$/.exec(text);
    if (!m) m = [text, text, undefined, undefined] as unknown as RegExpExecArray;
    const word = m[1], slash = m[2] ?? "", rest = (m[3] ?? "").trim();
    const cmd = this.find(word);
    // Stop reports and 'disasm' show instructions: the disassembler loads with
    // the first command (a failure shows, one line, where an instruction would).
    if (!disassemblerLoaded()) await loadDisassembler().catch(() => {});
    try {
      if (!cmd) throw new DebugError(`unknown command '${word}' (try help)`);
      const args = rest === "" ? [] : rest.split(/\s+/);
      if (slash) args.unshift(slash);
      await cmd.run(this, args, rest, word.toLowerCase());
      return true;
    } catch (e) {
      if (e instanceof DebugErrorWithOutput && e.output.length) this.out(e.output);
      this.out(errorLine(e));
      return false;
    }
  }

  /** Run a script: one command per line (or `;`-separated); `#` starts a comment line. */
  async execScript(text: string, echo: (cmd: string) => void = () => {}): Promise<boolean> {
    let ok = true;
    for (const line of text.split(/\r?\n/)) {
      for (const part of splitCommands(line)) {
        if (this.quitStatus !== null) return ok;
        if (part.trim() === "" || part.trim().startsWith("#")) continue;
        echo(part.trim());
        ok = (await this.execOne(part)) && ok;
      }
    }
    return ok;
  }

  /** Stop a background run, or ask a foreground one to stop (Ctrl-C). */
  interrupt(): void {
    this.dbg.interrupt();
  }

  /** Close trace files. */
  close(): void {
    for (const { fd } of this.traceFiles.values()) {
      try {
        closeSync(fd);
      } catch { /* already closed */ }
    }
    this.traceFiles.clear();
  }

  // ------------------------------------------------------------------ reports

  /** The current instruction as a `=>` line. */
  whereLines(): string[] {
    const d = this.dbg;
    if (d.ended) return [];
    try {
      return disasmText(d, d.disasm(d.pc(), 1));
    } catch (e) {
      return [`=> ${hex(d.pc())}: ${e instanceof DebugError ? e.message : String(e)}`];
    }
  }

  /** Report a stop: what happened on the way, why it stopped, where it is. */
  report(ev: StopEvent): void {
    this.lastDisasm = 0;
    const lines: string[] = [];
    for (const n of ev.notes) lines.push(`  -> ${n}`);
    if (ev.message) lines.push(`[${this.dbg.icount}] ${ev.message}`);
    if (ev.reason === "ended") {
      lines.push(
        `(${plural(this.dbg.icount, "instruction")} retired in all; exit status ${
          this.dbg.ended?.status ?? 1
        })`,
      );
    } else lines.push(...this.whereLines());
    if (!this.dbg.ended) lines.push(...this.displayLines());
    this.out(lines);
  }

  /** Expressions shown after every stop (`display`), by number. */
  displays: { id: number; fmt: string; expr: string }[] = [];
  private nextDisplay = 1;

  /** Add a display; returns its lines as shown now. */
  addDisplay(fmt: string, expr: string): string[] {
    const disp = { id: this.nextDisplay++, fmt, expr };
    this.displays.push(disp);
    return this.displayText(disp);
  }

  /** Every display, evaluated now. */
  displayLines(): string[] {
    return this.displays.flatMap((x) => this.displayText(x));
  }

  /** One display's lines as of now (an error in it is its one line). */
  private displayText(x: { id: number; fmt: string; expr: string }): string[] {
    const d = this.dbg;
    try {
      if (x.fmt === "" || /^[xduotca]$/.test(x.fmt)) {
        return [
          `${x.id}: ${x.fmt ? `/${x.fmt} ` : ""}${x.expr} ${printValue(d, d.eval(x.expr), x.fmt)}`,
        ];
      }
      const f = parseFmt(x.fmt, { count: 1, format: "x", unit: "w" });
      const { lines } = examine(this, d.eval(x.expr), f, false);
      return [`${x.id}: x/${x.fmt} ${x.expr}`, ...lines];
    } catch (e) {
      return [`${x.id}: ${x.expr}: ${e instanceof Error ? e.message : String(e)}`];
    }
  }

  /** Wait for a run and report how it stopped. */
  async run(p: Promise<StopEvent>): Promise<void> {
    this.report(await p);
  }

  /** Refuse to start a run while one goes on in the background. */
  checkIdle(): void {
    if (this.background) {
      throw new DebugError("the guest is running in the background: interrupt first");
    }
  }

  // ------------------------------------------------------------------ completion

  /** Completion candidates for the last word of `line`: [matches, the word completed]. */
  complete(line: string): [string[], string] {
    const words = line.split(/\s+/);
    const last = words[words.length - 1];
    let cands: string[];
    if (words.length === 1) cands = COMMANDS.flatMap((c) => c.names);
    else {
      const cmd = this.find(words[0].replace(/\/.*/, ""));
      cands = cmd?.complete ? cmd.complete(this, words.slice(1)) : this.addressWords();
    }
    const hits = [...new Set(cands.filter((c) => c.startsWith(last)))].sort();
    return [hits, last];
  }

  /** Words that can stand for an address: registers and symbols. */
  addressWords(): string[] {
    return [...REGISTER_NAMES, ...this.dbg.symbols.keys()];
  }

  // ------------------------------------------------------------------ helpers for commands

  /** Open (append) a trace file, returning its sink. */
  traceTo(kind: TraceKind, path: string | undefined): (l: string) => void {
    this.closeTrace(kind);
    if (!path) return (l) => this.write(l);
    let fd: number;
    try {
      fd = openSync(path, "a");
    } catch (e) {
      throw new DebugError(`cannot open ${path}: ${(e as { code?: string }).code ?? String(e)}`);
    }
    this.traceFiles.set(kind, { fd, path });
    return (l) => writeSync(fd, l + "\n");
  }

  /** Close a trace file. */
  closeTrace(kind: TraceKind): void {
    const f = this.traceFiles.get(kind);
    if (f) {
      closeSync(f.fd);
      this.traceFiles.delete(kind);
    }
  }

  /** Where a trace goes, in words. */
  traceWhere(kind: TraceKind): string {
    if (!this.dbg.trace[kind]) return "off";
    const f = this.traceFiles.get(kind);
    return f ? `on, to ${f.path}` : "on, to the terminal";
  }

  /**
   * The banner: what this is, where it stopped (the instruction, so the
   * disassembler is loaded first), what to try.
   */
  async banner(name: string): Promise<string[]> {
    if (!disassemblerLoaded()) await loadDisassembler().catch(() => {});
    const d = this.dbg, t = d.target;
    const lines: string[] = [];
    if (t.guest) {
      const l = t.launcher!;
      const syms = d.symbols.size;
      lines.push(
        `lguest.ts: ${name} (${l.kernel.format === "elf" ? "ELF" : l.kernel.format}${
          syms ? `, ${plural(syms, "symbol")}` : ""
        }) in ${l.ramSize >> 20} MiB under the lguest host,`,
        `  ${
          l.pgdir >= 0
            ? `2007 boot: launcher-built page tables at ${hex(l.pgdir)}`
            : "2011 boot: linear mode (no page tables yet)"
        }${t.guest.pt.pae ? ", PAE" : ""}`,
      );
    } else {
      lines.push(
        `lguest.ts: ${name} on the bare machine (${t.mem.size >> 20} MiB, ring 0, paging off${
          d.symbols.size ? `, ${plural(d.symbols.size, "symbol")}` : ""
        })`,
      );
    }
    if (this.symbolFiles.length) {
      lines.push(`symbols loaded from ${this.symbolFiles.join(", ")}`);
    }
    lines.push(`stopped at the entry point ${d.addrText(d.pc())}, instruction 0:`);
    lines.push(...this.whereLines());
    if (t.guest) {
      lines.push(
        "Try: step (s), regs, lguest, pgdirs, translate eip, hcalls; or break hcall new_pgtable,",
        "     continue (c), then pgdir guest and pgdir shadow. Ctrl-] stops a running guest (Ctrl-C",
        "     too while its console takes no input); help lists all.",
      );
    } else {
      lines.push(
        "Try: step (s), regs, disasm, x/16b eip, tlb; or watch ADDR / break ADDR, then continue (c).",
        "     Ctrl-] or Ctrl-C stops a running guest; help lists all.",
      );
    }
    lines.push("Addresses are hex (0n10 is decimal ten); counts are decimal (step 10).");
    return lines;
  }
}

/** How many lines one listing prints unless `set max-lines` says otherwise. */
export const DEFAULT_MAX_LINES = 500;

/** `lines` cut to `max`, with a last line saying how many were left out. */
export function capLines(lines: string[], max: number): string[] {
  if (lines.length <= max) return lines;
  return [
    ...lines.slice(0, max),
    `… ${lines.length - max} more lines (set max-lines N shows up to N)`,
  ];
}

function splitCommands(line: string): string[] {
  return line.split(";");
}

function errorLine(e: unknown): string {
  if (e instanceof DebugError || e instanceof RangeError) return `error: ${e.message}`;
  if (e instanceof Error) return `internal error: ${e.message}`;
  return `internal error: ${String(e)}`;
}

function need(args: string[], n: number, usage: string): void {
  if (args.length < n) throw new DebugError(`usage: ${usage}`);
}

function onOff(w: string | undefined): boolean {
  if (w === "on" || w === "1") return true;
  if (w === "off" || w === "0") return false;
  throw new DebugError("say on or off");
}

function parseVector(w: string): number {
  const k = w.toLowerCase().replace(/^#/, "");
  if (k in TRAP_NAMES) return TRAP_NAMES[k];
  if (/^(0x[0-9a-f]+|0n[0-9]+|[0-9]+)$/i.test(w)) {
    const v = w.toLowerCase().startsWith("0x") ? parseInt(w, 16) : Number(w.replace(/^0n/i, ""));
    if (v >= 0 && v < 256) return v;
  }
  throw new DebugError(`'${w}' is not a vector (a number, decimal, or a name: pf, gp, ud, …)`);
}

function parseHcall(w: string): number {
  const n = Debugger.hcallNumber(w);
  if (n === null) {
    throw new DebugError(
      `'${w}' is not a hypercall (a number or a name: ${HCALL_SHORT.slice(0, 4).join(", ")}, …)`,
    );
  }
  return n;
}

function parseSlot(w: string | undefined): number | undefined {
  if (w === undefined) return undefined;
  const n = parseCount(w);
  return n;
}

/** A parsed `/NFU`: count, format letter (x d u o t c a i s) and unit size letter (b h w g). */
export interface Fmt {
  /** How many units (instructions, strings). */
  count: number;
  /** The format letter. */
  format: string;
  /** The unit letter. */
  unit: string;
}

/**
 * Parse gdb's `/NFU` (`/8xw`, `/4i`, `/s`, `/x`): letters in any order after
 * the count; what is left out comes from `last` (the count is 1). A c format
 * defaults to bytes and an a format is always 32-bit, as in gdb.
 */
export function parseFmt(text: string, last: Fmt): Fmt {
  const m = /^(\d*)([a-z]*)$/i.exec(text);
  if (!m) throw new DebugError(`bad format '/${text}': /N, then a format and a unit (x/8xw)`);
  let format = "", unit = "";
  for (const ch of m[2].toLowerCase()) {
    if ("xduotcais".includes(ch)) {
      if (format) throw new DebugError(`bad format '/${text}': two formats ('${format}', '${ch}')`);
      format = ch;
    } else if ("bhwg".includes(ch)) {
      if (unit) throw new DebugError(`bad format '/${text}': two units ('${unit}', '${ch}')`);
      unit = ch;
    } else {
      throw new DebugError(
        `bad format '/${text}': '${ch}' is neither a format (x d u o t c a i s) nor a unit (b h w g)`,
      );
    }
  }
  const count = m[1] ? parseCount(m[1]) : text === "" ? last.count : 1;
  if (count < 1 || count > 65536) throw new DebugError("count must be 1 to 65536");
  format ||= last.format;
  unit ||= format === "c" ? "b" : last.unit;
  if (format === "a") unit = "w";
  return { count, format, unit };
}

function xCommand(phys: boolean) {
  return (s: Session, args: string[]) => {
    const d = s.dbg;
    const fmt = parseFmt(args[0]?.startsWith("/") ? args.shift()!.slice(1) : "", s.lastX);
    const last = s.lastX;
    let addr: number;
    if (args.length > 0) addr = d.eval(args.join(" "));
    else if (last.phys === phys && last.next !== null) addr = last.next;
    else throw new DebugError(`usage: ${phys ? "xp" : "x"}/NFU ADDR (x/8xw esp, x/4i eip)`);
    s.lastX = { ...fmt, next: null, phys };
    const { lines, next } = examine(s, addr, fmt, phys);
    s.lastX.next = next;
    s.out(lines);
  };
}

/** `x/NFU ADDR` as lines, and the address just past what was shown. */
function examine(
  s: Session,
  addr: number,
  f: Fmt,
  phys: boolean,
): { lines: string[]; next: number } {
  const d = s.dbg;
  const read = phys
    ? (a: number, n: number) => {
      try {
        const b = d.readPhys(a, n);
        return {
          bytes: b,
          error: b.length < n ? `physical memory ends at ${hex(d.target.mem.size)}` : null,
        };
      } catch (e) {
        return { bytes: new Uint8Array(0), error: (e as Error).message };
      }
    }
    : (a: number, n: number) => d.readLinearPartial(a, n);
  const most = Math.min(f.count, s.maxLines);
  if (f.format === "i") {
    const dl = phys
      ? disassemble(read(addr, most * 15).bytes, addr, most, d.syntax)
      : d.disasm(addr, most);
    if (dl.length === 0) throw new DebugError(`cannot read ${hex(addr)}`);
    const end = dl[dl.length - 1];
    const lines = disasmText(d, dl);
    if (f.count > most) lines.push(`… ${f.count - most} more instructions`);
    return { lines, next: (end.addr + end.len) >>> 0 };
  }
  const label = phys ? (a: number) => `phys ${hex(a)}` : (a: number) => d.addrText(a);
  if (f.format === "s") {
    const lines: string[] = [];
    let a = addr;
    for (let i = 0; i < most; i++) {
      lines.push(...stringText(a, read, 256, label));
      const { bytes } = read(a, 256);
      const end = bytes.indexOf(0);
      a = (a + (end < 0 ? bytes.length : end + 1)) >>> 0;
    }
    if (f.count > most) lines.push(`… ${f.count - most} more strings`);
    return { lines, next: a };
  }
  const size = UNIT[f.unit];
  const lines = memoryText(
    addr,
    f.count,
    size,
    read,
    label,
    f.format as ValueFormat,
    (a) => d.symbolize(a),
  );
  return { lines, next: (addr + f.count * size) >>> 0 };
}

async function runCmd(s: Session, p: () => Promise<StopEvent>): Promise<void> {
  s.checkIdle();
  await s.run(p());
}

const EXEC = "Running";
const BREAK = "Breakpoints";
const STATE = "Looking";
const LGUEST = "lguest";
const PAGING = "Page tables";
const MISC = "Session";

const COMMANDS: Command[] = [
  {
    names: ["step", "s", "stepi", "si"],
    group: EXEC,
    usage: "step [N]",
    summary: "execute N instructions (default 1)",
    help: `Execute N instructions (decimal; default 1) and show the next one. A step
into a trap or interrupt stops at the first instruction of its handler; the
host's work on the way (hypercalls, page faults it handled, interrupts it
delivered) is listed above the new position. An empty line repeats it.`,
    run: (s, a) => runCmd(s, () => s.dbg.step(a[0] ? parseCount(a[0]) : 1)),
  },
  {
    names: ["next", "n", "nexti", "ni"],
    group: EXEC,
    usage: "next",
    summary: "step over a CALL or INT n",
    help: `Like step, but a CALL or INT n runs until the instruction after it is
reached at the same stack depth. Breakpoints inside still stop.`,
    run: (s) => runCmd(s, () => s.dbg.next({ onChunk: s.o.onChunk })),
  },
  {
    names: ["continue", "c", "cont"],
    group: EXEC,
    usage: "continue [&]",
    summary: "run until a breakpoint, the end, or Ctrl-C",
    help: `Run the guest until a breakpoint or watchpoint, the guest's end, or Ctrl-C.
Guest output appears as it arrives. 'continue &' runs in the background: the
prompt stays, the guest's output appears above it, 'interrupt' (or Ctrl-C)
stops it; commands that only look (regs, lguest, pgdirs, x…) work meanwhile.`,
    run: async (s, a) => {
      s.checkIdle();
      if (a[0] === "&") {
        if (s.dbg.ended) throw new DebugError(`the guest has ended (${s.dbg.ended.reason})`);
        const p = s.dbg.continue({ onChunk: s.o.onChunk });
        s.background = p;
        s.out("running in the background ('interrupt' or Ctrl-C stops it)");
        p.then((ev) => {
          s.background = null;
          s.report(ev);
          s.o.onBackgroundStop?.(ev);
        }, (e) => {
          s.background = null;
          s.out(errorLine(e));
        });
        return;
      }
      if (a.length) throw new DebugError("usage: continue [&]");
      await s.run(s.dbg.continue({ onChunk: s.o.onChunk }));
    },
  },
  {
    names: ["interrupt"],
    group: EXEC,
    usage: "interrupt",
    summary: "stop a background run",
    help: "Stop a run started with 'continue &' (Ctrl-C does the same).",
    run: async (s) => {
      if (!s.background) throw new DebugError("nothing is running");
      s.interrupt();
      await s.background;
    },
  },
  {
    names: ["until", "u"],
    group: EXEC,
    usage: "until [ADDR]",
    summary: "run until ADDR (default: the next instruction, past loops)",
    help: `Run until the instruction at linear ADDR is about to execute. Without ADDR,
run until the instruction after this one: at the bottom of a loop, that runs
the loop to its end.`,
    run: (s, _a, rest) =>
      runCmd(s, () => s.dbg.until(rest ? s.dbg.eval(rest) : undefined, { onChunk: s.o.onChunk })),
    complete: (s) => s.addressWords(),
  },
  {
    names: ["finish", "fin"],
    group: EXEC,
    usage: "finish",
    summary: "run until the current function returns",
    help: `Run until a RET (or IRET) pops the current stack frame, stepping over calls,
and show where it returned to. Single-steps: exact, slower than continue.`,
    run: (s) => runCmd(s, () => s.dbg.finish({ onChunk: s.o.onChunk })),
  },
  {
    names: ["break", "b", "tbreak", "lb", "pb"],
    group: BREAK,
    usage: "break [ADDR | phys PADDR | hcall NAME|NR | trap VECTOR | icount N] [if COND]",
    summary: "set a breakpoint (tbreak: one-shot)",
    help: `break ADDR          before the instruction at linear ADDR (a symbol works:
                    break start_kernel; so does break eip+5)
break phys PADDR    before an instruction at physical PADDR, whatever linear
                    address maps it (pb PADDR is short for it)
break hcall NAME    before the host runs hypercall NAME or number (e.g.
                    new_pgtable, LHCALL_SET_PTE, 4): synchronous ones, int $0x1f
break trap VECTOR   before a trap is handled: pf, gp, 14, 0x20…; under lguest
                    every trap passes through the host, so break trap pf
                    stops at each page fault, before demand paging
break icount N      when the instruction count reaches N (decimal)
break … if COND     stop only when COND is non-zero: break 0x100074 if eax == 1,
                    break hcall set_pte if [esp] > 0xc0000000 (condition N
                    COND changes it later; ignore N COUNT passes COUNT hits)
tbreak …            the same, deleted after it stops once
break               list breakpoints (as info break)`,
    run: (s, a, rest, word) => {
      const d = s.dbg;
      if (a.length === 0) return s.out(breakpointsText(d));
      const temporary = word === "tbreak";
      const cond = /^(.*?)\s+if\s+(.+)$/.exec(rest);
      if (cond) {
        rest = cond[1].trim();
        a = rest === "" ? [] : rest.split(/\s+/);
        if (a.length === 0) throw new DebugError("usage: break ADDR if CONDITION");
        d.eval(cond[2]); // a condition that cannot be read is refused now, not at every hit
      }
      const kind = a[0].toLowerCase();
      let bp;
      if (kind === "phys" || word === "pb") {
        const expr = kind === "phys" ? a.slice(1).join(" ") : rest;
        if (!expr) throw new DebugError("usage: break phys PADDR");
        bp = d.breakPhys(d.eval(expr), { temporary });
      } else if (kind === "hcall") {
        need(a, 2, "break hcall NAME|NR");
        bp = d.breakHcall(parseHcall(a[1]));
      } else if (kind === "trap") {
        need(a, 2, "break trap VECTOR");
        bp = d.breakTrap(parseVector(a[1]));
      } else if (kind === "icount") {
        need(a, 2, "break icount N");
        bp = d.breakIcount(parseCount(a[1]));
      } else {
        const addr = d.eval(rest);
        bp = d.breakAt(addr, { temporary, label: /^[A-Za-z_]/.test(rest) ? rest : "" });
      }
      bp.temporary ||= temporary;
      if (cond) bp.cond = cond[2].trim();
      s.out(
        `${temporary ? "temporary " : ""}breakpoint ${bp.id}: ${describeBp(s, bp)}${
          bp.cond ? ` if ${bp.cond}` : ""
        }`,
      );
    },
    complete: (s, w) => {
      if (w.length === 2 && w[0] === "hcall") return HCALL_SHORT;
      if (w.length === 2 && w[0] === "trap") return Object.keys(TRAP_NAMES);
      if (w.length === 1) return ["phys", "hcall", "trap", "icount", ...s.addressWords()];
      return s.addressWords();
    },
  },
  {
    names: ["watch", "rwatch", "awatch"],
    group: BREAK,
    usage: "watch [phys] ADDR [LEN]",
    summary: "stop after a write (rwatch: read, awatch: either) of memory",
    help: `watch ADDR [LEN]       stop after an instruction writes [ADDR, ADDR+LEN)
                       (linear; LEN decimal, default 4)
watch phys PADDR [LEN] the same for physical addresses, through any mapping
rwatch …, awatch …     reads, or reads and writes
The instruction completes, then the guest stops; a write shows old -> new.
Watched pages are kept out of the CPU's TLB so their accesses take the slow
path: the rest of memory runs at full speed. Writes the host makes for the
guest (lguest_data, accessed/dirty bits) are not the guest's and do not stop.`,
    run: (s, a, _rest, word) => {
      const d = s.dbg;
      need(a, 1, "watch [phys] ADDR [LEN]");
      const phys = a[0] === "phys";
      if (phys) a.shift();
      need(a, 1, "watch [phys] ADDR [LEN]");
      const access = word === "rwatch" ? "r" : word === "awatch" ? "rw" : "w";
      let len = 4;
      if (a.length > 1 && /^(\d+|0x[0-9a-f]+|0n\d+)$/i.test(a[a.length - 1])) {
        len = parseCount(a.pop()!);
      }
      const expr = a.join(" ");
      const bp = d.watch(d.eval(expr), len, {
        access,
        phys,
        label: /^[A-Za-z_]/.test(expr) ? expr : "",
      });
      s.out(`watchpoint ${bp.id}: ${describeBp(s, bp)}`);
    },
    complete: (s) => ["phys", ...s.addressWords()],
  },
  {
    names: ["delete", "d"],
    group: BREAK,
    usage: "delete N…|all",
    summary: "delete breakpoints (delete all: every one)",
    help: `Delete the breakpoints numbered N. 'delete all' deletes every one; 'delete'
alone deletes nothing and says how many there are.`,
    run: (s, a) => {
      const n = s.dbg.breakpoints().length;
      if (a.length === 0) {
        throw new DebugError(
          n === 0
            ? "no breakpoints to delete"
            : `delete which? (delete N…, or 'delete all' for all ${plural(n, "breakpoint")})`,
        );
      }
      if (a.length === 1 && a[0].toLowerCase() === "all") {
        s.dbg.delete();
        return s.out(`deleted ${plural(n, "breakpoint")}`);
      }
      const ids = a.map(parseCount);
      for (const id of ids) s.dbg.delete(id);
    },
    complete: () => ["all"],
  },
  {
    names: ["disable"],
    group: BREAK,
    usage: "disable [N…]",
    summary: "disable breakpoints",
    help: "Disable the breakpoints numbered N (all of them when none is given).",
    run: (s, a) => {
      if (a.length === 0) s.dbg.enable(undefined, false);
      for (const w of a) s.dbg.enable(parseCount(w), false);
    },
  },
  {
    names: ["enable"],
    group: BREAK,
    usage: "enable [N…]",
    summary: "enable breakpoints",
    help: "Enable the breakpoints numbered N (all of them when none is given).",
    run: (s, a) => {
      if (a.length === 0) s.dbg.enable(undefined, true);
      for (const w of a) s.dbg.enable(parseCount(w), true);
    },
  },
  {
    names: ["condition"],
    group: BREAK,
    usage: "condition N [COND]",
    summary: "stop at breakpoint N only when COND holds",
    help: `Breakpoint N stops only when COND (an expression: eax == 1, [esp+4] > 0x10)
is non-zero. Without COND, it stops every time again.`,
    run: (s, a, rest) => {
      need(a, 1, "condition N [COND]");
      const bp = findBp(s, a[0]);
      const cond = rest.slice(a[0].length).trim();
      if (cond) s.dbg.eval(cond);
      bp.cond = cond;
      s.out(cond ? `breakpoint ${bp.id} stops if ${cond}` : `breakpoint ${bp.id} stops every time`);
    },
  },
  {
    names: ["ignore"],
    group: BREAK,
    usage: "ignore N COUNT",
    summary: "pass breakpoint N the next COUNT times",
    help: `Breakpoint N lets the next COUNT hits (whose condition holds) pass without
stopping; they are still counted in info break.`,
    run: (s, a) => {
      need(a, 2, "ignore N COUNT");
      const bp = findBp(s, a[0]);
      bp.ignore = parseCount(a[1]);
      s.out(
        bp.ignore
          ? `breakpoint ${bp.id} passes its next ${plural(bp.ignore, "hit")}`
          : `breakpoint ${bp.id} stops at its next hit`,
      );
    },
  },
  {
    names: ["display", "disp"],
    group: STATE,
    usage: "display[/F] EXPR",
    summary: "show EXPR after every stop (display/i eip)",
    help: `Show EXPR after every stop, numbered, as print does (display eax,
display/x [esp]) or, with an x format, as x does (display/i eip,
display/4xw esp). 'display' alone shows them all now; undisplay N removes one.`,
    run: (s, a, rest) => {
      if (a.length === 0) {
        const l = s.displayLines();
        return s.out(l.length ? l : ["no displays"]);
      }
      let f = "";
      if (a[0].startsWith("/")) {
        f = a[0].slice(1);
        if (rest.startsWith(a[0])) rest = rest.slice(a[0].length).trim();
      }
      if (!rest) throw new DebugError("usage: display[/F] EXPR");
      if (f && !/^[xduotca]$/.test(f)) parseFmt(f, { count: 1, format: "x", unit: "w" });
      s.dbg.eval(rest);
      s.out(s.addDisplay(f, rest));
    },
    complete: (s) => s.addressWords(),
  },
  {
    names: ["undisplay"],
    group: STATE,
    usage: "undisplay N…|all",
    summary: "stop showing displays",
    help: "Remove the displays numbered N ('undisplay all': every one).",
    run: (s, a) => {
      need(a, 1, "undisplay N…|all");
      if (a.length === 1 && a[0].toLowerCase() === "all") {
        s.displays = [];
        return;
      }
      for (const w of a) {
        const id = parseCount(w);
        const i = s.displays.findIndex((x) => x.id === id);
        if (i < 0) throw new DebugError(`no display number ${id}`);
        s.displays.splice(i, 1);
      }
    },
    complete: () => ["all"],
  },
  {
    names: ["creg"],
    group: STATE,
    usage: "creg",
    summary: "control registers decoded (as Bochs's creg)",
    help: "CR0, CR2, CR3 and CR4, each with its bits by name (as Bochs's creg).",
    run: (s) => s.out(cregText(s.dbg)),
  },
  {
    names: ["page"],
    group: PAGING,
    usage: "page ADDR",
    summary: "how ADDR translates (as Bochs's page; same as translate)",
    help: "The same as translate ADDR (Bochs's name for it).",
    run: (s, a, rest) => s.find("translate")!.run(s, a, rest, "translate"),
    complete: (s) => s.addressWords(),
  },
  {
    names: ["info", "i"],
    group: BREAK,
    usage: "info WHAT",
    summary: "gdb's and Bochs's info: break, registers, tlb, mem, tab, display…",
    help: `info break           breakpoints, watchpoints and catchpoints with hit counts
                     (also: info breakpoints, info watch, info watchpoints)
info registers [R…]  as regs; with names, just those (info registers eax eip)
info all-registers   regs, then regs fpu
info symbols [TEXT]  as symbols
info display         the displays
info tlb             as tlb
info mem, info tab   the page tables in force, as runs (pgdir guest under
                     lguest, pgdir on the bare machine)
info gdt, info idt   as gdt and idt
info lguest          as lguest
info trace           which traces are on and where they go`,
    run: (s, a) => {
      const what = (a[0] ?? "").toLowerCase();
      const more = a.slice(1);
      const alias = (cmd: string, args: string[] = more) =>
        s.find(cmd)!.run(s, args, args.join(" "), cmd);
      if (/^(b|br|break|breakpoints|w|watch|watchpoints)$/.test(what)) {
        return s.out(breakpointsText(s.dbg));
      }
      if (/^(r|reg|regs|registers)$/.test(what)) {
        if (more.length === 0) return s.out(regsText(s.dbg));
        return s.out(
          more.map((r) => {
            const v = s.dbg.getRegister(r.replace(/^\$/, ""));
            return `${r.padEnd(8)}${hex(v)}  ${v}`;
          }),
        );
      }
      if (what === "all-registers") return s.out([...regsText(s.dbg), ...fpuText(s.dbg)]);
      if (/^(s|sym|symbols)$/.test(what)) return alias("symbols");
      if (what === "display") return alias("display", []);
      if (what === "tlb") return alias("tlb", []);
      if (what === "mem" || what === "tab") {
        return alias("pgdir", s.dbg.target.guest ? ["guest", ...more] : more);
      }
      if (what === "gdt" || what === "idt" || what === "lguest") return alias(what, []);
      if (what === "trace") return alias("trace", []);
      if (what === "frame" || what === "stack") return alias("bt", []);
      throw new DebugError(
        "usage: info break|registers|all-registers|symbols|display|tlb|mem|tab|gdt|idt|lguest|trace",
      );
    },
    complete: () => [
      "break",
      "registers",
      "all-registers",
      "symbols",
      "display",
      "tlb",
      "mem",
      "tab",
      "gdt",
      "idt",
      "lguest",
      "trace",
    ],
  },
  {
    names: ["regs", "r", "registers"],
    group: STATE,
    usage: "regs [fpu]",
    summary: "registers (regs fpu: the x87 unit)",
    help: `General registers; EIP with its symbol; EFLAGS decoded; each segment register
with its descriptor cache (base, limit, type, DPL, size); CR0-CR4 decoded;
GDTR, IDTR, CPL and the instruction count. 'regs fpu' shows the x87 unit:
control/status/tag words and ST(0)-ST(7), as values and raw 80-bit.`,
    run: (s, a) => {
      if (a[0] === "fpu") return s.out(fpuText(s.dbg));
      if (a.length) throw new DebugError("usage: regs [fpu]");
      s.out(regsText(s.dbg));
    },
    complete: () => ["fpu"],
  },
  {
    names: ["print", "p", "inspect"],
    group: STATE,
    usage: "print[/F] EXPR",
    summary: "evaluate an expression (p/x, p/d, p/t…)",
    help: `Evaluate EXPR and print its value: hex, then decimal (and signed when
negative), then the symbol it falls in. EXPR takes registers, symbols, hex
numbers (0n10 decimal), [ADDR] for the dword at ADDR, and C's operators with
C's precedence: * / % + - << >> < <= > >= == != & ^ | && || ! ~.
/F prints in one format: x hex, d signed, u unsigned, o octal, t binary,
c character, a address with symbol. Examples:
  p eax + 4 * ecx          p/t eflags & 0x3000        p [esp+4] == 0n42`,
    run: (s, a, rest) => {
      let f = "";
      if (a[0]?.startsWith("/")) {
        f = a[0].slice(1);
        if (rest.startsWith(a[0])) rest = rest.slice(a[0].length).trim();
      }
      if (!rest) throw new DebugError("usage: print[/F] EXPR");
      s.out(printValue(s.dbg, s.dbg.eval(rest), f));
    },
    complete: (s) => s.addressWords(),
  },
  {
    names: ["set"],
    group: STATE,
    usage: "set REG VALUE | set byte|word|dword [phys] ADDR VALUE | set syntax S",
    summary: "change a register, memory, or a setting",
    help: `set REG VALUE                 eax, ax, al, eip, eflags, cr3…, or one flag: set zf 1
set byte|word|dword ADDR VAL  write linear memory (set dword phys PADDR VAL: physical)
set syntax intel|att|nasm|masm   disassembly syntax (also: set disassembly-flavor att)
set max-lines N               the most lines a listing prints (default 500); the
                              rest are counted on one '… N more lines' line
VALUE is an expression like ADDR: hex by default (0n10 is decimal).`,
    run: (s, a, _rest) => {
      const d = s.dbg;
      need(a, 2, "set REG VALUE");
      const k = a[0].toLowerCase();
      if (k === "syntax" || k === "disassembly-flavor") return setSyntax(s, a[1]);
      if (k === "max-lines") {
        const n = parseCount(a[1]);
        if (n < 1 || n > 100000) throw new DebugError("max-lines is 1 to 100000");
        s.maxLines = n;
        return s.out(`max-lines ${n}`);
      }
      const sizes: Record<string, number> = { byte: 1, word: 2, dword: 4 };
      if (k in sizes) {
        const phys = a[1] === "phys";
        const rest = a.slice(phys ? 2 : 1);
        need(rest, 2, `set ${k} [phys] ADDR VALUE`);
        const addr = d.eval(rest.slice(0, -1).join(" ")), v = d.eval(rest[rest.length - 1]);
        const b = new Uint8Array(sizes[k]);
        for (let i = 0; i < b.length; i++) b[i] = (v >>> (8 * i)) & 0xff;
        if (phys) d.writePhys(addr, b);
        else d.writeLinear(addr, b);
        return;
      }
      const v = d.eval(a.slice(1).join(" "));
      d.setRegister(k, v);
      const now = d.getRegister(k);
      const digits = /^[a-d][lh]$/.test(k) ? 2 : /^[a-ds][xip]$|^[sd]i$|^bp$/.test(k) ? 4 : 8;
      s.out(`${k} = ${k.length === 2 && k.endsWith("f") ? String(now) : hex(now, digits)}`);
    },
    complete: (s, w) =>
      w.length <= 1
        ? ["byte", "word", "dword", "syntax", "disassembly-flavor", "max-lines", ...REGISTER_NAMES]
        : w[0].startsWith("syntax") || w[0].startsWith("disassembly")
        ? [...SYNTAXES]
        : s.addressWords(),
  },
  {
    names: ["x"],
    group: STATE,
    usage: "x/NFU ADDR",
    summary: "examine linear memory, as gdb's x (x/8xw esp, x/4i eip, x/s)",
    help: `Examine N units at linear ADDR, as the guest sees it (through the guest's
page tables under lguest), as gdb's x does. N is decimal; then a format and
a unit, in either order, each remembered for the next x:
  format  x hex  d signed  u unsigned  o octal  t binary  c char
          a address with its symbol  i instructions  s NUL-terminated strings
  unit    b byte  h 16-bit  w 32-bit  g 64-bit
Defaults at the start: x and w. 'x' alone continues where the last one
stopped. Examples: x/16xb eip, x/4xw esp, x/8i eip, x/s 0x1000, x/2a esp.`,
    run: xCommand(false),
  },
  {
    names: ["xp"],
    group: STATE,
    usage: "xp/NFU PADDR",
    summary: "examine physical memory",
    help: `Examine N units at physical PADDR: guest RAM, and beyond it the host's own
pages (the shadow page tables, the GDT the CPU uses).`,
    run: xCommand(true),
  },
  {
    names: ["disasm", "disas"],
    group: STATE,
    usage: "disasm [ADDR] [N]",
    summary: "disassemble N instructions (default 10 at EIP)",
    help: `Disassemble N (decimal, default 10) instructions at linear ADDR (default: the
next instruction; 'disasm' again continues). '=>' marks EIP, '*' a breakpoint.
'syntax att' switches to AT&T (intel, nasm, masm also).`,
    run: (s, a) => {
      const d = s.dbg;
      let n = 10, addr: number;
      if (a.length >= 2 && /^(\d+|0n\d+)$/.test(a[a.length - 1])) n = parseCount(a.pop()!);
      if (a.length) addr = d.eval(a.join(" "));
      else addr = s.lastDisasm || d.pc();
      if (n < 1 || n > 1000) throw new DebugError("N must be 1 to 1000");
      const lines = d.disasm(addr, n);
      s.out(disasmText(d, lines));
      const last = lines[lines.length - 1];
      s.lastDisasm = last ? (last.addr + last.len) >>> 0 : 0;
    },
    complete: (s) => s.addressWords(),
  },
  {
    names: ["syntax"],
    group: STATE,
    usage: "syntax intel|att|nasm|masm",
    summary: "disassembly syntax",
    help: "Choose the disassembly syntax: intel (default), att (GNU as), nasm or masm.",
    run: (s, a) => {
      if (!a[0]) return s.out(`syntax ${s.dbg.syntax}`);
      setSyntax(s, a[0]);
    },
    complete: () => [...SYNTAXES],
  },
  {
    names: ["stack"],
    group: STATE,
    usage: "stack [N]",
    summary: "N dwords at SS:ESP (default 16)",
    help:
      "Show N (decimal, default 16) dwords from the top of the stack, with symbols and EBP marked.",
    run: (s, a) =>
      s.out(stackText(s.dbg, a[0] ? parseCount(a[0]) : 16, Math.max(1, s.maxLines - 2))),
  },
  {
    names: ["bt", "backtrace", "where"],
    group: STATE,
    usage: "bt",
    summary: "frame-pointer backtrace",
    help:
      "Follow the EBP chain ([ebp] = caller's ebp, [ebp+4] = return address), at most 32 frames; with ebp 0, the caller found on the stack as finish finds it.",
    run: (s) => s.out(backtrace(s)),
  },
  {
    names: ["gdt"],
    group: STATE,
    usage: "gdt",
    summary: "the GDT (under lguest: the guest's, as the host holds it)",
    help: `Under lguest: the guest's GDT entries as the host holds them (sent with
LHCALL_LOAD_GDT_ENTRY and LOAD_TLS, fixed up: DPL 0 becomes 1), and which
entries are the host's own. On the bare machine: the CPU's GDT.`,
    run: (s) => s.out(s.dbg.target.guest ? guestGdtText(s.dbg.target.guest) : cpuGdtText(s.dbg)),
  },
  {
    names: ["idt"],
    group: STATE,
    usage: "idt",
    summary: "the IDT (under lguest: the guest's gates, as the host holds them)",
    help: `Under lguest: the guest's interrupt and trap gates as the host holds them
(LHCALL_LOAD_IDT_ENTRY): the host delivers traps and interrupts through them
in software. On the bare machine: the CPU's IDT.`,
    run: (s) => s.out(s.dbg.target.guest ? guestIdtText(s.dbg.target.guest) : cpuIdtText(s.dbg)),
  },
  {
    names: ["hcall", "hcall!"],
    group: LGUEST,
    usage: "hcall NAME|NR [ARG…]",
    summary: "issue a hypercall by hand and show what it changed",
    help: `Issue hypercall NAME (or number) with up to four arguments (hex expressions),
as if the guest had made it now (the async ring is drained first, as for any
synchronous call), then list every piece of host state it changed: registers,
page-table slots and shadow entries, IDT/GDT entries, lguest_data fields, the
clock event. A call the host refuses kills the guest, as it would for the
guest itself. Before the guest's own LHCALL_LGUEST_INIT every other call
kills it, so hcall refuses those; 'hcall! …' makes the call anyway. Examples:
  hcall set_clockevent 0n1000      arm the timer 1000 ns ahead
  hcall flush_tlb 1                drop every shadow mapping
  hcall new_pgtable 0x105000       switch to the tables at 0x105000`,
    run: (s, a, _rest, word) => {
      const d = s.dbg;
      needGuest(d, "hcall");
      need(a, 1, "hcall NAME|NR [ARG…]");
      if (a.length > 5) throw new DebugError("at most four arguments");
      s.checkIdle();
      const nr = parseHcall(a[0]);
      const args = a.slice(1).map((w) => d.eval(w));
      const g = d.target.guest!;
      if (word === "hcall" && g.lguestData < 0 && nr !== LHCALL.LGUEST_INIT && !g.dead) {
        throw new DebugError(
          `the guest has not made LHCALL_LGUEST_INIT yet: the host would kill it for ${
            hypercallName(nr)
          } ` +
            "(step past its INIT first, or force it with hcall!)",
        );
      }
      const r = d.hypercall(nr, args);
      const lines = [
        `${r.call}: ${
          r.died ? `the guest died: ${r.died}` : r.changes.length ? "changed" : "changed nothing"
        }`,
      ];
      lines.push(...r.changes.map((c) => "  " + c));
      s.out(lines);
    },
    complete: () => HCALL_SHORT,
  },
  {
    names: ["lguest"],
    group: LGUEST,
    usage: "lguest",
    summary: "lguest_data, the clock event and the vCPU",
    help: `The guest's struct lguest_data (irq_enabled, blocked and pending interrupts,
time, the async hypercall ring and what is queued in it, kernel_address…)
and the host's side of the vCPU: halted or running, pending IRQs, the clock
event, virtual time, TS, the kernel stack from SET_STACK, linear mode.`,
    run: (s) => s.out(lguestText(needGuest(s.dbg, "lguest"))),
  },
  {
    names: ["devices"],
    group: LGUEST,
    usage: "devices",
    summary: "the PCI slots: each virtio function, its status, features and queues",
    help: `The launcher's PCI devices by slot: each virtio function's identity, IRQ
and BAR0 window; the driver's status bits (ACKNOWLEDGE, DRIVER, FEATURES_OK,
DRIVER_OK); the features offered and accepted; the ISR; and each queue's size,
ring addresses, the next avail index the device will take and the used index.`,
    run: (s) => {
      const l = s.dbg.target.launcher;
      if (!l) throw new DebugError("devices needs the lguest launcher (this is the bare machine)");
      s.out(devicesText(l));
    },
  },
  {
    names: ["hcalls"],
    group: LGUEST,
    usage: "hcalls [N]",
    summary: "the last N hypercalls (default 20)",
    help:
      "The host's hypercall log, newest last, with instruction counts; async ones came through the ring.",
    run: (s, a) =>
      s.out(hcallsText(needGuest(s.dbg, "hcalls").hcallLog, a[0] ? parseCount(a[0]) : 20)),
  },
  {
    names: ["pgdirs"],
    group: PAGING,
    usage: "pgdirs",
    summary: "the host's shadow page directories",
    help: `The shadow page directories the host caches: which guest page directory each
shadows, which is current (in cr3), how many directory entries each has
filled in the user and kernel halves, and whether the host is still in
linear mode (before the guest's first LHCALL_NEW_PGTABLE).`,
    run: (s) => s.out(pgdirsText(needGuest(s.dbg, "pgdirs"))),
  },
  {
    names: ["pgdir"],
    group: PAGING,
    usage: "pgdir guest|shadow [SLOT] [FROM [TO]] | pgdir [PADDR]",
    summary: "dump a page directory and its tables",
    help: `pgdir guest [SLOT]    the guest's page directory (of the current slot, or SLOT)
pgdir shadow [SLOT]   the host's shadow of it
pgdir PADDR           any page directory at physical PADDR
pgdir                 bare machine: the one in cr3
Each present directory entry is listed with its address, value and flags,
then its page table as runs: consecutive entries mapping consecutive frames
with equal flags are one line, e.g.
  0xc0000000-0xc03fffff -> 0x00000000-0x003fffff  P RW A D  1024 ptes
Add FROM [TO] (linear, hex) to show only that range.`,
    run: (s, a) => {
      const d = s.dbg, g = d.target.guest;
      const which = a[0]?.toLowerCase();
      if (which === "guest" || which === "shadow") {
        const gg = needGuest(d, `pgdir ${which}`);
        const slot = parseSlot(a[1]);
        const from = a[2] ? d.eval(a[2]) : undefined;
        const to = a[3] ? d.eval(a[3]) : from !== undefined ? from : undefined;
        s.out(
          which === "guest"
            ? guestPgdirText(gg, slot, from, to)
            : shadowPgdirText(gg, slot, from, to),
        );
        return;
      }
      const cpu = d.cpu;
      const root = a[0] ? d.eval(a.join(" ")) : cpu.cr3;
      const pae = !g && (cpu.cr4 & 0x20) !== 0;
      if (!a[0] && !g && (cpu.cr0 & 0x80000000) === 0) {
        return s.out("paging is off: linear addresses are physical (cr3 is not used)");
      }
      s.out(dumpTables(d.target.read32, root, {
        title: `page directory at physical ${hex(root)}${
          !a[0] && g ? " (cr3: the current shadow)" : !a[0] ? " (cr3)" : ""
        }`,
        mode: { pae, pse: g ? false : (cpu.cr4 & 0x10) !== 0 },
      }));
    },
    complete: () => ["guest", "shadow"],
  },
  {
    names: ["translate", "tr"],
    group: PAGING,
    usage: "translate VADDR",
    summary: "walk guest tables and shadow side by side, with the TLB entry",
    help: `Translate a linear address. Under lguest: the guest's page-directory and
page-table entries (address, value, flags) next to the host's shadow entries,
the physical address each gives, why one is missing (not mapped by the
guest, or not shadowed yet — the next access faults and the host fills it),
and the CPU's TLB entries for the page (read and write: physical page and
sup/user permission). On the bare machine: the CPU's tables and the TLB.`,
    run: (s, _a, rest) => {
      const d = s.dbg;
      if (!rest) throw new DebugError("usage: translate VADDR");
      const v = d.eval(rest);
      const sym = d.symbolize(v) ?? undefined;
      const g = d.target.guest;
      if (g) return s.out(translateText(g, v, sym));
      s.out(bareTranslate(s, v));
    },
    complete: (s) => s.addressWords(),
  },
  {
    names: ["tlb"],
    group: PAGING,
    usage: "tlb",
    summary: "the CPU's live TLB entries",
    help: `Every live entry of the CPU's flat TLB (one slot per 4 KiB linear page for
reads, one for writes), as runs of consecutive pages: linear range, physical
range, read and write permission (sup, sup+user). A page is cached for
writing only once it is dirty and writable.`,
    run: (s) => s.out(tlbText(s.dbg)),
  },
  {
    names: ["trace"],
    group: MISC,
    usage: "trace insn|hcall|trap|pf on|off [FILE]",
    summary: "trace instructions, hypercalls, traps, page faults",
    help: `trace insn on [FILE]   every instruction as it executes (single-steps: slow,
                       exact), with its instruction count
trace hcall on [FILE]  every hypercall the host runs (sync and async)
trace trap on [FILE]   every trap the host (or bare CPU) sees
trace pf on [FILE]     every page fault the host's demandPage handles, and what
                       it did (filled the shadow, reflected it, MMIO)
trace KIND off         stop; 'trace' alone shows what is on
Lines go to the terminal, or are appended to FILE; each starts with [icount].`,
    run: (s, a) => {
      const d = s.dbg;
      const kinds: TraceKind[] = ["insn", "hcall", "trap", "pf"];
      if (a.length === 0) {
        return s.out(kinds.map((k) => `trace ${k.padEnd(5)} ${s.traceWhere(k)}`));
      }
      const kind = a[0] as TraceKind;
      if (!kinds.includes(kind)) {
        throw new DebugError("usage: trace insn|hcall|trap|pf on|off [FILE]");
      }
      const on = onOff(a[1]);
      if (!on) {
        d.setTrace(kind, null);
        s.closeTrace(kind);
        return s.out(`trace ${kind} off`);
      }
      if (kind !== "insn" && kind !== "trap") needGuest(d, `trace ${kind}`);
      const sink = s.traceTo(kind, a[2]);
      d.setTrace(kind, sink);
      s.out(`trace ${kind} ${s.traceWhere(kind)}`);
    },
    complete: (
      _s,
      w,
    ) => (w.length <= 1 ? ["insn", "hcall", "trap", "pf"] : w.length === 2 ? ["on", "off"] : []),
  },
  {
    names: ["symbols", "syms"],
    group: MISC,
    usage: "symbols [FILE | TEXT]",
    summary: "load a System.map or ELF symbol table; list symbols (containing TEXT)",
    help: `symbols FILE    load FILE's symbols: a System.map ('c1000000 T startup_32'
                lines, as the kernel build writes it) or an ELF's symbol table
                (a vmlinux beside its bzImage). From then on they name addresses
                in disasm, x, bt, stack, breakpoints, and work in expressions.
symbols TEXT    list the symbols whose names contain TEXT, by address
symbols         list them all
repl.ts loads KERNEL.map by itself when it lies beside the kernel file
(deno task asm writes one beside each example).`,
    run: (s, a, rest) => {
      if (rest && existsSync(rest) && statSync(rest).isFile()) return s.out(s.loadSymbols(rest));
      const syms = [...s.dbg.symbols].filter(([n]) => !a[0] || n.includes(a[0]))
        .sort((x, y) => (x[1] >>> 0) - (y[1] >>> 0));
      if (s.dbg.symbols.size === 0) {
        return s.out("no symbols (symbols FILE loads a System.map or an ELF's symbol table)");
      }
      const shown = syms.map(([n, v]) => `${hex(v)}  ${n}`);
      s.out(shown.length ? shown : [`no symbol contains '${a[0]}'`]);
    },
  },
  {
    names: ["echo"],
    group: MISC,
    usage: "echo TEXT",
    summary: "print TEXT (for scripts)",
    help: "Print TEXT as it is.",
    run: (s, _a, rest) => s.out(rest),
  },
  {
    names: ["help", "h", "?"],
    group: MISC,
    usage: "help [COMMAND|numbers]",
    summary: "this list, or one command in detail",
    help:
      "help lists the commands; help COMMAND explains one; help numbers explains how to write numbers.",
    run: (s, a) => s.out(helpLines(a[0])),
    complete: () => [...COMMANDS.map((c) => c.names[0]), "numbers"],
  },
  {
    names: ["quit", "q", "exit"],
    group: MISC,
    usage: "quit [STATUS]",
    summary: "leave (exit status STATUS, default 0)",
    help: "Leave the debugger. The exit status is STATUS (decimal), or 0.",
    run: (s, a) => {
      s.quitStatus = a[0] ? parseCount(a[0]) : 0;
      s.o.onQuit?.(s.quitStatus);
    },
  },
];

function setSyntax(s: Session, w: string | undefined): void {
  const v = (w ?? "").toLowerCase() as Syntax;
  if (!SYNTAXES.includes(v)) throw new DebugError(`syntax is one of ${SYNTAXES.join(", ")}`);
  s.dbg.syntax = v;
  s.out(`syntax ${v}`);
}

/** `print`'s text for value `v` in format `f` ("" for all of hex, decimal and symbol). */
function printValue(d: Debugger, v: number, f: string): string {
  v >>>= 0;
  switch (f) {
    case "":
      return `= ${hex(v)} (${v}${v >= 0x80000000 ? `, ${v | 0}` : ""})${
        d.symbolize(v) ? ` <${d.symbolize(v)}>` : ""
      }`;
    case "x":
      return `= ${hexs(v)}`;
    case "d":
      return `= ${v | 0}`;
    case "u":
      return `= ${v}`;
    case "o":
      return `= 0${v.toString(8)}`;
    case "t":
      return `= ${v.toString(2)}`;
    case "c":
      return `= ${v & 0xff} ${charLiteral(v & 0xff)}`;
    case "a":
      return `= ${d.addrText(v)}`;
  }
  throw new DebugError(`bad format '/${f}': one of x d u o t c a (p/x eax)`);
}

/** Breakpoint number `w`, or a one-line error. */
function findBp(s: Session, w: string): Breakpoint {
  const id = parseCount(w);
  const bp = s.dbg.breakpoints().find((b) => b.id === id);
  if (!bp) throw new DebugError(`no breakpoint number ${id}`);
  return bp;
}

/** `creg`: CR0, CR2, CR3, CR4 with their bits named. */
function cregText(d: Debugger): string[] {
  const c = d.cpu;
  return [
    `cr0 ${hex(c.cr0)}  [ ${cr0Text(c.cr0) || "-"} ]`,
    `cr2 ${hex(c.cr2)}  (the last page-fault address)`,
    `cr3 ${hex(c.cr3)}  (page directory at physical ${hex(c.cr3 & ~0xfff)}${
      c.cr3 & 0x18 ? `, ${c.cr3 & 8 ? "PWT " : ""}${c.cr3 & 0x10 ? "PCD" : ""}`.trimEnd() : ""
    })`,
    `cr4 ${hex(c.cr4)}  [ ${cr4Text(c.cr4) || "-"} ]`,
  ];
}

function describeBp(s: Session, bp: ReturnType<Debugger["breakAt"]>): string {
  const d = s.dbg;
  switch (bp.kind) {
    case "break":
      return d.addrText(bp.addr);
    case "pbreak":
      return `physical ${hex(bp.addr)}`;
    case "watch":
      return `${bp.access === "w" ? "writes to" : bp.access === "r" ? "reads of" : "accesses to"} ${
        bp.phys ? "physical " : ""
      }${hex(bp.addr)}-${hex(bp.addr + bp.len - 1)}`;
    case "hcall":
      return `hypercall ${hypercallName(bp.nr)} (${bp.nr})`;
    case "trap":
      return `trap ${bp.nr} ${vectorName(bp.nr)}`;
    default:
      return `instruction count ${bp.icount}`;
  }
}

function backtrace(s: Session): string[] {
  const d = s.dbg, c = d.cpu;
  const out = [`#0  ${d.addrText(d.pc())}`];
  let ebp = c.regs[5] >>> 0;
  const ssBase = c.sbase[SS];
  if (ebp === 0) {
    // No frame pointer: the caller the stack shows (as finish finds it), and no further.
    const f = d.callerFrame();
    if (f) out.push(`#1  ${d.addrText(f.ret)}  (return address at ${hex(f.slot)})`);
    return out;
  }
  for (let i = 1; i < 32 && ebp !== 0; i++) {
    let next: number, ret: number;
    try {
      const b = d.readLinear((ssBase + ebp) >>> 0, 8);
      const dv = new DataView(b.buffer);
      next = dv.getUint32(0, true);
      ret = dv.getUint32(4, true);
    } catch (e) {
      out.push(`    (${(e as Error).message})`);
      break;
    }
    out.push(`#${i}  ${d.addrText((c.sbase[CS] + ret) >>> 0)}  (frame at ebp ${hex(ebp)})`);
    if (next <= ebp) break;
    ebp = next;
  }
  return out;
}

function bareTranslate(s: Session, v: number): string[] {
  const d = s.dbg, c = d.cpu;
  const t = d.target as BareTarget;
  const sym = d.symbolize(v);
  const page = v >>> 12;
  const tlb = `TLB      read: ${tlbEntryText(c.tlbR[page], v)}    write: ${
    tlbEntryText(c.tlbW[page], v)
  }`;
  if ((c.cr0 & 0x80000000) === 0) {
    return [`${hex(v)}${sym ? ` <${sym}>` : ""}: paging is off: physical = linear`, tlb];
  }
  const pae = t.mode.pae;
  const where = pae
    ? `PDPT index ${v >>> 30}, PDE index ${hexs((v >>> 21) & 0x1ff)}, PTE index ${
      hexs((v >>> 12) & 0x1ff)
    }`
    : `PDE index ${hexs(v >>> 22)}, PTE index ${hexs((v >>> 12) & 0x3ff)}`;
  const w = walk(t.read32, c.cr3, v, t.mode);
  const rows: string[][] = [["", `CPU's tables (cr3 ${hex(c.cr3)}${pae ? ", PAE" : ""})`]];
  for (const st of w.steps) rows.push([st.level, stepText(st)]);
  rows.push([
    "physical",
    w.pa !== null
      ? hex(w.pa) + (w.pageSize > 4096 ? ` (${w.pageSize >> 20} MiB page)` : "")
      : `not mapped: ${w.why}`,
  ]);
  return [
    `${hex(v)}${sym ? ` <${sym}>` : ""}: ${where}, offset ${hexs(v & 0xfff)}`,
    ...columns(rows),
    tlb,
  ];
}

/**
 * The help text: the command list by group, or one command (`topic`) in
 * detail, or `numbers`. Throws DebugError for an unknown command.
 */
export function helpLines(topic?: string): string[] {
  if (topic === "numbers") {
    return [
      "Addresses and values are hexadecimal: c0001000, 0xc0001000 and 0n3221229568 are the same.",
      "Decimal is written with 0n (as in WinDbg): 0n10 is ten.",
      "Counts (step 10, x/16b, disasm eip 20, break icount 5000, stack 8) are decimal, as in gdb;",
      "0x10 there is hex.",
      "An expression combines numbers, registers (eax, $esp, eip), symbols (start_kernel) and",
      "[ADDR], the dword at ADDR, with C's operators and precedence (* / % + - << >> < <= > >=",
      "== != & ^ | && || ! ~), unsigned 32-bit: x/4xw [esp+4], p eax + 4*ecx, break f if eax == 1.",
    ];
  }
  if (topic) {
    const c = COMMANDS.find((c) => c.names.includes(topic.toLowerCase()));
    if (!c) throw new DebugError(`no command '${topic}' (help lists them)`);
    const aliases = c.names.length > 1 ? `  (also: ${c.names.slice(1).join(", ")})` : "";
    return [`${c.usage}${aliases}`, "", ...c.help.split("\n")];
  }
  const out: string[] = [];
  const groups = [...new Set(COMMANDS.map((c) => c.group))];
  for (const g of groups) {
    out.push(`${g}:`);
    for (const c of COMMANDS.filter((c) => c.group === g)) {
      const u = "  " + c.usage;
      if (u.length < 28) out.push(u.padEnd(30) + c.summary);
      else out.push(u, " ".repeat(30) + c.summary);
    }
  }
  out.push("help COMMAND for details; help numbers for how to write numbers (hex by default).");
  out.push(
    "Ctrl-] stops a running guest (Ctrl-C too while its console takes no input);",
    "Tab completes commands, registers, symbols, hypercall names.",
  );
  return out;
}

/** Hypercalls by short name, for completion and docs. */
export const HYPERCALL_NAMES: readonly string[] = HCALL_SHORT;
