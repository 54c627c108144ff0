/**
 * The system architecture of lib/x86, proven by guest programs.
 *
 * Each guest in tests/guests/ (nasm source beside its assembled .bin) builds
 * its own GDT, TSS, IDT and page tables on the bare machine, provokes one
 * behaviour after another — privilege changes, segment-load faults, page
 * faults, double faults, I/O permission, single-step, external interrupts —
 * and prints what the CPU did (vector, error code, saved EIP, CR2, registers,
 * descriptor and page-table words). These tests assert every value against the
 * rule of the Intel SDM cited beside it (and in the guest's comments). The same
 * guests run under QEMU with tests/guests/qemu_check.ts, which compares the
 * two machines line by line.
 *
 * @module
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { GuestRun, type Results, runGuest } from "./system_harness.ts";
import { CPUID_FEATURES_EDX, CPUID_SIGNATURE } from "../lib/x86/cpuid.ts";
import { Exit } from "../lib/x86/cpu.ts";

/** "No exception" / "no error code" in the guests' reports. */
const NONE = 0xffffffff;
const DF = 8, NP = 11, SS = 12, GP = 13, PF = 14;

// Selectors of tests/guests/include/guest.inc.
const CODE0 = 0x08, DATA0 = 0x10, CODE1 = 0x19, DATA1 = 0x21, CODE3 = 0x2b, DATA3 = 0x33;
const CODE_CONF0 = 0x58, SEL_BEYOND = 0xb8;
// Its memory map.
const K0INT_TOP = 0x178000, K1STACK_TOP = 0x180000, K1INT_TOP = 0x188000;
const USTACK_TOP = 0x190000, SYSSTACK_TOP = 0x198000, SCRATCH = 0x1a0000;
const EFL_IF = 0x200;

/** Run a guest once, on first use, for all the tests that read it. */
function guest(name: string): () => Results {
  let r: Results | undefined;
  return () => r ??= runGuest(name);
}

/**
 * Assert that attempt `name` raised `vec` with error code `err` (NONE: none
 * pushed) and saved EIP `eip` — by default the instruction under test, as a
 * fault must.
 */
function fault(r: Results, name: string, vec: number, err: number, eip?: number): void {
  assert.deepEqual(
    { vec: r.get(`${name}.vec`), err: r.get(`${name}.err`), eip: r.get(`${name}.eip`) },
    { vec, err: err >>> 0, eip: eip ?? r.get(`${name}.at`) },
    name,
  );
}

/** Assert a #PF with error code `err` and CR2 `cr2` for attempt `name`. */
function pageFault(r: Results, name: string, err: number, cr2: number, eip?: number): void {
  fault(r, name, PF, err, eip);
  assert.equal(r.get(`${name}.cr2`), cr2 >>> 0, `${name}.cr2`);
}

/** Assert that attempt `name` raised nothing. */
function noFault(r: Results, name: string): void {
  assert.equal(
    r.get(`${name}.vec`),
    NONE,
    `${name}: got vector ${r.get(`${name}.vec`)} error 0x${r.get(`${name}.err`).toString(16)}`,
  );
}

