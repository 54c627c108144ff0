/**
 * The lguest ABI as of Linux 4.9 (i386): hypercall numbers, the layout of
 * `struct lguest_data`, the selectors and privilege levels, and the other
 * numbers the host and guest agree on. Everything here is a fact of the ABI
 * (see shared/reference/lguest-4.9-abi.md); nothing here is policy.
 *
 * @module
 */

import { EAX, EBX, ECX, EDX, ESI } from "../x86/cpu.ts";

/** Hypercall numbers (`arch/x86/include/asm/lguest_hcall.h`). */
export const LHCALL = {
  FLUSH_ASYNC: 0,
  LGUEST_INIT: 1,
  SHUTDOWN: 2,
  NEW_PGTABLE: 4,
  FLUSH_TLB: 5,
  LOAD_IDT_ENTRY: 6,
  SET_STACK: 7,
  TS: 8,
  SET_CLOCKEVENT: 9,
  HALT: 10,
  SET_PMD: 13,
  SET_PTE: 14,
  SET_PGD: 15,
  LOAD_TLS: 16,
  LOAD_GDT_ENTRY: 18,
  SEND_INTERRUPTS: 19,
} as const;

/** Hypercall names by number. */
export const LHCALL_NAMES: Map<number, string> = new Map(
  Object.entries(LHCALL).map(([k, v]) => [v, `LHCALL_${k}`]),
);

/**
 * The hypercall register convention (§2.1): the call number in EAX, the four
 * arguments in EBX, ECX, EDX and ESI (`struct hcall_args` laid over the saved
 * registers). Nothing is returned: EAX still holds the call number after it.
 */
export const HCALL_NR_REG = EAX;
/** The registers holding a hypercall's arguments 1..4, in order. */
export const HCALL_ARG_REGS: readonly [number, number, number, number] = [EBX, ECX, EDX, ESI];

/** A hypercall's number and arguments as the guest left them in `regs`. */
export function hypercallArgs(regs: Int32Array): { nr: number; args: number[] } {
  return { nr: regs[HCALL_NR_REG] >>> 0, args: HCALL_ARG_REGS.map((r) => regs[r]) };
}

/** The hypercall trap vector: `int $0x1f`. */
export const LGUEST_TRAP_ENTRY = 0x1f;
/** The system-call vector the guest must use. */
export const SYSCALL_VECTOR = 0x80;
/** First vector of device interrupts (IRQ n arrives on vector 32 + n). */
export const FIRST_EXTERNAL_VECTOR = 32;
/** IRQs the host can raise: one 32-bit bitmap. */
export const LGUEST_IRQS = 32;

/** Offsets in `struct lguest_data` (1388 bytes; the same under PAE). */
export const LGUEST_DATA = {
  irq_enabled: 0,
  blocked_interrupts: 4,
  cr2: 8,
  time_sec: 12,
  time_nsec: 16,
  irq_pending: 20,
  hcall_status: 24,
  hcalls: 88,
  reserve_mem: 1368,
  tsc_khz: 1372,
  noirq_iret: 1376,
  kernel_address: 1380,
  syscall_vec: 1384,
  SIZE: 1388,
} as const;

/** Slots in the async hypercall ring. */
export const LHCALL_RING_SIZE = 64;

/** GDT: 32 entries; the guest kernel runs at ring 1. */
export const GDT_ENTRIES = 32;
/** The guest kernel's privilege level. */
export const GUEST_PL = 1;
/** GDT indexes the host keeps for itself. */
export const GDT_ENTRY_LGUEST_CS = 10, GDT_ENTRY_LGUEST_DS = 11, GDT_ENTRY_TSS = 16;
/** The double-fault TSS entry (host only). */
export const GDT_ENTRY_DOUBLEFAULT_TSS = 31;
/** TLS entries 6..8. */
export const GDT_ENTRY_TLS_MIN = 6, GDT_ENTRY_TLS_ENTRIES = 3;
/** KERNEL_CS / KERNEL_DS entries. */
export const GDT_ENTRY_KERNEL_CS = 12, GDT_ENTRY_KERNEL_DS = 13;
/** The guest kernel's CS (entry 12, RPL 1) and DS/SS (entry 13, RPL 1). */
export const KERNEL_CS = (GDT_ENTRY_KERNEL_CS << 3) | GUEST_PL;
/** KERNEL_DS with RPL 1. */
export const KERNEL_DS = (GDT_ENTRY_KERNEL_DS << 3) | GUEST_PL;

/** SHUTDOWN reasons. */
export const LGUEST_SHUTDOWN_POWEROFF = 1, LGUEST_SHUTDOWN_RESTART = 2;

/** Vectors that push an error code. */
export function hasErrorCode(v: number): boolean {
  return v === 8 || (v >= 10 && v <= 14) || v === 17;
}

/** Page-table entry flags. */
export const PTE = {
  P: 0x001,
  RW: 0x002,
  US: 0x004,
  PWT: 0x008,
  PCD: 0x010,
  A: 0x020,
  D: 0x040,
  PSE: 0x080,
  G: 0x100,
} as const;
/** `_PAGE_TABLE`: the flags a guest PGD entry may carry (non-PAE). */
export const PAGE_TABLE_FLAGS = 0x067;
