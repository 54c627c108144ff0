/**
 * lguest.ts: lguest, the tiny Linux hypervisor, as a TypeScript toolkit.
 *
 * This module is the scripting API, for Deno and Bun alike, and it needs no
 * configuration of the importer's: import it by path, by `file://` or
 * `http(s)://` URL (Deno; `-A`, or `--allow-import` for the host), or as the
 * installed package `@lguest/lguest-ts` (Bun). Four layers, each usable on
 * its own:
 *
 * - the hardware: {@link CPU} (an i386 with x87) and {@link PhysicalMemory};
 * - the host: {@link Guest}, the lguest hypervisor's view of one guest
 *   (shadow page tables, hypercalls, trap and interrupt delivery);
 * - the launchers: {@link Launcher} (lguest's: boot_params, devices, the 2007
 *   and 2011 page-table styles) and {@link BareMachine} (the CPU alone);
 * - the debugger: {@link Debugger} (breakpoints, watchpoints, stepping,
 *   hypercalls by hand) over a {@link LguestTarget} or {@link BareTarget},
 *   and {@link Session}, its command language (the REPL's, without the
 *   terminal), plus the page-table walkers and views the REPL prints.
 *
 * The disassembler (iced-x86, WebAssembly) is loaded on first use: the
 * debugger's commands that disassemble load it themselves; before calling
 * {@link disassemble} or `Debugger.disasm` directly, `await
 * loadDisassembler()` (it reads iced's WebAssembly, so Deno needs read
 * permission then).
 *
 * ```ts
 * import { Debugger, Launcher, LguestTarget, Session } from "./mod.ts";
 * const l = new Launcher({ memMiB: 16, kernel: Deno.readFileSync("examples/lguest/paging.elf") });
 * const dbg = new Debugger(new LguestTarget(l));
 * const s = new Session(dbg, { write: (t) => console.log(t) });
 * dbg.breakHcall(4); // LHCALL_NEW_PGTABLE
 * await dbg.continue();
 * await s.exec("pgdir guest");
 * await dbg.step();
 * await s.exec("pgdirs; translate eip");
 * ```
 *
 * @module
 */

// ------------------------------------------------------------------ the hardware
export { CPU, CPU_EXIT, Exit } from "./lib/x86/cpu.ts";
export type { ExitCode } from "./lib/x86/cpu.ts";
export { Bus } from "./lib/x86/bus.ts";
export type { MmioRegion, PortHandler } from "./lib/x86/bus.ts";
export { CS, DS, EAX, EBP, EBX, ECX, EDI, EDX, ES, ESI, ESP, FS, GS, SS } from "./lib/x86/cpu.ts";
export { CR0_PG, CR0_WP, CR4_PAE, CR4_PSE } from "./lib/x86/cpu.ts";
export { PhysicalMemory } from "./lib/x86/memory.ts";
export type { FPU } from "./lib/x86/fpu.ts";
export * as flags from "./lib/x86/flags.ts";
export { CPUID_FEATURES_EDX } from "./lib/x86/cpuid.ts";

// ------------------------------------------------------------------ the lguest host
export { Guest } from "./lib/lguest/guest.ts";
export type { GuestOptions, RunStop } from "./lib/lguest/guest.ts";
export type { HostPages } from "./lib/lguest/hostmem.ts";
export type { GuestGdt } from "./lib/lguest/segments.ts";
export type { GuestIdt } from "./lib/lguest/interrupts_and_traps.ts";
export { gateDpl, handleTrap, Trap, TrapKind } from "./lib/lguest/traps.ts";
export { Demand, PGDIR_SLOTS, ShadowPageTables } from "./lib/lguest/page_tables.ts";
export type { PgdirSlot } from "./lib/lguest/page_tables.ts";
export { hypercallName } from "./lib/lguest/hypercalls.ts";
export type { HypercallRecord } from "./lib/lguest/hypercalls.ts";
export {
  KERNEL_CS,
  KERNEL_DS,
  LGUEST_DATA,
  LGUEST_TRAP_ENTRY,
  LHCALL,
  LHCALL_NAMES,
  PTE,
} from "./lib/lguest/abi.ts";

