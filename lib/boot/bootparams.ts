/**
 * The "zero page": Linux's `struct boot_params`, the 4 KiB block a boot loader
 * hands the kernel in ESI when it enters by the 32-bit boot protocol
 * (Documentation/arch/x86/boot.rst, arch/x86/include/uapi/asm/bootparam.h).
 *
 * A loader starts from the setup header it read out of the bzImage (offset
 * 0x1F1 of the file, copied to the same offset here), fills in what it is
 * responsible for — who it is (`type_of_loader`), where the command line and
 * initrd are, the e820 memory map — and leaves everything else zero. The bare
 * machine and, later, lguest's launcher both build their zero page with
 * {@link buildBootParams}; lguest only adds a few fields (its
 * `hardware_subarch`, a ramdisk), which is why those are options here and not
 * hard-wired.
 *
 * @module
 */

import { BootError } from "./errors.ts";

/** Size of struct boot_params. */
export const BOOT_PARAMS_SIZE = 4096;

/** Offsets in struct boot_params (the setup header's fields are at their file offsets). */
export const BP = {
  /** struct screen_info (0x40 bytes); all zero means "no VGA text console". */
  screenInfo: 0x000,
  /** struct apm_bios_info: its version (u16) 0 means "no APM". */
  apmBiosInfo: 0x040,
  /** tboot_addr (u64). */
  tbootAddr: 0x058,
  /** Extended memory in KiB (u32), for very old kernels. */
  altMemK: 0x1e0,
  /** Scratch used by the decompressor as its very first stack. */
  scratch: 0x1e4,
  /** Number of e820 entries (u8). */
  e820Entries: 0x1e8,
  /** Non-zero when a loader copied boot_params without clearing it (u8). */
  sentinel: 0x1ef,
  /** Start of struct setup_header. */
  hdr: 0x1f1,
  /** setup_header.setup_sects (u8). */
  setupSects: 0x1f1,
  /** setup_header.syssize: protected-mode size in 16-byte paragraphs (u32). */
  syssize: 0x1f4,
  /** setup_header.boot_flag: 0xAA55 (u16). */
  bootFlag: 0x1fe,
  /** setup_header.jump: its high byte + 0x202 is the end of the header (u16). */
  jump: 0x200,
  /** setup_header.header: "HdrS" (u32). */
  header: 0x202,
  /** setup_header.version: boot protocol version, e.g. 0x020F (u16). */
  version: 0x206,
  /** setup_header.kernel_version: offset - 0x200 of a version string (u16). */
  kernelVersion: 0x20e,
  /** setup_header.type_of_loader (u8). */
  typeOfLoader: 0x210,
  /** setup_header.loadflags (u8). */
  loadflags: 0x211,
  /** setup_header.code32_start: 32-bit entry point (u32). */
  code32Start: 0x214,
  /** setup_header.ramdisk_image (u32). */
  ramdiskImage: 0x218,
  /** setup_header.ramdisk_size (u32). */
  ramdiskSize: 0x21c,
  /** setup_header.heap_end_ptr (u16). */
  heapEndPtr: 0x224,
  /** setup_header.cmd_line_ptr (u32). */
  cmdLinePtr: 0x228,
  /** setup_header.initrd_addr_max (u32). */
  initrdAddrMax: 0x22c,
  /** setup_header.kernel_alignment (u32). */
  kernelAlignment: 0x230,
  /** setup_header.relocatable_kernel (u8). */
  relocatableKernel: 0x234,
  /** setup_header.xloadflags (u16). */
  xloadflags: 0x236,
  /** setup_header.cmdline_size (u32). */
  cmdlineSize: 0x238,
  /** setup_header.hardware_subarch (u32): 0 PC, 1 lguest, 2 Xen, … */
  hardwareSubarch: 0x23c,
  /** setup_header.hardware_subarch_data (u64). */
  hardwareSubarchData: 0x240,
  /** setup_header.payload_offset (u32). */
  payloadOffset: 0x248,
  /** setup_header.payload_length (u32). */
  payloadLength: 0x24c,
  /** setup_header.pref_address (u64). */
  prefAddress: 0x258,
  /** setup_header.init_size (u32). */
  initSize: 0x260,
  /** The e820 table: 128 entries of 20 bytes. */
  e820Table: 0x2d0,
} as const;

/** loadflags bits. */
export const LOADED_HIGH = 0x01, KASLR_FLAG = 0x02, QUIET_FLAG = 0x20, KEEP_SEGMENTS = 0x40;
/** loadflags: the loader set heap_end_ptr. */
export const CAN_USE_HEAP = 0x80;

/** hardware_subarch values. */
export const SUBARCH_PC = 0, SUBARCH_LGUEST = 1, SUBARCH_XEN = 2;

