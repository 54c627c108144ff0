/**
 * The lguest launcher (tools/lguest/lguest.c): lays out guest memory, loads
 * the kernel and initrd, writes `boot_params`, serves the devices, and starts
 * the host's guest.
 *
 * Guest-physical layout (§1.1): `boot_params` at 0, the command line at
 * 0x1000, the kernel by its physical addresses (ELF `p_paddr`; a bzImage's
 * protected-mode part at 1 MiB), the initrd page-aligned at the top of RAM.
 * Above RAM: 256 device pages, then from RAM + 1 MiB the BAR0 windows of the
 * virtio PCI functions; above those, the host's own pages.
 *
 * Two boot styles from lguest's history:
 *  - linear (2011 and later, the default): the launcher builds no page tables;
 *    the host fakes a 1:1 mapping until the guest's first NEW_PGTABLE.
 *  - launcher (2007): the launcher builds virtual == physical page tables for
 *    all of RAM just below the initrd — the top-level page first, then the
 *    PTE pages below it — and the guest starts on them.
 * A PAE guest (option `pae`) gets shadows in PAE form and a CPU with
 * CR4.PAE; it must build its own tables (linear mode first).
 * And the 2007 kernel format: a file with a gzip stream (OS byte 3) whose
 * inflated image holds the magic "GenuineLguest"; it is inflated to 1 MiB —
 * streamed, and refused the moment it would pass the end of RAM (gunzip.ts) —
 * and entered just after the magic.
 *
 * The devices (lib/devices): PCI configuration mechanism 1 with the virtio
 * console in slot 1 (IRQ 1), then a block device, an entropy device and a
 * network card when asked for (slots and IRQs 2, 3, … in the order of their
 * options), wired on the CPU's bus — the PCI ports, the
 * i8042 status port (§7.1) and the device window as one MMIO region — so the
 * CPU's own decoder carries every guest access to them; the host's trap
 * policy emulates the guest kernel's port I/O by handing it to the same bus.
 * The devices see the guest through `guestDeviceHost`: bounds-checked guest
 * RAM, its interrupt lines, virtual time, and death on a driver error.
 *
 * @module
 */

import { PhysicalMemory } from "../x86/memory.ts";
import type { PortHandler } from "../x86/bus.ts";
import { Guest } from "../lguest/guest.ts";
import { BP, E820_RAM, KEEP_SEGMENTS, SUBARCH_LGUEST } from "./bootparams.ts";
import { BootError } from "./errors.ts";
import { ConsoleLog } from "./console_log.ts";
import { isElf, loadElf, parseElf } from "./elf.ts";
import { gunzipInto } from "./gzip.ts";
import type { DeviceHost } from "../devices/host.ts";
import { PciBus } from "../devices/pci.ts";
import { type VirtioDevice, VirtioPciFunction } from "../devices/virtio_pci.ts";
import { VirtioConsole } from "../devices/virtio_console.ts";
import { type BlockDisk, VirtioBlock } from "../devices/virtio_blk.ts";
import { VirtioRng } from "../devices/virtio_rng.ts";
import { VirtioNet } from "../devices/virtio_net.ts";
import type { NetBackend } from "../devices/net_backend.ts";
import { ScriptedConsoleInput } from "./console_input.ts";

