/**
 * The debugger core (lib/debug), driven in-process as a script would drive it:
 * numbers and expressions, page-table walks and dumps on hand-made tables, the
 * TLB decoded, stepping and breakpoints of every kind on real guests (lguest's
 * hello and paging examples, the bare ticker, programs built from bytes),
 * watchpoints through the CPU's slow path (interpreted, translated and bulk
 * string code alike), hypercalls issued by hand with their state diffs, and
 * the command language's one-line errors, help and completion.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Launcher } from "../lib/boot/launcher.ts";
import { BareMachine } from "../lib/boot/bare.ts";
import { parseElf } from "../lib/boot/elf.ts";
import { PhysicalMemory } from "../lib/x86/memory.ts";
import { LHCALL } from "../lib/lguest/abi.ts";
import { Debugger } from "../lib/debug/debugger.ts";
import { BareTarget, LguestTarget } from "../lib/debug/target.ts";
import { Session } from "../lib/debug/session.ts";
import { DebugError, evaluate, parseCount, parseNumber } from "../lib/debug/expr.ts";
import {
  compressRuns,
  decodeTlb,
  dumpTables,
  forEachMapping,
  type Read32,
  tlbRuns,
  walk,
} from "../lib/debug/paging.ts";
import { disassemble, loadDisassembler } from "../lib/debug/disasm.ts";
import { elf32, R, X86 } from "../lib/debug/guest_builder.ts";
import { pteFlags } from "../lib/debug/format.ts";
import { guestPhase, statusLine } from "../lib/debug/progress.ts";

const file = (p: string) => new Uint8Array(readFileSync(new URL(`../${p}`, import.meta.url)));
const HELLO = file("examples/lguest/hello.elf");
const PAGING = file("examples/lguest/paging.elf");
const TICKER = file("examples/ticker.elf");

function lguest(kernel: Uint8Array, o: { pagetables?: "linear" | "launcher" } = {}) {
  const out: string[] = [];
  const l = new Launcher({ memMiB: 16, kernel, ...o });
  const dbg = new Debugger(new LguestTarget(l));
  const s = new Session(dbg, { write: (t) => out.push(t) });
  return { l, g: l.guest, dbg, s, out, text: () => out.join("\n") };
}

function bare(kernel: Uint8Array, memMiB = 16) {
  const out: string[] = [];
  let com1 = "";
  const m = new BareMachine(memMiB, (b) => (com1 += String.fromCharCode(b)));
  m.loadKernel(kernel);
  const dbg = new Debugger(new BareTarget(m, parseElf(kernel).symbols));
  const s = new Session(dbg, { write: (t) => out.push(t) });
  return { m, dbg, s, out, text: () => out.join("\n"), com1: () => com1 };
}

/** A bare program built from bytes (ELF with symbols). */
function program(build: (a: X86) => void): Uint8Array {
  const a = new X86(0x100000);
  build(a);
  return elf32({ entry: a.addr("_start"), segments: [a.segment()], symbols: a.symbols });
}

const noCtx = {
  register: (n: string) => ({ eax: 0x10, esp: 0x2000 } as Record<string, number>)[n],
  symbol: (n: string) => (n === "start_kernel" ? 0xc0100000 : undefined),
  deref: (a: number) => (a === 0x2000 ? 0xcafe : 0),
};

describe("numbers and expressions", () => {
  it("reads addresses as hex, 0n as decimal, counts as decimal", () => {
    assert.equal(parseNumber("c0001000"), 0xc0001000);
    assert.equal(parseNumber("0xC0001000"), 0xc0001000);
    assert.equal(parseNumber("0n4096"), 4096);
    assert.equal(parseNumber("10"), 16);
    assert.equal(parseNumber("zz"), null);
    assert.equal(parseCount("10"), 10);
    assert.equal(parseCount("0x10"), 16);
    assert.equal(parseCount("0n7"), 7);
    assert.throws(() => parseCount("ten"), DebugError);
  });

  it("evaluates registers, symbols, sums and [deref]", () => {
    assert.equal(evaluate("eax+4", noCtx), 0x14);
    assert.equal(evaluate("$esp - 0n16", noCtx), 0x2000 - 16);
    assert.equal(evaluate("start_kernel+10", noCtx), 0xc0100010);
    assert.equal(evaluate("[esp]", noCtx), 0xcafe);
    assert.equal(evaluate("(1+2)-3", noCtx), 0);
    assert.equal(evaluate("0-1", noCtx), 0xffffffff);
    assert.throws(() => evaluate("nosuch", noCtx), /no register or symbol named 'nosuch'/);
    assert.throws(() => evaluate("1 2", noCtx), DebugError);
    assert.throws(() => evaluate("123456789", noCtx), /does not fit in 32 bits/);
  });

  it("has C's operators with C's precedence, unsigned 32-bit", () => {
    assert.equal(evaluate("eax + 4 * 2", noCtx), 0x18);
    assert.equal(evaluate("(eax + 4) * 2", noCtx), 0x28);
    assert.equal(evaluate("1 << 4 | 1", noCtx), 0x11);
    assert.equal(evaluate("eax == 0x10 && [esp] == cafe", noCtx), 1);
    assert.equal(evaluate("eax != 0x10 || esp < 0x1000", noCtx), 0);
    assert.equal(evaluate("-1 >> 0n28", noCtx), 0xf);
    assert.equal(evaluate("~0 ^ 0xff", noCtx), 0xffffff00);
    assert.equal(evaluate("!eax", noCtx), 0);
    assert.equal(evaluate("0n10 / 3 + 0n10 % 3", noCtx), 4);
    assert.equal(evaluate("esp >= 0x2000 & eax <= 0x10", noCtx), 1);
    assert.throws(() => evaluate("1 / (eax - 0x10)", noCtx), /^DebugError: division by zero$/);
  });

  it("bounds nesting with a one-line error, not a stack overflow", () => {
    const deep = (n: number) => "(".repeat(n) + "1" + ")".repeat(n);
    assert.equal(evaluate(deep(256), noCtx), 1);
    for (const e of [deep(100_000), "[".repeat(100_000), "-".repeat(100_000) + "1"]) {
      assert.throws(() => evaluate(e, noCtx), (x: Error) => {
        assert.ok(x instanceof DebugError, String(x));
        assert.equal(x.message, "expression nested more than 256 deep");
        return true;
      });
    }
  });
});

