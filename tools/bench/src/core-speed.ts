/**
 * Early speed check of @wal/core on a real disk, against minimal references
 * written here:
 * 1. durable commits: K concurrent committers, each awaiting
 *    `wal.append(payload, { wait: 'durable' })` before its next one, for a
 *    fixed time; versus a gathering group commit (pending list, one
 *    setImmediate, one write of the whole batch, one fdatasync) and, at K = 1,
 *    a naive write + fdatasync per record. Reports commits/s, fsyncs and
 *    writes per commit, p50/p99 latency.
 * 2. buffered appends: one appender, no durability wait, N records into a
 *    segmented log; versus a framing loop (same frames, one 1 MiB buffer,
 *    one positional write per full buffer). Reports records/s for the append
 *    loop and including the final sync.
 * Repetitions are interleaved (A1 B1 C1 A2 B2 C2 …) and the tables show the
 * median with the min–max spread, since fsync times vary from one run to the
 * next.
 *
 * Usage: node dist/src/core-speed.js [directory] [--seconds=3] [--reps=3] [--records=3000000]
 *   [--only=durable|buffered]
 * The directory may also come from WAL_BENCH_DIR; default: `.bench/` at the
 * repository root. Files are deleted at the end, not between runs (a delete
 * can make the next run's fsyncs slower). A tmpfs (or ramfs) directory is refused: fsync is free
 * there, so the numbers would say nothing about a disk.
 *
 * Run: `./pnpm build && ./pnpm --filter @wal/bench bench:core`.
 */
import { randomBytes } from 'node:crypto';
import { type FileHandle, mkdir, mkdtemp, open, rm, statfs } from 'node:fs/promises';
import { cpus, loadavg, release } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32c, HEADER_SIZE, Wal } from '@wal/core';
import { type Fs, type FsFile, type FsLock, NodeFs, type OpenMode } from '@wal/store';

const PAYLOAD_SIZE = 100;
const FRAME_SIZE = HEADER_SIZE + PAYLOAD_SIZE;
const BUFFER_SIZE = 1024 * 1024;

// ---------------------------------------------------------------- arguments

interface Settings {
  readonly root: string;
  readonly seconds: number;
  readonly reps: number;
  readonly records: number;
  readonly only: 'durable' | 'buffered' | undefined;
}

function parseArgs(argv: readonly string[]): Settings {
  let root = process.env.WAL_BENCH_DIR;
  let seconds = 3;
  let reps = 3;
  let records = 3_000_000;
  let only: Settings['only'];
  for (const arg of argv) {
    if (arg === '--') continue; // pnpm passes the separator through
    if (arg === '--only=durable' || arg === '--only=buffered') {
      only = arg === '--only=durable' ? 'durable' : 'buffered';
      continue;
    }
    const match = /^--(seconds|reps|records)=(\d+(?:\.\d+)?)$/.exec(arg);
    if (match !== null) {
      const value = Number(match[2]);
      if (match[1] === 'seconds') seconds = value;
      else if (match[1] === 'reps') reps = Math.max(1, Math.round(value));
      else records = Math.max(1, Math.round(value));
    } else if (arg.startsWith('--')) {
      throw new Error(`unknown option ${arg}`);
    } else {
      root = arg;
    }
  }
  // dist/src/core-speed.js → the repository root is four levels up.
  root ??= fileURLToPath(new URL('../../../../.bench/', import.meta.url));
  return { root: resolve(root), seconds, reps, records, only };
}

/** File-system magic numbers (statfs f_type) worth naming. */
const FS_TYPES: ReadonlyMap<number, string> = new Map([
  [0xef53, 'ext2/3/4'],
  [0x58465342, 'xfs'],
  [0x9123683e, 'btrfs'],
  [0x2fc12fc1, 'zfs'],
  [0xf2f52010, 'f2fs'],
  [0x794c7630, 'overlayfs'],
  [0x6969, 'nfs'],
  [0x01021994, 'tmpfs'],
  [0x858458f6, 'ramfs'],
]);
const MEMORY_FS = new Set([0x01021994, 0x858458f6]);

