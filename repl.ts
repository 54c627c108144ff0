/**
 * lguest.ts's front end: the launcher's command line, then the REPL — or,
 * with `--run`, a run to the end.
 *
 *     deno run -A repl.ts [options] <mem-MiB> <kernel> [options] [kernel args…]
 *     bun repl.ts [options] <mem-MiB> <kernel> [options] [kernel args…]
 *
 * Without `--run` the guest is loaded and stopped at its first instruction,
 * and the debugger's command language (lib/debug/session.ts) takes over: from
 * the terminal (line editing, Tab completion, history in ~/.lguest_ts_history,
 * Ctrl-C to stop a running guest), from a file (`-x FILE`), from the command
 * line (`-c "cmd; cmd"`) or from a pipe. The guest's console shares the
 * terminal: its output is read as a stream from the machine's bounded console
 * log and printed as it arrives while the guest runs (whole lines above a
 * waiting prompt, which is redrawn after them).
 *
 * With `--run` it boots the kernel under the lguest host and runs it to its
 * end: the guest's console goes to stdout; how it ended, the retired-instruction
 * count and MIPS go to stderr (on a terminal, a status line refreshed once a
 * second while it runs); the exit status is 0 for a power-off, 130 after
 * Ctrl-C, 4 for a reboot request and 1 for anything else (REPL_USAGE lists
 * them all). Console input comes from `--console-input=FILE` (typed at the
 * guest's idle points, deterministic), `--input=FILE` (all of it from boot)
 * or, on a terminal, the keyboard: the guest owns the terminal while it runs
 * (in the REPL too), and Ctrl-] takes it back. With `--bare --run` it runs
 * the CPU alone (COM1 to stdout).
 *
 * @module
 */

import { appendFileSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { openDisk } from "./lib/boot/disk_file.ts";
import { homedir } from "node:os";
import { join } from "node:path";
import * as readline from "node:readline";
import process from "node:process";
import { BootError } from "./lib/boot/errors.ts";
import { type LauncherArgs, type NetArg, parseLauncherArgs, USAGE } from "./lib/boot/cmdline.ts";
import type { NetBackend } from "./lib/devices/net_backend.ts";
import { NetResponder } from "./lib/devices/net_responder.ts";
import { NetSocket } from "./lib/devices/net_socket.ts";
import { Launcher } from "./lib/boot/launcher.ts";
import { ConsoleWatch, endReason } from "./lib/boot/diagnosis.ts";
import type { ConsoleLog, ConsoleReader } from "./lib/boot/console_log.ts";
import { BareMachine } from "./lib/boot/bare.ts";
import { isElf, parseElf } from "./lib/boot/elf.ts";
import { Debugger } from "./lib/debug/debugger.ts";
import { helpLines, Session } from "./lib/debug/session.ts";
import { BareTarget, LguestTarget, type Target } from "./lib/debug/target.ts";
import { guestPhase, statusLine } from "./lib/debug/progress.ts";
import pkg from "./package.json" with { type: "json" };

/** What the REPL adds to the launcher's usage text. */
export const REPL_USAGE = `
Without --run the guest stops at its first instruction and the REPL starts:
  from a terminal        line editing, Tab completion (commands, registers,
                         symbols, hypercall names), history kept in
                         ~/.lguest_ts_history; while the guest runs it owns
                         the terminal: keys go to its console (Ctrl-C too, once
                         its driver takes input), Ctrl-] returns to the prompt
  -x FILE, -c "A; B"     the commands are run (each echoed after the prompt),
                         then repl.ts exits: status 0, or 1 if a command failed
                         ('quit N' exits with N); -i stays in the REPL after them
  stdin not a terminal   commands are read from it, one per line, the same way
Addresses are hex (0n10 is decimal ten); counts are decimal (step 10, x/16b).
An empty line repeats step or next.

--run on a terminal shows a status line on stderr, refreshed once a second:
instructions, MIPS, virtual time and the guest's phase (decompressing, starting,
linear mode, kernel). Ctrl-C stops the guest and prints the summary.

Exit status:
  0      --run: the guest powered off; --bare --run: it halted (cli; hlt);
         the REPL: every command succeeded, or 'quit'
  1      --run: the guest died, crashed or halted for good, or --max-insns ran
         out; --bare --run: an unhandled exception or a shutdown;
         the REPL (-x, -c, a pipe): a command failed
  2      bad arguments, or a kernel/initrd file that cannot be used
  3      --bare --run: --max-insns ran out
  4      --run: the guest asked to reboot (it is not restarted: run it again)
  N      the REPL: 'quit N'; --bare --run: (V << 1) | 1 for a write of V to
         port 0x501 (QEMU's isa-debug-exit)
  130    --run: stopped by Ctrl-C, or Ctrl-] when the guest owns the terminal

REPL commands:`;

function fail(message: string): never {
  process.stderr.write(`repl.ts: ${message}\n`);
  process.exit(2);
}

function readFile(path: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(path));
  } catch (e) {
    const code = (e as { code?: string }).code;
    throw new BootError(`${path}: ${code === "ENOENT" ? "no such file" : "cannot read"}`);
  }
}