/** Launch options. */
export interface LaunchOptions {
  /** Guest RAM in MiB. */
  memMiB: number;
  /** The kernel file's bytes (ELF vmlinux, bzImage, or a 2007 gzip image). */
  kernel: Uint8Array;
  /** Its name, for messages. */
  kernelName?: string;
  /** Initial ramdisk bytes. */
  initrd?: Uint8Array;
  /** Its name, for messages. */
  initrdName?: string;
  /** The guest's kernel command line. */
  cmdline?: string;
  /** Initial page tables: "linear" (2011, default) or "launcher" (2007). */
  pagetables?: "linear" | "launcher";
  /** Receives console output bytes as they arrive (the push form of {@link Launcher.output}). */
  console?: (byte: number) => void;
  /** Bytes of console output kept in {@link Launcher.output} (default 1 MiB). */
  outputBytes?: number;
  /** Host pages to reserve for shadow tables (default 4096: 16 MiB, committed lazily). */
  hostPages?: number;
  /**
   * The guest uses PAE page tables (3 levels, 8-byte entries). lguest fixed
   * this when the host and guest kernels were built (§6.8); here the launcher
   * says so. Not with the 2007 launcher-built tables, which are non-PAE.
   */
  pae?: boolean;
  /**
   * Disks for virtio block devices (slot 2 on, one per disk, in this order):
   * bytes the guest's writes change in place, or a {@link BlockDisk} whose
   * writes also go to its file and which may be read-only (`--block=FILE[,ro]`).
   */
  block?: Uint8Array | BlockDisk | (Uint8Array | BlockDisk)[];
  /**
   * A virtio entropy device in the next free slot, its bytes drawn from this
   * seed's generator (`--rng=seed:N`; deterministic, unlike lguest's
   * /dev/urandom) or from the host's randomness ("host", `--rng`).
   */
  rngSeed?: number | "host";
  /**
   * A virtio network card on this packet backend (`--net=…`): the built-in
   * responder (net_responder.ts) or a socket link (net_socket.ts).
   */
  net?: NetBackend;
  /** The network card's MAC (6 bytes; 52:54:00:12:34:56 when not given). */
  netMac?: number[];
  /**
   * The order of the devices after the console, slot 2 onward, as their
   * options came (lguest's launcher plugs them in option order); devices not
   * named follow in the order block, rng, net. "block" once per disk.
   */
  deviceOrder?: ("block" | "rng" | "net")[];
  /** Bytes for the console's input (its receive queue), held until the driver posts buffers. */
  consoleInput?: Uint8Array;
  /**
   * Console input typed in a line at a time at the guest's idle points
   * (console_input.ts), so runs with the same input stay deterministic and a
   * shell gets each line when it prompts (`--console-input=FILE`).
   */
  consoleScript?: Uint8Array;
}

/** Where the command line goes. */
export const CMDLINE_ADDR = 0x1000;
/** Longest command line (COMMAND_LINE_SIZE). */
export const COMMAND_LINE_SIZE = 2048;
/** Where a bzImage's protected-mode code (and a 2007 image) is loaded. */
export const BZIMAGE_LOAD = 0x100000;
/** Device pages above RAM (left over from the old lguest bus). */
export const DEVICE_PAGES = 256;
/** Guest RAM limits in MiB. */
export const MIN_MEM_MIB = 2, MAX_MEM_MIB = 1024;

const MAGIC_2007 = new TextEncoder().encode("GenuineLguest");

/**
 * Port 0x64, the i8042 status: always "output buffer full" (§7.1), so the
 * kernel's i8042 probe gives up. Every other port the launcher does not wire
 * reads as all ones and ignores writes (PIC, PIT, CMOS, port 0x80 delays).
 */
const I8042_STATUS: PortHandler = { in: () => 1, out: () => {} };

/** How the kernel was loaded. */
export interface LoadedKernel {
  /** "elf", "bzImage" or "lguest-2007". */
  format: "elf" | "bzImage" | "lguest-2007";
  /** Entry point (guest-physical). */
  entry: number;
  /** End of the highest byte the kernel occupies (guest-physical). */
  end: number;
  /** ELF symbols (empty for other formats). */
  symbols: Map<string, number>;
}

/** An lguest launcher with its guest. */
export class Launcher {
  /** The guest (and through it the host and CPU). */
  readonly guest: Guest;
  /** PCI config mechanism 1. */
  readonly pci: PciBus = new PciBus();
  /** The virtio console (slot 1). */
  readonly console: VirtioConsole;
  /** Its PCI function (config space and BAR0). */
  readonly consolePci: VirtioPciFunction;
  /** The (first) virtio block device, when a disk was given. */
  readonly block: VirtioBlock | null = null;
  /** Every virtio block device, in slot order. */
  readonly blocks: VirtioBlock[] = [];
  /** The virtio entropy device, when asked for. */
  readonly rng: VirtioRng | null = null;
  /** The virtio network card, when a backend was given. */
  readonly net: VirtioNet | null = null;
  /** Every virtio function, by slot order (slot n + 1 is IRQ n + 1). */
  readonly functions: VirtioPciFunction[] = [];
  /**
   * What the guest printed on its console: the last `outputBytes` bytes (1 MiB
   * by default), with counts of all of it; read it as a stream with
   * `output.reader()`.
   */
  readonly output: ConsoleLog;
  /** The loaded kernel. */
  readonly kernel: LoadedKernel;
  /** Guest-physical start of the initrd (0 when none). */
  readonly initrdStart: number = 0;
  /** Guest-physical address of the launcher's page directory (2007 boot), or -1. */
  readonly pgdir: number = -1;
  /** Guest RAM in bytes. */
  readonly ramSize: number;
  /** The scripted console input, when given (`consoleScript`). */
  readonly consoleScript: ScriptedConsoleInput | null = null;

