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
 * The top of every shadow belongs to the host: as lguest maps its switcher
 * pages at `switcher_addr` in each shadow (§6.3), this host maps the page
 * holding the GDT the CPU really uses there, read-only and supervisor-only,
 * because the CPU reads descriptors (segment loads, IRET, far jumps) at the
 * GDT's *linear* address, through the shadow. The guest never gets a mapping
 * of its own up there: `demandPage` refuses it and SET_PTE into it kills.
 *
 * Guest-physical addresses are the emulator's physical addresses, so a shadow
 * entry points straight at the guest's page; a guest entry pointing outside
 * RAM and the devices kills the guest. A device page in the device window is
 * mapped like RAM: the launcher's devices sit on the CPU's bus at those
 * physical addresses, such pages never enter the CPU's TLB, and the CPU's own
 * decoder carries every access there to the device (lguest instead leaves
 * them unmapped and decodes the faulting instruction, §9.4).
 *
 * Two geometries, chosen when the guest is built (as lguest chose at build
 * time, CONFIG_X86_PAE, §6.8):
 *  - non-PAE (the 4.9 sample configuration): a page directory of 1024 4-byte
 *    entries, each a page table of 1024 4-byte PTEs;
 *  - PAE: a 32-byte PDPT of 4 8-byte entries (flags: P only), each a page of
 *    512 PMD entries, each a page table of 512 8-byte PTEs; LHCALL_SET_PTE
 *    carries the PTE's high half in its 4th argument (ESI), LHCALL_SET_PGD
 *    names a PDPT entry, and LHCALL_SET_PMD throws every shadow away.
 * The shadows have the guest's geometry, and the CPU walks them with CR4.PAE
 * set to match. Frames above 4 GiB (a non-zero high half) are outside RAM.
 *
 * @module
 */

import type { Guest } from "./guest.ts";
import { PAGE_TABLE_FLAGS, PTE } from "./abi.ts";

/** demandPage results. */
export const Demand = { Ok: 0, Fail: 1 } as const;

/** A cached shadow page directory. */
export interface PgdirSlot {
  /**
   * Guest-physical address of the guest's top-level table this slot shadows
   * (page directory, or PDPT under PAE; 0 in linear mode).
   */
  gpgdir: number;
  /** Host-physical address of the shadow's top-level page (what CR3 holds). */
  shadow: number;
  /** Last time (in slot switches) it was made current: the LRU key. */
  lastUse: number;
}

/** Number of cached shadow page directories. */
export const PGDIR_SLOTS = 4;

/**
 * The switcher's virtual address (non-PAE): the top 4 MiB, one page-directory
 * entry, the host's in every address space.
 */
export const SWITCHER_ADDR = 0xffc00000;
/**
 * The switcher's virtual address under PAE: the top 2 MiB, one PMD entry —
 * what a PAE guest told the real host's reserved top (0xfffe1000) rounds to.
 */
export const SWITCHER_ADDR_PAE = 0xffe00000;
/** Page-directory index of the switcher region: shadow PGD entries below it are the guest's. */
export const SWITCHER_PGD_INDEX = SWITCHER_ADDR >>> 22;
/** PAE: the switcher region is PMD entry 511 of PDPT entry 3. */
export const SWITCHER_PMD_INDEX = (SWITCHER_ADDR_PAE >>> 21) & 511;

const hex = (n: number) => `0x${(n >>> 0).toString(16)}`;
/** A 64-bit entry as one hex number (high half only when non-zero). */
const hex64 = (lo: number, hi: number) =>
  hi === 0 ? hex(lo) : `0x${(hi >>> 0).toString(16)}${(lo >>> 0).toString(16).padStart(8, "0")}`;

/** The shadow page tables of one guest. */
export class ShadowPageTables {
  /** Cached shadows. */
  readonly slots: (PgdirSlot | null)[] = new Array(PGDIR_SLOTS).fill(null);
  /** Index of the current slot. */
  cur = 0;
  /** Linear mode: the host fakes a 1:1 mapping (before the first NEW_PGTABLE). */
  linear = true;
  /** Host page of PTEs mapping the switcher region (shared by every shadow), or -1. */
  switcherPt: number = -1;
  private useClock = 0;
  /** Bumped whenever a full drop frees shadow pages (a walk in progress must restart). */
  private generation = 0;