describe("rings: privilege transitions (tests/guests/rings.asm)", () => {
  const r = guest("rings");

  it("IRET to ring 3 loads CS/SS/ESP from the frame and nulls DS/GS (DPL < 3), keeps ES and conforming FS", () => {
    const g = r();
    assert.equal(g.get("iret3.cs"), CODE3);
    assert.equal(g.get("iret3.ss"), DATA3);
    assert.equal(g.get("iret3.esp"), USTACK_TOP - 16);
    assert.equal(g.get("iret3.ds"), 0, "DATA0 (DPL 0) nulled");
    assert.equal(g.get("iret3.gs"), 0, "DATA1 (DPL 1) nulled");
    assert.equal(g.get("iret3.es"), DATA3, "DPL 3 data kept");
    assert.equal(g.get("iret3.fs"), CODE_CONF0, "conforming code kept");
  });

  it("INT n from ring 3 through a DPL-3 gate switches to SS0:ESP0 and pushes SS, ESP, EFLAGS, CS, EIP", () => {
    const g = r();
    assert.equal(g.get("int3.frame"), K0INT_TOP - 20, "frame at the top of the TSS ESP0 stack");
    assert.equal(g.get("int3.handler_ss"), DATA0, "SS0");
    assert.equal(g.get("int3.ss"), DATA3);
    assert.equal(g.get("int3.esp"), USTACK_TOP - 16);
    assert.equal(g.get("int3.eflags"), 0x2);
    assert.equal(g.get("int3.cs"), CODE3);
    assert.equal(g.get("int3.eip"), g.get("int3.next"), "EIP of the instruction after INT");
  });

  it("ring 1 -> 3 -> 1 (an lguest guest kernel's system call) uses SS1:ESP1", () => {
    const g = r();
    assert.equal(g.get("r1.cs"), CODE1);
    assert.equal(g.get("r1.ds"), 0, "IRET to ring 1 nulls DPL-0 DS");
    assert.equal(g.get("r1.fs"), DATA3, "DPL 3 kept");
    assert.equal(g.get("r1.gs"), DATA1, "DPL 1 = CPL kept");
    assert.equal(g.get("r1sys.cs"), CODE1);
    assert.equal(g.get("r1sys.ss"), DATA1, "SS1 from the TSS");
    assert.equal(g.get("r1sys.esp"), K1INT_TOP - 20, "ESP1 from the TSS, less the frame");
    assert.equal(g.get("r1sys.eax"), 0x1234abcd);
    assert.deepEqual(
      [
        g.get("r1sys.eip"),
        g.get("r1sys.fcs"),
        g.get("r1sys.feflags"),
        g.get("r1sys.fesp"),
        g.get("r1sys.fss"),
      ],
      [g.get("r1sys.next"), CODE3, 0x2, USTACK_TOP - 32, DATA3],
    );
    assert.equal(g.get("r1ret.cs"), CODE3, "IRET from ring 1 back to ring 3");
    assert.equal(g.get("r1ret.eip"), g.get("r1ret.next"));
  });

  it("INT n from ring 1 to ring 0 pushes ring 1's SS:ESP on the SS0:ESP0 stack", () => {
    const g = r();
    noFault(g, "r1int");
    assert.equal(g.get("r1int.frame"), K0INT_TOP - 20);
    assert.equal(g.get("r1int.cs"), CODE1);
    assert.equal(g.get("r1int.ss"), DATA1);
    assert.equal(g.get("r1int.esp"), K1STACK_TOP);
  });

  it("INT n through a gate with DPL < CPL is #GP(n*8+2) at the INT; a not-present gate #NP(n*8+2)", () => {
    const g = r();
    fault(g, "int_dpl3", GP, (0x33 << 3) | 2);
    fault(g, "int_dpl1", GP, (0x33 << 3) | 2);
    fault(g, "int3_dpl", GP, (3 << 3) | 2);
    fault(g, "int_np", NP, (0x41 << 3) | 2);
    noFault(g, "int_r0");
  });

  it("an interrupt gate clears IF, a trap gate keeps it, IRET restores it", () => {
    const g = r();
    assert.equal(g.get("intgate.handler_if"), 0);
    assert.equal(g.get("intgate.pushed_if"), EFL_IF);
    assert.equal(g.get("trapgate.handler_if"), EFL_IF);
    assert.equal(g.get("trapgate.pushed_if"), EFL_IF);
    assert.equal(g.get("gate.if_after_iret"), EFL_IF);
  });

  it("far JMP/CALL/RETF at the same privilege; conforming code keeps CPL with CS.RPL = CPL", () => {
    const g = r();
    assert.ok(!g.has("fjmp.reached"), "far JMP skipped the next instruction");
    assert.equal(g.get("fjmp.cs"), CODE0);
    assert.equal(g.get("fcall.esp_delta"), 0);
    assert.equal(g.get("fcall.pushed_eip"), g.get("fcall.next"));
    assert.equal(g.get("fcall.pushed_cs"), CODE0);
    assert.equal(g.get("conf0.cs"), CODE_CONF0);
    noFault(g, "conf3");
    assert.equal(g.get("conf3.cs"), CODE_CONF0 | 3);
    assert.equal(g.get("conf3.pushed_cs"), CODE3);
    assert.equal(g.get("conf3.ret_cs"), CODE3);
  });

  it("far JMP/CALL faults: privilege, presence, type, null and limit", () => {
    const g = r();
    fault(g, "fjmp_conf3", GP, 0x60);
    fault(g, "fjmp_code3", GP, 0x28);
    fault(g, "fjmp_code1", GP, 0x18);
    fault(g, "fjmp_rpl3", GP, CODE0);
    fault(g, "fcall_np", NP, 0x98);
    fault(g, "fjmp_data", GP, DATA0);
    fault(g, "fjmp_null", GP, 0);
    fault(g, "fjmp_beyond", GP, SEL_BEYOND);
  });

  it("RETF imm16 to an outer ring pops SS:ESP past the parameters and nulls DS; inward RETF and a bad IRET SS fault", () => {
    const g = r();
    assert.equal(g.get("retf3.esp"), USTACK_TOP - 64 + 8);
    assert.equal(g.get("retf3.cs"), CODE3);
    assert.equal(g.get("retf3.ss"), DATA3);
    assert.equal(g.get("retf3.ds"), 0);
    fault(g, "retf_inner", GP, CODE0);
    fault(g, "iret_bad_ss", GP, 0x20);
  });
});