/** Entry point: parse, load, then run or debug. Resolves to the process exit status. */
export async function main(argv: string[]): Promise<number> {
  const args = parseLauncherArgs(argv);
  if (args.version) {
    process.stdout.write(`lguest-ts ${pkg.version}\n`);
    return 0;
  }
  if (args.help) {
    process.stdout.write(
      [USAGE, REPL_USAGE, ...helpLines().map((l) => "  " + l)].join("\n") + "\n",
    );
    return 0;
  }
  const kernel = readFile(args.kernel);
  if (args.run) return await (args.bare ? runBare(args, kernel) : runLguest(args, kernel));
  return await repl(args, kernel);
}

/** Instructions run between looks at the clock, the status line and Ctrl-C in --run. */
const RUN_SLICE = 1 << 22;

/**
 * The one-line status of a --run on a terminal: written to stderr about once
 * a second, erased before the guest prints and at the end. Off when stderr is
 * not a terminal. It is not drawn while the guest's last line is unfinished on
 * the same terminal, so no guest output is overwritten.
 */
class RunStatus {
  private shown = false;
  private last = performance.now();
  private guestMidLine = false;
  private interrupted = false;
  private readonly onSigint = () => (this.interrupted = true);
  readonly t0 = performance.now();
  constructor(private readonly tty = process.stderr.isTTY === true) {
    process.on("SIGINT", this.onSigint);
  }

  /** Ctrl-C was pressed (the run stops at the end of its slice). */
  get stopped(): boolean {
    return this.interrupted;
  }

  /** Seconds since the run started. */
  get seconds(): number {
    return (performance.now() - this.t0) / 1000;
  }

  /** A guest console byte: erase the status line first, then print it. */
  guestByte(b: number): void {
    this.clear();
    process.stdout.write(String.fromCharCode(b));
    this.guestMidLine = b !== 10;
  }

  /** Redraw the status line if a second has passed. */
  tick(text: () => string): void {
    if (!this.tty || (this.guestMidLine && process.stdout.isTTY)) return;
    const now = performance.now();
    if (now - this.last < 1000) return;
    this.last = now;
    const cols = Math.max(20, (process.stderr.columns ?? 80) - 1);
    process.stderr.write(`\r\x1b[K[${text()}]`.slice(0, cols + 5));
    this.shown = true;
  }

  /** Erase the status line. */
  clear(): void {
    if (!this.shown) return;
    process.stderr.write("\r\x1b[K");
    this.shown = false;
  }

  /** The end: erase the line, stop listening for Ctrl-C. */
  done(): void {
    this.clear();
    process.off("SIGINT", this.onSigint);
  }
}

/** Let the event loop in (Ctrl-C, output) between slices of a run. */
function breathe(): Promise<void> {
  return new Promise((r) => setTimeout(r, 0));
}

