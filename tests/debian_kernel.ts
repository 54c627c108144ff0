/**
 * A real kernel nobody here wrote: Debian's i386 `linux-image-6.1.0-*-686-unsigned`,
 * fetched with apt and cached, and its reference `vmlinux` extracted natively.
 *
 * The test command's setup (tools/test-setup.sh) fetches it by running this
 * file, saying first what it will do and why: add i386 to dpkg's
 * architectures (so that apt sees i386 packages; it is removed again
 * afterwards if it was not there before), `apt-get update`, pick the newest
 * matching package, `apt-get download` it, pull `/boot/vmlinuz-*` out with
 * `dpkg-deb --fsys-tarfile | tar` — and leaves the vmlinuz in
 * `.cache/debian-kernel/` (gitignored), where later runs find it with no
 * network. The tests never fetch: without the cached kernel (or without `xz`)
 * they skip, saying why ({@link kernelSkipReason}). The reference vmlinux is
 * what `scripts/extract-vmlinux` would produce: the XZ stream found by its
 * magic inside the bzImage, decompressed by the `xz` command, once per run
 * (never cached: the reference is always made fresh from the bzImage).
 *
 * Every failure to fetch is an Error with a one-line message saying what
 * failed.
 *
 * @module
 */

import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { isElf } from "../lib/boot/elf.ts";

/** The cache directory, `.cache/debian-kernel/` at the repository root. */
export const KERNEL_CACHE_DIR: string = fileURLToPath(
  new URL("../.cache/debian-kernel/", import.meta.url),
);

/** Debian's kernel packages we take: 6.1 (bookworm), 686 flavour, unsigned. */
const PACKAGE_RE = /^linux-image-6\.1\.0-(\d+)-686-unsigned$/;
const VMLINUZ_RE = /^vmlinuz-6\.1\.0-(\d+)-686$/;

/** The cached kernel. */
export interface DebianKernel {
  /** Path of the vmlinuz (a bzImage) in the cache. */
  path: string;
  /** Its release, e.g. "6.1.0-50-686". */
  release: string;
  /** The bzImage's bytes. */
  bzImage: Uint8Array;
}

function sh(cmd: string, args: string[], cwd?: string): SpawnSyncReturns<Buffer> {
  return spawnSync(cmd, args, {
    cwd,
    maxBuffer: 1 << 30,
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive", LC_ALL: "C" },
  });
}

/** The last non-empty line of a command's stderr (or its spawn error), for one-line messages. */
function why(r: SpawnSyncReturns<Buffer>): string {
  if (r.error) return r.error.message;
  const lines = (r.stderr?.toString() ?? "").split("\n").map((l) => l.trim()).filter((l) => l);
  const errs = lines.filter((l) => l.startsWith("E:"));
  return (errs.pop() ?? lines.pop() ?? `exit status ${r.status}`).slice(0, 300);
}

function must(r: SpawnSyncReturns<Buffer>, what: string): SpawnSyncReturns<Buffer> {
  if (r.error || r.status !== 0) throw new Error(`debian kernel: ${what} failed: ${why(r)}`);
  return r;
}

/** The newest cached vmlinuz, if any. */
export function cachedKernelPath(): string | null {
  if (!existsSync(KERNEL_CACHE_DIR)) return null;
  const found = readdirSync(KERNEL_CACHE_DIR)
    .map((f) => VMLINUZ_RE.exec(f))
    .filter((m): m is RegExpExecArray => m !== null)
    .sort((a, b) => Number(b[1]) - Number(a[1]));
  return found.length ? KERNEL_CACHE_DIR + found[0][0] : null;
}

/** Ask apt for the newest `linux-image-6.1.0-N-686-unsigned` (i386) it knows of. */
function newestPackage(): string | null {
  const r = sh("apt-cache", ["search", "--names-only", "^linux-image-6\\.1\\.0-.*-686-unsigned$"]);
  if (r.error || r.status !== 0) return null;
  const names = r.stdout.toString().split("\n").map((l) => l.split(" ")[0])
    .filter((n) => PACKAGE_RE.test(n))
    .sort((a, b) => Number(PACKAGE_RE.exec(b)![1]) - Number(PACKAGE_RE.exec(a)![1]));
  return names[0] ?? null;
}

/** Was `arch` among dpkg's foreign architectures? */
function hasForeignArch(arch: string): boolean {
  const r = sh("dpkg", ["--print-foreign-architectures"]);
  return !r.error && r.status === 0 && r.stdout.toString().split("\n").includes(arch);
}

/**
 * Download the newest kernel package with apt and cache its vmlinuz; `say`
 * hears each step before it is taken. Returns the cached path.
 */
