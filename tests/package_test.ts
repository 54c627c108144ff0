/**
 * The package as it would be published and installed: `deno publish
 * --dry-run` and `deno doc --lint mod.ts` pass; `npm pack` ships the library,
 * the command, the examples, README and LICENSE and no tests, fixtures, bench
 * or tools; one name and one version in package.json, deno.json and
 * `--version`; the npm: version ranges in the source are package.json's; and
 * the packed tarball, installed with npm into a temporary directory, runs as
 * `npx lguest-ts` (Node handing it to Deno), as `bunx --bun lguest-ts`, and
 * imports by package name under Bun.
 *
 * Installing needs fflate and iced-x86, which `npm ci` left in npm's cache;
 * if npm cannot get them (no cache, no registry) that case skips, saying why.
 */

import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const BIN = join(ROOT, "node_modules", ".bin");
const DENO = join(BIN, "deno");
const BUN = join(BIN, "bun");

const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
const denoJson = JSON.parse(readFileSync(join(ROOT, "deno.json"), "utf8"));

function sh(cmd: string, args: string[], cwd: string, env = {}): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, {
    cwd,
    encoding: "utf8",
    timeout: 240_000,
    maxBuffer: 1 << 26,
    env: { ...process.env, NO_COLOR: "1", ...env },
  });
}

function out(r: SpawnSyncReturns<string>): string {
  return `status ${r.status}${r.error ? ` (${r.error.message})` : ""}\n${r.stdout}\n${r.stderr}`;
}

