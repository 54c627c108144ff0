/**
 * CPUID: what this CPU says it is. It reports exactly what is implemented and
 * nothing more, because software trusts it (glibc picks SSE2 string routines
 * when CPUID says SSE2; Linux patches in instructions for advertised features).
 *
 * Leaf 0: vendor "GenuineIntel", highest leaf 1. Leaf 1: a P6-family signature
 * (family 6, model 1, stepping 9) and these EDX feature bits:
 *   FPU (0)   x87 on chip                       lib/x86/fpu.ts
 *   DE  (2)   CR4.DE debug extensions (DR4/5 aliasing only)
 *   PSE (3)   4 MiB pages with CR4.PSE           cpu.ts walk32
 *   TSC (4)   RDTSC, CR4.TSD                     exec.ts 0F 31
 *   MSR (5)   RDMSR/WRMSR                        system.ts
 *   PAE (6)   3-level paging                     cpu.ts walkPae
 *   CX8 (8)   CMPXCHG8B                          exec.ts 0F C7 /1
 *   SEP (11)  SYSENTER/SYSEXIT                   system.ts
 *   PGE (13)  CR4.PGE accepted (global pages are flushed like others, which is allowed)
 *   CMOV (15) CMOVcc and FCMOVcc
 *   FXSR (24) FXSAVE/FXRSTOR                     fpu.ts
 * Not advertised (and not implemented): VME, MCE, APIC, MTRR, MCA, PAT, PSE-36,
 * CLFLUSH, MMX, SSE and later, HTT. Extended leaves (0x80000000+) report none.
 *
 * @module
 */

import type { CPU } from "./cpu.ts";

/** The leaf-1 EDX feature bits this CPU implements. */
export const CPUID_FEATURES_EDX = (1 << 0) | (1 << 2) | (1 << 3) | (1 << 4) | (1 << 5) |
  (1 << 6) | (1 << 8) | (1 << 11) | (1 << 13) | (1 << 15) | (1 << 24);

/** Family 6, model 1, stepping 9 (a Pentium Pro-class signature). */
export const CPUID_SIGNATURE = 0x619;

/** Execute CPUID for the leaf in EAX. */
export function cpuid(cpu: CPU): void {
  const r = cpu.regs;
  const leaf = r[0] >>> 0;
  let a = 0, b = 0, c = 0, d = 0;
  if (leaf === 0) {
    a = 1;
    b = 0x756e6547; // "Genu"
    d = 0x49656e69; // "ineI"
    c = 0x6c65746e; // "ntel"
  } else if (leaf === 1) {
    a = CPUID_SIGNATURE;
    d = CPUID_FEATURES_EDX;
  } else if (leaf === 0x80000000) {
    a = 0x80000000; // no extended leaves
  }
  r[0] = a;
  r[3] = b;
  r[1] = c;
  r[2] = d;
}