  /** Lay out memory, load everything and start the guest at its entry point. */
  constructor(o: LaunchOptions) {
    // An lguest guest (non-PAE, no highmem, kernel at 0xC0000000) can use under 1 GiB;
    // the cap also keeps the host's own pages (above RAM and the device window) below
    // 2 GiB of physical address space.
    if (!Number.isInteger(o.memMiB) || o.memMiB < MIN_MEM_MIB || o.memMiB > MAX_MEM_MIB) {
      throw new BootError(
        `memory size must be ${MIN_MEM_MIB} to ${MAX_MEM_MIB} MiB for an lguest guest, not ${o.memMiB}`,
      );
    }
    const ram = o.memMiB * 0x100000; // (not << 20: 2048 MiB would overflow int32)
    this.ramSize = ram;
    const barBase = ram + 0x100000;
    const deviceEnd = barBase + 0x1000;
    const hostPages = o.hostPages ?? 4096;
    const mem = new PhysicalMemory(Math.ceil(deviceEnd / 4096) * 4096 + hostPages * 4096);
    if (o.pae && o.pagetables === "launcher") {
      throw new BootError("the launcher's 2007 page tables are non-PAE: not with a PAE guest");
    }
    this.guest = new Guest(mem, { ramSize: ram, deviceEnd, pae: o.pae ?? false });
    const output = this.output = new ConsoleLog(o.outputBytes);
    const sink = o.console;
    const host = guestDeviceHost(this.guest);
    this.console = new VirtioConsole(
      host,
      sink ? (b) => (output.push(b), sink(b)) : (b) => output.push(b),
    );
    // Slots in order from 1, each on the IRQ of its slot number (§9.5), each BAR0
    // aligned to its own size from RAM + 1 MiB (the [Rec] of §9.3).
    let nextBar = barBase;
    const plug = (dev: VirtioDevice): VirtioPciFunction => {
      const slot = this.functions.length + 1;
      const f = new VirtioPciFunction(dev, slot, 0);
      nextBar = Math.ceil(nextBar / f.barSize) * f.barSize;
      f.configWrite(0x10, nextBar, 4);
      nextBar += f.barSize;
      this.pci.attach(slot, f);
      this.functions.push(f);
      return f;
    };
    this.consolePci = plug(this.console);
    if (o.consoleInput) this.console.input(o.consoleInput);
    const disks = o.block === undefined ? [] : Array.isArray(o.block) ? o.block : [o.block];
    const order = [...(o.deviceOrder ?? [])];
    for (const d of ["block", "rng", "net"] as const) {
      const want = d === "block" ? disks.length : 1;
      while (order.filter((x) => x === d).length < want) order.push(d);
    }
    for (const d of order) {
      const disk = d === "block" ? disks[this.blocks.length] : undefined;
      if (disk) {
        const b = new VirtioBlock(host, disk);
        this.blocks.push(b);
        plug(b);
      }
      if (d === "rng" && o.rngSeed !== undefined && !this.rng) {
        plug(this.rng = new VirtioRng(host, o.rngSeed));
      }
      if (d === "net" && o.net && !this.net) plug(this.net = new VirtioNet(host, o.net, o.netMac));
    }
    this.block = this.blocks[0] ?? null;
    const bus = this.guest.cpu.bus;
    bus.registerPorts(0xcf8, 8, this.pci);
    bus.registerPorts(0x64, 1, I8042_STATUS);
    bus.mapMmio(ram, deviceEnd - ram, this.pci);

    const name = o.kernelName ?? "kernel";
    this.kernel = loadKernel(mem, ram, o.kernel, name);

    let top = ram;
    if (o.initrd) {
      const size = Math.ceil(o.initrd.length / 4096) * 4096;
      const iname = o.initrdName ?? "initrd";
      if (size >= ram) {
        throw new BootError(`${iname}: ${o.initrd.length} bytes is larger than guest RAM`);
      }
      top = ram - size;
      if (top < this.kernel.end) {
        throw new BootError(`${iname}: does not fit above the kernel in ${o.memMiB} MiB`);
      }
      mem.u8.set(o.initrd, top);
      this.initrdStart = top;
    }
    if ((o.pagetables ?? "linear") === "launcher") {
      this.pgdir = buildLinearPagetables(mem, ram, top, this.kernel.end);
    }
    writeBootParams(
      mem,
      ram,
      o.cmdline ?? "",
      o.initrd ? this.initrdStart : 0,
      o.initrd?.length ?? 0,
    );
    if (o.consoleScript) {
      this.consoleScript = new ScriptedConsoleInput(
        this.guest,
        this.console,
        this.output,
        o.consoleScript,
      );
    }
    this.guest.start(this.kernel.entry, this.pgdir);
  }

