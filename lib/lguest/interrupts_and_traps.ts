/**
 * Trap and interrupt delivery into the guest, in software, as lguest does it
 * (drivers/lguest/interrupts_and_traps.c).
 *
 * The guest's IDT is not the CPU's: the guest sends each gate with
 * LHCALL_LOAD_IDT_ENTRY and the host keeps them here. When the guest must take
 * a trap (a fault it caused, a system call, a page fault its own tables
 * forbid) or a virtual interrupt (the timer, a device), the host builds the
 * frame itself on the guest's kernel stack, exactly in the hardware's layout —
 * `[SS, ESP,] EFLAGS, CS, EIP [, error code]` — switching to the stack from
 * LHCALL_SET_STACK when the guest was in ring 3, and enters the handler at
 * ring 1. The guest's virtual interrupt flag is `lguest_data.irq_enabled`: an
 * interrupt gate clears it, and the EFLAGS the frame records carries it in
 * place of the CPU's own IF (which is always on while the guest runs).
 *
 * @module
 */

import type { Guest } from "./guest.ts";
import { CS, ESP, SS } from "../x86/cpu.ts";
import { IF, IOPL, NT, RF, TF, VIF, VIP, VM } from "../x86/flags.ts";
import { FIRST_EXTERNAL_VECTOR, hasErrorCode, KERNEL_CS, LGUEST_DATA } from "./abi.ts";

/** The guest's IDT as the host stores it: per vector, the gate's two dwords (0 = absent). */
export class GuestIdt {
  /** lo/hi dwords per vector, in lguest's stored form. */
  readonly gates: Int32Array = new Int32Array(512);

  /** The guest's IDT, all gates absent. @param g the guest */
  constructor(private readonly g: Guest) {}

  /** Is vector `v`'s gate present? */
  present(v: number): boolean {
    return (this.gates[v * 2 + 1] & 0x8000) !== 0;
  }

  /** The DPL of vector `v`'s gate (an absent gate counts as DPL 0). */
  dpl(v: number): number {
    return this.present(v) ? (this.gates[v * 2 + 1] >> 13) & 3 : 0;
  }

  /**
   * LHCALL_LOAD_IDT_ENTRY(num, lo, hi). Vectors 2 (NMI), 8 (#DF), 15 and 0x1F
   * are the host's and silently ignored; a gate that is not an interrupt or
   * trap gate kills the guest.
   */
  loadEntry(num: number, lo: number, hi: number): void {
    if (num >>> 0 >= 256) this.g.kill(`too many IDT entries ${num >>> 0}`);
    if (num === 2 || num === 8 || num === 15 || num === 0x1f) return;
    if ((hi & 0x8000) === 0) {
      this.gates[num * 2] = this.gates[num * 2 + 1] = 0;
      return;
    }
    const type = (hi >> 8) & 0xf;
    if (type !== 0xe && type !== 0xf) this.g.kill(`bad IDT type ${type}`);
    this.gates[num * 2] = (KERNEL_CS << 16) | (lo & 0xffff);
    this.gates[num * 2 + 1] = hi & 0xffffef00;
  }
}

/** Write a dword at guest-virtual `vaddr` through the guest's tables; kill if unmapped. */
function pushGuest(g: Guest, vaddr: number, v: number): void {
  const pa = g.pt.guestPa(vaddr);
  if (pa < 0 || !g.ramContains(pa, 4)) g.kill(`Bad address 0x${(vaddr >>> 0).toString(16)}`);
  g.writeGuest32(pa, v);
}

/**
 * push_guest_interrupt_stack: build the frame for a trap or interrupt on the
 * guest's kernel stack and leave ESP (and SS, when coming from ring 3) there.
 */
export function pushGuestInterruptStack(g: Guest, err: number): void {
  const cpu = g.cpu;
  let ss = cpu.sreg[SS], esp = cpu.regs[ESP];
  const origSs = ss, origEsp = esp;
  const fromUser = (ss & 3) !== 1;
  let base = cpu.sbase[SS];
  if (fromUser) {
    ss = g.ss1;
    esp = g.esp1;
    base = 0; // the kernel's stack segment is flat
  }
  const push = (v: number) => {
    esp = (esp - 4) | 0;
    pushGuest(g, (base + esp) | 0, v);
  };
  if (fromUser) {
    push(origSs);
    push(origEsp);
  }
  // EFLAGS as the guest sees it: IF is the virtual one (irq_enabled).
  let eflags = cpu.getEflags();
  if ((g.readLguestData(LGUEST_DATA.irq_enabled) & IF) === 0) eflags &= ~IF;
  push(eflags);
  push(cpu.sreg[CS]);
  push(cpu.eip);
  if (err >= 0) push(err);
  if (fromUser) {
    cpu.setCpl(1);
    g.gdt.loadSegment(SS, ss);
  }
  cpu.regs[ESP] = esp;
}