describe("segments: descriptor loads (tests/guests/segments.asm)", () => {
  const r = guest("segments");

  it("SS: null #GP(0); RPL or DPL != CPL, read-only, code #GP(sel); not present #SS(sel)", () => {
    const g = r();
    fault(g, "ss_null", GP, 0);
    fault(g, "ss_rpl", GP, DATA0);
    fault(g, "ss_dpl", GP, 0x20);
    fault(g, "ss_readonly", GP, 0x40);
    fault(g, "ss_code", GP, CODE0);
    fault(g, "ss_notpresent", SS, 0x48);
    noFault(g, "ss_ok");
  });

  it("DS/ES/FS/GS: limit, no LDT, presence, type and privilege, also through LGS/LSS/POP", () => {
    const g = r();
    fault(g, "ds_beyond_gdt", GP, SEL_BEYOND);
    fault(g, "ds_ldt_none", GP, 0x0c);
    fault(g, "ds_notpresent", NP, 0x48);
    fault(g, "fs_notpresent", NP, 0x48);
    fault(g, "ds_execonly", GP, 0x50);
    fault(g, "ds_system", GP, 0x38);
    fault(g, "ds_rpl_gt_dpl", GP, DATA0);
    noFault(g, "ds_readable_code");
    noFault(g, "ds_data3");
    fault(g, "lgs_notpresent", NP, 0x48);
    fault(g, "lss_null", GP, 0);
    fault(g, "pop_ds_np", NP, 0x48);
    assert.equal(g.get("pop_ds_np.esp_moved"), 0, "a faulting POP leaves ESP alone");
  });

  it("at ring 3: data with DPL < CPL #GP(sel) whatever the RPL; conforming code loads; SS needs DPL = CPL", () => {
    const g = r();
    fault(g, "r3_ds_dpl0", GP, DATA0);
    fault(g, "r3_ds_rpl0", GP, DATA0);
    fault(g, "r3_ds_dpl1", GP, 0x20);
    noFault(g, "r3_ds_conforming");
    fault(g, "r3_ds_code0", GP, CODE0);
    fault(g, "r3_ss_dpl0", GP, DATA0);
    noFault(g, "r3_ss_ok");
  });

  it("a null DS loads without a fault; lguest.ts does not check its later use (not modelled)", () => {
    const g = r();
    noFault(g, "ds_null_load");
    // The SDM makes a memory access through a null DS #GP(0). lguest.ts does no
    // segment checks on ordinary accesses (README, "Not modelled"): the access
    // goes through with base 0. (QEMU's TCG does the same.)
    noFault(g, "ds_null_use");
    assert.equal(g.get("ds_null_use.eax"), 0x5a5a5a5a);
  });

  it("loading a descriptor sets its accessed bit (data and code); a faulting load does not", () => {
    const g = r();
    assert.equal(g.get("acc.before"), 0x00cf9200);
    assert.equal(g.get("acc.after"), 0x00cf9300);
    assert.equal(g.get("acc.np_after_fault"), 0x00cf1200);
    assert.equal(g.get("acc.conf_before"), 0x00cffe00);
    noFault(g, "acc_cs");
    assert.equal(g.get("acc_cs.cs"), 0x63, "far JMP to conforming DPL-3 code at CPL 3");
    assert.equal(g.get("acc.conf_after"), 0x00cfff00);
  });

  it("the segment base applies to accesses", () => {
    assert.equal(r().get("base.flat_read"), 0xcafe0001);
  });

  it("LAR/LSL/VERR/VERW: values, ZF, and no write when ZF=0", () => {
    const g = r();
    const BAD = 0xdeadbeef;
    // [selector probe, LAR value, LSL value, ZF bits (LAR | LSL<<1 | VERR<<2 | VERW<<3)]
    const cases: [string, number, number, number][] = [
      ["p0_data0", 0x00c09300, 0xffffffff, 0xf],
      ["p0_data0_rpl3", BAD, BAD, 0], // DPL 0 < RPL 3
      ["p0_code0", 0x00c09b00, 0xffffffff, 0x7], // readable code: not writable
      ["p0_execonly", 0x00c09800, 0xffffffff, 0x3], // not readable either
      ["p0_readonly", 0x00c09000, 0xffffffff, 0x7],
      ["p0_small", 0x00409300, 0xfff, 0xf], // byte-granular limit
      ["p0_notpresent", 0x00c01200, 0xffffffff, 0xf], // none of the four checks P
      ["p0_tss", 0x00008b00, 0xe8, 0x3], // busy TSS: LAR and LSL only
      ["p0_callgate", 0x0000ec00, BAD, 0x1], // gates: LAR only
      ["p0_intgate", BAD, BAD, 0], // interrupt gate: invalid for LAR too
      ["p0_ldt", 0x00008200, 0xf, 0x3],
      ["p0_null", BAD, BAD, 0],
      ["p0_beyond", BAD, BAD, 0],
      ["p3_data0", BAD, BAD, 0], // DPL 0 < CPL 3
      ["p3_data3", 0x00c0f300, 0xffffffff, 0xf],
      ["p3_code3", 0x00c0fb00, 0xffffffff, 0x7],
      ["p3_conf0", 0x00c09f00, 0xffffffff, 0x7], // conforming: no privilege check
      ["p3_code0", BAD, BAD, 0],
      ["p3_callgate", 0x0000ec00, BAD, 0x1],
    ];
    for (const [p, lar, lsl, zf] of cases) {
      assert.deepEqual(
        [g.get(`${p}.lar`), g.get(`${p}.lsl`), g.get(`${p}.zf`)],
        [lar, lsl, zf],
        p,
      );
    }
  });
});