/** e820 entry types. */
export const E820_RAM = 1, E820_RESERVED = 2;
/** Most entries struct boot_params has room for. */
export const E820_MAX = 128;

/** One e820 memory-map entry. */
export interface E820Entry {
  /** Physical start. */
  addr: number;
  /** Length in bytes. */
  size: number;
  /** {@link E820_RAM}, {@link E820_RESERVED}, … */
  type: number;
}

/**
 * The memory map of a plain PC with `ramSize` bytes of RAM: usable low memory
 * up to 0x9F000 (the EBDA and the VGA/BIOS hole above it are not RAM on a PC),
 * then usable RAM from 1 MiB to the end.
 */
export function pcMemoryMap(ramSize: number): E820Entry[] {
  const map: E820Entry[] = [{ addr: 0, size: Math.min(ramSize, 0x9f000), type: E820_RAM }];
  if (ramSize > 0x100000) map.push({ addr: 0x100000, size: ramSize - 0x100000, type: E820_RAM });
  return map;
}

/** What a loader puts in the zero page besides the kernel's own setup header. */
export interface BootParamsOptions {
  /**
   * The setup header as read from the kernel file: bytes from file offset
   * 0x1F1 to the end of the header. Copied to offset 0x1F1.
   */
  setupHeader: Uint8Array;
  /** Physical address of the NUL-terminated command line (0 = none). */
  cmdLinePtr: number;
  /** The e820 map (at most {@link E820_MAX} entries). */
  e820: E820Entry[];
  /** type_of_loader (default 0xFF: "undefined", what a loader with no assigned ID uses). */
  typeOfLoader?: number;
  /** Bits OR-ed into the file's loadflags (default LOADED_HIGH). */
  loadflagsSet?: number;
  /** Bits cleared from the file's loadflags (default none). */
  loadflagsClear?: number;
  /** hardware_subarch (default: left as in the file, normally 0 = PC). */
  hardwareSubarch?: number;
  /** Physical address of the initrd (default 0 = none). */
  ramdiskImage?: number;
  /** Size of the initrd in bytes (default 0). */
  ramdiskSize?: number;
  /** heap_end_ptr; when given, CAN_USE_HEAP is set too. */
  heapEndPtr?: number;
}

/** Build a struct boot_params (4096 bytes) from a kernel's setup header and the loader's choices. */
export function buildBootParams(o: BootParamsOptions): Uint8Array {
  const zp = new Uint8Array(BOOT_PARAMS_SIZE);
  const dv = new DataView(zp.buffer);
  if (o.setupHeader.length > BP.e820Table - BP.hdr) {
    throw new BootError(
      `setup header of ${o.setupHeader.length} bytes does not fit in boot_params`,
    );
  }
  if (o.e820.length > E820_MAX) {
    throw new BootError(`${o.e820.length} e820 entries: boot_params has room for ${E820_MAX}`);
  }
  zp.set(o.setupHeader, BP.hdr);
  zp[BP.typeOfLoader] = o.typeOfLoader ?? 0xff;
  let lf = zp[BP.loadflags] | (o.loadflagsSet ?? LOADED_HIGH);
  lf &= ~(o.loadflagsClear ?? 0);
  if (o.heapEndPtr !== undefined) {
    dv.setUint16(BP.heapEndPtr, o.heapEndPtr, true);
    lf |= CAN_USE_HEAP;
  }
  zp[BP.loadflags] = lf;
  dv.setUint32(BP.cmdLinePtr, o.cmdLinePtr >>> 0, true);
  dv.setUint32(BP.ramdiskImage, (o.ramdiskImage ?? 0) >>> 0, true);
  dv.setUint32(BP.ramdiskSize, (o.ramdiskSize ?? 0) >>> 0, true);
  if (o.hardwareSubarch !== undefined) dv.setUint32(BP.hardwareSubarch, o.hardwareSubarch, true);
  zp[BP.e820Entries] = o.e820.length;
  o.e820.forEach((e, i) => {
    const at = BP.e820Table + 20 * i;
    dv.setBigUint64(at, BigInt(e.addr), true);
    dv.setBigUint64(at + 8, BigInt(e.size), true);
    dv.setUint32(at + 16, e.type, true);
  });
  // alt_mem_k: extended memory above 1 MiB, for kernels that look nowhere else.
  const ram = o.e820.filter((e) => e.type === E820_RAM && e.addr >= 0x100000);
  const top = ram.reduce((t, e) => Math.max(t, e.addr + e.size), 0x100000);
  dv.setUint32(BP.altMemK, Math.min(0xffffffff, (top - 0x100000) / 1024) >>> 0, true);
  return zp;
}
