/**
 * The lguest host's state for one guest, as text: `struct lguest_data` and the
 * vCPU (`lguest`), the cached shadow page directories (`pgdirs`), a guest or
 * shadow page directory dumped (`pgdir`), one address translated through the
 * guest's tables and the shadow side by side with the CPU's TLB entry
 * (`translate`), the guest's IDT and GDT as the host holds them — and a
 * snapshot of all of it, so a hypercall issued by hand can show exactly what
 * it changed.
 *
 * @module
 */

import type { Guest } from "../lguest/guest.ts";
import { GDT_ENTRIES, LGUEST_DATA, LGUEST_IRQS, LHCALL_RING_SIZE } from "../lguest/abi.ts";
import { isHostEntry } from "../lguest/segments.ts";
import { hypercallName } from "../lguest/hypercalls.ts";
import { vectorName } from "../x86/flags.ts";
import { columns, descriptorText, hex, hexs } from "./format.ts";
import { GPR32, SEGS } from "./registers.ts";
import { dumpTables, plural, type Read32, stepText, tlbText, type Walk, walk } from "./paging.ts";

/** A named snapshot of the host's state for a guest: key → printable value. */
export type Snapshot = Map<string, string>;

/** Bits set in a 32-bit mask as a list: `IRQ 0, 3`. */
export function bitList(v: number, what = "IRQ"): string {
  const bits: number[] = [];
  for (let i = 0; i < 32; i++) if ((v >>> i) & 1) bits.push(i);
  return bits.length === 0 ? "none" : `${what} ${bits.join(", ")}`;
}

/** An IDT gate as the host stores it, in words. */
export function gateText(lo: number, hi: number): string {
  if ((hi & 0x8000) === 0) return "absent";
  const type = (hi >> 8) & 0xf;
  const handler = ((lo & 0xffff) | (hi & 0xffff0000)) >>> 0;
  return `${type === 0xe ? "interrupt gate" : type === 0xf ? "trap gate" : `type ${type}`} ${
    hex(handler)
  } cs ${hex(lo >>> 16, 4)} DPL${(hi >> 13) & 3}`;
}

function timerText(g: Guest): string {
  if (g.timerDeadline < 0) return "off";
  const left = g.timerDeadline - g.nowNs();
  return `fires at ${g.timerDeadline} ns (in ${left} ns = ${left} instructions)`;
}

/** Take a snapshot of everything a hypercall may change. */
export function snapshotGuest(g: Guest): Snapshot {
  const s: Snapshot = new Map();
  const cpu = g.cpu;
  GPR32.forEach((n, i) => s.set(n, hex(cpu.regs[i])));
  s.set("eip", hex(cpu.eip));
  s.set("eflags", hex(cpu.getEflags()));
  for (const [n, i] of SEGS) s.set(n, `${hex(cpu.sreg[i], 4)} base ${hex(cpu.sbase[i])}`);
  s.set("cr0", hex(cpu.cr0));
  s.set("cr3", hex(cpu.cr3));
  s.set("cpl", String(cpu.cpl));
  s.set(
    "lguest_data",
    g.lguestData < 0 ? "not yet (before LHCALL_LGUEST_INIT)" : hex(g.lguestData),
  );
  s.set("kernel_address", hex(g.kernelAddress));
  s.set("noirq_iret", hex(g.noirqIret));
  s.set("stack", `ss1 ${hex(g.ss1, 4)} esp1 ${hex(g.esp1)} pages ${g.stackPages}`);
  s.set("ts", g.ts ? "1 (FPU unusable until cleared)" : "0");
  s.set("pending IRQs", bitList(g.irqsPending));
  s.set("halted", g.halted ? "yes" : "no");
  s.set("clock event", timerText(g));
  s.set("dead", g.dead ? `yes: ${g.deathReason}` : "no");
  s.set("page tables", g.pt.linear ? "linear mode (host-made identity map)" : "the guest's own");
  s.set("current slot", String(g.pt.cur));
  s.set("async cursor", String(g.nextHcall));
  s.set("host pages in use", String(g.pages.inUse));
  const mem = g.mem;
  g.pt.slots.forEach((slot, i) => {
    if (!slot) {
      s.set(`slot ${i}`, "empty");
      return;
    }
    s.set(`slot ${i}`, `guest pgdir ${hex(slot.gpgdir)}, shadow ${hex(slot.shadow)}`);
    for (const [k, e] of shadowDirEntries(g, slot.shadow)) {
      s.set(`slot ${i} shadow PDE ${k}`, hex(e));
    }
  });
  for (let v = 0; v < 256; v++) {
    const hi = g.idt.gates[v * 2 + 1];
    if ((hi & 0x8000) !== 0) {
      s.set(`IDT ${hexs(v)} ${vectorName(v)}`, gateText(g.idt.gates[v * 2], hi));
    }
  }
  for (let i = 0; i < GDT_ENTRIES; i++) {
    const lo = g.gdt.entries[i * 2], hi = g.gdt.entries[i * 2 + 1];
    if (lo !== 0 || hi !== 0) s.set(`GDT ${i}`, `${hex(lo)} ${hex(hi)} ${descriptorText(lo, hi)}`);
  }
  if (g.lguestData >= 0 && g.ramContains(g.lguestData, LGUEST_DATA.SIZE)) {
    for (const [name, off] of Object.entries(LGUEST_DATA)) {
      if (name === "SIZE" || name === "hcalls" || name === "hcall_status") continue;
      s.set(`lguest_data.${name}`, hex(mem.read32(g.lguestData + off)));
    }
    s.set("lguest_data.hcall_status", ringText(g));
  }
  let tlb = 0;
  const r = cpu.tlbR, w = cpu.tlbW;
  for (let p = 0; p < r.length; p++) if (r[p] !== 0 || w[p] !== 0) tlb++;
  s.set("TLB entries", String(tlb));
  return s;
}