  /**
   * Shadow page tables, no slot filled yet.
   *
   * @param g the guest these tables belong to
   * @param pae PAE geometry (3 levels, 8-byte entries) instead of 2-level non-PAE
   */
  constructor(private readonly g: Guest, readonly pae = false) {}

  /** The current slot. */
  get current(): PgdirSlot {
    return this.slots[this.cur]!;
  }

  /** Top-level entries the guest may own: below the switcher (non-PAE), all 4 (PAE). */
  private get topEntries(): number {
    return this.pae ? 4 : SWITCHER_PGD_INDEX;
  }

  /** Index of the top-level entry covering `vaddr`. */
  private topIndex(vaddr: number): number {
    return this.pae ? vaddr >>> 30 : vaddr >>> 22;
  }

  /** Top-level entries below the kernel's (the user part: 768 non-PAE, 3 PAE with a 3G/1G split). */
  private userTopLimit(): number {
    return this.topIndex(this.g.kernelAddress >>> 0);
  }

  /** The guest-physical alignment of a top-level table: a page, or 32 bytes for a PDPT. */
  private topMask(): number {
    return this.pae ? -32 : -4096;
  }

  /** Start in linear mode with one blank shadow (2011 boot). */
  initLinear(): void {
    this.reset();
    this.linear = true;
    this.slots[0] = this.newSlot(0);
    this.loadCr3();
  }

  /** Start on page tables the launcher built at guest-physical `gpgdir` (2007 boot). */
  initWithPgdir(gpgdir: number): void {
    this.reset();
    this.linear = false;
    this.slots[0] = this.newSlot(gpgdir);
    this.loadCr3();
  }

  /** Free every shadow (a fresh start). */
  private reset(): void {
    for (let i = 0; i < PGDIR_SLOTS; i++) {
      const s = this.slots[i];
      if (s) this.freeSlot(s);
      this.slots[i] = null;
    }
    this.cur = 0;
  }

  /** Release a shadow completely, its switcher part included. */
  private freeSlot(s: PgdirSlot): void {
    this.dropRange(s, 0, this.topEntries);
    if (this.pae) {
      const e = this.g.mem.read32(s.shadow + 3 * 8);
      if ((e & PTE.P) !== 0) this.g.pages.release(e & -4096);
    }
    this.g.pages.release(s.shadow);
  }

  /** A blank shadow for `gpgdir`, with the switcher mapped. */
  private newSlot(gpgdir: number): PgdirSlot {
    const slot = { gpgdir, shadow: this.allocPage(), lastUse: ++this.useClock };
    this.mapSwitcher(slot);
    return slot;
  }

  /**
   * Map the switcher into a shadow: point its switcher entry at the shared
   * switcher PTE page (non-PAE: PGD 1023; PAE: PMD 511 of PDPT entry 3,
   * whose PMD page the shadow then always has).
   */
  private mapSwitcher(slot: PgdirSlot): void {
    if (this.switcherPt < 0) return;
    const mem = this.g.mem, e = this.switcherPt | PTE.P | PTE.RW | PTE.A;
    if (!this.pae) {
      mem.write32(slot.shadow + SWITCHER_PGD_INDEX * 4, e);
      return;
    }
    let pdpte = mem.read32(slot.shadow + 3 * 8);
    if ((pdpte & PTE.P) === 0) {
      pdpte = this.allocPage() | PTE.P;
      mem.write32(slot.shadow + 3 * 8, pdpte);
    }
    mem.write32((pdpte & -4096) + SWITCHER_PMD_INDEX * 8, e);
  }

  /**
   * Map host page `pa` at the switcher address + i*4096 in every shadow, present
   * and read-only for the CPU's supervisor accesses (descriptor reads); never
   * user-accessible. Returns the virtual address.
   */
  mapSwitcherPage(i: number, pa: number): number {
    if (this.switcherPt < 0) {
      this.switcherPt = this.g.pages.alloc();
      if (this.switcherPt < 0) throw new RangeError("no host page for the switcher mapping");
      for (const s of this.slots) if (s) this.mapSwitcher(s);
    }
    this.g.mem.write32(this.switcherPt + i * (this.pae ? 8 : 4), pa | PTE.P | PTE.A);
    const v = ((this.pae ? SWITCHER_ADDR_PAE : SWITCHER_ADDR) + i * 4096) | 0;
    this.g.cpu.flushTlbPage(v);
    return v >>> 0;
  }

