/**
 * Building blocks of the case generator: a seeded PRNG, interesting operand
 * values, and {@link CaseBuilder}, which assembles instructions while choosing
 * register values so that every memory operand lands where the generator wants
 * it (inside the mapped data regions, or deliberately just outside for #PF).
 *
 * Each generated instruction ({@link Insn}) records its effect on the
 * arithmetic flags: which it reads, which it defines and which the Intel SDM
 * leaves undefined. A forward data-flow pass over the instruction list (jumps
 * included) gives the undefined flags at the point where the native run ended;
 * those bits are masked out of the comparison. The rules themselves live next to
 * the instruction builders and are listed with their SDM sources in README.md.
 *
 * @module
 */

import {
  CODE_BASE,
  DATA_BASE,
  DATA_SIZE,
  type Expected,
  LOW_BASE,
  LOW_SIZE,
  type OracleCase,
  toHex,
} from "./fixture.ts";

/** Flags by name (local copy for brevity). */
export const CF = 0x1, PF = 0x4, AF = 0x10, ZF = 0x40, SF = 0x80, DF = 0x400, OF = 0x800;
/** All six arithmetic flags. */
export const ALL6 = CF | PF | AF | ZF | SF | OF;
/** Register numbers. */
export const EAX = 0, ECX = 1, EDX = 2, EBX = 3, ESP = 4, EBP = 5, ESI = 6, EDI = 7;

/** A small, fast, seedable PRNG (sfc32). Deterministic across runtimes. */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  /** @param seed any 32-bit integer */
  constructor(seed: number) {
    this.a = 0x9e3779b9;
    this.b = 0x243f6a88;
    this.c = 0xb7e15162;
    this.d = seed >>> 0;
    for (let i = 0; i < 20; i++) this.u32();
  }
  /** A uniformly random unsigned 32-bit integer. */
  u32(): number {
    let { a, b, c, d } = this;
    a >>>= 0;
    b >>>= 0;
    c >>>= 0;
    d >>>= 0;
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = ((c << 21) | (c >>> 11)) >>> 0;
    c = (c + t) >>> 0;
    this.a = a;
    this.b = b;
    this.c = c;
    this.d = d;
    return t;
  }
  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor((this.u32() / 4294967296) * n);
  }
  /** Integer in [lo, hi] inclusive. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }
  /** True with probability p. */
  chance(p: number): boolean {
    return this.u32() / 4294967296 < p;
  }
  /** A random element. */
  pick<T>(a: readonly T[]): T {
    return a[this.int(a.length)];
  }
  /** A random real in [0, 1). */
  real(): number {
    return this.u32() / 4294967296;
  }
  /** Derive an independent generator (for per-class streams). */
  fork(tag: number): Rng {
    return new Rng((this.u32() ^ Math.imul(tag + 1, 0x9e3779b1)) >>> 0);
  }
}

/** String hash for per-class seeds. */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** Mask of the low `bits` bits (bits = 8, 16, 32). */
export function widthMask(bits: number): number {
  return bits === 32 ? 0xffffffff : (1 << bits) - 1;
}

/** An operand value biased towards edge cases, `bits` wide, unsigned. */
export function interesting(r: Rng, bits: number): number {
  const m = widthMask(bits), top = bits === 32 ? 0x80000000 : 1 << (bits - 1);
  switch (r.int(14)) {
    case 0:
      return 0;
    case 1:
      return 1;
    case 2:
      return m;
    case 3:
      return top;
    case 4:
      return (top - 1) >>> 0;
    case 5:
      return (top + 1) >>> 0;
    case 6:
      return r.int(16);
    case 7:
      return (m - r.int(16)) >>> 0;
    case 8:
      return ((r.u32() & 0xff) * 0x01010101 & m) >>> 0;
    case 9:
      return (1 << r.int(bits)) >>> 0;
    case 10:
      return (((1 << r.int(bits)) >>> 0) - 1) & m;
    default:
      return (r.u32() & m) >>> 0;
  }
}

