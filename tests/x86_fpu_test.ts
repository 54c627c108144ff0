/**
 * The x87 FPU, driven through the real CPU: every test assembles x87
 * instruction bytes at CODE, ends them with int3, runs them, and checks what
 * they left in memory, in the status/control words and in EFLAGS.
 *
 * Expected values are worked out from the IEEE 754 / x87 layouts by hand (and
 * cross-checked once against a real x87), never read back from the emulator:
 * 1.0 as m80 is 3FFF 8000000000000000, the real indefinite is
 * FFFF C000000000000000, FLDPI stores C90FDAA22168C235, and so on.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { CPU, Exit } from "../lib/x86/cpu.ts";
import { PhysicalMemory } from "../lib/x86/memory.ts";
import {
  FSW_B,
  FSW_C0,
  FSW_C1,
  FSW_C2,
  FSW_C3,
  FSW_DE,
  FSW_ES,
  FSW_IE,
  FSW_OE,
  FSW_PE,
  FSW_SF,
  FSW_UE,
  FSW_ZE,
} from "../lib/x86/fpu.ts";

const CODE = 0x1000;
const DATA = 0x2000;
const SAVE = 0x3000;
const CS_SEL = 0x10, DS_SEL = 0x18;
const CC = FSW_C0 | FSW_C1 | FSW_C2 | FSW_C3;
const EXC = 0x3f;

// ---------------------------------------------------------------- a tiny assembler

/** x87 memory form with a disp32 absolute address: op, ModRM (reg, rm=101), disp32. */
function m(op: number, reg: number, addr: number): number[] {
  return [op, (reg << 3) | 5, addr & 0xff, (addr >> 8) & 0xff, (addr >> 16) & 0xff, addr >>> 24];
}
const FNINIT = [0xdb, 0xe3];
const FNCLEX = [0xdb, 0xe2];
const FNSTSW_AX = [0xdf, 0xe0];
const FWAIT = [0x9b];
const FLD1 = [0xd9, 0xe8];
const FLDZ = [0xd9, 0xee];
const FXAM = [0xd9, 0xe5];
const fldcw = (a: number) => m(0xd9, 5, a);
const fnstcw = (a: number) => m(0xd9, 7, a);
const fnstenv = (a: number) => m(0xd9, 6, a);
const fldenv = (a: number) => m(0xd9, 4, a);
const fld32 = (a: number) => m(0xd9, 0, a);
const fstp32 = (a: number) => m(0xd9, 3, a);
const fld64 = (a: number) => m(0xdd, 0, a);
const fst64 = (a: number) => m(0xdd, 2, a);
const fstp64 = (a: number) => m(0xdd, 3, a);
const fld80 = (a: number) => m(0xdb, 5, a);
const fstp80 = (a: number) => m(0xdb, 7, a);
const fild16 = (a: number) => m(0xdf, 0, a);
const fild32 = (a: number) => m(0xdb, 0, a);
const fild64 = (a: number) => m(0xdf, 5, a);
const fistp16 = (a: number) => m(0xdf, 3, a);
const fistp32 = (a: number) => m(0xdb, 3, a);
const fistp64 = (a: number) => m(0xdf, 7, a);
const fbld = (a: number) => m(0xdf, 4, a);
const fbstp = (a: number) => m(0xdf, 6, a);
const fnsave = (a: number) => m(0xdd, 6, a);
const frstor = (a: number) => m(0xdd, 4, a);
const fnstsw = (a: number) => m(0xdd, 7, a);
const fxsave = (a: number) => [0x0f, 0xae, ...m(0, 0, a).slice(1)];
const fxrstor = (a: number) => [0x0f, 0xae, ...m(0, 1, a).slice(1)];

// ---------------------------------------------------------------- harness

function newCpu(): CPU {
  const cpu = new CPU(new PhysicalMemory(1 << 20));
  cpu.setSegFlat(1, CS_SEL, 0);
  cpu.setSegFlat(3, DS_SEL, 0);
  return cpu;
}

/** Load `code` + int3 at CODE and run; returns the exit vector (3 = reached the int3). */
function exec(cpu: CPU, code: number[]): number {
  cpu.mem.load(CODE, new Uint8Array([...code, 0xcc]));
  cpu.eip = CODE;
  const r = cpu.run(100_000);
  assert.equal(r, Exit.Exception);
  return cpu.exitVector;
}

/** Run `code` and require that it reaches the int3. */
function run(cpu: CPU, code: number[]): void {
  const v = exec(cpu, code);
  assert.equal(v, 3, `stopped by vector ${v} at eip 0x${cpu.eip.toString(16)}`);
}

/** Put bytes given as a big-endian hex string (as the layouts are written) at `addr`, little-endian. */
function put(cpu: CPU, addr: number, hex: string): void {
  const clean = hex.replace(/[\s_]/g, "");
  const n = clean.length / 2;
  for (let i = 0; i < n; i++) {
    cpu.mem.u8[addr + n - 1 - i] = parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  }
}

/** Read n bytes at addr as a big-endian hex string (most significant byte first). */
function get(cpu: CPU, addr: number, n: number): string {
  let s = "";
  for (let i = n - 1; i >= 0; i--) s += cpu.mem.u8[addr + i].toString(16).padStart(2, "0");
  return s;
}

/** Bytes at addr in memory order, as hex. */
function bytes(cpu: CPU, addr: number, n: number): string {
  let s = "";
  for (let i = 0; i < n; i++) s += cpu.mem.u8[addr + i].toString(16).padStart(2, "0");
  return s;
}

function putF64(cpu: CPU, addr: number, x: number): void {
  cpu.mem.dv.setFloat64(addr, x, true);
}

function getF64(cpu: CPU, addr: number): number {
  return cpu.mem.dv.getFloat64(addr, true);
}

function putU16(cpu: CPU, addr: number, v: number): void {
  cpu.mem.dv.setUint16(addr, v, true);
}

function u16(cpu: CPU, addr: number): number {
  return cpu.mem.dv.getUint16(addr, true);
}

/** Status word as FNSTSW AX leaves it. */
function fsw(cpu: CPU): number {
  run(cpu, FNSTSW_AX);
  return cpu.regs16[0];
}

/** Control word with rounding control rc (0 nearest, 1 down, 2 up, 3 zero), all masked. */
function cwRc(rc: number): number {
  return 0x037f | (rc << 10);
}

// ---------------------------------------------------------------- tests

describe("x87: initialisation and the Linux probe", () => {
  it("fninit; fnstsw; fnstcw passes fpu__init_system_early_generic (FSW 0, FCW&0x103F = 0x3F)", () => {
    const cpu = newCpu();
    // Dirty the unit first: all exceptions unmasked, a stack entry, a pending flag.
    putU16(cpu, DATA, 0x0000);
    run(cpu, [...FLD1, ...FLDZ, 0xde, 0xf9, ...fldcw(DATA)]); // fdivp: 1/0 sets ZE (masked); then unmask all
    run(cpu, [...FNINIT, ...FNSTSW_AX, ...fnstcw(DATA + 2)]);
    assert.equal(cpu.regs16[0], 0);
    assert.equal(u16(cpu, DATA + 2) & 0x103f, 0x003f);
    assert.equal(u16(cpu, DATA + 2), 0x037f);
    assert.equal(cpu.fpu.tw, 0xffff);
  });

  it("FLDCW keeps reserved bits clear and bit 6 set", () => {
    const cpu = newCpu();
    putU16(cpu, DATA, 0xffff);
    putU16(cpu, DATA + 2, 0x0000);
    run(cpu, [
      ...FNINIT,
      ...fldcw(DATA),
      ...fnstcw(DATA + 4),
      ...fldcw(DATA + 2),
      ...fnstcw(DATA + 6),
    ]);
    assert.equal(u16(cpu, DATA + 4), 0x1f7f);
    assert.equal(u16(cpu, DATA + 6), 0x0040);
  });

  it("fnstsw m16 stores the status word with TOP", () => {
    const cpu = newCpu();
    run(cpu, [...FNINIT, ...FLD1, ...FLD1, ...fnstsw(DATA)]);
    assert.equal(u16(cpu, DATA), 6 << 11);
  });
});