function ringText(g: Guest): string {
  const base = g.lguestData + LGUEST_DATA.hcall_status;
  let pending = 0;
  for (let i = 0; i < LHCALL_RING_SIZE; i++) if (g.mem.u8[base + i] !== 0xff) pending++;
  return `${pending} of ${LHCALL_RING_SIZE} slots queued`;
}

/**
 * What changed between two snapshots, one line each, in snapshot order. Many
 * shadow directory entries changing at once are summarised per slot.
 */
export function diffSnapshots(a: Snapshot, b: Snapshot): string[] {
  const out: string[] = [];
  const pde = new Map<
    string,
    { dropped: number; added: number; changed: number; lines: string[] }
  >();
  const keys = [...new Set([...a.keys(), ...b.keys()])];
  const width = Math.max(...keys.map((k) => k.length)) + 2;
  for (const k of keys) {
    const x = a.get(k), y = b.get(k);
    if (x === y) continue;
    const m = /^(slot \d+) shadow PDE/.exec(k);
    if (m) {
      let p = pde.get(m[1]);
      if (!p) pde.set(m[1], p = { dropped: 0, added: 0, changed: 0, lines: [] });
      if (y === undefined) p.dropped++;
      else if (x === undefined) p.added++;
      else p.changed++;
      p.lines.push(`${k.padEnd(width)}${x ?? "(none)"} -> ${y ?? "(none)"}`);
      continue;
    }
    out.push(`${k.padEnd(width)}${x ?? "(none)"} -> ${y ?? "(none)"}`);
  }
  for (const [slot, p] of pde) {
    if (p.lines.length <= 6) out.push(...p.lines);
    else {
      const parts = [];
      if (p.dropped) parts.push(`${p.dropped} dropped`);
      if (p.added) parts.push(`${p.added} added`);
      if (p.changed) parts.push(`${p.changed} changed`);
      out.push(`${(slot + " shadow PDEs").padEnd(width)}${parts.join(", ")}`);
    }
  }
  return out;
}