/** Run the CPU alone to its end (or Ctrl-C); returns the exit status. */
async function runBare(args: LauncherArgs, kernel: Uint8Array): Promise<number> {
  const st = new RunStatus();
  const m = new BareMachine(args.memMiB, (b) => st.guestByte(b));
  m.loadKernel(kernel, args.kernel, args.kernelArgs.join(" "));
  const cpu = m.cpu;
  let r;
  try {
    for (;;) {
      const limit = args.maxInsns > 0
        ? Math.min(args.maxInsns, cpu.icount + RUN_SLICE)
        : cpu.icount + RUN_SLICE;
      r = m.run(limit);
      const mine = r.reason === "limit" && !(args.maxInsns > 0 && cpu.icount >= args.maxInsns);
      if (!mine) break;
      if (st.stopped) {
        r = { ...r, status: 130, message: "interrupted (Ctrl-C)" };
        break;
      }
      st.tick(() =>
        statusLine({ instructions: cpu.icount, seconds: st.seconds, phase: "bare machine" })
      );
      await breathe();
    }
  } finally {
    st.done();
  }
  const secs = st.seconds, n = cpu.icount;
  const mips = secs > 0 ? (n / secs / 1e6).toFixed(1) : "-";
  process.stderr.write(`[${r.message}: ${n} instructions in ${secs.toFixed(3)} s, ${mips} MIPS]\n`);
  return r.status;
}

/**
 * The packet backend `--net=` names. A socket link comes up in the
 * background (frames sent before are dropped); when it fails or goes down the
 * reason is printed once on stderr, and the guest runs on unplugged.
 */
function netBackend(n: NetArg): NetBackend {
  if (n.kind === "responder") return new NetResponder();
  const s = new NetSocket(n.mode, n.port);
  s.ready.then(
    () => process.stderr.write(`[net: ${s.name}: link up]\n`),
    () => process.stderr.write(`[net: ${s.error}]\n`),
  );
  return s;
}

function launch(
  args: LauncherArgs,
  kernel: Uint8Array,
  out?: (b: number) => void,
  consoleScript?: Uint8Array,
): Launcher {
  return new Launcher({
    memMiB: args.memMiB,
    kernel,
    kernelName: args.kernel,
    initrd: args.initrd ? readFile(args.initrd) : undefined,
    initrdName: args.initrd,
    block: args.blocks.map((b) => openDisk(b.path, b.readOnly)),
    rngSeed: args.rngSeed,
    net: args.net ? netBackend(args.net) : undefined,
    netMac: args.net?.mac,
    deviceOrder: args.deviceOrder,
    consoleInput: args.input ? readFile(args.input) : undefined,
    cmdline: args.kernelArgs.join(" "),
    pagetables: args.pagetables,
    pae: args.pae,
    console: out,
    consoleScript,
  });
}

/** The escape key that takes the terminal back from the guest: Ctrl-] (as telnet and QEMU's -serial mon:stdio use). */
export const ESCAPE_BYTE = 0x1d;
/** Exit status of `--run` when the guest asks to reboot (SHUTDOWN reason 2). */
export const REBOOT_STATUS = 4;

/**
 * The terminal handed to the guest while it runs: raw keys go to its
 * console's receive queue (echo is the guest tty's), Ctrl-] calls `escape`.
 * A guest whose console takes no input (no receive queue live) gets no keys,
 * and Ctrl-C calls `escape` too.
 */
class GuestKeys {
  private readonly onData = (chunk: Uint8Array | string) => this.take(chunk);
  private saved: ((...a: unknown[]) => void)[] = [];
  private waiter: (() => void) | null = null;
  private owning = false;

  /** Keys for `launcher`'s console; `escape` (with the key's name) when Ctrl-] is typed. */
  constructor(
    private readonly launcher: Launcher,
    private readonly escape: (key: string) => void,
  ) {}

  /** The guest's console driver takes input. */
  get receiving(): boolean {
    const c = this.launcher.console;
    return c.live && c.queues[0].enabled;
  }

  /** Take the terminal (raw mode), putting aside its other key listeners (readline's). */
  own(): void {
    if (this.owning) return;
    this.owning = true;
    const stdin = process.stdin;
    this.saved = stdin.listeners("keypress") as ((...a: unknown[]) => void)[];
    stdin.removeAllListeners("keypress");
    if (stdin.isTTY) stdin.setRawMode(true);
    stdin.on("data", this.onData);
    stdin.resume();
  }

  /** Give the terminal back. */
  release(restoreMode: boolean): void {
    if (!this.owning) return;
    this.owning = false;
    const stdin = process.stdin;
    stdin.off("data", this.onData);
    for (const f of this.saved) stdin.on("keypress", f);
    this.saved = [];
    if (restoreMode) {
      if (stdin.isTTY) stdin.setRawMode(false);
      stdin.pause();
    }
  }

