/**
 * A guest can hurt only itself: what the host must never do on its behalf,
 * whatever the guest (or a debugger poking at it) does.
 *
 * The progress guarantee: every turn of the host loop retires an instruction
 * or lets virtual time pass; a loop that does neither — a page fault demand
 * paging calls fixed while the CPU keeps faulting on it — kills the guest
 * with a reason instead of spinning, so `Guest.run` returns and the
 * instruction limit takes effect. The shadow pool never loses a page. The
 * host never hands the guest more privilege than ring 1 has (IOPL 0). The
 * guests here are built in memory (lib/debug/guest_builder.ts); the misdeeds
 * that kill are variants of examples/lguest/hostile.asm (tests/lguest_test.ts).
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Launcher } from "../lib/boot/launcher.ts";
import { elf32, R, X86 } from "../lib/debug/guest_builder.ts";
import { KERNEL_CS, LGUEST_DATA, LHCALL, LHCALL_RING_SIZE, PTE } from "../lib/lguest/abi.ts";
import { IF, IOPL } from "../lib/x86/flags.ts";
import { type Guest, NO_PROGRESS_LIMIT } from "../lib/lguest/guest.ts";
import { SWITCHER_PGD_INDEX, SWITCHER_PMD_INDEX } from "../lib/lguest/page_tables.ts";

/** A guest that initialises and then counts for ever, in linear mode. */
function counter(): Uint8Array {
  const a = new X86(0x100000);
  a.label("_start").movImm(R.ESP, "stack_top").hcall(LHCALL.LGUEST_INIT, "lguest_data");
  a.label("spin").incMem("count").jmp("spin");
  a.align(4).label("count").dd(0);
  a.lguestData().align(16).zeros(4096).label("stack_top");
  return elf32({ entry: a.addr("_start"), segments: [a.segment()], symbols: a.symbols });
}

function bootCounter(): Launcher {
  return new Launcher({ memMiB: 16, kernel: counter(), kernelName: "counter" });
}

const STUCK = new RegExp(
  `^no progress: page fault at 0x[0-9a-f]+ \\(error [0-7]\\) fixed (\\d+) times without the instruction completing \\(eip 0x[0-9a-f]+\\)$`,
);

describe("progress: a host loop that makes no progress kills the guest", () => {
  it("a page fault that demand paging 'fixes' in vain ends the run with a reason", () => {
    const l = bootCounter();
    const g = l.guest;
    assert.equal(g.run(10_000), "budget");
    assert.equal(g.dead, false);
    // What the debugger's `set cr3 0` does: the CPU now walks guest RAM at 0 as
    // its page directory, while the host keeps filling the shadow it owns.
    g.cpu.cr3 = 0;
    g.cpu.flushTlb();
    const before = g.cpu.icount;
    assert.equal(g.run(1_000_000), "dead");
    const m = STUCK.exec(g.deathReason);
    assert.ok(m, g.deathReason);
    assert.equal(Number(m[1]), NO_PROGRESS_LIMIT);
    assert.equal(g.cpu.icount, before, "not one instruction completed");
    assert.equal(g.run(1000), "dead", "a dead guest stays dead");
  });

  it("the count carries across runs: a debugger resuming a trap breakpoint ends too", () => {
    const l = bootCounter();
    const g = l.guest;
    assert.equal(g.run(10_000), "budget");
    g.cpu.cr3 = 0;
    g.cpu.flushTlb();
    g.trapBreak.add(14); // every #PF returns "trap" before the host handles it
    let stop = "";
    let runs = 0;
    while (runs < 4 * NO_PROGRESS_LIMIT) {
      runs++;
      stop = g.run(1000);
      if (stop !== "trap") break;
    }
    assert.equal(stop, "dead", `after ${runs} runs`);
    assert.match(g.deathReason, STUCK);
  });

  it("a well-behaved guest is never mistaken for a stuck one", () => {
    const l = bootCounter();
    const g = l.guest;
    // Every instruction faults its page in anew: the shadows are dropped each run.
    for (let i = 0; i < 3 * NO_PROGRESS_LIMIT; i++) {
      g.pt.dropAllMappings();
      assert.equal(g.run(1), "budget");
    }
    assert.equal(g.dead, false, g.deathReason);
  });
});

