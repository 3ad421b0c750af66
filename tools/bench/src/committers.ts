/**
 * Durable commit contenders and the loop that drives them: K committers,
 * each awaiting its commit before the next, for a fixed time.
 */
import { randomBytes } from 'node:crypto';
import { constants, fdatasync, fdatasyncSync, fsyncSync, write, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { HEADER_SIZE, Wal } from '@wal/core';
import { NodeFs } from '@wal/store';
import {
  CountingFs,
  frameInto,
  mainThreadCpuNs,
  now,
  openSqliteDurable,
  quantile,
  writeAll,
} from './shared.js';

export const PAYLOAD_SIZE = 100;
const FRAME_SIZE = HEADER_SIZE + PAYLOAD_SIZE;

export interface DurableRun {
  readonly commits: number;
  readonly seconds: number;
  /** fsyncs (data and directory) in the window; null when the contender cannot count them. */
  readonly fsyncs: number | null;
  readonly writes: number | null;
  /** Latency quantiles, milliseconds. */
  readonly p50: number;
  readonly p99: number;
  /**
   * CPU time of the process in the window (`process.cpuUsage()`, user +
   * system), microseconds; absent in older results.
   */
  readonly cpuMicros?: number;
  /**
   * CPU time of the main (event-loop) thread alone in the window,
   * microseconds; absent where `/proc` lacks it and in older results.
   */
  readonly threadCpuMicros?: number;
  /** When the window started (`now()`, milliseconds); absent in older results. */
  readonly windowStart?: number;
  /** Commits acknowledged over the whole run (the untimed warm-up included); absent in older results. */
  readonly acknowledged?: number;
  /**
   * Records found by reopening the contender's files after close, for the
   * contenders that can count them (@wal/core): `acknowledged` when every
   * acknowledged commit is durable and nothing else was written.
   */
  readonly recovered?: number;
}

/** What a durable contender offers the committers. */
export interface Committer {
  /** One durable commit of `payload`. */
  commit(payload: Uint8Array): Promise<unknown>;
  /** fsyncs (data and directory) and writes so far (NaN when unknown). */
  counts(): { fsyncs: number; writes: number };
  close(): Promise<void>;
  /** After `close`: the records a reopen of the contender's files finds (where it can count them). */
  recovered?(): Promise<number>;
}

/**
 * Untimed commits before every window: the same loops run for this long
 * first, so the window measures a warmed-up process (compiled code, sized
 * heap) for every contender alike, not its first few thousand commits.
 */
export const WARM_UP_SECONDS = 0.5;

/**
 * `committers` loops of awaited commits: {@link WARM_UP_SECONDS} untimed,
 * then a window of `seconds`; counts only commits started and completed in
 * the window.
 */
export async function runCommitters(
  target: Committer,
  committers: number,
  seconds: number,
): Promise<DurableRun> {
  const payload = randomBytes(PAYLOAD_SIZE);
  await target.commit(payload); // creates files: outside the window
  let acknowledged = 1;
  const latencies: number[] = [];
  let running = true;
  let before = target.counts();
  let cpuBefore = process.cpuUsage();
  let threadBefore = mainThreadCpuNs();
  let started = Number.POSITIVE_INFINITY;
  let deadline = Number.POSITIVE_INFINITY;
  const warmEnd = now() + WARM_UP_SECONDS * 1000;
  const beginWindow = (): void => {
    if (started !== Number.POSITIVE_INFINITY) return;
    before = target.counts();
    cpuBefore = process.cpuUsage();
    threadBefore = mainThreadCpuNs();
    started = now();
    deadline = started + seconds * 1000;
  };
  const loop = async (): Promise<void> => {
    while (running) {
      const t0 = now();
      await target.commit(payload);
      acknowledged++;
      // A contender that blocks for its I/O (better-sqlite3, blockingSync)
      // settles commits without the event loop turning: the timers below
      // could not fire, so the loops also watch the clock.
      if (t0 >= deadline) running = false;
      if (running && t0 >= started) latencies.push(now() - t0);
      else if (running && now() >= warmEnd) beginWindow();
    }
  };
  const all = Array.from({ length: committers }, loop);
  await new Promise((done) => setTimeout(done, WARM_UP_SECONDS * 1000));
  beginWindow();
  await new Promise((done) => setTimeout(done, Math.max(0, deadline - now())));
  running = false;
  const elapsed = (now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  const threadAfter = mainThreadCpuNs();
  const after = target.counts();
  await Promise.all(all);
  await target.close();
  const recovered = await target.recovered?.();
  const sorted = Float64Array.from(latencies).sort();
  return {
    commits: latencies.length,
    seconds: elapsed,
    fsyncs: Number.isNaN(after.fsyncs) ? null : after.fsyncs - before.fsyncs,
    writes: Number.isNaN(after.writes) ? null : after.writes - before.writes,
    p50: quantile(sorted, 0.5),
    p99: quantile(sorted, 0.99),
    cpuMicros: cpu.user + cpu.system,
    windowStart: started,
    ...(threadBefore === undefined || threadAfter === undefined
      ? {}
      : { threadCpuMicros: (threadAfter - threadBefore) / 1000 }),
    acknowledged,
    ...(recovered === undefined ? {} : { recovered }),
  };
}

/**
 * Records in the log in `dir`, found by a fresh open (its recovery scan
 * finds what reached the files) and one pass over them; closes it.
 */
export async function recordsInLog(dir: string): Promise<number> {
  const wal = await Wal.open(dir);
  let records = 0;
  try {
    for await (const batch of wal.iterateBatches()) records += batch.length;
  } finally {
    await wal.close();
  }
  return records;
}

/**
 * @wal/core: `append(payload, { wait: 'durable' })` into a segmented log;
 * with `blockingSync`, opened with that option (write + fdatasync on the
 * event-loop thread).
 */
export async function walCommitter(dir: string, blockingSync = false): Promise<Committer> {
  const fs = new CountingFs(new NodeFs());
  const wal = await Wal.open(dir, { fs, blockingSync });
  return {
    commit: (payload) => wal.append(payload, { wait: 'durable' }),
    counts: () => ({ fsyncs: fs.fsyncs, writes: fs.pwrites }),
    close: () => wal.close(),
    recovered: () => recordsInLog(dir),
  };
}

/**
 * The reference group commit: committers push framed records into a pending
 * list and wait; a flusher waits one macrotask (so every committer released
 * in this turn joins), writes the whole batch at the file's end in one call,
 * fdatasyncs once, then releases the batch. With `preallocate` bytes, the
 * file is first filled with zeros and synced (outside the measured window),
 * so the fdatasyncs inside it have no file size to update.
 *
 * With `mode` `'blocking'`, the write and the fdatasync are synchronous calls on the
 * event-loop thread: no thread-pool hop at all, so nothing but the committers
 * themselves run between two fsyncs. A library must not block its caller's
 * event loop for an fsync, so this is no contender: it is the most a group
 * commit on one Node.js event loop gets from this disk (a bound for the log).
 *
 * With `mode` `'dsync'`, each batch is written through a second descriptor of
 * the (preallocated) file opened with `O_DSYNC`, in one `fs.write` call: the
 * write returns once its bytes are durable, so a batch costs one thread-pool
 * hop instead of two (write, then fdatasync). Each such write counts as one
 * write and one fsync.
 */
export async function gatheringCommitter(
  dir: string,
  preallocate = 0,
  mode: 'async' | 'blocking' | 'dsync' = 'async',
): Promise<Committer> {
  const path = join(dir, 'log');
  const handle = await open(path, 'w');
  if (preallocate > 0) {
    const zeros = new Uint8Array(1024 * 1024);
    for (let at = 0; at < preallocate; at += zeros.length) await writeAll(handle, zeros, at);
    await handle.sync();
  }
  const dsync =
    mode === 'dsync' ? await open(path, constants.O_RDWR | constants.O_DSYNC) : undefined;
  let position = 0;
  let fsyncs = 0;
  let writes = 0;
  let pending: Array<{ frame: Uint8Array; done: () => void; fail: (error: unknown) => void }> = [];
  let busy = false;
  const flush = async (): Promise<void> => {
    const batch = pending;
    pending = [];
    try {
      const bytes = Buffer.concat(batch.map((entry) => entry.frame));
      writes++;
      if (dsync !== undefined) {
        fsyncs++;
        await writeDurably(dsync.fd, bytes, position);
      } else if (mode === 'blocking') writeFullySync(handle.fd, bytes, position);
      else await writeAll(handle, bytes, position);
      position += bytes.length;
      if (dsync === undefined) {
        fsyncs++;
        if (mode === 'blocking') fdatasyncSync(handle.fd);
        else await handle.datasync();
      }
      for (const entry of batch) entry.done();
    } catch (error) {
      for (const entry of batch) entry.fail(error);
    }
    busy = false;
    kick();
  };
  const kick = (): void => {
    if (busy || pending.length === 0) return;
    busy = true;
    setImmediate(flush);
  };
  return {
    commit: (payload) =>
      new Promise<void>((done, fail) => {
        const frame = new Uint8Array(HEADER_SIZE + payload.length);
        frameInto(frame, 0, payload);
        pending.push({ frame, done, fail });
        kick();
      }),
    counts: () => ({ fsyncs, writes }),
    close: async () => {
      await dsync?.close();
      await handle.close();
    },
  };
}

/**
 * `bytes` at `position` through an `O_DSYNC` descriptor: one `fs.write` call
 * (one thread-pool hop) when it writes everything, as it does into a
 * preallocated regular file; a short write goes on with the rest.
 */
function writeDurably(fd: number, bytes: Uint8Array, position: number): Promise<void> {
  return new Promise((done, fail) => {
    const step = (from: number): void => {
      write(fd, bytes, from, bytes.length - from, position + from, (error, written) => {
        if (error !== null) fail(error);
        else if (from + written < bytes.length) step(from + written);
        else done();
      });
    };
    step(0);
  });
}

/**
 * Naive: one write and one fdatasync per record, records strictly one after
 * the other (concurrent committers queue behind each other).
 */
export async function naiveCommitter(dir: string): Promise<Committer> {
  const handle = await open(join(dir, 'log'), 'w');
  const frame = new Uint8Array(FRAME_SIZE);
  let position = 0;
  let fsyncs = 0;
  let writes = 0;
  let queue: Promise<unknown> = Promise.resolve();
  const one = async (payload: Uint8Array): Promise<void> => {
    frameInto(frame, 0, payload);
    writes++;
    await writeAll(handle, frame, position);
    position += frame.length;
    fsyncs++;
    await handle.datasync();
  };
  return {
    commit: (payload) => {
      const next = queue.then(() => one(payload));
      queue = next;
      return next;
    },
    counts: () => ({ fsyncs, writes }),
    close: () => handle.close(),
  };
}

const unknownCounts = (): { fsyncs: number; writes: number } => ({
  fsyncs: Number.NaN,
  writes: Number.NaN,
});

/** classic-level (LevelDB): `put(key, value, { sync: true })`, a fresh key per commit. */
export async function classicLevelCommitter(dir: string): Promise<Committer> {
  const { ClassicLevel } = await import('classic-level');
  const db = new ClassicLevel<string, Uint8Array>(join(dir, 'level'), {
    valueEncoding: 'view',
  });
  await db.open();
  let next = 0;
  return {
    commit: (payload) =>
      db.put(`k${(next++).toString(36).padStart(8, '0')}`, payload, { sync: true }),
    counts: unknownCounts,
    close: () => db.close(),
  };
}

/**
 * lmdb-js: `put` with `separateFlushed`, awaiting the put's `flushed`
 * promise, which resolves once the commit holding it is synced to disk (the
 * library's default overlapping sync; the put's own promise resolves earlier,
 * when the commit is visible).
 */
export async function lmdbCommitter(dir: string): Promise<Committer> {
  const { open: openLmdb } = await import('lmdb');
  const db = openLmdb<Uint8Array, string>({
    path: join(dir, 'lmdb'),
    encoding: 'binary',
    separateFlushed: true,
  } as Parameters<typeof openLmdb>[0]);
  let next = 0;
  return {
    commit: (payload) => {
      const written = db.put(
        `k${(next++).toString(36).padStart(8, '0')}`,
        payload,
      ) as Promise<boolean> & {
        flushed?: Promise<unknown>;
      };
      return written.flushed ?? written;
    },
    counts: unknownCounts,
    close: () => db.close(),
  };
}

/**
 * better-sqlite3 (installed on demand under `peers`): WAL journal,
 * `synchronous = FULL`, one autocommit `INSERT` of the payload per commit.
 * Synchronous: the commit's write and fsync block the event loop, as this
 * library does.
 */
export async function sqliteCommitter(dir: string, peers: string): Promise<Committer> {
  const db = openSqliteDurable(peers, join(dir, 'commits.sqlite'));
  db.exec('CREATE TABLE log (payload BLOB NOT NULL)');
  const insert = db.prepare('INSERT INTO log (payload) VALUES (?)');
  return {
    commit: (payload) => {
      insert.run(payload);
      return Promise.resolve();
    },
    counts: unknownCounts,
    close: async () => db.close(),
  };
}

export type DurableSystem =
  | 'wal'
  | 'wal-blocking'
  | 'gathering'
  | 'gathering-prealloc'
  | 'gathering-blocking'
  | 'gathering-dsync'
  | 'naive'
  | 'classic-level'
  | 'lmdb'
  | 'sqlite';

export const DURABLE_SYSTEMS: readonly DurableSystem[] = [
  'wal',
  'wal-blocking',
  'gathering',
  'gathering-prealloc',
  'gathering-blocking',
  'gathering-dsync',
  'naive',
  'classic-level',
  'lmdb',
  'sqlite',
];

export const DURABLE_LABELS: Readonly<Record<DurableSystem, string>> = {
  wal: '@wal/core',
  'wal-blocking': '@wal/core opened with blockingSync (write + fdatasync on the event-loop thread)',
  gathering: 'reference group commit (growing file)',
  'gathering-prealloc': 'reference group commit (preallocated file)',
  'gathering-blocking':
    'reference group commit, synchronous write + fdatasync (preallocated; blocks the event loop: a bound, not a contender)',
  'gathering-dsync': 'reference group commit, O_DSYNC write (preallocated)',
  naive: 'naive write + fdatasync',
  'classic-level': 'classic-level put({ sync: true })',
  lmdb: 'lmdb-js put, awaiting flushed',
  sqlite: 'better-sqlite3 INSERT (WAL, synchronous = FULL; blocks the event loop)',
};

/**
 * Opens the contender `system` in `dir`; `preallocate` sizes the
 * preallocated reference file; `peers` holds the peers installed on demand.
 */
export function makeCommitter(
  system: DurableSystem,
  dir: string,
  preallocate: number,
  peers: string,
): Promise<Committer> {
  switch (system) {
    case 'wal':
      return walCommitter(dir);
    case 'wal-blocking':
      return walCommitter(dir, true);
    case 'sqlite':
      return sqliteCommitter(dir, peers);
    case 'gathering':
      return gatheringCommitter(dir);
    case 'gathering-prealloc':
      return gatheringCommitter(dir, preallocate);
    case 'gathering-blocking':
      return gatheringCommitter(dir, preallocate, 'blocking');
    case 'gathering-dsync':
      return gatheringCommitter(dir, preallocate, 'dsync');
    case 'naive':
      return naiveCommitter(dir);
    case 'classic-level':
      return classicLevelCommitter(dir);
    case 'lmdb':
      return lmdbCommitter(dir);
  }
}

// ---------------------------------------------------------------- fsync floor

/** Records per write of the fsync floor: one batch of the K = 64 run when every committer joins. */
export const FLOOR_BATCH_RECORDS = 64;
/** Size of the floor's preallocated file; the writes wrap around at its end. */
const FLOOR_FILE_BYTES = 32 * 1024 * 1024;

/** One window of back-to-back write + fdatasync pairs. */
export interface FloorWindow {
  /** write + fdatasync pairs completed in the window. */
  readonly fsyncs: number;
  readonly seconds: number;
  /** Latency quantiles of one write + fdatasync, milliseconds. */
  readonly p50: number;
  readonly p99: number;
}

export interface FsyncFloorRun {
  /** Bytes of each write. */
  readonly batchBytes: number;
  /** Synchronous calls: the disk's floor, the one the ceiling is computed from. */
  readonly sync: FloorWindow;
  /** Awaited `FileHandle.write` + `FileHandle.datasync` (libuv thread pool), for comparison. */
  readonly promises: FloorWindow;
  /** `fs.write` + `fs.fdatasync` chained by callbacks (thread pool, no promise); absent in older results. */
  readonly callbacks?: FloorWindow;
}

/**
 * The fdatasync floor of the disk: back-to-back writes of one batch of
 * {@link FLOOR_BATCH_RECORDS} framed 100-byte records at increasing offsets
 * of a preallocated file (zero-filled and synced before the windows; the
 * offsets wrap around at its end), each followed by `fdatasync`, for
 * `seconds`. First with synchronous calls and nothing else in the loop (no
 * thread-pool hop, no batching, no event loop): the most fsyncs per second a
 * writer issuing them one at a time gets from this disk. Then, for another
 * window, the same pairs awaited through `fs/promises`, as a Node.js log
 * issues them; then chained by the callbacks of `fs.write` and `fs.fdatasync`
 * (the same thread pool, without promises).
 */
export async function fsyncFloor(dir: string, seconds: number): Promise<FsyncFloorRun> {
  const handle = await open(join(dir, 'floor'), 'w');
  const fd = handle.fd;
  try {
    const zeros = new Uint8Array(1024 * 1024);
    for (let at = 0; at < FLOOR_FILE_BYTES; at += zeros.length) writeFullySync(fd, zeros, at);
    fsyncSync(fd);
    const payload = randomBytes(PAYLOAD_SIZE);
    const batch = new Uint8Array(FLOOR_BATCH_RECORDS * FRAME_SIZE);
    for (let i = 0, at = 0; i < FLOOR_BATCH_RECORDS; i++) at = frameInto(batch, at, payload);
    let position = 0;
    const advance = (): number => {
      const at = position;
      position += batch.length;
      if (position + batch.length > FLOOR_FILE_BYTES) position = 0;
      return at;
    };
    const syncStep = (): void => {
      writeFullySync(fd, batch, advance());
      fdatasyncSync(fd);
    };
    syncStep(); // first touch of the file's pages: outside the window
    const sync = await timedWindow(seconds, syncStep);
    const promises = await timedWindow(seconds, async () => {
      await writeAll(handle, batch, advance());
      await handle.datasync();
    });
    // Chained by callbacks: no promise per pair, so not through timedWindow.
    const latencies: number[] = [];
    const started = now();
    const deadline = started + seconds * 1000;
    let last = started;
    await new Promise<void>((resolve, reject) => {
      let first = true;
      const pair = (): void => {
        const t = now();
        if (!first) latencies.push(t - last);
        first = false;
        last = t;
        if (t >= deadline) {
          resolve();
          return;
        }
        write(fd, batch, 0, batch.length, advance(), (error, written) => {
          if (error !== null) return reject(error);
          if (written !== batch.length) return reject(new Error(`short write: ${written} bytes`));
          fdatasync(fd, (error) => (error === null ? pair() : reject(error)));
        });
      };
      pair();
    });
    return {
      batchBytes: batch.length,
      sync,
      promises,
      callbacks: floorWindow(latencies, (last - started) / 1000),
    };
  } finally {
    await handle.close();
  }
}

/**
 * Runs `step` back to back for `seconds` and times each run. A synchronous
 * step is called without an await in between, so the loop adds no microtask.
 */
async function timedWindow(
  seconds: number,
  step: () => void | Promise<void>,
): Promise<FloorWindow> {
  const latencies: number[] = [];
  const started = now();
  const deadline = started + seconds * 1000;
  let last = started;
  while (last < deadline) {
    const pending = step();
    if (pending !== undefined) await pending;
    const t = now();
    latencies.push(t - last);
    last = t;
  }
  return floorWindow(latencies, (last - started) / 1000);
}

function floorWindow(latencies: readonly number[], seconds: number): FloorWindow {
  const sorted = Float64Array.from(latencies).sort();
  return {
    fsyncs: latencies.length,
    seconds,
    p50: quantile(sorted, 0.5),
    p99: quantile(sorted, 0.99),
  };
}

function writeFullySync(fd: number, bytes: Uint8Array, position: number): void {
  let done = 0;
  while (done < bytes.length) {
    done += writeSync(fd, bytes, done, bytes.length - done, position + done);
  }
}
