/**
 * Real code nobody here wrote: the decompressor of Debian's i386 kernel
 * (`linux-image-6.1.0-*-686-unsigned`, fetched by the test command's setup, see
 * tests/debian_kernel.ts; without it the test skips, saying why), run on the
 * bare machine from the 32-bit boot protocol entry until it jumps into the
 * kernel it unpacked.
 *
 * On the way the CPU runs a few billion instructions of compiler-generated C
 * (the XZ decoder, ELF parsing, the earlyprintk serial driver) and the
 * decompressor's hand-written assembly (its own GDT and far return, a
 * backwards `std; rep movsl` copy of itself, `rep stosl` over its bss). The
 * result is checked against the truth computed natively: every PT_LOAD segment
 * of the vmlinux that `xz` extracts from the same bzImage must be in guest RAM,
 * byte for byte, at its physical address, and COM1 must carry the
 * decompressor's own message. With `nokaslr` the kernel goes to its link
 * address (pref_address), so no relocation is applied and no byte may differ.
 *
 * The bzImage loader's own checks (the zero page it writes, the CPU state at
 * entry, one-line errors for malformed images) are tested first on small
 * hand-made images.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Decoder, DecoderOptions, Formatter, FormatterSyntax } from "iced-x86";
import { BareMachine } from "../lib/boot/bare.ts";
import { BootError } from "../lib/boot/errors.ts";
import { parseElf } from "../lib/boot/elf.ts";
import { kernelLoadAddress, loadBzImage, parseBzImage } from "../lib/boot/bzimage.ts";
import { BP, E820_RAM } from "../lib/boot/bootparams.ts";
import { PhysicalMemory } from "../lib/x86/memory.ts";
import { CS, DS, EBP, EBX, EDI, ESI, Exit, type ExitCode, SS } from "../lib/x86/cpu.ts";
import { debianKernel, debianVmlinux, kernelSkipReason } from "./debian_kernel.ts";

const CMDLINE = "nokaslr earlyprintk=serial,ttyS0,115200 console=ttyS0";
/** The decompressor needs about 2.3e9 instructions; more than this means it is lost. */
const INSN_LIMIT = 8_000_000_000;

/** A minimal bzImage: boot sector + `setupSects` sectors, then `code` as the protected-mode part. */
function fakeBzImage(
  code: number[],
  patch: (dv: DataView, b: Uint8Array) => void = () => {},
): Uint8Array {
  const setupSects = 1;
  const b = new Uint8Array((setupSects + 1) * 512 + code.length);
  const dv = new DataView(b.buffer);
  b[BP.setupSects] = setupSects;
  dv.setUint16(BP.bootFlag, 0xaa55, true);
  b[0x200] = 0xeb; // jmp short: its displacement is the header's length past 0x202
  b[0x201] = 0x6a;
  b.set([0x48, 0x64, 0x72, 0x53], BP.header); // "HdrS"
  dv.setUint16(BP.version, 0x20f, true);
  b[BP.loadflags] = 0x01;
  dv.setUint32(BP.code32Start, 0x100000, true);
  dv.setUint32(BP.kernelAlignment, 0x200000, true);
  b[BP.relocatableKernel] = 1;
  dv.setUint32(BP.cmdlineSize, 255, true);
  dv.setUint32(BP.prefAddress, 0x200000, true);
  dv.setUint32(BP.initSize, 0x100000, true);
  b.set(code, (setupSects + 1) * 512);
  patch(dv, b);
  return b;
}

/** mov ax,0x18; mov ds,ax; mov ss,ax; jmp 0x10:0x10000f; cli; hlt */
const ENTRY_PROBE = [
  0x66,
  0xb8,
  0x18,
  0x00,
  0x8e,
  0xd8,
  0x8e,
  0xd0,
  0xea,
  0x0f,
  0x00,
  0x10,
  0x00,
  0x10,
  0x00,
  0xfa,
  0xf4,
];

function assertBootError(fn: () => unknown, re: RegExp) {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof BootError, `expected a BootError, got ${e}`);
    assert.match(e.message, re);
    assert.ok(!e.message.includes("\n"), "message is one line");
    return true;
  });
}

