/**
 * The launcher's command line, as lguest's own launcher takes it:
 *
 *     repl.ts [options] <mem-MiB> <vmlinux|bzImage> [options] [kernel args…]
 *
 * Options may stand before the memory size and again right after the kernel
 * file; the first word after that which is not a known option starts the
 * guest's kernel command line, which is passed through untouched.
 *
 * @module
 */

import { BootError } from "./errors.ts";

/** Parsed launcher options. */
export interface LauncherArgs {
  /** Guest RAM in MiB. */
  memMiB: number;
  /** Path of the kernel file. */
  kernel: string;
  /** The guest's kernel command line words. */
  kernelArgs: string[];
  /** Run the bare CPU without the lguest host. */
  bare: boolean;
  /** Run to completion without the REPL. */
  run: boolean;
  /** Initial ramdisk path. */
  initrd?: string;
  /** Disk images for virtio block devices, in option order (--block=FILE[,ro], repeatable). */
  blocks: { path: string; readOnly: boolean }[];
  /** A virtio entropy device: the host's randomness (--rng) or a seeded generator (--rng=seed:N). */
  rngSeed?: number | "host";
  /** A virtio network card (--net=responder | socket,listen=PORT | socket,connect=PORT). */
  net?: NetArg;
  /** The devices after the console in the order their options came. */
  deviceOrder: ("block" | "rng" | "net")[];
  /** A file whose bytes are the console's input (--input=FILE). */
  input?: string;
  /** Console input typed in when the guest waits for it (--console-input=FILE; - is stdin). */
  consoleInput?: string;
  /** Initial page tables: "linear" (2011+, host fakes 1:1) or "launcher" (2007, built below the initrd). */
  pagetables: "linear" | "launcher";
  /** A PAE guest: the host builds PAE shadows (--pae). */
  pae: boolean;
  /** REPL commands from a file (-x FILE). */
  script?: string;
  /** REPL commands from the command line (-c "cmd; cmd"). */
  commands?: string;
  /** Stay in the REPL after the -x/-c commands (-i). */
  interactive: boolean;
  /** Stop after this many guest instructions (0 = no limit). */
  maxInsns: number;
  /** Print usage and exit. */
  help: boolean;
  /** Print the version and exit (--version). */
  version: boolean;
}

/** A parsed `--net=` argument (`mac`: the card's MAC, when given). */
export type NetArg =
  | { kind: "responder"; mac?: number[] }
  | { kind: "socket"; mode: "listen" | "connect"; port: number; mac?: number[] };

/** Parse the value of `--net=`; throws a one-line {@link BootError} when it is bad. */
export function parseNetArg(v: string): NetArg {
  const bad = (why: string) =>
    new BootError(
      `--net must be responder, socket,listen=PORT or socket,connect=PORT (PORT 1-65535), ` +
        `each with an optional ,mac=XX:XX:XX:XX:XX:XX: ${why} in '${v}'`,
    );
  const m = /^(responder|socket,(listen|connect)=(\d{1,5}))(?:,mac=([^,]*))?$/.exec(v);
  if (!m) throw bad("not one of those");
  let mac: number[] | undefined;
  if (m[4] !== undefined) {
    if (!/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(m[4])) throw bad(`bad MAC '${m[4]}'`);
    mac = m[4].split(":").map((h) => parseInt(h, 16));
    if ((mac[0] & 1) !== 0) throw bad(`MAC '${m[4]}' is a multicast address`);
  }
  if (m[1] === "responder") return mac ? { kind: "responder", mac } : { kind: "responder" };
  const port = Number(m[3]);
  if (port < 1 || port > 65535) throw bad(`port ${m[3]} out of range`);
  const mode = m[2] as "listen" | "connect";
  return mac ? { kind: "socket", mode, port, mac } : { kind: "socket", mode, port };
}

/** The usage text. */
export const USAGE =
  `usage: repl.ts [options] <mem-MiB> <vmlinux|bzImage|ELF> [options] [kernel args…]

options (before the memory size, or right after the kernel file):
  --bare               run the CPU alone: no lguest host; COM1 (port 0x3F8) to stdout;
                       ends on cli;hlt or a write to port 0x501 (isa-debug-exit)
  --run                run to completion without the REPL: exit status 0 when the guest
                       powers off, 4 when it asks to reboot (it is not restarted),
                       1 for anything else (a panic: its text is the reason); on a
                       terminal the guest owns it (keys to its console; Ctrl-] ends)
  --initrd=FILE        initial ramdisk, placed at the top of guest RAM
  --block=FILE[,ro]    a virtio block device on FILE (a multiple of 512 bytes); the
                       guest's writes go through to the file as they are made; ,ro:
                       read-only (VIRTIO_BLK_F_RO, writes get IOERR); repeatable,
                       one device per option, in option order
  --rng[=seed:N]       a virtio entropy device: the host's randomness, or with seed:N
                       a seeded generator, so runs stay deterministic
  --net=BACKEND        a virtio network card: responder (a gateway 10.0.2.2 on
                       10.0.2.0/24 answering ARP and ping), or socket,listen=PORT /
                       socket,connect=PORT (frames to another lguest.ts on 127.0.0.1);
                       ,mac=XX:XX:XX:XX:XX:XX sets the card's MAC (52:54:00:12:34:56)
  --input=FILE         FILE's bytes are the console's input, handed to the guest's
                       receive buffers as it posts them
  --console-input=FILE text typed into the guest's console, a line at a time, each when
                       the guest is idle and has printed a prompt (output not ending
                       in a newline) or has been quiet 5 s of virtual time: the same
                       input gives the same output and instruction count (- = stdin)
  --pagetables=MODE    linear (2011+, default) or launcher (2007: tables below the initrd)
  --pae                the guest uses PAE page tables (the host shadows them as PAE)
  --max-insns=N        stop after N guest instructions
  -x FILE              run REPL commands from FILE, then exit
  -c "CMD; CMD"        run REPL commands given here, then exit
  -i, --interactive    after the -x/-c commands, stay in the REPL
  -h, --help           this text
  --version            the version of lguest.ts`;

