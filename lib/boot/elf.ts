/**
 * ELF32 executables: parse the header and program headers of an i386 `vmlinux`
 * or test kernel and load its PT_LOAD segments by physical address (p_paddr),
 * as lguest's launcher does. Symbols, when present, are read for the debugger.
 *
 * Every inconsistency (not ELF, wrong class or machine, truncated headers,
 * segments past the end of the file, with more file than memory, overlapping
 * one another in physical memory, or outside RAM) is a {@link BootError}.
 *
 * @module
 */

import { BootError } from "./errors.ts";
import type { PhysicalMemory } from "../x86/memory.ts";

/** One PT_LOAD segment. */
export interface ElfSegment {
  /** File offset of the bytes. */
  offset: number;
  /** Virtual address. */
  vaddr: number;
  /** Physical address (where the launcher loads it). */
  paddr: number;
  /** Bytes in the file. */
  filesz: number;
  /** Bytes in memory (the rest is zeroed). */
  memsz: number;
}

/** A parsed ELF32 executable. */
export interface ElfImage {
  /** Entry point (virtual). */
  entry: number;
  /** PT_LOAD segments. */
  segments: ElfSegment[];
  /** Function and object symbols by name (empty if stripped). */
  symbols: Map<string, number>;
}

const PT_LOAD = 1;

/** True when `bytes` starts with the ELF magic. */
export function isElf(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x7f && bytes[1] === 0x45 && bytes[2] === 0x4c &&
    bytes[3] === 0x46;
}

/** Parse an i386 ELF32 executable. */
export function parseElf(bytes: Uint8Array, name = "kernel"): ElfImage {
  if (!isElf(bytes)) throw new BootError(`${name}: not an ELF file`);
  if (bytes.length < 52) throw new BootError(`${name}: truncated ELF header`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes[4] !== 1) throw new BootError(`${name}: not a 32-bit ELF (class ${bytes[4]})`);
  if (bytes[5] !== 1) throw new BootError(`${name}: not little-endian`);
  const machine = dv.getUint16(18, true);
  if (machine !== 3) throw new BootError(`${name}: not an i386 ELF (e_machine ${machine})`);
  const entry = dv.getUint32(24, true);
  const phoff = dv.getUint32(28, true);
  const phentsize = dv.getUint16(42, true);
  const phnum = dv.getUint16(44, true);
  if (phnum === 0) throw new BootError(`${name}: ELF has no program headers`);
  if (phentsize < 32 || phoff + phnum * phentsize > bytes.length) {
    throw new BootError(`${name}: truncated program headers`);
  }
  const segments: ElfSegment[] = [];
  const index: number[] = []; // program header number of each segment, for messages
  for (let i = 0; i < phnum; i++) {
    const o = phoff + i * phentsize;
    if (dv.getUint32(o, true) !== PT_LOAD) continue;
    const seg = {
      offset: dv.getUint32(o + 4, true),
      vaddr: dv.getUint32(o + 8, true),
      paddr: dv.getUint32(o + 12, true),
      filesz: dv.getUint32(o + 16, true),
      memsz: dv.getUint32(o + 20, true),
    };
    if (seg.offset + seg.filesz > bytes.length) {
      throw new BootError(`${name}: segment ${i} runs past the end of the file`);
    }
    if (seg.filesz > seg.memsz) throw new BootError(`${name}: segment ${i} has filesz > memsz`);
    segments.push(seg);
    index.push(i);
  }
  if (segments.length === 0) throw new BootError(`${name}: ELF has no PT_LOAD segments`);
  // Loaded by physical address, one segment over another would silently lose bytes.
  const order = segments.map((_, k) => k).filter((k) => segments[k].memsz > 0)
    .sort((a, b) => segments[a].paddr - segments[b].paddr);
  for (let k = 1; k < order.length; k++) {
    const a = segments[order[k - 1]], b = segments[order[k]];
    if (a.paddr + a.memsz > b.paddr) {
      const [i, j] = [index[order[k - 1]], index[order[k]]].sort((x, y) => x - y);
      throw new BootError(
        `${name}: segments ${i} and ${j} overlap at physical 0x${b.paddr.toString(16)}`,
      );
    }
  }
  return { entry, segments, symbols: readSymbols(bytes, dv) };
}

/**
 * The function and object symbols of an ELF32 file's symbol tables (any ELF
 * type: an executable, vmlinux, an object file); empty when it has none.
 */
export function elfSymbols(bytes: Uint8Array, name = "file"): Map<string, number> {
  if (!isElf(bytes)) throw new BootError(`${name}: not an ELF file`);
  if (bytes.length < 52 || bytes[4] !== 1) throw new BootError(`${name}: not a 32-bit ELF`);
  return readSymbols(bytes, new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength));
}

function readSymbols(bytes: Uint8Array, dv: DataView): Map<string, number> {
  const syms = new Map<string, number>();
  const shoff = dv.getUint32(32, true), shentsize = dv.getUint16(46, true);
  const shnum = dv.getUint16(48, true);
  if (shoff === 0 || shentsize < 40 || shoff + shnum * shentsize > bytes.length) return syms;
  for (let i = 0; i < shnum; i++) {
    const o = shoff + i * shentsize;
    if (dv.getUint32(o + 4, true) !== 2) continue; // SHT_SYMTAB
    const off = dv.getUint32(o + 16, true), size = dv.getUint32(o + 20, true);
    const link = dv.getUint32(o + 24, true);
    const so = shoff + link * shentsize;
    if (link >= shnum || off + size > bytes.length) continue;
    const stroff = dv.getUint32(so + 16, true), strsize = dv.getUint32(so + 20, true);
    if (stroff + strsize > bytes.length) continue;
    const dec = new TextDecoder();
    for (let s = off; s + 16 <= off + size; s += 16) {
      const nameOff = dv.getUint32(s, true), value = dv.getUint32(s + 4, true);
      const type = bytes[s + 12] & 0xf;
      if ((type !== 1 && type !== 2) || nameOff === 0 || nameOff >= strsize) continue;
      let e = stroff + nameOff;
      while (e < stroff + strsize && bytes[e] !== 0) e++;
      syms.set(dec.decode(bytes.subarray(stroff + nameOff, e)), value);
    }
  }
  return syms;
}

/**
 * Copy the PT_LOAD segments into RAM at their physical addresses, zeroing the
 * bss tails. Every segment must lie within [`start`, `end`) (by default all
 * of `mem`); `where` names that range in the error. Returns the end of the
 * highest segment.
 */
export function loadElf(
  mem: PhysicalMemory,
  img: ElfImage,
  bytes: Uint8Array,
  name = "kernel",
  start = 0,
  end = mem.size,
  where = `${mem.size >> 20} MiB of RAM`,
): number {
  let top = 0;
  for (const s of img.segments) {
    if (s.paddr < start || s.paddr + s.memsz > end) {
      throw new BootError(
        `${name}: segment at 0x${s.paddr.toString(16)} (+0x${
          s.memsz.toString(16)
        }) lies outside ${where}`,
      );
    }
    top = Math.max(top, s.paddr + s.memsz);
  }
  for (const s of img.segments) {
    mem.u8.set(bytes.subarray(s.offset, s.offset + s.filesz), s.paddr);
    mem.u8.fill(0, s.paddr + s.filesz, s.paddr + s.memsz);
  }
  return top;
}
