/**
 * Shadow page tables, in lguest's shape (drivers/lguest/page_tables.c).
 *
 * The CPU never walks the guest's page tables. It walks *shadows* the host
 * builds from them in host-owned pages, lazily, one entry per guest page
 * fault: `demandPage(vaddr, errcode)` reads the guest's directory and table
 * entries from guest memory, checks present/write/user, sets the accessed and
 * dirty bits in the guest's entry, and fills the shadow entry. A shadow entry
 * stays read-only until the guest's entry is dirty, so the first write faults
 * again and the host can set D. What the guest's tables forbid is reflected
 * back into the guest as its own page fault.
 *
 * Up to four shadow page directories are cached, keyed by the guest's
 * top-level page address (`gpgdir`): `LHCALL_NEW_PGTABLE` switches to the one
 * for that address, or takes over the least recently used slot and drops its
 * user half (kernel mappings are the same in every address space). The guest
 * reports its own table changes with SET_PTE / SET_PGD / FLUSH_TLB; the host
 * never snoops guest writes.
 *
 * Until the guest's first NEW_PGTABLE the host is in *linear mode* (2011 and
 * later): it makes up an identity mapping — a present, writable, supervisor
 * entry for each page below the guest's RAM limit — writes nothing back, and
 * at the first NEW_PGTABLE throws all those shadows away.
 *
 * Guest-physical addresses are the emulator's physical addresses, so a shadow
 * entry points straight at the guest's page; a guest entry pointing outside
 * RAM kills the guest, and one pointing into the device window is MMIO, never
 * mapped, so every access to it comes back to the host.
 *
 * This host is non-PAE (the 4.9 sample configuration): a PAE guest is told so
 * by its first NEW_PGTABLE failing the checks.
 *
 * @module
 */

import type { Guest } from "./guest.ts";
import { PAGE_TABLE_FLAGS, PTE } from "./abi.ts";

/** demandPage results. */
export const Demand = { Ok: 0, Fail: 1, Iomem: 2 } as const;

/** A cached shadow page directory. */
export interface PgdirSlot {
  /** Guest-physical address of the guest's page directory this slot shadows (0 in linear mode). */
  gpgdir: number;
  /** Host-physical address of the shadow page directory. */
  shadow: number;
  /** Last time (in slot switches) it was made current: the LRU key. */
  lastUse: number;
}

/** Number of cached shadow page directories. */
export const PGDIR_SLOTS = 4;

/** The shadow page tables of one guest. */
export class ShadowPageTables {
  /** Cached shadows. */
  readonly slots: (PgdirSlot | null)[] = new Array(PGDIR_SLOTS).fill(null);
  /** Index of the current slot. */
  cur = 0;
  /** Linear mode: the host fakes a 1:1 mapping (before the first NEW_PGTABLE). */
  linear = true;
  /** Guest-physical address of the last IOMEM access found by demandPage. */
  iomemAddr = 0;
  private useClock = 0;

  /** @param g the guest these tables belong to */
  constructor(private readonly g: Guest) {}

  /** The current slot. */
  get current(): PgdirSlot {
    return this.slots[this.cur]!;
  }

  /** Start in linear mode with one blank shadow (2011 boot). */
  initLinear(): void {
    this.linear = true;
    this.cur = 0;
    this.slots[0] = { gpgdir: 0, shadow: this.allocPage(), lastUse: ++this.useClock };
    this.loadCr3();
  }

  /** Start on page tables the launcher built at guest-physical `gpgdir` (2007 boot). */
  initWithPgdir(gpgdir: number): void {
    this.linear = false;
    this.cur = 0;
    this.slots[0] = { gpgdir, shadow: this.allocPage(), lastUse: ++this.useClock };
    this.loadCr3();
  }

  /** A zeroed host page; if the pool is dry, drop every shadow once and retry. */
  private allocPage(): number {
    let pa = this.g.pages.alloc();
    if (pa < 0) {
      this.dropAllMappings();
      pa = this.g.pages.alloc();
    }
    if (pa < 0) this.g.kill("out of host memory for shadow page tables");
    return pa;
  }

  /** Point the CPU at the current shadow and flush its TLB (as a CR3 load does). */
  private loadCr3(): void {
    const cpu = this.g.cpu;
    cpu.cr3 = this.current.shadow;
    cpu.flushTlb();
  }

  private pgdIndexLimit(): number {
    // User mappings are PGD entries below the kernel's (kernel_address >> 22).
    return this.g.kernelAddress >>> 22;
  }

  /** Release shadow PGD entry `i` of the shadow at `spgdir` (its PTE page goes back to the pool). */
  private releasePgd(spgdir: number, i: number): void {
    const mem = this.g.mem;
    const e = mem.read32(spgdir + i * 4);
    if ((e & PTE.P) !== 0) this.g.pages.release(e & -4096);
    mem.write32(spgdir + i * 4, 0);
  }

  /** Drop PGD entries [from, to) of one shadow. */
  private dropRange(slot: PgdirSlot, from: number, to: number): void {
    for (let i = from; i < to; i++) this.releasePgd(slot.shadow, i);
  }

