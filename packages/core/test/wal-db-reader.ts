// A reader that follows wal-db 1.x's own rules for a segmented log, written
// from its specification for these tests (FORMAT.md §3.2, §5.3): it is not
// our scan, so a rule we got wrong in both our writer and our reader cannot
// hide. wal-db 1.x (`SegmentedStore::open`, `Wal::open`):
//
// - the end of the flat space is `k·S + size` of the highest-numbered segment
//   file `k` present, or 0 when there is none;
// - the head is the 12-byte head file's value (u64 LE, then CRC-32C of those
//   8 bytes) when the file is at least 12 bytes long and its CRC matches,
//   else 0; it is capped at the end;
// - recovery walks frames from the head and stops at the first short header,
//   short payload (a missing segment or a short file ends the space) or CRC
//   mismatch; the next append goes to where it stopped.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32c } from '../src/index.js';

const SEGMENT_FILE = /^(\d{20})\.wal$/;

/** What wal-db 1.x makes of a segmented log directory. */
export interface WalDbView {
  /** End of the flat space, from the highest segment file. */
  readonly end: number;
  /** Where its recovery starts. */
  readonly head: number;
  /** LSNs of the records its recovery finds, in order. */
  readonly lsns: number[];
  /** Payloads of those records. */
  readonly payloads: Buffer[];
  /** Where its recovery stops: the LSN its next append gets. */
  readonly next: number;
}

/** The 12-byte wal-db head file for `head`. */
export function walDbHeadFile(head: number): Buffer {
  const value = Buffer.alloc(8);
  value.writeBigUInt64LE(BigInt(head), 0);
  const crc = Buffer.alloc(4);
  crc.writeUInt32LE(crc32c(value) >>> 0, 0);
  return Buffer.concat([value, crc]);
}

/** The files of directory `dir` by name (the log directories here have no subdirectories). */
export function filesIn(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const name of readdirSync(dir)) out.set(name, readFileSync(join(dir, name)));
  return out;
}

/** The files directly in `dir` of a whole-file-system image (a `CrashState`), by name. */
export function filesOfImage(
  files: ReadonlyMap<string, Uint8Array>,
  dir: string,
): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const [path, bytes] of files) {
    if (path.startsWith(`${dir}/`) && !path.slice(dir.length + 1).includes('/')) {
      out.set(path.slice(dir.length + 1), Buffer.from(bytes));
    }
  }
  return out;
}

/** Reads a segmented log's files (by name) with segment size `segmentSize` the way wal-db 1.x does. */
export function walDbView(files: ReadonlyMap<string, Buffer>, segmentSize: number): WalDbView {
  const segments = new Map<number, Buffer>();
  for (const [name, bytes] of files) {
    const digits = SEGMENT_FILE.exec(name)?.[1];
    if (digits !== undefined) segments.set(Number(digits), bytes);
  }
  let end = 0;
  let highest = -1;
  for (const [index, bytes] of segments) {
    if (index > highest) {
      highest = index;
      end = index * segmentSize + bytes.length;
    }
  }
  let head = 0;
  const bytes = files.get('head');
  if (bytes !== undefined) {
    if (bytes.length >= 12 && crc32c(bytes.subarray(0, 8)) >>> 0 === bytes.readUInt32LE(8)) {
      head = Number(bytes.readBigUInt64LE(0));
    }
  }
  head = Math.min(head, end);

  /** Bytes `[offset, offset + length)`, or fewer where a segment is missing or short. */
  const read = (offset: number, length: number): Buffer => {
    const parts: Buffer[] = [];
    let at = offset;
    while (at < offset + length) {
      const index = Math.floor(at / segmentSize);
      const file = segments.get(index);
      if (file === undefined) break;
      const within = at - index * segmentSize;
      const want = Math.min(segmentSize - within, offset + length - at);
      const got = file.subarray(within, within + want);
      parts.push(got);
      at += got.length;
      if (got.length < want) break;
    }
    return Buffer.concat(parts);
  };

  const lsns: number[] = [];
  const payloads: Buffer[] = [];
  let at = head;
  for (;;) {
    const header = read(at, 8);
    if (header.length < 8) break;
    const length = header.readUInt32LE(4);
    if (at + 8 + length > end) break;
    const payload = read(at + 8, length);
    if (payload.length < length) break;
    const covered = Buffer.concat([header.subarray(4, 8), payload]);
    if (crc32c(covered) >>> 0 !== header.readUInt32LE(0)) break;
    lsns.push(at);
    payloads.push(payload);
    at += 8 + length;
  }
  return { end, head, lsns, payloads, next: at };
}