describe("x87: arithmetic", () => {
  it("gets the Pentium FDIV check right (4195835 / 3145727)", () => {
    const cpu = newCpu();
    putF64(cpu, DATA, 4195835);
    putF64(cpu, DATA + 8, 3145727);
    run(cpu, [
      ...FNINIT,
      ...fld64(DATA),
      ...m(0xdc, 6, DATA + 8), // fdiv qword [y]
      ...fst64(DATA + 16),
      ...m(0xdc, 1, DATA + 8), // fmul qword [y]
      ...m(0xdc, 5, DATA), // fsubr qword [x]: x - (x/y)*y
      ...fstp64(DATA + 24),
    ]);
    assert.equal(get(cpu, DATA + 16, 8), "3ff557541c7c6b43"); // 1.333820449136241 (the flawed chip: 1.33373...)
    assert.equal(get(cpu, DATA + 24, 8), "0000000000000000");
  });

  it("register forms, reversed DC/DE encodings and popping forms", () => {
    const cpu = newCpu();
    putF64(cpu, DATA, 10);
    putF64(cpu, DATA + 8, 4);
    // ST0 = 4, ST1 = 10
    run(cpu, [...FNINIT, ...fld64(DATA), ...fld64(DATA + 8)]);
    run(cpu, [0xd8, 0xe1, ...fst64(DATA + 16)]); // fsub st0, st1: 4 - 10
    assert.equal(getF64(cpu, DATA + 16), -6);
    run(cpu, [
      ...FNINIT,
      ...fld64(DATA),
      ...fld64(DATA + 8),
      0xdc,
      0xe9,
      0xdd,
      0xd8,
      ...fstp64(DATA + 16),
    ]);
    // dc e9 = fsub st1, st0: st1 = 10 - 4; dd d8 = fstp st0 (drop 4)
    assert.equal(getF64(cpu, DATA + 16), 6);
    run(cpu, [...FNINIT, ...fld64(DATA), ...fld64(DATA + 8), 0xde, 0xf9, ...fstp64(DATA + 16)]);
    // de f9 = fdivp st1, st0: 10 / 4, pop
    assert.equal(getF64(cpu, DATA + 16), 2.5);
    assert.equal(fsw(cpu) & 0x3800, 0); // stack empty again: TOP back to 0
    run(cpu, [...FNINIT, ...fld64(DATA), ...fld64(DATA + 8), 0xde, 0xf1, ...fstp64(DATA + 16)]);
    // de f1 = fdivrp st1, st0: 4 / 10
    assert.equal(getF64(cpu, DATA + 16), 0.4);
    // integer operands: fiadd m16, fimul m32, fisubr m16
    putU16(cpu, DATA + 32, 0xfffd); // -3
    cpu.mem.dv.setInt32(DATA + 36, 7, true);
    run(cpu, [
      ...FNINIT,
      ...fld64(DATA), // 10
      ...m(0xde, 0, DATA + 32), // + (-3) = 7
      ...m(0xda, 1, DATA + 36), // * 7 = 49
      ...m(0xde, 5, DATA + 32), // -3 - 49 = -52
      ...fstp64(DATA + 16),
    ]);
    assert.equal(getF64(cpu, DATA + 16), -52);
  });

  it("honours RC in arithmetic and reports PE with C1 = rounded up", () => {
    const cpu = newCpu();
    putF64(cpu, DATA, 1);
    putF64(cpu, DATA + 8, 3);
    const results: string[] = [];
    const sws: number[] = [];
    for (let rc = 0; rc < 4; rc++) {
      putU16(cpu, DATA + 16, cwRc(rc));
      run(cpu, [
        ...FNINIT,
        ...fldcw(DATA + 16),
        ...fld64(DATA),
        ...m(0xdc, 6, DATA + 8),
        ...FNSTSW_AX, // before the store, which sets C1 itself
        ...fstp64(DATA + 24),
      ]);
      results.push(get(cpu, DATA + 24, 8));
      sws.push(cpu.regs16[0]);
    }
    // 1/3 = 0x3FD5555555555555|0101...: nearest and down and chop truncate, up increments.
    assert.deepEqual(results, [
      "3fd5555555555555",
      "3fd5555555555555",
      "3fd5555555555556",
      "3fd5555555555555",
    ]);
    for (const sw of sws) assert.equal(sw & FSW_PE, FSW_PE);
    assert.deepEqual(sws.map((s) => (s & FSW_C1) !== 0), [false, false, true, false]);
    // 1 + 2^-60: exact sum needs 61 bits.
    putF64(cpu, DATA + 8, 2 ** -60);
    putU16(cpu, DATA + 16, cwRc(2));
    run(cpu, [
      ...FNINIT,
      ...fldcw(DATA + 16),
      ...fld64(DATA),
      ...m(0xdc, 0, DATA + 8),
      ...fstp64(DATA + 24),
    ]);
    assert.equal(get(cpu, DATA + 24, 8), "3ff0000000000001");
    run(cpu, [...FNINIT, ...fld64(DATA), ...m(0xdc, 0, DATA + 8), ...fstp64(DATA + 24)]);
    assert.equal(get(cpu, DATA + 24, 8), "3ff0000000000000");
    // An exact result raises no PE.
    putF64(cpu, DATA + 8, 0.5);
    run(cpu, [...FNINIT, ...fld64(DATA), ...m(0xdc, 0, DATA + 8), ...fstp64(DATA + 24)]);
    assert.equal(fsw(cpu) & EXC, 0);
    assert.equal(getF64(cpu, DATA + 24), 1.5);
  });

  it("x - x is +0, but -0 when rounding down", () => {
    const cpu = newCpu();
    putF64(cpu, DATA, 5);
    putU16(cpu, DATA + 8, cwRc(1));
    run(cpu, [...FNINIT, ...fld64(DATA), 0xd8, 0xe0, ...fstp64(DATA + 16)]); // fsub st0, st0
    assert.equal(get(cpu, DATA + 16, 8), "0000000000000000");
    run(cpu, [...FNINIT, ...fldcw(DATA + 8), ...fld64(DATA), 0xd8, 0xe0, ...fstp64(DATA + 16)]);
    assert.equal(get(cpu, DATA + 16, 8), "8000000000000000");
  });

  it("division by zero (ZE, signed infinity) and invalid operations (IE, indefinite)", () => {
    const cpu = newCpu();
    putF64(cpu, DATA, -2);
    run(cpu, [...FNINIT, ...FLDZ, ...fld64(DATA), 0xd8, 0xf1, ...fstp64(DATA + 8)]); // -2 / +0
    assert.equal(get(cpu, DATA + 8, 8), "fff0000000000000");
    assert.equal(fsw(cpu) & EXC, FSW_ZE);
    run(cpu, [...FNINIT, ...FLDZ, ...FLDZ, 0xd8, 0xf1, ...fstp64(DATA + 8)]); // 0 / 0
    assert.equal(get(cpu, DATA + 8, 8), "fff8000000000000");
    assert.equal(fsw(cpu) & EXC, FSW_IE);
    run(cpu, [...FNINIT, ...fld64(DATA), 0xd9, 0xfa, ...fstp64(DATA + 8)]); // fsqrt(-2)
    assert.equal(get(cpu, DATA + 8, 8), "fff8000000000000");
    assert.equal(fsw(cpu) & EXC, FSW_IE);
  });

  it("FSQRT is exact where it can be and flags PE where not", () => {
    const cpu = newCpu();
    putF64(cpu, DATA, 2);
    putF64(cpu, DATA + 8, 6.25);
    run(cpu, [...FNINIT, ...fld64(DATA), 0xd9, 0xfa, ...fstp64(DATA + 16)]);
    assert.equal(get(cpu, DATA + 16, 8), "3ff6a09e667f3bcd"); // sqrt(2) rounded to nearest
    assert.equal(fsw(cpu) & FSW_PE, FSW_PE);
    run(cpu, [...FNINIT, ...fld64(DATA + 8), 0xd9, 0xfa, ...fstp64(DATA + 16)]);
    assert.equal(getF64(cpu, DATA + 16), 2.5);
    assert.equal(fsw(cpu) & EXC, 0);
  });

  it("FCHS, FABS, FXCH, FLD ST(i), FST ST(i)", () => {
    const cpu = newCpu();
    putF64(cpu, DATA, -3);
    run(cpu, [
      ...FNINIT,
      ...fld64(DATA), // -3
      ...FLD1, // 1, -3
      0xd9,
      0xc9, // fxch: -3, 1
      0xd9,
      0xe1, // fabs: 3, 1
      0xd9,
      0xc1, // fld st1: 1, 3, 1
      0xd9,
      0xe0, // fchs: -1, 3, 1
      0xdd,
      0xd2, // fst st2: -1, 3, -1
      ...fstp64(DATA + 8),
      ...fstp64(DATA + 16),
      ...fstp64(DATA + 24),
    ]);
    assert.deepEqual([getF64(cpu, DATA + 8), getF64(cpu, DATA + 16), getF64(cpu, DATA + 24)], [
      -1,
      3,
      -1,
    ]);
  });

  it("FSCALE, FXTRACT and the constants", () => {
    const cpu = newCpu();
    putF64(cpu, DATA, 4);
    putF64(cpu, DATA + 8, 3);
    run(cpu, [...FNINIT, ...fld64(DATA), ...fld64(DATA + 8), 0xd9, 0xfd, ...fstp64(DATA + 16)]);
    assert.equal(getF64(cpu, DATA + 16), 48);
    putF64(cpu, DATA, -1074);
    run(cpu, [...FNINIT, ...fld64(DATA), ...FLD1, 0xd9, 0xfd, ...fstp64(DATA + 16)]);
    assert.equal(get(cpu, DATA + 16, 8), "0000000000000001"); // 2^-1074, exact: no UE
    assert.equal(fsw(cpu) & (FSW_UE | FSW_PE), 0);
    putF64(cpu, DATA, 10);
    run(cpu, [...FNINIT, ...fld64(DATA), 0xd9, 0xf4, ...fstp64(DATA + 16), ...fstp64(DATA + 24)]);
    assert.equal(getF64(cpu, DATA + 16), 1.25);
    assert.equal(getF64(cpu, DATA + 24), 3);
    // Constants as the P6 stores them, and their RC-dependent last bit.
    run(cpu, [...FNINIT, 0xd9, 0xeb, ...fstp80(DATA)]);
    assert.equal(get(cpu, DATA, 10), "4000c90fdaa22168c235");
    putU16(cpu, DATA + 16, cwRc(1));
    run(cpu, [...FNINIT, ...fldcw(DATA + 16), 0xd9, 0xeb, ...fstp80(DATA)]);
    assert.equal(get(cpu, DATA, 10), "4000c90fdaa22168c234");
    putU16(cpu, DATA + 16, cwRc(2));
    run(cpu, [...FNINIT, ...fldcw(DATA + 16), 0xd9, 0xe9, ...fstp80(DATA)]);
    assert.equal(get(cpu, DATA, 10), "4000d49a784bcd1b8aff"); // log2(10) rounded up
    run(cpu, [...FNINIT, 0xd9, 0xed, ...fstp80(DATA), 0xd9, 0xea, ...fstp80(DATA + 10)]);
    assert.equal(get(cpu, DATA, 10), "3ffeb17217f7d1cf79ac"); // ln 2
    assert.equal(get(cpu, DATA + 10, 10), "3fffb8aa3b295c17f0bc"); // log2(e)
    run(cpu, [...FNINIT, 0xd9, 0xec, ...fstp64(DATA)]);
    assert.equal(get(cpu, DATA, 8), "3fd34413509f79ff"); // log10(2): 9A209A84FBCFF799 rounded to 53 bits
    run(cpu, [...FNINIT, 0xd9, 0xeb, ...fstp64(DATA)]);
    assert.equal(get(cpu, DATA, 8), "400921fb54442d18"); // pi as a double
  });

  it("transcendentals: FSIN/FCOS/FSINCOS/FPTAN/FPATAN/F2XM1/FYL2X/FYL2XP1 and the C2 range rule", () => {
    const cpu = newCpu();
    putF64(cpu, DATA, 0.5);
    run(cpu, [...FNINIT, ...fld64(DATA), 0xd9, 0xfb, ...fstp64(DATA + 8), ...fstp64(DATA + 16)]);
    assert.ok(Math.abs(getF64(cpu, DATA + 8) - 0.8775825618903728) < 1e-15); // cos pushed on top
    assert.ok(Math.abs(getF64(cpu, DATA + 16) - 0.479425538604203) < 1e-15);
    run(cpu, [...FNINIT, ...fld64(DATA), 0xd9, 0xf2, ...fstp64(DATA + 8), ...fstp64(DATA + 16)]);
    assert.equal(getF64(cpu, DATA + 8), 1); // FPTAN pushes 1.0
    assert.ok(Math.abs(getF64(cpu, DATA + 16) - 0.5463024898437905) < 1e-15);
    run(cpu, [...FNINIT, ...FLD1, ...FLD1, 0xd9, 0xf3, ...fstp64(DATA + 8)]); // atan2(1, 1)
    assert.ok(Math.abs(getF64(cpu, DATA + 8) - Math.PI / 4) < 1e-15);
    run(cpu, [...FNINIT, ...fld64(DATA), 0xd9, 0xf0, ...fstp64(DATA + 8)]); // 2^0.5 - 1
    assert.ok(Math.abs(getF64(cpu, DATA + 8) - 0.41421356237309503) < 1e-15);
    putF64(cpu, DATA + 24, 8);
    putF64(cpu, DATA + 32, 3);
    run(cpu, [
      ...FNINIT,
      ...fld64(DATA + 32),
      ...fld64(DATA + 24),
      0xd9,
      0xf1,
      ...fstp64(DATA + 8),
    ]);
    assert.ok(Math.abs(getF64(cpu, DATA + 8) - 9) < 1e-14); // 3 * log2(8)
    assert.equal(fsw(cpu) & 0x3800, 0); // popped
    run(cpu, [...FNINIT, ...FLD1, ...FLD1, 0xd9, 0xf9, ...fstp64(DATA + 8)]); // 1 * log2(1 + 1)
    assert.ok(Math.abs(getF64(cpu, DATA + 8) - 1) < 1e-15);
    // |x| >= 2^63: C2 = 1 and ST(0) unchanged.
    putF64(cpu, DATA, 2 ** 63);
    run(cpu, [...FNINIT, ...fld64(DATA), 0xd9, 0xfe, ...FNSTSW_AX, ...fstp64(DATA + 8)]);
    assert.equal(cpu.regs16[0] & FSW_C2, FSW_C2);
    assert.equal(getF64(cpu, DATA + 8), 2 ** 63);
    putF64(cpu, DATA, 1);
    run(cpu, [...FNINIT, ...fld64(DATA), 0xd9, 0xff, ...FNSTSW_AX, ...fstp64(DATA + 8)]);
    assert.equal(cpu.regs16[0] & FSW_C2, 0);
    assert.ok(Math.abs(getF64(cpu, DATA + 8) - 0.5403023058681398) < 1e-15);
  });
});