describe("paging: two-level paging and the TLB (tests/guests/paging.asm)", () => {
  const r = guest("paging");

  it("supervisor accesses: not present (PTE and PDE level), WP=0 allows writes to read-only pages", () => {
    const g = r();
    pageFault(g, "s_read_np", 0, 0x404010);
    pageFault(g, "s_write_np", 2, 0x404020);
    noFault(g, "s_write_ro_wp0");
    assert.equal(g.get("s_write_ro_wp0.value"), 0x11111111);
    noFault(g, "s_write_ro_user_wp0");
    pageFault(g, "s_read_pde_np", 0, 0x800000);
    pageFault(g, "s_write_pde_np", 2, 0x800123);
    noFault(g, "s_read_pde_sup");
    noFault(g, "s_write_pde_ro_wp0");
    noFault(g, "s_read_user");
  });

  it("CR0.WP=1: a supervisor write to a read-only page (PTE or PDE) is #PF(P|W)", () => {
    const g = r();
    pageFault(g, "s_write_ro_wp1", 3, 0x402000);
    pageFault(g, "s_write_ro_user_wp1", 3, 0x400000);
    pageFault(g, "s_write_pde_ro_wp1", 3, 0x1000000);
    noFault(g, "s_write_rw_wp1");
    assert.equal(g.get("s_write_ro_wp1.value"), 0x11111111, "the faulting write changed nothing");
  });

  it("user accesses: U/S and R/W of PDE and PTE combined, error code U|W|P", () => {
    const g = r();
    pageFault(g, "u_read_sup", 5, 0x402000);
    pageFault(g, "u_write_ro", 7, 0x400000);
    pageFault(g, "u_write_sup", 7, 0x403000);
    pageFault(g, "u_read_np", 4, 0x404000);
    pageFault(g, "u_write_np", 6, 0x404000);
    noFault(g, "u_read_ro");
    noFault(g, "u_write_rw");
    pageFault(g, "u_read_pde_sup", 5, 0xc00000);
    pageFault(g, "u_write_pde_ro", 7, 0x1000000);
    noFault(g, "u_read_pde_ro");
    pageFault(g, "u_read_pde_np", 4, 0x800000);
    pageFault(g, "u_push_sup", 7, 0x403100 - 4);
    // Every fault above was delivered through a supervisor-only ESP0 stack page.
  });

  it("instruction fetch: EIP and CR2 at the unmapped target; an instruction split over pages restarts at its start", () => {
    const g = r();
    pageFault(g, "s_fetch_np", 0, 0x404000, 0x404000);
    pageFault(g, "u_fetch_sup", 5, 0x402000, 0x402000);
    pageFault(g, "s_fetch_split", 0, 0x404000, g.get("s_fetch_split.insn"));
    pageFault(g, "s_read_split", 0, 0x404000);
  });

  it("accessed and dirty bits: A on read, D on write (PTE only for a 4 KiB page), nothing on a denied write", () => {
    const g = r();
    assert.equal(g.get("ad.pte_before"), 0x40f007);
    assert.equal(g.get("ad.pde_before"), 0x305007);
    noFault(g, "ad_read");
    assert.equal(g.get("ad.pte_after_read"), 0x40f027);
    assert.equal(g.get("ad.pde_after_read"), 0x305027);
    noFault(g, "ad_write");
    assert.equal(g.get("ad.pte_after_write"), 0x40f067);
    assert.equal(g.get("ad.pde_after_write"), 0x305027);
    pageFault(g, "ad_denied_write", 7, 0x405000);
    assert.equal(g.get("ad.denied_pte"), 0x405005);
  });

  it("4 MiB pages with CR4.PSE: translation, A/D in the PDE, permissions; PS ignored without PSE", () => {
    const g = r();
    pageFault(g, "pse_off", 0, 0x140e000);
    noFault(g, "pse_read");
    assert.equal(g.get("pse_read.eax"), 0x50534521);
    assert.equal(g.get("pse.pde_after_read"), 0x4000a7);
    noFault(g, "pse_write");
    assert.equal(g.get("pse.phys"), 0x12345678);
    assert.equal(g.get("pse.pde_after_write"), 0x4000e7);
    pageFault(g, "pse_user_write_ro", 7, 0x1bffffc);
    noFault(g, "pse_user_read_ro");
  });

  it("the TLB keeps a stale translation until INVLPG or a CR3 load", () => {
    const g = r();
    const OLD = 0x4f4c4431, NEW = 0x4e455731;
    assert.equal(g.get("stale.first"), OLD);
    assert.equal(g.get("stale.remapped"), OLD, "PTE changed, no INVLPG: old frame");
    assert.equal(g.get("stale.after_invlpg"), NEW);
    assert.equal(g.get("stale.mapped_back"), NEW, "PTE changed back, no INVLPG: still cached");
    assert.equal(g.get("stale.after_cr3"), OLD);
    assert.equal(g.get("stale.not_present"), OLD, "P cleared, no INVLPG: still cached");
    pageFault(g, "stale_np_invlpg", 0, 0x406000);
  });

  it("a #PF handler that maps the page makes the faulting instruction restart and complete", () => {
    const g = r();
    pageFault(g, "pf_restart", 0, 0x408000);
    assert.equal(g.get("pf_restart.eax"), 0x46495821);
    assert.equal(g.get("pf_restart.count"), 1);
    assert.equal(g.get("pf_restart.pte"), 0x408027);
  });

  it("REP MOVSD into a not-present page faults with ESI/EDI/ECX at the progress, then resumes to the end", () => {
    const g = r();
    pageFault(g, "movs", 2, 0x40a000);
    assert.equal(g.get("movs.fault_ecx"), 3);
    assert.equal(g.get("movs.fault_esi"), 0x40b008);
    assert.equal(g.get("movs.fault_edi"), 0x40a000);
    assert.equal(g.get("movs.ecx"), 0);
    assert.equal(g.get("movs.esi"), 0x40b014);
    assert.equal(g.get("movs.edi"), 0x40a00c);
    assert.deepEqual(
      [0, 1, 2, 3, 4].map((i) => g.get(`movs.d${i}`)),
      [0x11111111, 0x22222222, 0x33333333, 0x44444444, 0x55555555],
    );
  });
});

