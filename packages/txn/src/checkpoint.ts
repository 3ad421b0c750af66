/**
 * Checkpoint files (internal): a snapshot of the committed state at one
 * commit sequence number, written crash-safely through an `Fs` and read back
 * at open. The layout is specified in docs/TXN-FORMAT.md §5 (with a test
 * vector); this module is its only reader and writer.
 *
 *   header = magic "WTXC" · version u32 (2) · seq u64 · lsn u64 · count u64
 *            · log 16 bytes (the identity of the log it belongs to)
 *            · crc32c u32 (of the 48 bytes before it)
 *   (version 1, still read: no `log` field, the CRC of the 32 bytes before it)
 *   block  = length u32 · crc32c u32 (of the payload) · payload
 *            payload = entries: keyLength u32 · key · valueLength u32 · value
 *   end    = a block of length 0 and crc 0; the file ends right after it
 *
 * Publishing: write `<name>.tmp`, fdatasync, close, rename to `<name>`, fsync
 * the directory. A reader only ever opens a `<name>` (never a `.tmp`), which
 * is whole and synced before its name exists, so no reader sees a half-written
 * checkpoint; a crash before the directory fsync leaves the previous one.
 */

import { Buffer } from 'node:buffer';
import { dirname } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { crc32c } from '@wal/core';
import { CorruptionError, errorCode, isWalError, NotALogError, toWalError } from '@wal/errors';
import { type Fs, type FsFile, writeAll } from '@wal/store';

export const MAGIC = 0x43585457; // "WTXC" read as u32 LE
export const VERSION = 2;
export const HEADER_SIZE = 52;
/** The header of a version 1 checkpoint (written before checkpoints named their log), still read. */
export const HEADER_SIZE_V1 = 36;
/** Bytes of a log's identity (`LOG_ID_KEY` in its metadata, the `log` field of a checkpoint). */
export const LOG_ID_BYTES = 16;
const BLOCK_HEADER = 8;
/** Largest block payload a reader accepts (a writer cuts blocks far below it). */
export const MAX_BLOCK = 2 ** 31 - 1;
/** Bytes a writer aims at per block. */
const BLOCK_TARGET = 1 << 20;

const NAME = /^checkpoint-(\d{20})\.ckpt$/;
const TEMPORARY = /^checkpoint-\d{20}\.ckpt\.tmp$/;

/** The file name of the checkpoint at `seq`. */
export function checkpointName(seq: number): string {
  return `checkpoint-${String(seq).padStart(20, '0')}.ckpt`;
}

/** Where a checkpoint stands: the state after commit `seq`; replay starts at log position `lsn`. */
export interface CheckpointPosition {
  readonly seq: number;
  readonly lsn: number;
}

/** The checkpoint files and leftover temporary files of a directory (foreign entries are ignored). */
export interface CheckpointListing {
  /** Sequence numbers of the published checkpoints, ascending. */
  readonly published: number[];
  /** Names of temporary files a crash left behind. */
  readonly temporary: string[];
}

/** Lists `dir`; a missing directory holds nothing. */
export async function listCheckpoints(fs: Fs, dir: string): Promise<CheckpointListing> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return { published: [], temporary: [] };
    if (errorCode(error) === 'ENOTDIR') {
      throw new NotALogError(dir, 'a file, where the checkpoint directory was expected');
    }
    throw toWalError(error, `listing the checkpoint directory ${dir}`);
  }
  const published: number[] = [];
  const temporary: string[] = [];
  for (const name of names) {
    const match = NAME.exec(name);
    if (match !== null) published.push(Number(match[1]));
    else if (TEMPORARY.test(name)) temporary.push(name);
  }
  published.sort((a, b) => a - b);
  return { published, temporary };
}

/** One entry of a checkpoint: a live key and its value. */
export interface CheckpointEntry {
  readonly key: Uint8Array;
  readonly value: Uint8Array;
}

/**
 * Encodes the header of a checkpoint of the log `log` (its identity); the
 * version 1 header, without it, when `log` is `undefined` (for tests of
 * checkpoints written before the change).
 */
export function encodeHeader(
  position: CheckpointPosition,
  count: number,
  log: Uint8Array | undefined,
): Uint8Array {
  const size = log === undefined ? HEADER_SIZE_V1 : HEADER_SIZE;
  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, MAGIC, true);
  view.setUint32(4, log === undefined ? 1 : VERSION, true);
  view.setBigUint64(8, BigInt(position.seq), true);
  view.setBigUint64(16, BigInt(position.lsn), true);
  view.setBigUint64(24, BigInt(count), true);
  if (log !== undefined) bytes.set(log, 32);
  view.setUint32(size - 4, crc32c(bytes.subarray(0, size - 4)), true);
  return bytes;
}