/** Names the file system under `dir`; throws when it lives in memory. */
async function checkDisk(dir: string): Promise<string> {
  const { type } = await statfs(dir);
  const name = FS_TYPES.get(type) ?? `type 0x${type.toString(16)}`;
  if (MEMORY_FS.has(type)) {
    throw new Error(
      `${dir} is on ${name}: fsync costs nothing there. Pass a directory on a disk-backed file system (argument or WAL_BENCH_DIR).`,
    );
  }
  return name;
}

// ---------------------------------------------------------------- helpers

/** An Fs that counts the calls it passes to the real one. */
class CountingFs implements Fs {
  fdatasyncs = 0;
  dirSyncs = 0;
  pwrites = 0;
  readonly #inner: Fs;

  constructor(inner: Fs) {
    this.#inner = inner;
  }
  get fsyncs(): number {
    return this.fdatasyncs + this.dirSyncs;
  }
  open(path: string, mode: OpenMode): Promise<FsFile> {
    return this.#inner.open(path, mode);
  }
  close(file: FsFile): Promise<void> {
    return this.#inner.close(file);
  }
  pwrite(file: FsFile, bytes: Uint8Array, position: number): Promise<number> {
    this.pwrites++;
    return this.#inner.pwrite(file, bytes, position);
  }
  pread(file: FsFile, into: Uint8Array, position: number): Promise<number> {
    return this.#inner.pread(file, into, position);
  }
  fdatasync(file: FsFile): Promise<void> {
    this.fdatasyncs++;
    return this.#inner.fdatasync(file);
  }
  ftruncate(file: FsFile, length: number): Promise<void> {
    return this.#inner.ftruncate(file, length);
  }
  size(file: FsFile): Promise<number> {
    return this.#inner.size(file);
  }
  rename(from: string, to: string): Promise<void> {
    return this.#inner.rename(from, to);
  }
  unlink(path: string): Promise<void> {
    return this.#inner.unlink(path);
  }
  readdir(path: string): Promise<string[]> {
    return this.#inner.readdir(path);
  }
  mkdir(path: string): Promise<boolean> {
    return this.#inner.mkdir(path);
  }
  syncDir(path: string): Promise<void> {
    this.dirSyncs++;
    return this.#inner.syncDir(path);
  }
  lock(path: string): Promise<FsLock> {
    return this.#inner.lock(path);
  }
}

function putU32(into: Uint8Array, at: number, value: number): void {
  into[at] = value;
  into[at + 1] = value >>> 8;
  into[at + 2] = value >>> 16;
  into[at + 3] = value >>> 24;
}

/**
 * Writes the frame of `payload` at `at` in `into`: [crc32c u32 LE][len u32 LE]
 * payload, the CRC over len ‖ payload. Plain Uint8Arrays, as the log stages
 * into, so both feed `crc32c` the same type.
 */
function frameInto(into: Uint8Array, at: number, payload: Uint8Array): number {
  putU32(into, at + 4, payload.length);
  into.set(payload, at + HEADER_SIZE);
  const end = at + HEADER_SIZE + payload.length;
  putU32(into, at, crc32c(into, at + 4, end));
  return end;
}

async function writeAll(handle: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.length - done, position + done);
    done += bytesWritten;
  }
}

function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const now = (): number => Number(process.hrtime.bigint()) / 1e6;

// ---------------------------------------------------------------- durable commits

interface DurableRun {
  readonly commits: number;
  readonly seconds: number;
  readonly fsyncs: number;
  readonly writes: number;
  readonly p50: number;
  readonly p99: number;
}

/** What a durable contender offers the committers. */
interface Committer {
  /** One durable commit of `payload`. */
  commit(payload: Uint8Array): Promise<unknown>;
  /** fsyncs (data and directory) and writes so far. */
  counts(): { fsyncs: number; writes: number };
  close(): Promise<void>;
}

