/**
 * The REPL as a user meets it: `repl.ts` spawned under the runtime running
 * these tests (Deno: `deno run -A repl.ts …`; Bun: `bun repl.ts …`).
 *
 * Batch sessions pipe commands into stdin, or pass them with -c and -x, and
 * check what comes out and the exit status. A real terminal comes from tmux
 * (Debian package `tmux`, installed by CI): keystrokes are sent to a pane and
 * the screen is read back with `tmux capture-pane -p`, for Tab completion,
 * Ctrl-C during `continue`, guest output arriving while the prompt waits, and
 * history kept between runs. Without tmux those tests fail, saying so.
 */

import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { elf32, R, X86 } from "../lib/debug/guest_builder.ts";
import { LHCALL } from "../lib/lguest/abi.ts";
import { Pane, pause, replCommand } from "./tmux_pane.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const TMP = mkdtempSync(join(tmpdir(), "lguest-repl-"));
const HIST = join(TMP, "history");
after(() => rmSync(TMP, { recursive: true, force: true }));

/** The command line that runs repl.ts under this runtime. */
const repl = replCommand;

const env = { ...process.env, LGUEST_TS_HISTORY: HIST, NO_COLOR: "1" };

function run(args: string[], input = ""): { status: number | null; out: string; err: string } {
  const [cmd, argv] = repl(args);
  const r = spawnSync(cmd, argv, { cwd: ROOT, input, encoding: "utf8", env, timeout: 60_000 });
  return { status: r.status, out: r.stdout, err: r.stderr };
}