/** The `lguest` view: lguest_data, the clock event and the vCPU. */
export function lguestText(g: Guest): string[] {
  const out: string[] = [];
  const rows: string[][] = [];
  const mem = g.mem;
  if (g.lguestData < 0) {
    out.push("lguest_data: not registered yet (the guest has not made LHCALL_LGUEST_INIT)");
  } else {
    out.push(`lguest_data at guest-physical ${hex(g.lguestData)}:`);
    const f = (off: number) => mem.read32(g.lguestData + off);
    const irqOn = (f(LGUEST_DATA.irq_enabled) & 0x200) !== 0;
    rows.push([
      "  irq_enabled",
      hex(f(LGUEST_DATA.irq_enabled)),
      irqOn ? "interrupts on (X86_EFLAGS_IF)" : "interrupts off",
    ]);
    rows.push([
      "  blocked_interrupts",
      hex(f(LGUEST_DATA.blocked_interrupts)),
      bitList(f(LGUEST_DATA.blocked_interrupts)),
    ]);
    rows.push([
      "  irq_pending",
      hex(f(LGUEST_DATA.irq_pending)),
      f(LGUEST_DATA.irq_pending) ? "the host has an interrupt waiting for irq_enabled" : "",
    ]);
    rows.push(["  cr2", hex(f(LGUEST_DATA.cr2)), "last page-fault address the host reported"]);
    const sec = f(LGUEST_DATA.time_sec) >>> 0, nsec = f(LGUEST_DATA.time_nsec) >>> 0;
    rows.push([
      "  time",
      `${sec}.${String(nsec).padStart(9, "0")}`,
      new Date(sec * 1000).toISOString(),
    ]);
    rows.push(["  hcall ring", ringText(g), `host cursor at slot ${g.nextHcall}`]);
    rows.push([
      "  tsc_khz",
      String(f(LGUEST_DATA.tsc_khz) >>> 0),
      "one instruction = one TSC tick",
    ]);
    rows.push(["  noirq_iret", hex(f(LGUEST_DATA.noirq_iret)), ""]);
    rows.push([
      "  kernel_address",
      hex(f(LGUEST_DATA.kernel_address)),
      "the kernel's half starts here (shared by every shadow)",
    ]);
    rows.push(["  syscall_vec", hex(f(LGUEST_DATA.syscall_vec), 2), ""]);
    rows.push([
      "  reserve_mem",
      hex(f(LGUEST_DATA.reserve_mem)),
      "the switcher's share at the top of the address space",
    ]);
    out.push(...columns(rows));
    const queued: string[] = [];
    const base = g.lguestData + LGUEST_DATA.hcall_status;
    for (let k = 0; k < LHCALL_RING_SIZE; k++) {
      const i = (g.nextHcall + k) % LHCALL_RING_SIZE;
      if (mem.u8[base + i] === 0xff) break;
      const a = g.lguestData + LGUEST_DATA.hcalls + i * 20;
      queued.push(
        `    [${i}] ${hypercallName(mem.read32(a) >>> 0)}(${
          [4, 8, 12, 16].map((o) => hexs(mem.read32(a + o))).join(", ")
        })`,
      );
    }
    if (queued.length) {
      out.push("  queued in the ring (run before the next synchronous hypercall):", ...queued);
    }
  }
  const host: string[][] = [];
  host.push([
    "  state",
    g.dead
      ? `dead: ${g.deathReason}`
      : g.halted
      ? "halted (LHCALL_HALT) until an interrupt"
      : "running",
  ]);
  host.push(["  pending IRQs", bitList(g.irqsPending) + ` (of ${LGUEST_IRQS})`]);
  host.push(["  clock event", timerText(g)]);
  host.push([
    "  virtual time",
    `${g.nowNs()} ns (icount ${g.cpu.icount} + skipped ${g.cpu.tscOffset})`,
  ]);
  host.push(["  TS", g.ts ? "1: the next FPU instruction traps (#NM)" : "0"]);
  host.push([
    "  kernel stack",
    g.ss1
      ? `ss1 ${hex(g.ss1, 4)} esp1 ${hex(g.esp1)} (${plural(g.stackPages, "page")})`
      : "not set (LHCALL_SET_STACK)",
  ]);
  host.push([
    "  page tables",
    g.pt.linear
      ? "linear mode: the host fakes virtual == physical (until the first LHCALL_NEW_PGTABLE)"
      : `the guest's own: pgdir ${hex(g.pt.current.gpgdir)} (slot ${g.pt.cur})`,
  ]);
  host.push(["  hypercalls", `${g.hcallLog.length} logged (hcalls lists them)`]);
  out.push("host (vCPU):", ...columns(host));
  return out;
}