/** `committers` loops of awaited commits for `seconds`; counts only what completed in the window. */
async function runCommitters(
  target: Committer,
  committers: number,
  seconds: number,
): Promise<DurableRun> {
  const payload = randomBytes(PAYLOAD_SIZE);
  await target.commit(payload); // creates files: outside the window
  const latencies: number[] = [];
  let running = true;
  const before = target.counts();
  const started = now();
  const loop = async (): Promise<void> => {
    while (running) {
      const t0 = now();
      await target.commit(payload);
      if (running) latencies.push(now() - t0);
    }
  };
  const all = Array.from({ length: committers }, loop);
  await new Promise((done) => setTimeout(done, seconds * 1000));
  running = false;
  const elapsed = (now() - started) / 1000;
  const after = target.counts();
  await Promise.all(all);
  await target.close();
  const sorted = Float64Array.from(latencies).sort();
  const commits = latencies.length;
  return {
    commits,
    seconds: elapsed,
    fsyncs: after.fsyncs - before.fsyncs,
    writes: after.writes - before.writes,
    p50: quantile(sorted, 0.5),
    p99: quantile(sorted, 0.99),
  };
}

async function walCommitter(dir: string): Promise<Committer> {
  const fs = new CountingFs(new NodeFs());
  const wal = await Wal.open(dir, { fs });
  return {
    commit: (payload) => wal.append(payload, { wait: 'durable' }),
    counts: () => ({ fsyncs: fs.fsyncs, writes: fs.pwrites }),
    close: () => wal.close(),
  };
}

/**
 * The reference group commit: committers push framed records into a pending
 * list and wait; a flusher waits one macrotask (so every committer released
 * in this turn joins), writes the whole batch at the file's end in one call,
 * fdatasyncs once, then releases the batch.
 */
async function gatheringCommitter(dir: string): Promise<Committer> {
  const handle = await open(join(dir, 'log'), 'w');
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
      await writeAll(handle, bytes, position);
      position += bytes.length;
      fsyncs++;
      await handle.datasync();
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
    close: () => handle.close(),
  };
}

/** Naive: one write and one fdatasync per record (meant for one committer). */
async function naiveCommitter(dir: string): Promise<Committer> {
  const handle = await open(join(dir, 'log'), 'w');
  const frame = new Uint8Array(FRAME_SIZE);
  let position = 0;
  let fsyncs = 0;
  let writes = 0;
  return {
    commit: async (payload) => {
      frameInto(frame, 0, payload);
      writes++;
      await writeAll(handle, frame, position);
      position += frame.length;
      fsyncs++;
      await handle.datasync();
    },
    counts: () => ({ fsyncs, writes }),
    close: () => handle.close(),
  };
}

// ---------------------------------------------------------------- buffered appends

interface BufferedRun {
  /** Records per second of the append loop alone. */
  readonly loopRate: number;
  /** Records per second including the final sync. */
  readonly syncedRate: number;
  readonly writes: number;
}

async function walBuffered(dir: string, records: number): Promise<BufferedRun> {
  const fs = new CountingFs(new NodeFs());
  const wal = await Wal.open(dir, { fs });
  const payload = randomBytes(PAYLOAD_SIZE);
  const writesBefore = fs.pwrites;
  const started = now();
  for (let i = 0; i < records; i++) {
    if (!wal.writable) await wal.drained();
    wal.append(payload);
  }
  const looped = now();
  await wal.sync();
  const synced = now();
  const writes = fs.pwrites - writesBefore;
  await wal.close();
  return {
    loopRate: records / ((looped - started) / 1000),
    syncedRate: records / ((synced - started) / 1000),
    writes,
  };
}