describe("x87: loads and stores", () => {
  it("m32fp / m64fp / m80fp layouts", () => {
    const cpu = newCpu();
    put(cpu, DATA, "3f800000"); // 1.0f
    run(cpu, [...FNINIT, ...fld32(DATA), ...fstp80(DATA + 16)]);
    assert.equal(get(cpu, DATA + 16, 10), "3fff8000000000000000");
    put(cpu, DATA, "c0200000"); // -2.5f
    run(cpu, [...FNINIT, ...fld32(DATA), ...fstp64(DATA + 16)]);
    assert.equal(get(cpu, DATA + 16, 8), "c004000000000000");
    put(cpu, DATA, "3fb999999999999a"); // 0.1
    run(cpu, [...FNINIT, ...fld64(DATA), ...fstp80(DATA + 16)]);
    assert.equal(get(cpu, DATA + 16, 10), "3ffbccccccccccccd000");
    put(cpu, DATA, "8000000000000000"); // -0.0
    run(cpu, [...FNINIT, ...fld64(DATA), ...fstp80(DATA + 16)]);
    assert.equal(get(cpu, DATA + 16, 10), "80000000000000000000");
    put(cpu, DATA, "7f800000"); // +inf
    run(cpu, [...FNINIT, ...fld32(DATA), ...fstp80(DATA + 16)]);
    assert.equal(get(cpu, DATA + 16, 10), "7fff8000000000000000");
    put(cpu, DATA, "4008000000000000"); // 3.0
    run(cpu, [...FNINIT, ...fld64(DATA), ...fstp32(DATA + 16)]);
    assert.equal(get(cpu, DATA + 16, 4), "40400000");
    assert.equal(fsw(cpu) & EXC, 0);
  });

  it("denormal m32/m64 operands raise DE and are normalised in m80", () => {
    const cpu = newCpu();
    put(cpu, DATA, "0000000000000001"); // 2^-1074
    run(cpu, [...FNINIT, ...fld64(DATA), ...FNSTSW_AX, ...fstp80(DATA + 16)]);
    assert.equal(cpu.regs16[0] & EXC, FSW_DE);
    assert.equal(get(cpu, DATA + 16, 10), "3bcd8000000000000000"); // 16383 - 1074 = 0x3BCD
    put(cpu, DATA, "00000001"); // 2^-149
    run(cpu, [...FNINIT, ...fld32(DATA), ...fstp64(DATA + 16)]);
    assert.equal(get(cpu, DATA + 16, 8), "36a0000000000000");
  });

  it("m80 -> float64 rounding follows RC; m80 round trips are exact", () => {
    const cpu = newCpu();
    const X = "3fff8000000000000401"; // 1 + 2^-53 + 2^-63
    const Y = "3fff8000000000000400"; // 1 + 2^-53 (a tie)
    const NY = "bfff8000000000000400";
    const cases: [string, number, string][] = [
      [X, 0, "3ff0000000000001"],
      [X, 1, "3ff0000000000000"],
      [X, 2, "3ff0000000000001"],
      [X, 3, "3ff0000000000000"],
      [Y, 0, "3ff0000000000000"],
      [Y, 2, "3ff0000000000001"],
      [NY, 1, "bff0000000000001"],
      [NY, 3, "bff0000000000000"],
    ];
    for (const [src, rc, want] of cases) {
      put(cpu, DATA, src);
      putU16(cpu, DATA + 32, cwRc(rc));
      run(cpu, [...FNINIT, ...fldcw(DATA + 32), ...fld80(DATA), ...fstp64(DATA + 16)]);
      assert.equal(get(cpu, DATA + 16, 8), want, `${src} rc=${rc}`);
      assert.equal(fsw(cpu) & EXC, FSW_PE);
    }
    // Bit-exact 80-bit copies: extra precision, huge exponent, denormal, pseudo-denormal, SNaN, unnormal.
    for (
      const v of [
        X,
        "7ffe8000000000000001",
        "00000000000000000001",
        "00008000000000000000",
        "7fff8000000000000001",
        "ffffc0000000deadbeef",
        "40004000000000000000",
      ]
    ) {
      put(cpu, DATA, v);
      run(cpu, [...FNINIT, ...fld80(DATA), 0xd9, 0xc0, 0xdd, 0xd9, ...fstp80(DATA + 16)]); // via fld st0; fstp st1
      assert.equal(get(cpu, DATA + 16, 10), v);
      assert.equal(fsw(cpu) & EXC, 0, v); // FLD m80 and FSTP m80 signal nothing, not even for an SNaN
    }
  });

  it("m32 stores round per RC and overflow per RC", () => {
    const cpu = newCpu();
    putF64(cpu, DATA, 1 + 2 ** -24 + 2 ** -30);
    const want = ["3f800001", "3f800000", "3f800001", "3f800000"];
    for (let rc = 0; rc < 4; rc++) {
      putU16(cpu, DATA + 32, cwRc(rc));
      run(cpu, [...FNINIT, ...fldcw(DATA + 32), ...fld64(DATA), ...fstp32(DATA + 16)]);
      assert.equal(get(cpu, DATA + 16, 4), want[rc]);
    }
    putF64(cpu, DATA, 1e300);
    run(cpu, [...FNINIT, ...fld64(DATA), ...fstp32(DATA + 16)]);
    assert.equal(get(cpu, DATA + 16, 4), "7f800000");
    assert.equal(fsw(cpu) & EXC, FSW_OE | FSW_PE);
    putU16(cpu, DATA + 32, cwRc(3));
    run(cpu, [...FNINIT, ...fldcw(DATA + 32), ...fld64(DATA), ...fstp32(DATA + 16)]);
    assert.equal(get(cpu, DATA + 16, 4), "7f7fffff");
    putF64(cpu, DATA, 1e-50);
    run(cpu, [...FNINIT, ...fld64(DATA), ...fstp32(DATA + 16)]);
    assert.equal(get(cpu, DATA + 16, 4), "00000000");
    assert.equal(fsw(cpu) & EXC, FSW_UE | FSW_PE);
  });

  it("NaNs keep sign and payload; SNaNs are quieted with IE", () => {
    const cpu = newCpu();
    for (const v of ["7ff8dead0000beef", "fff8000000000001", "7ff8000000000000"]) {
      put(cpu, DATA, v);
      run(cpu, [...FNINIT, ...fld64(DATA), ...fstp64(DATA + 16)]);
      assert.equal(get(cpu, DATA + 16, 8), v);
    }
    put(cpu, DATA, "7fc00001");
    run(cpu, [...FNINIT, ...fld32(DATA), ...fstp64(DATA + 16)]);
    assert.equal(get(cpu, DATA + 16, 8), "7ff8000020000000");
    put(cpu, DATA, "7f800001"); // SNaN
    run(cpu, [...FNINIT, ...fld32(DATA), ...FNSTSW_AX, ...fstp32(DATA + 16)]);
    assert.equal(cpu.regs16[0] & EXC, FSW_IE);
    assert.equal(get(cpu, DATA + 16, 4), "7fc00001");
    put(cpu, DATA, "7ff8dead0000beef");
    run(cpu, [...FNINIT, ...fld64(DATA), 0xd9, 0xe0, ...fstp64(DATA + 16)]); // FCHS flips a NaN's sign
    assert.equal(get(cpu, DATA + 16, 8), "fff8dead0000beef");
  });

  it("NaN propagation: QNaN operand, SNaN quieted with IE, the larger significand of two", () => {
    const cpu = newCpu();
    put(cpu, DATA, "7ff8000000000123");
    run(cpu, [...FNINIT, ...FLD1, ...m(0xdc, 0, DATA), ...fstp64(DATA + 16)]);
    assert.equal(get(cpu, DATA + 16, 8), "7ff8000000000123");
    assert.equal(fsw(cpu) & EXC, 0);
    put(cpu, DATA, "7ff0000000000001");
    run(cpu, [...FNINIT, ...FLD1, ...m(0xdc, 1, DATA), ...fstp64(DATA + 16)]);
    assert.equal(get(cpu, DATA + 16, 8), "7ff8000000000001");
    assert.equal(fsw(cpu) & EXC, FSW_IE);
    put(cpu, DATA, "7ff8000000000002");
    put(cpu, DATA + 8, "fff8000000000001");
    run(cpu, [...FNINIT, ...fld64(DATA), ...m(0xdc, 0, DATA + 8), ...fstp64(DATA + 16)]);
    assert.equal(get(cpu, DATA + 16, 8), "7ff8000000000002");
    run(cpu, [...FNINIT, ...fld64(DATA + 8), ...m(0xdc, 0, DATA), ...fstp64(DATA + 16)]);
    assert.equal(get(cpu, DATA + 16, 8), "7ff8000000000002");
    // An SNaN and a QNaN: the QNaN wins even with the smaller significand (IE for the SNaN).
    put(cpu, DATA + 32, "7fff8000000000000005");
    put(cpu, DATA + 48, "7fffc000000000000001");
    for (const [first, second] of [[DATA + 32, DATA + 48], [DATA + 48, DATA + 32]]) {
      run(cpu, [
        ...FNINIT,
        ...fld80(first),
        ...fld80(second),
        0xde,
        0xc1,
        ...FNSTSW_AX,
        ...fstp80(DATA + 64),
      ]);
      assert.equal(get(cpu, DATA + 64, 10), "7fffc000000000000001");
      assert.equal(cpu.regs16[0] & EXC, FSW_IE);
    }
    // A one-operand instruction quiets an SNaN and signals IE.
    run(cpu, [...FNINIT, ...fld80(DATA + 32), 0xd9, 0xfa, ...FNSTSW_AX, ...fstp80(DATA + 64)]);
    assert.equal(get(cpu, DATA + 64, 10), "7fffc000000000000005");
    assert.equal(cpu.regs16[0] & EXC, FSW_IE);
    // Unsupported encodings (an unnormal) are invalid operands: the indefinite.
    put(cpu, DATA, "40004000000000000000");
    run(cpu, [...FNINIT, ...fld80(DATA), 0xd8, 0xc0, ...fstp64(DATA + 16)]);
    assert.equal(get(cpu, DATA + 16, 8), "fff8000000000000");
    assert.equal(fsw(cpu) & EXC, FSW_IE);
    // An 80-bit denormal operand raises DE.
    put(cpu, DATA, "00000000000000000001");
    run(cpu, [...FNINIT, ...FLD1, ...fld80(DATA), 0xd8, 0xc1]);
    assert.equal(fsw(cpu) & EXC, FSW_DE);
  });

  it("integers: m16/m32/m64 round trips, exact 64-bit copies, integer indefinite", () => {
    const cpu = newCpu();
    put(cpu, DATA, "cfc7"); // -12345
    run(cpu, [...FNINIT, ...fild16(DATA), ...fistp32(DATA + 16)]);
    assert.equal(get(cpu, DATA + 16, 4), "ffffcfc7");
    put(cpu, DATA, "80000000");
    run(cpu, [...FNINIT, ...fild32(DATA), ...fstp64(DATA + 16)]);
    assert.equal(getF64(cpu, DATA + 16), -2147483648);
    for (
      const v of ["01b69b4ba630f34e", "8000000000000000", "7fffffffffffffff", "fffffffffffffffe"]
    ) {
      put(cpu, DATA, v);
      run(cpu, [...FNINIT, ...fild64(DATA), ...fistp64(DATA + 16)]);
      assert.equal(get(cpu, DATA + 16, 8), v);
      assert.equal(fsw(cpu) & EXC, 0, v);
    }
    put(cpu, DATA, "4000000000000001"); // 2^62 + 1
    run(cpu, [...FNINIT, ...fild64(DATA), ...fstp64(DATA + 16)]);
    assert.equal(get(cpu, DATA + 16, 8), "43d0000000000000");
    putU16(cpu, DATA + 32, cwRc(2));
    run(cpu, [...FNINIT, ...fldcw(DATA + 32), ...fild64(DATA), ...fstp64(DATA + 16)]);
    assert.equal(get(cpu, DATA + 16, 8), "43d0000000000001");
    // Out of range and NaN: IE and the integer indefinite.
    putF64(cpu, DATA, 40000);
    run(cpu, [...FNINIT, ...fld64(DATA), ...fistp16(DATA + 16)]);
    assert.equal(get(cpu, DATA + 16, 2), "8000");
    assert.equal(fsw(cpu) & EXC, FSW_IE);
    putF64(cpu, DATA, NaN);
    run(cpu, [...FNINIT, ...fld64(DATA), ...fistp32(DATA + 16)]);
    assert.equal(get(cpu, DATA + 16, 4), "80000000");
    putF64(cpu, DATA, 2 ** 63);
    run(cpu, [...FNINIT, ...fld64(DATA), ...fistp64(DATA + 16)]);
    assert.equal(get(cpu, DATA + 16, 8), "8000000000000000");
    assert.equal(fsw(cpu) & EXC, FSW_IE);
    putF64(cpu, DATA, -32768.4);
    run(cpu, [...FNINIT, ...fld64(DATA), ...fistp16(DATA + 16)]);
    assert.equal(get(cpu, DATA + 16, 2), "8000");
    assert.equal(fsw(cpu) & EXC, FSW_PE);
  });

  it("FIST and FRNDINT round per RC (with PE and C1)", () => {
    const cpu = newCpu();
    const xs = [2.5, -2.5, 3.5, -0.5, 1.7, -1.7];
    const want = [
      [2, -2, 4, -0, 2, -2], // nearest even
      [2, -3, 3, -1, 1, -2], // down
      [3, -2, 4, -0, 2, -1], // up
      [2, -2, 3, -0, 1, -1], // toward zero
    ];
    for (let rc = 0; rc < 4; rc++) {
      putU16(cpu, DATA + 64, cwRc(rc));
      for (let k = 0; k < xs.length; k++) {
        putF64(cpu, DATA, xs[k]);
        run(cpu, [
          ...FNINIT,
          ...fldcw(DATA + 64),
          ...fld64(DATA),
          ...fistp32(DATA + 16),
          ...FNSTSW_AX,
        ]);
        const sw = cpu.regs16[0];
        assert.equal(
          cpu.mem.dv.getInt32(DATA + 16, true),
          want[rc][k] + 0,
          `fist ${xs[k]} rc=${rc}`,
        );
        assert.equal(sw & EXC, FSW_PE);
        assert.equal(
          (sw & FSW_C1) !== 0,
          Math.abs(want[rc][k]) > Math.abs(xs[k]),
          `C1 ${xs[k]} rc=${rc}`,
        );
        run(cpu, [
          ...FNINIT,
          ...fldcw(DATA + 64),
          ...fld64(DATA),
          0xd9,
          0xfc,
          ...fstp64(DATA + 16),
        ]);
        assert.ok(Object.is(getF64(cpu, DATA + 16), want[rc][k]), `frndint ${xs[k]} rc=${rc}`);
      }
    }
    putF64(cpu, DATA, 7);
    run(cpu, [...FNINIT, ...fld64(DATA), 0xd9, 0xfc, ...fistp16(DATA + 16)]);
    assert.equal(u16(cpu, DATA + 16), 7);
    assert.equal(fsw(cpu) & EXC, 0);
  });

  it("packed BCD: FBLD/FBSTP, 18 digits exactly, sign, rounding, indefinite", () => {
    const cpu = newCpu();
    put(cpu, DATA, "00123456789012345678");
    run(cpu, [...FNINIT, ...fbld(DATA), ...fistp64(DATA + 16)]);
    assert.equal(get(cpu, DATA + 16, 8), "01b69b4ba630f34e"); // 123456789012345678
    run(cpu, [...FNINIT, ...fbld(DATA), ...fbstp(DATA + 32)]);
    assert.equal(get(cpu, DATA + 32, 10), "00123456789012345678");
    put(cpu, DATA, "80000000000000000042");
    run(cpu, [...FNINIT, ...fbld(DATA), ...fistp32(DATA + 16)]);
    assert.equal(cpu.mem.dv.getInt32(DATA + 16, true), -42);
    putF64(cpu, DATA, -7.5);
    run(cpu, [...FNINIT, ...fld64(DATA), ...fbstp(DATA + 32)]);
    assert.equal(get(cpu, DATA + 32, 10), "80000000000000000008");
    putF64(cpu, DATA, 1e18);
    run(cpu, [...FNINIT, ...fld64(DATA), ...fbstp(DATA + 32)]);
    assert.equal(get(cpu, DATA + 32, 10), "ffffc000000000000000");
    assert.equal(fsw(cpu) & EXC, FSW_IE);
  });
});

