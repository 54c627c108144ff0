/**
 * Seeded hostile guests for the host fuzzer: from a seed, an lguest kernel
 * (an ELF image, built with the guest builder) that attacks the host from
 * every side it has, and keeps going after each of its own faults.
 *
 * The guest installs a gate for every vector: faults, software interrupts
 * and system calls go to one handler that reloads the kernel's segments and
 * stack and jumps to the *resume point* — the program is a chain of blocks,
 * each of which first stores the address of the next one there — so a fault
 * aborts only the rest of its block. IRQs go to a handler that counts them,
 * re-enables virtual interrupts, may re-arm the clock event, and IRETs.
 *
 * It builds its own page tables in its image — several address spaces (more
 * than the host caches), a shared kernel table, an alias of it in the kernel
 * half, a table mapping the device window (the devices' BAR0s) identically,
 * "playground" tables — in non-PAE or PAE form, and its blocks then do, in a
 * seeded random order: valid and wild hypercalls; page-table edits written
 * into its tables, in benign and hostile shapes (a directory entry without
 * RW or U/S over permissive PTEs, huge pages, frames outside RAM, in the
 * device window, in the host's pool, above 4 GiB), reported to the host or
 * not; loads and stores everywhere (its playground, the kernel half, the
 * switcher's GDT page, its own tables and code); sweeps over many 4 MiB
 * regions (to run the host's page pool dry); MMIO to the devices' registers
 * (and, rarely, at wrong widths and past them); PCI configuration through 0xCF8/0xCFC (moving BAR0, the
 * PCI_CFG window); the virtio devices (console, block, entropy) brought up as
 * a driver does and fed descriptor chains, mostly well-formed, some not; the
 * clock event, IRQs and HALT; batches in the async hypercall ring; ring-3 excursions (IRET to user segments, back through
 * `int $0x80` or a fault); GDT, TLS and segment-register games; privileged
 * instructions at ring 1 and 3; bursts of console output; and random bytes.
 * The chain loops, so a guest that survives runs until its budget ends.
 * Some guests also move the kernel half (lguest_data.kernel_address) far from
 * 0xC0000000, name an instruction as their interrupt-return (noirq_iret), or
 * boot the 2007 way on the launcher's page tables.
 *
 * Everything is a pure function of the seed: the same seed gives the same
 * image, byte for byte.
 *
 * @module
 */

import { elf32, R, type Value, X86 } from "./guest_builder.ts";
import { LGUEST_DATA, LHCALL, LHCALL_RING_SIZE } from "../lguest/abi.ts";

/** Guest page-table geometry of a fuzz guest. */
export type FuzzKind = "nonpae" | "pae";

/** A built fuzz guest. */
export interface FuzzGuest {
  /** The kernel image (ELF). */
  elf: Uint8Array;
  /** Guest RAM in MiB (fixed: the layout below depends on it). */
  memMiB: number;
  /** Host pages to give the launcher (small ones run the pool dry). */
  hostPages: number;
  /** PAE geometry. */
  pae: boolean;
  /** Blocks in the program chain. */
  blocks: number;
  /** The launcher's page tables at boot: none (2011, linear) or its own (2007, non-PAE only). */
  pagetables: "linear" | "launcher";
  /** The block holding guest address `eip`, with its kind (e.g. "b17 ptedit"), or "". */
  blockAt(eip: number): string;
}

/** Guest RAM: 8 MiB, so the device window is [8 MiB, 9 MiB + 4 KiB) and BAR0 is at 9 MiB. */
export const FUZZ_MEM_MIB = 8;
const RAM = FUZZ_MEM_MIB << 20;
const DEV = RAM, BAR = RAM + 0x100000;
/** The host's pool starts after the device window. */
const POOL = BAR + 0x1000;

const CODE = 0x100000;
const DATA = 0x170000;
const VARS = 0x171000;
const RESUME = VARS, FAULTS = VARS + 4, IRQS = VARS + 8, TIMER_DELTA = VARS + 12;
const ASYNC_NEXT = VARS + 16;
const TLS = VARS + 0x100, FAKE_DTR = VARS + 0x200;
const KSTACK_TOP = 0x174000, USTACK_TOP = 0x176000;
const DATA_END = 0x178000;
const TABLES = 0x200000;
const SCRATCH = 0x300000, SCRATCH_END = 0x800000;
const KERNEL_CS = 0x61, KERNEL_DS = 0x69, USER_CS = 0x73, USER_DS = 0x7b;
const KERNEL_HALF = 0xc0000000;
const SWITCHER = 0xffc00000;
const EMERG_WR = BAR + 68;
/** The console's register file in its BAR0 (its device config ends at 72). */
const CONSOLE_REGS = 72;

/** A virtio device as the launcher plugs it (console, block, entropy: slots 1, 2, 3). */
interface Device {
  name: string;
  /** BAR0's guest-physical address. */
  bar: number;
  /** BAR0's size, and the bytes of it that hold registers. */
  barSize: number;
  regs: number;
  /** Number of virtqueues. */
  queues: number;
  /** The low feature word it offers. */
  featuresLo: number;
}
/** The devices the fuzzer's launcher plugs, where the launcher puts them. */
const DEVICES: readonly Device[] = [
  { name: "console", bar: BAR, barSize: 128, regs: 72, queues: 2, featuresLo: 1 << 2 },
  { name: "block", bar: BAR + 0x80, barSize: 128, regs: 96, queues: 1, featuresLo: 1 << 2 },
  { name: "rng", bar: BAR + 0x100, barSize: 64, regs: 60, queues: 1, featuresLo: 0 },
];
/** Common-configuration registers any driver may read (or select) at any time: offset, width, write. */
const SAFE_REGS: readonly [number, number, boolean][] = [
  [0, 4, false],
  [8, 4, false],
  [18, 2, false],
  [20, 1, false],
  [21, 1, false],
  [22, 2, false],
  [22, 2, true],
  [24, 2, false],
  [26, 2, false],
  [28, 2, false],
  [30, 2, false],
  [32, 4, false],
  [40, 4, false],
  [48, 4, false],
  [58, 1, false],
];
/** The guest's virtqueues and their buffers: [VQ_RINGS, VQ_BUFS) and [VQ_BUFS, TABLES). */
const VQ_RINGS = 0x180000, VQ_BUFS = 0x1c0000;
/** Where the rings of queue `q` of device `d` live, and their size. */
function vring(d: Device, q: number): { desc: number; avail: number; used: number; size: number } {
  const base = VQ_RINGS + (DEVICES.indexOf(d) * 2 + q) * 0x2000;
  return { desc: base, avail: base + 0x800, used: base + 0x1000, size: 16 };
}