  /** Resolves when a key arrives (or after `ms`). */
  wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.waiter = null;
        resolve();
      }, ms);
      this.waiter = () => {
        clearTimeout(t);
        this.waiter = null;
        resolve();
      };
    });
  }

  private take(chunk: Uint8Array | string): void {
    const bytes = typeof chunk === "string" ? new TextEncoder().encode(chunk) : chunk;
    const esc = bytes.indexOf(ESCAPE_BYTE);
    const mine = esc < 0 ? bytes : bytes.subarray(0, esc);
    if (this.receiving) {
      if (mine.length > 0) this.launcher.console.input(new Uint8Array(mine));
    } else if (mine.includes(3)) this.escape("Ctrl-C");
    if (esc >= 0) this.escape("Ctrl-]");
    this.waiter?.();
  }
}

function readConsoleInput(path: string): Uint8Array {
  if (path !== "-") return readFile(path);
  try {
    return new Uint8Array(readFileSync(0));
  } catch {
    throw new BootError("--console-input=-: cannot read stdin");
  }
}

/**
 * Boot `kernel` under the lguest host and run it to its end (or Ctrl-C);
 * returns the exit status: 0 for a power-off, {@link REBOOT_STATUS} for a
 * reboot request, 130 when stopped from the terminal, 1 otherwise. On a
 * terminal (without --console-input) the guest owns it: keys go to its
 * console, Ctrl-] stops it (and Ctrl-C, while its console takes no input).
 */
async function runLguest(args: LauncherArgs, kernel: Uint8Array): Promise<number> {
  const script = args.consoleInput !== undefined ? readConsoleInput(args.consoleInput) : undefined;
  const st = new RunStatus();
  const l = launch(args, kernel, (b) => st.guestByte(b), script);
  const g = l.guest;
  const watch = new ConsoleWatch(l);
  let escaped = "";
  const tty = script === undefined && args.input === undefined && process.stdin.isTTY === true;
  const keys = tty ? new GuestKeys(l, (key) => (escaped = key)) : null;
  // Live: an idle guest waits in real time for its clock event (up to 50 ms at a
  // time) or a key, rather than racing through virtual time. So does a guest on a
  // socket link: its peer's frames come in real time.
  const live = keys !== null || l.net?.backend instanceof NetSocket;
  let idleNs = -1;
  if (live) {
    g.onIdle = () => {
      idleNs = g.timerDeadline >= 0 ? g.timerDeadline - g.nowNs() : 50e6;
      g.requestStop();
    };
  }
  keys?.own();
  let stop;
  try {
    for (;;) {
      const most = live ? 1 << 20 : RUN_SLICE;
      const slice = args.maxInsns > 0 ? Math.min(most, args.maxInsns - g.cpu.icount) : most;
      if (slice <= 0) {
        stop = "limit";
        break;
      }
      stop = g.run(slice);
      const note = watch.check();
      if (note) {
        st.clear();
        process.stderr.write(`[lguest: ${note}]${keys ? "\r" : ""}\n`);
      }
      const waiting = live && (stop === "stop" || stop === "halted");
      if (stop !== "budget" && !waiting) break;
      if (st.stopped || escaped) {
        stop = "interrupted";
        break;
      }
      st.tick(() =>
        statusLine({
          instructions: g.cpu.icount,
          seconds: st.seconds,
          phase: guestPhase(g, l.kernel.format),
        })
      );
      if (waiting) {
        const ms = stop === "halted" ? 1000 : Math.min(50, idleNs / 1e6);
        await (keys ? keys.wait(ms) : new Promise((r) => setTimeout(r, ms)));
        idleNs = -1;
        if (escaped) {
          stop = "interrupted";
          break;
        }
      } else await breathe();
    }
  } finally {
    st.done();
    keys?.release(true);
  }
  const note = watch.check();
  if (note) process.stderr.write(`[lguest: ${note}]\n`);
  const secs = st.seconds;
  const n = g.cpu.icount;
  const why = stop === "dead"
    ? endReason(l)
    : stop === "halted"
    ? "halted with no timer armed and no interrupt pending"
    : stop === "limit"
    ? `stopped after ${n} instructions (--max-insns)`
    : stop === "interrupted"
    ? `interrupted (${escaped || "Ctrl-C"}) in phase '${guestPhase(g, l.kernel.format)}'`
    : `stopped: ${stop}`;
  const mips = secs > 0 ? (n / secs / 1e6).toFixed(1) : "-";
  const sc = l.consoleScript;
  const typed = sc
    ? `; console input: ${sc.delivered.length} lines typed, ${sc.remaining} left`
    : "";
  process.stderr.write(
    `[lguest: ${why}; ${n} instructions in ${secs.toFixed(3)} s, ${mips} MIPS${typed}]\n`,
  );
  return stop === "interrupted" ? 130 : g.poweredOff ? 0 : g.restartRequested ? REBOOT_STATUS : 1;
}

