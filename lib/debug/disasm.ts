/**
 * Disassembly through iced-x86 (the same decoder the CPU's decoder is checked
 * against), in Intel, AT&T, NASM or MASM syntax. iced lives in WebAssembly:
 * every Decoder and Instruction is freed as soon as it has been read, and the
 * formatters are made once per syntax and kept.
 *
 * @module
 */

import {
  Decoder,
  DecoderOptions,
  FlowControl,
  Formatter,
  FormatterSyntax,
  type Instruction,
  OpKind,
} from "iced-x86";

/** Disassembly syntaxes. */
export type Syntax = "intel" | "att" | "nasm" | "masm";

/** The syntaxes by name. */
export const SYNTAXES: readonly Syntax[] = ["intel", "att", "nasm", "masm"];

/** What an instruction does to the flow of control (for `next`, `finish`). */
export type Flow = "next" | "jump" | "branch" | "call" | "ret" | "int" | "other";

/** One disassembled instruction. */
export interface DisasmLine {
  /** Linear address. */
  addr: number;
  /** Its bytes. */
  bytes: Uint8Array;
  /** The instruction in the chosen syntax ("(bad)" when invalid). */
  text: string;
  /** Length in bytes. */
  len: number;
  /** Flow of control. */
  flow: Flow;
  /** Direct branch or call target, when there is one. */
  target: number | null;
  /** True when iced rejects the bytes. */
  invalid: boolean;
  /** Mnemonic in lower case (e.g. "ret", "iretd", "int"). */
  mnemonic: string;
}

const SYNTAX_ENUM: Record<Syntax, FormatterSyntax> = {
  intel: FormatterSyntax.Intel,
  att: FormatterSyntax.Gas,
  nasm: FormatterSyntax.Nasm,
  masm: FormatterSyntax.Masm,
};

const formatters = new Map<Syntax, Formatter>();

function formatter(syntax: Syntax): Formatter {
  let f = formatters.get(syntax);
  if (!f) {
    f = new Formatter(SYNTAX_ENUM[syntax]);
    f.spaceAfterOperandSeparator = true;
    f.uppercaseHex = false;
    if (syntax !== "att") {
      f.hexPrefix = "0x";
      f.hexSuffix = "";
    }
    formatters.set(syntax, f);
  }
  return f;
}

function flowOf(i: Instruction): Flow {
  switch (i.flowControl) {
    case FlowControl.Next:
      return "next";
    case FlowControl.UnconditionalBranch:
    case FlowControl.IndirectBranch:
      return "jump";
    case FlowControl.ConditionalBranch:
      return "branch";
    case FlowControl.Call:
    case FlowControl.IndirectCall:
      return "call";
    case FlowControl.Return:
      return "ret";
    case FlowControl.Interrupt:
      return "int";
    default:
      return "other";
  }
}

/**
 * Disassemble up to `max` instructions from `bytes`, which sit at linear
 * `addr`. Stops early when the bytes run out mid-instruction.
 */
export function disassemble(
  bytes: Uint8Array,
  addr: number,
  max: number,
  syntax: Syntax = "intel",
): DisasmLine[] {
  const out: DisasmLine[] = [];
  if (bytes.length === 0 || max <= 0) return out;
  const fmt = formatter(syntax);
  const dec = new Decoder(32, bytes, DecoderOptions.None);
  try {
    dec.ip = BigInt(addr >>> 0);
    let off = 0;
    while (out.length < max && dec.canDecode) {
      const i = dec.decode();
      try {
        const len = i.length;
        const invalid = i.isInvalid;
        // An instruction cut off by the end of the readable bytes: stop here.
        if (invalid && off + 15 > bytes.length && dec.lastError !== 0) {
          if (out.length === 0) {
            out.push(bad(bytes, off, addr));
          }
          break;
        }
        const k = i.op0Kind;
        const target = k === OpKind.NearBranch32 || k === OpKind.NearBranch16
          ? i.nearBranch32 >>> 0
          : null;
        out.push({
          addr: (addr + off) >>> 0,
          bytes: bytes.slice(off, off + len),
          text: invalid ? "(bad)" : fmt.format(i),
          len,
          flow: invalid ? "other" : flowOf(i),
          target,
          invalid,
          mnemonic: invalid ? "(bad)" : fmt.formatMnemonic(i).trim().split(/\s+/).pop() ?? "",
        });
        off += len;
      } finally {
        i.free();
      }
    }
  } finally {
    dec.free();
  }
  return out;
}

function bad(bytes: Uint8Array, off: number, addr: number): DisasmLine {
  return {
    addr: (addr + off) >>> 0,
    bytes: bytes.slice(off, off + 1),
    text: "(bad)",
    len: 1,
    flow: "other",
    target: null,
    invalid: true,
    mnemonic: "(bad)",
  };
}

/** Instruction bytes as `b8 01 00 00 00`. */
export function bytesText(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(" ");
}