export function fetchDebianKernel(say: (line: string) => void): string {
  if (process.platform !== "linux") {
    throw new Error("debian kernel: not cached and this is not Linux (apt needed)");
  }
  const added = !hasForeignArch("i386");
  if (added) {
    say("dpkg --add-architecture i386  (apt lists i386 packages only then; removed again after)");
    must(sh("dpkg", ["--add-architecture", "i386"]), "dpkg --add-architecture i386");
  }
  try {
    say("apt-get update  (the package lists, i386 included)");
    // apt-get update can report a failed index (a mirror mid-sync) and still leave
    // usable lists: only give up if the package cannot be found afterwards.
    const upd = sh("apt-get", ["update"]);
    const pkg = newestPackage();
    if (!pkg) {
      throw new Error(
        `debian kernel: no linux-image-6.1.0-*-686-unsigned package known to apt ` +
          `(apt-get update: ${upd.status === 0 ? "ok" : why(upd)})`,
      );
    }
    mkdirSync(KERNEL_CACHE_DIR, { recursive: true });
    const work = KERNEL_CACHE_DIR + `download-${process.pid}/`;
    rmSync(work, { recursive: true, force: true });
    mkdirSync(work, { recursive: true });
    try {
      say(`apt-get download ${pkg}:i386  (into ${work}; nothing is installed)`);
      must(sh("apt-get", ["download", `${pkg}:i386`], work), `apt-get download ${pkg}:i386`);
      const deb = readdirSync(work).find((f) => f.endsWith(".deb"));
      if (!deb) throw new Error(`debian kernel: apt-get download ${pkg}:i386 left no .deb`);
      const release = pkg.replace(/^linux-image-/, "").replace(/-unsigned$/, "");
      const member = `./boot/vmlinuz-${release}`;
      say(`dpkg-deb --fsys-tarfile ${deb} | tar -x ${member}  (the bzImage alone is kept)`);
      must(
        sh(
          "sh",
          ["-c", `dpkg-deb --fsys-tarfile "$1" | tar -x -f - "$2"`, "sh", deb, member],
          work,
        ),
        `extracting ${member} from ${deb}`,
      );
      const got = work + member.slice(2);
      if (!existsSync(got)) throw new Error(`debian kernel: ${deb} has no ${member}`);
      // Rename into place: a concurrent run sees the whole file or none.
      const dest = KERNEL_CACHE_DIR + `vmlinuz-${release}`;
      renameSync(got, dest);
      return dest;
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  } finally {
    if (added) {
      say("dpkg --remove-architecture i386  (as it was)");
      sh("dpkg", ["--remove-architecture", "i386"]);
    }
  }
}

let memo: DebianKernel | null = null;

/**
 * Why the tests that need the Debian kernel and its reference vmlinux must
 * skip — it is not cached, or `xz` is missing — or false when they can run.
 */
export function kernelSkipReason(): string | false {
  if (cachedKernelPath() === null) {
    return `no Debian i386 kernel in ${KERNEL_CACHE_DIR} (the test command's setup, ` +
      "`sh tools/test-setup.sh`, fetches it with apt; it said why it could not)";
  }
  const r = sh("xz", ["--version"]);
  if (r.error || r.status !== 0) return "no xz command (Debian package xz-utils)";
  return false;
}

/**
 * The cached Debian i386 kernel's bzImage. Throws an Error with a one-line
 * message if it is not cached (see {@link kernelSkipReason}).
 */
export function debianKernel(): DebianKernel {
  if (memo) return memo;
  const path = cachedKernelPath();
  if (path === null) throw new Error(`debian kernel: not cached in ${KERNEL_CACHE_DIR}`);
  const release = path.slice(path.lastIndexOf("/") + "/vmlinuz-".length);
  const bzImage = new Uint8Array(readFileSync(path));
  memo = { path, release, bzImage };
  return memo;
}

/** The XZ stream header magic: FD '7zXZ' 00. */
const XZ_MAGIC = [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00];

/**
 * The reference vmlinux inside a bzImage, extracted natively as
 * `scripts/extract-vmlinux` does: try each XZ magic in turn, decompress from
 * there with `xz -dc --single-stream` (which ignores what follows the stream),
 * and take the first result that is an ELF file.
 */
export function extractVmlinux(bzImage: Uint8Array): Uint8Array {
  let tried = 0;
  for (let i = bzImage.indexOf(XZ_MAGIC[0]); i >= 0; i = bzImage.indexOf(XZ_MAGIC[0], i + 1)) {
    if (!XZ_MAGIC.every((b, k) => bzImage[i + k] === b)) continue;
    tried++;
    // The stream goes through a file, not stdin: Deno's spawnSync deadlocks
    // writing a large stdin while the child fills its stdout pipe.
    const tmp = join(tmpdir(), `lguest-ts-xz-${process.pid}-${i}`);
    writeFileSync(tmp, bzImage.subarray(i));
    let r: SpawnSyncReturns<Buffer>;
    try {
      r = sh("xz", ["-dc", "--single-stream", "--", tmp]);
    } finally {
      rmSync(tmp, { force: true });
    }
    if (r.error || r.status !== 0) continue;
    const out = new Uint8Array(r.stdout.buffer, r.stdout.byteOffset, r.stdout.byteLength);
    if (isElf(out)) return out;
  }
  throw new Error(
    tried === 0
      ? "debian kernel: no XZ stream in the bzImage"
      : `debian kernel: none of ${tried} XZ streams in the bzImage decompressed to an ELF vmlinux`,
  );
}

let vmlinuxMemo: Uint8Array | null = null;

/** The Debian kernel's reference vmlinux, extracted natively once per run. */
export function debianVmlinux(): Uint8Array {
  return (vmlinuxMemo ??= extractVmlinux(debianKernel().bzImage));
}

// Run by tools/test-setup.sh: fetch the kernel unless it is cached. Exit status
// 0 when it is there afterwards, 1 (with the reason) when it could not be had.
if (import.meta.main) {
  const say = (l: string) => process.stderr.write(`test-setup: ${l}\n`);
  const have = cachedKernelPath();
  if (have) {
    say(`Debian i386 kernel: cached (${have})`);
  } else {
    say(
      "the decompressor test and the benchmark run a real kernel, Debian's i386 " +
        "linux-image-6.1.0-*-686-unsigned; it is not cached yet, so it is fetched with apt now " +
        `(about a minute, once; the next run finds it in ${KERNEL_CACHE_DIR}):`,
    );
    try {
      const path = fetchDebianKernel((l) => say(`  ${l}`));
      say(`Debian i386 kernel: cached (${path})`);
    } catch (e) {
      say(`${e instanceof Error ? e.message : String(e)}`);
      say("the tests that need the Debian kernel will skip, saying so");
      process.exit(1);
    }
  }
}