  /** The console output still held (see {@link output}) as text. */
  text(): string {
    return this.output.text();
  }
}

/**
 * The guest as its devices see it: bounds-checked guest RAM (a write drops
 * translated code on its pages), its virtual IRQ lines, virtual time, and
 * death with the reason on a driver error (lguest's launcher exits, §10).
 */
export function guestDeviceHost(g: Guest): DeviceHost {
  const mem = g.mem;
  return {
    read: (gpa, len) => g.ramContains(gpa, len) ? mem.u8.slice(gpa, gpa + len) : null,
    write: (gpa, bytes) => {
      if (!g.ramContains(gpa, bytes.length)) return false;
      mem.u8.set(bytes, gpa);
      g.cpu.invalidateCode(gpa, bytes.length);
      return true;
    },
    raiseIrq: (line) => g.setInterrupt(line),
    lowerIrq: (line) => g.clearInterrupt(line),
    now: () => g.nowNs(),
    fail: (reason) => g.die(reason),
  };
}

/** Load the kernel (ELF, bzImage or 2007 image) into guest RAM. */
export function loadKernel(
  mem: PhysicalMemory,
  ram: number,
  bytes: Uint8Array,
  name: string,
): LoadedKernel {
  if (isElf(bytes)) {
    const img = parseElf(bytes, name);
    // §1.2: the launcher takes only ET_EXEC (2) for EM_386 (parseElf checked the machine).
    const type = bytes[16] | (bytes[17] << 8);
    if (type !== 2) throw new BootError(`${name}: not an executable ELF (e_type ${type})`);
    const low = CMDLINE_ADDR + COMMAND_LINE_SIZE; // never over boot_params or the command line
    const end = loadElf(mem, img, bytes, name, low, ram, `guest RAM above 0x${low.toString(16)}`);
    return { format: "elf", entry: img.entry, end, symbols: img.symbols };
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length >= 0x206 && dv.getUint32(BP.header, true) === 0x53726448) { // "HdrS"
    if (bytes.length < BP.code32Start + 4) {
      throw new BootError(`${name}: truncated bzImage (the setup header ends early)`);
    }
    let setupSects = bytes[BP.setupSects];
    if (setupSects === 0) setupSects = 4;
    const off = (setupSects + 1) * 512;
    if (off >= bytes.length) {
      throw new BootError(`${name}: truncated bzImage (no protected-mode code)`);
    }
    const code = bytes.subarray(off);
    if (BZIMAGE_LOAD + code.length > ram) {
      throw new BootError(`${name}: bzImage does not fit in guest RAM`);
    }
    mem.u8.set(code, BZIMAGE_LOAD);
    return {
      format: "bzImage",
      entry: dv.getUint32(BP.code32Start, true),
      end: BZIMAGE_LOAD + code.length,
      symbols: new Map(),
    };
  }
  const gz = findGzip(bytes);
  if (gz >= 0) {
    // Inflated straight into guest RAM at 1 MiB, refused as soon as it passes the end of RAM.
    const dest = mem.u8.subarray(BZIMAGE_LOAD, Math.max(BZIMAGE_LOAD, ram));
    const { written } = gunzipInto(bytes, gz, dest, name, "guest RAM above 1 MiB");
    const image = dest.subarray(0, written);
    const at = indexOf(image, MAGIC_2007);
    if (at < 0) throw new BootError(`${name}: gzip image has no "GenuineLguest" entry magic`);
    return {
      format: "lguest-2007",
      entry: BZIMAGE_LOAD + at + MAGIC_2007.length,
      end: BZIMAGE_LOAD + written,
      symbols: new Map(),
    };
  }
  throw new BootError(`${name}: not an ELF, a bzImage (no HdrS) or a 2007 lguest gzip image`);
}