/** One generated instruction and its effect on the arithmetic flags. */
export interface Insn {
  /** Encoded bytes (a rel8/rel32 field is fixed up after layout when `target` is set). */
  bytes: number[];
  /** Readable text (for case descriptions). */
  text: string;
  /** Flags whose value the instruction uses. */
  reads: number;
  /** Flags it sets to defined values. */
  writes: number;
  /** Flags it leaves undefined (SDM). */
  undef: number;
  /** Register bits it leaves undefined: [register, mask of undefined bits]. */
  regUndef?: [number, number][];
  /** Memory bits it leaves undefined: [address, mask of undefined bits per byte]. */
  memUndef?: [number, number][];
  /** Index of the instruction a relative branch goes to (insns.length = the final int3). */
  target?: number;
  /** Size of the relative displacement at the end of `bytes` (1 or 4). */
  relSize?: 1 | 4;
  /** Control never falls through (JMP, RET). */
  noFall?: boolean;
  /** Absolute branch target patched into an earlier instruction's immediate. */
  absFix?: { insn: number; at: number; target: number };
  /** Absolute branch target stored in memory (for JMP [mem]): address and instruction index. */
  absMem?: { addr: number; target: number };
  /** x87 status-word bits undefined after this instruction (x87 cases). */
  swUndefAfter?: number;
  /** Memory this instruction may have written when it faults ([address, mask]). */
  memUndefOnFault?: [number, number][];
}

/** A flag effect shorthand. */
export function fx(
  reads: number,
  writes: number,
  undef: number,
): Pick<Insn, "reads" | "writes" | "undef"> {
  return { reads, writes, undef };
}

/** Where a memory operand landed. */
export interface MemRef {
  /** ModRM (+ SIB + displacement) bytes, reg field included. */
  bytes: number[];
  /** Linear address of the operand. */
  addr: number;
  /** Assembly-like rendering. */
  text: string;
  /** True when the address was chosen outside the mapped regions (expected #PF). */
  wild: boolean;
}

/** Options for {@link CaseBuilder.mem}. */
export interface MemOpts {
  /** Access size in bytes. */
  size: number;
  /** 16-bit addressing (the 0x67 prefix is the caller's job). */
  a16?: boolean;
  /** Probability of a deliberate out-of-region address (default 0.03). */
  wildRate?: number;
  /** Fixed target address (skips the random choice). */
  target?: number;
  /** Target range [lo, hi] for the operand's first byte. */
  range?: [number, number];
  /** Registers the address may not use (their values are needed elsewhere). */
  avoid?: number[];
}

const R32 = ["eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi"];
const R16A = ["bx+si", "bx+di", "bp+si", "bp+di", "si", "di", "bp", "bx"];

/**
 * Builds one case: pins register values as instructions demand them, places
 * memory operands, records memory overrides, and finally lays out the code.
 */
export class CaseBuilder {
  /** Register values (valid where `pinned`). */
  readonly regs: number[] = new Array(8).fill(0);
  /** Which registers have a chosen value. */
  readonly pinned: boolean[] = new Array(8).fill(false);
  /** Initial EFLAGS. */
  eflags: number;
  /** Memory overrides: address → byte. */
  readonly mem: Map<number, number> = new Map();
  /** The instructions. */
  readonly insns: Insn[] = [];
  /** Initial x87 image, if any. */
  fpu?: Uint8Array;
  /** Expect the final x87 state to be compared (x87 classes). */
  wantFpu = false;
  /** Free-form note appended to the description. */
  note = "";

  /** @param r the class's PRNG */
  constructor(readonly r: Rng) {
    // IF=1 and IOPL=0 as in any Linux process; random arithmetic flags; DF rarely.
    this.eflags = 0x202 | (r.u32() & ALL6) | (r.chance(0.15) ? DF : 0);
    // ESP always points into the data region with room on both sides.
    this.pin(ESP, 0x108000 + (r.range(-0x40, 0x40) * 4) + (r.chance(0.05) ? r.int(4) : 0));
  }

  /** Give register `reg` the value `v`. */
  pin(reg: number, v: number): void {
    this.regs[reg] = v >>> 0;
    this.pinned[reg] = true;
  }

  /** The value of `reg`, choosing a random one now if it has none yet. */
  val(reg: number): number {
    if (!this.pinned[reg]) this.pin(reg, this.randomReg());
    return this.regs[reg];
  }

  /** A random register value: often a pointer into a data region, often an edge value. */
  randomReg(): number {
    const r = this.r;
    const k = r.int(20);
    if (k < 6) return DATA_BASE + r.int(DATA_SIZE);
    if (k < 8) {
      return LOW_BASE + r.int(LOW_SIZE) + (r.u32() & 0xffff0000 & (r.chance(0.5) ? -1 : 0));
    }
    return interesting(r, 32);
  }

  /** Set `size` bytes of memory at `addr` (little-endian `v`, up to 32 bits). */
  setMem(addr: number, v: number, size: number): void {
    for (let i = 0; i < size; i++) this.setByte(addr + i, (v >>> (8 * (i & 3))) & 0xff);
  }