describe("x87: compares and classification", () => {
  it("FCOM/FUCOM set C3 C2 C0; unordered and IE rules", () => {
    const cpu = newCpu();
    putF64(cpu, DATA, 2);
    putF64(cpu, DATA + 8, 1);
    putF64(cpu, DATA + 16, NaN);
    const cc = (code: number[]) => {
      run(cpu, [...FNINIT, ...code, ...FNSTSW_AX]);
      return cpu.regs16[0] & (CC | EXC);
    };
    assert.equal(cc([...fld64(DATA), ...fld64(DATA + 8), 0xd8, 0xd1]), FSW_C0); // 1 < 2
    assert.equal(cc([...fld64(DATA + 8), ...fld64(DATA), 0xd8, 0xd1]), 0); // 2 > 1
    assert.equal(cc([...fld64(DATA), ...fld64(DATA), 0xd8, 0xd1]), FSW_C3); // equal
    assert.equal(cc([...fld64(DATA), ...fld64(DATA + 16), 0xdd, 0xe1]), FSW_C3 | FSW_C2 | FSW_C0); // FUCOM: no IE
    assert.equal(
      cc([...fld64(DATA), ...fld64(DATA + 16), 0xd8, 0xd1]),
      FSW_C3 | FSW_C2 | FSW_C0 | FSW_IE,
    );
    assert.equal(cc([...fld64(DATA), ...m(0xdc, 2, DATA + 8)]), 0); // fcom m64: 2 > 1
    putU16(cpu, DATA + 24, 5);
    assert.equal(cc([...fld64(DATA), ...m(0xde, 2, DATA + 24)]), FSW_C0); // ficom m16: 2 < 5
    // -0 == +0
    put(cpu, DATA + 32, "8000000000000000");
    assert.equal(cc([...FLDZ, ...fld64(DATA + 32), 0xd8, 0xd1]), FSW_C3);
    // FTST
    putF64(cpu, DATA + 40, -3);
    assert.equal(cc([...fld64(DATA + 40), 0xd9, 0xe4]), FSW_C0);
    // FCOMPP pops both
    run(cpu, [...FNINIT, ...FLD1, ...FLD1, 0xde, 0xd9]);
    assert.equal(fsw(cpu) & 0x3800, 0);
    assert.equal(cpu.fpu.tw, 0xffff);
    // FUCOMPP: IE for an SNaN (loaded from m80, which does not quiet it), not for a QNaN
    put(cpu, DATA + 48, "7fff8000000000000001");
    assert.equal(cc([...FLD1, ...fld80(DATA + 48), 0xda, 0xe9]), FSW_C3 | FSW_C2 | FSW_C0 | FSW_IE);
    put(cpu, DATA + 48, "7fffc000000000000001");
    assert.equal(cc([...FLD1, ...fld80(DATA + 48), 0xda, 0xe9]), FSW_C3 | FSW_C2 | FSW_C0);
    // an 80-bit comparison finer than float64
    put(cpu, DATA + 64, "3fff8000000000000001");
    put(cpu, DATA + 80, "3fff8000000000000000");
    assert.equal(cc([...fld80(DATA + 80), ...fld80(DATA + 64), 0xd8, 0xd1]), 0); // 1+2^-63 > 1
  });

  it("FCOMI/FUCOMI/FCOMIP set ZF PF CF and clear OF SF AF", () => {
    const cpu = newCpu();
    putF64(cpu, DATA, 2);
    putF64(cpu, DATA + 8, 1);
    putF64(cpu, DATA + 16, NaN);
    const ALL = 0x8d5; // OF SF ZF AF PF CF
    const flags = (code: number[]) => {
      cpu.setEflags(0x2 | ALL);
      run(cpu, [...FNINIT, ...code]);
      return cpu.getEflags() & ALL;
    };
    assert.equal(flags([...fld64(DATA), ...fld64(DATA + 8), 0xdb, 0xf1]), 0x001); // 1 < 2: CF
    assert.equal(flags([...fld64(DATA + 8), ...fld64(DATA), 0xdb, 0xf1]), 0x000);
    assert.equal(flags([...fld64(DATA), ...fld64(DATA), 0xdb, 0xe9]), 0x040); // ZF
    assert.equal(flags([...fld64(DATA), ...fld64(DATA + 16), 0xdb, 0xe9]), 0x045); // unordered: ZF PF CF
    assert.equal(fsw(cpu) & EXC, 0);
    assert.equal(flags([...fld64(DATA), ...fld64(DATA + 16), 0xdb, 0xf1]), 0x045);
    assert.equal(fsw(cpu) & EXC, FSW_IE); // FCOMI: IE on a QNaN
    flags([...fld64(DATA), ...fld64(DATA + 8), 0xdf, 0xf1]); // FCOMIP pops
    assert.equal(fsw(cpu) & 0x3800, 7 << 11);
  });

  it("FXAM classifies every kind of register", () => {
    const cpu = newCpu();
    const cases: [string, number][] = [
      ["3fff8000000000000000", FSW_C2],
      ["bfff8000000000000000", FSW_C2 | FSW_C1],
      ["00000000000000000000", FSW_C3],
      ["80000000000000000000", FSW_C3 | FSW_C1],
      ["7fff8000000000000000", FSW_C2 | FSW_C0],
      ["7fffc000000000000000", FSW_C0],
      ["00000000000000000001", FSW_C3 | FSW_C2],
      ["40004000000000000000", 0],
    ];
    for (const [v, want] of cases) {
      put(cpu, DATA, v);
      run(cpu, [...FNINIT, ...fld80(DATA), ...FXAM, ...FNSTSW_AX]);
      assert.equal(cpu.regs16[0] & CC, want, v);
    }
    run(cpu, [...FNINIT, ...FXAM, ...FNSTSW_AX]);
    assert.equal(cpu.regs16[0] & (FSW_C3 | FSW_C2 | FSW_C0), FSW_C3 | FSW_C0); // empty
  });

  it("FCMOVcc follows EFLAGS", () => {
    const cpu = newCpu();
    putF64(cpu, DATA, 5);
    const mov = (code: number[]) => {
      run(cpu, [...FNINIT, ...fld64(DATA), ...FLD1, ...code, ...fstp64(DATA + 16)]);
      return getF64(cpu, DATA + 16);
    };
    assert.equal(mov([0xf9, 0xda, 0xc1]), 5); // stc; fcmovb: moves
    assert.equal(mov([0xf8, 0xda, 0xc1]), 1); // clc; fcmovb: stays
    assert.equal(mov([0xf8, 0xdb, 0xc1]), 5); // clc; fcmovnb: moves
    assert.equal(mov([0x31, 0xc0, 0xda, 0xc9]), 5); // xor eax,eax (ZF); fcmove
    assert.equal(mov([0x31, 0xc0, 0xdb, 0xc9]), 1); // fcmovne
  });
});