/**
 * A guest that hangs one PTE page (identity, the first 4 MiB, or 2 MiB under
 * PAE) from every user directory entry and reads a word in each region the
 * entries cover, `rounds` times over: every read needs a shadow PTE page of
 * its own, so a small host pool runs dry again and again. Then it powers off.
 * Non-PAE: 768 page-directory entries. PAE: one PMD page of 512 entries hung
 * from PDPT entries 0-2, 1536 regions.
 */
function directoryToucher(rounds: number, pae: boolean): Uint8Array {
  const PT = 0x200000, DIR = 0x201000, PDPT = 0x202000;
  const ent = pae ? 8 : 4, ptes = pae ? 512 : 1024;
  const regions = pae ? 3 * 512 : 768, span = pae ? 0x200000 : 0x400000;
  const a = new X86(0x100000);
  a.label("_start").movImm(R.ESP, "stack_top").hcall(LHCALL.LGUEST_INIT, "lguest_data");
  // mov [edi], eax: the low halves (RAM starts zeroed, so PAE high halves are 0)
  a.movImm(R.EDI, PT).movImm(R.EAX, PTE.P | PTE.RW).movImm(R.ECX, ptes);
  a.label("fill_pt").db(0x89, 0x07).addImm(R.EDI, ent).addImm(R.EAX, 4096).dec(R.ECX);
  a.jnz("fill_pt");
  a.movImm(R.EDI, DIR).movImm(R.EAX, PT | 0x067).movImm(R.ECX, pae ? 512 : 768);
  a.label("fill_dir").db(0x89, 0x07).addImm(R.EDI, ent).dec(R.ECX).jnz("fill_dir");
  if (pae) {
    a.movImm(R.EDI, PDPT).movImm(R.EAX, DIR | PTE.P).movImm(R.ECX, 3);
    a.label("fill_pdpt").db(0x89, 0x07).addImm(R.EDI, 8).dec(R.ECX).jnz("fill_pdpt");
  }
  a.hcall(LHCALL.NEW_PGTABLE, pae ? PDPT : DIR);
  a.movImm(R.EBX, rounds);
  a.label("round").movImm(R.ESI, 0x1000).movImm(R.ECX, regions);
  a.label("touch").db(0x8b, 0x06).addImm(R.ESI, span).dec(R.ECX).jnz("touch"); // mov eax, [esi]
  a.dec(R.EBX).jnz("round");
  a.hcall(LHCALL.SHUTDOWN, "bye", 1);
  a.label("bye").db("Power down", 0);
  a.lguestData().align(16).zeros(4096).label("stack_top");
  return elf32({ entry: a.addr("_start"), segments: [a.segment()], symbols: a.symbols });
}

/**
 * Host pages the host can still reach: its GDT and switcher pages, every
 * shadow, its PMD pages (PAE) and the PTE pages under them.
 */
function reachableHostPages(g: Guest): number {
  let n = 2; // the GDT page and the switcher's PTE page
  const present = (at: number) => (g.mem.read32(at) & PTE.P) !== 0;
  for (const s of g.pt.slots) {
    if (!s) continue;
    n++;
    if (!g.pt.pae) {
      for (let i = 0; i < SWITCHER_PGD_INDEX; i++) if (present(s.shadow + i * 4)) n++;
      continue;
    }
    for (let i = 0; i < 4; i++) {
      if (!present(s.shadow + i * 8)) continue;
      n++;
      const pmd = g.mem.read32(s.shadow + i * 8) & -4096;
      for (let j = 0; j < (i === 3 ? SWITCHER_PMD_INDEX : 512); j++) {
        if (present(pmd + j * 8)) n++;
      }
    }
  }
  return n;
}

