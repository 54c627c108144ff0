/**
 * Guests built in memory, from bytes, for experiments: a few dozen x86
 * instruction encodings with labels ({@link X86}), and an ELF32 writer with a
 * symbol table ({@link elf32}), so a script can make a kernel in a few lines
 * and the debugger can `break` on its labels by name. Nothing is assembled at
 * run time: each method appends the instruction's bytes, and label
 * references are patched when the bytes are taken.
 *
 * ```ts
 * const a = new X86(0x100000);
 * a.label("_start").movImm(ESP, "stack_top").hcall(LHCALL.LGUEST_INIT, "lguest_data");
 * a.label("spin").jmp("spin");
 * a.lguestData().align(16).zeros(4096).label("stack_top");
 * const elf = elf32({ entry: a.addr("_start"), segments: [a.segment()], symbols: a.symbols });
 * ```
 *
 * @module
 */

import { LGUEST_DATA, LHCALL_RING_SIZE } from "../lguest/abi.ts";

/** A value: a number, a label, or a label plus an addend. */
export type Value = number | string | [string, number];

/** The x86 register numbers (EAX = 0 … EDI = 7). */
export const R = { EAX: 0, ECX: 1, EDX: 2, EBX: 3, ESP: 4, EBP: 5, ESI: 6, EDI: 7 } as const;

/** A little x86 code writer: instructions, data and labels at a fixed origin. */
export class X86 {
  /** Labels: name → address. */
  readonly symbols: Map<string, number> = new Map();
  private buf: number[] = [];
  private fixups: { at: number; value: Value; rel: boolean }[] = [];

  /** An empty program. @param origin the address the first byte will have (physical = virtual) */
  constructor(readonly origin: number) {}

  /** Address of the next byte. */
  get here(): number {
    return this.origin + this.buf.length;
  }

  /** Define `name` at the current address. */
  label(name: string): this {
    if (this.symbols.has(name)) throw new Error(`label ${name} defined twice`);
    this.symbols.set(name, this.here);
    return this;
  }

  /** Address of a defined label. */
  addr(name: string): number {
    const v = this.symbols.get(name);
    if (v === undefined) throw new Error(`no label ${name}`);
    return v;
  }

  /** Raw bytes. */
  db(...bytes: (number | string)[]): this {
    for (const b of bytes) {
      if (typeof b === "string") { for (const c of new TextEncoder().encode(b)) this.buf.push(c); }
      else this.buf.push(b & 0xff);
    }
    return this;
  }

  /** Dwords (numbers or labels). */
  dd(...values: Value[]): this {
    for (const v of values) this.imm32(v);
    return this;
  }

  /** `n` zero bytes. */
  zeros(n: number): this {
    for (let i = 0; i < n; i++) this.buf.push(0);
    return this;
  }

  /** Pad with zeros to a multiple of `n`. */
  align(n: number): this {
    while (this.here % n !== 0) this.buf.push(0);
    return this;
  }

  /** Emit a 32-bit immediate: a number, or a label (`rel`: relative to the end of it). */
  private imm32(v: Value, rel = false): void {
    if (typeof v === "number" && !rel) {
      this.buf.push(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff);
      return;
    }
    this.fixups.push({ at: this.buf.length, value: v, rel });
    this.buf.push(0, 0, 0, 0);
  }

  /** `mov r32, imm32` */
  movImm(reg: number, v: Value): this {
    this.buf.push(0xb8 + reg);
    this.imm32(v);
    return this;
  }

  /** `mov [addr], r32` */
  store(addr: Value, reg: number): this {
    if (reg === 0) this.buf.push(0xa3);
    else this.buf.push(0x89, (reg << 3) | 5);
    this.imm32(addr);
    return this;
  }

  /** `mov r32, [addr]` */
  load(reg: number, addr: Value): this {
    if (reg === 0) this.buf.push(0xa1);
    else this.buf.push(0x8b, (reg << 3) | 5);
    this.imm32(addr);
    return this;
  }

  /** `inc dword [addr]` */
  incMem(addr: Value): this {
    this.buf.push(0xff, 0x05);
    this.imm32(addr);
    return this;
  }

  /** `add r32, imm32` */
  addImm(reg: number, v: Value): this {
    this.buf.push(0x81, 0xc0 + reg);
    this.imm32(v);
    return this;
  }