describe("bzImage loader (32-bit boot protocol)", () => {
  it("writes the zero page, command line and e820 map, and enters at code32_start", () => {
    const m = new BareMachine(4);
    m.loadKernel(fakeBzImage(ENTRY_PROBE), "fake", "console=ttyS0 quiet");
    const cpu = m.cpu, mem = m.mem;
    assert.equal(cpu.eip, 0x100000);
    assert.equal(cpu.regs[ESI], 0x10000);
    assert.deepEqual([cpu.regs[EBP], cpu.regs[EDI], cpu.regs[EBX]], [0, 0, 0]);
    assert.equal(cpu.sreg[CS], 0x10);
    assert.equal(cpu.sreg[DS], 0x18);
    assert.equal(cpu.getEflags() & 0x200, 0, "interrupts off");
    const zp = 0x10000;
    assert.equal(mem.read32(zp + BP.header), 0x53726448); // "HdrS" copied from the file
    assert.equal(mem.read8(zp + BP.typeOfLoader), 0xff);
    assert.equal(mem.read8(zp + BP.loadflags) & 1, 1, "LOADED_HIGH");
    const cl = mem.read32(zp + BP.cmdLinePtr);
    const text = String.fromCharCode(...mem.slice(cl, 20));
    assert.equal(text, "console=ttyS0 quiet\0");
    assert.equal(mem.read8(zp + BP.e820Entries), 2);
    const e820 = [0, 1].map((i) => {
      const at = zp + BP.e820Table + 20 * i;
      return [mem.read32(at), mem.read32(at + 8), mem.read32(at + 16)];
    });
    assert.deepEqual(e820, [[0, 0x9f000, E820_RAM], [0x100000, (4 << 20) - 0x100000, E820_RAM]]);
    assert.equal(mem.read32(zp + BP.ramdiskImage), 0);
    // The probe reloads DS and SS from the GDT and far-jumps through 0x10: the descriptors are real.
    const r = m.run(100);
    assert.equal(r.reason, "halt", r.message);
    assert.equal(cpu.eip, 0x100011);
    assert.equal(cpu.sreg[CS], 0x10);
    assert.equal(cpu.sreg[SS], 0x18);
  });

  it("computes where the decompressor will put the kernel", () => {
    const h = parseBzImage(fakeBzImage([0x90])).header;
    assert.equal(kernelLoadAddress(h), 0x200000); // 1 MiB rounded up to 2 MiB alignment
    assert.equal(kernelLoadAddress(h, 0x2100000), 0x2200000);
    assert.equal(kernelLoadAddress({ ...h, relocatable: false }, 0x2100000), 0x200000);
  });

  it("rejects malformed images with one-line BootErrors", () => {
    const ok = fakeBzImage([0x90]);
    const mem = new PhysicalMemory(4 << 20);
    assertBootError(() => parseBzImage(ok.slice(0, 0x100), "x"), /too short/);
    assertBootError(
      () => parseBzImage(fakeBzImage([0x90], (_, b) => (b[0x202] = 0)), "x"),
      /no bzImage setup header/,
    );
    assertBootError(() => parseBzImage(ok.slice(0, 0x230), "x"), /truncated setup header/);
    assertBootError(
      () => parseBzImage(fakeBzImage([0x90], (dv) => dv.setUint16(BP.version, 0x204, true)), "x"),
      /boot protocol 2\.04 is too old/,
    );
    assertBootError(
      () => parseBzImage(ok.slice(0, 1024), "x"),
      /ends before its protected-mode code/,
    );
    assertBootError(
      () => parseBzImage(fakeBzImage([0x90], (_, b) => (b[BP.loadflags] = 0)), "x"),
      /zImage/,
    );
    assertBootError(
      () =>
        loadBzImage(
          mem,
          parseBzImage(fakeBzImage([0x90], (dv) => dv.setUint32(BP.initSize, 0x400000, true))),
          {},
          "x",
        ),
      /needs 6 MiB of RAM .* have 4 MiB/,
    );
    assertBootError(
      () => loadBzImage(mem, parseBzImage(ok), { cmdline: "a".repeat(256) }, "x"),
      /longer than the kernel's 255/,
    );
    assertBootError(
      () => new BareMachine(1).loadKernel(new Uint8Array(600), "junk"),
      /not an ELF, a Multiboot kernel or a bzImage/,
    );
  });
});

/** One line per instruction at EIP, for failure messages. */
function disassemble(m: BareMachine, at: number, count = 8): string {
  const bytes = m.mem.slice(at, count * 15);
  const dec = new Decoder(32, bytes, DecoderOptions.None);
  dec.ip = BigInt(at >>> 0);
  const fmt = new Formatter(FormatterSyntax.Nasm);
  const lines: string[] = [];
  for (let i = 0; i < count && dec.canDecode; i++) {
    const ins = dec.decode();
    lines.push(`  ${(ins.ip32 >>> 0).toString(16).padStart(8, "0")}  ${fmt.format(ins)}`);
    ins.free();
  }
  dec.free();
  fmt.free();
  return lines.join("\n");
}