/**
 * The present directory entries of a shadow, keyed `0c0` (non-PAE: PDE
 * index) or `3:1ff` (PAE: PDPT index and PMD index), with the linear address
 * each covers.
 */
export function shadowDirEntries(g: Guest, shadow: number): [string, number, number][] {
  const mem = g.mem, out: [string, number, number][] = [];
  const ok = (pa: number) => pa >= 0 && pa + 4 <= mem.size;
  if (!g.pt.pae) {
    for (let k = 0; k < 1024; k++) {
      const e = mem.read32(shadow + k * 4);
      if ((e & 1) !== 0) out.push([k.toString(16).padStart(3, "0"), e, (k << 22) >>> 0]);
    }
    return out;
  }
  for (let i = 0; i < 4; i++) {
    const e3 = ok(shadow + i * 8) ? mem.read32(shadow + i * 8) : 0;
    if ((e3 & 1) === 0) continue;
    for (let k = 0; k < 512; k++) {
      const at = (e3 & -4096) + k * 8;
      const e = ok(at) ? mem.read32(at) : 0;
      if ((e & 1) !== 0) {
        out.push([
          `${i}:${k.toString(16).padStart(3, "0")}`,
          e,
          (i * 0x40000000 + k * 0x200000) >>> 0,
        ]);
      }
    }
  }
  return out;
}

/** Summary of one shadow: present directory entries below and above the kernel split. */
function shadowCounts(g: Guest, shadow: number): [number, number] {
  let user = 0, kernel = 0;
  for (const [, , lin] of shadowDirEntries(g, shadow)) {
    if (lin < g.kernelAddress >>> 0) user++;
    else kernel++;
  }
  return [user, kernel];
}

/** The `pgdirs` view: the host's cached shadow page directories. */
export function pgdirsText(g: Guest): string[] {
  const out = [
    `shadow page directories (${g.pt.slots.length} slots, least recently used is replaced); cr3 = ${
      hex(g.cpu.cr3)
    }`,
  ];
  const rows: string[][] = [[
    "",
    "slot",
    "guest pgdir",
    "shadow pgdir",
    "last use",
    "shadow PDEs user/kernel",
  ]];
  g.pt.slots.forEach((s, i) => {
    const cur = i === g.pt.cur;
    if (!s) {
      rows.push([cur ? "*" : "", String(i), "-", "-", "", ""]);
      return;
    }
    const [u, k] = shadowCounts(g, s.shadow);
    rows.push([
      cur ? "*" : "",
      String(i),
      g.pt.linear ? "(linear)" : hex(s.gpgdir),
      hex(s.shadow),
      String(s.lastUse),
      `${u}/${k}`,
    ]);
  });
  out.push(...columns(rows).map((l) => "  " + l));
  if (g.pt.linear) {
    out.push(
      "linear mode (2011 boot): the guest has no tables yet;",
      "the host makes up virtual == physical entries on demand",
    );
  } else {
    out.push(
      `the guest's own tables${g.pt.pae ? " (PAE)" : ""}; entries from kernel_address ${
        hex(g.kernelAddress)
      } up`,
      "are the kernel half, kept in every shadow",
    );
  }
  return out;
}

function slotOf(g: Guest, index: number | undefined) {
  const i = index ?? g.pt.cur;
  const s = g.pt.slots[i];
  if (i < 0 || i >= g.pt.slots.length) {
    throw new RangeError(`no slot ${i} (0 to ${g.pt.slots.length - 1})`);
  }
  if (!s) throw new RangeError(`slot ${i} is empty`);
  return { i, s };
}

/** Where a physical address lives: guest RAM, device window, host page. */
export function physWhere(g: Guest, pa: number): string {
  if (pa < g.ramSize) return "guest RAM";
  if (pa < g.deviceLimit * 4096) return "device window";
  if (g.pages.owns(pa)) return "host page";
  return "outside memory";
}