describe("x87: stack faults and remainders", () => {
  it("stack overflow: IE SF C1, the indefinite pushed (masked)", () => {
    const cpu = newCpu();
    const nine: number[] = [];
    for (let k = 0; k < 9; k++) nine.push(...FLD1);
    run(cpu, [...FNINIT, ...nine, ...FNSTSW_AX, ...fstp80(DATA)]);
    assert.equal(cpu.regs16[0], (7 << 11) | FSW_IE | FSW_SF | FSW_C1);
    assert.equal(get(cpu, DATA, 10), "ffffc000000000000000");
  });

  it("stack underflow: IE SF, C1 = 0, the indefinite as result", () => {
    const cpu = newCpu();
    run(cpu, [...FNINIT, 0xd8, 0xc1, ...FNSTSW_AX, ...fstp64(DATA)]); // fadd st0, st1 on an empty stack
    assert.equal(cpu.regs16[0], FSW_IE | FSW_SF);
    assert.equal(get(cpu, DATA, 8), "fff8000000000000");
    run(cpu, [...FNINIT, ...fstp32(DATA), ...FNSTSW_AX]); // store from an empty ST(0)
    assert.equal(get(cpu, DATA, 4), "ffc00000");
    assert.equal(cpu.regs16[0], (1 << 11) | FSW_IE | FSW_SF);
    run(cpu, [...FNINIT, ...fistp16(DATA)]);
    assert.equal(get(cpu, DATA, 2), "8000");
  });

  it("FPREM / FPREM1 remainders and quotient bits C0 C3 C1", () => {
    const cpu = newCpu();
    const prem = (a: number, b: number, op: number) => {
      putF64(cpu, DATA, a);
      putF64(cpu, DATA + 8, b);
      run(cpu, [
        ...FNINIT,
        ...fld64(DATA + 8),
        ...fld64(DATA),
        0xd9,
        op,
        ...FNSTSW_AX,
        ...fstp64(DATA + 16),
      ]);
      return [getF64(cpu, DATA + 16), cpu.regs16[0] & CC];
    };
    assert.deepEqual(prem(17, 5, 0xf8), [2, FSW_C3 | FSW_C1]); // q = 3 = 011
    assert.deepEqual(prem(23, 3, 0xf8), [2, FSW_C0 | FSW_C3 | FSW_C1]); // q = 7
    assert.deepEqual(prem(-17, 5, 0xf8), [-2, FSW_C3 | FSW_C1]);
    assert.deepEqual(prem(18, 5, 0xf5), [-2, FSW_C0]); // FPREM1: q = 4
    assert.deepEqual(prem(17, 5, 0xf5), [2, FSW_C3 | FSW_C1]);
    assert.deepEqual(prem(2, 5, 0xf8), [2, 0]);
    // A huge dividend needs several partial reductions (C2 = 1) until done.
    putF64(cpu, DATA, 1e300);
    putF64(cpu, DATA + 8, 0.3);
    const loop = [0xd9, 0xf8, ...FNSTSW_AX, 0xf6, 0xc4, 0x04, 0x75, 0xf7]; // fprem; fnstsw ax; test ah,4; jnz
    run(cpu, [...FNINIT, ...fld64(DATA + 8), ...fld64(DATA), ...loop, ...fstp64(DATA + 16)]);
    // fmod(1e300, 0.3) computed exactly (with rationals): 0x3FC39CA9EFEC80B2, quotient = 5 (mod 8).
    assert.equal(get(cpu, DATA + 16, 8), "3fc39ca9efec80b2");
    assert.equal(cpu.regs16[0] & CC, FSW_C0 | FSW_C1);
  });
});

