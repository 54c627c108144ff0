/**
 * Host-owned physical pages: where the host keeps what the CPU must see but
 * the guest must not — shadow page directories and page tables, and the GDT
 * the CPU really uses. They live in the emulator's physical memory above guest
 * RAM and the device window, so the MMU stays an ordinary i386 MMU walking
 * ordinary tables, and a debugger can dump the host's copies beside the
 * guest's. The guest can never reach them: the shadows the host builds only
 * ever map guest RAM.
 *
 * @module
 */

import type { PhysicalMemory } from "../x86/memory.ts";

/** A pool of 4 KiB host pages in physical memory `[base, base + count*4096)`. */
export class HostPages {
  private free: number[] = [];
  /** Pages handed out and not yet released. */
  inUse = 0;

  /**
   * A pool of `count` free pages from `base`.
   *
   * @param mem the emulator's physical memory (which must contain the pool)
   * @param base physical address of the first pool page (4 KiB aligned)
   * @param count number of pages
   */
  constructor(readonly mem: PhysicalMemory, readonly base: number, readonly count: number) {
    for (let i = count - 1; i >= 0; i--) this.free.push(base + i * 4096);
  }

  /** A zeroed page's physical address, or -1 when the pool is empty. */
  alloc(): number {
    const pa = this.free.pop();
    if (pa === undefined) return -1;
    this.mem.u8.fill(0, pa, pa + 4096);
    this.inUse++;
    return pa;
  }

  /** Give a page back. */
  release(pa: number): void {
    this.free.push(pa);
    this.inUse--;
  }

  /** The pages not handed out, in the order `alloc` will take them from the end (for audits). */
  get freePages(): readonly number[] {
    return this.free;
  }

  /** True when `pa` lies in the pool. */
  owns(pa: number): boolean {
    return pa >= this.base && pa < this.base + this.count * 4096;
  }
}