/** The reference: frames into one 1 MiB buffer, one positional write per full buffer. */
async function framingBuffered(dir: string, records: number): Promise<BufferedRun> {
  const handle = await open(join(dir, 'log'), 'w');
  const payload = randomBytes(PAYLOAD_SIZE);
  const buffer = new Uint8Array(BUFFER_SIZE);
  let used = 0;
  let position = 0;
  let writes = 0;
  const started = now();
  for (let i = 0; i < records; i++) {
    if (used + FRAME_SIZE > BUFFER_SIZE) {
      writes++;
      await writeAll(handle, buffer.subarray(0, used), position);
      position += used;
      used = 0;
    }
    used = frameInto(buffer, used, payload);
  }
  if (used > 0) {
    writes++;
    await writeAll(handle, buffer.subarray(0, used), position);
    position += used;
  }
  const looped = now();
  await handle.datasync();
  const synced = now();
  await handle.close();
  return {
    loopRate: records / ((looped - started) / 1000),
    syncedRate: records / ((synced - started) / 1000),
    writes,
  };
}

// ---------------------------------------------------------------- report

/** "median (min–max)" of `values`, each formatted by `format`. */
function spread(values: readonly number[], format: (value: number) => string): string {
  if (values.length === 1) return format(values[0]!);
  return `${format(median(values))} (${format(Math.min(...values))}–${format(Math.max(...values))})`;
}

/**
 * `values` against `refs` (same repetitions): the ratio of the medians, then
 * the range of the per-repetition ratios (each run against the reference run
 * next to it).
 */
function ratio(values: readonly number[], refs: readonly number[]): string {
  const overall = `${(median(values) / median(refs)).toFixed(2)}×`;
  if (values === refs || values.length === 1) return overall;
  const paired = values.map((value, i) => value / refs[i]!);
  return `${overall} (${Math.min(...paired).toFixed(2)}–${Math.max(...paired).toFixed(2)})`;
}

const int = (value: number): string => Math.round(value).toLocaleString('en-US');
const fixed =
  (digits: number) =>
  (value: number): string =>
    value.toFixed(digits);

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
  for (const row of rows) lines.push(`| ${row.join(' | ')} |`);
  return lines.join('\n');
}

async function main(): Promise<void> {
  const settings = parseArgs(process.argv.slice(2));
  await mkdir(settings.root, { recursive: true });
  const fsName = await checkDisk(settings.root);
  const base = await mkdtemp(join(settings.root, 'core-speed-'));
  let runs = 0;
  const fresh = async (): Promise<string> => {
    const dir = join(base, `run-${runs++}`);
    await mkdir(dir);
    return dir;
  };
  try {
    console.log(`# @wal/core early speed check`);
    console.log('');
    console.log(
      `node ${process.version}, ${cpus()[0]?.model ?? 'unknown CPU'} × ${cpus().length}, kernel ${release()}, file system ${fsName}`,
    );
    console.log(
      `directory ${base}; ${settings.seconds} s per durable run, ${settings.reps} interleaved repetitions, ${int(settings.records)} buffered records of ${PAYLOAD_SIZE} B`,
    );
    console.log('');

    const load = (): string =>
      loadavg()
        .map((value) => value.toFixed(2))
        .join(' ');
    console.log(`load average at start: ${load()} (other work on the machine skews every number)`);
    console.log('');
    if (settings.only !== 'buffered') await durableSection(settings, fresh);
    if (settings.only !== 'durable') await bufferedSection(settings, fresh);
    console.log(`load average at end: ${load()}`);
    console.log(
      'Cells: median of the repetitions (min–max); ratios: of the medians (range of the per-repetition ratios).',
    );
  } finally {
    await rm(base, { recursive: true, force: true });
  }
}