describe("x87: exceptions and #MF", () => {
  it("an unmasked exception leaves the destination and raises #MF on the next waiting instruction", () => {
    const cpu = newCpu();
    putU16(cpu, DATA, 0x037b); // ZE unmasked
    const code = [...FNINIT, ...fldcw(DATA), ...FLDZ, ...FLD1, 0xd8, 0xf1, ...FLD1];
    const fdivAt = CODE + 2 + 6 + 2 + 2;
    assert.equal(exec(cpu, code), 16);
    assert.equal(cpu.eip, fdivAt + 2); // the faulting FLD1, not the FDIV
    assert.equal(cpu.fpu.sw & (FSW_ES | FSW_B | FSW_ZE), FSW_ES | FSW_B | FSW_ZE);
    assert.equal(cpu.fpu.st(0), 1); // unchanged
    // Non-waiting control instructions do not fault; the environment points at the FDIV.
    run(cpu, [...FNSTSW_AX, ...fnstenv(SAVE), ...FNCLEX, ...FLD1]);
    assert.equal(cpu.regs16[0] & (FSW_ES | FSW_ZE), FSW_ES | FSW_ZE);
    assert.equal(cpu.mem.dv.getUint32(SAVE + 12, true), fdivAt); // FIP
    assert.equal(cpu.mem.dv.getUint32(SAVE + 16, true), CS_SEL | (0x0f1 << 16)); // FCS, FOP = D8 F1
    assert.equal(fsw(cpu) & EXC, 0);
  });

  it("FWAIT raises #MF; FLDCW unmasking a pending flag arms it", () => {
    const cpu = newCpu();
    putU16(cpu, DATA, 0x037b);
    run(cpu, [...FNINIT, ...FLD1, ...FLDZ, 0xde, 0xf9]); // fdivp st1, st0: 1/0, masked: ZE only
    assert.equal(fsw(cpu) & (FSW_ES | EXC), FSW_ZE);
    assert.equal(exec(cpu, [...fldcw(DATA), ...FWAIT]), 16);
    assert.equal(cpu.eip, CODE + 6);
    run(cpu, [...FNINIT, ...FWAIT]);
  });

  it("FNSAVE/FNSTENV/FNINIT do not fault on a pending exception; FRSTOR/FLDENV do", () => {
    const cpu = newCpu();
    putU16(cpu, DATA, 0x0000);
    run(cpu, [...FNINIT, ...fldcw(DATA), ...FLDZ, ...FLDZ, 0xde, 0xf9]); // 0/0 unmasked: IE pending
    run(cpu, [...fnsave(SAVE)]); // reinitialises: nothing pending any more
    assert.equal(cpu.mem.dv.getUint16(SAVE + 4, true) & (FSW_ES | FSW_IE), FSW_ES | FSW_IE);
    run(cpu, [...FLD1]);
    run(cpu, [...frstor(SAVE)]); // pending again after the restore
    assert.equal(exec(cpu, [...FLD1]), 16);
    run(cpu, [...FNINIT]);
  });

  it("FISTTP (SSE3) and reserved encodings raise #UD", () => {
    const cpu = newCpu();
    assert.equal(exec(cpu, [...FNINIT, ...m(0xdb, 1, DATA)]), 6);
    assert.equal(exec(cpu, [...FNINIT, ...m(0xdd, 1, DATA)]), 6);
    assert.equal(exec(cpu, [...FNINIT, ...m(0xdf, 1, DATA)]), 6);
    assert.equal(exec(cpu, [...FNINIT, 0xd9, 0xd1]), 6);
    assert.equal(exec(cpu, [...FNINIT, 0xde, 0xd8]), 6);
    assert.equal(exec(cpu, [...FNINIT, 0xdf, 0xf8]), 6);
    run(cpu, [...FNINIT, 0xdb, 0xe0, 0xdb, 0xe4, 0xd9, 0xd0]); // FNENI, FNSETPM, FNOP: no-ops
  });
});