  /** A zeroed host page; if the pool is dry, drop every shadow mapping once and retry. */
  private allocPage(): number {
    let pa = this.g.pages.alloc();
    if (pa < 0) {
      this.dropAllMappings();
      pa = this.g.pages.alloc();
    }
    if (pa < 0) this.g.kill("out of host memory for shadow page tables");
    return pa;
  }

  /**
   * A host page for a shadow walk that started at generation `gen`, or -1
   * when getting it dropped every shadow (the pool had run dry): the walk must
   * start again, and the page goes back to the pool for it to take.
   */
  private allocForWalk(gen: number): number {
    const page = this.allocPage();
    if (gen === this.generation) return page;
    this.g.pages.release(page);
    return -1;
  }

  /** Point the CPU at the current shadow and flush its TLB (as a CR3 load does). */
  private loadCr3(): void {
    const cpu = this.g.cpu;
    cpu.cr3 = this.current.shadow;
    cpu.flushTlb();
  }

  /**
   * Release top-level entry `i` of a shadow and everything under it (non-PAE:
   * its PTE page; PAE: its PMD page and the PTE pages under that). PAE entry 3
   * keeps its PMD page and the switcher's entries in it.
   */
  private releaseTop(slot: PgdirSlot, i: number): void {
    const mem = this.g.mem, pages = this.g.pages;
    if (!this.pae) {
      const e = mem.read32(slot.shadow + i * 4);
      if ((e & PTE.P) !== 0) pages.release(e & -4096);
      mem.write32(slot.shadow + i * 4, 0);
      return;
    }
    const e = mem.read32(slot.shadow + i * 8);
    if ((e & PTE.P) === 0) return;
    const pmd = e & -4096;
    const keep = i === 3 ? SWITCHER_PMD_INDEX : 512;
    for (let j = 0; j < keep; j++) {
      const m = mem.read32(pmd + j * 8);
      if ((m & PTE.P) !== 0) pages.release(m & -4096);
      mem.write32(pmd + j * 8, 0);
    }
    if (i === 3 && this.switcherPt >= 0) return;
    pages.release(pmd);
    mem.write32(slot.shadow + i * 8, 0);
  }

  /** Drop top-level entries [from, to) of one shadow. */
  private dropRange(slot: PgdirSlot, from: number, to: number): void {
    for (let i = from; i < to; i++) this.releaseTop(slot, i);
  }

  /** Drop every mapping of every shadow (FLUSH_TLB(1), SET_PMD, pool exhaustion). */
  dropAllMappings(): void {
    for (const s of this.slots) if (s) this.dropRange(s, 0, this.topEntries);
    this.generation++;
    this.g.cpu.flushTlb();
  }