  /** Drop every mapping of every shadow (FLUSH_TLB(1), SET_PMD, pool exhaustion). */
  dropAllMappings(): void {
    for (const s of this.slots) if (s) this.dropRange(s, 0, 1024);
    this.g.cpu.flushTlb();
  }

  /**
   * LHCALL_NEW_PGTABLE: switch to the shadow of `gpgdir`, making one if needed.
   * The first call ends linear mode.
   */
  newPgtable(gpgdir: number): void {
    gpgdir &= -4096;
    this.g.checkGuestAddress(gpgdir, 4096, "bad page directory address");
    if (this.linear) {
      // Throw away the made-up identity shadows; start a fresh slot.
      this.linear = false;
      for (let i = 0; i < PGDIR_SLOTS; i++) {
        const s = this.slots[i];
        if (s) {
          this.dropRange(s, 0, 1024);
          this.g.pages.release(s.shadow);
          this.slots[i] = null;
        }
      }
      this.cur = 0;
      this.slots[0] = { gpgdir, shadow: this.allocPage(), lastUse: ++this.useClock };
      this.loadCr3();
      this.g.pinStackPages();
      return;
    }
    const found = this.slots.findIndex((s) => s !== null && s.gpgdir === gpgdir);
    if (found >= 0) {
      this.cur = found;
      this.current.lastUse = ++this.useClock;
      this.loadCr3();
      return;
    }
    // Take over an empty slot, else the least recently used one, keeping its kernel half.
    let victim = this.slots.findIndex((s) => s === null);
    let blank = victim >= 0;
    if (victim < 0) {
      victim = 0;
      for (let i = 1; i < PGDIR_SLOTS; i++) {
        if (this.slots[i]!.lastUse < this.slots[victim]!.lastUse) victim = i;
      }
    }
    if (blank) {
      this.slots[victim] = { gpgdir, shadow: this.allocPage(), lastUse: ++this.useClock };
    } else {
      const s = this.slots[victim]!;
      s.gpgdir = gpgdir;
      s.lastUse = ++this.useClock;
      this.dropRange(s, 0, this.pgdIndexLimit());
      blank = false;
    }
    this.cur = victim;
    this.loadCr3();
    if (blank) this.g.pinStackPages();
  }

  /** LHCALL_FLUSH_TLB: 0 drops the user half of the current shadow; non-zero drops everything. */
  flushTlb(all: boolean): void {
    if (all) {
      this.dropAllMappings();
      this.g.pinStackPages();
    } else {
      this.dropRange(this.current, 0, this.pgdIndexLimit());
      this.g.cpu.flushTlb();
    }
  }

  /** Read a guest page-directory entry for `vaddr` (made up in linear mode). */
  private guestPgd(slot: PgdirSlot, vaddr: number): number {
    if (this.linear) return PAGE_TABLE_FLAGS;
    return this.g.readGuest32(slot.gpgdir + (vaddr >>> 22) * 4);
  }

  /** Kill on a guest PGD entry with flags outside _PAGE_TABLE or a frame outside RAM. */
  private checkGpgd(gpgd: number): void {
    if ((gpgd & 0xfff & ~PAGE_TABLE_FLAGS) !== 0 || (gpgd >>> 12) >= this.g.pfnLimit) {
      this.g.kill(`bad page directory entry 0x${(gpgd >>> 0).toString(16)}`);
    }
  }

  /** Kill on a guest PTE with PSE/PAT set or a frame outside RAM. */
  private checkGpte(gpte: number): void {
    if ((gpte & PTE.PSE) !== 0 || (gpte >>> 12) >= this.g.pfnLimit) {
      this.g.kill(`bad page table entry 0x${(gpte >>> 0).toString(16)}`);
    }
  }

  /** Is a guest PTE's frame in the device window (MMIO)? */
  private isIomem(gpte: number): boolean {
    const pfn = gpte >>> 12;
    return (gpte & PTE.PSE) === 0 && pfn >= this.g.pfnLimit && pfn < this.g.deviceLimit;
  }