describe("x87: environment images", () => {
  it("FNSAVE writes the 108-byte 32-bit layout and reinitialises; FRSTOR brings it back", () => {
    const cpu = newCpu();
    putF64(cpu, DATA, 1);
    run(cpu, [...FNINIT, ...fld64(DATA), 0xd9, 0xeb, ...fnsave(SAVE)]);
    const fldpiAt = CODE + 2 + 6;
    assert.equal(
      bytes(cpu, SAVE, 48),
      [
        "7f03ffff", // FCW
        "0030ffff", // FSW: TOP = 6
        "ff0fffff", // FTW: R7, R6 valid, the rest empty
        fldpiAt.toString(16).padStart(4, "0").replace(/(..)(..)/, "$2$1") + "0000", // FIP
        "1000eb01", // FCS, FOP = D9 EB
        "00200000", // FDP (from the FLD m64)
        "1800ffff", // FDS
        "35c26821a2da0fc90040", // ST0 = pi
        "0000000000000080ff3f", // ST1 = 1.0
      ].join(""),
    );
    assert.equal(fsw(cpu), 0);
    assert.equal(cpu.fpu.tw, 0xffff);
    run(cpu, [...frstor(SAVE), ...fstp80(DATA + 16), ...fstp64(DATA + 32)]);
    assert.equal(get(cpu, DATA + 16, 10), "4000c90fdaa22168c235");
    assert.equal(getF64(cpu, DATA + 32), 1);
    // The debugger image is the same layout and does not reinitialise.
    run(cpu, [...FNINIT, ...fld64(DATA), 0xd9, 0xeb]);
    const img = cpu.fpu.fsaveImage();
    assert.equal(
      Array.from(img.subarray(28, 38), (b) => b.toString(16).padStart(2, "0")).join(""),
      "35c26821a2da0fc90040",
    );
    assert.equal(cpu.fpu.top, 6);
    run(cpu, [...FNINIT]);
    cpu.fpu.frstorImage(img);
    assert.equal(cpu.fpu.st(0), Math.PI);
    assert.equal(cpu.fpu.st(1), 1);
  });

  it("FNSTENV 16-bit layout, and it masks all exceptions", () => {
    const cpu = newCpu();
    putF64(cpu, DATA, 2);
    putU16(cpu, DATA + 8, 0x0360);
    run(cpu, [
      ...FNINIT,
      ...fldcw(DATA + 8),
      ...fld64(DATA),
      ...FLDZ,
      0x66,
      ...fnstenv(SAVE),
      ...fnstcw(DATA + 16),
    ]);
    const fldzAt = CODE + 2 + 6 + 6;
    assert.equal(
      bytes(cpu, SAVE, 14),
      [
        "6003",
        "0030",
        "ff1f",
        fldzAt.toString(16).padStart(4, "0").replace(/(..)(..)/, "$2$1"),
        "1000",
        "0020",
        "1800",
      ]
        .join(""),
    );
    assert.equal(u16(cpu, DATA + 16), 0x037f);
    // FLDENV 16-bit brings the control word back.
    run(cpu, [0x66, ...fldenv(SAVE), ...fnstcw(DATA + 16)]);
    assert.equal(u16(cpu, DATA + 16), 0x0360);
  });

  it("FLDENV 32-bit loads TOP, tags and the pointers", () => {
    const cpu = newCpu();
    const env = new DataView(cpu.mem.buffer, SAVE, 28);
    env.setUint32(0, 0xffff0c7f, true); // FCW: round toward zero
    env.setUint32(4, 0xffff0000 | 0x4000 | (3 << 11), true); // FSW: C3, TOP = 3
    env.setUint32(8, 0xffffff3f, true); // FTW: only R3 in use
    env.setUint32(12, 0x1000, true); // FIP
    env.setUint32(16, 0x10 | (0x1d9 << 16), true); // FCS, FOP
    env.setUint32(20, 0x1234, true); // FDP
    env.setUint32(24, 0xffff0018, true); // FDS
    run(cpu, [...fldenv(SAVE), ...fnstcw(DATA), ...FNSTSW_AX]);
    assert.equal(u16(cpu, DATA), 0x0c7f);
    assert.equal(cpu.regs16[0], 0x5800);
    assert.equal(cpu.fpu.top, 3);
    assert.equal(cpu.fpu.isEmpty(0), false);
    assert.equal(cpu.fpu.isEmpty(1), true);
    assert.equal(cpu.fpu.fip, 0x1000);
    assert.equal(cpu.fpu.fop, 0x1d9);
    assert.equal(cpu.fpu.fdp, 0x1234);
    assert.equal(cpu.fpu.fds, 0x18);
  });

  it("FXSAVE writes the 512-byte layout with the abridged tag; FXRSTOR loads one", () => {
    const cpu = newCpu();
    putF64(cpu, DATA, 2);
    cpu.mem.u8.fill(0xaa, SAVE, SAVE + 512);
    run(cpu, [...FNINIT, ...fld64(DATA), ...FLDZ, ...fxsave(SAVE)]);
    const fldzAt = CODE + 2 + 6;
    const le32 = (v: number) => v.toString(16).padStart(8, "0").match(/../g)!.reverse().join("");
    assert.equal(
      bytes(cpu, SAVE, 64),
      [
        "7f03", // FCW
        "0030", // FSW
        "c0", // abridged FTW: R6, R7 in use
        "00",
        "ee01", // FOP = D9 EE
        le32(fldzAt), // FIP
        "1000", // FCS
        "0000",
        le32(DATA), // FDP
        "1800", // FDS
        "0000",
        "801f0000", // MXCSR
        "ffff0000", // MXCSR_MASK
        "00000000000000000000000000000000", // ST0 = +0
        "00000000000000800040000000000000", // ST1 = 2.0
      ].join(""),
    );
    assert.equal(bytes(cpu, SAVE + 160, 16), "00".repeat(16)); // XMM0
    assert.equal(bytes(cpu, SAVE + 464, 4), "aaaaaaaa"); // software-available area untouched

    // Restore a hand-made area: FCW 0x027f, FSW TOP=5 + C3, R5 in use holding 1.5.
    const area = new Uint8Array(512);
    const dv = new DataView(area.buffer);
    dv.setUint16(0, 0x027f, true);
    dv.setUint16(2, 0x6800, true);
    area[4] = 0x20;
    dv.setUint32(24, 0x1f80, true);
    dv.setUint32(32, 0, true);
    dv.setUint32(36, 0xc0000000, true);
    dv.setUint16(40, 0x3fff, true);
    cpu.mem.load(SAVE, area);
    run(cpu, [...FNINIT, ...fxrstor(SAVE), ...fnstcw(DATA), ...FNSTSW_AX, ...fstp64(DATA + 8)]);
    assert.equal(u16(cpu, DATA), 0x027f);
    assert.equal(cpu.regs16[0], 0x6800);
    assert.equal(getF64(cpu, DATA + 8), 1.5);
    // Reserved MXCSR bits and misalignment are #GP.
    dv.setUint32(24, 0x10000, true);
    cpu.mem.load(SAVE, area);
    assert.equal(exec(cpu, fxrstor(SAVE)), 13);
    assert.equal(exec(cpu, fxsave(SAVE + 8)), 13);
  });

  it("FXSAVE/FXRSTOR round-trip every register bit-exactly", () => {
    const cpu = newCpu();
    const vals = [
      "3fff8000000000000401",
      "ffffc0000000deadbeef",
      "00000000000000000001",
      "7ffe8000000000000001",
    ];
    vals.forEach((v, k) => put(cpu, DATA + 16 * k, v));
    run(cpu, [...FNINIT, ...vals.flatMap((_, k) => fld80(DATA + 16 * k)), ...fxsave(SAVE)]);
    run(cpu, [
      ...FNINIT,
      ...FLD1,
      ...fxrstor(SAVE),
      ...vals.flatMap((_, k) => fstp80(0x4000 + 16 * k)),
    ]);
    vals.forEach((v, k) => assert.equal(get(cpu, 0x4000 + 16 * (3 - k), 10), v));
  });
});