/** The 2007 launcher's gzip scan: 1F 8B 08 with OS byte (header byte 9) 3, "Unix". */
function findGzip(b: Uint8Array): number {
  for (let i = 0; i + 10 <= b.length; i++) {
    if (b[i] === 0x1f && b[i + 1] === 0x8b && b[i + 2] === 0x08 && b[i + 9] === 3) return i;
  }
  return -1;
}

function indexOf(hay: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/**
 * The 2007 launcher's page tables: virtual == physical for all of RAM, the
 * page directory just below `top` and the PTE pages below it, flags 0x7.
 * Returns the page directory's guest-physical address.
 */
export function buildLinearPagetables(
  mem: PhysicalMemory,
  ram: number,
  top: number,
  kernelEnd: number,
): number {
  const ptePages = Math.ceil(ram / (4 << 20));
  const pgdir = top - 4096;
  const first = pgdir - ptePages * 4096;
  if (first < kernelEnd || first < CMDLINE_ADDR + COMMAND_LINE_SIZE) {
    throw new BootError(
      `no room below the initrd for the launcher's page tables in ${ram >> 20} MiB`,
    );
  }
  const dv = mem.dv;
  for (let p = 0; p < ram >>> 12; p++) dv.setUint32(first + p * 4, (p << 12) | 7, true);
  mem.u8.fill(0, pgdir, pgdir + 4096);
  for (let t = 0; t < ptePages; t++) dv.setUint32(pgdir + t * 4, (first + t * 4096) | 7, true);
  return pgdir;
}

/** The zero page at guest-physical 0 and the command line at 0x1000 (§1.3). */
export function writeBootParams(
  mem: PhysicalMemory,
  ram: number,
  cmdline: string,
  initrdStart: number,
  initrdLen: number,
): void {
  const dv = mem.dv;
  mem.u8.fill(0, 0, 4096);
  dv.setUint16(BP.apmBiosInfo, 0, true);
  mem.u8[BP.e820Entries] = 1;
  dv.setUint32(BP.e820Table, 0, true); // addr (u64)
  dv.setUint32(BP.e820Table + 8, ram, true); // size (u64)
  dv.setUint32(BP.e820Table + 16, E820_RAM, true);
  dv.setUint16(BP.version, 0x0207, true);
  mem.u8[BP.loadflags] = KEEP_SEGMENTS;
  if (initrdLen > 0) {
    mem.u8[BP.typeOfLoader] = 0xff;
    dv.setUint32(BP.ramdiskImage, initrdStart, true);
    dv.setUint32(BP.ramdiskSize, Math.ceil(initrdLen / 4096) * 4096, true);
  }
  dv.setUint32(BP.cmdLinePtr, CMDLINE_ADDR, true);
  dv.setUint32(BP.kernelAlignment, 0x1000000, true);
  dv.setUint32(BP.hardwareSubarch, SUBARCH_LGUEST, true);
  const text = new TextEncoder().encode(cmdline);
  if (text.length >= COMMAND_LINE_SIZE) {
    throw new BootError(`kernel command line longer than ${COMMAND_LINE_SIZE - 1} bytes`);
  }
  mem.u8.fill(0, CMDLINE_ADDR, CMDLINE_ADDR + COMMAND_LINE_SIZE);
  mem.u8.set(text, CMDLINE_ADDR);
}