  /** Set bytes of memory at `addr`. */
  setBytes(addr: number, bytes: ArrayLike<number>): void {
    for (let i = 0; i < bytes.length; i++) this.setByte(addr + i, bytes[i]);
  }

  private setByte(a: number, v: number): void {
    if (inRegion(a)) this.mem.set(a, v & 0xff);
  }

  /** Add an instruction. */
  add(i: Insn): void {
    this.insns.push(i);
  }

  /** A memory operand with reg field `reg3`, placed per `o`; pins the registers it uses. */
  memOp(reg3: number, o: MemOpts): MemRef {
    return o.a16 ? this.mem16(reg3, o) : this.mem32(reg3, o);
  }

  /** Pick a target address for an access of `size` bytes. */
  private target(o: MemOpts, low: boolean): { t: number; wild: boolean } {
    const r = this.r, size = o.size;
    if (o.target !== undefined) return { t: o.target >>> 0, wild: !inRegion(o.target) };
    if (r.chance(o.wildRate ?? 0.03)) {
      // Deliberately unmapped: straddling a region end, or in a hole.
      const k = r.int(4);
      if (low) {
        if (k === 0 && size > 1) return { t: 0x10000 - r.range(1, size - 1), wild: true };
        return { t: r.int(0x1000 - size), wild: true };
      }
      if (k === 0 && size > 1) {
        return { t: DATA_BASE + DATA_SIZE - r.range(1, size - 1), wild: true };
      }
      if (k === 1) return { t: DATA_BASE - r.range(1, 0x100), wild: true };
      if (k === 2) return { t: 0x00400000 + r.int(0x100000), wild: true };
      return { t: DATA_BASE + DATA_SIZE + r.int(0x10000), wild: true };
    }
    if (o.range) return { t: r.range(o.range[0], o.range[1]), wild: false };
    const base = low ? LOW_BASE : DATA_BASE, span = low ? LOW_SIZE : DATA_SIZE;
    let t: number;
    if (r.chance(0.1)) {
      // Straddle a page boundary inside the region.
      const page = base + 0x1000 * r.range(1, span / 0x1000 - 1);
      t = page - r.range(0, size);
    } else t = base + 0x20 + r.int(span - 0x40 - size);
    if (!low && Math.abs(t - 0x108000) < 0x400 && r.chance(0.7)) {
      t = DATA_BASE + 0x20 + r.int(0x7000);
    }
    return { t, wild: false };
  }

  private free(reg: number, o: MemOpts): boolean {
    return !this.pinned[reg] && !(o.avoid ?? []).includes(reg);
  }

