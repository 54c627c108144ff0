/**
 * EFLAGS bits, exception vectors, and the parity table.
 *
 * The arithmetic flags (CF PF AF ZF SF OF) are computed lazily by the CPU: an
 * arithmetic instruction records its operands and result, and a flag is worked
 * out only when something reads it. These constants name the bits both the lazy
 * and the concrete representations use.
 *
 * @module
 */

/** Carry flag. */
export const CF = 0x0001;
/** Reserved bit 1, always reads as 1. */
export const FLAG_R1 = 0x0002;
/** Parity flag (even parity of the low byte of the result). */
export const PF = 0x0004;
/** Auxiliary (BCD half-) carry flag. */
export const AF = 0x0010;
/** Zero flag. */
export const ZF = 0x0040;
/** Sign flag. */
export const SF = 0x0080;
/** Trap flag (single-step). */
export const TF = 0x0100;
/** Interrupt-enable flag. */
export const IF = 0x0200;
/** Direction flag. */
export const DF = 0x0400;
/** Overflow flag. */
export const OF = 0x0800;
/** I/O privilege level (two bits). */
export const IOPL = 0x3000;
/** Nested task. */
export const NT = 0x4000;
/** Resume flag. */
export const RF = 0x10000;
/** Virtual-8086 mode. */
export const VM = 0x20000;
/** Alignment check. */
export const AC = 0x40000;
/** Virtual interrupt flag. */
export const VIF = 0x80000;
/** Virtual interrupt pending. */
export const VIP = 0x100000;
/** CPUID-available flag (software may toggle it). */
export const ID = 0x200000;

/** The single-bit EFLAGS flags by name, lowest first (IOPL, two bits, is apart). */
export const EFLAGS_BITS: readonly (readonly [number, string])[] = [
  [0x1, "CF"],
  [0x4, "PF"],
  [0x10, "AF"],
  [0x40, "ZF"],
  [0x80, "SF"],
  [0x100, "TF"],
  [0x200, "IF"],
  [0x400, "DF"],
  [0x800, "OF"],
  [0x4000, "NT"],
  [0x10000, "RF"],
  [0x20000, "VM"],
  [0x40000, "AC"],
  [0x80000, "VIF"],
  [0x100000, "VIP"],
  [0x200000, "ID"],
];

/** The six arithmetic status flags. */
export const ARITH_FLAGS = CF | PF | AF | ZF | SF | OF;

/** Exception vectors by their SDM mnemonics. */
export const Vec = {
  DE: 0,
  DB: 1,
  NMI: 2,
  BP: 3,
  OF: 4,
  BR: 5,
  UD: 6,
  NM: 7,
  DF: 8,
  TS: 10,
  NP: 11,
  SS: 12,
  GP: 13,
  PF: 14,
  MF: 16,
  AC: 17,
  MC: 18,
  XM: 19,
} as const;

/** PARITY[b] is PF (0x04) when byte b has an even number of set bits, else 0. */
export const PARITY: Uint8Array = (() => {
  const t = new Uint8Array(256);
  for (let i = 0; i < 256; i++) {
    let n = 0;
    for (let b = i; b; b >>= 1) n += b & 1;
    t[i] = (n & 1) === 0 ? PF : 0;
  }
  return t;
})();

/** Condition-code suffixes in encoding order (the low nibble of Jcc/SETcc/CMOVcc). */
export const CONDITION_NAMES = [
  "o",
  "no",
  "b",
  "ae",
  "e",
  "ne",
  "be",
  "a",
  "s",
  "ns",
  "p",
  "np",
  "l",
  "ge",
  "le",
  "g",
] as const;

const VECTOR_NAMES = [
  "#DE",
  "#DB",
  "NMI",
  "#BP",
  "#OF",
  "#BR",
  "#UD",
  "#NM",
  "#DF",
  "#09",
  "#TS",
  "#NP",
  "#SS",
  "#GP",
  "#PF",
  "#15",
  "#MF",
  "#AC",
  "#MC",
  "#XM",
];

/** Name of an exception vector (e.g. "#GP"), or "INT 0xNN" beyond the exceptions. */
export function vectorName(v: number): string {
  return v < VECTOR_NAMES.length ? VECTOR_NAMES[v] : `INT 0x${v.toString(16)}`;
}