describe("page-table walks and dumps (hand-made tables)", () => {
  // Physical memory with a 2-level table: PDE 0x300 -> table at 0x3000 mapping
  // 0xc0000000.. to 0..; 256 PTEs with flags P RW A D, then 1 with only P.
  const mem = new PhysicalMemory(1 << 20);
  const r32: Read32 = (pa) => (pa + 4 <= mem.size ? mem.dv.getInt32(pa, true) : null);
  const dir = 0x2000, pt = 0x3000;
  mem.write32(dir + 0x300 * 4, pt | 0x067);
  for (let i = 0; i < 256; i++) mem.write32(pt + i * 4, (i << 12) | 0x063);
  mem.write32(pt + 256 * 4, (256 << 12) | 0x001);
  mem.write32(pt + 300 * 4, (0x50 << 12) | 0x063); // a lone mapping elsewhere
  mem.write32(dir + 0x301 * 4, 0x00400000 | 0x083); // a 4 MiB page (with PSE)

  it("spells out flags", () => {
    assert.equal(pteFlags(0x063), "P RW A D");
    assert.equal(pteFlags(0x1e7, "pde"), "P RW US A D PS G");
    assert.equal(pteFlags(0x081, "pte"), "P PAT");
    assert.equal(pteFlags(0xe01), "P avl=7");
  });

  it("walks to the physical address, naming each entry", () => {
    const w = walk(r32, dir, 0xc0012345, { pae: false, pse: true });
    assert.equal(w.pa, 0x12345);
    assert.deepEqual(w.steps.map((s) => [s.level, s.index, s.addr, s.value >>> 0]), [
      ["PDE", 0x300, dir + 0xc00, pt | 0x067],
      ["PTE", 0x12, pt + 0x12 * 4, 0x12063],
    ]);
    const big = walk(r32, dir, 0xc0412345, { pae: false, pse: true });
    assert.equal(big.pa, 0x00412345);
    assert.equal(big.pageSize, 4 << 20);
    const miss = walk(r32, dir, 0xc0200000, { pae: false, pse: true });
    assert.equal(miss.pa, null);
    assert.equal(miss.why, "PTE 200 not present");
  });

  it("compresses consecutive frames with equal flags into runs", () => {
    const runs = compressRuns(
      [0x1063, 0x2063, 0x3063, 0x4061, 0, 0x6063, 0x8063],
      0x1000,
      4096,
      -4096,
    );
    assert.deepEqual(runs.map((r) => [r.lin, r.pa, r.count, r.flags]), [
      [0x1000, 0x1000, 3, 0x63],
      [0x4000, 0x4000, 1, 0x61],
      [0x6000, 0x6000, 1, 0x63],
      [0x7000, 0x8000, 1, 0x63],
    ]);
  });

  it("dumps a directory: one line per run, aligned", () => {
    const lines = dumpTables(r32, dir, { title: "test", mode: { pae: false, pse: true } });
    assert.equal(lines[0], "test: 2 of 1024 entries present");
    const text = lines.join("\n");
    assert.match(
      text,
      /PDE 300 +0xc0000000 +\[0x00002c00\] +0x00003067 +P RW US A D +PT 0x00003000: 258 ptes/,
    );
    assert.match(text, /0xc0000000-0xc00fffff -> 0x00000000-0x000fffff +P RW A D +256 ptes/);
    assert.match(text, /0xc0100000-0xc0100fff -> 0x00100000-0x00100fff +P +1 pte/);
    assert.match(text, /0xc012c000-0xc012cfff -> 0x00050000-0x00050fff +P RW A D +1 pte/);
    assert.match(
      text,
      /PDE 301 +0xc0400000 +\[0x00002c04\] +0x00400083 +P RW PS +4 MiB page\n +0xc0400000-0xc07fffff -> 0x00400000-0x007fffff +P RW PS +4 MiB/,
    );
    // Aligned: every run's arrow in the same column.
    const arrows = lines.filter((l) => l.includes(" -> ") && !l.includes("PDE")).map((l) =>
      l.indexOf(" -> ")
    );
    assert.equal(new Set(arrows).size, 1, lines.join("\n"));
    // A directory entry's columns are its own: the runs do not widen them past 100 columns.
    assert.deepEqual(lines.filter((l) => l.length > 100), []);
    assert.match(text, /\n {2}PDE 300 {2}0xc0000000 {2}\[/);
  });

  it("visits every mapping", () => {
    const seen: number[] = [];
    forEachMapping(r32, dir, { pae: false, pse: true }, (lin, _pa, size) => seen.push(lin, size));
    assert.equal(seen.length / 2, 259);
    assert.deepEqual(seen.slice(-2), [0xc0400000, 4 << 20]);
  });

  it("walks PAE tables", () => {
    const m = new PhysicalMemory(1 << 20);
    const rd: Read32 = (pa) => m.dv.getInt32(pa, true);
    m.write32(0x1000 + 3 * 8, 0x2001); // PDPTE 3 -> PMD page 0x2000
    m.write32(0x2000 + 1 * 8, 0x3063); // PMD 1 -> PT 0x3000
    m.write32(0x3000 + 5 * 8, 0x7063);
    const w = walk(rd, 0x1000, 0xc0205123, { pae: true, pse: false });
    assert.equal(w.pa, 0x7123);
    assert.deepEqual(w.steps.map((s) => s.level), ["PDPTE", "PDE", "PTE"]);
  });

  it("decodes TLB entries and runs", () => {
    const r = new Int32Array(1 << 20), w = new Int32Array(1 << 20);
    // linear 0xc0100000 -> phys 0x00100000, sup+user read, sup write
    for (let i = 0; i < 3; i++) {
      const lin = 0xc0100000 + i * 4096, pa = 0x100000 + i * 4096;
      r[lin >>> 12] = ((pa ^ lin) & -4096) | 3;
      w[lin >>> 12] = ((pa ^ lin) & -4096) | 1;
    }
    assert.deepEqual(decodeTlb(r[0xc0101], 0xc0101000), { pa: 0x101000, perm: 3 });
    assert.equal(decodeTlb(0, 0), null);
    assert.deepEqual(tlbRuns(r, w).map((x) => [x.lin, x.pa, x.count, x.r, x.w]), [[
      0xc0100000,
      0x100000,
      3,
      3,
      1,
    ]]);
  });
});

describe("disassembly", () => {
  it("speaks Intel and AT&T and knows the flow of control", async () => {
    await loadDisassembler();
    const b = new Uint8Array([0xb8, 1, 0, 0, 0, 0xe8, 0, 0, 0, 0, 0xcd, 0x1f, 0xc3]);
    const intel = disassemble(b, 0x1000, 10, "intel");
    assert.deepEqual(intel.map((l) => l.text), [
      "mov eax, 1",
      "call 0x0000100a",
      "int 0x1f",
      "ret",
    ]);
    assert.deepEqual(intel.map((l) => l.flow), ["next", "call", "int", "ret"]);
    assert.equal(intel[1].target, 0x100a);
    const att = disassemble(b, 0x1000, 10, "att");
    assert.equal(att[0].text, "mov $1, %eax");
  });
});

describe("guests built from bytes", () => {
  it("elf32 writes a symbol table the ELF loader reads back", () => {
    const elf = program((a) => a.label("_start").label("here").nop().label("there").hlt());
    const img = parseElf(elf);
    assert.equal(img.entry, 0x100000);
    assert.equal(img.symbols.get("there"), 0x100001);
  });
});

describe("stepping under lguest", () => {
  it("stops at the entry point and steps, listing what the host did", async () => {
    const { dbg, g } = lguest(HELLO);
    assert.equal(dbg.icount, 0);
    const entry = dbg.pc();
    const ev = await dbg.step();
    assert.equal(ev.reason, "step");
    assert.equal(ev.retired, 1);
    assert.ok(dbg.pc() > entry);
    assert.ok(
      ev.notes.some((n) => /page fault at 0x001001a5 .*host filled the shadow entry/.test(n)),
      ev.notes.join("\n"),
    );
    let init: string[] = [];
    while (g.lguestData < 0) init = (await dbg.step()).notes;
    assert.ok(init.some((n) => n.startsWith("hypercall LHCALL_LGUEST_INIT(")), init.join("\n"));
  });

  it("breaks on a hypercall before the host runs it, and passes it on resume", async () => {
    const { dbg, g } = lguest(PAGING);
    dbg.breakHcall(LHCALL.NEW_PGTABLE);
    const ev = await dbg.continue();
    assert.equal(ev.reason, "hcall");
    assert.match(ev.message, /hypercall LHCALL_NEW_PGTABLE\(0x102000.*before the host runs it/);
    assert.equal(g.pt.linear, true, "the host has not run it yet");
    const st = await dbg.step();
    assert.equal(st.reason, "step");
    assert.equal(g.pt.linear, false);
    assert.equal(g.pt.current.gpgdir, 0x102000);
    // The second NEW_PGTABLE (switching address spaces) stops again.
    const ev2 = await dbg.continue();
    assert.equal(ev2.reason, "hcall");
    assert.match(ev2.message, /LHCALL_NEW_PGTABLE\(0x103000/);
    dbg.delete();
    const end = await dbg.continue();
    assert.equal(end.reason, "ended");
    assert.equal(dbg.ended?.status, 0);
  });

  it("breaks on a trap vector before the host handles it", async () => {
    const { dbg, g } = lguest(PAGING);
    dbg.breakHcall(LHCALL.NEW_PGTABLE);
    await dbg.continue();
    dbg.delete();
    dbg.breakTrap(14);
    let ev;
    do ev = await dbg.continue(); while (
      ev.reason === "trap" && !/cr2 0xd0000000/.test(ev.message)
    );
    assert.equal(ev.reason, "trap");
    assert.match(ev.message, /trap 14 #PF error 0x0 cr2 0xd0000000 .*before the host handles it/);
    // Stepping from here lands on the guest's #PF handler: the host reflected the fault.
    const st = await dbg.step();
    assert.ok(
      st.notes.some((n) => /entered the handler for vector 0xe/.test(n)),
      st.notes.join("\n"),
    );
    assert.ok(g.idt.present(14));
    const handler = ((g.idt.gates[28] & 0xffff) | (g.idt.gates[29] & 0xffff0000)) >>> 0;
    assert.equal(dbg.pc(), handler);
  });

  it("stops at an instruction count, at until, after next and finish", async () => {
    await loadDisassembler();
    const { dbg } = lguest(HELLO);
    dbg.breakIcount(100);
    const ev = await dbg.continue();
    assert.equal(ev.reason, "icount");
    assert.equal(dbg.icount, 100);
    // next over a CALL comes back to the instruction after it.
    let line = dbg.disasm()[0];
    while (line.flow !== "call") {
      await dbg.step();
      line = dbg.disasm()[0];
    }
    const after = line.addr + line.len;
    const n = await dbg.next();
    assert.equal(n.reason, "step");
    assert.equal(dbg.pc(), after);
    // Into a call, then finish: back at the instruction after the call.
    while ((line = dbg.disasm()[0]).flow !== "call") await dbg.step();
    const back = line.addr + line.len;
    await dbg.step();
    const f = await dbg.finish();
    assert.equal(f.reason, "finish");
    assert.equal(dbg.pc(), back);
    const u = await dbg.until(back + 5);
    assert.ok(u.reason === "until" || u.reason === "ended", u.message);
  });

  it("stops at a physical breakpoint through the guest's aliases", async () => {
    await loadDisassembler();
    const { dbg } = lguest(PAGING);
    // The code after NEW_PGTABLE runs at 0xc01xxxxx, mapping physical 0x001xxxxx.
    dbg.breakHcall(LHCALL.NEW_PGTABLE);
    await dbg.continue();
    dbg.delete();
    await dbg.step(3); // mov eax, high+PAGE_OFFSET; jmp eax; now at high
    assert.ok(dbg.pc() >= 0xc0100000, dbg.pc().toString(16));
    const next = dbg.disasm(dbg.pc(), 3)[2].addr;
    const bp = dbg.breakPhys(next - 0xc0000000);
    const ev = await dbg.continue();
    assert.equal(ev.reason, "breakpoint");
    assert.equal(ev.breakpoint, bp);
    assert.equal(dbg.pc(), next);
    assert.match(ev.message, /at physical 0x001[0-9a-f]{5} \(linear 0xc01/);
  });
});

describe("watchpoints", () => {
  it("stop after a guest write, with old and new values (lguest, physical)", async () => {
    const { dbg } = lguest(PAGING);
    dbg.breakHcall(LHCALL.NEW_PGTABLE);
    await dbg.continue();
    await dbg.step();
    dbg.delete();
    const pte = dbg.target.linear(0xd0000000).steps.find((s) => s.level === "PTE")!.addr;
    dbg.watch(pte, 4, { phys: true });
    const ev = await dbg.continue();
    assert.equal(ev.reason, "watchpoint");
    assert.equal(ev.watch!.before, 0);
    assert.equal(ev.watch!.after, 0x106003);
    assert.equal(ev.watch!.write, true);
    assert.equal(ev.watch!.lin >>> 0, (0xc0000000 + pte) >>> 0, "written through the kernel alias");
  });

  it("see reads and writes of translated (JIT) code and stop after the instruction", async () => {
    await loadDisassembler();
    const { dbg, com1 } = bare(TICKER);
    // Run hot first so the loop is translated, then watch its counter.
    dbg.breakIcount(3_000_000);
    await dbg.continue();
    assert.ok(dbg.cpu.jit);
    const ticks = 0x1000fc;
    dbg.watch(ticks, 4);
    const ev = await dbg.continue();
    assert.equal(ev.reason, "watchpoint");
    assert.equal(ev.watch!.after, ev.watch!.before + 1);
    assert.match(
      ev.message,
      /write of 4 bytes at 0x001000fc \(physical 0x001000fc\): 0x00000000 -> 0x00000001/,
    );
    // The instruction completed: EIP is past the INC.
    assert.equal(dbg.disasm(ev.watch!.pc)[0].len + ev.watch!.pc, dbg.pc());
    dbg.delete();
    dbg.watch(0x1000f8, 4, { access: "r" });
    const r = await dbg.continue();
    assert.equal(r.watch!.write, false);
    assert.ok(com1().startsWith("ticker: counting forever\ntick 1"));
  });

  it("catch REP MOVS, whose bulk path would bypass the TLB slow path", async () => {
    const elf = program((a) => {
      a.label("_start").movImm(R.ESI, "src").movImm(R.EDI, "dst").movImm(R.ECX, 64)
        .db(0xfc, 0xf3, 0xa5) // cld; rep movsd
        .label("done").cli().hlt();
      a.align(4096).label("src");
      for (let i = 0; i < 64; i++) a.dd(0x11111111 * (i & 15));
      a.align(4096).label("dst").zeros(4096);
    });
    const { dbg } = bare(elf);
    const dst = dbg.symbols.get("dst")!;
    dbg.watch(dst + 40 * 4, 4);
    const ev = await dbg.continue();
    assert.equal(ev.reason, "watchpoint");
    assert.equal(ev.watch!.lin, dst + 160);
    assert.equal(ev.watch!.after, 0x11111111 * 8);
  });

  it("leave the TLB alone once deleted", () => {
    const { dbg } = bare(TICKER);
    dbg.watch(0x1000fc);
    assert.notEqual(dbg.cpu.tlbExclude, null);
    dbg.delete();
    assert.equal(dbg.cpu.tlbExclude, null);
    assert.equal(dbg.cpu.onAccess, null);
  });
});

describe("running and interrupting", () => {
  it("a run of a guest that never ends stops on interrupt()", { timeout: 30000 }, async () => {
    const { dbg, com1 } = bare(TICKER);
    setTimeout(() => dbg.interrupt(), 300);
    const ev = await dbg.continue();
    assert.equal(ev.reason, "interrupted");
    assert.ok(dbg.icount > 0);
    assert.ok(!dbg.running);
    assert.ok(com1().startsWith("ticker"));
  });

  it("finish in the outermost frame refuses, saying so, and runs nothing", async () => {
    const { dbg } = bare(TICKER);
    await dbg.until(0x100063); // the counting loop, outside any call
    const at = dbg.icount;
    await assert.rejects(dbg.finish(), /^DebugError: finish: no caller here \(the outermost frame/);
    assert.equal(dbg.icount, at);
    assert.ok(!dbg.running);
  });

  it("finish runs at full speed to the return address, past recursion", async () => {
    // f calls itself 50 times, each level pushing a frame; finish from the
    // innermost level returns once, one level up, not to the outermost caller.
    const elf = program((a) =>
      a.label("_start").movImm(R.ESP, 0x180000).movImm(R.ECX, 50).call("f").label("back")
        .cli().hlt()
        .label("f").db(0x55).movReg(R.EBP, R.ESP).dec(R.ECX).jnz("deeper") // push ebp
        .label("bottom").db(0x5d).ret() // pop ebp
        .label("deeper").call("f").label("inner_back").db(0x5d).ret()
    );
    const { dbg } = bare(elf);
    dbg.breakAt(dbg.symbols.get("bottom")!, { temporary: true });
    await dbg.continue();
    assert.equal(dbg.cpu.regs[1], 0);
    const esp = dbg.cpu.regs[4];
    const f = await dbg.finish();
    assert.equal(f.reason, "finish", f.message);
    assert.equal(dbg.pc(), dbg.symbols.get("inner_back"));
    assert.equal(dbg.cpu.regs[4], esp + 8); // popped ebp and the return address: one level
    assert.match(f.message, /^returned to 0x[0-9a-f]{8} <inner_back>$/);
    // At a function's first instruction, [esp] is the return address.
    const g = bare(elf).dbg;
    g.breakAt(g.symbols.get("f")!, { temporary: true });
    await g.continue();
    assert.equal((await g.finish()).reason, "finish");
    assert.equal(g.pc(), g.symbols.get("back"));
  });

  it("refuses a second run while one is going", async () => {
    const { dbg } = bare(TICKER);
    const p = dbg.continue();
    await assert.rejects(() => dbg.step(), /running/);
    dbg.interrupt();
    assert.equal((await p).reason, "interrupted");
  });

  it("traces instructions with their counts", async () => {
    const lines: string[] = [];
    const elf = program((a) =>
      a.label("_start").movImm(R.EAX, 1).addImm(R.EAX, 2).label("end").cli().hlt()
    );
    const { dbg } = bare(elf);
    dbg.setTrace("insn", (l) => lines.push(l));
    const ev = await dbg.continue();
    assert.equal(ev.reason, "ended");
    assert.deepEqual(lines, [
      "[0] 0x00100000 <_start>: mov eax, 1",
      "[1] 0x00100005 <_start+0x5>: add eax, 2",
      "[2] 0x0010000b <end>: cli",
      "[3] 0x0010000c <end+0x1>: hlt",
    ]);
    assert.equal(dbg.cpu.regs[R.EAX], 3);
  });

  it("stops a bare trap before delivery and delivers it on resume", async () => {
    // A GDT with a flat code segment (selector 8), an IDT whose #UD gate points
    // at ud_handler through it, and a ud2.
    const elf = program((a) => {
      a.label("_start")
        .db(0x0f, 0x01, 0x15).dd("gdtr") // lgdt [gdtr]
        .db(0x0f, 0x01, 0x1d).dd("idtr") // lidt [idtr]
        .label("fault").db(0x0f, 0x0b) // ud2
        .label("after").cli().hlt();
      a.label("ud_handler").cli().hlt();
      a.align(8).label("gdt").dd(0, 0, 0x0000ffff, 0x00cf9a00);
      a.label("gdtr").db(15, 0).dd("gdt");
      a.align(8).label("idt").zeros(6 * 8).label("idt6").zeros(8);
      a.label("idtr").db(7 * 8 - 1, 0).dd("idt");
    });
    const { dbg, m } = bare(elf);
    const h = dbg.symbols.get("ud_handler")!, gate = dbg.symbols.get("idt6")!;
    m.mem.write32(gate, (8 << 16) | (h & 0xffff));
    m.mem.write32(gate + 4, (h & 0xffff0000) | 0x8e00);
    dbg.breakTrap(6);
    const ev = await dbg.continue();
    assert.equal(ev.reason, "trap");
    assert.match(ev.message, /trap 6 #UD at 0x[0-9a-f]+ <fault>, before it is delivered/);
    assert.equal(dbg.pc(), dbg.symbols.get("fault"));
    const st = await dbg.step();
    assert.equal(st.reason, "step");
    assert.equal(dbg.pc(), h, "at the handler's first instruction");
    assert.ok(
      st.notes.some((n) => /entered the handler for vector 0x6/.test(n)),
      st.notes.join("\n"),
    );
  });
});

describe("hypercalls by hand", () => {
  it("show exactly what changed", async () => {
    const { dbg } = lguest(HELLO);
    dbg.breakHcall(LHCALL.LGUEST_INIT);
    await dbg.continue();
    await dbg.step();
    const r = dbg.hypercall(LHCALL.SET_CLOCKEVENT, [5000]);
    assert.equal(r.call, "LHCALL_SET_CLOCKEVENT(0x1388)");
    assert.equal(r.died, null);
    assert.equal(r.changes.length, 1);
    assert.match(
      r.changes[0],
      /^clock event +off -> fires at \d+ ns \(in 5000 ns = 5000 instructions\)$/,
    );
    const idt = dbg.hypercall(LHCALL.LOAD_IDT_ENTRY, [0x21, 0x1234, 0xc0108f00]);
    assert.deepEqual(idt.changes.map((c) => c.replace(/ +/g, " ")), [
      "IDT 0x21 INT 0x21 (none) -> trap gate 0xc0101234 cs 0x0061 DPL0",
    ]);
    const ts = dbg.hypercall(LHCALL.TS, [1]);
    assert.ok(
      ts.changes.some((c) => /^cr0 +0x80010031 -> 0x80010039$/.test(c)),
      ts.changes.join("\n"),
    );
    const bad = dbg.hypercall(77);
    assert.equal(bad.died, "Bad hypercall 77");
    assert.throws(() => dbg.hypercall(LHCALL.TS, [0]), /the guest is dead/);
  });

  it("are refused on the bare machine", () => {
    const { dbg } = bare(TICKER);
    assert.throws(() => dbg.hypercall(1), /bare machine/);
  });
});

describe("devices", () => {
  it("shows each virtio function's status, features and queues as the driver sets them up", async () => {
    const { l, s, out } = lguest(file("examples/lguest/virtio.elf"));
    await s.exec("devices");
    assert.deepEqual(out.splice(0).join("\n").split("\n"), [
      "slot 0: host bridge (class 0x0600; reads as empty)",
      `slot 1: virtio console (1af4:1043), IRQ 1, BAR0 0x01100000 (128 bytes, 72 of registers)`,
      "  status 0x0 (reset), features offered 0x100000004, accepted 0x000000000, ISR 0",
      "  queue 0 receiveq: size 256, disabled",
      "  queue 1 transmitq: size 256, disabled",
    ]);
    assert.equal(l.guest.run(10_000_000), "dead");
    await s.exec("devices");
    const tx = l.console.queues[1];
    assert.deepEqual(out.splice(0).join("\n").split("\n").slice(2), [
      "  status 0xf ACKNOWLEDGE DRIVER FEATURES_OK DRIVER_OK, features offered 0x100000004, " +
      "accepted 0x100000000, ISR 0",
      "  queue 0 receiveq: size 8, desc 0x00101000 avail 0x00101100 used 0x00101200, " +
      "next avail 0, used idx 0", // the posted receive buffer waits: no input yet
      `  queue 1 transmitq: size 8, desc 0x${tx.desc.toString(16).padStart(8, "0")} avail ` +
      `0x${tx.avail.toString(16).padStart(8, "0")} used 0x${
        tx.used.toString(16).padStart(8, "0")
      }` +
      ", next avail 3, used idx 3",
    ]);
  });

  it("is refused on the bare machine", async () => {
    const { s, text } = bare(TICKER);
    await s.exec("devices");
    assert.match(text(), /devices needs the lguest launcher/);
  });
});

describe("the command language", () => {
  it("answers every error in one line and goes on", async () => {
    const { s, text, out } = lguest(HELLO);
    for (
      const bad of [
        "frobnicate",
        "x/4q 0",
        "x/4d 0xfffff000",
        "break nosuch",
        "step ten",
        "pgdir shadow 3",
        "set cs 8",
        "hcall new_pgtable 0x1000",
        "trace insn maybe",
        "delete 42",
      ]
    ) {
      out.length = 0;
      const ok = await s.exec(bad);
      const t = text();
      assert.equal(ok, false, bad);
      assert.equal(t.split("\n").filter((l) => l.startsWith("error:")).length, 1, `${bad}: ${t}`);
      assert.doesNotMatch(t, /at .*\.ts:\d+/, "no stack traces");
    }
    out.length = 0;
    assert.equal(await s.exec("regs"), true);
    assert.match(text(), /^eax 0x00000000/);
  });

  it("has help for every command", async () => {
    const { s, text, out } = lguest(HELLO);
    await s.exec("help");
    const names = [...text().matchAll(/^ {2}([a-z]+)/gm)].map((m) => m[1]);
    assert.ok(names.length >= 30, names.join(" "));
    for (const n of names) {
      out.length = 0;
      assert.equal(await s.exec(`help ${n}`), true, n);
      assert.ok(text().split("\n").length >= 3, `help ${n}: ${text()}`);
    }
  });

  it("completes commands, registers, hypercall names and symbols", () => {
    const { s } = lguest(HELLO);
    assert.deepEqual(s.complete("pgd")[0], ["pgdir", "pgdirs"]);
    assert.deepEqual(s.complete("x/4d es")[0], ["es", "esi", "esp"]);
    assert.deepEqual(s.complete("hcall new_")[0], ["new_pgtable"]);
    assert.deepEqual(s.complete("break hcall set_p")[0], ["set_pgd", "set_pmd", "set_pte"]);
    assert.deepEqual(s.complete("trace i")[0], ["insn"]);
    const b = bare(program((a) => a.label("_start").label("start_kernel").hlt()));
    assert.deepEqual(b.s.complete("break start_k")[0], ["start_kernel"]);
  });

  it("breaks on a symbol and lists breakpoints", async () => {
    const elf = program((a) => a.label("_start").nop().nop().label("target").nop().cli().hlt());
    const { s, text, dbg } = bare(elf);
    await s.exec("break target");
    await s.exec("continue");
    assert.equal(dbg.pc(), dbg.symbols.get("target"));
    assert.match(text(), /breakpoint 1 at 0x00100002 <target>/);
    await s.exec("info break");
    assert.match(text(), /1 +break +y +0x00100002 <target> +1/);
  });

  it("traces hypercalls to a file", async () => {
    const { s } = lguest(HELLO);
    const path = join(mkdtempSync(join(tmpdir(), "lguest-trace-")), "hcalls.txt");
    assert.equal(await s.exec(`trace hcall on ${path}`), true);
    await s.exec("continue");
    await s.exec("trace hcall off");
    const lines = readFileSync(path, "utf8").trim().split("\n");
    assert.equal(lines.length, 2);
    assert.match(lines[0], /^\[\d+\] hypercall LHCALL_LGUEST_INIT\(0x100200\)$/);
    assert.match(lines[1], /^\[\d+\] hypercall LHCALL_SHUTDOWN\(0x[0-9a-f]+, 0x1/);
  });

  it("examines memory by units and strings", async () => {
    const { s, text, out } = lguest(HELLO);
    await s.exec("x/4b eip");
    assert.match(text(), /^0x001001a5: bc [0-9a-f]{2} [0-9a-f]{2} [0-9a-f]{2} {2}\|/);
    out.length = 0;
    await s.exec("x/2h 0x100000");
    assert.equal(text(), "0x00100000: 0x457f 0x464c  |.ELF|");
    out.length = 0;
    await s.exec("xp/s 0x1000");
    assert.equal(text(), 'phys 0x00001000: ""');
  });
});

describe("gdb's and Bochs's vocabulary", () => {
  /** A loop counting ecx down from 5, calling `body` each time. */
  const LOOP = program((a) =>
    a.label("_start").movImm(R.ESP, 0x180000).movImm(R.ECX, 5)
      .label("top").call("body").dec(R.ECX).jnz("top").cli().hlt()
      .label("body").ret()
      .label("data").dd(0x464c457f, 0xfffffffe).db("hi\0", "yo\0")
  );

  it("x/NFU: formats x d u o t c a i s, units b h w g, remembered", async () => {
    const { s, out, text } = bare(LOOP);
    const x = async (cmd: string) => {
      out.length = 0;
      assert.equal(await s.exec(cmd), true, `${cmd}: ${text()}`);
      return text();
    };
    assert.equal(await x("x/2xw data"), "0x00100019 <data>: 0x464c457f 0xfffffffe  |.ELF....|");
    assert.equal(await x("x/2x data"), "0x00100019 <data>: 0x464c457f 0xfffffffe  |.ELF....|");
    assert.match(
      await x("x/8w data"),
      /^0x00100019 <data>: (0x[0-9a-f]{8} ){3}0x[0-9a-f]{8} {2}\|/m,
    );
    assert.equal(
      await x("x/2dw data+4"),
      "0x0010001d <data+0x4>:          -2  2030070120  |....hi.y|",
    );
    assert.equal(await x("x/1uw data+4"), "0x0010001d <data+0x4>: 4294967294  |....|");
    assert.equal(await x("x/2xh data"), "0x00100019 <data>: 0x457f 0x464c  |.ELF|");
    assert.equal(await x("x/1xg data"), "0x00100019 <data>: 0xfffffffe464c457f  |.ELF....|");
    assert.equal(await x("x/2tb data"), "0x00100019 <data>: 01111111 01000101  |.E|");
    assert.equal(await x("x/1ob data"), "0x00100019 <data>: 0177  |.|");
    assert.match(await x("x/2c data"), /^0x00100019 <data>: 127 '\\x7f' +69 'E'$/);
    assert.equal(
      await x("x/2s data+8"),
      '0x00100021 <data+0x8>: "hi"\n0x00100024 <data+0xb>: "yo"',
    );
    assert.match(await x("x/1a 0x100000"), /^0x00100000 <_start>: 0x[0-9a-f]{8}$/);
    const dis = await x("x/3i top");
    assert.match(dis, /^ {3}0x0010000a <top>: +e8 [0-9a-f ]+ +call 0x[0-9a-f]+ +<body>\n/);
    assert.equal(dis.split("\n").length, 3);
    // x alone goes on: 3 more instructions after the 3 shown.
    assert.match(await x("x"), /<top\+0x[0-9a-f]+>: +(fa|f4) /);
    for (const bad of ["x/4q data", "x/xd data", "x/bw data", "x/0x data"]) {
      out.length = 0;
      assert.equal(await s.exec(bad), false, bad);
      assert.match(text(), /^error: /);
    }
  });

  it("print with formats, display after each stop, undisplay", async () => {
    const { s, out, text } = bare(LOOP);
    await s.exec("p ecx + 2 * 3");
    assert.equal(text(), "= 0x00000006 (6)");
    out.length = 0;
    for (
      const [cmd, want] of [
        ["p/x 0n255", "= 0xff"],
        ["p/d 0-2", "= -2"],
        ["p/t 0xa", "= 1010"],
        ["p/o 8", "= 010"],
        ["p/c 0x41", "= 65 'A'"],
        ["p/a body", "= 0x00100018 <body>"],
        ["p 0-1", "= 0xffffffff (4294967295, -1)"],
        ["print data == 0x100019 && !0", "= 0x00000001 (1)"],
      ]
    ) {
      out.length = 0;
      await s.exec(cmd);
      assert.equal(text(), want, cmd);
    }
    out.length = 0;
    await s.exec("display/x ecx");
    await s.exec("display/i eip");
    assert.match(text(), /^1: \/x ecx = 0x0\n2: x\/i eip\n=> 0x00100000 <_start>:/);
    out.length = 0;
    await s.exec("step 2");
    assert.match(text(), /\n1: \/x ecx = 0x5\n2: x\/i eip\n=> 0x0010000a <top>:/);
    out.length = 0;
    await s.exec("undisplay 1");
    await s.exec("step");
    assert.doesNotMatch(text(), /1: \/x ecx/);
    assert.match(text(), /2: x\/i eip\n=> 0x00100018 <body>:/);
    out.length = 0;
    assert.equal(await s.exec("undisplay"), false);
    assert.equal(await s.exec("undisplay all"), true);
    await s.exec("step");
    assert.doesNotMatch(text(), /2: x\/i/);
  });

  it("conditional breakpoints and ignore counts", async () => {
    const { s, dbg, out, text } = bare(LOOP);
    await s.exec("break body if ecx == 2");
    assert.match(text(), /^breakpoint 1: 0x00100018 <body> if ecx == 2$/);
    await s.exec("continue");
    assert.equal(dbg.cpu.regs[1], 2);
    assert.equal(dbg.pc(), dbg.symbols.get("body"));
    assert.equal(dbg.breakpoints()[0].hits, 1);
    // An ignore count passes that many hits whose condition holds.
    const b = bare(LOOP);
    await b.s.exec("break body");
    await b.s.exec("ignore 1 3");
    await b.s.exec("continue");
    assert.equal(b.dbg.cpu.regs[1], 2); // hits at ecx 5, 4, 3 passed; stopped at 2
    await b.s.exec("info break");
    assert.match(b.text(), /1 +break +y +0x00100018 <body> +4/);
    // condition N changes it; a condition that cannot be read is refused at once.
    out.length = 0;
    await s.exec("condition 1 ecx == 1");
    await s.exec("continue");
    assert.equal(dbg.cpu.regs[1], 1);
    out.length = 0;
    assert.equal(await s.exec("break body if nosuch == 1"), false);
    assert.match(text(), /^error: no register or symbol named 'nosuch'$/);
    assert.equal(dbg.breakpoints().length, 1);

    // Hypercall and trap breakpoints take conditions too; one that never holds lets the guest end.
    const g = lguest(PAGING);
    await g.s.exec("break hcall set_pte if ecx == 1; break trap pf if cr2 == 0xd0000000");
    await g.s.exec("continue");
    assert.match(g.text(), /\] breakpoint 2: trap 14 #PF error 0x0 cr2 0xd0000000 /);
    // The read faults twice: reflected into the guest, then (its PTE written) filled by the host.
    await g.s.exec("continue; continue");
    assert.match(g.text(), /the guest ended: CRASH: Power down/);
    assert.deepEqual(g.dbg.breakpoints().map((b) => b.hits), [0, 2]);
  });

  it("delete needs numbers or 'delete all'; info aliases; creg; page", async () => {
    const { s, dbg, out, text } = bare(LOOP);
    await s.exec("break body; break top");
    out.length = 0;
    assert.equal(await s.exec("delete"), false);
    assert.equal(text(), "error: delete which? (delete N…, or 'delete all' for all 2 breakpoints)");
    assert.equal(dbg.breakpoints().length, 2);
    assert.equal(await s.exec("delete all"), true);
    assert.equal(dbg.breakpoints().length, 0);
    for (
      const [cmd, want] of [
        ["info registers", /^eax 0x00000000 +ebx/],
        ["info registers ecx eip", /^ecx +0x00000000 +0\neip +0x00100000 +1048576$/],
        ["info break", /^no breakpoints or watchpoints$/],
        ["info tlb", /^CPU TLB \(paging off/],
        ["info mem", /^paging is off/],
        ["info tab", /^paging is off/],
        ["creg", /^cr0 0x[0-9a-f]{8} +\[ PE.*\]\ncr2 .*\ncr3 .*\ncr4 0x00000000 +\[ - \]$/],
        ["page eip", /^0x00100000 <_start>: paging is off: physical = linear/],
      ] as [string, RegExp][]
    ) {
      out.length = 0;
      assert.equal(await s.exec(cmd), true, cmd);
      assert.match(text(), want, cmd);
    }
    const g = lguest(HELLO);
    await g.s.exec("info mem");
    assert.match(g.text(), /^slot 0: linear mode/);
  });
});

describe("symbol files", () => {
  const DIR = mkdtempSync(join(tmpdir(), "lguest-syms-"));
  const LOOP = program((a) =>
    a.label("_start").movImm(R.ESP, 0x180000).movImm(R.ECX, 5)
      .label("top").call("body").dec(R.ECX).jnz("top").cli().hlt()
      .label("body").ret()
  );

  it("symbols FILE loads a System.map: disasm, breakpoints, bt and expressions use it", async () => {
    // The bare program without its own symbols, then a System.map for it.
    const m = new BareMachine(16, () => {});
    m.loadKernel(LOOP);
    const dbg = new Debugger(new BareTarget(m));
    const out: string[] = [];
    const s = new Session(dbg, { write: (t) => out.push(t) });
    const text = () => out.join("\n");
    const real = parseElf(LOOP).symbols;
    const map = join(DIR, "System.map");
    writeFileSync(
      map,
      [
        `${real.get("_start")!.toString(16).padStart(8, "0")} T _start`,
        `${real.get("top")!.toString(16).padStart(8, "0")} t top`,
        `${real.get("body")!.toString(16).padStart(8, "0")} T body`,
        "         U undefined_here",
        "not a symbol line",
      ].join("\n") + "\n",
    );
    assert.equal(await s.exec(`disasm _start 3`), false); // not known yet
    out.length = 0;
    assert.equal(await s.exec(`symbols ${map}`), true);
    assert.equal(text(), `3 symbols from ${map} (System.map)`);
    out.length = 0;
    await s.exec("x/3i _start");
    assert.match(text(), /0x[0-9a-f]{8} <top>: +e8 [0-9a-f ]+call 0x[0-9a-f]{8} +<body>/);
    out.length = 0;
    await s.exec("break body");
    await s.exec("continue");
    assert.match(
      text(),
      /breakpoint 1: 0x[0-9a-f]{8} <body>\n\[\d+\] breakpoint 1 at 0x[0-9a-f]{8} <body>/,
    );
    out.length = 0;
    await s.exec("bt");
    assert.match(
      text(),
      /^#0 +0x[0-9a-f]{8} <body>\n#1 +0x[0-9a-f]{8} <top\+0x5> +\(return address at /,
    );
    assert.equal(dbg.eval("top + 5"), real.get("top")! + 5);
    assert.equal(dbg.symbols.has("undefined_here"), false);
  });

  it("symbols FILE loads an ELF's symbol table; other files are one-line errors", async () => {
    const { s, out, text, dbg } = lguest(HELLO);
    const elf = join(DIR, "syms.elf");
    writeFileSync(elf, LOOP);
    assert.equal(await s.exec(`symbols ${elf}`), true);
    assert.match(text(), /^\d+ symbols from .*syms\.elf \(ELF\)$/);
    assert.equal(dbg.symbols.get("body"), parseElf(LOOP).symbols.get("body"));
    const junk = join(DIR, "junk.txt");
    writeFileSync(junk, "hello\nworld\n");
    out.length = 0;
    assert.equal(await s.exec(`symbols ${junk}`), false);
    assert.equal(
      text(),
      `error: ${junk}: neither an ELF file nor a System.map (no 'ADDRESS TYPE NAME' lines)`,
    );
    out.length = 0;
    assert.equal(await s.exec(`symbols ${join(DIR, "hello.elf")}`), true); // no such file: a filter
    assert.match(text(), /^no symbol contains /);
  });

  it("each example ELF has its System.map beside it, naming its entry point", () => {
    for (const elf of ["examples/hello.elf", "examples/ticker.elf", "examples/lguest/hello.elf"]) {
      const bytes = file(elf);
      const entry = new DataView(bytes.buffer, bytes.byteOffset).getUint32(24, true);
      const map = new TextDecoder().decode(file(elf.replace(/\.elf$/, ".map")));
      const m = /^([0-9a-f]{8}) T _start$/m.exec(map);
      assert.ok(m, `${elf}: no _start in its map`);
      assert.equal(parseInt(m[1], 16), entry, elf);
    }
  });
});

describe("progress of a long run", () => {
  it("names the guest's phase from the host's state", async () => {
    const { dbg, g } = lguest(PAGING);
    assert.equal(guestPhase(g, "elf"), "starting");
    assert.equal(guestPhase(g, "bzImage"), "decompressing"); // a bzImage before lguest_init
    dbg.breakHcall(LHCALL.NEW_PGTABLE);
    await dbg.continue();
    assert.equal(guestPhase(g, "elf"), "linear mode"); // initialised, no tables of its own yet
    dbg.delete();
    await dbg.step();
    assert.equal(guestPhase(g, "elf"), "kernel");
    await dbg.continue();
    assert.equal(guestPhase(g, "elf"), "ended");
  });

  it("says instructions, MIPS, virtual time and phase in one line", () => {
    assert.equal(
      statusLine({ instructions: 123_456_789, seconds: 2, phase: "linear mode" }),
      "123,456,789 instructions  61.7 MIPS  virtual 0.123 s  linear mode",
    );
    assert.equal(
      statusLine({ instructions: 0, seconds: 0, phase: "" }),
      "0 instructions  - MIPS  virtual 0.000 s",
    );
  });
});