  private mem32(reg3: number, o: MemOpts): MemRef {
    const r = this.r;
    for (let attempt = 0; attempt < 40; attempt++) {
      const { t: t0, wild } = this.target(o, false);
      let t = t0;
      const mod = r.int(3);
      let rm = r.int(8);
      if (r.chance(0.3)) rm = 4; // SIB forms often
      let base = -1, idx = -1, scale = 0, dsize = mod === 1 ? 1 : mod === 2 ? 4 : 0;
      let sib = -1;
      if (mod === 0 && rm === 5) {
        dsize = 4;
      } else if (rm === 4) {
        scale = r.int(4);
        idx = r.int(8);
        base = r.int(8);
        if (r.chance(0.15)) base = ESP;
        if (r.chance(0.1)) base = EBP;
        if (r.chance(0.15)) idx = 4;
        sib = (scale << 6) | (idx << 3) | base;
        if (idx === 4) idx = -1;
        if (mod === 0 && base === 5) {
          base = -1;
          dsize = 4;
        }
      } else base = rm;
      const s = 1 << scale;
      let disp = 0;
      let iv = 0, bv = 0;
      const randDisp = () =>
        dsize === 1
          ? r.range(-128, 127)
          : dsize === 4
          ? (r.chance(0.7) ? r.range(-0x4000, 0x4000) : r.u32() | 0)
          : 0;
      // A register the caller will set later can be neither solved for nor relied on.
      if (base >= 0 && !this.pinned[base] && !this.free(base, o)) continue;
      if (idx >= 0 && !this.pinned[idx] && !this.free(idx, o)) continue;
      if (base >= 0 && base === idx) {
        // [reg + reg*s]: value*(1+s) + disp = t.
        if (!this.free(base, o)) continue;
        disp = randDisp();
        const k = (t - disp) | 0;
        let v = Math.floor((k >>> 0) / (1 + s));
        t = (v * (1 + s) + disp) >>> 0;
        if (!wild && !inRegion(t, o.size)) continue;
        if (wild && inRegion(t)) continue;
        v >>>= 0;
        bv = iv = v;
      } else if (base >= 0 && this.free(base, o)) {
        if (idx >= 0) iv = this.pinned[idx] ? this.regs[idx] : this.indexValue();
        disp = randDisp();
        bv = (t - Math.imul(iv, s) - disp) >>> 0;
      } else if (idx >= 0 && this.free(idx, o)) {
        if (base >= 0) bv = this.regs[base];
        disp = randDisp();
        const k = (t - bv - disp) >>> 0;
        const rem = k % s;
        t = (t - rem) >>> 0;
        if (!wild && !inRegion(t, o.size)) continue;
        iv = ((k - rem) >>> 0) / s;
      } else {
        // Everything pinned (or absent): the displacement must do it.
        if (base >= 0) bv = this.regs[base];
        if (idx >= 0) iv = this.regs[idx];
        const need = (t - bv - Math.imul(iv, s)) | 0;
        if (dsize === 4) disp = need;
        else if (dsize === 1 && need >= -128 && need <= 127) disp = need;
        else if (dsize === 0 && need === 0) disp = 0;
        else continue;
      }
      if (base >= 0 && (base === ESP) && !this.pinned[ESP]) continue;
      if (base >= 0) this.pin(base, bv);
      if (idx >= 0) this.pin(idx, iv);
      const addr = (bv + (idx >= 0 ? Math.imul(iv, s) : 0) + disp) >>> 0;
      if (addr !== t) {
        throw new Error(`address solver bug ${addr.toString(16)} != ${t.toString(16)}`);
      }
      const bytes = [(mod << 6) | ((reg3 & 7) << 3) | rm];
      if (sib >= 0) bytes.push(sib);
      pushLE(bytes, disp, dsize);
      const parts: string[] = [];
      if (base >= 0) parts.push(R32[base]);
      if (idx >= 0) parts.push(`${R32[idx]}*${s}`);
      if (dsize) parts.push(hexs(disp, dsize));
      return { bytes, addr, text: `[${parts.join("+")}]`, wild };
    }
    // Fallback: absolute disp32.
    const { t, wild } = this.target({ ...o, wildRate: 0 }, false);
    const bytes = [((reg3 & 7) << 3) | 5];
    pushLE(bytes, t, 4);
    return { bytes, addr: t, text: `[${hexs(t, 4)}]`, wild };
  }

  /** A value for an index register: mostly small, sometimes negative or large. */
  private indexValue(): number {
    const r = this.r;
    const k = r.int(10);
    if (k < 5) return r.range(-0x200, 0x200) >>> 0;
    if (k < 8) return r.int(0x1000);
    return r.u32();
  }

  private mem16(reg3: number, o: MemOpts): MemRef {
    const r = this.r;
    for (let attempt = 0; attempt < 40; attempt++) {
      const { t, wild } = this.target(o, true);
      const mod = r.int(3);
      const rm = r.int(8);
      const dsize = mod === 1 ? 1 : mod === 2 ? 2 : mod === 0 && rm === 6 ? 2 : 0;
      const comps: number[] = [];
      if (!(mod === 0 && rm === 6)) {
        comps.push(
          ...[[EBX, ESI], [EBX, EDI], [EBP, ESI], [EBP, EDI], [ESI], [EDI], [EBP], [EBX]][rm],
        );
      }
      let disp = dsize === 1 ? r.range(-128, 127) : dsize === 2 ? r.int(0x10000) : 0;
      if (comps.some((c) => !this.pinned[c] && !this.free(c, o))) continue;
      const freeComp = comps.find((c) => this.free(c, o));
      let sum = 0;
      for (const c of comps) {
        if (c === freeComp) continue;
        const v = this.pinned[c] ? this.regs[c] : this.pick16(c);
        sum += v & 0xffff;
      }
      if (freeComp !== undefined) {
        const lo = (t - sum - disp) & 0xffff;
        this.pin(freeComp, ((this.r.u32() & 0xffff0000) | lo) >>> 0);
      } else {
        const need = (t - sum) & 0xffff;
        if (dsize === 2) disp = need;
        else if (dsize === 1 && ((need << 24) >> 24) === ((need << 16) >> 16)) {
          disp = (need << 24) >> 24;
        } else if (dsize === 0 && need === 0) disp = 0;
        else continue;
      }
      let off = disp;
      for (const c of comps) off += this.regs[c] & 0xffff;
      const addr = off & 0xffff;
      if (addr !== t) throw new Error("16-bit address solver bug");
      const bytes = [(mod << 6) | ((reg3 & 7) << 3) | rm];
      pushLE(bytes, disp, dsize);
      const text = mod === 0 && rm === 6
        ? `[${hexs(disp, 2)}]`
        : `[${R16A[rm]}${dsize ? "+" + hexs(disp, dsize) : ""}]`;
      return { bytes, addr, text: `a16 ${text}`, wild };
    }
    const t = LOW_BASE + 0x100 + r.int(LOW_SIZE - 0x200);
    const bytes = [((reg3 & 7) << 3) | 6];
    pushLE(bytes, t, 2);
    return { bytes, addr: t, text: `a16 [${hexs(t, 2)}]`, wild: false };
  }

