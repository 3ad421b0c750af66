/**
 * The non-durable workloads of the benchmark suite, each run inside one child
 * process: buffered appends, replay, memory, micro-benchmarks. Every function
 * returns plain data (sent to the runner as JSON).
 */
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readdirSync, readSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { GroupCommit } from '@wal/commit';
import { crc32c, encodeFrame, HEADER_SIZE, Wal } from '@wal/core';
import { MemoryStore } from '@wal/store';
import { frameInto, getU32, mainThreadCpuNs, now, nsPerOp } from './shared.js';

const CHUNK = 1024 * 1024;

/** Number of records of `size` bytes making `totalBytes` of payload (at least one). */
export function recordCount(size: number, totalBytes: number): number {
  return Math.max(1, Math.floor(totalBytes / size));
}

// ---------------------------------------------------------------- buffered appends

export type BufferedSystem = 'wal' | 'raw' | 'framing';

export interface BufferedResult {
  readonly records: number;
  /** Payload bytes (frames for `raw`, which writes the same byte count). */
  readonly bytes: number;
  /** Seconds until every byte reached the operating system. */
  readonly seconds: number;
  /** Seconds of the append loop alone (the log's writes may still run). */
  readonly loopSeconds: number;
  /** CPU seconds (user + system) of the whole process in the timed window, every thread. */
  readonly cpuSeconds?: number;
  /** CPU seconds of the appending (main) thread alone in the window; absent where `/proc` lacks it. */
  readonly threadCpuSeconds?: number;
  /**
   * Bytes of the files the run wrote, after close (the log's segment files;
   * the reference's one file): records × frame size when every record got
   * there. Absent in older results.
   */
  readonly fileBytes?: number;
  /**
   * Minor page faults of the process in the timed window (every thread): the
   * first touches of fresh memory (the log's staging, the loop's buffer, the
   * heap as it grows). Absent in older results.
   */
  readonly minorFaults?: number;
  /** What one minor page fault cost in this child, µs ({@link faultCost}); absent when not measured. */
  readonly faultMicros?: number;
}

/** Minor page faults of this process so far (every thread). */
const minorFaults = (): number => process.resourceUsage().minorPageFault;

/**
 * What a minor page fault costs this process, in microseconds: a fresh
 * 4 MiB buffer touched once per page, timed, divided by the faults counted
 * meanwhile; `undefined` when none was (the memory came already mapped).
 */
export function faultCost(): number | undefined {
  const before = minorFaults();
  const started = now();
  const bytes = new Uint8Array(4 * 1024 * 1024);
  for (let at = 0; at < bytes.length; at += 4096) bytes[at] = 1;
  const elapsed = now() - started;
  const faults = minorFaults() - before;
  return faults > 0 ? (elapsed * 1000) / faults : undefined;
}

/** Bytes of the files in `dir` whose names `keep` accepts. */
function filesBytes(dir: string, keep: (name: string) => boolean): number {
  let total = 0;
  for (const name of readdirSync(dir)) if (keep(name)) total += statSync(join(dir, name)).size;
  return total;
}

/** The CPU used since `from` (a {@link cpuMark}), in seconds. */
function cpuSince(from: ReturnType<typeof cpuMark>): {
  cpuSeconds: number;
  threadCpuSeconds?: number;
} {
  const usage = process.cpuUsage(from.usage);
  const thread = mainThreadCpuNs();
  const cpuSeconds = (usage.user + usage.system) / 1e6;
  return thread === undefined || from.thread === undefined
    ? { cpuSeconds }
    : { cpuSeconds, threadCpuSeconds: (thread - from.thread) / 1e9 };
}

function cpuMark(): { usage: NodeJS.CpuUsage; thread: number | undefined } {
  return { thread: mainThreadCpuNs(), usage: process.cpuUsage() };
}

