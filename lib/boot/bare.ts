/**
 * The bare machine: the CPU with no hypervisor, RAM, a COM1 UART and QEMU's
 * isa-debug-exit port. It loads an ELF by physical address and enters it at
 * ring 0 with flat segments and paging off (a bzImage goes by the 32-bit boot
 * protocol instead, lib/boot/bzimage.ts), so the same small test kernel runs
 * on lguest.ts, QEMU and v86 alike. A run ends when the guest halts with
 * interrupts off (`cli; hlt`), writes to port 0x501, or faults with no way to
 * deliver the fault.
 *
 * @module
 */

import { CPU, Exit } from "../x86/cpu.ts";
import { IF, vectorName } from "../x86/flags.ts";
export { vectorName };
import { PhysicalMemory } from "../x86/memory.ts";
import { BootError } from "./errors.ts";
import { isElf, loadElf, parseElf } from "./elf.ts";
import { enterBzImage32, isBzImage, loadBzImage, parseBzImage } from "./bzimage.ts";
import { findMultiboot, loadMultiboot, MULTIBOOT_BOOTLOADER_MAGIC } from "./multiboot.ts";
import { COM1, Uart16550 } from "./uart.ts";
import { CONSOLE_LOG_BYTES, ConsoleLog } from "./console_log.ts";

/** isa-debug-exit's port (QEMU's convention: status = (value << 1) | 1). */
export const DEBUG_EXIT_PORT = 0x501;

/** How a bare run ended. */
export interface BareResult {
  /** "halt" (cli; hlt), "debug-exit", "exception", "shutdown" or "limit". */
  reason: "halt" | "debug-exit" | "exception" | "shutdown" | "limit";
  /** Process exit status a front end should use. */
  status: number;
  /** One line describing the end. */
  message: string;
  /** Retired guest instructions. */
  instructions: number;
  /** Wall-clock seconds spent in the CPU. */
  seconds: number;
}

/** A bare i386 machine. */
export class BareMachine {
  /** Guest RAM. */
  readonly mem: PhysicalMemory;
  /** The CPU. */
  readonly cpu: CPU;
  /** COM1. */
  readonly uart: Uart16550;
  /** What the guest sent to COM1: the last `outputBytes` (1 MiB by default), with counts. */
  readonly output: ConsoleLog;
  /** Value written to the debug-exit port, if any. */
  debugExit: number | null = null;

  /**
   * A machine with `memMiB` of RAM, COM1 and the debug-exit port, no kernel yet.
   *
   * @param memMiB RAM size in MiB
   * @param console receives COM1 output bytes
   * @param outputBytes bytes of COM1 output kept in {@link output}
   */
  constructor(
    memMiB: number,
    console: (byte: number) => void = () => {},
    outputBytes = CONSOLE_LOG_BYTES,
  ) {
    this.mem = new PhysicalMemory(memMiB * 0x100000);
    this.cpu = new CPU(this.mem);
    const output = this.output = new ConsoleLog(outputBytes);
    this.uart = new Uart16550(COM1, (b) => (output.push(b), console(b)));
    this.cpu.bus.registerPorts(COM1, 8, this.uart);
    // A bare machine delivers every exception and interrupt through the guest's IDT;
    // until the guest loads one, the IDT is empty (any exception ends in a triple fault).
    this.cpu.exitVectors.fill(0);
    this.cpu.idtLimit = 0;
    this.cpu.bus.registerPorts(DEBUG_EXIT_PORT, 1, {
      in: () => 0xff,
      out: (_p, v) => {
        this.debugExit = v & 0xff;
        this.cpu.requestStop();
      },
    });
  }

  /**
   * Load a kernel and point the CPU at its entry: a Multiboot v1 kernel (ELF
   * or a.out kludge; EAX = 0x2BADB002, EBX = the information structure), a
   * bzImage (recognised by "HdrS") by the 32-bit boot protocol with `cmdline`
   * as its command line (see lib/boot/bzimage.ts), or a plain ELF by physical
   * address.
   */
  loadKernel(bytes: Uint8Array, name = "kernel", cmdline = ""): void {
    const mb = isBzImage(bytes) ? null : findMultiboot(bytes);
    if (mb !== null) {
      const { entry, info } = loadMultiboot(this.mem, bytes, mb, name, cmdline);
      this.cpu.eip = entry | 0;
      this.cpu.regs[0] = MULTIBOOT_BOOTLOADER_MAGIC;
      this.cpu.regs[3] = info;
      return;
    }
    if (isBzImage(bytes)) {
      const img = parseBzImage(bytes, name);
      enterBzImage32(this.cpu, loadBzImage(this.mem, img, { cmdline }, name));
      return;
    }
    if (!isElf(bytes)) throw new BootError(`${name}: not an ELF, a Multiboot kernel or a bzImage`);
    const img = parseElf(bytes, name);
    loadElf(this.mem, img, bytes, name);
    this.cpu.eip = img.entry | 0;
  }

  /** Run until the guest ends (or `maxInsns` instructions, 0 = no limit). */
  run(maxInsns = 0): BareResult {
    const cpu = this.cpu;
    const t0 = performance.now();
    const done = (reason: BareResult["reason"], status: number, message: string): BareResult => ({
      reason,
      status,
      message,
      instructions: cpu.icount,
      seconds: (performance.now() - t0) / 1000,
    });
    for (;;) {
      const budget = maxInsns > 0 ? Math.min(1 << 22, maxInsns - cpu.icount) : 1 << 22;
      if (budget <= 0) return done("limit", 3, `stopped after ${cpu.icount} instructions`);
      const exit = cpu.run(budget);
      switch (exit) {
        case Exit.Budget:
          continue;
        case Exit.Stop:
          if (this.debugExit !== null) {
            return done(
              "debug-exit",
              (this.debugExit << 1) | 1,
              `debug exit 0x${this.debugExit.toString(16)}`,
            );
          }
          continue;
        case Exit.Halt:
          if ((cpu.getEflags() & IF) === 0) return done("halt", 0, "halted with interrupts off");
          return done(
            "halt",
            0,
            "halted waiting for an interrupt (none can come on the bare machine)",
          );
        case Exit.Exception: {
          const err = cpu.exitError >= 0 ? `(0x${cpu.exitError.toString(16)})` : "";
          const cr2 = cpu.exitVector === 14 ? ` cr2=0x${(cpu.exitCr2 >>> 0).toString(16)}` : "";
          return done(
            "exception",
            1,
            `unhandled ${vectorName(cpu.exitVector)}${err} at eip=0x${
              (cpu.eip >>> 0).toString(16)
            }${cr2}`,
          );
        }
        default:
          return done("shutdown", 1, `shutdown: ${cpu.exitMessage}`);
      }
    }
  }
}