/** `undefined` for a `WAL_CORRUPTION` (a damaged checkpoint); rethrows anything else. */
export function unlessDamaged(error: unknown): undefined {
  if (isWalError(error, 'WAL_CORRUPTION')) return undefined;
  throw error;
}

/** Whether two log identities are the same. */
function sameLog(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(a, b) === 0;
}

/** How a log identity is shown in messages. */
export function logIdText(log: Uint8Array): string {
  return Buffer.from(log).toString('hex');
}

/**
 * The `WAL_NOT_A_LOG` error for the checkpoint at `path`, which belongs to
 * another log than `log` (its identity `found`). Nothing is removed.
 */
export function foreignCheckpoint(
  path: string,
  found: Uint8Array,
  log: Uint8Array | undefined,
): NotALogError {
  const ours = log === undefined ? 'this store has none yet' : `this store's is ${logIdText(log)}`;
  return new NotALogError(
    path,
    `a checkpoint of another transaction store's log (log ${logIdText(found)}; ${ours}): a checkpoint directory belongs to one store, give each store its own checkpoint.dir`,
  );
}

/** Encodes one block holding `entries` (its header included). */
export function encodeBlock(entries: readonly CheckpointEntry[]): Uint8Array {
  let size = BLOCK_HEADER;
  for (const { key, value } of entries) size += 8 + key.length + value.length;
  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  let at = BLOCK_HEADER;
  for (const { key, value } of entries) {
    view.setUint32(at, key.length, true);
    bytes.set(key, at + 4);
    at += 4 + key.length;
    view.setUint32(at, value.length, true);
    bytes.set(value, at + 4);
    at += 4 + value.length;
  }
  view.setUint32(0, size - BLOCK_HEADER, true);
  view.setUint32(4, crc32c(bytes.subarray(BLOCK_HEADER)), true);
  return bytes;
}

/** The end marker: an empty block. */
export const END = new Uint8Array(BLOCK_HEADER);

/** The outcome of writing a checkpoint. */
export interface WrittenCheckpoint {
  readonly path: string;
  readonly bytes: number;
  readonly entries: number;
}

/**
 * Writes and publishes the checkpoint at `position` in `dir` (created if
 * missing): `<name>.tmp` is written from `batches`
 * (successive slices of the live entries, in ascending key order, until it
 * returns `undefined`), fdatasynced, renamed to `<name>`, and the directory
 * fsynced. Resolves once the checkpoint is durable. Rejects with `WAL_IO` or
 * `WAL_NO_SPACE` (the previous checkpoints are untouched; a temporary file
 * may stay, removed by the next checkpoint).
 *
 * The parent of `dir` is fsynced when this call created `dir`; open makes
 * an existing one's entry durable (store.ts, `ensureDirectory`).
 */
export async function writeCheckpoint(
  fs: Fs,
  dir: string,
  log: Uint8Array,
  position: CheckpointPosition,
  batch: () => CheckpointEntry[] | undefined,
): Promise<WrittenCheckpoint> {
  let step = `creating the checkpoint directory ${dir}`;
  try {
    if (await fs.mkdir(dir)) {
      step = `syncing the directory holding ${dir}`;
      await fs.syncDir(dirname(dir));
    }
    const { published, temporary } = await listCheckpoints(fs, dir);
    // Another store's checkpoint here: refused before anything is written
    // (this one could replace it under the same name); nothing is removed.
    // A damaged header says nothing of whose it is (an I/O error fails).
    for (const seq of published) {
      const found = await readHeader(fs, dir, seq).then((header) => header.log, unlessDamaged);
      if (found !== undefined && !sameLog(found, log))
        throw foreignCheckpoint(`${dir}/${checkpointName(seq)}`, found, log);
    }
    for (const name of temporary) {
      step = `removing the leftover ${dir}/${name}`;
      await fs.unlink(`${dir}/${name}`);
    }
    const path = `${dir}/${checkpointName(position.seq)}`;
    step = `writing the checkpoint ${path}.tmp`;
    const file = await fs.open(`${path}.tmp`, 'createExclusive');
    let at = HEADER_SIZE;
    let entries = 0;
    try {
      step = `writing the checkpoint ${path}.tmp`;
      let pending: CheckpointEntry[] = [];
      let pendingBytes = 0;
      const flush = async () => {
        if (pending.length === 0) return;
        const block = encodeBlock(pending);
        await writeAll(fs, file, block, at);
        at += block.length;
        pending = [];
        pendingBytes = 0;
      };
      for (let slice = batch(); slice !== undefined; slice = batch()) {
        for (const entry of slice) {
          pending.push(entry);
          pendingBytes += 8 + entry.key.length + entry.value.length;
          entries++;
          if (pendingBytes >= BLOCK_TARGET) await flush();
        }
        // One slice per turn of the event loop: commits go on between them.
        await nextTurn();
      }
      await flush();
      await writeAll(fs, file, END, at);
      at += END.length;
      await writeAll(fs, file, encodeHeader(position, entries, log), 0);
      step = `syncing the checkpoint ${path}.tmp`;
      await fs.fdatasync(file);
    } finally {
      await fs.close(file);
    }
    step = `publishing the checkpoint ${path}`;
    await fs.rename(`${path}.tmp`, path);
    await fs.syncDir(dir);
    return { path, bytes: at, entries };
  } catch (error) {
    throw toWalError(error, step);
  }
}