export async function buffered(
  system: BufferedSystem,
  dir: string,
  size: number,
  totalBytes: number,
): Promise<BufferedResult> {
  const records = recordCount(size, totalBytes);
  const payload = randomBytes(size);
  const faultMicros = faultCost();
  if (system === 'wal') {
    const wal = await Wal.open(dir);
    const cpu = cpuMark();
    const faults = minorFaults();
    const started = now();
    let last = 0;
    for (let i = 0; i < records; i++) {
      if (!wal.writable) await wal.drained();
      last = wal.append(payload) as number;
    }
    const looped = now();
    await wal.waitFor(last, 'written');
    const written = now();
    const used = cpuSince(cpu);
    const faulted = minorFaults() - faults;
    await wal.close();
    return {
      records,
      bytes: records * size,
      seconds: (written - started) / 1000,
      loopSeconds: (looped - started) / 1000,
      ...used,
      fileBytes: filesBytes(dir, (name) => name.endsWith('.wal')),
      minorFaults: faulted,
      ...(faultMicros === undefined ? {} : { faultMicros }),
    };
  }
  const fd = openSync(join(dir, 'log'), 'w');
  let result: BufferedResult;
  try {
    const buffer = new Uint8Array(CHUNK);
    const frameBytes = records * (HEADER_SIZE + size);
    const cpu = cpuMark();
    const faults = minorFaults();
    const started = now();
    if (system === 'raw') {
      // The same bytes as the frames, already laid out: pure write bandwidth.
      buffer.fill(7);
      let position = 0;
      while (position < frameBytes) {
        const length = Math.min(CHUNK, frameBytes - position);
        position += writeSync(fd, buffer, 0, length, position);
      }
    } else if (size + HEADER_SIZE > CHUNK) {
      throw new Error('the framing loop needs records smaller than its buffer');
    } else {
      let used = 0;
      let position = 0;
      for (let i = 0; i < records; i++) {
        if (used + HEADER_SIZE + size > CHUNK) {
          position += writeFully(fd, buffer, used, position);
          used = 0;
        }
        used = frameInto(buffer, used, payload);
      }
      if (used > 0) writeFully(fd, buffer, used, position);
    }
    const seconds = (now() - started) / 1000;
    const faulted = minorFaults() - faults;
    result = {
      records,
      bytes: system === 'raw' ? frameBytes : records * size,
      seconds,
      loopSeconds: seconds,
      ...cpuSince(cpu),
      minorFaults: faulted,
      ...(faultMicros === undefined ? {} : { faultMicros }),
    };
  } finally {
    closeSync(fd);
  }
  return { ...result, fileBytes: filesBytes(dir, (name) => name === 'log') };
}

function writeFully(fd: number, buffer: Uint8Array, length: number, position: number): number {
  let done = 0;
  while (done < length) done += writeSync(fd, buffer, done, length - done, position + done);
  return length;
}

// ---------------------------------------------------------------- replay

/**
 * `replay`: `Wal.open(dir, { replay })`, every record delivered in batches
 * during the recovery scan itself; `batched`: `Wal.open` then
 * `iterateBatches()`; `iterator`: `Wal.open` then `iterate()`; `raw`: the
 * reference read + CRC into one reused buffer; `raw-owned`: the same into a
 * fresh buffer per read, with one object per record (the floor of a reader
 * that hands its records to the caller).
 */
export type ReplaySystem = 'replay' | 'replay-reuse' | 'batched' | 'iterator' | 'raw' | 'raw-owned';
/** The readers of the replay section, in the order they run (interleaved) and are reported. */
export const REPLAY_SYSTEMS: readonly ReplaySystem[] = [
  'replay',
  'replay-reuse',
  'batched',
  'iterator',
  'raw',
  'raw-owned',
];

export interface PreparedLog {
  readonly records: number;
  /** Bytes of the log (frames). */
  readonly bytes: number;
  readonly seconds: number;
}

/** Writes a log of `totalBytes` of `size`-byte records into `dir` and closes it (synced). */
export async function prepareLog(
  dir: string,
  size: number,
  totalBytes: number,
): Promise<PreparedLog> {
  const records = recordCount(size, totalBytes);
  const payload = randomBytes(size);
  const started = now();
  const wal = await Wal.open(dir);
  for (let i = 0; i < records; i++) {
    if (!wal.writable) await wal.drained();
    wal.append(payload);
  }
  await wal.sync();
  const bytes = wal.tail - wal.head;
  await wal.close();
  return { records, bytes, seconds: (now() - started) / 1000 };
}

export interface ReplayResult {
  readonly records: number;
  /** Payload bytes seen. */
  readonly bytes: number;
  /** Seconds in `Wal.open` (recovery scan; for `replay`, with every batch delivered); 0 for `raw` and `raw-owned`. */
  readonly openSeconds: number;
  /** Seconds iterating (for `raw` and `raw-owned`: reading and checking every frame); 0 for `replay`. */
  readonly iterateSeconds: number;
}

export async function replay(
  system: ReplaySystem,
  dir: string,
  logBytes: number,
): Promise<ReplayResult> {
  if (system === 'raw' || system === 'raw-owned') {
    return rawReplay(dir, logBytes, system === 'raw-owned');
  }
  if (system === 'replay' || system === 'replay-reuse') {
    return replayOption(dir, system === 'replay-reuse');
  }
  const t0 = now();
  const wal = await Wal.open(dir);
  const t1 = now();
  let records = 0;
  let bytes = 0;
  if (system === 'iterator') {
    for await (const record of wal.iterate()) {
      records++;
      bytes += record.payloadEnd - record.payloadStart;
    }
  } else {
    for await (const batch of wal.iterateBatches()) {
      records += batch.length;
      for (const record of batch) bytes += record.payloadEnd - record.payloadStart;
    }
  }
  const t2 = now();
  await wal.close();
  return { records, bytes, openSeconds: (t1 - t0) / 1000, iterateSeconds: (t2 - t1) / 1000 };
}