  /** `add r32, r32` (dst += src) */
  addReg(dst: number, src: number): this {
    this.buf.push(0x01, 0xc0 | (src << 3) | dst);
    return this;
  }

  /** `mov r32, r32` */
  movReg(dst: number, src: number): this {
    this.buf.push(0x89, 0xc0 | (src << 3) | dst);
    return this;
  }

  /** `dec r32` */
  dec(reg: number): this {
    this.buf.push(0x48 + reg);
    return this;
  }

  /** `jmp label` (rel32) */
  jmp(target: Value): this {
    this.buf.push(0xe9);
    this.imm32(target, true);
    return this;
  }

  /** `jnz label` (rel32) */
  jnz(target: Value): this {
    this.buf.push(0x0f, 0x85);
    this.imm32(target, true);
    return this;
  }

  /** `call label` (rel32) */
  call(target: Value): this {
    this.buf.push(0xe8);
    this.imm32(target, true);
    return this;
  }

  /** `jmp r32` */
  jmpReg(reg: number): this {
    this.buf.push(0xff, 0xe0 + reg);
    return this;
  }

  /** `ret` */
  ret(): this {
    return this.db(0xc3);
  }

  /** `int n` */
  int(n: number): this {
    return this.db(0xcd, n);
  }

  /** `hlt` */
  hlt(): this {
    return this.db(0xf4);
  }

  /** `cli` */
  cli(): this {
    return this.db(0xfa);
  }

  /** `nop` */
  nop(): this {
    return this.db(0x90);
  }

  /** `mov dx, imm16; out dx, al` */
  outAl(port: number): this {
    return this.db(0x66, 0xba, port & 0xff, port >> 8, 0xee);
  }

  /** `mov dx, imm16; in al, dx` */
  inAl(port: number): this {
    return this.db(0x66, 0xba, port & 0xff, port >> 8, 0xec);
  }

  /** `mov al, imm8` */
  movAl(v: number): this {
    return this.db(0xb0, v);
  }

  /** A synchronous lguest hypercall: `mov eax, nr; mov ebx, a1; mov ecx, a2; mov edx, a3; int $0x1f`. */
  hcall(nr: number, ...args: Value[]): this {
    this.movImm(R.EAX, nr);
    const regs = [R.EBX, R.ECX, R.EDX, R.ESI];
    args.forEach((a, i) => this.movImm(regs[i], a));
    return this.int(0x1f);
  }

  /**
   * A `struct lguest_data` with the guest's initial values (label
   * `lguest_data`): IRQ 0 blocked, the async ring empty, the kernel at
   * 0xC0000000, system calls on vector 0x80.
   */
  lguestData(noirqIret = 0): this {
    this.align(4).label("lguest_data");
    const start = this.buf.length;
    this.zeros(LGUEST_DATA.SIZE);
    const put = (off: number, v: number) => {
      for (let i = 0; i < 4; i++) this.buf[start + off + i] = (v >>> (8 * i)) & 0xff;
    };
    put(LGUEST_DATA.blocked_interrupts, 1);
    for (let i = 0; i < LHCALL_RING_SIZE; i++) {
      this.buf[start + LGUEST_DATA.hcall_status + i] = 0xff;
    }
    put(LGUEST_DATA.noirq_iret, noirqIret);
    put(LGUEST_DATA.kernel_address, 0xc0000000);
    put(LGUEST_DATA.syscall_vec, 0x80);
    return this;
  }

  /** The address a Value stands for (a label must be defined by now). */
  private resolve(v: Value): number {
    if (typeof v === "number") return v;
    const [name, add] = typeof v === "string" ? [v, 0] : v;
    return (this.addr(name) + add) >>> 0;
  }

  /** The bytes, with every label reference patched. */
  bytes(): Uint8Array {
    const out = Uint8Array.from(this.buf);
    const dv = new DataView(out.buffer);
    for (const f of this.fixups) {
      let v = this.resolve(f.value);
      if (f.rel) v = (v - (this.origin + f.at + 4)) | 0;
      dv.setUint32(f.at, v >>> 0, true);
    }
    return out;
  }

  /** The code as one ELF segment loaded at the origin. */
  segment(): { paddr: number; vaddr: number; bytes: Uint8Array } {
    return { paddr: this.origin, vaddr: this.origin, bytes: this.bytes() };
  }
}

