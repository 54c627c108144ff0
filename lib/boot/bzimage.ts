/**
 * bzImage: loading a Linux kernel by the 32-bit boot protocol
 * (Documentation/arch/x86/boot.rst), the way a boot loader that skips the
 * kernel's real-mode setup code does.
 *
 * A bzImage is the real-mode setup code (`setup_sects` sectors after the boot
 * sector, with the setup header at 0x1F1) followed by the protected-mode part:
 * the decompressor and, inside it, the compressed kernel. A 32-bit loader
 * ignores the real-mode part, copies the protected-mode part to 1 MiB, writes a
 * zero page (struct boot_params, {@link buildBootParams}) and a command line,
 * and jumps to `code32_start` in flat 32-bit protected mode with
 * `__BOOT_CS` = 0x10 and `__BOOT_DS` = 0x18 from a GDT, ESI pointing at the
 * zero page, paging and interrupts off. The decompressor then moves itself
 * out of the way, unpacks the kernel to its load address (`pref_address`, or
 * the next `kernel_alignment` boundary above where it was loaded) and jumps
 * there.
 *
 * {@link parseBzImage} checks the header; {@link loadBzImage} lays out memory;
 * {@link enterBzImage32} sets up the CPU. lguest's launcher reuses the first
 * two with its own boot_params options.
 *
 * @module
 */

import { BootError } from "./errors.ts";
import {
  type BootParamsOptions,
  BP,
  buildBootParams,
  type E820Entry,
  LOADED_HIGH,
  pcMemoryMap,
} from "./bootparams.ts";
import type { PhysicalMemory } from "../x86/memory.ts";
import { type CPU, CR0_PG, CS, DS, EBP, EBX, EDI, ES, ESI, FS, GS, SS } from "../x86/cpu.ts";
import { IF } from "../x86/flags.ts";

/** Oldest boot protocol accepted: 2.06 has cmdline_size and the 32-bit entry as documented. */
export const MIN_BOOT_PROTOCOL = 0x206;
/** Where the protected-mode code goes: 1 MiB ("loaded high"). */
export const BZIMAGE_LOAD_ADDR = 0x100000;
/** The boot protocol's code and data selectors. */
export const BOOT_CS = 0x10, BOOT_DS = 0x18;

/** The setup header fields a loader needs, decoded. */
export interface SetupHeader {
  /** Boot protocol version, e.g. 0x20F for 2.15. */
  version: number;
  /** Real-mode setup sectors after the boot sector (0 in the file is read as 4). */
  setupSects: number;
  /** loadflags as in the file. */
  loadflags: number;
  /** 32-bit entry point (normally 0x100000). */
  code32Start: number;
  /** Alignment a relocatable kernel wants (0 before protocol 2.05). */
  kernelAlignment: number;
  /** True when the decompressor can run from any aligned address. */
  relocatable: boolean;
  /** Longest command line the kernel takes, without the NUL. */
  cmdlineSize: number;
  /** Preferred load address of the decompressed kernel (protocol 2.10+; else 1 MiB). */
  prefAddress: number;
  /** Memory the kernel needs from its load address while it decompresses (protocol 2.10+; else 0). */
  initSize: number;
  /** Offset of the compressed payload within the protected-mode part (2.08+; else 0). */
  payloadOffset: number;
  /** Length of the compressed payload (2.08+; else 0). */
  payloadLength: number;
  /** Highest address an initrd may end at (2.03+). */
  initrdAddrMax: number;
  /** The kernel's version string (from kernel_version), or "". */
  kernelVersion: string;
}

/** A parsed bzImage. */
export interface BzImage {
  /** The decoded setup header. */
  header: SetupHeader;
  /** The raw setup header, file offsets 0x1F1 up to its end (what goes into boot_params). */
  setupHeader: Uint8Array;
  /** The protected-mode part (file offset (setup_sects + 1) * 512 onwards). */
  protectedMode: Uint8Array;
}

/** True when `bytes` has the boot protocol's "HdrS" signature at 0x202. */
export function isBzImage(bytes: Uint8Array): boolean {
  return bytes.length >= 0x206 && bytes[0x202] === 0x48 && bytes[0x203] === 0x64 &&
    bytes[0x204] === 0x72 && bytes[0x205] === 0x53;
}

const hex = (n: number) => `0x${n.toString(16)}`;