/**
 * The one-pass replay of `Wal.open`: the recovery scan hands every record to
 * the callback, in batches, as it checks them; open resolves after the last
 * batch. The whole open is timed. With `reuse`, the records are valid only
 * during the callback (`replayReusesBuffers`), as with a reused read buffer.
 */
async function replayOption(dir: string, reuse: boolean): Promise<ReplayResult> {
  let records = 0;
  let bytes = 0;
  const t0 = now();
  const wal = await Wal.open(dir, {
    replayReusesBuffers: reuse,
    replay: (batch) => {
      records += batch.length;
      for (const record of batch) bytes += record.payloadEnd - record.payloadStart;
    },
  });
  const t1 = now();
  await wal.close();
  return { records, bytes, openSeconds: (t1 - t0) / 1000, iterateSeconds: 0 };
}

/** What `raw-owned` hands out per intact frame: the cost of one record object of a batch. */
interface OwnedRecord {
  readonly lsn: number;
  readonly buffer: Uint8Array;
  readonly start: number;
  readonly end: number;
}

/**
 * The references: read the segment files in order with 1 MiB synchronous
 * reads, and check the CRC-32C of every frame (over length ‖ payload).
 *
 * `raw` reads into one reused buffer. `raw-owned` (`owned`) is the floor of a
 * reader whose records belong to the caller, who may keep them (the log never
 * reuses a buffer it handed out): every read goes into a newly allocated
 * buffer (the frame cut by the end of the previous one copied to its start),
 * and every intact frame becomes one `{ lsn, buffer, start, end }` object in
 * an array per read (a batch), whose records are then counted and dropped.
 */
function rawReplay(dir: string, logBytes: number, owned: boolean): ReplayResult {
  const started = now();
  const segments = readdirSync(dir)
    .filter((name) => name.endsWith('.wal'))
    .sort();
  // Frames here are far below 1 MiB. Owned: replaced by a fresh buffer at every read.
  let buffer = new Uint8Array(owned ? 0 : 2 * CHUNK);
  let filled = 0; // bytes in buffer
  let at = 0; // next frame in buffer
  let base = 0; // log offset of buffer[0] (owned: the records' lsn)
  let left = logBytes;
  let records = 0;
  let bytes = 0;
  for (const name of segments) {
    if (left === 0) break;
    const fd = openSync(join(dir, name), 'r');
    try {
      for (;;) {
        if (left === 0) break;
        const want = Math.min(CHUNK, left);
        // Keep the unfinished frame, then read more after it.
        if (owned) {
          const fresh = new Uint8Array(filled - at + want);
          fresh.set(buffer.subarray(at, filled), 0);
          buffer = fresh;
          filled -= at;
          base += at;
          at = 0;
        } else if (at > 0) {
          buffer.copyWithin(0, at, filled);
          filled -= at;
          at = 0;
        }
        const read = readSync(fd, buffer, filled, want, null);
        if (read === 0) break;
        filled += read;
        left -= read;
        const batch: OwnedRecord[] | undefined = owned ? [] : undefined;
        for (;;) {
          if (filled - at < HEADER_SIZE) break;
          const length = getU32(buffer, at + 4);
          const end = at + HEADER_SIZE + length;
          if (end > filled) break;
          if (crc32c(buffer, at + 4, end) !== getU32(buffer, at)) {
            throw new Error(`CRC mismatch at record ${records}`);
          }
          if (batch === undefined) {
            records++;
            bytes += length;
          } else {
            batch.push({ lsn: base + at, buffer, start: at + HEADER_SIZE, end });
          }
          at = end;
        }
        if (batch !== undefined) {
          // What a caller of a batch does with it (the readers count payload lengths).
          records += batch.length;
          for (const record of batch) bytes += record.end - record.start;
        }
      }
    } finally {
      closeSync(fd);
    }
  }
  return { records, bytes, openSeconds: 0, iterateSeconds: (now() - started) / 1000 };
}

// ---------------------------------------------------------------- memory

export interface MemoryResult {
  readonly bytes: number;
  readonly seconds: number;
  /** Peak resident set size of the child, bytes. */
  readonly maxRss: number;
  /** Resident set size before the log was opened, bytes. */
  readonly baseRss: number;
}