describe("pae: three-level paging (tests/guests/pae.asm)", () => {
  const r = guest("pae");

  it("translates through 4 KiB and 2 MiB pages, below and above 1 GiB", () => {
    const g = r();
    for (const n of ["read_4k", "read_2m_sup", "read_2m_high", "write_2m_high"]) noFault(g, n);
    assert.equal(g.get("read_4k.eax"), 0x50414531);
    assert.equal(g.get("read_2m_sup.eax"), 0x50414532);
    assert.equal(g.get("read_2m_high.eax"), 0x50414533);
    assert.equal(g.get("write_2m_high.phys"), 0xabcd1234);
  });

  it("faults at the PDPTE, PDE and PTE level, and U/S, R/W on 2 MiB and 4 KiB pages", () => {
    const g = r();
    pageFault(g, "pdpte_np", 0, 0x80000000);
    pageFault(g, "pde_np", 0, 0x800000);
    pageFault(g, "pte_np", 2, 0x401000);
    pageFault(g, "u_pdpte_np", 4, 0x80000004);
    pageFault(g, "u_read_2m_sup", 5, 0x600000);
    pageFault(g, "u_write_4k_ro", 7, 0x402000);
    noFault(g, "u_read_4k_ro");
    noFault(g, "u_write_2m_user");
  });

  it("A/D bits in the 8-byte entries; none in a PDPTE", () => {
    const g = r();
    assert.equal(g.get("ad.pte_before"), 0x403007);
    assert.equal(g.get("ad.pte_after_read"), 0x403027);
    assert.equal(g.get("ad.pte_after_write"), 0x403067);
    assert.equal(g.get("ad.pte_high"), 0);
    assert.equal(g.get("ad.pde_table"), 0x314027);
    assert.equal(g.get("ad.pde_2m_sup"), 0x4000a3);
    assert.equal(g.get("ad.pde_2m_high"), 0x4000e7);
    // PAE PDPTE bits 8:5 are reserved (SDM Vol. 3A Table 4-8): no accessed bit.
    assert.equal(g.get("ad.pdpte"), 0x311001);
  });
});