describe("the shadow pool: a host page is never lost", () => {
  for (const pae of [false, true]) {
    it(`a guest that drains the pool again and again is never killed for it${pae ? " (PAE)" : ""}`, () => {
      const HOST_PAGES = 64, ROUNDS = 40;
      const l = new Launcher({
        memMiB: 16,
        kernel: directoryToucher(ROUNDS, pae),
        kernelName: "toucher",
        hostPages: HOST_PAGES,
        pae,
      });
      const g = l.guest;
      let exhaustions = 0;
      const drop = g.pt.dropAllMappings.bind(g.pt);
      g.pt.dropAllMappings = () => {
        if (g.pages.inUse === HOST_PAGES) exhaustions++;
        drop();
      };
      const stop = g.run(50_000_000);
      assert.equal(stop, "dead");
      assert.equal(g.deathReason, "CRASH: Power down");
      // Each round needs hundreds of shadow PTE pages from a pool of 64: it ran dry many times.
      assert.ok(exhaustions > HOST_PAGES, `the pool ran dry ${exhaustions} times`);
      assert.equal(g.pages.inUse, reachableHostPages(g), "every page in use is in a shadow");
    });
  }
});

/**
 * A guest whose noirq_iret is a jump to itself, so the timer interrupt always
 * finds EIP there, with an "iret frame" on its stack whose EFLAGS has IOPL 3.
 * The host takes EFLAGS from that frame; the IRQ 0 handler records the EFLAGS
 * it runs with (pushfd) and powers off.
 */
function ioplFrame(): { elf: Uint8Array; seen: number } {
  const SPIN = 0x100400, HANDLER = 0x100800;
  const a = new X86(0x100000);
  a.label("_start").movImm(R.ESP, "stack_top").hcall(LHCALL.LGUEST_INIT, "lguest_data");
  a.hcall(
    LHCALL.LOAD_IDT_ENTRY,
    32,
    (KERNEL_CS << 16) | (HANDLER & 0xffff),
    (HANDLER & 0xffff0000) | 0x8e00,
  );
  a.movImm(R.EAX, 0).store(["lguest_data", LGUEST_DATA.blocked_interrupts], R.EAX);
  a.movImm(R.EAX, IF).store(["lguest_data", LGUEST_DATA.irq_enabled], R.EAX);
  a.db(0x68).dd(IF | IOPL | 2); // push: the frame's EFLAGS, IOPL 3
  a.db(0x68).dd(KERNEL_CS); // push: its CS
  a.db(0x68).dd(SPIN); // push: its EIP
  a.hcall(LHCALL.SET_CLOCKEVENT, 1000);
  while (a.here < SPIN) a.nop();
  a.label("spin").jmp("spin");
  while (a.here < HANDLER) a.nop();
  a.db(0x9c, 0x58).store("seen", R.EAX); // pushfd; pop eax
  a.hcall(LHCALL.SHUTDOWN, "bye", 1);
  a.label("bye").db("Power down", 0);
  a.align(4).label("seen").dd(0);
  a.lguestData(SPIN).align(16).zeros(4096).label("stack_top");
  return {
    elf: elf32({ entry: a.addr("_start"), segments: [a.segment()], symbols: a.symbols }),
    seen: a.addr("seen"),
  };
}

describe("EFLAGS: the guest never gets I/O privilege", () => {
  it("an interrupt at noirq_iret takes EFLAGS from the frame, but not its IOPL", () => {
    const { elf, seen } = ioplFrame();
    const l = new Launcher({ memMiB: 16, kernel: elf, kernelName: "iopl" });
    const g = l.guest;
    assert.equal(g.run(1_000_000), "dead");
    assert.equal(g.deathReason, "CRASH: Power down");
    const flags = g.mem.read32(seen);
    assert.notEqual(flags, 0, "the handler ran");
    assert.equal(flags & IOPL, 0, `EFLAGS in the handler: 0x${flags.toString(16)}`);
    assert.equal(flags & IF, IF);
    assert.equal(g.cpu.getEflags() & IOPL, 0);
  });
});