  /**
   * The guest faulted at `vaddr` with hardware error code `errcode`: fill the
   * shadow from the guest's tables if they allow the access. Returns Demand.Ok
   * (the instruction can be retried), Demand.Fail (reflect the #PF into the
   * guest) or Demand.Iomem (`iomemAddr` is the guest-physical MMIO address).
   */
  demandPage(vaddr: number, errcode: number): number {
    const g = this.g, mem = g.mem;
    vaddr >>>= 0;
    if (vaddr >= g.switcherAddr) return Demand.Fail;
    const slot = this.current;
    const gpgd = this.guestPgd(slot, vaddr);
    if ((gpgd & PTE.P) === 0) return Demand.Fail;
    if (!this.linear) this.checkGpgd(gpgd);
    let gpte: number, gpteAddr = 0;
    if (this.linear) gpte = (vaddr & -4096) | PTE.RW | PTE.P;
    else {
      gpteAddr = (gpgd & -4096) + ((vaddr >>> 12) & 1023) * 4;
      gpte = g.readGuest32(gpteAddr);
    }
    if ((gpte & PTE.P) === 0) return Demand.Fail;
    if ((errcode & 2) !== 0 && (gpte & PTE.RW) === 0) return Demand.Fail;
    if ((errcode & 4) !== 0 && (gpte & PTE.US) === 0) return Demand.Fail;
    if (this.isIomem(gpte)) {
      this.iomemAddr = ((gpte & -4096) | (vaddr & 0xfff)) >>> 0;
      return Demand.Iomem;
    }
    this.checkGpte(gpte);
    gpte |= PTE.A;
    if ((errcode & 2) !== 0) gpte |= PTE.D;
    // The shadow PGD entry: a PTE page with the guest's PGD flags.
    const spgdAddr = slot.shadow + (vaddr >>> 22) * 4;
    let spgd = mem.read32(spgdAddr);
    if ((spgd & PTE.P) === 0) {
      const page = this.allocPage();
      // allocPage may have dropped every mapping (pool exhaustion): re-read the slot.
      spgd = page | (gpgd & 0xfff);
      mem.write32(this.current.shadow + (vaddr >>> 22) * 4, spgd);
    }
    // Guest flags minus G; read-only until the guest's D bit is set.
    let flags = gpte & 0xfff & ~PTE.G;
    if ((gpte & PTE.D) === 0) flags &= ~PTE.RW;
    mem.write32((spgd & -4096) + ((vaddr >>> 12) & 1023) * 4, (gpte & -4096) | flags);
    g.cpu.flushTlbPage(vaddr | 0);
    if (!this.linear) g.writeGuest32(gpteAddr, gpte);
    return Demand.Ok;
  }

  /**
   * LHCALL_SET_PTE: the guest changed the PTE for `vaddr` in the table rooted at
   * `gpgdir`. Kernel addresses apply to every shadow; user addresses only to
   * the shadow of `gpgdir`.
   */
  setPte(gpgdir: number, vaddr: number, pte: number): void {
    const g = this.g;
    vaddr >>>= 0;
    if (vaddr >= g.switcherAddr) g.kill("attempt to set pte into switcher pages");
    const kernel = vaddr >= g.kernelAddress;
    for (let i = 0; i < PGDIR_SLOTS; i++) {
      const s = this.slots[i];
      if (!s || (!kernel && s.gpgdir !== (gpgdir & -4096))) continue;
      const spgd = g.mem.read32(s.shadow + (vaddr >>> 22) * 4);
      if ((spgd & PTE.P) === 0) continue;
      const sptAddr = (spgd & -4096) + ((vaddr >>> 12) & 1023) * 4;
      if ((pte & (PTE.A | PTE.D)) !== 0 && (pte & PTE.P) !== 0 && !this.isIomem(pte)) {
        this.checkGpte(pte);
        // As 4.9 does: the guest's flags minus G, RW kept even when D is clear.
        g.mem.write32(sptAddr, (pte & -4096) | (pte & 0xfff & ~PTE.G));
      } else g.mem.write32(sptAddr, 0);
      if (i === this.cur) g.cpu.flushTlbPage(vaddr | 0);
    }
  }

  /** LHCALL_SET_PGD: PGD entry `idx` of the table at `gpgdir` changed: drop the shadow's. */
  setPgd(gpgdir: number, idx: number): void {
    if (idx > 1024) this.g.kill(`bad SET_PGD index ${idx}`);
    if (idx === 1024) return; // 4.9's off-by-one lets this through; it touches nothing
    const i = this.slots.findIndex((s) => s !== null && s.gpgdir === (gpgdir & -4096));
    if (i < 0) return;
    this.releasePgd(this.slots[i]!.shadow, idx);
    if (i === this.cur) this.g.cpu.flushTlb();
  }

  /**
   * guest_pa: translate a guest virtual address through the guest's own tables
   * (no permission checks); -1 when unmapped. Identity in linear mode.
   */
  guestPa(vaddr: number): number {
    vaddr >>>= 0;
    if (this.linear) return vaddr;
    const g = this.g;
    const gpgd = g.readGuest32(this.current.gpgdir + (vaddr >>> 22) * 4);
    if ((gpgd & PTE.P) === 0) return -1;
    const gpteAddr = (gpgd & -4096) + ((vaddr >>> 12) & 1023) * 4;
    if (!g.ramContains(gpteAddr, 4)) return -1;
    const gpte = g.readGuest32(gpteAddr);
    if ((gpte & PTE.P) === 0) return -1;
    return ((gpte & -4096) | (vaddr & 0xfff)) >>> 0;
  }

  /** Is `vaddr` present and writable in the current shadow (for stack pinning)? */
  shadowWritable(vaddr: number): boolean {
    const mem = this.g.mem;
    const spgd = mem.read32(this.current.shadow + (vaddr >>> 22) * 4);
    if ((spgd & PTE.P) === 0) return false;
    const spte = mem.read32((spgd & -4096) + ((vaddr >>> 12) & 1023) * 4);
    return (spte & (PTE.P | PTE.RW)) === (PTE.P | PTE.RW);
  }
}