  private pick16(c: number): number {
    const v = ((this.r.u32() & 0xffff0000) | this.r.int(0x8000)) >>> 0;
    this.pin(c, v);
    return v;
  }

  /** Fill every register not yet chosen. */
  finishRegs(): void {
    for (let i = 0; i < 8; i++) if (!this.pinned[i]) this.pin(i, this.randomReg());
  }

  /** Lay out code: concatenate bytes and fix up branch displacements. Returns bytes and offsets. */
  layout(): { code: number[]; offsets: number[] } {
    const offsets: number[] = [];
    let off = 0;
    for (const i of this.insns) {
      offsets.push(off);
      off += i.bytes.length;
    }
    offsets.push(off);
    const code: number[] = [];
    this.insns.forEach((ins, k) => {
      const b = ins.bytes.slice();
      if (ins.target !== undefined && ins.relSize) {
        const rel = offsets[ins.target] - (offsets[k] + b.length);
        if (ins.relSize === 1 && (rel < -128 || rel > 127)) throw new Error("rel8 out of range");
        const at = b.length - ins.relSize;
        for (let j = 0; j < ins.relSize; j++) b[at + j] = (rel >>> (8 * j)) & 0xff;
      }
      code.push(...b);
    });
    // Absolute targets (PUSH imm32 of a code address, MOV reg, imm32 then JMP reg).
    this.insns.forEach((ins, k) => {
      if (!ins.absFix) return;
      const { insn, at, target } = ins.absFix;
      const v = CODE_BASE + offsets[target];
      const p = offsets[insn] + at;
      for (let j = 0; j < 4; j++) code[p + j] = (v >>> (8 * j)) & 0xff;
      void k;
    });
    return { code, offsets };
  }

  /**
   * Undefined arithmetic flags at each instruction boundary (forward data flow
   * over fall-through and branch edges, iterated to a fixed point for loops).
   * Returns `inState[i]` for i in 0..n (n = the final int3), or null when some
   * instruction reads a flag that may be undefined there.
   */
  flagFlow(): number[] | null {
    const n = this.insns.length;
    const inS = new Array(n + 1).fill(0);
    for (let iter = 0; iter < 50; iter++) {
      let changed = false;
      const next = new Array(n + 1).fill(0);
      for (let i = 0; i < n; i++) {
        const ins = this.insns[i];
        const out = (inS[i] & ~ins.writes) | ins.undef;
        if (!ins.noFall) next[i + 1] |= out;
        if (ins.target !== undefined) next[ins.target] |= out;
        if (ins.absFix) next[ins.absFix.target] |= out;
        if (ins.absMem) next[ins.absMem.target] |= out;
      }
      for (let i = 0; i <= n; i++) {
        if (next[i] !== inS[i]) {
          inS[i] = next[i] | inS[i];
          changed = true;
        }
      }
      if (!changed) break;
    }
    for (let i = 0; i < n; i++) if ((this.insns[i].reads & inS[i]) !== 0) return null;
    return inS;
  }

  /** A readable description of the case's instructions. */
  describe(): string {
    return this.insns.map((i) => i.text).join("; ") + (this.note ? ` (${this.note})` : "");
  }
}

/** True when `[a, a+size)` lies in the LOW or DATA region. */
export function inRegion(a: number, size = 1): boolean {
  a >>>= 0;
  return (a >= LOW_BASE && a + size <= LOW_BASE + LOW_SIZE) ||
    (a >= DATA_BASE && a + size <= DATA_BASE + DATA_SIZE);
}

