/**
 * The device seam: one bus in the CPU, and the lguest host's devices on it.
 *
 * On the bare CPU, an MMIO region receives every access to its addresses —
 * a MOV, a read-modify-write, a string move, an access that crosses into it
 * from RAM — with the exact width, and its page never enters the TLB. Under
 * the lguest host, guest accesses of any form to the console's BAR0 reach the
 * device through the CPU's own decoder (lguest's launcher decoded only MOV),
 * and an access that runs past the register file kills the guest with a
 * reason instead of throwing out of the host (a hostile-guest breach).
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { CPU, Exit } from "../lib/x86/cpu.ts";
import { PhysicalMemory } from "../lib/x86/memory.ts";
import { Launcher } from "../lib/boot/launcher.ts";
import { elf32, R, X86 } from "../lib/debug/guest_builder.ts";
import { LHCALL } from "../lib/lguest/abi.ts";

describe("the bus on a bare CPU", () => {
  const CODE = 0x1000, REGION = 0x80000;

  /** A CPU with a 16-byte register file at REGION that logs every access. */
  function machine(code: number[]) {
    const cpu = new CPU(new PhysicalMemory(1 << 20));
    const regs = new Uint8Array(16).fill(0);
    const log: string[] = [];
    cpu.bus.mapMmio(REGION, 16, {
      read(addr, size) {
        log.push(`r${size}@${(addr - REGION).toString(16)}`);
        const dv = new DataView(regs.buffer);
        const o = addr - REGION;
        return size === 1 ? regs[o] : size === 2 ? dv.getUint16(o, true) : dv.getInt32(o, true);
      },
      write(addr, size, v) {
        log.push(`w${size}@${(addr - REGION).toString(16)}=${(v >>> 0).toString(16)}`);
        const dv = new DataView(regs.buffer);
        const o = addr - REGION;
        if (size === 1) regs[o] = v;
        else if (size === 2) dv.setUint16(o, v, true);
        else dv.setInt32(o, v, true);
      },
    });
    cpu.mem.load(CODE, new Uint8Array([...code, 0xf4]));
    cpu.eip = CODE;
    return { cpu, regs, log };
  }
  const imm = (v: number) => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24];

  it("carries MOV, read-modify-write, MOVS and STOS to the region at their widths", () => {
    const { cpu, regs, log } = machine([
      0xb8,
      ...imm(0x11223344), // mov eax, 0x11223344
      0xa3,
      ...imm(REGION), // mov [REGION], eax
      0x66,
      0x83,
      0x05,
      ...imm(REGION + 4),
      0x05, // add word [REGION+4], 5
      0x80,
      0x0d,
      ...imm(REGION + 6),
      0x80, // or byte [REGION+6], 0x80
      0xbe,
      ...imm(REGION), // mov esi, REGION
      0xbf,
      ...imm(0x2000), // mov edi, 0x2000
      0xb9,
      ...imm(2), // mov ecx, 2
      0xf3,
      0xa5, // rep movsd (from the region into RAM)
      0xbf,
      ...imm(REGION + 8), // mov edi, REGION+8
      0xb9,
      ...imm(2), // mov ecx, 2
      0xf3,
      0x66,
      0xab, // rep stosw (into the region)
    ]);
    assert.equal(cpu.run(1000), Exit.Halt);
    assert.deepEqual(log, [
      "w4@0=11223344",
      "r2@4",
      "w2@4=5",
      "r1@6",
      "w1@6=80",
      "r4@0",
      "r4@4",
      "w2@8=3344",
      "w2@a=3344",
    ]);
    assert.equal(cpu.mem.read32(0x2000), 0x11223344);
    assert.equal(cpu.mem.read32(0x2004), 0x00800005);
    assert.equal(regs[6], 0x80);
    // RAM behind the region was never touched, and the page never entered the TLB.
    assert.equal(cpu.mem.read32(REGION), 0);
    assert.equal(cpu.tlbR[REGION >>> 12], 0);
    assert.equal(cpu.tlbW[REGION >>> 12], 0);
  });

  it("an access crossing into the region from RAM arrives as bytes; unclaimed bytes read as ones", () => {
    const { cpu, log } = machine([
      0xa1,
      ...imm(REGION - 2), // mov eax, [REGION-2] (two bytes of RAM, two of the region)
      0x8b,
      0x1d,
      ...imm(REGION + 14), // mov ebx, [REGION+14] (two of the region, two unclaimed)
    ]);
    cpu.mem.write16(REGION - 2, 0xbeef);
    assert.equal(cpu.run(1000), Exit.Halt);
    assert.equal(cpu.regs[R.EAX] >>> 0, 0x0000beef);
    assert.equal(cpu.regs[R.EBX] >>> 0, 0xffff0000);
    assert.deepEqual(log, ["r1@0", "r1@1", "r1@e", "r1@f"]);
  });

  it("ports: a handler claims a range; unclaimed ports read as all ones", () => {
    const { cpu } = machine([
      0x66,
      0xba,
      0x00,
      0x03, // mov dx, 0x300
      0xb0,
      0x5a, // mov al, 0x5a
      0xee, // out dx, al
      0xe5,
      0x42, // in eax, 0x42
      0x89,
      0xc3, // mov ebx, eax
      0xed, // in eax, dx
    ]);
    const seen: number[] = [];
    cpu.bus.registerPorts(0x300, 4, {
      in: (port, size) => (port << 8) | size,
      out: (_port, v) => void seen.push(v),
    });
    assert.equal(cpu.run(1000), Exit.Halt);
    assert.deepEqual(seen, [0x5a]);
    assert.equal(cpu.regs[R.EBX], -1);
    assert.equal(cpu.regs[R.EAX], 0x30004);
  });

  it("a fetch from device memory stops the machine instead of executing RAM behind it", () => {
    const { cpu } = machine([0xe9, ...imm(REGION - (CODE + 5))]); // jmp REGION
    assert.equal(cpu.run(1000), Exit.Shutdown);
    assert.match(cpu.exitMessage, /instruction fetch outside RAM/);
  });
});

