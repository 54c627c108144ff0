/**
 * A guest's console output cannot grow the host without bound: the launcher
 * and the bare machine keep the last bytes in a ring (lib/boot/console_log.ts)
 * with counts of all of it, and readers take it as a stream. The guest
 * tests/guests/chatter.elf prints about 27 KB to a launcher that keeps 4 KiB.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { Launcher } from "../lib/boot/launcher.ts";
import { BareMachine } from "../lib/boot/bare.ts";
import { CONSOLE_LOG_BYTES, ConsoleLog } from "../lib/boot/console_log.ts";

/** What tests/guests/chatter.asm prints. */
function chatterText(): string {
  let s = "";
  for (let n = 0; n < 3000; n++) s += `line ${n}\n`;
  return s;
}

describe("console log", () => {
  it("keeps the last `capacity` bytes in order, and counts all and dropped", () => {
    const log = new ConsoleLog(100);
    const all: number[] = [];
    for (let i = 0; i < 1234; i++) {
      const b = (i * 7 + 3) & 0xff;
      all.push(b);
      log.push(b);
      assert.ok(log.allocated <= 100);
    }
    assert.equal(log.total, 1234);
    assert.equal(log.length, 100);
    assert.equal(log.dropped, 1134);
    assert.deepEqual([...log.bytes()], all.slice(-100));
  });

  it("grows its ring only as output arrives", () => {
    const log = new ConsoleLog();
    assert.equal(log.capacity, CONSOLE_LOG_BYTES);
    assert.ok(log.allocated < 4096, `a fresh log holds ${log.allocated} bytes`);
    for (const c of "hi\n") log.push(c.charCodeAt(0));
    assert.equal(log.text(), "hi\n");
    assert.equal(log.dropped, 0);
  });

  it("a reader gets each byte once, and counts what fell off before it read", () => {
    const log = new ConsoleLog(8);
    const r = log.reader();
    for (const c of "abc") log.push(c.charCodeAt(0));
    assert.equal(r.readText(), "abc");
    assert.equal(r.readText(), "");
    for (const c of "defghijklmnop") log.push(c.charCodeAt(0));
    assert.equal(r.readText(), "ijklmnop");
    assert.equal(r.missed, 5);
    const late = log.reader(true);
    log.push(0x71);
    assert.equal(late.readText(), "q");
    assert.equal(log.reader().readText(), "jklmnopq");
  });

  it("text is Latin-1, one character per byte, even for a megabyte", () => {
    const log = new ConsoleLog();
    for (let i = 0; i < CONSOLE_LOG_BYTES + 10; i++) log.push(i & 0xff);
    const t = log.text();
    assert.equal(t.length, CONSOLE_LOG_BYTES);
    assert.equal(t.charCodeAt(0), 10);
    assert.equal(t.charCodeAt(0x96 - 10), 0x96);
    assert.equal(log.allocated, CONSOLE_LOG_BYTES);
  });

  it("a refused capacity is a one-line error", () => {
    assert.throws(() => new ConsoleLog(0), /positive integer, not 0/);
  });
});

describe("a guest printing more than the launcher keeps", () => {
  it("holds only the last outputBytes and counts everything it printed", () => {
    const printed = chatterText();
    const l = new Launcher({
      memMiB: 16,
      kernel: new Uint8Array(readFileSync("tests/guests/chatter.elf")),
      outputBytes: 4096,
    });
    const seen = l.output.reader();
    let streamed = "";
    for (let i = 0; i < 1000 && !l.guest.dead; i++) {
      l.guest.run(20_000);
      streamed += seen.readText();
      assert.ok(l.output.allocated <= 4096, `ring of ${l.output.allocated} bytes`);
    }
    assert.ok(l.guest.poweredOff, l.guest.deathReason);
    assert.equal(l.output.total, printed.length);
    assert.equal(l.output.length, 4096);
    assert.equal(l.output.dropped, printed.length - 4096);
    assert.equal(l.text(), printed.slice(-4096));
    // Read often enough, the stream loses nothing.
    assert.equal(seen.missed, 0);
    assert.equal(streamed, printed);
  });

  it("the bare machine's COM1 log is bounded the same way", () => {
    let printed = "";
    const m = new BareMachine(16, (b) => (printed += String.fromCharCode(b)), 16);
    m.loadKernel(new Uint8Array(readFileSync("examples/hello.elf")), "hello.elf");
    m.run(10_000_000);
    assert.ok(printed.length > 16, `hello printed ${JSON.stringify(printed)}`);
    assert.equal(m.output.total, printed.length);
    assert.equal(m.output.text(), printed.slice(-16));
    assert.ok(m.output.allocated <= 16);
  });
});