describe("double and triple faults (tests/guests/doublefault.asm, triple.asm)", () => {
  const r = guest("doublefault");

  it("contributory during contributory, and #PF or contributory during #PF, become #DF(0)", () => {
    const g = r();
    fault(g, "gp_np_gate", DF, 0); // #GP -> #NP
    fault(g, "gp_bad_gate", DF, 0); // #GP -> #GP
    fault(g, "de_np_gate", DF, 0); // #DE -> #NP
    fault(g, "pf_np_gate", DF, 0); // #PF -> #NP
    assert.equal(g.get("pf_np_gate.cr2"), 0x800000);
    fault(g, "pf_gate_pf", DF, 0); // #PF -> #PF (reading gate 14)
    assert.equal(g.get("pf_gate_pf.cr2"), 0x412000, "CR2 of the second #PF");
  });

  it("other pairs are delivered serially, with EXT set in the error code", () => {
    const g = r();
    fault(g, "ud_np_gate", NP, (6 << 3) | 2 | 1); // #UD is benign: the #NP is delivered
    pageFault(g, "gp_gate_pf", 0, 0x412000 - 14 * 8 + 13 * 8); // contributory -> #PF
    fault(g, "int_np_gate", NP, (0x40 << 3) | 2); // INT n: no EXT, not an exception
  });

  it("a fault while delivering #DF shuts the machine down", () => {
    const g = new GuestRun("triple");
    assert.equal(g.run(), "shutdown");
    assert.equal(g.exit, Exit.Shutdown);
    const res = g.results();
    assert.equal(res.get("triple.armed"), 1);
    assert.ok(!res.has("triple.survived"));
    const at = res.get("triple.at").toString(16);
    assert.equal(
      g.machine.cpu.exitMessage,
      `triple fault: #GP(0xb8) at eip=0x${at} -> #NP(0x6b) -> #DF(0) -> #NP(0x43)`,
    );
  });
});

