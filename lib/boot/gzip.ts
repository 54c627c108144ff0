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
 * @module
 */

type Fflate = typeof import("npm:fflate@^0.8.2");

const fflate: Fflate = "Deno" in globalThis
  // deno-lint-ignore no-import-prefix -- inline, so that importers need no import map
  ? await import("npm:fflate@^0.8.2")
  : await import("fflate");

/** Inflate one gzip stream (throws on a corrupt or truncated one). */
export const gunzipSync: Fflate["gunzipSync"] = fflate.gunzipSync;

/** Deflate into one gzip stream (`level`, `mtime` and the rest as fflate takes them). */
export const gzipSync: Fflate["gzipSync"] = fflate.gzipSync;
