/**
 * The host's invariants, checked from outside: "a guest can hurt only
 * itself" stated as facts about host state that must hold between any two
 * guest instructions, whatever the guest did. `auditHost` reads the shadow
 * page tables, the host page pool, the CPU's TLBs and control state, and the
 * GDT page the CPU uses, and returns every violation it finds as one line of
 * text (an empty list: all is well). It changes nothing, so a debugger can
 * call it at any stop and the fuzzer calls it every few thousand guest
 * instructions.
 *
 * What it checks:
 *  - every shadow leaf (PTE) points into guest RAM or at device memory the
 *    CPU's bus serves in the device window, with a zero high half under PAE;
 *    the switcher entries map only the GDT page, read-only and
 *    supervisor-only;
 *  - every shadow directory entry (PGD, PAE PDPT and PMD) points at a pool
 *    page, with flags the host allows (never a huge page);
 *  - no pool page is used twice, none in use is also free, and the pool's
 *    count of pages in use equals the pages the shadows, the switcher table
 *    and the GDT actually hold (a leak or a double free shows here);
 *  - every read-TLB entry maps guest RAM (or the GDT page, supervisor-only, at
 *    its switcher address), every write-TLB entry maps guest RAM, and so does
 *    the cached code-fetch page (device memory never enters the TLB);
 *  - the CPU runs the current shadow (CR3), with paging and write protection
 *    on, PAE as the guest was built, never at ring 0, IOPL 0, no LDT, GDTR at
 *    the host's GDT, every trap leaving the CPU for the host;
 *  - the GDT page holds exactly the host's image of the guest's entries (the
 *    host's own entries in place), and no guest descriptor has DPL 0;
 *  - the hypercall log stays within its bound.
 *
 * @module
 */

import type { Guest } from "./guest.ts";
import { PAGE_TABLE_FLAGS, PTE } from "./abi.ts";
import { PGDIR_SLOTS, SWITCHER_PGD_INDEX, SWITCHER_PMD_INDEX } from "./page_tables.ts";
import { GDT_ENTRY_LGUEST_CS, GDT_ENTRY_LGUEST_DS } from "./abi.ts";
import { hostGdtImage } from "./segments.ts";
import { CR0_PE, CR0_PG, CR0_WP, CR4_PAE, CR4_PSE, CS, TLB_USER } from "../x86/cpu.ts";
import { IOPL, VM } from "../x86/flags.ts";

const hex = (n: number) => `0x${(n >>> 0).toString(16)}`;

/** Most violations reported (a broken table would otherwise give thousands of lines). */
export const AUDIT_MAX_REPORTS = 50;

