/**
 * Hypercalls (drivers/lguest/hypercalls.c): what the host does when the guest
 * executes `int $0x1f` with the call number in EAX and arguments in EBX, ECX,
 * EDX and ESI — and the asynchronous ring in `lguest_data` through which the
 * guest batches calls (page-table updates, context switches) while it keeps
 * running. The ring is drained, in order, just before every synchronous call.
 *
 * There is no return value and no error code: a call the host cannot accept
 * kills the guest with a reason.
 *
 * @module
 */

import type { Guest } from "./guest.ts";
import {
  LGUEST_DATA,
  LGUEST_SHUTDOWN_RESTART,
  LHCALL,
  LHCALL_NAMES,
  LHCALL_RING_SIZE,
  SYSCALL_VECTOR,
} from "./abi.ts";
import { CR0_TS } from "../x86/cpu.ts";

/** One hypercall as the host saw it (for the debugger's log and traces). */
export interface HypercallRecord {
  /** Retired guest instructions when it happened. */
  icount: number;
  /** Call number. */
  nr: number;
  /** arg1..arg4 (EBX, ECX, EDX, ESI). */
  args: [number, number, number, number];
  /** True when it came through the async ring. */
  async: boolean;
}

/** A hypercall's name, e.g. "LHCALL_NEW_PGTABLE", or "hypercall N". */
export function hypercallName(nr: number): string {
  return LHCALL_NAMES.get(nr) ?? `hypercall ${nr}`;
}

/** Execute one hypercall (after the async ring, for a synchronous one). */
export function doHcall(
  g: Guest,
  nr: number,
  a1: number,
  a2: number,
  a3: number,
  a4: number,
  async = false,
): void {
  g.recordHypercall({ icount: g.cpu.icount, nr, args: [a1, a2, a3, a4], async });
  if (g.lguestData < 0) {
    if (nr !== LHCALL.LGUEST_INIT) g.kill(`hypercall ${nr} before INIT`);
    return initialize(g, a1);
  }
  switch (nr) {
    case LHCALL.FLUSH_ASYNC:
    case LHCALL.SEND_INTERRUPTS:
      return; // their exit to the host is the point
    case LHCALL.LGUEST_INIT:
      return g.kill("already have lguest_data");
    case LHCALL.SHUTDOWN:
      return shutdown(g, a1, a2);
    case LHCALL.NEW_PGTABLE:
      return g.pt.newPgtable(a1);
    case LHCALL.FLUSH_TLB:
      return g.pt.flushTlb(a1 !== 0);
    case LHCALL.LOAD_IDT_ENTRY:
      return g.idt.loadEntry(a1, a2, a3);
    case LHCALL.SET_STACK:
      return g.setStack(a1, a2, a3);
    case LHCALL.TS:
      g.ts = a1 !== 0;
      if (g.ts) g.cpu.cr0 |= CR0_TS;
      else g.cpu.cr0 &= ~CR0_TS;
      return;
    case LHCALL.SET_CLOCKEVENT:
      return g.setClockEvent(a1 >>> 0);
    case LHCALL.HALT:
      g.halted = true;
      return;
    case LHCALL.SET_PTE:
      return g.pt.setPte(a1, a2, a3, a4);
    case LHCALL.SET_PMD:
      if (!g.pt.pae) break; // a non-PAE host has no such call
      return g.pt.setPmd();
    case LHCALL.SET_PGD:
      return g.pt.setPgd(a1, a2 >>> 0);
    case LHCALL.LOAD_TLS:
      return g.gdt.loadTls(a1);
    case LHCALL.LOAD_GDT_ENTRY:
      return g.gdt.loadEntry(a1, a2, a3);
  }
  // 3, 11, 12 and 17 are retired; SET_PMD (13) exists only for a PAE host.
  g.kill(`Bad hypercall ${nr >>> 0}`);
}

/** LHCALL_LGUEST_INIT: learn where lguest_data is and fill in what the host provides. */
function initialize(g: Guest, gpa: number): void {
  gpa >>>= 0;
  if (!g.ramContains(gpa, LGUEST_DATA.SIZE)) {
    g.kill(`bad lguest_data address 0x${gpa.toString(16)}`);
  }
  g.lguestData = gpa;
  g.writeLguestData(LGUEST_DATA.tsc_khz, g.tscKhz);
  const sys = g.readLguestData(LGUEST_DATA.syscall_vec) >>> 0;
  if (sys !== SYSCALL_VECTOR) g.kill(`bad syscall vector 0x${sys.toString(16)}`);
  g.noirqIret = g.readLguestData(LGUEST_DATA.noirq_iret) >>> 0;
  g.writeTime();
  g.kernelAddress = g.readLguestData(LGUEST_DATA.kernel_address) >>> 0;
  g.writeLguestData(LGUEST_DATA.reserve_mem, (0x100000000 - g.reservedFrom) | 0);
  if (g.kernelAddress >= g.switcherAddr) g.kill("bad kernel address");
  // Still in linear mode: throw the shadows away and re-pin the stack.
  g.pt.dropAllMappings();
  g.pinStackPages();
}

/** LHCALL_SHUTDOWN: read the message and die; reason 2 asks for a restart. */
function shutdown(g: Guest, gpa: number, reason: number): void {
  gpa >>>= 0;
  let msg: string;
  if (!g.ramContains(gpa, 128)) msg = `bad read address 0x${gpa.toString(16)} len 128`;
  else {
    const bytes = g.mem.u8.subarray(gpa, gpa + 127);
    const end = bytes.indexOf(0);
    msg = "CRASH: " + new TextDecoder("latin1").decode(end < 0 ? bytes : bytes.subarray(0, end));
  }
  if (reason === LGUEST_SHUTDOWN_RESTART) g.restartRequested = true;
  // lguest_power_off sends exactly "Power down"; a panic sends its message with the same reason.
  else if (msg === "CRASH: Power down") g.poweredOff = true;
  g.kill(msg);
}

/**
 * do_async_hcalls: run the calls the guest queued in lguest_data's ring, in
 * order from the host's cursor, stopping at the first empty slot.
 */
export function drainAsync(g: Guest): void {
  const base = g.lguestData;
  if (base < 0) return;
  const status = base + LGUEST_DATA.hcall_status;
  // Snapshot the status bytes first, as 4.9 does.
  const snap = g.mem.u8.slice(status, status + LHCALL_RING_SIZE);
  for (let k = 0; k < LHCALL_RING_SIZE; k++) {
    const i = g.nextHcall;
    if (snap[i] === 0xff) break;
    g.nextHcall = (i + 1) % LHCALL_RING_SIZE;
    const a = base + LGUEST_DATA.hcalls + i * 20;
    const m = g.mem;
    doHcall(
      g,
      m.read32(a),
      m.read32(a + 4),
      m.read32(a + 8),
      m.read32(a + 12),
      m.read32(a + 16),
      true,
    );
    g.writeGuest8(status + i, 0xff);
    if (g.dead) return;
  }
}