/**
 * Appends `totalBytes` of `size`-byte records with back-pressure
 * (`if (!writable) await drained()`) and a `written` wait every 1000th
 * append; or (`recover`) opens the log and replays it with `iterateBatches`.
 */
export async function memory(
  phase: 'append' | 'recover',
  dir: string,
  size: number,
  totalBytes: number,
): Promise<MemoryResult> {
  const baseRss = process.memoryUsage().rss;
  const started = now();
  let bytes = 0;
  if (phase === 'append') {
    const records = recordCount(size, totalBytes);
    const payload = randomBytes(size);
    const wal = await Wal.open(dir);
    for (let i = 0; i < records; i++) {
      if (!wal.writable) await wal.drained();
      if (i % 1000 === 999) await wal.append(payload, { wait: 'written' });
      else wal.append(payload);
    }
    await wal.close();
    bytes = records * size;
  } else {
    const wal = await Wal.open(dir);
    for await (const batch of wal.iterateBatches()) {
      for (const record of batch) bytes += record.payload.length;
    }
    await wal.close();
  }
  return {
    bytes,
    seconds: (now() - started) / 1000,
    maxRss: process.resourceUsage().maxRSS * 1024,
    baseRss,
  };
}

// ---------------------------------------------------------------- micro

export interface MicroResult {
  /** ns per `append` of 100 B into a MemoryStore-backed log (reservation, framing, CRC, staging). */
  readonly appendNs: number;
  /** ns per `encodeFrame` of 100 B (allocation, header, CRC). */
  readonly encodeFrameNs: number;
  /** ns per frame + CRC of 100 B into a reused buffer (the framing loop's step). */
  readonly frameIntoNs: number;
  /** ns per `crc32c` of 104 B (length ‖ payload). */
  readonly crcNs: number;
  /** ns per in-order `GroupCommit.markWritten`. */
  readonly markWrittenNs: number;
  /** ns per `GroupCommit.reserve` of the next record's end (the space reservation); absent in older results. */
  readonly reserveNs?: number;
  /** ns per view of a 100 B payload (what `StoredRecord.payload` makes on first use). */
  readonly payloadViewNs?: number;
}

const noSync = async (): Promise<void> => {};

export async function micro(operations: number): Promise<MicroResult> {
  const payload = randomBytes(100);
  let appendNs = Number.POSITIVE_INFINITY;
  for (let round = 0; round < 3; round++) {
    const wal = await Wal.open(new MemoryStore());
    const started = process.hrtime.bigint();
    for (let i = 0; i < operations; i++) {
      if (!wal.writable) await wal.drained();
      wal.append(payload);
    }
    appendNs = Math.min(appendNs, Number(process.hrtime.bigint() - started) / operations);
    await wal.close();
  }
  const encodeFrameNs = nsPerOp(operations, 5, () => {
    for (let i = 0; i < operations; i++) encodeFrame(payload);
  });
  const buffer = new Uint8Array(CHUNK);
  const perBuffer = Math.floor(CHUNK / (HEADER_SIZE + payload.length));
  const frameIntoNs = nsPerOp(operations, 5, () => {
    let at = 0;
    for (let i = 0; i < operations; i++) {
      if (i % perBuffer === 0) at = 0;
      at = frameInto(buffer, at, payload);
    }
  });
  const frame = encodeFrame(payload);
  let sink = 0;
  const crcNs = nsPerOp(operations, 5, () => {
    for (let i = 0; i < operations; i++) sink ^= crc32c(frame, 4, frame.length);
  });
  if (sink === 0.5) console.log(sink); // keep the loop alive
  const record = HEADER_SIZE + payload.length;
  const markWrittenNs = nsPerOp(operations, 5, () => {
    const commit = new GroupCommit({ sync: noSync, start: 0 });
    commit.reserve(operations * record);
    for (let i = 0; i < operations; i++) commit.markWritten(i * record, (i + 1) * record);
  });
  const kept: Uint8Array[] = new Array(1024);
  const payloadViewNs = nsPerOp(operations, 5, () => {
    for (let i = 0; i < operations; i++) {
      const at = (i * record) % (CHUNK - record);
      kept[i & 1023] = buffer.subarray(at + HEADER_SIZE, at + record);
    }
  });
  const reserveNs = nsPerOp(operations, 5, () => {
    const commit = new GroupCommit({ sync: noSync, start: 0 });
    for (let i = 0; i < operations; i++) commit.reserve((i + 1) * record);
  });
  return { appendNs, encodeFrameNs, frameIntoNs, crcNs, markWrittenNs, reserveNs, payloadViewNs };
}
