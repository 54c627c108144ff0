/**
 * mod.ts is importable with no configuration of the importer's: a script in a
 * temporary directory with no deno.json or package.json imports it — under
 * Deno over loopback HTTP (this repository served by a server started here),
 * by `file://` URL and by relative path; under Bun by path — boots
 * examples/lguest/hello.elf and disassembles its first instruction, and must
 * print what the same calls print here. And the disassembler is loaded
 * lazily: a Deno script without read permission for iced-x86's WebAssembly
 * boots the guest, and only its first disassembly fails (with a one-line
 * reason).
 *
 * The children are this project's own deno and bun (node_modules/.bin). With
 * no configuration, Deno resolves the `npm:` specifiers from its own npm cache
 * (DENO_DIR), filled from the npm registry on first use; if the registry
 * cannot be reached then, the Deno cases skip, saying so.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join, normalize, relative, sep } from "node:path";
import process from "node:process";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Debugger, Launcher, LguestTarget, loadDisassembler } from "../mod.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const DENO = join(ROOT, "node_modules", ".bin", "deno");
const BUN = join(ROOT, "node_modules", ".bin", "bun");

/** What the child scripts print, computed here with the same calls. */
async function expected(): Promise<string> {
  const kernel = new Uint8Array(readFileSync(join(ROOT, "examples/lguest/hello.elf")));
  return await bootAndDisassemble(kernel);
}

/** The body every child runs (kept in step with the script text below). */
async function bootAndDisassemble(kernel: Uint8Array): Promise<string> {
  let text = "";
  const l = new Launcher({
    memMiB: 16,
    kernel,
    kernelName: "hello.elf",
    console: (b) => (text += String.fromCharCode(b)),
  });
  const dbg = new Debugger(new LguestTarget(l));
  await loadDisassembler();
  const first = dbg.disasm()[0].text;
  const ev = await dbg.continue();
  return JSON.stringify({ first, text, reason: ev.reason, off: l.guest.poweredOff });
}

/** A child script importing mod.ts from `spec`. */
function script(spec: string): string {
  return `import { Debugger, Launcher, LguestTarget, loadDisassembler } from ${
    JSON.stringify(spec)
  };
import { readFileSync } from "node:fs";
const kernel = new Uint8Array(readFileSync("hello.elf"));
let text = "";
const l = new Launcher({
  memMiB: 16,
  kernel,
  kernelName: "hello.elf",
  console: (b: number) => (text += String.fromCharCode(b)),
});
const dbg = new Debugger(new LguestTarget(l));
await loadDisassembler();
const first = dbg.disasm()[0].text;
const ev = await dbg.continue();
console.log(JSON.stringify({ first, text, reason: ev.reason, off: l.guest.poweredOff }));
`;
}

/** The same boot without disassembling, then a disassembly that must fail for want of permission. */
function lazyScript(spec: string): string {
  return `import { Launcher, loadDisassembler } from ${JSON.stringify(spec)};
import { readFileSync } from "node:fs";
let text = "";
const l = new Launcher({
  memMiB: 16,
  kernel: new Uint8Array(readFileSync("hello.elf")),
  console: (b: number) => (text += String.fromCharCode(b)),
});
while (l.guest.run(1 << 24) === "budget");
let dis = "loaded";
try {
  await loadDisassembler();
} catch (e) {
  dis = String((e as Error).message);
}
console.log(JSON.stringify({ text, off: l.guest.poweredOff, dis }));
`;
}

