/**
 * A `--block=FILE[,ro]` disk image as the block device's backing store: the
 * file's bytes read once, each guest write written through to the file at
 * its offset as it is made (so the file holds every acknowledged write,
 * whatever ends the run), and the guest's FLUSH an fsync.
 *
 * @module
 */

import { closeSync, fstatSync, fsyncSync, openSync, readSync, statSync, writeSync } from "node:fs";
import { BootError } from "./errors.ts";
import type { BlockDisk } from "../devices/virtio_blk.ts";

/**
 * A `--block` disk: the file's bytes, with its writes going through to the
 * file as the guest makes them (fsync on the guest's flush). One-line errors
 * for a missing file, a directory, a size not a whole number of sectors.
 *
 * @param path the disk image
 * @param readOnly open it read-only (`,ro`)
 * @returns the disk for the launcher's `block` option
 */
export function openDisk(path: string, readOnly: boolean): BlockDisk {
  let fd: number;
  try {
    if (statSync(path).isDirectory()) throw new BootError(`--block=${path}: is a directory`);
    fd = openSync(path, readOnly ? "r" : "r+");
  } catch (e) {
    if (e instanceof BootError) throw e;
    const code = (e as { code?: string }).code;
    throw new BootError(
      `--block=${path}: ${
        code === "ENOENT"
          ? "no such file"
          : code === "EACCES" || code === "EROFS" || code === "EPERM"
          ? "cannot open it for writing (add ,ro for a read-only disk)"
          : "cannot open it"
      }`,
    );
  }
  const bytes = new Uint8Array(fstatSync(fd).size);
  if (bytes.length === 0 || bytes.length % 512 !== 0) {
    closeSync(fd);
    throw new BootError(
      `--block=${path}: ${bytes.length} bytes, not a whole number of 512-byte sectors`,
    );
  }
  for (let at = 0; at < bytes.length;) {
    const n = readSync(fd, bytes, at, bytes.length - at, at);
    if (n <= 0) break;
    at += n;
  }
  return {
    bytes,
    readOnly,
    write: (offset, data) => {
      for (let at = 0; at < data.length;) {
        at += writeSync(fd, data, at, data.length - at, offset + at);
      }
    },
    flush: () => fsyncSync(fd),
  };
}