// ------------------------------------------------------------------ the devices
export type { DeviceHost } from "./lib/devices/host.ts";
export { MemoryDeviceHost } from "./lib/devices/host.ts";
export { PciBus } from "./lib/devices/pci.ts";
export type { PciFunction } from "./lib/devices/pci.ts";
export { VirtioDevice, VirtioPciFunction } from "./lib/devices/virtio_pci.ts";
export { Virtqueue } from "./lib/devices/virtqueue.ts";
export type { DescChain, VirtBuffer } from "./lib/devices/virtqueue.ts";
export { VirtioConsole } from "./lib/devices/virtio_console.ts";
export { type BlockDisk, VirtioBlock } from "./lib/devices/virtio_blk.ts";
export { openDisk } from "./lib/boot/disk_file.ts";
export { seededBytes, VirtioRng } from "./lib/devices/virtio_rng.ts";
export { VirtioNet } from "./lib/devices/virtio_net.ts";
export type { NetBackend } from "./lib/devices/net_backend.ts";
export { NetResponder } from "./lib/devices/net_responder.ts";
export { NetSocket } from "./lib/devices/net_socket.ts";

// ------------------------------------------------------------------ the launchers
export { guestDeviceHost, Launcher } from "./lib/boot/launcher.ts";
export type { LaunchOptions, LoadedKernel } from "./lib/boot/launcher.ts";
export { QUIET_NS, ScriptedConsoleInput } from "./lib/boot/console_input.ts";
export type { ConsoleDelivery } from "./lib/boot/console_input.ts";
export { APPENDIX_B_NOTE, ConsoleWatch, endReason } from "./lib/boot/diagnosis.ts";
export { BareMachine, DEBUG_EXIT_PORT, vectorName } from "./lib/boot/bare.ts";
export type { BareResult } from "./lib/boot/bare.ts";
export { isElf, loadElf, parseElf } from "./lib/boot/elf.ts";
export type { ElfImage, ElfSegment } from "./lib/boot/elf.ts";
export { BootError } from "./lib/boot/errors.ts";
export { parseLauncherArgs, parseNetArg, USAGE } from "./lib/boot/cmdline.ts";
export type { LauncherArgs, NetArg } from "./lib/boot/cmdline.ts";
export { COM1, Uart16550 } from "./lib/boot/uart.ts";
export { CONSOLE_LOG_BYTES, ConsoleLog, ConsoleReader } from "./lib/boot/console_log.ts";

// ------------------------------------------------------------------ the debugger
export { Debugger, watchText } from "./lib/debug/debugger.ts";
export type {
  BreakKind,
  Breakpoint,
  DebuggerOptions,
  HcallResult,
  RunOptions,
  StopEvent,
  StopReason,
  TraceKind,
  TraceSink,
  WatchHit,
} from "./lib/debug/debugger.ts";
export { BareTarget, LguestTarget } from "./lib/debug/target.ts";
export type { RunResult, Target } from "./lib/debug/target.ts";
export { helpLines, Session } from "./lib/debug/session.ts";
export type { Command, Fmt, SessionOptions, Write } from "./lib/debug/session.ts";
export { disassemble, disassemblerLoaded, loadDisassembler, SYNTAXES } from "./lib/debug/disasm.ts";
export type { DisasmLine, Flow, Syntax } from "./lib/debug/disasm.ts";
export { DebugError, evaluate, parseCount, parseNumber } from "./lib/debug/expr.ts";
export type { ExprContext } from "./lib/debug/expr.ts";
export { compressRuns, dumpTables, forEachMapping, tlbRuns, walk } from "./lib/debug/paging.ts";
export type {
  DumpOptions,
  MapRun,
  PagingMode,
  Read32,
  TlbRun,
  Walk,
  WalkStep,
} from "./lib/debug/paging.ts";
export {
  diffSnapshots,
  guestPgdirText,
  lguestText,
  pgdirsText,
  shadowPgdirText,
  snapshotGuest,
  translateText,
} from "./lib/debug/lguest_view.ts";
export type { Snapshot } from "./lib/debug/lguest_view.ts";
export { disasmText, regsText, tlbText } from "./lib/debug/views.ts";
export { hex, pteFlags } from "./lib/debug/format.ts";
export { elf32, R, X86 } from "./lib/debug/guest_builder.ts";
export type { ElfOptions, Value } from "./lib/debug/guest_builder.ts";