/**
 * Removes the checkpoints of `dir` older than `seq` that belong to the log
 * `log` — and the version 1 ones (which name no log) at or below `legacy`,
 * the one this store opened from — then fsyncs the directory. Anything
 * else is left alone: another log's checkpoint, one whose header is
 * damaged. Rejects with `WAL_IO` when a header cannot be read or a file
 * removed.
 */
export async function removeOlder(
  fs: Fs,
  dir: string,
  seq: number,
  log: Uint8Array,
  legacy: number | undefined,
): Promise<void> {
  const { published } = await listCheckpoints(fs, dir);
  const older: number[] = [];
  for (const old of published) {
    if (old >= seq) continue;
    const found = await readHeader(fs, dir, old).then(
      (header) => header.log ?? null,
      unlessDamaged,
    );
    if (
      found === null
        ? legacy !== undefined && old <= legacy
        : found !== undefined && sameLog(found, log)
    )
      older.push(old);
  }
  try {
    for (const old of older) await fs.unlink(`${dir}/${checkpointName(old)}`);
    if (older.length > 0) await fs.syncDir(dir);
  } catch (error) {
    throw toWalError(error, `removing old checkpoints of ${dir}`);
  }
}

/** What a checkpoint's header says. */
export interface CheckpointHeader extends CheckpointPosition {
  /** The identity of the log it belongs to; `undefined` for version 1, which names none. */
  readonly log: Uint8Array | undefined;
  readonly count: bigint;
  /** The header's size (where the blocks start). */
  readonly size: number;
}

/**
 * Reads and checks the header of the checkpoint at `seq` in `dir`. Rejects
 * with `WAL_CORRUPTION` naming the file and offset, `WAL_IO` when it
 * cannot be read.
 */
export async function readHeader(fs: Fs, dir: string, seq: number): Promise<CheckpointHeader> {
  const path = `${dir}/${checkpointName(seq)}`;
  const file = await openCheckpoint(fs, path);
  try {
    const size = await fs.size(file);
    return await headerOf(fs, file, path, seq, size);
  } catch (error) {
    throw toWalError(error, `reading the checkpoint ${path}`);
  } finally {
    await fs.close(file);
  }
}

/** Opens the checkpoint at `path` for reading; rejects with `WAL_IO` naming it. */
async function openCheckpoint(fs: Fs, path: string): Promise<FsFile> {
  try {
    return await fs.open(path, 'read');
  } catch (error) {
    throw toWalError(error, `opening the checkpoint ${path}`);
  }
}

function damage(path: string, offset: number, what: string): CorruptionError {
  return new CorruptionError(`the checkpoint ${path} is damaged at offset ${offset}: ${what}`, {
    offset,
  });
}

async function readExactly(
  fs: Fs,
  file: FsFile,
  path: string,
  at: number,
  length: number,
): Promise<Uint8Array> {
  const into = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const count = await fs.pread(file, into.subarray(done), at + done);
    if (count <= 0) throw damage(path, at + done, 'the file ends early');
    done += count;
  }
  return into;
}