describe("privileged: I/O permission, CPL-0 instructions, MSRs, SYSENTER, RDTSC, CPUID (tests/guests/privileged.asm)", () => {
  const r = guest("privileged");

  it("IN/OUT at CPL > IOPL follow the TSS I/O bitmap, every byte of the access; IOPL 3 bypasses it", () => {
    const g = r();
    noFault(g, "io_out_allowed");
    noFault(g, "io_in_allowed");
    fault(g, "io_out_denied", GP, 0);
    fault(g, "io_in_dword_partial", GP, 0);
    fault(g, "io_beyond_map", GP, 0);
    fault(g, "io_r1_denied", GP, 0);
    noFault(g, "io_r1_allowed");
    noFault(g, "io_iopl3");
  });

  it("CLI/STI need CPL <= IOPL; POPF at CPL 3 leaves IF and IOPL unchanged", () => {
    const g = r();
    fault(g, "cli_r3", GP, 0);
    fault(g, "sti_r3", GP, 0);
    noFault(g, "cli_iopl3");
    noFault(g, "sti_iopl3");
    noFault(g, "popf_r3");
    assert.equal(g.get("popf_r3.eflags") & 0x3200, 0);
  });

  it("HLT, MOV CRn, LGDT, INVLPG, RDMSR, WRMSR at CPL > 0 are #GP(0)", () => {
    const g = r();
    for (
      const n of [
        "hlt_r3",
        "hlt_r1",
        "mov_cr0_r3",
        "read_cr0_r3",
        "mov_cr3_r1",
        "lgdt_r3",
        "invlpg_r3",
        "rdmsr_r3",
        "wrmsr_r3",
      ]
    ) fault(g, n, GP, 0);
  });

  it("RDMSR/WRMSR of an unknown MSR are #GP(0); the SYSENTER MSRs round-trip", () => {
    const g = r();
    fault(g, "rdmsr_unknown", GP, 0);
    fault(g, "wrmsr_unknown", GP, 0);
    assert.equal(g.get("msr.cs"), 0x78);
    assert.equal(g.get("msr.cs_hi"), 0);
    assert.equal(g.get("msr.esp"), SYSSTACK_TOP);
    assert.ok(g.get("msr.eip") > 0x100000);
  });

  it("SYSENTER enters ring 0 with CS = SYSENTER_CS, SS = +8, IF clear; SYSEXIT returns with CS = +16|3, SS = +24|3", () => {
    const g = r();
    noFault(g, "sysenter");
    assert.equal(g.get("sysenter.cs"), 0x78);
    assert.equal(g.get("sysenter.ss"), 0x80);
    assert.equal(g.get("sysenter.esp"), SYSSTACK_TOP);
    assert.equal(g.get("sysenter.eflags") & EFL_IF, 0);
    assert.equal(g.get("sysexit.cs"), 0x8b);
    assert.equal(g.get("sysexit.ss"), 0x93);
    assert.equal(g.get("sysexit.esp"), USTACK_TOP - 0x40);
    assert.equal(g.get("sysexit.eip"), g.get("sysexit.target"));
    fault(g, "sysexit_r3", GP, 0);
    fault(g, "sysenter_cs0", GP, 0);
    fault(g, "sysexit_cs0", GP, 0);
  });

  it("RDTSC counts retired instructions; CR4.TSD makes it #GP(0) above CPL 0", () => {
    const g = r();
    assert.equal(g.get("tsc.delta"), 5);
    noFault(g, "rdtsc_r3");
    fault(g, "rdtsc_r3_tsd", GP, 0);
    fault(g, "rdtsc_r1_tsd", GP, 0);
    noFault(g, "rdtsc_r0_tsd");
  });

  it("CPUID leaves 0, 1 and 0x80000000 match lib/x86/cpuid.ts", () => {
    const g = r();
    const leaf = (l: string) => ["eax", "ebx", "ecx", "edx"].map((x) => g.get(`cpuid.${l}.${x}`));
    const text = (...w: number[]) =>
      String.fromCharCode(
        ...w.flatMap((v) => [v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, v >>> 24]),
      );
    const [a0, b0, c0, d0] = leaf("0");
    assert.equal(a0, 1);
    assert.equal(text(b0, d0, c0), "GenuineIntel");
    assert.deepEqual(leaf("1"), [CPUID_SIGNATURE, 0, 0, CPUID_FEATURES_EDX]);
    assert.deepEqual(leaf("80000000"), [0x80000000, 0, 0, 0]);
  });
});