// ------------------------------------------------------------------ the REPL

/** Longest partial guest line held back while a prompt is on screen. */
const PARTIAL_LINE_MAX = 4096;

/**
 * Colour for the debugger's output: on when stdout is a terminal, off when
 * it is not, when NO_COLOR is set (https://no-color.org) or TERM is dumb.
 */
export function useColour(
  env: Record<string, string | undefined> = process.env,
  tty = process.stdout.isTTY === true,
): boolean {
  return tty && !env.NO_COLOR && env.TERM !== "dumb";
}

const SGR = {
  red: "\x1b[31m",
  green: "\x1b[32m",
  yellow: "\x1b[33m",
  cyan: "\x1b[36m",
  bold: "\x1b[1m",
  off: "\x1b[0m",
};

/**
 * The debugger's lines with colour: errors red, stops ([icount] …) yellow,
 * what the host did on the way cyan, the current instruction's `=>` green
 * and a breakpoint's `*` red. Only the start of a line is looked at, so a
 * guest's text inside a line is never taken for one of these.
 */
export function paint(text: string): string {
  return text.split("\n").map((l) => {
    if (/^(error|internal error): /.test(l)) return SGR.red + l + SGR.off;
    if (/^\[\d+\] /.test(l)) return SGR.yellow + l + SGR.off;
    if (l.startsWith("  -> ")) return SGR.cyan + l + SGR.off;
    const m = /^(=>)?( |\*)?(?=\s*0x)/.exec(l);
    if (m && (m[1] || m[2] === "*")) {
      const arrow = m[1] ? SGR.bold + SGR.green + "=>" + SGR.off : "";
      const star = m[2] === "*" ? SGR.red + "*" + SGR.off : (m[2] ?? "");
      return arrow + star + l.slice(m[0].length);
    }
    return l;
  }).join("\n");
}

/** The terminal, shared by the guest's console and the debugger's output. */
class Terminal {
  /** Colour the debugger's output (see {@link useColour}). */
  readonly colour = useColour();
  /** readline, when interactive. */
  rl: readline.Interface | null = null;
  /** A prompt is on the screen, waiting for input. */
  prompting = false;
  /** The guest's console, read as a stream (the machine keeps it in a bounded log). */
  private reader: ConsoleReader | null = null;
  /** A guest line begun and not yet printed (held back while prompting; bounded). */
  private guest = "";
  /** The last thing printed left the cursor mid-line. */
  private midLine = false;

  /** Follow the guest's console. */
  follow(log: ConsoleLog): void {
    this.reader = log.reader();
  }

  private raw(s: string): void {
    if (s === "") return;
    process.stdout.write(s);
    this.midLine = !s.endsWith("\n");
  }

  /**
   * Print the guest output that arrived since the last call. With a prompt on
   * screen, only whole lines (unless `all`, or the line grows past
   * {@link PARTIAL_LINE_MAX}).
   */
  flushGuest(all = false): void {
    const r = this.reader;
    if (r) {
      const missed = r.missed, text = r.readText();
      if (r.missed > missed) {
        this.guest += `[lguest: ${r.missed - missed} bytes of console output dropped]\n`;
      }
      this.guest += text;
    }
    if (this.guest === "") return;
    if (this.prompting && this.rl) {
      const cut = all || this.guest.length > PARTIAL_LINE_MAX
        ? this.guest.length
        : this.guest.lastIndexOf("\n") + 1;
      if (cut <= 0) return;
      const text = this.guest.slice(0, cut);
      this.guest = this.guest.slice(cut);
      this.above(text.endsWith("\n") ? text : text + "\n");
      return;
    }
    const text = this.guest;
    this.guest = "";
    this.raw(text);
  }