/**
 * A guest that executes its own async-ring status bytes. Its lguest_data is
 * placed so that `mov bl, imm8; jmp eax` lies across it: the opcode in the
 * top byte of irq_pending, the immediate in status[0] (slot 0 queued: 0), then
 * status[1] = 0xFF (empty: the host stops there) and status[2] = 0xE0 (the
 * jump's ModRM). It runs that code until it is hot (translated), makes a
 * synchronous hypercall — the host runs slot 0 and writes 0xFF over the
 * immediate — and runs it once more. BL before and after are kept.
 */
function statusByteCode(): { elf: Uint8Array; before: number; after: number } {
  const data = new Uint8Array(LGUEST_DATA.SIZE);
  const dv = new DataView(data.buffer);
  dv.setUint32(LGUEST_DATA.blocked_interrupts, 1, true);
  data.fill(0xff, LGUEST_DATA.hcall_status, LGUEST_DATA.hcall_status + LHCALL_RING_SIZE);
  data[LGUEST_DATA.irq_pending + 3] = 0xb3; // mov bl, imm8
  data[LGUEST_DATA.hcall_status] = 0x00; // slot 0 queued: the immediate
  data[LGUEST_DATA.hcall_status + 1] = 0xff; // slot 1 empty; jmp eax (FF E0)
  data[LGUEST_DATA.hcall_status + 2] = 0xe0;
  dv.setUint32(LGUEST_DATA.hcalls, LHCALL.FLUSH_ASYNC, true); // slot 0: harmless
  dv.setUint32(LGUEST_DATA.kernel_address, 0xc0000000, true);
  dv.setUint32(LGUEST_DATA.syscall_vec, 0x80, true);
  const code: [string, number] = ["ld", LGUEST_DATA.irq_pending + 3];
  const a = new X86(0x100000);
  a.label("_start").movImm(R.ESP, "stack_top").hcall(LHCALL.LGUEST_INIT, "ld");
  a.movImm(R.EBX, 0x55).movImm(R.ECX, 200);
  a.label("warm").movImm(R.EAX, "back1").jmp(code);
  a.label("back1").dec(R.ECX).jnz("warm").store("before", R.EBX);
  a.hcall(LHCALL.FLUSH_ASYNC); // the host drains slot 0 and marks it done
  a.movImm(R.EBX, 0x55).movImm(R.EAX, "back2").jmp(code);
  a.label("back2").store("after", R.EBX);
  a.hcall(LHCALL.SHUTDOWN, "bye", 1);
  a.label("bye").db("Power down", 0);
  a.align(16).label("ld").db(...data);
  // Kept on another page: a CPU write to a page of translated code drops it all.
  a.align(4096).label("before").dd(0).label("after").dd(0);
  a.align(16).zeros(4096).label("stack_top");
  return {
    elf: elf32({ entry: a.addr("_start"), segments: [a.segment()], symbols: a.symbols }),
    before: a.addr("before"),
    after: a.addr("after"),
  };
}

describe("guest memory the host writes: translated code never goes stale", () => {
  it("the async ring's status byte, written by the host, is what the guest executes next", () => {
    const { elf, before, after } = statusByteCode();
    const l = new Launcher({ memMiB: 16, kernel: elf, kernelName: "status" });
    const g = l.guest;
    assert.equal(g.run(1_000_000), "dead");
    assert.equal(g.deathReason, "CRASH: Power down");
    assert.ok(g.hcallLog.some((r) => r.async && r.nr === LHCALL.FLUSH_ASYNC), "slot 0 ran");
    assert.equal(g.mem.read32(before), 0x00, "BL from the queued slot's status byte");
    assert.equal(g.mem.read32(after), 0xff, "BL from the status byte the host wrote");
  });
});