/** `pgdir guest [slot]`: the guest's page directory and tables. */
export function guestPgdirText(g: Guest, index?: number, from?: number, to?: number): string[] {
  const { i, s } = slotOf(g, index);
  if (g.pt.linear) {
    return [
      `slot ${i}: linear mode — the guest has no page tables of its own yet.`,
      "The host makes up this mapping, one page at a time as the guest touches it (P RW):",
      `  ${hex(0)}-${hex(g.ramSize - 1)} -> ${hex(0)}-${hex(g.ramSize - 1)}  guest RAM, identity`,
      `  ${hex(g.ramSize)}-${
        hex(g.deviceLimit * 4096 - 1)
      }  device memory: never mapped, every access traps`,
    ];
  }
  const r32: Read32 = (pa) => (g.ramContains(pa, 4) ? g.mem.read32(pa) : null);
  return dumpTables(r32, s.gpgdir, {
    title: `guest page directory ${hex(s.gpgdir)} (slot ${i}${i === g.pt.cur ? ", current" : ""})`,
    mode: { pae: g.pt.pae, pse: false },
    from,
    to,
  });
}

/** `pgdir shadow [slot]`: the host's shadow directory and tables. */
export function shadowPgdirText(g: Guest, index?: number, from?: number, to?: number): string[] {
  const { i, s } = slotOf(g, index);
  const r32: Read32 = (pa) => (pa >= 0 && pa + 4 <= g.mem.size ? g.mem.read32(pa) : null);
  return dumpTables(r32, s.shadow, {
    title: `shadow pgdir ${hex(s.shadow)} (slot ${i}${i === g.pt.cur ? ", in cr3" : ""}${
      g.pt.linear ? ", linear mode" : `, shadows guest ${hex(s.gpgdir)}`
    })`,
    mode: { pae: g.pt.pae, pse: false },
    from,
    to,
    where: (pa) => physWhere(g, pa),
  });
}

function walkRows(w: Walk): Map<string, string> {
  const m = new Map<string, string>();
  for (const st of w.steps) m.set(st.level, stepText(st));
  return m;
}

/** Why a shadow walk found nothing, in lguest's terms. */
function shadowWhy(g: Guest, gw: Walk, vaddr: number): string {
  if (vaddr >>> 0 >= g.switcherAddr) return "the switcher's addresses: the guest may not use them";
  if (gw.pa === null && g.pt.linear) return gw.why;
  if (gw.pa === null) return "the guest's tables do not map it: an access faults into the guest";
  if (gw.pa >= g.ramSize) {
    return "device memory: never shadowed, every access traps to the host (MMIO)";
  }
  return "not shadowed yet: the next access faults and the host fills it from the guest's entry";
}

/**
 * `translate VADDR` under lguest: the guest's walk and the shadow's side by
 * side, and the CPU's TLB entry for the page.
 */