describe("x87: faults in the middle of an instruction", () => {
  /** Identity-map the first MiB with 4 KiB pages, leaving `hole` not present. */
  function pagingWithHole(cpu: CPU, hole: number): void {
    const pd = 0x5000, pt = 0x6000;
    cpu.mem.dv.setUint32(pd, pt | 3, true);
    for (let i = 0; i < 256; i++) {
      cpu.mem.dv.setUint32(pt + 4 * i, i === hole >> 12 ? 0 : (i << 12) | 3, true);
    }
    cpu.cr3 = pd;
    cpu.cr0 |= 0x80000000;
    cpu.flushTlb();
  }

  it("a #PF on any part of a memory operand leaves memory and the FPU unchanged", () => {
    const cpu = newCpu();
    pagingWithHole(cpu, 0x8000);
    putF64(cpu, DATA, 1.5);
    run(cpu, [...FNINIT, ...fld64(DATA)]);
    cpu.mem.u8.fill(0xaa, 0x7f00, 0x8000);
    const before = cpu.fpu.fsaveImage();
    const same = () => assert.deepEqual(cpu.fpu.fsaveImage(), before);
    for (
      const code of [
        fstp64(0x7ffc), // store straddling into the hole
        fstp80(0x7ff8),
        fistp64(0x7ffc),
        fbstp(0x7ff8),
        fld64(0x7ffc), // load straddling into the hole
        fld80(0x7ff8),
        m(0xdc, 0, 0x7ffc), // fadd m64
        fnsave(0x7fa0), // 108 bytes: would reinitialise the unit
        frstor(0x7fa0),
        fnstenv(0x7ff0),
        fldenv(0x7ff0),
      ]
    ) {
      assert.equal(exec(cpu, code), 14, code.map((b) => b.toString(16)).join(" "));
      assert.equal(cpu.exitCr2 >>> 12, 8); // the page of the hole
      same();
      assert.equal(bytes(cpu, 0x7f00, 256), "aa".repeat(256));
    }
    assert.equal(cpu.fpu.fip, CODE + 2); // still the FLD's
    assert.equal(exec(cpu, fxsave(0x7f00)), 14);
    same();
    assert.equal(bytes(cpu, 0x7f00, 256), "aa".repeat(256));
  });
});
