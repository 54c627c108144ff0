/**
 * The launcher's error type: every malformed input (kernel file, initrd,
 * command line) becomes one `BootError` with a one-line message, which the
 * front ends print without a stack trace.
 *
 * @module
 */

/** An error in what the user gave the launcher; its message is one line. */
export class BootError extends Error {
  /** A boot error. @param message one line, saying what is wrong and with which file */
  constructor(message: string) {
    super(message);
    this.name = "BootError";
  }
}