export function translateText(g: Guest, vaddr: number, symbol?: string): string[] {
  vaddr >>>= 0;
  const cur = g.pt.current;
  const where = g.pt.pae
    ? `PDPT index ${vaddr >>> 30}, PMD index ${hexs((vaddr >>> 21) & 0x1ff)}, PTE index ${
      hexs((vaddr >>> 12) & 0x1ff)
    }`
    : `PDE index ${hexs(vaddr >>> 22)}, PTE index ${hexs((vaddr >>> 12) & 0x3ff)}`;
  const out = [
    `${hex(vaddr)}${symbol ? ` <${symbol}>` : ""}: ${where}, offset ${hexs(vaddr & 0xfff)}${
      g.pt.pae ? " (PAE)" : ""
    }`,
  ];
  const gr32: Read32 = (pa) => (g.ramContains(pa, 4) ? g.mem.read32(pa) : null);
  const hr32: Read32 = (pa) => (pa >= 0 && pa + 4 <= g.mem.size ? g.mem.read32(pa) : null);
  let gw: Walk;
  let gHead: string;
  if (g.pt.linear) {
    const ok = vaddr < g.ramSize;
    const why = ok
      ? ""
      : vaddr < g.deviceLimit * 4096
      ? "device memory: never mapped, every access traps to the host (MMIO)"
      : "no RAM there: the host kills a guest that touches it in linear mode";
    gw = { steps: [], pa: ok ? vaddr : null, pageSize: 4096, why, writable: true, user: false };
    gHead = "guest: linear mode (no tables)";
  } else {
    gw = walk(gr32, cur.gpgdir, vaddr, { pae: g.pt.pae, pse: false });
    gHead = `guest's tables (pgdir ${hex(cur.gpgdir)})`;
  }
  const sw = walk(hr32, cur.shadow, vaddr, { pae: g.pt.pae, pse: false });
  const gm = walkRows(gw), sm = walkRows(sw);
  const rows: string[][] = [[
    "",
    gHead,
    `host's shadow (slot ${g.pt.cur}, pgdir ${hex(cur.shadow)})`,
  ]];
  for (const level of g.pt.pae ? ["PDPTE", "PDE", "PTE"] : ["PDE", "PTE"]) {
    const gl = g.pt.linear
      ? (level === "PTE" && gw.pa !== null ? `(made up) ${hex(vaddr & -4096)} P RW` : "")
      : gm.get(level) ?? "";
    rows.push([level, gl, sm.get(level) ?? ""]);
  }
  rows.push([
    "physical",
    gw.pa !== null ? hex(gw.pa) : "not mapped",
    sw.pa !== null ? hex(sw.pa) : `none: ${sw.why}`,
  ]);
  out.push(...columns(rows));
  if (gw.pa === null) out.push(`guest: ${gw.why}`);
  if (sw.pa === null) out.push(`shadow: ${shadowWhy(g, gw, vaddr)}`);
  else if (gw.pa !== null && gw.pa !== sw.pa) {
    out.push(
      "shadow: stale! it maps another frame than the guest's entry (the guest has not told the host yet)",
    );
  } else if (!sw.writable && gw.writable && gm.get("PTE") && sm.get("PTE")) {
    const gpte = gw.steps[gw.steps.length - 1]?.value ?? 0;
    if ((gpte & 0x40) === 0) {
      out.push(
        "shadow: read-only until the guest's D bit is set: the first write faults so the host can set it",
      );
    }
  }
  const page = vaddr >>> 12;
  out.push(
    `TLB      read: ${tlbText(g.cpu.tlbR[page], vaddr)}    write: ${
      tlbText(g.cpu.tlbW[page], vaddr)
    }    (CPL ${g.cpu.cpl}: a hit needs the ${g.cpu.cpl === 3 ? "user" : "sup"} bit)`,
  );
  return out;
}

/** The guest's IDT as the host holds it (LHCALL_LOAD_IDT_ENTRY). */
export function guestIdtText(g: Guest): string[] {
  const rows: string[][] = [];
  for (let v = 0; v < 256; v++) {
    const hi = g.idt.gates[v * 2 + 1];
    if ((hi & 0x8000) === 0) continue;
    rows.push([hex(v, 2), vectorName(v), gateText(g.idt.gates[v * 2], hi)]);
  }
  const out = [
    `guest IDT as the host holds it (LHCALL_LOAD_IDT_ENTRY): ${plural(rows.length, "gate")}`,
  ];
  if (rows.length === 0) out.push("  (none yet: a trap now would kill the guest)");
  out.push(...columns(rows).map((l) => "  " + l));
  out.push("  vectors 0x2, 0x8, 0xf and 0x1f are the host's: the guest cannot set them");
  return out;
}

/** The guest's GDT as the host holds it, after fix-up. */
export function guestGdtText(g: Guest): string[] {
  const rows: string[][] = [];
  for (let i = 0; i < GDT_ENTRIES; i++) {
    const lo = g.gdt.entries[i * 2], hi = g.gdt.entries[i * 2 + 1];
    const host = isHostEntry(i);
    if (lo === 0 && hi === 0 && !host) continue;
    rows.push([
      String(i),
      hex((i << 3) | ((hi >> 13) & 3), 4),
      `${hex(lo)} ${hex(hi)}`,
      host ? "(the host's own: the CPU sees the host's descriptor)" : descriptorText(lo, hi),
    ]);
  }
  return [
    "guest GDT as the host holds it (LHCALL_LOAD_GDT_ENTRY / LOAD_TLS; DPL 0 fixed up to 1),",
    `CPU copy at host page ${hex(g.gdt.page)}`,
    ...columns([["idx", "sel", "lo       hi", "descriptor"], ...rows]).map((l) => "  " + l),
  ];
}
