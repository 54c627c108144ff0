/**
 * The guest's GDT and TLS entries, as lguest keeps them (drivers/lguest/segments.c).
 *
 * The guest never hands the CPU its own GDT: it sends each descriptor with
 * LHCALL_LOAD_GDT_ENTRY (and the three TLS entries with LHCALL_LOAD_TLS), and
 * the host copies them into the GDT the CPU really uses, a host-owned page the
 * guest cannot write. On the way the host *fixes them up*: a descriptor with
 * DPL 0 becomes DPL 1 (the guest kernel runs in ring 1 and must be able to
 * load its own kernel segments), and the accessed bit is set so the CPU never
 * writes to the table. Entries 10, 11, 16 and 31 are the host's own (its code
 * and data segments and TSSs): the guest's values are kept aside, never used.
 *
 * The CPU reads descriptors at the GDT's linear address, through the page
 * tables, so the host maps the GDT page into every shadow at the switcher's
 * address (the top of the address space, as the real switcher maps its
 * read-only page holding the GDT) and points GDTR there.
 *
 * @module
 */

import type { Guest } from "./guest.ts";
import { CS, DS, ES, FS, GS, SS } from "../x86/cpu.ts";
import { descBase, descLimit } from "../x86/system.ts";
import {
  GDT_ENTRIES,
  GDT_ENTRY_DOUBLEFAULT_TSS,
  GDT_ENTRY_KERNEL_CS,
  GDT_ENTRY_KERNEL_DS,
  GDT_ENTRY_LGUEST_CS,
  GDT_ENTRY_LGUEST_DS,
  GDT_ENTRY_TLS_ENTRIES,
  GDT_ENTRY_TLS_MIN,
  GDT_ENTRY_TSS,
} from "./abi.ts";

/** The host's own entries, which the guest cannot replace. */
export function isHostEntry(i: number): boolean {
  return i === GDT_ENTRY_LGUEST_CS || i === GDT_ENTRY_LGUEST_DS || i === GDT_ENTRY_TSS ||
    i === GDT_ENTRY_DOUBLEFAULT_TSS;
}

/** Flat 4 GiB code, DPL 0 (the host's LGUEST_CS). */
const HOST_CS_LO = 0x0000ffff, HOST_CS_HI = 0x00cf9b00;
/** Flat 4 GiB data, DPL 0 (the host's LGUEST_DS). */
const HOST_DS_LO = 0x0000ffff, HOST_DS_HI = 0x00cf9300;

/** The guest's GDT as the host holds it. */
export class GuestGdt {
  /** What the guest sent, entry by entry (lo, hi), after fix-up. */
  readonly entries: Int32Array = new Int32Array(GDT_ENTRIES * 2);
  /** Linear address of the GDT page (GDTR's base) in every shadow. */
  readonly linear: number;

  /**
   * The guest's GDT, mapped into the switcher region.
   *
   * @param g the guest (its shadow page tables must exist)
   * @param page host-physical address of the GDT page the CPU uses
   */
  constructor(private readonly g: Guest, readonly page: number) {
    this.linear = g.pt.mapSwitcherPage(0, page);
  }

  /** The boot GDT (§1.4): all zero but KERNEL_CS and KERNEL_DS (DPL 1), plus the host's entries. */
  setupBoot(): void {
    this.entries.fill(0);
    this.entries[GDT_ENTRY_KERNEL_CS * 2] = 0x0000ffff;
    this.entries[GDT_ENTRY_KERNEL_CS * 2 + 1] = 0x00cfbb00;
    this.entries[GDT_ENTRY_KERNEL_DS * 2] = 0x0000ffff;
    this.entries[GDT_ENTRY_KERNEL_DS * 2 + 1] = 0x00cfb300;
    this.sync();
    const cpu = this.g.cpu;
    cpu.gdtBase = this.linear | 0;
    cpu.gdtLimit = GDT_ENTRIES * 8 - 1;
    cpu.ldtr = 0;
    cpu.ldtBase = cpu.ldtLimit = 0;
  }

  /** Fix up a guest descriptor: DPL 0 → 1, accessed bit set. */
  private static fixup(hi: number): number {
    if (((hi >> 13) & 3) === 0) hi |= 1 << 13;
    return hi | 0x100;
  }

  /** Copy the entries into the CPU's GDT page, the host's own entries in their places. */
  private sync(): void {
    const image = hostGdtImage(this.entries), mem = this.g.mem;
    for (let i = 0; i < image.length; i++) mem.write32(this.page + i * 4, image[i]);
  }

  /** LHCALL_LOAD_GDT_ENTRY(i, lo, hi). */
  loadEntry(i: number, lo: number, hi: number): void {
    if (i >>> 0 >= GDT_ENTRIES) this.g.kill(`too many gdt entries ${i >>> 0}`);
    this.entries[i * 2] = lo;
    this.entries[i * 2 + 1] = isHostEntry(i) ? hi : GuestGdt.fixup(hi);
    this.sync();
  }

