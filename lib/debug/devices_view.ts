/**
 * The launcher's devices as the debugger shows them (`devices`): per PCI
 * slot, the virtio function — its identity, IRQ and BAR0 window, the
 * driver's status bits, the features offered and accepted, the ISR — and
 * each queue's rings and indexes, so a driver's progress through the virtio
 * protocol can be watched step by step.
 *
 * @module
 */

import type { Launcher } from "../boot/launcher.ts";
import { STATUS, type VirtioPciFunction } from "../devices/virtio_pci.ts";
import { hex } from "./format.ts";

/** The status bits' names, lowest first. */
const STATUS_NAMES: [number, string][] = [
  [STATUS.ACKNOWLEDGE, "ACKNOWLEDGE"],
  [STATUS.DRIVER, "DRIVER"],
  [STATUS.FEATURES_OK, "FEATURES_OK"],
  [STATUS.DRIVER_OK, "DRIVER_OK"],
  [STATUS.FAILED, "FAILED"],
];

/** A 64-bit feature set from its two words. */
function features(lo: number, hi: number): string {
  return `0x${(hi >>> 0).toString(16)}${(lo >>> 0).toString(16).padStart(8, "0")}`;
}

/** The lines for one virtio function in `slot`. */
export function functionText(slot: number, f: VirtioPciFunction): string[] {
  const d = f.device;
  const id = `1af4:${(0x1040 + d.virtioType).toString(16)}`;
  const bits = STATUS_NAMES.filter(([b]) => (f.status & b) !== 0).map(([, n]) => n);
  const lines = [
    `slot ${slot}: ${d.name} (${id}), IRQ ${f.irq}, BAR0 ${hex(f.barAddr)} ` +
    `(${f.barSize} bytes, ${f.regsSize} of registers)`,
    `  status 0x${f.status.toString(16)}${bits.length ? ` ${bits.join(" ")}` : " (reset)"}, ` +
    `features offered ${features(d.features[0], d.features[1])}, accepted ${
      features(d.driverFeatures[0], d.driverFeatures[1])
    }, ISR ${f.isr}`,
  ];
  d.queues.forEach((q, i) => {
    const where = q.enabled
      ? `desc ${hex(q.desc)} avail ${hex(q.avail)} used ${hex(q.used)}, ` +
        `next avail ${q.lastAvail}, used idx ${q.usedIdx}`
      : "disabled";
    lines.push(`  queue ${i} ${q.name.replace(`${d.name}: `, "")}: size ${q.size}, ${where}`);
  });
  return lines;
}

/** Every device the launcher plugged in, by slot. */
export function devicesText(l: Launcher): string[] {
  const lines = ["slot 0: host bridge (class 0x0600; reads as empty)"];
  l.functions.forEach((f, i) => lines.push(...functionText(i + 1, f)));
  if (l.console.pendingInput > 0) {
    lines.push(`console input waiting for receive buffers: ${l.console.pendingInput} bytes`);
  }
  return lines;
}
