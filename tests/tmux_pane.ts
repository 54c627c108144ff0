/**
 * A real terminal for tests: a tmux pane (Debian package `tmux`, installed by
 * CI) running repl.ts under the runtime running the tests. Keystrokes go in
 * with `tmux send-keys`, the screen comes back with `tmux capture-pane -p`.
 * Without tmux a Pane fails, saying so.
 */

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import process from "node:process";

const ROOT = new URL("..", import.meta.url).pathname;
const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";

/** The command line that runs repl.ts with `args` under this runtime. */
export function replCommand(args: string[]): [string, string[]] {
  if (isDeno) {
    const d = (globalThis as unknown as { Deno: { execPath(): string } }).Deno;
    return [d.execPath(), ["run", "-A", "repl.ts", ...args]];
  }
  return [process.execPath, ["repl.ts", ...args]];
}

/** Wait `ms` milliseconds. */
export const pause = (ms: number): Promise<unknown> => new Promise((r) => setTimeout(r, ms));

/** Is tmux installed? */
export function haveTmux(): boolean {
  const r = spawnSync("tmux", ["-V"], { encoding: "utf8" });
  return r.status === 0;
}

/** A tmux pane running repl.ts: keys in, screen out. */
export class Pane {
  private sock = `lguest-test-${process.pid}-${Math.random().toString(36).slice(2)}`;
  /**
   * repl.ts with `args` in a new 120x40 pane.
   *
   * @param args repl.ts's arguments
   * @param history its history file (LGUEST_TS_HISTORY)
   * @param o colour: leave NO_COLOR unset (by default it is set)
   */
  constructor(args: string[], history: string, o: { colour?: boolean } = {}) {
    if (!haveTmux()) {
      assert.fail(
        "tmux is not installed: these tests need a real terminal (apt-get install -y tmux)",
      );
    }
    const [cmd, argv] = replCommand(args);
    const line = [cmd, ...argv].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(" ");
    const shell = `cd '${ROOT}' && LGUEST_TS_HISTORY='${history}' ${
      o.colour ? "env -u NO_COLOR" : "NO_COLOR=1"
    } ${line}; echo "[exit $?]"; sleep 60`;
    const r = spawnSync("tmux", [
      "-L",
      this.sock,
      "-f",
      "/dev/null",
      "new-session",
      "-d",
      "-s",
      "t",
      "-x",
      "120",
      "-y",
      "40",
      shell,
    ]);
    assert.equal(r.status, 0, String(r.stderr));
  }

  /** Send tmux key names (Enter, C-c, C-]). */
  keys(...k: string[]): void {
    spawnSync("tmux", ["-L", this.sock, "send-keys", "-t", "t", ...k]);
  }

  /** Type text literally (no key names). */
  type(text: string): void {
    spawnSync("tmux", ["-L", this.sock, "send-keys", "-t", "t", "-l", text]);
  }

  /** The screen and 200 lines of scroll-back. */
  screen(): string {
    const r = spawnSync("tmux", ["-L", this.sock, "capture-pane", "-p", "-t", "t", "-S", "-200"], {
      encoding: "utf8",
    });
    return r.stdout.replace(/\s+$/, "");
  }

  /** The screen with its colours, as escape sequences (capture-pane -e). */
  screenWithEscapes(): string {
    const r = spawnSync(
      "tmux",
      ["-L", this.sock, "capture-pane", "-p", "-e", "-t", "t", "-S", "-200"],
      { encoding: "utf8" },
    );
    return r.stdout;
  }

  /** The last non-empty line on screen. */
  lastLine(): string {
    const lines = this.screen().split("\n").filter((l) => l.trim() !== "");
    return lines[lines.length - 1] ?? "";
  }

  /** Wait until `test` holds for the screen; fail after `ms`, showing it. */
  async waitFor(test: (s: string) => boolean, what: string, ms = 30_000): Promise<string> {
    const t0 = Date.now();
    for (;;) {
      const s = this.screen();
      if (test(s)) return s;
      if (Date.now() - t0 > ms) assert.fail(`timed out waiting for ${what}; the screen:\n${s}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Wait for the prompt `p` on the last line. */
  async prompt(p = "(bare) "): Promise<void> {
    await this.waitFor(() => this.lastLine() === p.trimEnd(), `the prompt '${p}'`);
  }

  /** End the pane and its tmux server. */
  close(): void {
    spawnSync("tmux", ["-L", this.sock, "kill-server"]);
  }
}