/** Check the host's invariants for guest `g`; returns the violations found (none: `[]`). */
export function auditHost(g: Guest): string[] {
  const out: string[] = [];
  const bad = (s: string) => {
    if (out.length < AUDIT_MAX_REPORTS) out.push(s);
  };
  const mem = g.mem, pool = g.pages, pt = g.pt, cpu = g.cpu;
  const pae = pt.pae, esz = pae ? 8 : 4;
  const ramPages = g.pfnLimit;
  const gdtPage = g.gdt.page;

  // Pool pages the host holds, with who holds them.
  const held = new Map<number, string>();
  const hold = (pa: number, who: string) => {
    if ((pa & 0xfff) !== 0 || !pool.owns(pa)) {
      bad(`${who} is at ${hex(pa)}, not a host pool page`);
      return false;
    }
    const other = held.get(pa);
    if (other !== undefined) {
      bad(`host page ${hex(pa)} is used twice: by ${other} and by ${who}`);
      return false;
    }
    held.set(pa, who);
    return true;
  };
  hold(gdtPage, "the GDT");
  if (pt.switcherPt >= 0) hold(pt.switcherPt, "the switcher page table");

  // A shadow leaf: guest RAM, or device memory on the bus in the device window.
  const leaf = (at: number, where: string) => {
    const lo = mem.read32(at);
    if ((lo & PTE.P) === 0) return;
    const hi = pae ? mem.read32(at + 4) : 0;
    const pfn = lo >>> 12;
    const device = pfn >= ramPages && pfn < g.deviceLimit && cpu.bus.isMmioPage(pfn * 4096);
    if (hi !== 0 || (pfn >= ramPages && !device)) {
      const high = hi !== 0 ? ` (high ${hex(hi)})` : "";
      bad(`${where}: shadow PTE ${hex(lo)}${high} maps neither guest RAM nor device memory`);
    }
  };
  // A shadow table of leaves.
  const table = (page: number, where: string) => {
    for (let k = 0; k < 4096 / esz; k++) leaf(page + k * esz, `${where} PTE ${k}`);
  };
  // A directory entry (non-PAE PGD, PAE PMD): a pool page with _PAGE_TABLE flags at most.
  const dirEntry = (at: number, where: string): number => {
    const lo = mem.read32(at);
    if ((lo & PTE.P) === 0) return -1;
    const hi = pae ? mem.read32(at + 4) : 0;
    if ((lo & 0xfff & ~PAGE_TABLE_FLAGS) !== 0 || hi !== 0) {
      bad(`${where}: shadow directory entry ${hex(lo)} has flags the host never sets`);
    }
    return hold(lo & -4096, `${where}'s table`) ? lo & -4096 : -1;
  };
  // The switcher entry every shadow has: the shared switcher table, supervisor-only.
  const switcherEntry = (at: number, where: string) => {
    if (pt.switcherPt < 0) return;
    const lo = mem.read32(at);
    const want = pt.switcherPt | PTE.P | PTE.RW | PTE.A;
    if (lo !== want || (pae && mem.read32(at + 4) !== 0)) {
      bad(`${where}: switcher entry ${hex(lo)}, not ${hex(want)}`);
    }
  };

  const shadows = new Set<number>();
  for (let s = 0; s < PGDIR_SLOTS; s++) {
    const slot = pt.slots[s];
    if (!slot) continue;
    const name = `shadow ${s}`;
    if (!hold(slot.shadow, `${name}'s top page`)) continue;
    shadows.add(slot.shadow);
    if (!pae) {
      for (let i = 0; i < SWITCHER_PGD_INDEX; i++) {
        const t = dirEntry(slot.shadow + i * 4, `${name} PGD ${i}`);
        if (t >= 0) table(t, `${name} PGD ${i}`);
      }
      switcherEntry(slot.shadow + SWITCHER_PGD_INDEX * 4, name);
      continue;
    }
    for (let i = 0; i < 4; i++) {
      const at = slot.shadow + i * 8;
      const lo = mem.read32(at);
      if ((lo & PTE.P) === 0) continue;
      if ((lo & 0xfff) !== PTE.P || mem.read32(at + 4) !== 0) {
        bad(`${name} PDPT ${i}: entry ${hex(lo)} has flags the host never sets`);
      }
      const pmd = lo & -4096;
      if (!hold(pmd, `${name} PDPT ${i}'s PMD page`)) continue;
      for (let j = 0; j < 512; j++) {
        if (i === 3 && j >= SWITCHER_PMD_INDEX) continue;
        const t = dirEntry(pmd + j * 8, `${name} PMD ${i}.${j}`);
        if (t >= 0) table(t, `${name} PMD ${i}.${j}`);
      }
      if (i === 3) {
        switcherEntry(pmd + SWITCHER_PMD_INDEX * 8, name);
        for (let j = SWITCHER_PMD_INDEX + 1; j < 512; j++) {
          if ((mem.read32(pmd + j * 8) & PTE.P) !== 0) bad(`${name} PMD 3.${j}: present`);
        }
      }
    }
    if (pt.switcherPt >= 0 && (mem.read32(slot.shadow + 24) & PTE.P) === 0) {
      bad(`${name}: the switcher is not mapped`);
    }
  }

  // The switcher table maps the GDT page at its first entry, read-only, supervisor-only.
  if (pt.switcherPt >= 0) {
    for (let k = 0; k < 4096 / esz; k++) {
      const lo = mem.read32(pt.switcherPt + k * esz);
      const hi = pae ? mem.read32(pt.switcherPt + k * esz + 4) : 0;
      const want = k === 0 ? gdtPage | PTE.P | PTE.A : 0;
      if (lo !== want || hi !== 0) {
        bad(`switcher PTE ${k} is ${hex(lo)}, not ${hex(want)}`);
      }
    }
  }

  // Pool accounting.
  const free = pool.freePages;
  const freeSet = new Set<number>();
  for (const pa of free) {
    if ((pa & 0xfff) !== 0 || !pool.owns(pa)) bad(`free list holds ${hex(pa)}, not a pool page`);
    else if (freeSet.has(pa)) bad(`free list holds ${hex(pa)} twice`);
    else if (held.has(pa)) bad(`host page ${hex(pa)} is free and in use by ${held.get(pa)}`);
    freeSet.add(pa);
  }
  if (pool.inUse + free.length !== pool.count) {
    bad(`pool: ${pool.inUse} in use + ${free.length} free != ${pool.count} pages`);
  }
  if (pool.inUse !== held.size) {
    bad(
      `pool: ${pool.inUse} pages in use, but the host holds ${held.size} (a leak or a double free)`,
    );
  }

  // The CPU: the shadow, paging, privilege.
  const cr3 = pae ? cpu.cr3 & -32 : cpu.cr3 & -4096;
  const cur = pt.slots[pt.cur];
  if (!cur) bad(`no current shadow (slot ${pt.cur} is empty)`);
  else if (cr3 !== cur.shadow) {
    bad(`CR3 ${hex(cpu.cr3)} is not the current shadow ${hex(cur.shadow)}`);
  }
  if (!shadows.has(cr3)) bad(`CR3 ${hex(cpu.cr3)} is no shadow's top page`);
  const cr0Need = CR0_PE | CR0_PG | CR0_WP;
  if ((cpu.cr0 & cr0Need) !== cr0Need) bad(`CR0 ${hex(cpu.cr0)}: paging or write protection off`);
  if (((cpu.cr4 & CR4_PAE) !== 0) !== pae) bad(`CR4 ${hex(cpu.cr4)}: PAE is not the guest's`);
  if ((cpu.cr4 & CR4_PSE) !== 0) bad(`CR4 ${hex(cpu.cr4)}: PSE on (huge pages)`);
  if (cpu.cpl === 0 || (cpu.sreg[CS] & 3) === 0) {
    bad(`the guest runs at ring 0 (CS ${hex(cpu.sreg[CS])}, CPL ${cpu.cpl})`);
  }
  const fl = cpu.getEflags();
  if ((fl & IOPL) !== 0 || (fl & VM) !== 0) bad(`EFLAGS ${hex(fl)}: IOPL or VM set`);
  if (cpu.ldtr !== 0 || cpu.ldtLimit !== 0) bad(`an LDT is loaded (LDTR ${hex(cpu.ldtr)})`);
  if (cpu.gdtBase !== (g.gdt.linear | 0) || cpu.gdtLimit !== 255) {
    bad(`GDTR ${hex(cpu.gdtBase)}/${cpu.gdtLimit} is not the host's GDT`);
  }
  if (cpu.exitVectors.indexOf(0) >= 0) {
    bad(`vector ${cpu.exitVectors.indexOf(0)} is delivered by the CPU, not the host`);
  }

  // The TLBs and the fetch cache: guest RAM, or the GDT page read by the supervisor.
  const gdtLin = g.gdt.linear >>> 12, gdtPfn = gdtPage >>> 12;
  const r = cpu.tlbR, w = cpu.tlbW;
  for (let lp = 0; lp < r.length; lp++) {
    const er = r[lp], ew = w[lp];
    if ((er | ew) === 0) continue;
    if (er !== 0) {
      const pfn = ((er & -4096) ^ (lp << 12)) >>> 12;
      if (pfn >= ramPages && !(pfn === gdtPfn && lp === gdtLin && (er & TLB_USER) === 0)) {
        bad(`read TLB maps linear ${hex(lp << 12)} to ${hex(pfn << 12)}, outside guest RAM`);
      }
    }
    if (ew !== 0) {
      const pfn = ((ew & -4096) ^ (lp << 12)) >>> 12;
      if (pfn >= ramPages) {
        bad(`write TLB maps linear ${hex(lp << 12)} to ${hex(pfn << 12)}, outside guest RAM`);
      }
    }
  }
  if (cpu.fetchPage !== 1) {
    const pfn = (cpu.fetchPage ^ cpu.fetchXor) >>> 12;
    if (pfn >= ramPages && pfn !== gdtPfn) {
      bad(
        `code fetch from linear ${hex(cpu.fetchPage)} reads ${hex(pfn << 12)}, outside guest RAM`,
      );
    }
  }

  // The GDT page: the host's image of the guest's entries, nothing else.
  const image = hostGdtImage(g.gdt.entries);
  for (let i = 0; i < 1024; i++) {
    const v = mem.read32(gdtPage + i * 4), want = i < image.length ? image[i] : 0;
    if (v !== want) {
      bad(`GDT page dword ${i} (entry ${i >> 1}) is ${hex(v)}, not ${hex(want)}`);
    }
  }
  for (let i = 0; i < image.length / 2; i++) {
    if (i === GDT_ENTRY_LGUEST_CS || i === GDT_ENTRY_LGUEST_DS) continue;
    const hi = image[i * 2 + 1];
    if ((hi & 0x8000) !== 0 && (hi & 0x1000) !== 0 && ((hi >> 13) & 3) === 0) {
      bad(`GDT entry ${i} is a DPL 0 segment the guest can load`);
    }
  }

  if (g.hcallLog.length > g.hcallLogLimit) {
    bad(`hypercall log holds ${g.hcallLog.length} records (bound ${g.hcallLogLimit})`);
  }
  return out;
}