describe("repl.ts from the command line", () => {
  it("--help lists the options and the REPL's commands", { timeout: 60_000 }, () => {
    const r = run(["--help"]);
    assert.equal(r.status, 0, r.err);
    for (
      const w of [
        "--bare",
        "--run",
        "--initrd=FILE",
        "--pagetables=MODE",
        "-x FILE",
        "-c",
        "-i, --interactive",
      ]
    ) {
      assert.ok(r.out.includes(w), w);
    }
    for (
      const c of [
        "step [N]",
        "continue [&]",
        "pgdir guest|shadow",
        "translate VADDR",
        "hcall NAME|NR",
        "trace insn|hcall|trap|pf",
      ]
    ) {
      assert.ok(r.out.includes(c), c);
    }
    assert.match(r.out, /~\/\.lguest_ts_history/);
    // The exit statuses, each documented.
    for (const st of ["0 ", "1 ", "2 ", "3 ", "N ", "130 "]) {
      assert.match(r.out, new RegExp(`\\n  ${st} +\\S`), `status ${st}`);
    }
    assert.match(r.out, /130 +--run: stopped by Ctrl-C/);
  });

  it("--run keeps its behaviour: output, reason on stderr, status 0 for power-off", {
    timeout: 60_000,
  }, () => {
    const r = run(["--run", "16", "examples/lguest/hello.elf"]);
    assert.equal(r.status, 0);
    assert.equal(r.out, "Hello from an lguest guest on lguest.ts!\n");
    assert.match(
      r.err,
      /^\[lguest: CRASH: Power down; \d+ instructions in [\d.]+ s, [\d.-]+ MIPS\]\n$/,
    );
    const b = run(["--bare", "--run", "16", "examples/hello.elf"]);
    assert.equal(b.status, 0);
    assert.match(b.err, /^\[halted with interrupts off: \d+ instructions/);
  });

  it("--input, --block and --rng plug in the devices; the guest's driver reads the input", {
    timeout: 60_000,
  }, () => {
    const dir = TMP;
    writeFileSync(join(dir, "in.txt"), "from a file");
    writeFileSync(join(dir, "disk.img"), new Uint8Array(4096));
    const r = run([
      "--run",
      `--input=${join(dir, "in.txt")}`,
      `--block=${join(dir, "disk.img")}`,
      "--rng=seed:9",
      "16",
      "examples/lguest/virtio.elf",
    ]);
    assert.equal(r.status, 0, r.err);
    assert.match(r.out, /\nreceived: from a file\n/);
    assert.doesNotMatch(r.out, /FAIL/);
  });

  it("--run: Ctrl-C stops the guest and prints the summary; status 130; no status line in a pipe", {
    timeout: 60_000,
  }, async () => {
    // An lguest guest that initialises and then counts for ever.
    const a = new X86(0x100000);
    a.label("_start").movImm(R.ESP, "stack_top").hcall(LHCALL.LGUEST_INIT, "lguest_data");
    a.label("spin").incMem("count").jmp("spin");
    a.align(4).label("count").dd(0);
    a.lguestData().align(16).zeros(4096).label("stack_top");
    const elf = join(TMP, "counter.elf");
    writeFileSync(elf, elf32({ entry: a.addr("_start"), segments: [a.segment()] }));
    for (const argv of [["--run", "16", elf], ["--bare", "--run", "16", "examples/ticker.elf"]]) {
      const [cmd, args] = repl(argv);
      const child = spawn(cmd, args, { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
      let out = "", err = "";
      child.stdout.on("data", (b) => (out += b));
      child.stderr.on("data", (b) => (err += b));
      const status = new Promise<number | null>((r) => child.on("close", r));
      await pause(2500);
      assert.equal(err, "", "nothing on stderr while it runs, when stderr is not a terminal");
      spawnSync("kill", ["-INT", String(child.pid)]);
      assert.equal(await status, 130, out + err);
      // deno-lint-ignore no-control-regex -- the escape codes are what is tested
      assert.doesNotMatch(out + err, /\x1b/);
      assert.match(
        err,
        argv[0] === "--bare"
          ? /^\[interrupted \(Ctrl-C\): \d+ instructions in [\d.]+ s, [\d.]+ MIPS\]\n$/
          : /^\[lguest: interrupted \(Ctrl-C\) in phase 'linear mode'; \d+ instructions in [\d.]+ s, [\d.]+ MIPS\]\n$/,
      );
    }
  });

  it("prints no colour into a pipe, NO_COLOR or not", { timeout: 60_000 }, () => {
    const [cmd, argv] = repl(["--bare", "16", "examples/hello.elf"]);
    const { NO_COLOR: _, ...bare } = env;
    const r = spawnSync(cmd, argv, {
      cwd: ROOT,
      input: "frob\nbreak putc\nc\n",
      encoding: "utf8",
      env: { ...bare, TERM: "xterm-256color", FORCE_COLOR: "1", CI: "true" },
      timeout: 60_000,
    });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stdout, /\nerror: unknown command 'frob'/);
    assert.match(r.stdout, /\n=>\*0x001000b7 <putc>/);
    // deno-lint-ignore no-control-regex -- the escape codes are what is tested
    assert.doesNotMatch(r.stdout + r.stderr, /\x1b/);
  });

  it("reports bad arguments in one line with status 2", { timeout: 60_000 }, () => {
    const r = run(["16", "no/such/file.elf"]);
    assert.equal(r.status, 2);
    assert.equal(r.err, "repl.ts: no/such/file.elf: no such file\n");
  });
});

describe("batch sessions", () => {
  it("piped commands: banner, state, a step, the end", { timeout: 60_000 }, () => {
    const r = run(
      ["16", "examples/lguest/hello.elf"],
      "regs\nstep\npgdirs\ntranslate eip\nc\nhcalls\n",
    );
    assert.equal(r.status, 0, r.out + r.err);
    const o = r.out;
    assert.match(
      o,
      /^lguest\.ts: examples\/lguest\/hello\.elf \(ELF, \d+ symbols\) in 16 MiB under the lguest host,\n {2}2011 boot: linear mode/,
    );
    assert.match(
      o,
      /stopped at the entry point 0x001001a5 <_start>, instruction 0:\n=> 0x001001a5 <_start>: +bc [0-9a-f ]+ +mov esp, 0x/,
    );
    assert.match(
      o,
      /Try: step \(s\), regs, lguest, pgdirs, translate eip, hcalls; or break hcall new_pgtable,/,
    );
    assert.match(o, /\(lguest\) regs\neax 0x00000000/);
    assert.match(o, /cs +0x0061 +base 0x00000000 +limit 0xffffffff +code ER A +DPL1 +32-bit/);
    assert.match(
      o,
      /\(lguest\) step\n {2}-> page fault at 0x001001a5 \(read, not present\): host filled the shadow entry\n=> 0x001001aa <_start\+0x5>/,
    );
    assert.match(o, /\* +0 +\(linear\) +0x[0-9a-f]{8}/);
    assert.match(
      o,
      /\(lguest\) c\nHello from an lguest guest on lguest\.ts!\n\[\d+\] the guest ended: CRASH: Power down/,
    );
    assert.match(o, /LHCALL_LGUEST_INIT\(0x100200\)\n.*LHCALL_SHUTDOWN/);
  });

  it("set cr3 0; step: the host gives up with a reason instead of hanging", {
    timeout: 60_000,
  }, () => {
    const r = run(["16", "examples/lguest/hello.elf"], "step\nset cr3 0\nstep\nregs\n");
    assert.equal(r.status, 0, r.out + r.err);
    assert.match(
      r.out,
      /\(lguest\) step\n(.*\n)*\[1\] the guest ended: no progress: page fault at 0x1001aa \(error 0\) fixed \d+ times without the instruction completing \(eip 0x1001aa\)\n/,
    );
    assert.match(r.out, /\(lguest\) regs\neax /, "the session goes on");
  });

  it("-c: errors are one line, the session goes on, status 1", { timeout: 60_000 }, () => {
    const r = run([
      "-c",
      "frob; x/4b 0x100000; break nosuch; step",
      "16",
      "examples/lguest/hello.elf",
    ]);
    assert.equal(r.status, 1);
    const errors = r.out.split("\n").filter((l) => l.startsWith("error:"));
    assert.deepEqual(errors, [
      "error: unknown command 'frob' (try help)",
      "error: no register or symbol named 'nosuch'",
    ]);
    assert.match(r.out, /\(lguest\) x\/4b 0x100000\n0x00100000: 7f 45 4c 46 +\|\.ELF\|/);
    assert.match(r.out, /\(lguest\) step\n/);
    assert.equal(r.err, "");
  });

  it("bounds every listing and every expression (stack 99999999, 100,000 brackets)", {
    timeout: 60_000,
  }, () => {
    const deep = "(".repeat(100_000) + "1" + ")".repeat(100_000);
    // A file of commands: a 200,000-character line through a pipe would have to be echoed whole
    // while the pipe is still being written.
    const script = join(TMP, "bounds.cmds");
    writeFileSync(
      script,
      `stack 99999999\np ${deep}\nx/4b ${deep}\nset max-lines 20\ndisasm eip 100\n`,
    );
    const r = run(["-x", script, "16", "examples/lguest/hello.elf"]);
    assert.equal(r.status, 1, r.err);
    const lines = r.out.split("\n");
    assert.ok(lines.length < 700, `${lines.length} lines`);
    assert.match(r.out, /\n… 99999501 more dwords \(set max-lines N shows up to N\)\n/);
    const errors = lines.filter((l) => l.startsWith("error:"));
    assert.deepEqual(errors, [
      "error: expression nested more than 256 deep",
      "error: expression nested more than 256 deep",
    ]);
    assert.doesNotMatch(r.out + r.err, /call stack/i);
    const dis = r.out.slice(r.out.indexOf("(lguest) disasm eip 100\n")).split("\n");
    assert.equal(dis[21], "… 80 more lines (set max-lines N shows up to N)");
  });

  it("loads the System.map beside the kernel: symbols in disasm, break, bt", {
    timeout: 60_000,
  }, () => {
    const r = run(["--bare", "16", "examples/hello.elf"], "break puts\nc\nbt\nx/2i eip\n");
    assert.equal(r.status, 0, r.out + r.err);
    assert.match(
      r.out,
      /^lguest\.ts: examples\/hello\.elf on the bare machine \(16 MiB, ring 0, paging off, \d+ symbols\)\nsymbols loaded from examples\/hello\.map\n/,
    );
    assert.match(r.out, /stopped at the entry point 0x00100054 <_start>, instruction 0:/);
    assert.match(r.out, /\(bare\) break puts\nbreakpoint 1: 0x001000aa <puts>\n/);
    assert.match(r.out, /\(bare\) bt\n#0 +0x001000aa <puts>\n#1 +0x00100063 <_start\+0xf>/);
    assert.match(r.out, /=>\*0x001000aa <puts>: +ac +lodsb/);
  });

  it("the page-table and state views fit 100 columns", { timeout: 60_000 }, () => {
    const views =
      "pgdirs\npgdir guest\npgdir shadow\ntranslate eip\ntranslate 0xc0100000\ntranslate 0xd0000000\n" +
      "translate 0x1000000\nlguest\nregs\nregs fpu\ngdt\nidt\ntlb\nhcalls\ncreg\n";
    for (const k of ["paging", "pae", "usermode"]) {
      const r = run(
        [...(k === "pae" ? ["--pae"] : []), "16", `examples/lguest/${k}.elf`],
        `${views}break hcall new_pgtable\nc\nstep\n${views}`,
      );
      assert.equal(r.status, 0, r.err);
      // Stop reports ([icount] …) name whatever the guest did; the views are what must fit.
      const wide = r.out.split("\n").filter((l) => l.length > 100 && !l.startsWith("["));
      assert.deepEqual(wide, [], k);
      assert.match(r.out, /\(lguest\) pgdir shadow\nshadow pgdir 0x[0-9a-f]{8} \(slot 0/);
    }
  });

  it("gdb's vocabulary through a pipe: x/NFU, print, display, break if, ignore, finish", {
    timeout: 60_000,
  }, () => {
    const r = run(
      ["--bare", "16", "examples/hello.elf"],
      "x/4xw 0x100054\nx/2i eip\np/x 0n255 + 1\ndisplay/x ecx\nbreak putc if al == 0x6c\n" +
        "ignore 1 1\nc\ninfo registers eax\ninfo break\ndelete\ndelete all\nfinish\n",
    );
    assert.equal(r.status, 1, r.err); // 'delete' alone is refused
    const o = r.out;
    assert.match(
      o,
      /\(bare\) x\/4xw 0x100054\n0x00100054 <_start>: 0x101130bc 0x00e9be00 0x47e80010 /,
    );
    assert.match(
      o,
      /\(bare\) x\/2i eip\n=> 0x00100054 <_start>: +bc 30 11 10 00 +mov esp, 0x101130\n +0x00100059 <_start\+0x5>:/,
    );
    assert.match(o, /\(bare\) p\/x 0n255 \+ 1\n= 0x100\n/);
    // The first 'l' (0x6c) is passed by ignore; the second stops, with the display after it.
    assert.match(
      o,
      /\(bare\) c\nHel\n\[\d+\] breakpoint 1 at 0x001000b7 <putc>\n=>\*0x001000b7 <putc>: .*\n1: \/x ecx = 0x0\n/,
    );
    assert.match(o, /\(bare\) info registers eax\neax +0x0000006c +108\n/);
    assert.match(o, /1 +break +y +0x001000b7 <putc> if al == 0x6c +2\n/);
    assert.match(
      o,
      /\(bare\) delete\nerror: delete which\? .*\n\(bare\) delete all\ndeleted 1 breakpoint\n/,
    );
    assert.match(o, /\(bare\) finish\nl\n\[\d+\] returned to 0x001000b4 <puts\+0xa>\n/);
  });

  it("-c quit N sets the exit status; -x runs a file of commands", { timeout: 60_000 }, () => {
    assert.equal(run(["-c", "step; quit 7", "16", "examples/lguest/hello.elf"]).status, 7);
    const script = join(TMP, "walk.cmds");
    writeFileSync(
      script,
      "# the page-table walk-through\nbreak hcall new_pgtable\ncontinue\nstep\npgdirs\npgdir guest\ntranslate 0xc0100000\n",
    );
    const r = run(["-x", script, "16", "examples/lguest/paging.elf"]);
    assert.equal(r.status, 0, r.out);
    assert.match(
      r.out,
      /breakpoint 1: hypercall LHCALL_NEW_PGTABLE\(0x102000.*before the host runs it/,
    );
    assert.match(r.out, /\* +0 +0x00102000 +0x[0-9a-f]{8}/);
    assert.match(r.out, /0xc0000000-0xc03fffff -> 0x00000000-0x003fffff +P RW +1024 ptes/);
    assert.match(r.out, /PDE +\[0x00102c00\] 0x00104067 P RW US A D +\[0x[0-9a-f]{8}\] /);
    assert.doesNotMatch(r.out, /the page-table walk-through/, "comments are not echoed");
  });

  it("Ctrl-C (SIGINT) stops a running guest, not the session", { timeout: 60_000 }, async () => {
    const [cmd, argv] = repl(["--bare", "16", "examples/ticker.elf"]);
    const child = spawn(cmd, argv, { cwd: ROOT, env, stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (b) => (out += b));
    const status = new Promise<number | null>((r) => child.on("close", r));
    child.stdin.write("c\n");
    await until(() => out.includes("tick 1"), 30_000, () => out);
    // As a terminal's Ctrl-C would (kill(1): Deno's ChildProcess.kill reports the child as killed).
    spawnSync("kill", ["-INT", String(child.pid)]);
    await until(() => out.includes("interrupted"), 30_000, () => out);
    child.stdin.end("regs\nquit\n");
    assert.equal(await status, 0);
    assert.match(out, /tick 1\n(tick \d+\n)*\[\d+\] interrupted\n=> 0x001000[0-9a-f]{2} </);
    assert.match(out, /\(bare\) regs\neax /);
  });
});

async function until(ok: () => boolean, ms: number, show: () => string): Promise<void> {
  const t0 = Date.now();
  while (!ok()) {
    if (Date.now() - t0 > ms) assert.fail(`timed out waiting; got:\n${show()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// ------------------------------------------------------------------ a real terminal

describe("a real terminal (tmux)", () => {
  it("completes with Tab: commands, arguments, hypercall names", { timeout: 60_000 }, async () => {
    const p = new Pane(["16", "examples/lguest/hello.elf"], HIST);
    try {
      await p.prompt("(lguest) ");
      await p.waitFor((s) => s.includes("Try: step (s)"), "the banner");
      p.type("pgd");
      await pause(200);
      p.keys("Tab");
      await pause(200);
      p.keys("Tab");
      await p.waitFor((s) => /pgdir +pgdirs/.test(s), "the two completions of 'pgd'");
      p.keys("C-u");
      p.type("hcall set_cl");
      await pause(200);
      p.keys("Tab");
      await p.waitFor(
        () => p.lastLine() === "(lguest) hcall set_clockevent",
        "hcall name completed",
      );
      p.keys("C-u");
      p.type("transl");
      await pause(200);
      p.keys("Tab");
      await pause(200);
      p.type(" eip");
      p.keys("Enter");
      await p.waitFor((s) => /host's shadow \(slot 0/.test(s), "translate's output");
      await p.prompt("(lguest) ");
    } finally {
      p.close();
    }
  });

  it(
    "Ctrl-C stops continue and returns to the prompt; guest output is kept",
    { timeout: 60_000 },
    async () => {
      const p = new Pane(["--bare", "16", "examples/ticker.elf"], HIST);
      try {
        await p.prompt();
        p.type("continue");
        p.keys("Enter");
        await p.waitFor((s) => s.includes("tick 2"), "the guest's output while it runs");
        p.keys("C-c");
        const s = await p.waitFor((s) => /\[\d+\] interrupted/.test(s), "the interruption");
        assert.match(
          s,
          /ticker: counting forever\ntick 1\ntick 2\n(tick \d+\n)*\[\d+\] interrupted\n=> 0x001000[0-9a-f]{2} </,
        );
        await p.prompt();
        // The session goes on.
        p.type("x/2xw 0x1000f8");
        p.keys("Enter");
        await p.waitFor(
          (s) => /0x001000f8 <[a-z_.+0-9x]+>: 0x[0-9a-f]{8} 0x[0-9a-f]{8}/.test(s),
          "x after the interruption",
        );
      } finally {
        p.close();
      }
    },
  );

  it("guest output arriving while the prompt waits is printed above it, the prompt redrawn", {
    timeout: 60_000,
  }, async () => {
    const p = new Pane(["--bare", "16", "examples/ticker.elf"], HIST);
    try {
      await p.prompt();
      p.type("c &");
      p.keys("Enter");
      await p.waitFor((s) => s.includes("running in the background"), "the background run");
      await p.prompt();
      p.type("x/4b 0x1000");
      // Ticks keep arriving above the half-typed line, which stays intact at the bottom.
      await p.waitFor((s) => /tick 2/.test(s), "ticks while the prompt waits");
      const before = p.screen().match(/tick (\d+)/g)!.length;
      await p.waitFor((s) => s.match(/tick (\d+)/g)!.length > before, "another tick");
      assert.equal(p.lastLine(), "(bare) x/4b 0x1000");
      // Looking works while it runs; interrupt stops it.
      p.keys("Enter");
      await p.waitFor((s) => /0x00001000: 00 00 00 00/.test(s), "x while running");
      p.type("interrupt");
      p.keys("Enter");
      await p.waitFor((s) => /\[\d+\] interrupted/.test(s), "interrupt");
      await p.prompt();
    } finally {
      p.close();
    }
  });

  it("--run on a terminal: a status line once a second, Ctrl-C prints the summary", {
    timeout: 60_000,
  }, async () => {
    const p = new Pane(["--bare", "--run", "16", "examples/ticker.elf"], HIST);
    try {
      const s = await p.waitFor(
        (s) =>
          /\[[\d,]+ instructions {2}[\d.]+ MIPS {2}virtual [\d.]+ s {2}bare machine\]/.test(s) &&
          s.includes("tick 1"),
        "the status line after a tick",
      );
      assert.match(s, /ticker: counting forever\n(\[.*\])?tick 1\n/);
      p.keys("C-c");
      const end = await p.waitFor((s) => s.includes("[exit 130]"), "the end");
      assert.match(
        end,
        /\[interrupted \(Ctrl-C\): \d+ instructions in [\d.]+ s, [\d.]+ MIPS\]\n\[exit 130\]/,
      );
      // The status line was erased: no line holds it and a tick together.
      assert.doesNotMatch(end, /tick \d+\[[\d,]+ instructions/);
    } finally {
      p.close();
    }
  });

  it("colours errors, stops and the current instruction on a terminal; NO_COLOR turns it off", {
    timeout: 60_000,
  }, async () => {
    for (const colour of [true, false]) {
      const p = new Pane(["--bare", "16", "examples/hello.elf"], HIST, { colour });
      try {
        await p.prompt();
        p.type("frob");
        p.keys("Enter");
        await p.waitFor((s) => s.includes("error: unknown command 'frob'"), "the error");
        p.type("break putc; c");
        p.keys("Enter");
        await p.waitFor((s) => /\[\d+\] breakpoint 1 at/.test(s), "the stop");
        await p.prompt();
        const e = p.screenWithEscapes();
        if (colour) {
          // deno-lint-ignore no-control-regex -- the escape codes are what is tested
          assert.match(e, /\x1b\[31merror: unknown command 'frob'/);
          // deno-lint-ignore no-control-regex -- the escape codes are what is tested
          assert.match(e, /\x1b\[33m\[\d+\] breakpoint 1 at 0x001000b7 <putc>/);
          assert.match(
            e,
            // deno-lint-ignore no-control-regex -- the escape codes are what is tested
            /\x1b\[1m\x1b\[32m=>(\x1b\[[0-9;]*m)*\*?(\x1b\[[0-9;]*m)*0x001000b7 <putc>/,
          );
        } else {
          // deno-lint-ignore no-control-regex -- the escape codes are what is tested
          assert.doesNotMatch(e, /\x1b\[3[0-9]m/);
        }
      } finally {
        p.close();
      }
    }
  });

  it("keeps history between runs and clears a line on Ctrl-C", { timeout: 60_000 }, async () => {
    rmSync(HIST, { force: true });
    const a = new Pane(["--bare", "16", "examples/hello.elf"], HIST);
    try {
      await a.prompt();
      a.type("disasm eip 2");
      a.keys("Enter");
      await a.waitFor((s) => /=> 0x[0-9a-f]{8} <_start>:/.test(s), "disasm");
      a.type("quit");
      a.keys("Enter");
      await a.waitFor((s) => s.includes("[exit 0]"), "exit");
    } finally {
      a.close();
    }
    const b = new Pane(["--bare", "16", "examples/hello.elf"], HIST);
    try {
      await b.prompt();
      b.keys("Up");
      await b.waitFor(() => b.lastLine() === "(bare) quit", "the last command recalled");
      b.keys("Up");
      await b.waitFor(() => b.lastLine() === "(bare) disasm eip 2", "the one before");
      b.keys("C-c");
      await b.waitFor((s) => s.includes("(bare) disasm eip 2^C"), "the line dropped");
      await b.prompt();
    } finally {
      b.close();
    }
  });
});