/** Paths npm would ship, from `npm pack --dry-run --json`. */
function packList(): string[] {
  const r = sh("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], ROOT);
  assert.equal(r.status, 0, out(r));
  return (JSON.parse(r.stdout)[0].files as { path: string }[]).map((f) => f.path);
}

const work = mkdtempSync(join(tmpdir(), "lguest-ts-package-"));
after(() => rmSync(work, { recursive: true, force: true }));

/**
 * Pack the repository and install the tarball in `work/app` (a fresh project
 * with no Deno or Bun of its own). Returns why it could not, or "".
 */
function install(): string {
  const r = sh("npm", ["pack", "--ignore-scripts", "--pack-destination", work], ROOT);
  if (r.status !== 0) return `npm pack failed: ${out(r)}`;
  const tarball = join(work, r.stdout.trim().split("\n").pop()!);
  const app = join(work, "app");
  sh("mkdir", ["-p", app], work);
  writeFileSync(join(app, "package.json"), '{ "name": "app", "private": true }\n');
  const i = sh("npm", [
    "install",
    "--prefer-offline",
    "--no-audit",
    "--no-fund",
    "--ignore-scripts",
    tarball,
  ], app);
  if (i.status !== 0) {
    return `npm could not install the tarball's dependencies (${
      i.stderr.trim().split("\n").pop()
    })`;
  }
  copyFileSync(join(ROOT, "examples/lguest/hello.elf"), join(app, "hello.elf"));
  return "";
}
const installSkip = install() || false;
if (installSkip) console.warn(`package_test: skipped: ${installSkip}`);
const APP = join(work, "app");

describe("publishing", () => {
  it(
    "deno publish --dry-run passes (no slow types, every file allowed)",
    { timeout: 120_000 },
    () => {
      const r = sh(DENO, ["publish", "--dry-run", "--allow-dirty"], ROOT);
      assert.equal(r.status, 0, out(r));
      assert.match(r.stderr + r.stdout, /Simulating publish of @lguest\/lguest-ts@/);
      const files = [...(r.stderr + r.stdout).matchAll(/file:\/\/\S+/g)].map((m) => m[0]);
      assert.ok(files.some((f) => f.endsWith("/mod.ts")), "mod.ts is published");
      const bad = files.filter((f) => /\/(tests|bench|tools|node_modules|\.cache)\//.test(f));
      assert.deepEqual(bad, [], "no tests, fixtures, bench, tools");
    },
  );

  it("deno doc --lint mod.ts finds nothing", { timeout: 120_000 }, () => {
    const r = sh(DENO, ["doc", "--lint", "mod.ts"], ROOT);
    assert.equal(r.status, 0, out(r));
  });

  it("npm pack ships the library, the command, examples, README and LICENSE only", () => {
    const files = packList();
    for (const f of ["mod.ts", "repl.ts", "bin/lguest-ts.mjs", "LICENSE", "README.md"]) {
      assert.ok(files.includes(f), `${f} ships`);
    }
    assert.ok(files.includes("examples/lguest/hello.elf"), "the example guests ship");
    assert.ok(files.includes("lib/boot/gzip.ts"));
    const top = ["mod.ts", "repl.ts", "LICENSE", "README.md", "package.json"];
    const other = files.filter((f) => !/^(lib|examples|bin)\//.test(f) && !top.includes(f));
    assert.deepEqual(other, [], "nothing else (no tests, fixtures, bench, tools)");
  });

  it("one name, one version, one license; the npm: ranges are package.json's", () => {
    assert.equal(pkg.name, denoJson.name);
    assert.equal(pkg.version, denoJson.version);
    assert.equal(pkg.license, denoJson.license);
    assert.equal(pkg.bin["lguest-ts"], "bin/lguest-ts.mjs");
    assert.equal(pkg.exports["."], denoJson.exports["."]);
    assert.match(
      readFileSync(join(ROOT, "LICENSE"), "utf8"),
      /GNU GENERAL PUBLIC LICENSE\s+Version 2/,
    );
    for (
      const [file, dep] of [["lib/boot/gzip.ts", "fflate"], ["lib/debug/disasm.ts", "iced-x86"]]
    ) {
      const text = readFileSync(join(ROOT, file), "utf8");
      const specs = [...text.matchAll(/"npm:([^@"]+)@([^"]+)"/g)];
      assert.ok(specs.length > 0, `${file} imports ${dep} by npm: specifier`);
      for (const m of specs) {
        assert.equal(m[1], dep, file);
        assert.equal(m[2], pkg.dependencies[dep], `${file}: ${dep} range`);
      }
    }
    const r = sh(DENO, ["run", "-A", "repl.ts", "--version"], ROOT);
    assert.equal(r.status, 0, out(r));
    assert.equal(r.stdout, `lguest-ts ${pkg.version}\n`);
  });
});

describe("installed from the packed tarball", () => {
  // Node finds Deno and Bun where a user's `npm install deno` would put them: on PATH.
  const withRuntimes = { PATH: BIN + delimiter + (process.env.PATH ?? "") };

  it("npx lguest-ts --version and a run of hello.elf (Node hands it to Deno)", {
    timeout: 240_000,
    skip: installSkip,
  }, () => {
    const v = sh("npx", ["--no-install", "lguest-ts", "--version"], APP, withRuntimes);
    assert.equal(v.status, 0, out(v));
    assert.equal(v.stdout, `lguest-ts ${pkg.version}\n`);
    const r = sh(
      "npx",
      ["--no-install", "lguest-ts", "--run", "16", "hello.elf"],
      APP,
      withRuntimes,
    );
    assert.equal(r.status, 0, out(r));
    const here = sh(
      DENO,
      ["run", "-A", "repl.ts", "--run", "16", "examples/lguest/hello.elf"],
      ROOT,
    );
    assert.equal(here.status, 0, out(here));
    assert.ok(here.stdout.length > 0);
    assert.equal(r.stdout, here.stdout, "the same console output as from the repository");
  });

  it("without Deno or Bun to be found, npx lguest-ts says what it needs", {
    timeout: 120_000,
    skip: installSkip,
  }, () => {
    const node = sh("sh", ["-c", "command -v node"], APP).stdout.trim();
    const r = sh(node, [join(APP, "node_modules/.bin/lguest-ts"), "--version"], APP, {
      PATH: "/nonexistent",
    });
    assert.equal(r.status, 2, out(r));
    assert.match(r.stderr, /^lguest-ts: needs Deno or Bun/);
  });

  it("bunx --bun lguest-ts runs it in Bun; Bun imports it by package name", {
    timeout: 240_000,
    skip: installSkip,
  }, () => {
    const r = sh(join(BIN, "bunx"), ["--bun", "lguest-ts", "--run", "16", "hello.elf"], APP);
    assert.equal(r.status, 0, out(r));
    assert.match(r.stdout, /\S/);
    writeFileSync(
      join(APP, "use.ts"),
      `import { disassemble, loadDisassembler } from "${pkg.name}";
await loadDisassembler();
console.log(disassemble(new Uint8Array([0x0f, 0xa2]), 0, 1)[0].text);
`,
    );
    const u = sh(BUN, ["use.ts"], APP);
    assert.equal(u.status, 0, out(u));
    assert.equal(u.stdout, "cpuid\n");
  });
});