interface Child {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Run a child without blocking this process (the HTTP server must keep answering). */
function run(cmd: string, args: string[], cwd: string): Promise<Child> {
  return new Promise((resolve, reject) => {
    const env: Record<string, string> = { ...process.env, NO_COLOR: "1" } as Record<
      string,
      string
    >;
    const c = spawn(cmd, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "", stderr = "";
    c.stdout.on("data", (d) => (stdout += d));
    c.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => c.kill("SIGKILL"), 240_000);
    c.on("error", reject);
    c.on("close", (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

/** Serve the repository read-only on 127.0.0.1 (TypeScript with its content type). */
function serve(root: string): Promise<{ server: Server; base: string }> {
  const server = createServer((req, res) => {
    const path = normalize(
      join(root, decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname)),
    );
    if (!path.startsWith(root)) {
      res.writeHead(403).end();
      return;
    }
    try {
      const body = readFileSync(path);
      const type = path.endsWith(".ts")
        ? "application/typescript; charset=utf-8"
        : path.endsWith(".json")
        ? "application/json"
        : "application/octet-stream";
      res.writeHead(200, { "content-type": type }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const a = server.address();
      const port = typeof a === "object" && a ? a.port : 0;
      resolve({ server, base: `http://127.0.0.1:${port}/` });
    });
  });
}

const dir = mkdtempSync(join(tmpdir(), "lguest-ts-import-"));
copyFileSync(join(ROOT, "examples/lguest/hello.elf"), join(dir, "hello.elf"));

/**
 * Deno with no configuration takes npm packages from its own cache, filled
 * from the registry: fetch them now, and skip the Deno cases (saying why)
 * if that cannot be done.
 */
async function denoNpmReady(): Promise<string | false> {
  writeFileSync(
    join(dir, "probe.ts"),
    `await import("npm:fflate@^0.8.2"); await import("npm:iced-x86@^1.21.0");\n`,
  );
  const c = await run(DENO, ["run", "-A", "probe.ts"], dir);
  if (c.status === 0) return false;
  const why = `skipped: Deno could not get fflate and iced-x86 from the npm registry into its ` +
    `cache (${c.stderr.trim().split("\n").pop()})`;
  console.warn(`import_test: ${why}`);
  return why;
}
const denoSkip = await denoNpmReady();

let want = "";
let http: { server: Server; base: string } | null = null;

before(async () => {
  want = await expected();
  http = await serve(ROOT.endsWith(sep) ? ROOT : ROOT + sep);
});

after(() => {
  http?.server.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Write `text` as a script in the temporary directory and run it under Deno with `perms`. */
async function deno(name: string, text: string, perms: string[]): Promise<Child> {
  writeFileSync(join(dir, name), text);
  return await run(DENO, ["run", ...perms, name], dir);
}

describe("mod.ts imported with no importer configuration", () => {
  it("the expected output is a real boot (a sanity check of the reference)", () => {
    const w = JSON.parse(want);
    assert.equal(w.off, true);
    assert.ok(w.text.length > 0);
    assert.notEqual(w.first, "(bad)");
  });

  it("Deno, over http:// from a directory with no deno.json", {
    timeout: 300_000,
    skip: denoSkip,
  }, async () => {
    const c = await deno("http.ts", script(http!.base + "mod.ts"), ["-A"]);
    assert.equal(c.status, 0, c.stderr);
    assert.equal(c.stdout.trim(), want);
  });

  it("Deno, by file:// URL and by relative path", {
    timeout: 300_000,
    skip: denoSkip,
  }, async () => {
    const url = pathToFileURL(join(ROOT, "mod.ts")).href;
    let rel = relative(dir, join(ROOT, "mod.ts")).split(sep).join("/");
    if (!rel.startsWith(".")) rel = "./" + rel;
    for (const [name, spec] of [["file.ts", url], ["path.ts", rel]]) {
      const c = await deno(name, script(spec), ["-A"]);
      assert.equal(c.status, 0, `${spec}: ${c.stderr}`);
      assert.equal(c.stdout.trim(), want, spec);
    }
  });

  it(
    "Deno: booting needs no read permission for the disassembler; disassembling does",
    { timeout: 300_000, skip: denoSkip },
    async () => {
      const host = new URL(http!.base).host;
      const c = await deno("lazy.ts", lazyScript(http!.base + "mod.ts"), [
        `--allow-import=${host}`,
        `--allow-read=${dir}`,
      ]);
      assert.equal(c.status, 0, c.stderr);
      const got = JSON.parse(c.stdout);
      const w = JSON.parse(want);
      assert.equal(got.text, w.text);
      assert.equal(got.off, true);
      assert.match(got.dis, /^the disassembler \(iced-x86\) could not be loaded: .*read access/);
    },
  );

  it("Bun, by absolute and relative path from outside the repository", {
    timeout: 300_000,
  }, async () => {
    let rel = relative(dir, join(ROOT, "mod.ts")).split(sep).join("/");
    if (!rel.startsWith(".")) rel = "./" + rel;
    for (const [name, spec] of [["abs.ts", join(ROOT, "mod.ts")], ["rel.ts", rel]]) {
      writeFileSync(join(dir, name), script(spec));
      const c = await run(BUN, [name], dir);
      assert.equal(c.status, 0, `${spec}: ${c.stderr}`);
      assert.equal(c.stdout.trim(), want, spec);
    }
  });
});