/**
 * The EFLAGS the host lets the guest run with, from a value the host sets:
 * the live flags when it enters a handler, or the word the guest left in the
 * iret frame at `noirq_iret`. Only what an IRET at ring 1 could change: IOPL
 * stays 0, so every IN/OUT at ring 1 (and ring 3) still comes to the host;
 * IF stays set, since the guest's interrupt flag is the virtual one; VIF and
 * VIP stay clear and VM cannot be set. TF, RF and NT are cleared, as 4.9 does.
 */
export function guestEflags(v: number): number {
  return (v & ~(TF | VM | RF | NT | IOPL | VIF | VIP)) | IF;
}

/**
 * guest_run_interrupt: enter the handler of a gate (lo, hi) at ring 1.
 * An interrupt gate (type 0xE) clears the virtual IF.
 */
export function guestRunInterrupt(g: Guest, lo: number, hi: number): void {
  const cpu = g.cpu;
  cpu.setCpl(1);
  g.gdt.loadSegment(CS, KERNEL_CS);
  cpu.eip = (lo & 0xffff) | (hi & 0xffff0000);
  cpu.setEflags(guestEflags(cpu.getEflags()));
  if (((hi >> 8) & 0xf) === 0xe) g.writeLguestData(LGUEST_DATA.irq_enabled, 0);
}

/**
 * deliver_trap: reflect trap `n` (with error code `err`, or -1) into the guest.
 * Returns false when the guest has no handler for it.
 */
export function deliverTrap(g: Guest, n: number, err: number): boolean {
  if (n >>> 0 >= 256 || !g.idt.present(n)) return false;
  pushGuestInterruptStack(g, hasErrorCode(n) ? err : -1);
  guestRunInterrupt(g, g.idt.gates[n * 2], g.idt.gates[n * 2 + 1]);
  return true;
}

/**
 * try_deliver_interrupt / interrupt_pending: deliver the lowest pending,
 * unblocked virtual IRQ if the guest allows it. A halted guest is woken with
 * interrupts on; a guest with interrupts off is told through irq_pending.
 */
export function maybeDeliverInterrupt(g: Guest): void {
  if (g.lguestData < 0 || g.irqsPending === 0) return;
  const blocked = g.readLguestData(LGUEST_DATA.blocked_interrupts);
  const deliverable = g.irqsPending & ~blocked;
  if (deliverable === 0) return;
  const irq = 31 - Math.clz32(deliverable & -deliverable);
  if (g.halted) {
    g.writeLguestData(LGUEST_DATA.irq_enabled, IF);
    g.halted = false;
  } else if ((g.readLguestData(LGUEST_DATA.irq_enabled) & IF) === 0) {
    // (4.9 tests the whole word here; testing IF is the recommended fix.)
    g.writeLguestData(LGUEST_DATA.irq_pending, IF);
    return;
  }
  const v = FIRST_EXTERNAL_VECTOR + irq;
  if (!g.idt.present(v)) return; // stays pending until the guest installs a handler
  g.irqsPending &= ~(1 << irq);
  const cpu = g.cpu;
  if ((cpu.eip >>> 0) === g.noirqIret) {
    // Interrupted at lguest_iret's iret: reuse its frame instead of stacking another.
    const pa = g.pt.guestPa((cpu.sbase[SS] + cpu.regs[ESP] + 8) | 0);
    if (pa < 0 || !g.ramContains(pa, 4)) g.kill("Bad address reading iret frame");
    cpu.setEflags(guestEflags(g.readGuest32(pa)));
  } else pushGuestInterruptStack(g, -1);
  guestRunInterrupt(g, g.idt.gates[v * 2], g.idt.gates[v * 2 + 1]);
  g.writeTime();
  // 4.9 quirk kept: `more` is always true, so irq_pending is never cleared here.
}
