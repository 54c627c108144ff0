/**
 * Disassembly through iced-x86 (the same decoder the CPU's decoder is checked
 * against), in Intel, AT&T, NASM or MASM syntax. iced lives in WebAssembly:
 * every Decoder and Instruction is freed as soon as it has been read, and the
 * formatters are made once per syntax and kept.
 *
 * iced is loaded on first use, not on import: its WebAssembly is read by
 * {@link loadDisassembler} (the debugger's commands that disassemble call it),
 * so a script that never disassembles never reads it and needs no read
 * permission for it. Like fflate (lib/boot/gzip.ts) it is imported by an
 * `npm:` specifier under Deno and by the plain package name elsewhere, so
 * importers need no configuration.
 *
 * @module
 */

// deno-lint-ignore no-import-prefix -- inline, so that importers need no import map
import type { Instruction } from "npm:iced-x86@^1.21.0";
import { DebugError } from "./expr.ts";

type Iced = typeof import("npm:iced-x86@^1.21.0");

let iced: Iced | null = null;
let loading: Promise<void> | null = null;
let failure = "";

/**
 * Load the disassembler (iced-x86 and its WebAssembly) if it is not loaded
 * yet; {@link disassemble} works once this has resolved. Every call returns
 * the same promise until a load fails (rejecting with a {@link DebugError}
 * saying why); the next call then tries again.
 */
export function loadDisassembler(): Promise<void> {
  loading ??= ("Deno" in globalThis
    // deno-lint-ignore no-import-prefix -- inline, so that importers need no import map
    ? import("npm:iced-x86@^1.21.0")
    : import("iced-x86")).then(
      (m: Iced) => {
        iced = m;
        failure = "";
      },
      (e: unknown) => {
        loading = null;
        failure = (e instanceof Error ? e.message : String(e)).split("\n")[0];
        throw new DebugError(`the disassembler (iced-x86) could not be loaded: ${failure}`);
      },
    );
  return loading;
}

/** True once {@link loadDisassembler} has succeeded. */
export function disassemblerLoaded(): boolean {
  return iced !== null;
}

function loaded(): Iced {
  if (iced) return iced;
  throw new DebugError(
    failure
      ? `the disassembler (iced-x86) could not be loaded: ${failure}`
      : "the disassembler is not loaded yet (await loadDisassembler() first)",
  );
}

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

type Formatter = InstanceType<Iced["Formatter"]>;

const formatters = new Map<Syntax, Formatter>();

function formatter(m: Iced, syntax: Syntax): Formatter {
  let f = formatters.get(syntax);
  if (!f) {
    const { FormatterSyntax } = m;
    f = new m.Formatter(
      syntax === "intel"
        ? FormatterSyntax.Intel
        : syntax === "att"
        ? FormatterSyntax.Gas
        : syntax === "nasm"
        ? FormatterSyntax.Nasm
        : FormatterSyntax.Masm,
    );
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

function flowOf(m: Iced, i: Instruction): Flow {
  const { FlowControl } = m;
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
 * `addr`. Stops early when the bytes run out mid-instruction. Throws a
 * {@link DebugError} unless {@link loadDisassembler} has succeeded.
 */
export function disassemble(
  bytes: Uint8Array,
  addr: number,
  max: number,
  syntax: Syntax = "intel",
): DisasmLine[] {
  const m = loaded();
  const out: DisasmLine[] = [];
  if (bytes.length === 0 || max <= 0) return out;
  const fmt = formatter(m, syntax);
  const dec = new m.Decoder(32, bytes, m.DecoderOptions.None);
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
        const target = k === m.OpKind.NearBranch32 || k === m.OpKind.NearBranch16
          ? i.nearBranch32 >>> 0
          : null;
        out.push({
          addr: (addr + off) >>> 0,
          bytes: bytes.slice(off, off + len),
          text: invalid ? "(bad)" : fmt.format(i),
          len,
          flow: invalid ? "other" : flowOf(m, i),
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