  /** LHCALL_LOAD_TLS(gpa): three descriptors from guest memory into entries 6..8. */
  loadTls(gpa: number): void {
    this.g.checkGuestAddress(gpa, 24, "bad TLS address");
    for (let k = 0; k < GDT_ENTRY_TLS_ENTRIES; k++) {
      const i = GDT_ENTRY_TLS_MIN + k;
      this.entries[i * 2] = this.g.readGuest32(gpa + k * 8);
      this.entries[i * 2 + 1] = GuestGdt.fixup(this.g.readGuest32(gpa + k * 8 + 4));
    }
    this.sync();
  }

  /**
   * Can segment register `seg` hold selector `sel` at ring 1, by the rules
   * the CPU applies when it loads one (an IRET into the guest on lguest)? CS
   * needs a present code segment for ring 1 (DPL 1, or at most 1 if
   * conforming); SS a present writable data segment with DPL 1 and RPL 1; a
   * data register a null selector, or a present data or readable code
   * segment it may use. Always through the GDT (the guest's LDT is empty), so
   * the host's own entries, DPL 0 or system descriptors, never qualify.
   */
  usable(seg: number, sel: number): boolean {
    if (sel >>> 0 > 0xffff) return false;
    const i = sel >> 3, rpl = sel & 3;
    if ((sel & 0xfffc) === 0) return seg !== CS && seg !== SS; // a null selector
    if ((sel & 4) !== 0 || i >= GDT_ENTRIES) return false;
    const hi = this.g.mem.read32(this.page + i * 8 + 4);
    const present = (hi & 0x8000) !== 0, dpl = (hi >> 13) & 3, type = (hi >> 8) & 0xf;
    if (!present || (hi & 0x1000) === 0) return false; // not present, or a system descriptor
    const code = (type & 8) !== 0;
    if (seg === CS) return code && ((type & 4) !== 0 ? dpl <= 1 : dpl === 1);
    if (seg === SS) return !code && (type & 2) !== 0 && dpl === 1 && rpl === 1;
    if (code && (type & 2) === 0) return false; // execute-only code
    return (code && (type & 4) !== 0) || dpl >= Math.max(1, rpl);
  }

  /**
   * Load segment register `seg` of the CPU with selector `sel` from this GDT,
   * as the host does when it enters the guest. The guest chose both the
   * selector (SET_STACK's) and the descriptor (LOAD_GDT_ENTRY), so it is
   * checked as the CPU would check it ({@link usable}); one the CPU would
   * refuse kills the guest (on lguest the switcher's IRET faults, which is
   * fatal). A null selector loads an unusable segment.
   */
  loadSegment(seg: number, sel: number): void {
    if (!this.usable(seg, sel)) {
      const what = seg === CS ? "code segment" : seg === SS ? "stack segment" : "data segment";
      this.g.kill(`bad ${what} 0x${(sel >>> 0).toString(16)} in the GDT`);
    }
    const cpu = this.g.cpu;
    const i = sel >> 3;
    cpu.sreg[seg] = sel;
    if ((sel & 0xfffc) === 0) {
      cpu.sbase[seg] = 0;
      cpu.slimit[seg] = 0;
      cpu.sflags[seg] = 0;
    } else {
      const lo = this.g.mem.read32(this.page + i * 8),
        hi = this.g.mem.read32(this.page + i * 8 + 4);
      cpu.sbase[seg] = descBase(lo, hi);
      cpu.slimit[seg] = descLimit(lo, hi);
      cpu.sflags[seg] = (hi >> 8) & 0xf0ff;
    }
    if (seg === CS) cpu.csChanged();
  }
}

/**
 * The GDT the CPU uses, as dwords (lo, hi per entry), made from the guest's
 * fixed-up `entries`: the host's code and data segments in entries 10 and 11,
 * its TSS entries (16, 31) empty. What the host page must hold at all times
 * (the audit compares it).
 */
export function hostGdtImage(entries: Int32Array): Int32Array {
  const out = new Int32Array(GDT_ENTRIES * 2);
  for (let i = 0; i < GDT_ENTRIES; i++) {
    let lo = entries[i * 2], hi = entries[i * 2 + 1];
    if (i === GDT_ENTRY_LGUEST_CS) [lo, hi] = [HOST_CS_LO, HOST_CS_HI];
    else if (i === GDT_ENTRY_LGUEST_DS) [lo, hi] = [HOST_DS_LO, HOST_DS_HI];
    else if (i === GDT_ENTRY_TSS || i === GDT_ENTRY_DOUBLEFAULT_TSS) lo = hi = 0;
    out[i * 2] = lo;
    out[i * 2 + 1] = hi;
  }
  return out;
}

/** The data segment registers, in the order the host reloads them. */
export const DATA_SEGMENTS = [ES, SS, DS, FS, GS] as const;
