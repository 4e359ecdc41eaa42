import fs from 'node:fs';
import { FiredeckError } from '../../../src/shared/errors';

/**
 * e2fsprogs' undo files (`debugfs -z FILE`, format "E2UNDO02", lib/ext2fs/undo_io.c): before debugfs first
 * overwrites a block of the image it appends the block's old content here and rewrites the key block and the
 * header. It does so before the write to the image is even issued, and the header write (odd-sized, so it flushes
 * the undo file's block cache first) puts every key and data block in the file before the image block follows.
 * So a debugfs killed at any instant leaves an undo file that names every block it may have changed, and
 * replaying it restores the image exactly.
 *
 * Replayed here rather than with e2undo(8) because e2undo, for this use, refuses or guesses where a replay is
 * safe: it refuses (without -f) when the image's superblock differs from the last copy in the undo file, which is
 * the case after a kill between debugfs writing the superblock and updating the undo file, and on every retry of
 * a replay that was itself interrupted (block 0 is replayed first); with -f it writes blocks whose checksum fails;
 * and it marks a restored image as not cleanly unmounted. This replay is idempotent, checks every checksum, and
 * knows the one torn state a kill can leave (below).
 */

const MAGIC = 'E2UNDO02';
const KEY_MAGIC = 0xcadecade;
const HEADER_BYTES = 512;
const STATE_FINISHED = 0x1;
const FEATURE_FS_OFFSET = 0x1;

export interface UndoBlock {
  /** Byte offset in the image. */
  offset: number;
  data: Buffer;
}

export interface UndoLog {
  /** False when the writer died before closing it. */
  finished: boolean;
  blocks: UndoBlock[];
  /** The last extent was cut back to the part whose data reached the file (see parseUndoLog). */
  trimmedTornExtent: boolean;
}

const CRC32C_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** ext2fs_crc32c_le: reflected CRC-32C from `seed`, without the final inversion. */
export function crc32cLe(seed: number, buf: Uint8Array): number {
  let crc = seed >>> 0;
  for (let i = 0; i < buf.length; i++) crc = CRC32C_TABLE[(crc ^ buf[i]!) & 0xff]! ^ (crc >>> 8);
  return crc >>> 0;
}

function corrupt(file: string, why: string): FiredeckError {
  return new FiredeckError('integrity', `The undo log ${file} of an interrupted offline write is unusable: ${why}`, {
    hint: 'The image may hold a partial write. Check it with `e2fsck -fn`, repair it with `e2fsck -fy`, then remove the log.',
  });
}

/**
 * Reads and checks an undo file. An all-zero or empty header means debugfs died before recording its first block,
 * so before its first write to the image: nothing to undo.
 *
 * The torn state: when debugfs extends the last key to a block that follows it (a run of consecutive blocks), the
 * key block (new size and checksum) and the new data block are flushed by two writes, in no fixed order. Killed
 * between them with the key block written, the last extent reaches past the end of the file by that one block,
 * and its checksum covers data that never arrived. Its image block was not written either (that comes after the
 * header write), so the extent minus that block is what must be restored; its data reached the file in earlier
 * flushes. Any other checksum failure is refused.
 */
export function parseUndoLog(file: string): UndoLog {
  const buf = fs.readFileSync(file);
  if (buf.byteLength < HEADER_BYTES || buf.subarray(0, HEADER_BYTES).every((b) => b === 0)) {
    return { finished: false, blocks: [], trimmedTornExtent: false };
  }
  const header = buf.subarray(0, HEADER_BYTES);
  if (header.toString('latin1', 0, 8) !== MAGIC) throw corrupt(file, 'not an e2fsprogs undo file');
  if (crc32cLe(0xffffffff, header.subarray(0, HEADER_BYTES - 4)) !== header.readUInt32LE(HEADER_BYTES - 4)) {
    throw corrupt(file, 'header checksum');
  }
  const numKeys = Number(header.readBigUInt64LE(8));
  const keyOffset = Number(header.readBigUInt64LE(24));
  const blockSize = header.readUInt32LE(32);
  const fsBlockSize = header.readUInt32LE(36);
  const state = header.readUInt32LE(44);
  const compat = header.readUInt32LE(48);
  if (header.readUInt32LE(52) !== 0 || header.readUInt32LE(56) !== 0) throw corrupt(file, 'unknown features');
  if (blockSize < 1024 || blockSize > 1048576 || fsBlockSize === 0) throw corrupt(file, 'block sizes');
  const fsOffset = compat & FEATURE_FS_OFFSET ? Number(header.readBigUInt64LE(64)) : 0;
  const keysPerBlock = blockSize / 16 - 1;
  const blocks: UndoBlock[] = [];
  let trimmedTornExtent = false;
  let lblk = keyOffset;
  for (let i = 0; i < numKeys; i += keysPerBlock) {
    const keyBlock = buf.subarray(lblk * blockSize, (lblk + 1) * blockSize);
    if (keyBlock.byteLength !== blockSize) throw corrupt(file, `key block ${lblk} is missing`);
    if (keyBlock.readUInt32LE(0) !== KEY_MAGIC) throw corrupt(file, `key block ${lblk} magic`);
    const zeroed = Buffer.from(keyBlock);
    zeroed.writeUInt32LE(0, 4);
    if (crc32cLe(0xffffffff, zeroed) !== keyBlock.readUInt32LE(4)) throw corrupt(file, `key block ${lblk} checksum`);
    lblk++;
    const inBlock = Math.min(keysPerBlock, numKeys - i);
    for (let j = 0; j < inBlock; j++) {
      const key = keyBlock.subarray(16 + j * 16, 32 + j * 16);
      const fsblk = Number(key.readBigUInt64LE(0));
      const crc = key.readUInt32LE(8);
      const size = key.readUInt32LE(12);
      const start = lblk * blockSize;
      let data = buf.subarray(start, start + size);
      lblk += Math.ceil(size / blockSize);
      if (crc32cLe(0xffffffff, data) !== crc) {
        const last = i + j === numKeys - 1;
        const missing = start + size - buf.byteLength;
        if (!last || missing <= 0 || missing > blockSize) throw corrupt(file, `checksum of block ${fsblk}`);
        data = buf.subarray(start, start + size - blockSize);
        trimmedTornExtent = true;
      }
      if (data.byteLength > 0) blocks.push({ offset: fsblk * fsBlockSize + fsOffset, data });
    }
  }
  return { finished: (state & STATE_FINISHED) !== 0, blocks, trimmedTornExtent };
}

/**
 * Writes every recorded block back, the earliest record last so that it wins should two overlap, and flushes the
 * image. Running it again (after a crash during it) writes the same bytes.
 */
export function replayUndoLog(log: UndoLog, image: string): void {
  const fd = fs.openSync(image, 'r+');
  try {
    for (const block of [...log.blocks].reverse()) {
      let done = 0;
      while (done < block.data.byteLength) {
        done += fs.writeSync(fd, block.data, done, block.data.byteLength - done, block.offset + done);
      }
    }
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