describe("single-step (tests/guests/singlestep.asm)", () => {
  /** Run one part of the guest (1 = A, 2 = B, 3 = C: see its header). */
  const part = (n: number): GuestRun => {
    const g = new GuestRun("singlestep");
    g.machine.mem.write32(SCRATCH + 0xfffc, n);
    g.run();
    return g;
  };
  let partA: GuestRun | undefined;
  const a = () => partA ??= part(1);
  /** Assert that a part ran to its end, with a useful message if not. */
  const ended = (g: GuestRun) =>
    assert.equal(
      g.stop,
      "exit",
      `guest stopped: ${g.stop}, exit ${g.exit}, vector ${g.machine.cpu.exitVector} at eip=0x${
        (g.machine.cpu.eip >>> 0).toString(16)
      }`,
    );

  it("#DB after each instruction with EIP of the next, none after the POPF that sets TF, handler runs with TF clear", () => {
    const g = a();
    ended(g);
    const res = g.results();
    assert.ok(!res.has("db.other_exception"));
    assert.equal(res.get("a.count"), 4);
    assert.deepEqual(
      [0, 1, 2, 3].map((i) => res.get(`db.${i}`)),
      [1, 2, 3, 4].map((i) => res.get(`a.next${i}`)),
    );
    assert.equal(res.get("a.handler_tf"), 0);
  });

  it("a single-step #DB sets DR6.BS", () => {
    assert.equal(a().results().get("a.dr6_bs"), 0x4000);
  });

  it("INT n under TF: no #DB at the handler or after its IRET; stepping resumes after the INT", () => {
    const g = part(3);
    ended(g);
    const res = g.results();
    assert.equal(res.get("c.count"), 1);
    assert.equal(res.get("c.first"), res.get("c.after_nop"));
    assert.equal(res.get("c.handler_tf"), 0);
  });

  it("a POPF that clears TF is still followed by a #DB (TF was set when it began)", () => {
    const g = part(2);
    ended(g);
    const res = g.results();
    assert.equal(res.get("b.count"), 3);
    assert.equal(res.get("b.last"), res.get("b.after_popf"));
  });
});

describe("external interrupts (tests/guests/irq.asm)", () => {
  it("are held while IF=0, wait out the STI shadow, arrive at the next boundary, and wake HLT", () => {
    const g = new GuestRun("irq");
    assert.equal(g.run(), "halt", "HLT with IF=1 leaves run() with Exit.Halt");
    assert.equal(g.exit, Exit.Halt);
    const cpu = g.machine.cpu;
    let res = g.results();
    assert.equal(cpu.eip, res.get("halt.next"), "EIP after the HLT");
    assert.equal(res.get("masked.count"), 0);
    assert.equal(res.get("shadow.count"), 1);
    assert.equal(res.get("shadow.vector"), 0x40);
    assert.equal(
      res.get("shadow.eip"),
      res.get("shadow.i2"),
      "the instruction after STI ran first",
    );
    assert.equal(res.get("shadow.ecx"), 1);
    assert.equal(res.get("shadow.handler_if"), 0);
    assert.equal(res.get("shadow.pushed_if"), EFL_IF);
    assert.equal(res.get("now.count"), 2);
    assert.equal(res.get("now.vector"), 0x41);
    assert.equal(res.get("now.eip"), res.get("now.j1"));
    // The embedder raises an interrupt and resumes: the handler runs, then the code after HLT.
    cpu.raiseIrq(0x42);
    assert.equal(g.run(), "exit");
    res = g.results();
    assert.equal(res.get("halt.count"), 3);
    assert.equal(res.get("halt.vector"), 0x42);
    assert.equal(res.get("halt.eip"), res.get("halt.next"));
  });
});