/** Append `v` as `size` little-endian bytes. */
export function pushLE(out: number[], v: number, size: number): void {
  for (let i = 0; i < size; i++) out.push((v >>> (8 * i)) & 0xff);
}

/** Signed hex for displacements. */
export function hexs(v: number, size: number): string {
  const bits = size * 8;
  let x = v;
  if (bits < 32) x = (v << (32 - bits)) >> (32 - bits);
  else x = v | 0;
  return x < 0 ? `-0x${(-x).toString(16)}` : `0x${x.toString(16)}`;
}

/** Unsigned hex. */
export function hx(v: number): string {
  return "0x" + (v >>> 0).toString(16);
}

/** A generated case before and after its native run. */
export interface Pending {
  /** The builder (instructions, flags effects). */
  b: CaseBuilder;
  /** The case without `expect` and masks yet. */
  c: Omit<OracleCase, "expect" | "flagsMask">;
  /** Instruction offsets (for mapping a fault EIP to an instruction). */
  offsets: number[];
  /** Undefined flags at each boundary. */
  flow: number[];
}

/** Turn a finished builder into a pending case; null if its flag flow is invalid. */
export function finishCase(b: CaseBuilder, id: number): Pending | null {
  b.finishRegs();
  const flow = b.flagFlow();
  if (!flow) return null;
  const { code, offsets } = b.layout();
  for (const ins of b.insns) {
    if (ins.absMem) b.setMem(ins.absMem.addr, CODE_BASE + offsets[ins.absMem.target], 4);
  }
  const mem: [number, string][] = [];
  const addrs = [...b.mem.keys()].sort((x, y) => x - y);
  for (let i = 0; i < addrs.length;) {
    let j = i + 1;
    while (j < addrs.length && addrs[j] === addrs[j - 1] + 1) j++;
    mem.push([addrs[i], toHex(addrs.slice(i, j).map((a) => b.mem.get(a)!))]);
    i = j;
  }
  const c: Pending["c"] = {
    id,
    code: toHex(code),
    desc: b.describe(),
    regs: b.regs.map((v) => v >>> 0),
    eflags: b.eflags >>> 0,
  };
  if (mem.length) c.mem = mem;
  if (b.fpu) c.fpu = toHex(b.fpu);
  return { b, c, offsets, flow };
}

/**
 * Complete a pending case with its native result: the flag mask comes from the
 * data flow at the instruction where the run stopped (the faulting instruction,
 * or the end), and register/memory masks from instructions that ran.
 */
export function completeCase(p: Pending, e: Expected): OracleCase {
  const off = (e.eip - CODE_BASE) | 0;
  let stop = p.offsets.indexOf(off);
  if (e.vec === 3) stop = p.b.insns.length; // int3 at the end: EIP is one past it
  if (stop < 0) stop = p.b.insns.length;
  const undef = p.flow[stop];
  const flagsMask = (~undef & ~0x10000) >>> 0;
  const oc: OracleCase = { ...p.c, flagsMask, expect: e };
  // Register / memory bits left undefined by instructions that completed.
  const regMask = [-1, -1, -1, -1, -1, -1, -1, -1];
  let anyReg = false;
  const memMask = new Map<number, number>();
  for (let i = 0; i < Math.min(stop, p.b.insns.length); i++) {
    for (const [reg, m] of p.b.insns[i].regUndef ?? []) {
      regMask[reg] &= ~m;
      anyReg = true;
    }
    for (const [a, m] of p.b.insns[i].memUndef ?? []) memMask.set(a, (memMask.get(a) ?? 0xff) & ~m);
  }
  if (e.vec !== 3 && stop < p.b.insns.length) {
    for (const [a, m] of p.b.insns[stop].memUndefOnFault ?? []) {
      memMask.set(a, (memMask.get(a) ?? 0xff) & ~m);
    }
  }
  if (anyReg) oc.regMask = regMask.map((m) => m >>> 0);
  if (p.b.wantFpu) {
    // x87 status bits undefined where the run stopped.
    let und = 0;
    for (let i = 0; i < Math.min(stop, p.b.insns.length); i++) {
      und = p.b.insns[i].swUndefAfter ?? und;
    }
    oc.fpuSwMask = 0xffff & ~und;
  }
  if (memMask.size) {
    oc.memMask = [...memMask.entries()].sort((a, b) => a[0] - b[0]).map((
      [a, m],
    ) => [a, m.toString(16).padStart(2, "0")]);
  }
  return oc;
}