/** The CPU keeps physical addresses below 2 GiB (int32 TLB arithmetic); guests need far less. */
const MAX_MIB = 1024;

/** Parse launcher arguments; throws {@link BootError} with a one-line message on bad input. */
export function parseLauncherArgs(argv: string[]): LauncherArgs {
  const a: LauncherArgs = {
    memMiB: 0,
    kernel: "",
    kernelArgs: [],
    bare: false,
    run: false,
    pagetables: "linear",
    maxInsns: 0,
    help: false,
    version: false,
    interactive: false,
    pae: false,
    deviceOrder: [],
    blocks: [],
  };
  let i = 0;
  const option = (w: string): boolean => {
    const eq = w.indexOf("=");
    const name = eq < 0 ? w : w.slice(0, eq);
    const value = eq < 0 ? undefined : w.slice(eq + 1);
    const need = (): string => {
      if (value !== undefined) return value;
      if (i + 1 >= argv.length) throw new BootError(`option ${name} needs a value`);
      return argv[++i];
    };
    switch (name) {
      case "--bare":
        a.bare = true;
        return true;
      case "--run":
        a.run = true;
        return true;
      case "--pae":
        a.pae = true;
        return true;
      case "-h":
      case "--help":
        a.help = true;
        return true;
      case "--version":
        a.version = true;
        return true;
      case "--initrd":
        a.initrd = need();
        return true;
      case "--block": {
        const v = need();
        const ro = v.endsWith(",ro");
        const path = ro ? v.slice(0, -3) : v;
        if (path === "") throw new BootError(`--block needs a file: --block=FILE[,ro]`);
        a.blocks.push({ path, readOnly: ro });
        a.deviceOrder.push("block");
        return true;
      }
      case "--net":
        a.net = parseNetArg(need());
        a.deviceOrder.push("net");
        return true;
      case "--input":
        a.input = need();
        return true;
      case "--rng": {
        const v = value === undefined
          ? "host"
          : value.startsWith("seed:")
          ? Number(value.slice(5))
          : NaN;
        if (
          v !== "host" && (!Number.isSafeInteger(v) || v < 0 || v > 0xffffffff || value === "seed:")
        ) {
          throw new BootError(`--rng takes seed:N, N a number up to 2^32-1, not '${value}'`);
        }
        a.rngSeed = v;
        a.deviceOrder.push("rng");
        return true;
      }
      case "--console-input":
        a.consoleInput = need();
        return true;
      case "--pagetables": {
        const v = need();
        if (v !== "linear" && v !== "launcher") {
          throw new BootError(`--pagetables must be linear or launcher, not '${v}'`);
        }
        a.pagetables = v;
        return true;
      }
      case "--max-insns": {
        const v = Number(need());
        if (!Number.isSafeInteger(v) || v < 0) throw new BootError(`--max-insns needs a count`);
        a.maxInsns = v;
        return true;
      }
      case "-x":
        a.script = need();
        return true;
      case "-c":
        a.commands = need();
        return true;
      case "-i":
      case "--interactive":
        a.interactive = true;
        return true;
      default:
        return false;
    }
  };
  for (; i < argv.length && argv[i].startsWith("-"); i++) {
    if (!option(argv[i])) throw new BootError(`unknown option '${argv[i]}' (see --help)`);
  }
  if (a.help || a.version) return a;
  if (i >= argv.length) throw new BootError("missing <mem-MiB> and kernel file (see --help)");
  const mem = Number(argv[i]);
  if (!/^\d+$/.test(argv[i]) || mem < 1 || mem > MAX_MIB) {
    throw new BootError(
      `memory size '${argv[i]}' must be a whole number of MiB from 1 to ${MAX_MIB}`,
    );
  }
  a.memMiB = mem;
  if (++i >= argv.length) throw new BootError("missing kernel file after the memory size");
  a.kernel = argv[i++];
  for (; i < argv.length && argv[i].startsWith("-"); i++) {
    if (!option(argv[i])) break;
  }
  a.kernelArgs = argv.slice(i);
  return a;
}