  /** Print above the prompt and redraw it (with what was typed). */
  private above(text: string): void {
    readline.clearLine(process.stdout, 0);
    readline.cursorTo(process.stdout, 0);
    process.stdout.write(text);
    this.midLine = false;
    this.rl!.prompt(true);
  }

  /** Debugger output: whole lines, always starting on a fresh line. */
  write(text: string): void {
    this.flushGuest(true);
    const block = (this.colour ? paint(text) : text) + "\n";
    if (this.prompting && this.rl) return this.above(block);
    if (this.midLine) this.raw("\n");
    this.raw(block);
  }

  /** Before showing a prompt: all guest output out, cursor at the start of a line. */
  settle(): void {
    this.flushGuest(true);
    if (this.midLine) this.raw("\n");
    this.notes();
  }

  /** What the machine has to say about the guest (the Appendix B watch), or null. */
  note: () => string | null = () => null;

  /** Print the machine's note, if there is one now. */
  notes(): void {
    const n = this.note();
    if (n) this.write(`[lguest: ${n}]`);
  }
}

function historyPath(): string {
  return process.env.LGUEST_TS_HISTORY ?? join(homedir(), ".lguest_ts_history");
}

function loadHistory(path: string): string[] {
  try {
    const lines = readFileSync(path, "utf8").split("\n").filter((l) => l.trim() !== "");
    const kept = lines.slice(-1000);
    if (kept.length < lines.length) writeFileSync(path, kept.join("\n") + "\n");
    return kept.reverse();
  } catch {
    return [];
  }
}

function makeTarget(args: LauncherArgs, kernel: Uint8Array): Target {
  if (!args.bare) return new LguestTarget(launch(args, kernel));
  const m = new BareMachine(args.memMiB);
  m.loadKernel(kernel, args.kernel, args.kernelArgs.join(" "));
  const symbols = isElf(kernel) ? parseElf(kernel, args.kernel).symbols : new Map<string, number>();
  return new BareTarget(m, symbols);
}

async function repl(args: LauncherArgs, kernel: Uint8Array): Promise<number> {
  const term = new Terminal();
  const target = makeTarget(args, kernel);
  term.follow(target.output);
  const dbg = new Debugger(target);
  let quitWith: number | null = null;
  // A Linux guest whose console goes silent (Appendix B) is told about it once, between chunks.
  const watch = target instanceof LguestTarget ? new ConsoleWatch(target.launcher) : null;
  term.note = () => watch?.check() ?? null;
  const session = new Session(dbg, {
    write: (t) => term.write(t),
    onChunk: () => {
      term.flushGuest();
      term.notes();
    },
    onQuit: (s) => (quitWith = s),
    onBackgroundStop: () => term.settle(),
  });
  if (args.maxInsns > 0) dbg.breakIcount(args.maxInsns);
  const prompt = target.kind === "lguest" ? "(lguest) " : "(bare) ";
  const name = args.kernel;
  // The System.map beside the kernel (KERNEL.map: deno task asm writes one for each example ELF).
  const map = args.kernel.replace(/\.[^./]*$/, "") + ".map";
  if (map !== args.kernel && existsSync(map)) {
    try {
      session.loadSymbols(map);
    } catch (e) {
      term.write(`(not loaded: ${e instanceof Error ? e.message : String(e)})`);
    }
  }
  term.write((await session.banner(name)).join("\n"));

  const tty = process.stdin.isTTY === true && process.stdout.isTTY === true;
  const scripted = args.script !== undefined || args.commands !== undefined;
  let failed = false;

  // Ctrl-C when no terminal line discipline hands it to readline.
  const onSigint = () => {
    if (dbg.running) session.interrupt();
    else if (!tty || !term.rl) process.exit(130);
  };
  process.on("SIGINT", onSigint);

  const echo = (cmd: string) => term.write(prompt + cmd);
  try {
    if (scripted) {
      let text = "";
      if (args.script !== undefined) {
        text += new TextDecoder().decode(readFile(args.script)) + "\n";
      }
      if (args.commands !== undefined) text += args.commands.split(";").join("\n");
      const ok = await session.execScript(text, echo);
      failed ||= !ok;
      if (session.background) await session.background;
      term.settle();
      if (quitWith !== null) return quitWith;
      if (!args.interactive) return failed ? 1 : 0;
    }
    if (!tty) return await batch(session, term, echo, () => quitWith, failed);
    const keys = target instanceof LguestTarget
      ? new GuestKeys(target.launcher, () => session.interrupt())
      : null;
    return await interactive(session, term, prompt, () => quitWith, keys);
  } finally {
    session.close();
    process.off("SIGINT", onSigint);
  }
}