/** Parse a bzImage's setup header; every malformed input is a {@link BootError}. */
export function parseBzImage(bytes: Uint8Array, name = "bzImage"): BzImage {
  if (bytes.length < 0x206) throw new BootError(`${name}: too short for a bzImage setup header`);
  if (!isBzImage(bytes)) {
    throw new BootError(`${name}: no bzImage setup header (no "HdrS" at 0x202)`);
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = dv.getUint16(BP.version, true);
  if (version < MIN_BOOT_PROTOCOL) {
    throw new BootError(
      `${name}: boot protocol ${version >> 8}.${(version & 0xff).toString().padStart(2, "0")} is ` +
        `too old (need 2.06 or later)`,
    );
  }
  // The header ends at 0x202 + the jump's displacement byte; 2.06 ends at cmdline_size.
  const hdrEnd = 0x202 + bytes[0x201];
  if (hdrEnd < BP.cmdlineSize + 4 || hdrEnd > BP.e820Table) {
    throw new BootError(`${name}: setup header length ${hex(hdrEnd)} makes no sense`);
  }
  if (bytes.length < hdrEnd) throw new BootError(`${name}: truncated setup header`);
  const setupSects = bytes[BP.setupSects] || 4;
  const pmStart = (setupSects + 1) * 512;
  if (bytes.length <= pmStart) {
    throw new BootError(
      `${name}: file ends before its protected-mode code (setup_sects ${setupSects})`,
    );
  }
  const u32 = (o: number) => (o + 4 <= hdrEnd ? dv.getUint32(o, true) : 0);
  if (version >= 0x20a && hdrEnd >= BP.prefAddress + 8 && u32(BP.prefAddress + 4) !== 0) {
    throw new BootError(`${name}: pref_address above 4 GiB`);
  }
  const kvOff = dv.getUint16(BP.kernelVersion, true);
  let kernelVersion = "";
  if (kvOff !== 0 && kvOff + 0x200 < pmStart) {
    let e = kvOff + 0x200;
    while (e < pmStart && bytes[e] !== 0 && e - kvOff < 0x400) e++;
    kernelVersion = String.fromCharCode(...bytes.subarray(kvOff + 0x200, e));
  }
  const header: SetupHeader = {
    version,
    setupSects,
    loadflags: bytes[BP.loadflags],
    code32Start: u32(BP.code32Start),
    kernelAlignment: version >= 0x205 ? u32(BP.kernelAlignment) : 0,
    relocatable: version >= 0x205 && bytes[BP.relocatableKernel] !== 0,
    cmdlineSize: u32(BP.cmdlineSize),
    prefAddress: version >= 0x20a ? u32(BP.prefAddress) : BZIMAGE_LOAD_ADDR,
    initSize: version >= 0x20a ? u32(BP.initSize) : 0,
    payloadOffset: version >= 0x208 ? u32(BP.payloadOffset) : 0,
    payloadLength: version >= 0x208 ? u32(BP.payloadLength) : 0,
    initrdAddrMax: u32(BP.initrdAddrMax),
    kernelVersion,
  };
  if ((header.loadflags & LOADED_HIGH) === 0) {
    throw new BootError(`${name}: a zImage (loaded low): only bzImage is supported`);
  }
  return {
    header,
    setupHeader: bytes.slice(BP.hdr, hdrEnd),
    protectedMode: bytes.subarray(pmStart),
  };
}

/** Where {@link loadBzImage} puts things, and the loader's choices. */
export interface BzImageLoadOptions {
  /** The kernel command line (default ""). */
  cmdline?: string;
  /** Physical address of the zero page (default 0x10000). */
  bootParamsAddr?: number;
  /** Physical address of the command line (default 0x20000). */
  cmdlineAddr?: number;
  /** The e820 map (default: {@link pcMemoryMap} of all of RAM). */
  e820?: E820Entry[];
  /** More boot_params fields (hardware_subarch, ramdisk, …) for other loaders. */
  bootParams?: Omit<BootParamsOptions, "setupHeader" | "cmdLinePtr" | "e820">;
}

/** What {@link loadBzImage} did. */
export interface BzImageLayout {
  /** 32-bit entry point (code32_start). */
  entry: number;
  /** Physical address of the zero page (goes in ESI). */
  bootParams: number;
  /** Physical address of the command line. */
  cmdline: number;
  /** Where the decompressor will put the kernel: the lowest RAM it needs. */
  kernelLoad: number;
  /** Top of what the kernel needs while decompressing (kernelLoad + init_size). */
  kernelEnd: number;
}

/**
 * Where a decompressor loaded at `loadAddr` puts the kernel (nokaslr): a
 * relocatable one at `loadAddr` rounded up to `kernel_alignment`, but never
 * below `pref_address` (LOAD_PHYSICAL_ADDR); otherwise `pref_address`.
 */
export function kernelLoadAddress(h: SetupHeader, loadAddr = BZIMAGE_LOAD_ADDR): number {
  if (!h.relocatable || h.kernelAlignment === 0) return h.prefAddress;
  const a = h.kernelAlignment;
  const aligned = Math.ceil(loadAddr / a) * a;
  return Math.max(aligned, h.prefAddress);
}

/**
 * Copy a bzImage's protected-mode part to 1 MiB, write the command line and
 * the zero page. Throws {@link BootError} when RAM is too small or the
 * command line too long.
 */
export function loadBzImage(
  mem: PhysicalMemory,
  img: BzImage,
  opts: BzImageLoadOptions = {},
  name = "bzImage",
): BzImageLayout {
  const h = img.header;
  const bpAddr = opts.bootParamsAddr ?? 0x10000;
  const clAddr = opts.cmdlineAddr ?? 0x20000;
  const cmdline = opts.cmdline ?? "";
  if (cmdline.length > h.cmdlineSize) {
    throw new BootError(
      `${name}: command line of ${cmdline.length} bytes is longer than the kernel's ${h.cmdlineSize}`,
    );
  }
  const pmEnd = BZIMAGE_LOAD_ADDR + img.protectedMode.length;
  const kernelLoad = kernelLoadAddress(h);
  const kernelEnd = kernelLoad + h.initSize;
  const need = Math.max(pmEnd, kernelEnd);
  if (need > mem.size) {
    throw new BootError(
      `${name}: needs ${Math.ceil(need / (1 << 20))} MiB of RAM to decompress ` +
        `(kernel at ${hex(kernelLoad)}, init_size ${hex(h.initSize)}), have ${mem.size >> 20} MiB`,
    );
  }
  for (
    const [what, at, len] of [["zero page", bpAddr, 4096], [
      "command line",
      clAddr,
      cmdline.length + 1,
    ]] as const
  ) {
    if (at < 0 || at + len > 0x9f000) {
      throw new BootError(`${name}: ${what} at ${hex(at)} is not in low memory`);
    }
  }
  if (bpAddr < clAddr + cmdline.length + 1 && clAddr < bpAddr + 4096) {
    throw new BootError(`${name}: command line overlaps the zero page`);
  }
  mem.load(BZIMAGE_LOAD_ADDR, img.protectedMode);
  const cl = new Uint8Array(cmdline.length + 1);
  for (let i = 0; i < cmdline.length; i++) {
    const c = cmdline.charCodeAt(i);
    if (c > 0xff || c === 0) {
      throw new BootError(`${name}: command line has a character that is not Latin-1`);
    }
    cl[i] = c;
  }
  mem.load(clAddr, cl);
  const zp = buildBootParams({
    setupHeader: img.setupHeader,
    cmdLinePtr: clAddr,
    e820: opts.e820 ?? pcMemoryMap(mem.size),
    ...opts.bootParams,
  });
  mem.load(bpAddr, zp);
  return { entry: h.code32Start, bootParams: bpAddr, cmdline: clAddr, kernelLoad, kernelEnd };
}

/**
 * Enter a loaded bzImage the way the 32-bit boot protocol says: a GDT at
 * `gdtAddr` with flat 4 GiB code at 0x10 and data at 0x18, those selectors in
 * CS and DS/ES/SS (FS, GS too), ring 0, paging and interrupts off, ESI = the
 * zero page, EBP = EDI = EBX = 0, EIP = code32_start.
 */
export function enterBzImage32(cpu: CPU, layout: BzImageLayout, gdtAddr = 0x1000): void {
  const mem = cpu.mem;
  // null, null, 0x10: code base 0 limit 4G exec/read; 0x18: data base 0 limit 4G read/write
  const gdt = [0, 0, 0, 0, 0x0000ffff, 0x00cf9a00, 0x0000ffff, 0x00cf9200];
  gdt.forEach((d, i) => mem.write32(gdtAddr + 4 * i, d));
  cpu.gdtBase = gdtAddr;
  cpu.gdtLimit = gdt.length * 4 - 1;
  cpu.cr0 &= ~CR0_PG;
  cpu.setCpl(0);
  cpu.flushTlb();
  cpu.setSegFlat(CS, BOOT_CS, 0);
  for (const s of [DS, ES, SS, FS, GS]) cpu.setSegFlat(s, BOOT_DS, 0);
  cpu.setEflags(cpu.getEflags() & ~IF);
  cpu.regs[ESI] = layout.bootParams;
  cpu.regs[EBP] = cpu.regs[EDI] = cpu.regs[EBX] = 0;
  cpu.eip = layout.entry;
}