describe("lguest: guest accesses to the console's BAR0 go through the bus", () => {
  const RAM_MIB = 16, BAR0 = (RAM_MIB << 20) + 0x100000, EMERG_WR = BAR0 + 68;
  const le32 = (v: number) => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24];

  /** A guest: INIT, then `body`, then power off. */
  function guest(body: (a: X86) => void) {
    const a = new X86(0x100000);
    a.label("_start").movImm(R.ESP, "stack_top").hcall(LHCALL.LGUEST_INIT, "lguest_data");
    body(a);
    a.hcall(LHCALL.SHUTDOWN, "power_down", 1);
    a.label("spin").jmp("spin");
    a.label("power_down").db("Power down", 0);
    a.label("text").db("h\0\0\0i\0\0\0!\0\0\0");
    a.lguestData().align(16).zeros(4096).label("stack_top");
    const kernel = elf32({ entry: a.addr("_start"), segments: [a.segment()] });
    const l = new Launcher({ memMiB: RAM_MIB, kernel });
    let stop = "";
    assert.doesNotThrow(() => (stop = l.guest.run(1_000_000)));
    return { l, g: l.guest, stop, out: l.text(), a };
  }

  it("a REP STOSD from emerg_wr on prints once, then dies at the end of the registers", () => {
    const r = guest((a) => {
      a.movImm(R.EAX, 0x68).movImm(R.EDI, EMERG_WR).movImm(R.ECX, 0x40000000);
      a.label("rep").db(0xfc, 0xf3, 0xab); // cld; rep stosd (a billion of them)
    });
    assert.equal(r.stop, "dead");
    assert.equal(r.out, "h");
    assert.equal(
      r.g.deathReason,
      "virtio console: write of 4 bytes at BAR0 offset 0x48, outside its 72 bytes of registers",
    );
    // The REP stopped right after the iteration that killed the guest, restartable.
    assert.equal(r.g.cpu.regs[R.ECX], 0x40000000 - 2);
    assert.equal(r.g.cpu.regs[R.EDI], EMERG_WR + 8);
    assert.equal(r.g.cpu.eip, r.a.addr("rep") + 1, "EIP at the REP prefix (after CLD)");
  });

  it("an OR on a register and a MOVSD per character reach the device", () => {
    const r = guest((a) => {
      a.movImm(R.EAX, 0x4f).store(EMERG_WR, R.EAX); // 'O'
      a.db(0x83, 0x0d, ...le32(BAR0), 0x4b); // or dword [device_feature_select], 0x4b
      for (let i = 0; i < 3; i++) {
        a.movImm(R.ESI, ["text", i * 4]).movImm(R.EDI, EMERG_WR).db(0xa5); // movsd
      }
    });
    assert.equal(r.stop, "dead");
    assert.equal(r.g.deathReason, "CRASH: Power down");
    assert.equal(r.out, "Ohi!");
    assert.equal(r.l.consolePci.deviceFeatureSelect, 0x4b);
  });

  // Issue 8: these used to raise a RangeError out of barRead/barWrite through Guest.run.
  for (
    const [what, off, size, write] of [
      ["a dword read at 0x7d", 0x7d, 4, false],
      ["a dword write at 0x7e", 0x7e, 4, true],
      ["a word read at 0x7f", 0x7f, 2, false],
      ["a word write across the end of the registers (0x47)", 0x47, 2, true],
    ] as const
  ) {
    it(`${what} past the register file kills the guest with a reason`, () => {
      const r = guest((a) => {
        // mov [at], ebx / mov ebx, [at] (the MOV forms lguest's launcher decodes), 66 for a word
        a.db(...(size === 2 ? [0x66] : []), write ? 0x89 : 0x8b, 0x1d, ...le32(BAR0 + off));
      });
      assert.equal(r.stop, "dead");
      assert.equal(
        r.g.deathReason,
        `virtio console: ${write ? "write" : "read"} of ${size} bytes at BAR0 offset 0x${
          off.toString(16)
        }, outside its 72 bytes of registers`,
      );
      assert.equal(r.g.run(1000), "dead");
    });
  }

  it("ring-1 port I/O reaches the bus through the trap policy; CLI is skipped", () => {
    const r = guest((a) => {
      a.cli(); // skipped, as lguest's launcher does
      // PCI config mechanism 1: slot 1's vendor/device dword, then the i8042 status.
      a.movImm(R.EAX, 0x80000800).db(0x66, 0xba, 0xf8, 0x0c, 0xef); // mov dx, 0xcf8; out dx, eax
      a.db(0x66, 0xba, 0xfc, 0x0c, 0xed).movReg(R.ESI, R.EAX); // in eax, dx; mov esi, eax
      a.db(0xe4, 0x64).movReg(R.EDI, R.EAX); // in al, 0x64; mov edi, eax
      a.db(0xe4, 0x40).movReg(R.EBP, R.EAX); // in al, 0x40 (the PIT: nothing there)
    });
    assert.equal(r.g.deathReason, "CRASH: Power down");
    assert.equal(r.g.cpu.regs[R.ESI] >>> 0, 0x10431af4);
    assert.equal(r.g.cpu.regs[R.EDI] & 0xff, 1);
    assert.equal(r.g.cpu.regs[R.EBP] & 0xff, 0xff);
  });

  it("a break on #GP stops at a ring-1 OUT; continuing performs it once", () => {
    const a = new X86(0x100000);
    a.label("_start").movImm(R.ESP, "stack_top").hcall(LHCALL.LGUEST_INIT, "lguest_data");
    a.movImm(R.EAX, 0x80000000).db(0x66, 0xba, 0xf8, 0x0c).label("out").db(0xef);
    a.label("spin").jmp("spin");
    a.lguestData().align(16).zeros(4096).label("stack_top");
    const l = new Launcher({
      memMiB: RAM_MIB,
      kernel: elf32({ entry: a.addr("_start"), segments: [a.segment()] }),
    });
    const g = l.guest;
    g.trapBreak.add(13);
    assert.equal(g.run(100_000), "trap");
    assert.equal(g.cpu.exitVector, 13);
    assert.equal(g.cpu.eip, a.addr("out"));
    assert.equal(l.pci.address, 0, "not yet performed");
    assert.equal(g.run(1000), "budget");
    assert.equal(l.pci.address, 0x80000000);
    assert.ok(g.cpu.eip >= a.addr("spin"));
  });
});
