/**
 * gzip through fflate (pure JavaScript, so the same code can run in a browser
 * page), imported so that whoever imports lguest.ts needs no configuration of
 * their own: under Deno by an `npm:` specifier — which resolves from a
 * script loaded by path, by `file://` or by `http(s)://` URL, out of this
 * project's node_modules when run inside it and out of Deno's npm cache
 * otherwise — and under Bun (or Node) by the plain package name, which
 * resolves from the node_modules the package is installed in. The version
 * range is package.json's (tests/package_test.ts checks that they agree).
 *
 * A kernel file is untrusted, and inflating it is bounded by where it goes
 * ({@link gunzipInto}): a megabyte of deflate can inflate to a gigabyte, and
 * the gzip trailer's ISIZE can say anything (0, or 4 GiB), so the size is
 * never taken from the file. The compressed bytes are fed to fflate's
 * streaming `Gunzip` a few KiB at a time and each inflated chunk is copied
 * straight to its destination (guest RAM); the moment the output would pass
 * the end of the destination, inflating stops with a one-line
 * {@link BootError}. Deflate expands at most about 1032:1, so one step never
 * produces more than {@link GUNZIP_STEP} × 1032 bytes, however the stream is
 * made. Like zlib's gzread (the 2007 launcher's), concatenated members are
 * inflated in turn and bytes after the last member that are not another gzip
 * header are ignored. `gunzipSync` (whole, trusting ISIZE) is for the
 * project's own files only.
 *
 * @module
 */

import { BootError } from "./errors.ts";

type Fflate = typeof import("npm:fflate@^0.8.2");

const fflate: Fflate = "Deno" in globalThis
  // deno-lint-ignore no-import-prefix -- inline, so that importers need no import map
  ? await import("npm:fflate@^0.8.2")
  : await import("fflate");

/** Inflate one gzip stream whole (throws on a corrupt or truncated one): trusted files only. */
export const gunzipSync: Fflate["gunzipSync"] = fflate.gunzipSync;

/** Deflate into one gzip stream (`level`, `mtime` and the rest as fflate takes them). */
export const gzipSync: Fflate["gzipSync"] = fflate.gzipSync;

/** Compressed bytes handed to the inflater per step. */
export const GUNZIP_STEP = 4096;

/** What {@link gunzipInto} did. */
export interface GunzipResult {
  /** Inflated bytes written to the destination. */
  written: number;
  /** Compressed bytes handed to the inflater (from `offset`). */
  consumed: number;
}

/**
 * Inflate the gzip stream at `src[offset..]` into `dest`, never writing or
 * producing more than `dest.length` bytes: a stream that inflates to more is
 * refused as soon as that is known. `what` names the destination in the
 * error ("guest RAM above 1 MiB").
 */
export function gunzipInto(
  src: Uint8Array,
  offset: number,
  dest: Uint8Array,
  name: string,
  what: string,
): GunzipResult {
  let written = 0, over = false, consumed = 0;
  const gz = new fflate.Gunzip((chunk) => {
    if (over) return;
    if (chunk.length > dest.length - written) {
      over = true;
      return;
    }
    dest.set(chunk, written);
    written += chunk.length;
  });
  const input = src.subarray(offset);
  try {
    while (consumed < input.length && !over) {
      const step = input.subarray(consumed, consumed + GUNZIP_STEP);
      consumed += step.length;
      gz.push(step, consumed === input.length);
    }
  } catch (e) {
    // After a member ends, Gunzip looks for another gzip header; anything else
    // there is the rest of the file (the first header was checked by the caller).
    const code = (e as { code?: number }).code;
    if (code !== fflate.FlateErrorCode.InvalidHeader) {
      throw new BootError(`${name}: corrupt gzip stream at offset ${offset}`);
    }
  }
  if (over) {
    throw new BootError(
      `${name}: gzip stream inflates to more than ${dest.length} bytes (what fits in ${what})`,
    );
  }
  return { written, consumed };
}