/** xorshift32: the same sequence on every runtime. */
export function rng(seed: number): () => number {
  let x = (seed ^ 0x9e3779b9) | 0 || 1;
  for (let i = 0; i < 8; i++) x = step(x);
  return () => (x = step(x)) >>> 0;
  function step(v: number): number {
    v ^= v << 13;
    v ^= v >>> 17;
    v ^= v << 5;
    return v;
  }
}

/** One page-table entry the guest may edit: where it is and what it governs. */
interface Entry {
  /** Guest-physical (= virtual) address of the entry. */
  at: number;
  /** "top" (PGD / PDPT entry), "pmd" (PAE) or "pte". */
  level: "top" | "pmd" | "pte";
  /** A virtual address it governs, in the address space `pgdir`. */
  vaddr: number;
  /** The top-level table it hangs under. */
  pgdir: number;
  /** Its index in its table. */
  idx: number;
  /** It maps the guest's own kernel (editing it risks the guest's life). */
  kernel: boolean;
}

/** Build the fuzz guest of `seed`. */
export function buildFuzzGuest(seed: number, kind: FuzzKind): FuzzGuest {
  const r = rng(seed * 2 + (kind === "pae" ? 1 : 0));
  const pick = <T>(xs: readonly T[]): T => xs[r() % xs.length];
  const chance = (p: number) => r() / 0x100000000 < p;
  const below = (n: number) => r() % n;
  const pae = kind === "pae";
  const esz = pae ? 8 : 4;

  // ------------------------------------------------------------ page tables
  const tables = new Uint8Array(SCRATCH - TABLES);
  const tdv = new DataView(tables.buffer);
  let nextPage = TABLES;
  const newPage = () => {
    const p = nextPage;
    nextPage += 4096;
    return p;
  };
  const put = (at: number, lo: number, hi = 0) => {
    tdv.setUint32(at - TABLES, lo >>> 0, true);
    if (pae) tdv.setUint32(at - TABLES + 4, hi >>> 0, true);
  };
  const entries: Entry[] = [];
  const perTable = pae ? 512 : 1024;
  const ptSpan = pae ? 0x200000 : 0x400000;
  const dirty = chance(0.7); // most seeds set A and D in their tables; the rest leave them to the host
  const ad = dirty ? 0x60 : 0;

  // The kernel's identity table(s) for 0..4 MiB: code read-only, all user-accessible.
  const kernelPts: number[] = [];
  for (let t = 0; t < 0x400000 / ptSpan; t++) {
    const pt = newPage();
    kernelPts.push(pt);
    for (let i = 0; i < perTable; i++) {
      const pa = t * ptSpan + i * 4096;
      const code = pa >= CODE && pa < DATA;
      put(pt + i * esz, pa | 0x5 | (code ? 0x20 : 0x2 | ad));
    }
  }
  // The device window, mapped identically (so linear mode and paging agree), BAR0 last.
  const devPts: number[] = [];
  for (let t = 0; t < 0x400000 / ptSpan; t++) devPts.push(newPage());
  for (let i = 0; i < 257; i++) {
    const va = DEV + i * 4096;
    const t = Math.floor((va - 0x800000) / ptSpan), k = ((va - 0x800000) % ptSpan) / 4096;
    if (t < devPts.length) put(devPts[t] + k * esz, va | 0x7 | ad);
  }
  // Playground tables: frames in scratch RAM with assorted flags, a few MMIO and aliases.
  const playPts: number[] = [];
  for (let t = 0, n = 3 + below(4); t < n; t++) {
    const pt = newPage();
    playPts.push(pt);
    for (let i = 0; i < perTable; i++) {
      if (chance(0.4)) continue;
      put(pt + i * esz, playFrame() | pick([0x67, 0x67, 0x27, 0x65, 0x25, 0x07, 0x05, 0x63]));
    }
  }
  function playFrame(): number {
    const x = r() % 100;
    if (x < 94) return SCRATCH + below((SCRATCH_END - SCRATCH) >> 12) * 4096;
    if (x < 95) return TABLES + below((nextPage - TABLES) >> 12) * 4096; // its own tables
    if (x < 99) return DEV + below(257) * 4096; // device pages and BAR0
    return chance(0.5) ? DATA : CODE + below(16) * 4096; // lguest_data, its code
  }

  /**
   * Flags for a directory entry: with probability `narrow`, one that takes away
   * RW or U/S from permissive PTEs below it (a write or user access through it
   * must fault, however the PTE reads); else a permissive one.
   */
  function dirFlags(narrow: number): number {
    return chance(narrow)
      ? pick([0x65, 0x63, 0x61, 0x25, 0x21, 0x05, 0x01])
      : pick([0x67, 0x27, 0x07]);
  }

  // Address spaces: more than the host's four slots sometimes.
  const pgdirs: number[] = [];
  const kernelHalfIdx = pae ? 3 : KERNEL_HALF >>> 22;
  for (let s = 0, n = 2 + below(5); s < n; s++) {
    const top = newPage();
    pgdirs.push(top);
    if (!pae) {
      put(top, kernelPts[0] | 0x67);
      entries.push({ at: top, level: "top", vaddr: 0x1000, pgdir: top, idx: 0, kernel: true });
      put(top + 2 * 4, devPts[0] | 0x67);
      entries.push({ at: top + 8, level: "top", vaddr: DEV, pgdir: top, idx: 2, kernel: false });
      if (chance(0.7)) put(top + kernelHalfIdx * 4, kernelPts[0] | 0x67);
      entries.push({
        at: top + kernelHalfIdx * 4,
        level: "top",
        vaddr: KERNEL_HALF,
        pgdir: top,
        idx: kernelHalfIdx,
        kernel: false,
      });
      for (const i of [1, ...Array.from({ length: 13 }, (_, k) => k + 3)]) {
        if (!chance(0.8)) continue;
        put(top + i * 4, pick(playPts) | dirFlags(0.02));
        entries.push({
          at: top + i * 4,
          level: "top",
          vaddr: i << 22,
          pgdir: top,
          idx: i,
          kernel: false,
        });
      }
      continue;
    }
    // PAE: the PDPT in its own page; PMD pages for entries 0 and 3.
    const pmd0 = newPage(), pmd3 = newPage();
    put(top, pmd0 | 1);
    entries.push({ at: top, level: "top", vaddr: 0x1000, pgdir: top, idx: 0, kernel: true });
    if (chance(0.7)) put(top + 24, pmd3 | 1);
    entries.push({
      at: top + 24,
      level: "top",
      vaddr: KERNEL_HALF,
      pgdir: top,
      idx: 3,
      kernel: false,
    });
    for (let j = 0; j < 2; j++) {
      put(pmd0 + j * 8, kernelPts[j] | 0x67);
      entries.push({
        at: pmd0 + j * 8,
        level: "pmd",
        vaddr: j << 21,
        pgdir: top,
        idx: j,
        kernel: true,
      });
      put(pmd3 + j * 8, kernelPts[j] | 0x67);
      entries.push({
        at: pmd3 + j * 8,
        level: "pmd",
        vaddr: KERNEL_HALF + (j << 21),
        pgdir: top,
        idx: j,
        kernel: false,
      });
    }
    for (let j = 0; j < 2; j++) put(pmd0 + (4 + j) * 8, devPts[j] | 0x67);
    for (const j of [2, 3, ...Array.from({ length: 26 }, (_, k) => k + 6)]) {
      if (!chance(0.8)) continue;
      put(pmd0 + j * 8, pick(playPts) | dirFlags(0.02));
      entries.push({
        at: pmd0 + j * 8,
        level: "pmd",
        vaddr: j << 21,
        pgdir: top,
        idx: j,
        kernel: false,
      });
    }
  }
  // Leaf entries worth editing: the playground's, the device table's, a few of the kernel's.
  for (const pt of [...playPts, ...devPts, ...kernelPts]) {
    const kernel = kernelPts.includes(pt);
    const dev = devPts.includes(pt);
    const base = kernel
      ? kernelPts.indexOf(pt) * ptSpan
      : dev
      ? 0x800000 + devPts.indexOf(pt) * ptSpan
      : 0x400000;
    for (let n = 0; n < 24; n++) {
      const i = below(perTable);
      entries.push({
        at: pt + i * esz,
        level: "pte",
        vaddr: base + i * 4096,
        pgdir: pick(pgdirs),
        idx: i,
        kernel,
      });
    }
  }

  // ------------------------------------------------------------ values
  /** A virtual address to touch. */
  const vaddr = (): number => {
    const x = r() % 100;
    const off = below(4096) & ~3;
    if (linearOnly) {
      if (x < 60) return SCRATCH + below((SCRATCH_END - SCRATCH) >> 12) * 4096 + off;
      if (x < 70) return DEV + below(257) * 4096 + off;
      if (x < 98) return SWITCHER + below(1024) * 4096 + off;
      return r() & ~3; // outside RAM the host's made-up mapping kills
    }
    if (x < 40) return 0x400000 + below(0x3c00) * 4096 + off; // playground (4..64 MiB)
    if (x < 52) return SCRATCH + below(256) * 4096 + off;
    if (x < 62) return KERNEL_HALF + below(1024) * 4096 + off;
    if (x < 67) return DEV + below(257) * 4096 + off;
    if (x < 68 && chance(0.2)) return TABLES + below((nextPage - TABLES) >> 12) * 4096 + off;
    if (x < 72) return SCRATCH + below(256) * 4096 + off;
    if (x < 77) return SWITCHER + below(1024) * 4096 + off;
    if (x < 80) return VARS + 0x400 + (below(0x800) & ~3);
    if (x < 82) return CODE + below(0x60000);
    if (x < 86) return below(0x2000);
    return r() & ~3;
  };
  /** A page-table entry value: mostly benign shapes, some hostile. */
  const entryValue = (e: Entry): [number, number] => {
    // Hostile shapes the host must kill for (a frame outside RAM, a huge page, bad
    // flags) end the guest: one guest in a few gets one; the rest are shapes it must survive.
    const x = chance(0.007) ? 70 + below(30) : below(70);
    const flags = pick([0x67, 0x67, 0x07, 0x27, 0x65, 0x63, 0x25, 0x61, 0x01, 0x05, 0x03, 0x47]);
    if (x < 15) return [0, 0];
    if (e.level === "pte") {
      if (x < 60) return [playFrame() | flags | (chance(0.1) ? 0x100 : 0), 0];
      if (x < 70) return [(chance(0.5) ? BAR : DEV + below(256) * 4096) | flags, 0]; // MMIO
      if (x < 82) return [playFrame() | 0x80 | flags, 0]; // PAT/PSE in a PTE
      if (x < 87) return [(POOL + below(64) * 4096) | flags, 0]; // the host's pool
      if (x < 91) return [(RAM * 4 + below(1000) * 4096) | flags, 0]; // past all memory
      if (x < 95 && pae) return [playFrame() | flags, 1 + below(15)]; // above 4 GiB
      return [r(), pae && chance(0.5) ? r() : 0];
    }
    if (e.level === "top" && pae) {
      // PDPT entries: P only is legal; anything else the host must refuse.
      if (x < 70) return [newPmdLike() | 1, 0];
      if (x < 85) return [newPmdLike() | pick([0x3, 0x7, 0x27, 0x81]), 0];
      if (x < 92) return [(RAM + below(300) * 4096) | 1, 0];
      return [r(), chance(0.5) ? r() : 0];
    }
    // A directory entry (non-PAE PGD, PAE PMD).
    const tableFlags = dirFlags(0.02);
    if (x < 70) return [pick([...playPts, ...kernelPts, ...devPts]) | tableFlags, 0];
    if (x < 80) return [(SCRATCH + below(256) * 4096) | tableFlags, 0]; // garbage as a table
    if (x < 86) return [(playFrame() & ~0x3fffff) | 0x80 | tableFlags, 0]; // a huge page
    if (x < 90) return [(DEV + below(256) * 4096) | tableFlags, 0];
    if (x < 94) return [(POOL + below(64) * 4096) | tableFlags, 0];
    if (x < 97 && pae) return [pick(playPts) | tableFlags, 1];
    return [r(), 0];
  };
  const pmdPages = (): number[] => {
    if (!pae) return [];
    const out: number[] = [];
    for (const top of pgdirs) {
      for (const i of [0, 3]) {
        const lo = tdv.getUint32(top + i * 8 - TABLES, true);
        if (lo & 1) out.push(lo & ~0xfff);
      }
    }
    return out;
  };
  const allPmds = pmdPages();
  function newPmdLike(): number {
    return allPmds.length > 0 && chance(0.8) ? pick(allPmds) : pick(playPts);
  }
  /** An argument: one of the guest's own addresses, an edge, or noise. */
  const arg = (): number => {
    const x = r() % 100;
    if (x < 20) return pick(pgdirs);
    if (x < 35) return vaddr();
    if (x < 50) return below(64);
    if (x < 60) return below(RAM);
    if (x < 70) {
      return pick([0, 1, 2, 0x1000, RAM - 4, RAM, BAR, POOL, SWITCHER, 0xfffff000, KERNEL_HALF]);
    }
    return r();
  };

  // ------------------------------------------------------------ code
  const a = new X86(CODE);
  const movMem = (addr: Value, v: Value) => a.db(0xc7, 0x05).dd(addr, v);
  const hcall = (nr: number, ...args: Value[]) => a.hcall(nr, ...args);
  let labels = 0;
  const fresh = (s: string) => `${s}${labels++}`;

  a.label("_start").movImm(R.ESP, KSTACK_TOP);
  hcall(LHCALL.LGUEST_INIT, DATA);
  // Gates: faults and software interrupts resume; IRQs return.
  for (let v = 0; v < 256; v++) {
    if (v === 2 || v === 8 || v === 15 || v === 0x1f) continue;
    const irq = v >= 32 && v < 48;
    const target = irq ? "irq_handler" : "fault_handler";
    const type = irq ? 0xe : v < 32 || v === 0x80 ? 0xf : pick([0xe, 0xf]);
    const dpl = v === 0x80 || v === 3 || v === 4 ? 3 : irq || v < 32 ? 0 : below(4);
    if (v >= 48 && v !== 0x80 && chance(0.03)) continue; // a few vectors left without a gate
    a.movImm(R.EAX, LHCALL.LOAD_IDT_ENTRY).movImm(R.EBX, v);
    a.movImm(R.ECX, target).db(0x81, 0xe1).dd(0xffff); // and ecx, 0xffff
    a.db(0x81, 0xc9).dd(KERNEL_CS << 16); // or ecx, KERNEL_CS << 16
    a.movImm(R.EDX, target).db(0x81, 0xe2).dd(0xffff0000); // and edx, 0xffff0000
    a.db(0x81, 0xca).dd(0x8000 | (dpl << 13) | (type << 8)); // or edx, P|DPL|type
    a.int(0x1f);
  }
  hcall(LHCALL.SET_STACK, KERNEL_DS, KSTACK_TOP, 2);
  hcall(LHCALL.LOAD_GDT_ENTRY, 14, 0x0000ffff, 0x00cffa00); // user code, DPL 3
  hcall(LHCALL.LOAD_GDT_ENTRY, 15, 0x0000ffff, 0x00cff200); // user data, DPL 3
  const linearOnly = chance(0.08);
  if (!linearOnly) hcall(LHCALL.NEW_PGTABLE, pgdirs[0]);
  a.jmp("b0");

  // The fault handler: kernel segments and stack back, then on to the next block.
  a.label("fault_handler");
  a.movImm(R.EAX, KERNEL_DS).db(0x8e, 0xd8, 0x8e, 0xc0, 0x8e, 0xd0); // mov ds/es/ss, ax
  a.movImm(R.ESP, KSTACK_TOP);
  a.incMem(FAULTS);
  a.db(0xff, 0x25).dd(RESUME); // jmp [RESUME]

  // The IRQ handler: count, interrupts back on, maybe re-arm the clock, return.
  a.label("irq_handler");
  a.db(0x1e, 0x50, 0x53); // push ds; push eax; push ebx
  a.movImm(R.EAX, KERNEL_DS).db(0x8e, 0xd8);
  a.incMem(IRQS);
  movMem(DATA + LGUEST_DATA.irq_enabled, 0x200);
  a.load(R.EBX, TIMER_DELTA).db(0x85, 0xdb, 0x74, 0x07); // test ebx, ebx; jz +7
  a.movImm(R.EAX, LHCALL.SET_CLOCKEVENT).int(0x1f);
  a.db(0x5b, 0x58, 0x1f).label("irq_iret").db(0xcf); // pop ebx; pop eax; pop ds; iret

  // ------------------------------------------------------------ blocks
  /** A value to store: mostly one that reads as a benign page-table entry (stores land in tables too). */
  const stored = () => chance(0.8) ? playFrame() | pick([0x67, 0x07, 0x27, 0x65, 0x25, 0]) : r();
  const memop = () => {
    const addr = vaddr();
    switch (r() % 9) {
      case 0:
        return movMem(addr, stored());
      case 1:
        return a.load(pick([R.EAX, R.ECX, R.EDX]), addr);
      case 2:
        return a.db(0xc6, 0x05).dd(addr).db(stored() & 0xff); // mov byte [m], imm8
      case 3:
        return a.db(0x01, 0x05).dd(addr); // add [m], eax
      case 4:
        return a.db(0x66, 0xc7, 0x05).dd(addr).db(stored() & 0xff, r() & 0xff); // mov word [m], imm16
      case 5: // rep stosd / movsd
        a.movImm(R.EDI, addr).movImm(R.ESI, vaddr()).movImm(R.ECX, 1 + below(64));
        return a.db(0xf3, chance(0.5) ? 0xab : 0xa5);
      case 6:
        return a.db(0x0f, 0xb1, 0x0d).dd(addr); // cmpxchg [m], ecx
      case 7:
        return a.db(0xd9, 0x05).dd(addr); // fld dword [m] (#NM when TS is set)
      default:
        return a.db(0xff, 0x05).dd(addr); // inc dword [m]
    }
  };

  /** A register access to device `d`'s BAR0: `size` bytes at `off`, a store of `v` or a load. */
  const barAccess = (d: Device, off: number, size: number, v: number | null) => {
    const addr = d.bar + off;
    if (v === null) {
      if (size === 4) a.load(R.EAX, addr);
      else a.db(...(size === 2 ? [0x66, 0x8b, 0x05] : [0x8a, 0x05])).dd(addr); // mov ax/al, [m]
    } else if (size === 4) movMem(addr, v);
    else if (size === 2) a.db(0x66, 0xc7, 0x05).dd(addr).db(v & 0xff, (v >> 8) & 0xff);
    else a.db(0xc6, 0x05).dd(addr).db(v & 0xff);
  };

  const mmio = () => {
    const d = pick(DEVICES);
    const x = r() % 1000;
    if (x < 995) {
      // Registers any driver may touch at any time, at their widths (reads and selects).
      const [off, size, write] = pick(SAFE_REGS);
      barAccess(d, off, size, write ? below(d.queues + 1) : null);
      return;
    }
    // Anything else: a width, an offset, a protocol step out of turn, an access past the
    // register file or BAR0 (the device ends the guest for most of these, as lguest's launcher).
    const size = pick([1, 2, 4]);
    const y = r() % 3;
    const off = y === 0
      ? below(d.regs)
      : y === 1
      ? pick([d.regs, d.barSize]) - 1 - below(size)
      : d.barSize + below(256);
    if (chance(0.5)) barAccess(d, off, size, null);
    else barAccess(d, off, size, r());
    if (chance(0.3)) a.db(0x01, 0x05).dd(d.bar + off); // add [m], eax (read-modify-write)
  };

  /** Bring device `d` up as a driver does: reset, ACKNOWLEDGE, DRIVER, features, queues, DRIVER_OK. */
  const virtioInit = () => {
    const d = pick(DEVICES);
    const slip = chance(0.01); // one step out of turn somewhere (the device ends the guest)
    const steps: (() => void)[] = [];
    steps.push(() => barAccess(d, 20, 1, 0)); // reset
    steps.push(() => barAccess(d, 20, 1, 1)); // ACKNOWLEDGE
    steps.push(() => barAccess(d, 20, 1, 3)); // DRIVER
    steps.push(() => {
      barAccess(d, 0, 4, 1); // device_feature_select 1
      barAccess(d, 4, 4, null);
      barAccess(d, 8, 4, 1); // driver_feature_select 1: VERSION_1
      barAccess(d, 12, 4, 1);
      barAccess(d, 8, 4, 0);
      barAccess(d, 12, 4, chance(0.5) ? d.featuresLo : 0);
    });
    steps.push(() => barAccess(d, 20, 1, 11)); // FEATURES_OK
    for (let q = 0; q < d.queues; q++) {
      const ring = vring(d, q);
      steps.push(() => {
        barAccess(d, 22, 2, q); // queue_select
        barAccess(d, 24, 2, ring.size);
        barAccess(d, 32, 4, ring.desc);
        barAccess(d, 40, 4, ring.avail);
        barAccess(d, 48, 4, ring.used);
        movMem(ring.used, 0); // used.flags 0 (and idx), as the check on enable wants
        movMem(ring.avail, 0); // avail.flags and idx: a fresh start
        barAccess(d, 28, 2, 1); // queue_enable
      });
    }
    steps.push(() => barAccess(d, 20, 1, 15)); // DRIVER_OK
    if (slip) {
      const i = below(steps.length), j = below(steps.length);
      [steps[i], steps[j]] = [steps[j], steps[i]];
    }
    for (const step of steps) step();
  };

  /** Make a descriptor chain available on one of `d`'s queues and kick it. */
  const virtioKick = () => {
    const d = pick(DEVICES), q = below(d.queues), ring = vring(d, q);
    // The chain: [writable?, length] per buffer. A block request is a 16-byte header,
    // its data (none for FLUSH, 20 bytes for GET_ID) and a status byte.
    let chain: [boolean, number][];
    let type = 0;
    if (d.name === "block") {
      type = chance(0.97) ? pick([0, 1, 4, 8]) : below(16);
      const data: [boolean, number][] = type === 0
        ? [[true, 512 * (1 + below(2))]]
        : type === 1
        ? [[false, 512 * (1 + below(2))]]
        : type === 8
        ? [[true, 20]]
        : [];
      chain = [[false, 16], ...data, [true, 1]];
    } else {
      const writable = d.name === "rng" || q === 0;
      chain = Array.from({ length: 1 + below(3) }, () => [writable, 1 + below(512)]);
    }
    const head = below(ring.size);
    let at = head;
    chain.forEach(([writable, length], k) => {
      const last = k + 1 === chain.length;
      const next = last ? 0 : chance(0.99) ? (at + 1) % ring.size : below(ring.size);
      let flags = (last ? 0 : 1) | (writable ? 2 : 0);
      if (chance(0.005)) flags = below(8); // NEXT, WRITE, INDIRECT in any mix
      const x = r() % 1000;
      const buf = VQ_BUFS + below(0x3f) * 0x1000;
      const addr = x < 995 ? buf : pick([RAM - 8, RAM, POOL, BAR, SWITCHER, 0, ring.desc, r()]);
      const len = x < 997 ? length : r();
      const desc = ring.desc + at * 16;
      movMem(desc, addr);
      movMem(desc + 4, 0);
      movMem(desc + 8, len);
      movMem(desc + 12, flags | (next << 16));
      if (k === 0 && d.name === "block") {
        movMem(buf, type);
        movMem(buf + 8, chance(0.99) ? below(127) : r()); // sector (the disk has 128)
        movMem(buf + 12, 0);
      }
      at = next;
    });
    // avail.ring[avail.idx % size] = head; avail.idx++
    a.db(0x0f, 0xb7, 0x05).dd(ring.avail + 2); // movzx eax, word [avail.idx]
    a.db(0x25).dd(ring.size - 1); // and eax, size - 1
    a.db(0x66, 0xc7, 0x84, 0x00).dd(ring.avail + 4).db(head & 0xff, head >> 8); // mov [eax*2+ring], head
    a.db(0x66, 0xff, 0x05).dd(ring.avail + 2); // inc word [avail.idx]
    barAccess(d, 56, 2, q); // notify
    if (chance(0.5)) barAccess(d, 58, 1, null); // read (and clear) the ISR
  };

  const outPort = (port: number, v: number, size: number) => {
    a.movImm(R.EDX, port).movImm(R.EAX, v);
    a.db(...(size === 1 ? [0xee] : size === 2 ? [0x66, 0xef] : [0xef]));
  };
  const inPort = (port: number, size: number) => {
    a.movImm(R.EDX, port);
    a.db(...(size === 1 ? [0xec] : size === 2 ? [0x66, 0xed] : [0xed]));
  };
  const pio = () => {
    const slot = pick([0, 1, 1, 1, 2, below(32)]);
    const reg = pick([0x00, 0x04, 0x10, 0x10, 0x14, 0x3c, 0x84, 0x88, 0x8c, 0x90, below(256)]);
    outPort(0xcf8, (0x80000000 | (slot << 11) | reg) >>> 0, 4);
    const size = pick([1, 2, 4]);
    const port = 0xcfc + below(4);
    if (chance(0.5)) inPort(port, size);
    else {
      let v = r();
      if (reg === 0x10) v = chance(0.5) ? pick([BAR, DEV, 0xffffffff, RAM - 0x1000, 0]) : v;
      if (reg === 0x88) v = chance(0.97) ? below(CONSOLE_REGS - 3) & ~3 : below(256);
      if (reg === 0x8c) v = pick([1, 2, 4, 3, 0]);
      outPort(port, v, size);
    }
    if (chance(0.2)) {
      const p = pick([0x20, 0x21, 0x40, 0x43, 0x60, 0x64, 0x70, 0x71, 0x80, 0x3f8, below(0x10000)]);
      if (chance(0.5)) inPort(p, pick([1, 2, 4]));
      else outPort(p, r(), pick([1, 2, 4]));
    }
  };

  const ptedit = () => {
    const pool = entries.filter((e) => !e.kernel || chance(0.05));
    const e = pick(pool);
    const [lo, hi] = entryValue(e);
    movMem(e.at, lo);
    if (pae) movMem(e.at + 4, hi);
    const x = r() % 10;
    if (x < 4) {
      if (e.level === "pte") hcall(LHCALL.SET_PTE, e.pgdir, e.vaddr, lo, hi);
      else if (e.level === "top") hcall(LHCALL.SET_PGD, e.pgdir, e.idx);
      else hcall(pae ? LHCALL.SET_PMD : LHCALL.SET_PGD, e.pgdir, e.vaddr >>> 22);
    } else if (x < 6) hcall(LHCALL.FLUSH_TLB, below(2));
    else if (x < 7) hcall(LHCALL.SET_PTE, e.pgdir, e.vaddr, ...entryValue(e)); // not what it wrote
    // Then touch what it governs, read or write, maybe from ring 3 later.
    for (let n = 1 + below(3); n > 0; n--) {
      const va = (e.vaddr & ~0xfff) + (below(4096) & ~3);
      if (chance(0.5)) movMem(va, r());
      else a.load(R.EAX, va);
    }
  };

  const sweep = () => {
    // Touch one word in each of many 4 MiB regions: many shadow page tables at once.
    const first = pae ? 0x400000 : 0x400000, n = 4 + below(12);
    for (let i = 0; i < n; i++) {
      const va = first + below(15) * 0x400000 + below(1024) * 4096;
      if (chance(0.6)) movMem(va, i);
      else a.load(R.EAX, va);
    }
  };

  const validHcall = () => {
    const nr = pick([0, 4, 4, 4, 5, 6, 7, 8, 9, 13, 14, 14, 15, 16, 18, 19]);
    switch (nr) {
      case 4:
        if (linearOnly) return hcall(LHCALL.FLUSH_TLB, 1); // it stays in linear mode
        return hcall(nr, chance(0.99) ? pick(pgdirs) : arg());
      case 5:
        return hcall(nr, below(2));
      case 6: {
        const v = chance(0.995) ? below(256) : arg();
        const target = v >= 32 && v < 48 ? "irq_handler" : "fault_handler";
        const type = chance(0.99) ? pick([0xe, 0xf, 0xf]) : pick([0xc, 0x5]);
        const present = chance(0.95) ? 0x8000 : 0;
        a.movImm(R.EAX, nr).movImm(R.EBX, v);
        a.movImm(R.ECX, target).db(0x81, 0xe1).dd(0xffff).db(0x81, 0xc9).dd(KERNEL_CS << 16);
        a.movImm(R.EDX, target).db(0x81, 0xe2).dd(0xffff0000);
        a.db(0x81, 0xca).dd(present | (below(4) << 13) | (type << 8));
        return a.int(0x1f);
      }
      case 7:
        return chance(0.99)
          ? hcall(nr, KERNEL_DS, KSTACK_TOP, below(3))
          : hcall(nr, pick([KERNEL_DS, USER_DS, 0x59, arg()]), arg(), below(4));
      case 8:
        return hcall(nr, below(2));
      case 9:
        return hcall(nr, chance(0.2) ? 0 : 100 + below(30000));
      case 13:
        return pae ? hcall(nr, arg(), arg()) : hcall(LHCALL.FLUSH_TLB, 0);
      case 14: {
        const e = pick(entries.filter((x) => x.level === "pte"));
        const [lo, hi] = entryValue(e);
        return hcall(nr, e.pgdir, e.vaddr, lo, hi);
      }
      case 15:
        return hcall(nr, pick(pgdirs), chance(0.995) ? below(pae ? 5 : 1025) : arg());
      case 16:
        return hcall(nr, chance(0.995) ? TLS : arg());
      case 18: {
        const idx = chance(0.97)
          ? pick([6, 7, 8, 14, 15, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 10, 11, 16, 31])
          : chance(0.8)
          ? pick([12, 13])
          : pick([32, below(64)]);
        const hi = pick([
          0x00cf9a00,
          0x00cf9200,
          0x00cffa00,
          0x00cff200,
          0x00cfba00,
          0x00008900,
          0x0000ec00,
          0x00008200,
          0x00409200,
          r(),
        ]);
        return hcall(nr, idx, chance(0.8) ? 0x0000ffff : r(), hi);
      }
      default:
        return hcall(nr);
    }
  };

  const wildHcall = () => {
    const nr = chance(0.6) ? below(24) : r();
    a.movImm(R.EAX, nr).movImm(R.EBX, arg()).movImm(R.ECX, arg()).movImm(R.EDX, arg());
    a.movImm(R.ESI, arg()).int(0x1f);
  };

  const timer = () => {
    const blocked = chance(0.8) ? 0 : r() & ~1;
    movMem(DATA + LGUEST_DATA.blocked_interrupts, blocked);
    movMem(DATA + LGUEST_DATA.irq_enabled, chance(0.8) ? 0x200 : 0);
    movMem(TIMER_DELTA, chance(0.5) ? 0 : 200 + below(20000));
    hcall(LHCALL.SET_CLOCKEVENT, 50 + below(5000));
    if (chance(0.3)) hcall(LHCALL.HALT);
    if (chance(0.2)) hcall(LHCALL.SEND_INTERRUPTS);
    for (let n = below(6); n > 0; n--) a.nop();
  };

  const asyncBatch = () => {
    // Queue calls where the host's cursor should be (tracked in ASYNC_NEXT), or anywhere.
    for (let n = 1 + below(6); n > 0; n--) {
      let nr = chance(0.997) ? pick([5, 14, 14, 15, 4, 9, 16, 0]) : r() % 24;
      if (linearOnly && nr === 4) nr = 5;
      a.load(R.ECX, ASYNC_NEXT);
      if (chance(0.1)) a.movImm(R.ECX, below(LHCALL_RING_SIZE));
      a.db(0x6b, 0xd1, 20); // imul edx, ecx, 20
      const e = pick(entries);
      const args = nr === 14
        ? [e.pgdir, e.vaddr, ...entryValue(e)]
        : nr === 4
        ? [pick(pgdirs), 0, 0, 0]
        : nr === 15
        ? [pick(pgdirs), below(pae ? 4 : 1024), 0, 0]
        : nr === 9
        ? [100 + below(20000), 0, 0, 0]
        : nr === 16
        ? [TLS, 0, 0, 0]
        : nr === 5 || nr === 0
        ? [below(2), 0, 0, 0]
        : [arg(), arg(), arg(), arg()];
      [nr, ...args].forEach((v, k) => {
        a.db(0xc7, 0x82).dd(DATA + LGUEST_DATA.hcalls + k * 4, v >>> 0); // mov [edx+disp], imm
      });
      a.db(0xc6, 0x81).dd(DATA + LGUEST_DATA.hcall_status).db(0); // mov byte [ecx+disp], 0
      a.db(0x41, 0x83, 0xe1, 0x3f); // inc ecx; and ecx, 63
      a.store(ASYNC_NEXT, R.ECX);
    }
    if (chance(0.6)) hcall(chance(0.5) ? LHCALL.FLUSH_ASYNC : LHCALL.SEND_INTERRUPTS);
  };

  const privileged = () => {
    const ops: number[][] = [
      [0xfa], // cli (the host skips it)
      [0xfb], // sti
      [0xf4], // hlt
      [0x0f, 0x01, 0x15, ...le(FAKE_DTR)], // lgdt
      [0x0f, 0x01, 0x1d, ...le(FAKE_DTR)], // lidt
      [0x0f, 0x22, 0xd8], // mov cr3, eax
      [0x0f, 0x20, 0xc0], // mov eax, cr0
      [0x0f, 0x22, 0xe0], // mov cr4, eax
      [0x0f, 0x01, 0x3d, ...le(vaddr())], // invlpg
      [0x0f, 0x09], // wbinvd
      [0x0f, 0x06], // clts
      [0x0f, 0x00, 0xd0], // lldt ax
      [0x0f, 0x00, 0xd8], // ltr ax
      [0x0f, 0x30], // wrmsr
      [0x0f, 0x32], // rdmsr
      [0x0f, 0x31], // rdtsc
      [0x0f, 0xa2], // cpuid
      [0xcc], // int3
      [0xce], // into
      [0x0f, 0x0b], // ud2
      [0x31, 0xc9, 0xf7, 0xf1], // xor ecx, ecx; div ecx
      [0xcd, pick([0x80, 3, 4, 0x20, 0x21, 0x40, 0xff, below(256)])], // int n
      [0x68, ...le(r() & (chance(0.98) ? ~0x4000 : -1)), 0x9d], // push imm; popfd (IOPL, VM, NT)
      [0xea, ...le(CODE), 0x50, 0x00], // jmp far 0x50:... (the host's ring-0 code segment)
      [0xea, ...le(CODE), below(256), 0x00], // jmp far to any selector
      [0x9a, ...le(CODE), below(256), 0x00], // call far to any selector
      [0x66, 0xb8, 0x58, 0x00, 0x8e, 0xd0], // mov ax, 0x58; mov ss, ax (the host's data)
      [0x66, 0xb8, below(256), 0x00, 0x8e, 0xe0], // mov fs, any selector
      [0x6a, 0x00, 0x68, ...le(vaddr()), 0x6a, 0x02, 0x6a, 0x50, 0x68, ...le(CODE), 0xcf], // iret to ring 0
      [0xff, 0x35, ...le(vaddr()), 0x0f, 0xa1], // push [m]; pop fs
    ];
    for (let n = 1 + below(3); n > 0; n--) a.db(...pick(ops));
  };

  const segments = () => {
    const idx = pick([6, 7, 8, 14, 15, 20, 25, 30]);
    const hi = pick([0x00cf9200, 0x00cff200, 0x00409200, 0x00cf9a00, 0x00008900, r()]);
    movMem(TLS + below(3) * 8, chance(0.8) ? 0x0000ffff : r());
    movMem(TLS + below(3) * 8 + 4, hi);
    if (chance(0.5)) hcall(LHCALL.LOAD_TLS, TLS);
    else hcall(LHCALL.LOAD_GDT_ENTRY, idx, chance(0.8) ? 0x0000ffff : r(), hi);
    const sel = (idx << 3) | below(4);
    a.movImm(R.EAX, sel).db(0x8e, pick([0xe0, 0xe8, 0xd8, 0xc0])); // mov fs/gs/ds/es, ax
    if (chance(0.5)) memop();
    a.movImm(R.EAX, KERNEL_DS).db(0x8e, 0xd8, 0x8e, 0xc0); // ds, es back
  };

  const ring3 = () => {
    const body = fresh("user");
    a.db(0x6a, USER_DS).db(0x68).dd(USTACK_TOP - 16); // push USER_DS; push esp
    a.db(0x9c, 0x6a, USER_CS, 0x68).dd(body).db(0xcf); // pushfd; push USER_CS; push body; iret
    a.label(body);
    a.movImm(R.EAX, USER_DS).db(0x8e, 0xd8, 0x8e, 0xc0);
    for (let n = 1 + below(4); n > 0; n--) {
      const x = r() % 10;
      if (x < 6) memop();
      else if (x < 7) mmio();
      else if (x < 8) privileged();
      else if (x < 9) a.hcall(below(20), arg(), arg()); // a hypercall from ring 3: #GP
      else pio();
    }
    a.int(0x80); // back to the kernel (which resumes with the next block)
  };

  const chatter = () => {
    // A burst of console output through emerg_wr (at its identity address).
    const loop = fresh("chat");
    a.movImm(R.ECX, 200 + below(3000)).movImm(R.EAX, 0x41 + below(26));
    a.label(loop).db(0x89, 0x05).dd(EMERG_WR); // mov [emerg_wr], eax
    a.db(0x49).jnz(loop); // dec ecx; jnz
  };

  const garbage = () => {
    for (let n = 1 + below(8); n > 0; n--) a.db(r() & 0xff);
    for (let n = 0; n < 15; n++) a.nop(); // where a cut-off instruction ends, back in step
  };

  const memops = () => {
    for (let n = 1 + below(5); n > 0; n--) memop();
  };
  const kinds: [() => unknown, number, string][] = [
    [validHcall, 18, "hcall"],
    [wildHcall, 0.1, "wild-hcall"],
    [ptedit, linearOnly ? 0 : 16, "ptedit"],
    [memops, 18, "memops"],
    [sweep, linearOnly ? 0 : 3, "sweep"],
    [mmio, 10, "mmio"],
    [pio, 7, "pio"],
    [timer, 5, "timer"],
    [asyncBatch, 5, "async"],
    [ring3, linearOnly ? 0 : 8, "ring3"],
    [segments, 3, "segments"],
    [privileged, 5, "privileged"],
    [chatter, 1, "chatter"],
    [virtioInit, 3, "virtio-init"],
    [virtioKick, 8, "virtio-kick"],
    [garbage, 0.4, "garbage"],
  ];
  const total = kinds.reduce((s, [, w]) => s + w, 0);
  const choose = () => {
    let x = (r() / 0x100000000) * total;
    for (const k of kinds) {
      if (x < k[1]) return k;
      x -= k[1];
    }
    return kinds[0];
  };
  const blockKinds: string[] = [];
  const nBlocks = 150 + below(250);
  for (let b = 0; b < nBlocks; b++) {
    a.label(`b${b}`);
    movMem(RESUME, `b${b + 1}`);
    const [gen, , name] = choose();
    blockKinds.push(name);
    gen();
  }
  a.label(`b${nBlocks}`);
  movMem(RESUME, "b0");
  a.jmp("b0");

  // ------------------------------------------------------------ data
  const d = new X86(DATA);
  d.lguestData();
  const data = new Uint8Array(DATA_END - DATA);
  data.set(d.bytes());
  const ddv = new DataView(data.buffer);
  // The boot-time choices, from a stream of their own (the program above does not change
  // with them): where the kernel half starts, where the guest's interrupt-return is, and
  // the 2007 boot on the launcher's page tables.
  const v = rng(seed ^ 0x5bd1e995);
  const vpick = <T>(xs: readonly T[]): T => xs[v() % xs.length];
  const kernelAddress = v() % 10 < 7
    ? KERNEL_HALF
    : vpick([0x80000000, 0x400000, 0x1000, 0, SWITCHER - 0x1000]);
  ddv.setUint32(LGUEST_DATA.kernel_address, kernelAddress, true);
  const noirq = v() % 4;
  const noirqIret = noirq === 0
    ? a.addr("irq_iret")
    : noirq === 1
    ? a.addr(`b${v() % nBlocks}`)
    : 0;
  ddv.setUint32(LGUEST_DATA.noirq_iret, noirqIret, true);
  const pagetables = !pae && v() % 10 === 0 ? "launcher" : "linear";
  ddv.setUint32(TLS - DATA, 0x0000ffff, true);
  ddv.setUint32(TLS - DATA + 4, 0x00cff200, true);
  ddv.setUint16(FAKE_DTR - DATA, 0xffff, true);

  const code = a.bytes();
  if (CODE + code.length > DATA) throw new RangeError(`fuzz guest ${seed}: code too large`);
  const elf = elf32({
    entry: CODE,
    segments: [
      { paddr: CODE, vaddr: CODE, bytes: code },
      { paddr: DATA, vaddr: DATA, bytes: data },
      { paddr: TABLES, vaddr: TABLES, bytes: tables.subarray(0, nextPage - TABLES) },
    ],
  });
  const hostPages = pick([16, 20, 24, 32, 48, 256, 256, 1024, 4096]);
  const starts = Array.from({ length: nBlocks + 1 }, (_, b) => a.addr(`b${b}`));
  const blockAt = (eip: number): string => {
    eip >>>= 0;
    if (eip < starts[0] || eip >= CODE + code.length) return "";
    let b = 0;
    while (b + 1 < nBlocks && starts[b + 1] <= eip) b++;
    return `b${b} ${blockKinds[b]}`;
  };
  return { elf, memMiB: FUZZ_MEM_MIB, hostPages, pae, blocks: nBlocks, pagetables, blockAt };
}

/** A dword's little-endian bytes. */
function le(v: number): number[] {
  return [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
}