/** Commands from a pipe: one per line, echoed, run in order. */
async function batch(
  session: Session,
  term: Terminal,
  echo: (c: string) => void,
  quit: () => number | null,
  failedBefore: boolean,
): Promise<number> {
  const rl = readline.createInterface({ input: process.stdin, terminal: false });
  let failed = failedBefore;
  for await (const line of rl) {
    const ok = await session.execScript(line, echo);
    failed ||= !ok;
    term.settle();
    if (quit() !== null) break;
  }
  rl.close();
  if (session.background) {
    await session.background;
    term.settle();
  }
  return quit() ?? (failed ? 1 : 0);
}

/** The interactive REPL on a terminal. */
function interactive(
  session: Session,
  term: Terminal,
  prompt: string,
  quit: () => number | null,
  keys: GuestKeys | null,
): Promise<number> {
  const hist = historyPath();
  const rl = readline.createInterface({
    input: process.stdin,
    output: process.stdout,
    terminal: true,
    prompt,
    history: loadHistory(hist),
    historySize: 1000,
    completer: (line: string) => session.complete(line),
  } as readline.ReadLineOptions);
  term.rl = rl;
  const queue: string[] = [];
  let busy = false;
  let lastRepeatable = "";
  return new Promise((resolve) => {
    const done = (status: number) => {
      term.prompting = false;
      rl.close();
      resolve(status);
    };
    const showPrompt = () => {
      term.settle();
      term.prompting = true;
      rl.prompt();
    };
    const pump = async () => {
      if (busy) return;
      busy = true;
      while (queue.length > 0) {
        let line = queue.shift()!;
        if (line.trim() === "" && lastRepeatable) line = lastRepeatable;
        else if (line.trim() !== "") {
          try {
            appendFileSync(hist, line + "\n");
          } catch { /* no history file: fine */ }
        }
        const word = line.trim().split(/\s+/)[0];
        lastRepeatable = /^(s|si|step|stepi|n|ni|next|nexti)$/.test(word) ? line : "";
        term.prompting = false;
        // While a command runs the guest owns the terminal: keys go to its console.
        keys?.own();
        try {
          await session.exec(line);
        } finally {
          keys?.release(false);
        }
        term.settle();
        const q = quit();
        if (q !== null) return done(q);
      }
      busy = false;
      showPrompt();
    };
    rl.on("line", (line) => {
      queue.push(line);
      void pump();
    });
    rl.on("SIGINT", () => {
      if (session.dbg.running) {
        session.interrupt();
        return;
      }
      // Idle: drop the line being typed, as a shell does.
      readline.clearLine(process.stdout, 0);
      readline.cursorTo(process.stdout, 0);
      process.stdout.write(prompt + (rl as unknown as { line: string }).line + "^C\n");
      (rl as unknown as { line: string }).line = "";
      rl.prompt();
    });
    rl.on("close", () => {
      if (quit() === null) {
        process.stdout.write("\n");
        resolve(0);
      }
    });
    showPrompt();
  });
}

/**
 * Run the command line `argv` (without the program name) and exit the
 * process with its status: 0/1 as {@link main} says, 2 with a one-line
 * message for a bad command line or file. The package's `lguest-ts` command
 * (bin/lguest-ts.mjs) calls this.
 */
export async function cli(argv: string[]): Promise<never> {
  let status: number;
  try {
    status = await main(argv);
  } catch (e) {
    if (e instanceof BootError) fail(e.message);
    // Anything else is a bug in lguest.ts: still one line (LGUEST_TS_DEBUG=1 for the stack).
    if (process.env.LGUEST_TS_DEBUG) throw e;
    fail(
      `internal error: ${
        e instanceof Error ? e.message : String(e)
      } (LGUEST_TS_DEBUG=1 shows where)`,
    );
  }
  process.exit(status);
}

if (import.meta.main) await cli(process.argv.slice(2));