/** Reads and checks the header of the open checkpoint `file` of `size` bytes. */
async function headerOf(
  fs: Fs,
  file: FsFile,
  path: string,
  seq: number,
  size: number,
): Promise<CheckpointHeader> {
  const damaged = (offset: number, what: string) => damage(path, offset, what);
  if (size < HEADER_SIZE_V1 + BLOCK_HEADER) throw damaged(0, `${size} bytes is too short`);
  const start = new DataView((await readExactly(fs, file, path, 0, 8)).buffer);
  if (start.getUint32(0, true) !== MAGIC) throw damaged(0, 'not a checkpoint (bad magic)');
  const version = start.getUint32(4, true);
  if (version !== 1 && version !== VERSION) throw damaged(4, `unknown version ${version}`);
  const headerSize = version === 1 ? HEADER_SIZE_V1 : HEADER_SIZE;
  if (size < headerSize + BLOCK_HEADER) throw damaged(0, `${size} bytes is too short`);
  const header = await readExactly(fs, file, path, 0, headerSize);
  const view = new DataView(header.buffer);
  if (view.getUint32(headerSize - 4, true) !== crc32c(header.subarray(0, headerSize - 4)))
    throw damaged(0, 'header checksum mismatch');
  const fileSeq = view.getBigUint64(8, true);
  if (fileSeq !== BigInt(seq)) throw damaged(8, `sequence ${fileSeq} does not match its name`);
  const lsn = view.getBigUint64(16, true);
  if (lsn > BigInt(Number.MAX_SAFE_INTEGER)) throw damaged(16, `log position ${lsn}`);
  return {
    seq,
    lsn: Number(lsn),
    count: view.getBigUint64(24, true),
    log: version === 1 ? undefined : header.slice(32, 32 + LOG_ID_BYTES),
    size: headerSize,
  };
}

/**
 * Reads the checkpoint at `seq` in `dir`, handing each entry to `load` in
 * ascending key order. Rejects with `WAL_CORRUPTION` naming the file and the
 * byte offset of anything that fails a check (magic, version, CRCs, lengths,
 * key order, entry count, end marker, bytes after it); no length read from
 * the file is used to allocate before it is checked against the file's size.
 * Rejects with `WAL_IO` when the file cannot be read.
 */
export async function readCheckpoint(
  fs: Fs,
  dir: string,
  seq: number,
  load: (key: Uint8Array, value: Uint8Array) => void,
): Promise<CheckpointPosition & { path: string; log: Uint8Array | undefined }> {
  const path = `${dir}/${checkpointName(seq)}`;
  const damaged = (offset: number, what: string) => damage(path, offset, what);
  const file = await openCheckpoint(fs, path);
  try {
    const size = await fs.size(file);
    const read = (at: number, length: number) => readExactly(fs, file, path, at, length);
    const { lsn, count, log, size: headerSize } = await headerOf(fs, file, path, seq, size);
    let at = headerSize;
    let entries = 0n;
    let previous: Uint8Array | undefined;
    for (;;) {
      if (size - at < BLOCK_HEADER) throw damaged(at, 'the end marker is missing');
      const blockHeader = new DataView((await read(at, BLOCK_HEADER)).buffer);
      const length = blockHeader.getUint32(0, true);
      const crc = blockHeader.getUint32(4, true);
      if (length === 0) {
        if (crc !== 0) throw damaged(at, 'bad end marker');
        at += BLOCK_HEADER;
        break;
      }
      if (length > size - at - BLOCK_HEADER)
        throw damaged(at, `a block of ${length} bytes overruns the file`);
      const payload = await read(at + BLOCK_HEADER, length);
      if (crc32c(payload) !== crc) throw damaged(at, 'block checksum mismatch');
      const block = new DataView(payload.buffer);
      let p = 0;
      while (p < length) {
        const entryAt = at + BLOCK_HEADER + p;
        if (length - p < 4) throw damaged(entryAt, 'an entry is cut short');
        const keyLength = block.getUint32(p, true);
        if (keyLength > length - p - 4) throw damaged(entryAt, 'a key overruns its block');
        const key = payload.subarray(p + 4, p + 4 + keyLength);
        p += 4 + keyLength;
        if (length - p < 4) throw damaged(entryAt, 'a value length is cut short');
        const valueLength = block.getUint32(p, true);
        if (valueLength > length - p - 4) throw damaged(entryAt, 'a value overruns its block');
        const value = payload.subarray(p + 4, p + 4 + valueLength);
        p += 4 + valueLength;
        if (previous !== undefined && Buffer.compare(previous, key) >= 0)
          throw damaged(entryAt, 'keys out of order');
        previous = key;
        entries++;
        load(key, value);
      }
      at += BLOCK_HEADER + length;
    }
    if (entries !== count)
      throw damaged(24, `the header counts ${count} entries, the blocks hold ${entries}`);
    if (at !== size) throw damaged(at, `${size - at} bytes after the end marker`);
    return { seq, lsn, path, log };
  } catch (error) {
    throw toWalError(error, `reading the checkpoint ${path}`);
  } finally {
    await fs.close(file);
  }
}
