/**
 * Multiboot v1 kernels, for the bare machine: the convention GRUB and QEMU's
 * `-kernel` use, so the same small test kernel boots on lguest.ts, QEMU and
 * v86 alike.
 *
 * A Multiboot kernel carries a header (magic 0x1BADB002, flags, checksum) in
 * its first 8 KiB. With flag bit 16 (the "a.out kludge") the header says where
 * to load the file and where to enter it; otherwise the file must be an ELF,
 * loaded by its program headers. The loader enters at ring 0 with flat
 * segments and paging off, EAX = 0x2BADB002 and EBX pointing at a Multiboot
 * information structure (here: memory sizes and the command line).
 *
 * @module
 */

import type { PhysicalMemory } from "../x86/memory.ts";
import { BootError } from "./errors.ts";
import { isElf, loadElf, parseElf } from "./elf.ts";

/** The header magic. */
export const MULTIBOOT_HEADER_MAGIC = 0x1badb002;
/** What the loader leaves in EAX. */
export const MULTIBOOT_BOOTLOADER_MAGIC = 0x2badb002;
/** Where this loader writes the information structure and the command line. */
export const MULTIBOOT_INFO_ADDR = 0x9000, MULTIBOOT_CMDLINE_ADDR = 0x9100;

/** A Multiboot header found in a file. */
export interface MultibootHeader {
  /** File offset of the header. */
  offset: number;
  /** Header flags. */
  flags: number;
  /** a.out kludge fields (valid when flags bit 16 is set). */
  headerAddr: number;
  /** Physical address the file's text starts at. */
  loadAddr: number;
  /** End of the loaded part (0: to the end of the file). */
  loadEndAddr: number;
  /** End of bss (0: none). */
  bssEndAddr: number;
  /** Entry point. */
  entry: number;
}

/** Find a valid Multiboot header in the first 8 KiB (4-byte aligned), or null. */
export function findMultiboot(file: Uint8Array): MultibootHeader | null {
  const dv = new DataView(file.buffer, file.byteOffset, file.byteLength);
  for (let off = 0; off + 12 <= Math.min(file.length, 8192); off += 4) {
    const magic = dv.getUint32(off, true), flags = dv.getUint32(off + 4, true);
    if (magic !== MULTIBOOT_HEADER_MAGIC) continue;
    if (((magic + flags + dv.getUint32(off + 8, true)) >>> 0) !== 0) continue;
    const f = (
      i: number,
    ) => (off + 12 + i * 4 + 4 <= file.length ? dv.getUint32(off + 12 + i * 4, true) : 0);
    return {
      offset: off,
      flags,
      headerAddr: f(0),
      loadAddr: f(1),
      loadEndAddr: f(2),
      bssEndAddr: f(3),
      entry: f(4),
    };
  }
  return null;
}

/**
 * Load a Multiboot kernel into `mem` and write the information structure.
 * Returns the entry point and the structure's address (for EBX).
 */
export function loadMultiboot(
  mem: PhysicalMemory,
  file: Uint8Array,
  h: MultibootHeader,
  name: string,
  cmdline = "",
): { entry: number; info: number } {
  let entry: number;
  if ((h.flags & 0x10000) !== 0) {
    const start = h.offset - (h.headerAddr - h.loadAddr);
    const end = h.loadEndAddr === 0 ? file.length : start + (h.loadEndAddr - h.loadAddr);
    if (start < 0 || end > file.length || end < start) {
      throw new BootError(`${name}: Multiboot load addresses do not match the file`);
    }
    const bssEnd = Math.max(h.bssEndAddr, h.loadAddr + (end - start));
    if (bssEnd > mem.size) {
      throw new BootError(`${name}: does not fit in ${mem.size >> 20} MiB of RAM`);
    }
    mem.load(h.loadAddr, file.subarray(start, end));
    mem.u8.fill(0, h.loadAddr + (end - start), bssEnd);
    entry = h.entry;
  } else if (isElf(file)) {
    const img = parseElf(file, name);
    loadElf(mem, img, file, name);
    entry = img.entry;
  } else throw new BootError(`${name}: Multiboot header without load addresses, and not an ELF`);
  // struct multiboot_info: flags (MEM | CMDLINE), mem_lower, mem_upper (KiB), ..., cmdline.
  const info = MULTIBOOT_INFO_ADDR;
  mem.u8.fill(0, info, info + 0x100);
  mem.write32(info, 0x1 | 0x4);
  mem.write32(info + 4, 640);
  mem.write32(info + 8, Math.max(0, (mem.size - 0x100000) >> 10));
  const text = new TextEncoder().encode(cmdline.slice(0, 0xeff));
  mem.u8.fill(0, MULTIBOOT_CMDLINE_ADDR, MULTIBOOT_CMDLINE_ADDR + text.length + 1);
  mem.load(MULTIBOOT_CMDLINE_ADDR, text);
  mem.write32(info + 16, MULTIBOOT_CMDLINE_ADDR);
  return { entry, info };
}
