/**
 * The block translator (lib/x86/jit.ts) keeps instructions it does not spell
 * out inside the block, run by the interpreter: 16-bit operand forms, string
 * instructions with REP, BT*, XADD, 8-bit shifts. These tests check that such
 * code becomes one block (not a block per run of plain instructions), that it
 * computes what the interpreter computes, and that a fault after a stepped
 * instruction in the same block counts retired instructions exactly.
 *
 * @module
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { CPU, Exit } from "../lib/x86/cpu.ts";
import { Vec } from "../lib/x86/flags.ts";
import { PhysicalMemory } from "../lib/x86/memory.ts";

const CODE = 0x1000;

/** A flat CPU with `bytes` at CODE; jit: translate everything on first execution. */
function machine(bytes: number[], jit: boolean): CPU {
  const mem = new PhysicalMemory(1 << 20);
  mem.load(CODE, new Uint8Array(bytes));
  const cpu = new CPU(mem);
  cpu.jit = jit;
  cpu.jitThreshold = 0;
  cpu.eip = CODE;
  return cpu;
}

// A straight run mixing translated and interpreted-in-block instructions, then HLT.
const MIXED = [
  0xb8,
  0x34,
  0x12,
  0x00,
  0x00, // mov eax, 0x1234
  0x66,
  0x89,
  0xc3, //             mov bx, ax          (16-bit: inline)
  0x66,
  0x83,
  0xc3,
  0x07, //       add bx, 7           (16-bit ALU: stepped)
  0x0f,
  0xba,
  0xe0,
  0x02, //       bt eax, 2           (stepped)
  0xbe,
  0x00,
  0x30,
  0x00,
  0x00, // mov esi, 0x3000
  0xbf,
  0x00,
  0x40,
  0x00,
  0x00, // mov edi, 0x4000
  0xb9,
  0x03,
  0x00,
  0x00,
  0x00, // mov ecx, 3
  0xfc, //                         cld                 (stepped)
  0xf3,
  0xa5, //                   rep movsd           (stepped)
  0xc0,
  0xe0,
  0x03, //             shl al, 3           (stepped)
  0x0f,
  0xc1,
  0xc2, //             xadd edx, eax       (stepped)
  0xa3,
  0x00,
  0x50,
  0x00,
  0x00, // mov [0x5000], eax   (moffs: inline)
  0x66,
  0xa1,
  0x00,
  0x30,
  0x00,
  0x00, // mov ax, [0x3000]
  0xf4, //                         hlt
];

describe("translated blocks run the interpreter's instructions inside them", () => {
  it("mixed 16-bit, string, bit and 8-bit shift code is one block and matches the interpreter", () => {
    const runs = [false, true].map((jit) => {
      const cpu = machine(MIXED, jit);
      for (let i = 0; i < 3; i++) cpu.mem.write32(0x3000 + 4 * i, 0x11111111 * (i + 1));
      const exit = cpu.run(1000);
      return { cpu, exit };
    });
    const [interp, jit] = runs;
    assert.equal(interp.exit, Exit.Halt);
    assert.equal(jit.exit, Exit.Halt);
    assert.deepEqual([...jit.cpu.regs], [...interp.cpu.regs]);
    assert.equal(jit.cpu.flags, interp.cpu.flags);
    assert.equal(jit.cpu.icount, interp.cpu.icount);
    assert.equal(jit.cpu.mem.read32(0x4008), 0x33333333, "REP MOVSD copied three dwords");
    assert.equal(jit.cpu.mem.read32(0x5000), interp.cpu.mem.read32(0x5000));
    // Everything up to the HLT (which the translator leaves to the run loop) is one block.
    assert.equal(jit.cpu.blocksTranslated, 1);
  });

  it("a fault after a stepped instruction counts what the block retired", () => {
    const prog = [
      0xb9,
      0x00,
      0x00,
      0x00,
      0x00, // mov ecx, 0
      0x0f,
      0xba,
      0xe0,
      0x02, //       bt eax, 2         (stepped)
      0x66,
      0x83,
      0xc0,
      0x01, //       add ax, 1         (stepped)
      0x40, //                         inc eax
      0xf7,
      0xf1, //                   div ecx           (#DE)
      0xf4,
    ];
    const [interp, jit] = [false, true].map((jit) => {
      const cpu = machine(prog, jit);
      cpu.exitVectors.fill(1);
      return { cpu, exit: cpu.run(1000) };
    });
    assert.equal(interp.exit, Exit.Exception);
    assert.equal(jit.exit, Exit.Exception);
    assert.equal(jit.cpu.exitVector, Vec.DE);
    assert.equal(jit.cpu.eip, CODE + 14, "EIP at the DIV");
    assert.equal(jit.cpu.icount, 4);
    assert.equal(jit.cpu.icount, interp.cpu.icount);
    assert.equal(jit.cpu.blockDone, 0);
    // Running on from the fault (the handler fixed nothing: it faults again) counts nothing more.
    assert.equal(jit.cpu.run(1000), Exit.Exception);
    assert.equal(jit.cpu.icount, 4);
  });
});