  /**
   * LHCALL_NEW_PGTABLE: switch to the shadow of `gpgdir`, making one if needed.
   * The first call ends linear mode.
   */
  newPgtable(gpgdir: number): void {
    gpgdir &= this.topMask();
    this.g.checkGuestAddress(gpgdir, this.pae ? 32 : 4096, "bad page directory address");
    if (this.linear) {
      // Throw away the made-up identity shadows; start a fresh slot.
      this.reset();
      this.linear = false;
      this.slots[0] = this.newSlot(gpgdir);
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
    // Take over an empty slot, else the least recently used one, keeping its kernel part.
    let victim = this.slots.findIndex((s) => s === null);
    const blank = victim >= 0;
    if (!blank) {
      victim = 0;
      for (let i = 1; i < PGDIR_SLOTS; i++) {
        if (this.slots[i]!.lastUse < this.slots[victim]!.lastUse) victim = i;
      }
      const s = this.slots[victim]!;
      s.gpgdir = gpgdir;
      s.lastUse = ++this.useClock;
      this.dropRange(s, 0, this.userTopLimit());
    } else this.slots[victim] = this.newSlot(gpgdir);
    this.cur = victim;
    this.loadCr3();
    if (blank) this.g.pinStackPages();
  }

  /** LHCALL_FLUSH_TLB: 0 drops the user part of the current shadow; non-zero drops everything. */
  flushTlb(all: boolean): void {
    if (all) {
      this.dropAllMappings();
      this.g.pinStackPages();
    } else {
      this.dropRange(this.current, 0, this.userTopLimit());
      this.g.cpu.flushTlb();
    }
  }

  /** LHCALL_SET_PMD (PAE only): 4.9 throws every shadow away, as FLUSH_TLB(1) does (§6.6). */
  setPmd(): void {
    this.flushTlb(true);
  }

  /**
   * Kill on a guest top-level entry the host will not follow: flags outside
   * _PAGE_TABLE (non-PAE) or outside P (a PAE PDPT entry), or a frame outside RAM.
   */
  private checkGpgd(lo: number, hi: number): void {
    const allowed = this.pae ? PTE.P : PAGE_TABLE_FLAGS;
    if ((lo & 0xfff & ~allowed) !== 0 || hi !== 0 || (lo >>> 12) >= this.g.pfnLimit) {
      this.g.kill(`bad page directory entry ${hex64(lo, hi)}`);
    }
  }

  /** PAE: kill on a PMD entry with flags outside _PAGE_TABLE or a frame outside RAM. */
  private checkGpmd(lo: number, hi: number): void {
    if ((lo & 0xfff & ~PAGE_TABLE_FLAGS) !== 0 || hi !== 0 || (lo >>> 12) >= this.g.pfnLimit) {
      this.g.kill(`bad page middle directory entry ${hex64(lo, hi)}`);
    }
  }

  /**
   * Kill on a guest PTE with PSE/PAT set or a frame outside RAM and the
   * device memory on the CPU's bus in the device window (a PAE high half
   * included).
   */
  private checkGpte(lo: number, hi: number): void {
    const pfn = lo >>> 12, g = this.g;
    if (
      (lo & PTE.PSE) !== 0 || hi !== 0 ||
      (pfn >= g.pfnLimit && (pfn >= g.deviceLimit || !g.cpu.bus.isMmioPage(pfn * 4096)))
    ) {
      g.kill(`bad page table entry ${hex64(lo, hi)}`);
    }
  }

  /**
   * Address of the shadow PTE for `vaddr` in `slot`. With `alloc`, missing
   * intermediate levels are made (a PTE page gets the guest's directory flags
   * `gpgd`/`gpmd`, a PAE PMD page is entered with P only), and an existing
   * directory entry takes the guest's current RW and US, as a CPU rereads the
   * directory on a TLB miss: the shadow's directory permissions are what
   * `demandPage` just checked, never stale ones the retry would fault on
   * again. Without `alloc`, -1 when a level is missing.
   */
  private shadowPteAddr(
    slot: PgdirSlot,
    vaddr: number,
    alloc: boolean,
    gpgd = 0,
    gpmd = 0,
  ): number {
    const mem = this.g.mem;
    for (;;) {
      const gen = this.generation;
      if (!this.pae) {
        const at = slot.shadow + (vaddr >>> 22) * 4;
        let e = mem.read32(at);
        if ((e & PTE.P) === 0) {
          if (!alloc) return -1;
          const page = this.allocForWalk(gen);
          if (page < 0) continue; // the pool ran dry and every shadow was dropped
          e = page | (gpgd & 0xfff);
          mem.write32(at, e);
        } else if (alloc) e = this.refreshDirPerms(at, e, gpgd);
        return (e & -4096) + ((vaddr >>> 12) & 1023) * 4;
      }
      const at = slot.shadow + (vaddr >>> 30) * 8;
      let e = mem.read32(at);
      if ((e & PTE.P) === 0) {
        if (!alloc) return -1;
        const page = this.allocForWalk(gen);
        if (page < 0) continue;
        e = page | PTE.P;
        mem.write32(at, e);
        mem.write32(at + 4, 0);
      }
      const mat = (e & -4096) + ((vaddr >>> 21) & 511) * 8;
      let m = mem.read32(mat);
      if ((m & PTE.P) === 0) {
        if (!alloc) return -1;
        const page = this.allocForWalk(gen);
        if (page < 0) continue;
        m = page | (gpmd & 0xfff);
        mem.write32(mat, m);
        mem.write32(mat + 4, 0);
      } else if (alloc) m = this.refreshDirPerms(mat, m, gpmd);
      return (m & -4096) + ((vaddr >>> 12) & 511) * 8;
    }
  }

  /**
   * Give the shadow directory entry at `at` (value `e`) the RW and US of the
   * guest's entry `guest`; a change reaches the whole range it maps, so the
   * CPU's TLB is flushed. Returns the entry.
   */
  private refreshDirPerms(at: number, e: number, guest: number): number {
    const perms = PTE.RW | PTE.US;
    if (((e ^ guest) & perms) === 0) return e;
    e = (e & ~perms) | (guest & perms);
    this.g.mem.write32(at, e);
    this.g.cpu.flushTlb();
    return e;
  }

  /** Write a shadow PTE (its high half is always 0: shadows map only guest RAM). */
  private writeSpte(at: number, v: number): void {
    this.g.mem.write32(at, v);
    if (this.pae) this.g.mem.write32(at + 4, 0);
  }

  /**
   * The guest faulted at `vaddr` with hardware error code `errcode`: fill the
   * shadow from the guest's tables if they allow the access. Returns Demand.Ok
   * (the instruction can be retried) or Demand.Fail (reflect the #PF into the
   * guest).
   */
  demandPage(vaddr: number, errcode: number): number {
    const g = this.g;
    vaddr >>>= 0;
    if (vaddr >= g.switcherAddr) return Demand.Fail;
    const slot = this.current;
    // The guest's entries, walked level by level (made up in linear mode).
    let gpgd: number, gpmd = 0, gpte: number, gpteHi = 0, gpteAddr = 0;
    if (this.linear) {
      gpgd = this.pae ? PTE.P : PAGE_TABLE_FLAGS;
      gpmd = PAGE_TABLE_FLAGS;
      gpte = (vaddr & -4096) | PTE.RW | PTE.P;
    } else if (!this.pae) {
      gpgd = g.readGuest32(slot.gpgdir + (vaddr >>> 22) * 4);
      if ((gpgd & PTE.P) === 0) return Demand.Fail;
      this.checkGpgd(gpgd, 0);
      gpteAddr = (gpgd & -4096) + ((vaddr >>> 12) & 1023) * 4;
      gpte = g.readGuest32(gpteAddr);
    } else {
      const pgdAt = slot.gpgdir + (vaddr >>> 30) * 8;
      gpgd = g.readGuest32(pgdAt);
      if ((gpgd & PTE.P) === 0) return Demand.Fail;
      this.checkGpgd(gpgd, g.readGuest32(pgdAt + 4));
      const pmdAt = (gpgd & -4096) + ((vaddr >>> 21) & 511) * 8;
      gpmd = g.readGuest32(pmdAt);
      if ((gpmd & PTE.P) === 0) return Demand.Fail;
      this.checkGpmd(gpmd, g.readGuest32(pmdAt + 4));
      gpteAddr = (gpmd & -4096) + ((vaddr >>> 12) & 511) * 8;
      gpte = g.readGuest32(gpteAddr);
      gpteHi = g.readGuest32(gpteAddr + 4);
    }
    if ((gpte & PTE.P) === 0) return Demand.Fail;
    // The access must be allowed at every level, as the CPU checks it: the
    // directory entry's RW and US (under PAE the PMD's; a PDPT entry has
    // neither) as well as the PTE's. The shadow directory entry carries the
    // guest's, so calling a fault the directory forbids fixed would send the
    // CPU straight back into it.
    const dir = this.pae ? gpmd : gpgd;
    const allowed = gpte & dir;
    if ((errcode & 2) !== 0 && (allowed & PTE.RW) === 0) return Demand.Fail;
    if ((errcode & 4) !== 0 && (allowed & PTE.US) === 0) return Demand.Fail;
    this.checkGpte(gpte, gpteHi);
    gpte |= PTE.A;
    if ((errcode & 2) !== 0) gpte |= PTE.D;
    // Guest flags minus G; read-only until the guest's D bit is set.
    let flags = gpte & 0xfff & ~PTE.G;
    if ((gpte & PTE.D) === 0) flags &= ~PTE.RW;
    const spteAddr = this.shadowPteAddr(this.current, vaddr, true, gpgd, gpmd);
    this.writeSpte(spteAddr, (gpte & -4096) | flags);
    g.cpu.flushTlbPage(vaddr | 0);
    if (!this.linear) g.writeGuest32(gpteAddr, gpte);
    return Demand.Ok;
  }

  /**
   * LHCALL_SET_PTE: the guest changed the PTE for `vaddr` in the table rooted
   * at `gpgdir` (`pteHi`: the high half, PAE only). Kernel addresses apply to
   * every shadow; user addresses only to the shadow of `gpgdir`.
   */
  setPte(gpgdir: number, vaddr: number, pte: number, pteHi = 0): void {
    const g = this.g;
    vaddr >>>= 0;
    if (!this.pae) pteHi = 0;
    if (vaddr >= g.switcherAddr) g.kill("attempt to set pte into switcher pages");
    const kernel = vaddr >= g.kernelAddress;
    const key = gpgdir & this.topMask();
    for (let i = 0; i < PGDIR_SLOTS; i++) {
      const s = this.slots[i];
      if (!s || (!kernel && s.gpgdir !== key)) continue;
      const at = this.shadowPteAddr(s, vaddr, false);
      if (at < 0) continue; // no shadow table there yet: nothing to update
      if ((pte & (PTE.A | PTE.D)) !== 0 && (pte & PTE.P) !== 0) {
        this.checkGpte(pte, pteHi);
        // As 4.9 does: the guest's flags minus G, RW kept even when D is clear.
        this.writeSpte(at, (pte & -4096) | (pte & 0xfff & ~PTE.G));
      } else this.writeSpte(at, 0);
      if (i === this.cur) g.cpu.flushTlbPage(vaddr | 0);
    }
  }

  /**
   * LHCALL_SET_PGD: top-level entry `idx` of the table at `gpgdir` changed
   * (a page-directory entry; under PAE a PDPT entry): drop the shadow's.
   */
  setPgd(gpgdir: number, idx: number): void {
    const entries = this.pae ? 4 : 1024;
    if (idx > entries) this.g.kill(`bad SET_PGD index ${idx}`);
    // 4.9's off-by-one lets `entries` through; it touches nothing. The switcher stays mapped.
    if (idx >= this.topEntries) return;
    const key = gpgdir & this.topMask();
    const i = this.slots.findIndex((s) => s !== null && s.gpgdir === key);
    if (i < 0) return;
    this.releaseTop(this.slots[i]!, idx);
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
    let gpteAddr: number;
    if (!this.pae) {
      const gpgd = g.readGuest32(this.current.gpgdir + (vaddr >>> 22) * 4);
      if ((gpgd & PTE.P) === 0) return -1;
      gpteAddr = (gpgd & -4096) + ((vaddr >>> 12) & 1023) * 4;
    } else {
      const gpgd = g.readGuest32(this.current.gpgdir + (vaddr >>> 30) * 8);
      if ((gpgd & PTE.P) === 0) return -1;
      const pmdAt = (gpgd & -4096) + ((vaddr >>> 21) & 511) * 8;
      if (!g.ramContains(pmdAt, 8)) return -1;
      const gpmd = g.readGuest32(pmdAt);
      if ((gpmd & PTE.P) === 0) return -1;
      gpteAddr = (gpmd & -4096) + ((vaddr >>> 12) & 511) * 8;
      if (!g.ramContains(gpteAddr, 8) || g.readGuest32(gpteAddr + 4) !== 0) return -1;
    }
    if (!g.ramContains(gpteAddr, 4)) return -1;
    const gpte = g.readGuest32(gpteAddr);
    if ((gpte & PTE.P) === 0) return -1;
    return ((gpte & -4096) | (vaddr & 0xfff)) >>> 0;
  }

  /** Is `vaddr` present and writable in the current shadow (for stack pinning)? */
  shadowWritable(vaddr: number): boolean {
    const at = this.shadowPteAddr(this.current, vaddr >>> 0, false);
    if (at < 0) return false;
    const spte = this.g.mem.read32(at);
    return (spte & (PTE.P | PTE.RW)) === (PTE.P | PTE.RW);
  }
}
