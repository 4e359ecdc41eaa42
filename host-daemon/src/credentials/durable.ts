import fs from 'node:fs';
import path from 'node:path';

/** fsync(2) on a file or a directory (the latter makes a create, rename or unlink in it durable). */
export function fsyncPath(p: string): void {
  const fd = fs.openSync(p, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Replaces `file` with `text` so that a crash leaves the old content or the new: temp, fsync, rename, fsync dir. */
export function writeFileDurably(file: string, text: string, mode = 0o600): void {
  const temp = `${file}.tmp`;
  const fd = fs.openSync(temp, 'w', mode);
  try {
    fs.writeSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(temp, file);
  fsyncPath(path.dirname(file));
}