async function durableSection(settings: Settings, fresh: () => Promise<string>): Promise<void> {
  const durableConfigs: ReadonlyArray<{
    name: string;
    k: number;
    make: (dir: string) => Promise<Committer>;
  }> = [
    { name: '@wal/core', k: 1, make: walCommitter },
    { name: 'reference group commit', k: 1, make: gatheringCommitter },
    { name: 'naive write + fdatasync', k: 1, make: naiveCommitter },
    { name: '@wal/core', k: 64, make: walCommitter },
    { name: 'reference group commit', k: 64, make: gatheringCommitter },
  ];
  const durable = durableConfigs.map(() => [] as DurableRun[]);
  for (let rep = 0; rep < settings.reps; rep++) {
    for (let c = 0; c < durableConfigs.length; c++) {
      const config = durableConfigs[c]!;
      const dir = await fresh();
      const result = await runCommitters(await config.make(dir), config.k, settings.seconds);
      durable[c]!.push(result);
      console.error(
        `  durable rep ${rep + 1} ${config.name} K=${config.k}: ${int(result.commits / result.seconds)} commits/s, ${(result.fsyncs / result.commits).toFixed(3)} fsyncs/commit`,
      );
    }
  }
  const rate = (run: DurableRun): number => run.commits / run.seconds;
  const reference = (k: number): number[] =>
    durable[durableConfigs.findIndex((c) => c.k === k && c.name.startsWith('reference'))]!.map(
      rate,
    );
  console.log(
    '## Durable commits (100 B payload, each committer awaits its commit before the next)',
  );
  console.log('');
  console.log(
    table(
      [
        'K',
        'contender',
        'commits/s',
        'vs reference',
        'fsyncs/commit',
        'writes/commit',
        'p50 ms',
        'p99 ms',
      ],
      durableConfigs.map((config, c) => {
        const results = durable[c]!;
        const rates = results.map(rate);
        return [
          String(config.k),
          config.name,
          spread(rates, int),
          ratio(rates, reference(config.k)),
          spread(
            results.map((r) => r.fsyncs / r.commits),
            fixed(3),
          ),
          spread(
            results.map((r) => r.writes / r.commits),
            fixed(3),
          ),
          spread(
            results.map((r) => r.p50),
            fixed(2),
          ),
          spread(
            results.map((r) => r.p99),
            fixed(2),
          ),
        ];
      }),
    ),
  );
  console.log('');
}

async function bufferedSection(settings: Settings, fresh: () => Promise<string>): Promise<void> {
  const bufferedConfigs: ReadonlyArray<{
    name: string;
    make: (dir: string, records: number) => Promise<BufferedRun>;
  }> = [
    { name: '@wal/core (segmented)', make: walBuffered },
    { name: 'reference framing loop', make: framingBuffered },
  ];
  const buffered = bufferedConfigs.map(() => [] as BufferedRun[]);
  for (let rep = 0; rep < settings.reps; rep++) {
    for (let c = 0; c < bufferedConfigs.length; c++) {
      const config = bufferedConfigs[c]!;
      const dir = await fresh();
      const result = await config.make(dir, settings.records);
      buffered[c]!.push(result);
      console.error(
        `  buffered rep ${rep + 1} ${config.name}: ${int(result.loopRate)} records/s (loop), ${int(result.syncedRate)} records/s (with sync)`,
      );
    }
  }
  const refLoop = buffered[1]!.map((r) => r.loopRate);
  const refSynced = buffered[1]!.map((r) => r.syncedRate);
  console.log(
    `## Buffered appends (${int(settings.records)} × ${PAYLOAD_SIZE} B, one appender, no wait)`,
  );
  console.log('');
  console.log(
    table(
      [
        'contender',
        'append loop, records/s',
        'vs reference',
        'incl. final sync, records/s',
        'vs reference',
        'writes',
      ],
      bufferedConfigs.map((config, c) => {
        const results = buffered[c]!;
        const loop = results.map((r) => r.loopRate);
        const synced = results.map((r) => r.syncedRate);
        return [
          config.name,
          spread(loop, int),
          c === 1 ? '1.00×' : ratio(loop, refLoop),
          spread(synced, int),
          c === 1 ? '1.00×' : ratio(synced, refSynced),
          int(median(results.map((r) => r.writes))),
        ];
      }),
    ),
  );
  console.log('');
}

try {
  await main();
} catch (error) {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
}
