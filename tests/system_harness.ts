/**
 * Runs the system-test guests (tests/guests/*.bin) on lguest.ts's bare
 * machine and collects what they report.
 *
 * A guest is a flat binary with a Multiboot header (the "a.out kludge": load
 * address and entry point in the header), so the same bytes boot on QEMU with
 * `-kernel`. The harness reads that header, loads the image where it asks,
 * enters it the way a Multiboot loader does (EAX = 0x2BADB002, flat 32-bit
 * protected mode, paging off, interrupts off) and runs it on a
 * {@link BareMachine}, which delivers every exception through the guest's own
 * IDT. The guest prints `name=XXXXXXXX` lines on port 0xE9 (QEMU's debugcon)
 * and stops by writing to port 0x501 (isa-debug-exit); {@link GuestRun.results}
 * holds the parsed lines for the tests to assert, and
 * `tests/guests/qemu_check.ts` compares them with QEMU's.
 *
 * Port 0x510 is this harness's own: a byte written there is raised as an
 * external interrupt (`cpu.raiseIrq`), so a guest can test interrupt delivery
 * at exact instruction boundaries.
 *
 * @module
 */

import { readFileSync } from "node:fs";
import { BareMachine } from "../lib/boot/bare.ts";
import { Exit, type ExitCode } from "../lib/x86/cpu.ts";

/** Port the guests report on (QEMU debugcon). */
export const REPORT_PORT = 0xe9;
/** Port that raises the written byte as an external interrupt (lguest.ts harness only). */
export const IRQ_PORT = 0x510;

/** The report lines of a run, by name; `get` throws for a name the guest never printed. */
export class Results {
  /** Values by name, as unsigned 32-bit numbers. */
  readonly values: Map<string, number> = new Map();

  /** The value reported as `name`. */
  get(name: string): number {
    const v = this.values.get(name);
    if (v === undefined) throw new Error(`guest did not report ${name}`);
    return v;
  }

  /** Whether the guest reported `name`. */
  has(name: string): boolean {
    return this.values.has(name);
  }

  /** Add the `name=XXXXXXXX` lines of `text` (other lines are an error). */
  parse(text: string): void {
    for (const line of text.split("\n")) {
      if (line === "") continue;
      const m = /^([\w.]+)=([0-9a-f]{8})$/.exec(line);
      if (!m) throw new Error(`malformed report line: ${JSON.stringify(line)}`);
      if (this.values.has(m[1])) throw new Error(`reported twice: ${m[1]}`);
      this.values.set(m[1], parseInt(m[2], 16));
    }
  }
}

/** How {@link GuestRun.run} stopped. */
export type GuestStop = "exit" | "halt" | "shutdown" | "exception" | "limit";

/** A guest on the bare machine, with its report channel. */
export class GuestRun {
  /** The machine (its CPU is `machine.cpu`). */
  readonly machine: BareMachine;
  /** Everything written to the report port so far. */
  text = "";
  /** Why the last `run` stopped. */
  stop: GuestStop = "limit";
  /** The CPU's exit code for that stop. */
  exit: ExitCode = Exit.Budget;

  /**
   * Load `tests/guests/<name>.bin` (or the given image bytes) into a fresh
   * bare machine of `memMiB` MiB.
   */
  constructor(name: string, memMiB = 16, image?: Uint8Array) {
    const file = image ??
      new Uint8Array(readFileSync(new URL(`./guests/${name}.bin`, import.meta.url)));
    this.machine = new BareMachine(memMiB);
    const cpu = this.machine.cpu;
    // A Multiboot loader's entry: EAX = 0x2BADB002, EBX = the information structure.
    this.machine.loadKernel(file, `${name}.bin`);
    cpu.bus.registerPorts(REPORT_PORT, 1, {
      in: () => 0xff,
      out: (_p, v) => {
        this.text += String.fromCharCode(v & 0xff);
      },
    });
    cpu.bus.registerPorts(IRQ_PORT, 1, {
      in: () => 0xff,
      out: (_p, v) => cpu.raiseIrq(v & 0xff),
    });
  }

  /**
   * Run until the guest writes to isa-debug-exit ("exit"), halts ("halt": HLT
   * leaves `run` on the bare machine; call `run` again to go on), shuts down,
   * stops on an exception no IDT entry could take, or runs `maxInsns` more
   * instructions ("limit").
   */
  run(maxInsns = 50_000_000): GuestStop {
    const m = this.machine, cpu = m.cpu;
    const end = cpu.icount + maxInsns;
    for (;;) {
      const left = end - cpu.icount;
      if (left <= 0) return this.stop = "limit";
      const e = cpu.run(Math.min(left, 1 << 22));
      this.exit = e;
      if (e === Exit.Budget) continue;
      if (e === Exit.Stop) {
        if (m.debugExit !== null) return this.stop = "exit";
        continue;
      }
      if (e === Exit.Halt) return this.stop = "halt";
      if (e === Exit.Shutdown) return this.stop = "shutdown";
      return this.stop = "exception";
    }
  }

  /** The report lines parsed so far. */
  results(): Results {
    const r = new Results();
    r.parse(this.text);
    return r;
  }
}

/**
 * Run guest `name` to its end and return its results; throws (with the report
 * so far) unless it ended cleanly through isa-debug-exit with `end=0` and no
 * unexpected exception.
 */
export function runGuest(name: string, memMiB = 16): Results {
  const g = new GuestRun(name, memMiB);
  const stop = g.run();
  const r = g.results();
  const cpu = g.machine.cpu;
  if (r.has("unexpected.vec")) {
    throw new Error(
      `${name}: unexpected exception ${r.get("unexpected.vec")} error ${
        r.get("unexpected.err").toString(16)
      } at eip=0x${r.get("unexpected.eip").toString(16)}\n${g.text}`,
    );
  }
  if (stop !== "exit" || g.machine.debugExit !== 0 || !r.has("end")) {
    throw new Error(
      `${name}: stopped (${stop}) at eip=0x${
        (cpu.eip >>> 0).toString(16)
      }: ${cpu.exitMessage}\n${g.text}`,
    );
  }
  return r;
}