function describeStop(m: BareMachine, exit: ExitCode): string {
  const cpu = m.cpu;
  const names = Object.entries(Exit).find(([, v]) => v === exit)?.[0] ?? String(exit);
  const detail = exit === Exit.Exception
    ? ` vector ${cpu.exitVector} error ${cpu.exitError} cr2 0x${(cpu.exitCr2 >>> 0).toString(16)}`
    : exit === Exit.Shutdown
    ? ` (${cpu.exitMessage})`
    : "";
  const eip = (cpu.sbase[CS] + cpu.eip) >>> 0;
  const regs = ["eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi"]
    .map((r, i) => `${r}=${(cpu.regs[i] >>> 0).toString(16)}`).join(" ");
  return `stopped by ${names}${detail} at eip=0x${
    eip.toString(16)
  } after ${cpu.icount} instructions\n` +
    `${regs}\nCOM1: ${JSON.stringify(m.output.text())}\n${disassemble(m, eip)}`;
}

/** Without the cached kernel (fetched by the test command's setup) this skips, saying why. */
const kernelSkip = kernelSkipReason();
if (kernelSkip) console.warn(`x86_decompressor_test: skipped: ${kernelSkip}`);

describe("Debian i386 kernel decompressor, run bare", () => {
  it("unpacks the kernel byte for byte and jumps to its entry", {
    timeout: 900_000,
    skip: kernelSkip,
  }, () => {
    const kernel = debianKernel();
    const vmlinuxBytes = debianVmlinux();
    const vmlinux = parseElf(vmlinuxBytes, "vmlinux");
    const bz = parseBzImage(kernel.bzImage, kernel.path);
    assert.match(bz.header.kernelVersion, /^6\.1\.0-\d+-686 /);
    // The decompressor puts a relocatable kernel at max(align_up(1 MiB), pref_address):
    // that must be where the vmlinux says its entry (startup_32, physical) is.
    const load = kernelLoadAddress(bz.header);
    assert.equal(vmlinux.entry, load, "vmlinux entry is the load address");

    const m = new BareMachine(64);
    m.loadKernel(kernel.bzImage, kernel.path, CMDLINE);
    const bootParams = m.cpu.regs[ESI];
    m.cpu.breakpoints.add(vmlinux.entry);
    let exit: ExitCode = Exit.Budget;
    while (m.cpu.icount < INSN_LIMIT) {
      exit = m.cpu.run(Math.min(50_000_000, INSN_LIMIT - m.cpu.icount));
      if (exit !== Exit.Budget) break;
    }
    if (exit === Exit.Budget) {
      assert.fail(
        `instruction limit of ${INSN_LIMIT} reached before the kernel entry: ${
          describeStop(m, exit)
        }`,
      );
    }
    assert.equal(exit, Exit.Breakpoint, describeStop(m, exit));
    assert.equal(m.cpu.eip, vmlinux.entry);

    // What the kernel's startup_32 relies on: boot_params in ESI, __BOOT_CS/__BOOT_DS.
    assert.equal(m.cpu.regs[ESI], bootParams, "ESI still points at boot_params");
    assert.equal(m.cpu.sreg[CS], 0x10);
    assert.equal(m.cpu.sreg[DS], 0x18);

    for (const [i, seg] of vmlinux.segments.entries()) {
      const want = vmlinuxBytes.subarray(seg.offset, seg.offset + seg.filesz);
      const got = m.mem.u8.subarray(seg.paddr, seg.paddr + seg.filesz);
      let differ = 0, first = -1;
      for (let k = 0; k < want.length; k++) {
        if (want[k] !== got[k]) {
          differ++;
          if (first < 0) first = k;
        }
      }
      // The bss beyond filesz is the kernel's to clear (parse_elf copies filesz bytes only).
      assert.equal(
        differ,
        0,
        `segment ${i} (paddr 0x${seg.paddr.toString(16)}, 0x${seg.filesz.toString(16)} bytes): ` +
          `${differ} bytes differ, first at paddr 0x${(seg.paddr + first).toString(16)}: ` +
          `want ${[...want.subarray(first, first + 16)].map((b) => b.toString(16))} ` +
          `got ${[...got.subarray(first, first + 16)].map((b) => b.toString(16))}`,
      );
    }

    // Debian builds without X86_VERBOSE_BOOTUP, so the decompressor's debug_putstr
    // ("Decompressing Linux...") is compiled out; its warnings go to earlyprintk's UART.
    const out = m.output.text();
    assert.ok(
      out.includes("KASLR disabled: 'nokaslr' on cmdline.\r\n"),
      `COM1 output: ${JSON.stringify(out)}`,
    );
  });
});
