/**
 * lguest.ts: lguest, the tiny Linux hypervisor, as a TypeScript toolkit.
 *
 * This module is the scripting API. Today it exports the i386 CPU ("the
 * hardware"), its physical memory, and the bare-machine launcher; the lguest
 * host, the launcher's boot protocol and the debugger join it as they land.
 *
 * ```ts
 * import { BareMachine } from "./mod.ts";
 * const m = new BareMachine(16, (b) => console.log(String.fromCharCode(b)));
 * m.loadKernel(Deno.readFileSync("examples/hello.elf"));
 * console.log(m.run());
 * ```
 *
 * @module
 */

export { CPU, CPU_EXIT, Exit } from "./lib/x86/cpu.ts";
export type { ExitCode, PortHandler } from "./lib/x86/cpu.ts";
export { CS, DS, EAX, EBP, EBX, ECX, EDI, EDX, ES, ESI, ESP, FS, GS, SS } from "./lib/x86/cpu.ts";
export { PhysicalMemory } from "./lib/x86/memory.ts";
export * as flags from "./lib/x86/flags.ts";
export { CPUID_FEATURES_EDX } from "./lib/x86/cpuid.ts";
export { BareMachine, DEBUG_EXIT_PORT, vectorName } from "./lib/boot/bare.ts";
export type { BareResult } from "./lib/boot/bare.ts";
export { isElf, loadElf, parseElf } from "./lib/boot/elf.ts";
export type { ElfImage, ElfSegment } from "./lib/boot/elf.ts";
export { BootError } from "./lib/boot/errors.ts";
export { parseLauncherArgs, USAGE } from "./lib/boot/cmdline.ts";
export type { LauncherArgs } from "./lib/boot/cmdline.ts";
export { COM1, Uart16550 } from "./lib/boot/uart.ts";