/** What {@link elf32} writes. */
export interface ElfOptions {
  /** Entry point. */
  entry: number;
  /** Loadable segments. */
  segments: { paddr: number; vaddr: number; bytes: Uint8Array }[];
  /** Symbols (written as global functions, so debuggers can use them). */
  symbols?: Map<string, number>;
}

/**
 * An i386 ELF32 executable: one PT_LOAD per segment, and, when symbols are
 * given, section headers with `.symtab` and `.strtab`.
 */
export function elf32(o: ElfOptions): Uint8Array {
  const syms = [...(o.symbols ?? new Map())];
  const enc = new TextEncoder();
  const phoff = 52, phnum = o.segments.length;
  let off = phoff + phnum * 32;
  off = (off + 15) & ~15;
  const segOffsets = o.segments.map((s) => {
    const at = off;
    off = (off + s.bytes.length + 15) & ~15;
    return at;
  });
  // String tables.
  const strtab: number[] = [0];
  const nameOff = syms.map(([n]) => {
    const at = strtab.length;
    strtab.push(...enc.encode(n), 0);
    return at;
  });
  const shstr: number[] = [0];
  const shName = (s: string) => {
    const at = shstr.length;
    shstr.push(...enc.encode(s), 0);
    return at;
  };
  const nSymtab = shName(".symtab"), nStrtab = shName(".strtab"), nShstr = shName(".shstrtab");
  const symOff = off;
  const symSize = (syms.length + 1) * 16;
  const strOff = symOff + symSize;
  const shstrOff = strOff + strtab.length;
  let shoff = (shstrOff + shstr.length + 3) & ~3;
  const withSections = syms.length > 0;
  if (!withSections) shoff = 0;
  const total = withSections ? shoff + 4 * 40 : off;
  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  out.set([0x7f, 0x45, 0x4c, 0x46, 1, 1, 1], 0);
  dv.setUint16(16, 2, true); // ET_EXEC
  dv.setUint16(18, 3, true); // EM_386
  dv.setUint32(20, 1, true);
  dv.setUint32(24, o.entry, true);
  dv.setUint32(28, phoff, true);
  dv.setUint32(32, shoff, true);
  dv.setUint16(40, 52, true);
  dv.setUint16(42, 32, true);
  dv.setUint16(44, phnum, true);
  dv.setUint16(46, withSections ? 40 : 0, true);
  dv.setUint16(48, withSections ? 4 : 0, true);
  dv.setUint16(50, withSections ? 3 : 0, true);
  o.segments.forEach((s, i) => {
    const p = phoff + i * 32;
    dv.setUint32(p, 1, true); // PT_LOAD
    dv.setUint32(p + 4, segOffsets[i], true);
    dv.setUint32(p + 8, s.vaddr, true);
    dv.setUint32(p + 12, s.paddr, true);
    dv.setUint32(p + 16, s.bytes.length, true);
    dv.setUint32(p + 20, s.bytes.length, true);
    dv.setUint32(p + 24, 7, true); // RWX
    dv.setUint32(p + 28, 0x1000, true);
    out.set(s.bytes, segOffsets[i]);
  });
  if (!withSections) return out;
  syms.forEach(([, v], i) => {
    const e = symOff + (i + 1) * 16;
    dv.setUint32(e, nameOff[i], true);
    dv.setUint32(e + 4, v, true);
    out[e + 12] = 0x12; // STB_GLOBAL, STT_FUNC
    dv.setUint16(e + 14, 0xfff1, true); // SHN_ABS
  });
  out.set(strtab, strOff);
  out.set(shstr, shstrOff);
  const sh = (
    i: number,
    name: number,
    type: number,
    o2: number,
    size: number,
    link = 0,
    entsize = 0,
  ) => {
    const p = shoff + i * 40;
    dv.setUint32(p, name, true);
    dv.setUint32(p + 4, type, true);
    dv.setUint32(p + 16, o2, true);
    dv.setUint32(p + 20, size, true);
    dv.setUint32(p + 24, link, true);
    dv.setUint32(p + 32, 4, true);
    dv.setUint32(p + 36, entsize, true);
  };
  sh(1, nSymtab, 2, symOff, symSize, 2, 16); // SHT_SYMTAB, linked to .strtab
  sh(2, nStrtab, 3, strOff, strtab.length);
  sh(3, nShstr, 3, shstrOff, shstr.length);
  return out;
}
