/**
 * `bench:lsm`: db_bench's workloads (16-byte keys, 100-byte values) on
 * @wal/lsm and classic-level through the `abstract-level` API, on lmdb-js
 * through its own API and on rocksdb (the Level binding, installed on
 * demand) through its own; `fillseq` and durable puts at 1 and 64 writers
 * against @wal/core's bare log too. Peak RSS, write amplification and bytes
 * on disk.
 *
 * One child process per store, workload and repetition; the stores of one
 * workload run one after the other, repetitions interleaved. The read
 * workloads and `overwrite` use the store `fillrandom` left (per store and
 * repetition); the others start from an empty directory.
 *
 * Usage: node dist/src/lsm.js [--quick] [--dir=PATH] [--out=DIR|-]
 *          [--keys=N] [--reads=N] [--reps=N] [--seconds=S] [--cache-bytes=N]
 *          [--only=wal-lsm,wal-lsm-blocking,classic-level,lmdb,rocksdb] [--workloads=LIST] [--child-timeout=S]
 * Prints a Markdown report on stdout and puts it in DIR/BENCHMARKS.md (its
 * own section; `docs/` at the repository root by default; `-`: nowhere).
 */
import { execFileSync } from 'node:child_process';
import diagnosticsChannel from 'node:diagnostics_channel';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CHANNELS, type CommitEvent } from '@wal/core';
import { type Committer, type DurableRun, runCommitters } from './committers.js';
import { type RatioGroup, ratioChart } from './lsm-chart.js';
import {
  type KvStore,
  lsmLevelClass,
  openStore,
  ROCKSDB,
  STORE_LABELS,
  STORES,
  type StoreName,
  type StoreSettings,
} from './lsm-stores.js';
import {
  type Check,
  ChildTimeoutError,
  checkEqual,
  checkLine,
  dataDirectory,
  type FlushTimes,
  failedTargets,
  fixed,
  flushTimes,
  getU32,
  inChild,
  installPeer,
  int,
  median,
  now,
  option,
  provenance,
  putU32,
  ratio,
  reportDirectory,
  seededRandom,
  spread,
  table,
  writeSection,
} from './shared.js';

export const KEY_BYTES = 16;
/** The chart's file, next to BENCHMARKS.md. */
const CHART = 'benchmarks-lsm.svg';
export const VALUE_BYTES = 100;
/**
 * V8's young generation at its largest, as the children run (Node's
 * defaults on 64-bit): two semi-spaces of at most 16 MiB each and a
 * new-space large-object space of the same size.
 */
const YOUNG_GENERATION = 3 * 16 * 1024 * 1024;

type Workload =
  | 'idle'
  | 'fillseq'
  | 'fillrandom'
  | 'overwrite'
  | 'readrandom'
  | 'readseq'
  | 'seekrandom'
  | 'sync1'
  | 'sync64';
const WORKLOADS: readonly Workload[] = [
  'idle',
  'fillseq',
  'fillrandom',
  'overwrite',
  'readrandom',
  'readseq',
  'seekrandom',
  'sync1',
  'sync64',
];
/** Workloads that run on the store `fillrandom` left. */
const ON_FILLED: ReadonlySet<Workload> = new Set([
  'overwrite',
  'readrandom',
  'readseq',
  'seekrandom',
]);
const WRITES: readonly Workload[] = ['fillseq', 'fillrandom', 'overwrite'];
const READS: readonly Workload[] = ['readrandom', 'readseq', 'seekrandom'];
const SYNC_WRITERS: Readonly<Partial<Record<Workload, number>>> = { sync1: 1, sync64: 64 };
/** The durable puts' record of the last put of each key, for the read-back: two Uint32Arrays. */
const READ_BACK_BYTES_PER_KEY = 8;
/**
 * Workloads @wal/core's bare log runs too, as the reference of what the
 * log under @wal/lsm gives: `fillseq` (one append at a time, each awaited
 * until written: the cost a non-durable put cannot go below) and the
 * durable puts.
 */
const LOG_REFERENCE: ReadonlySet<Workload> = new Set(['fillseq', 'sync1', 'sync64']);
/**
 * Workloads `wal-lsm-blocking` (the data log opened with `blockingSync`)
 * runs: the writes. Its reads would be `wal-lsm`'s. The bare log opened so
 * (`wal-core-blocking`) runs the LOG_REFERENCE ones of these but `sync64`.
 */
const BLOCKING_RUNS: ReadonlySet<Workload> = new Set([
  'fillseq',
  'fillrandom',
  'overwrite',
  'sync1',
  'sync64',
]);

/** Seeds of the random key orders: the same for every store and repetition. */
const SEEDS: Readonly<Partial<Record<Workload, number>>> = {
  fillrandom: 101,
  overwrite: 202,
  readrandom: 303,
  seekrandom: 404,
  sync1: 505,
  sync64: 606,
};

interface Job {
  readonly store: StoreName;
  readonly workload: Workload;
  readonly keys: number;
  readonly reads: number;
  readonly seconds: number;
  readonly dir: string;
  readonly settings: StoreSettings;
}

interface Result {
  /** Operations completed in `seconds` (entries read for `readseq`). */
  readonly ops: number;
  readonly seconds: number;
  /** Reads that found their key (`readrandom`, `seekrandom`). */
  readonly found: number;
  /** Peak resident set of the child, bytes. */
  readonly maxRss: number;
  /**
   * JavaScript memory still live after a full garbage collection at the end
   * of the workload, before close (V8 heap used + external and array
   * buffers), bytes: what the store holds, as against garbage not yet collected.
   */
  readonly liveBytes: number;
  /** `write_bytes` of /proc/self/io from before open to after close; null where unavailable. */
  readonly writeBytes: number | null;
  /** Bytes of keys and values written. */
  readonly userBytes: number;
  /** Bytes allocated under the store's directory after close. */
  readonly diskBytes: number;
  /** Latency of a durable put, ms (sync workloads). */
  readonly p50: number;
  readonly p99: number;
  /**
   * CPU microseconds of the main (event-loop) thread in the durable window
   * (sync workloads, where `/proc` has it); absent otherwise.
   */
  readonly threadCpuMicros?: number;
  /** Durable puts: the keys put, and those that read back their last put after reopen. */
  readonly readBack?: ReadBack;
  /** Durable puts into @wal/core logs: how busy their flushes kept the disk in the window. */
  readonly flushes?: FlushTimes;
}

interface ReadBack {
  readonly keys: number;
  readonly matched: number;
}

// ---------------------------------------------------------------- keys and values

/** db_bench's key: the key number as 16 decimal digits. */
export function keyOf(n: number): Uint8Array {
  const key = new Uint8Array(KEY_BYTES);
  for (let at = KEY_BYTES - 1; at >= 0; at--) {
    key[at] = 48 + (n % 10);
    n = Math.floor(n / 10);
  }
  return key;
}

/**
 * db_bench's values: 100-byte slices of a 1 MiB pool made of pieces whose
 * first half is random printable bytes and second half repeats it (they
 * compress to about half, db_bench's default `--compression_ratio=0.5`).
 * Each value is a fresh copy, as a user's would be.
 */
class Values {
  readonly #pool = new Uint8Array(1 << 20);
  #at = 0;

  constructor() {
    const next = seededRandom(7);
    const half = VALUE_BYTES / 2;
    for (let piece = 0; piece + VALUE_BYTES <= this.#pool.length; piece += VALUE_BYTES) {
      for (let i = 0; i < half; i++) {
        const byte = 32 + Math.floor(next() * 95);
        this.#pool[piece + i] = byte;
        this.#pool[piece + half + i] = byte;
      }
    }
  }

  next(): Uint8Array {
    if (this.#at + VALUE_BYTES > this.#pool.length) this.#at = 0;
    const value = this.#pool.slice(this.#at, this.#at + VALUE_BYTES);
    this.#at += VALUE_BYTES;
    return value;
  }
}

const sameBytes = (a: Uint8Array | undefined, b: Uint8Array): boolean =>
  a !== undefined && a.length === b.length && a.every((byte, i) => byte === b[i]);

// ---------------------------------------------------------------- child

/** `write_bytes` of /proc/self/io (all threads of the process), or null. */
async function ioWriteBytes(): Promise<number | null> {
  const text = await readFile('/proc/self/io', 'utf8').catch(() => '');
  const match = /^write_bytes:\s*(\d+)$/m.exec(text);
  return match === null ? null : Number(match[1]);
}

/** Bytes allocated (st_blocks) by the files under `dir`. */
async function allocatedBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) total += await allocatedBytes(path);
    else total += (await stat(path)).blocks * 512;
  }
  return total;
}

/** JavaScript memory live after a full collection (the child runs with `--expose-gc`). */
function liveMemory(): number {
  (globalThis as { gc?: () => void }).gc?.();
  const { heapUsed, external } = process.memoryUsage();
  return heapUsed + external;
}

/**
 * Durable puts of random keys from `writers` loops for the window (the
 * store is closed at the end), then the read-back check: the store
 * reopened, every key put must read back the
 * value of its last put. Each put's value carries its call number (first 4
 * bytes), so a lost or stale put is seen; a key with two puts in flight at
 * once may read back either (the store may apply them in either order).
 * Not for @wal/core's bare log (no reads): `readBack` is absent there.
 */
async function durablePuts(store: KvStore, job: Job, writers: number) {
  const next = seededRandom(SEEDS[job.workload]!);
  // Per key number: the call number of its last put (0: none), and of the
  // one before if it was still in flight then (0: none). Two 32-bit numbers
  // a key, whatever the rate (READ_BACK_BYTES_PER_KEY in the memory bound).
  const readable = job.store !== 'wal-core' && job.store !== 'wal-core-blocking';
  const lastCall = new Uint32Array(readable ? job.keys : 0);
  const overlappedCall = new Uint32Array(readable ? job.keys : 0);
  const inFlight = new Set<number>();
  let calls = 0;
  const committer: Committer = {
    commit: (value) => {
      const n = Math.floor(next() * job.keys);
      const call = ++calls;
      // A copy of its own (the committers' payload is a Buffer, whose slice() is a view).
      const put = new Uint8Array(value);
      putU32(put, 0, call);
      if (!readable) return store.put(keyOf(n), put, true);
      const before = lastCall[n]!;
      lastCall[n] = call;
      overlappedCall[n] = before !== 0 && inFlight.has(before) ? before : 0;
      inFlight.add(call);
      return store.put(keyOf(n), put, true).finally(() => inFlight.delete(call));
    },
    counts: () => ({ fsyncs: Number.NaN, writes: Number.NaN }),
    close: () => store.close(),
  };
  const flushes: Array<[end: number, ms: number]> = [];
  const onCommit = (event: unknown): void => {
    flushes.push([now(), (event as CommitEvent).syncMs]);
  };
  diagnosticsChannel.subscribe(CHANNELS.commit, onCommit);
  let committed: DurableRun;
  try {
    committed = await runCommitters(committer, writers, job.seconds);
  } finally {
    diagnosticsChannel.unsubscribe(CHANNELS.commit, onCommit);
  }
  const start = committed.windowStart;
  const times =
    start === undefined ? undefined : flushTimes(flushes, start, start + committed.seconds * 1000);
  const run = { ...committed, flushes: times };
  if (!readable) return { ...run, readBack: undefined };
  const reopened = await openStore(job.store, job.dir, job.settings, true);
  let keys = 0;
  let matched = 0;
  try {
    for (let n = 0; n < job.keys; n++) {
      const call = lastCall[n]!;
      if (call === 0) continue;
      keys++;
      const value = await reopened.get(keyOf(n));
      const got = value === undefined || value.length < 4 ? -1 : getU32(value, 0);
      if (got === call || (overlappedCall[n] !== 0 && got === overlappedCall[n])) matched++;
    }
  } finally {
    await reopened.close();
  }
  return { ...run, readBack: { keys, matched } };
}

async function runJob(job: Job): Promise<Result> {
  const before = await ioWriteBytes();
  const store = await openStore(job.store, job.dir, job.settings, job.workload in SYNC_WRITERS);
  const values = new Values();
  const next = seededRandom(SEEDS[job.workload] ?? 1);
  const randomKey = () => keyOf(Math.floor(next() * job.keys));
  let ops = 0;
  let found = 0;
  let userBytes = 0;
  let p50 = Number.NaN;
  let p99 = Number.NaN;
  let seconds = 0;
  let liveBytes = Number.NaN;
  let threadCpuMicros: number | undefined;
  let readBack: ReadBack | undefined;
  let flushes: FlushTimes | undefined;
  const started = now();
  const writers = SYNC_WRITERS[job.workload];
  if (writers !== undefined) {
    const run = await durablePuts(store, job, writers); // closes the store
    readBack = run.readBack;
    ops = run.commits;
    seconds = run.seconds;
    userBytes = ops * (KEY_BYTES + VALUE_BYTES);
    p50 = run.p50;
    p99 = run.p99;
    threadCpuMicros = run.threadCpuMicros;
    flushes = run.flushes;
  } else {
    switch (job.workload) {
      case 'idle':
        break;
      case 'fillseq':
        for (; ops < job.keys; ops++) await store.put(keyOf(ops), values.next(), false);
        break;
      case 'fillrandom':
      case 'overwrite':
        for (; ops < job.keys; ops++) await store.put(randomKey(), values.next(), false);
        break;
      case 'readrandom':
        for (; ops < job.reads; ops++) if ((await store.get(randomKey())) !== undefined) found++;
        break;
      case 'readseq':
        ops = (await store.scan()).entries;
        found = ops;
        break;
      case 'seekrandom': {
        const seeker = store.seeker();
        for (; ops < job.reads; ops++) {
          const key = randomKey();
          if (sameBytes(await seeker.seek(key), key)) found++;
        }
        await seeker.close();
        break;
      }
    }
    seconds = (now() - started) / 1000;
    if (WRITES.includes(job.workload)) userBytes = ops * (KEY_BYTES + VALUE_BYTES);
    liveBytes = liveMemory();
    await store.close();
  }
  const after = await ioWriteBytes();
  return {
    ops,
    seconds,
    found,
    maxRss: process.resourceUsage().maxRSS * 1024,
    liveBytes,
    writeBytes: before === null || after === null ? null : after - before,
    userBytes,
    diskBytes: await allocatedBytes(job.dir),
    p50,
    p99,
    ...(threadCpuMicros === undefined ? {} : { threadCpuMicros }),
    ...(readBack === undefined ? {} : { readBack }),
    ...(flushes === undefined ? {} : { flushes }),
  };
}

/**
 * Where the durable puts' time goes, from the same runs: the CPU the main
 * (event-loop) thread spent per put, for @wal/lsm and for its bare log, and
 * how busy that thread was over the window; '' when `/proc` gave no figure.
 */
function threadNote(lsm: readonly Result[], log: readonly Result[]): string {
  const perOp = (runs: readonly Result[]) =>
    median(
      runs.filter((r) => r.threadCpuMicros !== undefined).map((r) => r.threadCpuMicros! / r.ops),
    );
  const busy = (runs: readonly Result[]) =>
    median(
      runs
        .filter((r) => r.threadCpuMicros !== undefined)
        .map((r) => r.threadCpuMicros! / 1e6 / r.seconds),
    );
  const lsmUs = perOp(lsm);
  const logUs = perOp(log);
  if (!Number.isFinite(lsmUs) || !Number.isFinite(logUs)) return '';
  const thread = `the event-loop thread: @wal/lsm ${lsmUs.toFixed(1)} µs of CPU per put, busy ${Math.round(100 * busy(lsm))} % of the window (so at most about ${int(1e6 / lsmUs)} puts/s on one thread), against the bare log's ${logUs.toFixed(1)} µs per append (busy ${Math.round(100 * busy(log))} %): the store's own work per put (memtable, flushes, compactions, the abstract-level layer) runs on the same thread as the log's`;
  const lsmFlushes = flushSummary(lsm);
  const logFlushes = flushSummary(log);
  if (lsmFlushes === undefined || logFlushes === undefined) return thread;
  const flushes = `the logs' flushes (durable writes and syncs, wal:commit): @wal/lsm had one in flight ${percent(lsmFlushes.busy)} of the window, ${int(lsmFlushes.perSecond)} a second of ${lsmFlushes.medianMs.toFixed(2)} ms each at the median, ${int(lsmFlushes.putsPer)} puts per flush; the bare log ${percent(logFlushes.busy)}, ${int(logFlushes.perSecond)} a second of ${logFlushes.medianMs.toFixed(2)} ms, ${int(logFlushes.putsPer)} appends per flush`;
  // What sets the pace, said only when the figures show it.
  const pace =
    busy(lsm) < BUSY && lsmFlushes.busy < BUSY
      ? ". Neither the thread nor the log's flushes were busy all the time: each round waits for both in turn (the writers released by one flush append their next puts together, once the store applied the round, so the round's work and its flush follow each other instead of overlapping)"
      : '';
  return `${thread}; ${flushes}${pace}`;
}

/** Busier than this fraction of the window: that resource sets the pace. */
const BUSY = 0.9;

/** Medians over the runs that measured their flushes; `undefined` when none did. */
function flushSummary(
  runs: readonly Result[],
): { busy: number; perSecond: number; medianMs: number; putsPer: number } | undefined {
  const measured = runs.filter((r) => r.flushes !== undefined);
  if (measured.length === 0) return undefined;
  return {
    busy: median(measured.map((r) => r.flushes!.busy)),
    perSecond: median(measured.map((r) => r.flushes!.count / r.seconds)),
    medianMs: median(measured.map((r) => r.flushes!.medianMs)),
    putsPer: median(measured.map((r) => r.ops / r.flushes!.count)),
  };
}

const percent = (fraction: number): string => `${Math.round(100 * fraction)} %`;

// ---------------------------------------------------------------- runner

/** This module's file: the runner forks it for each child. */
const script = fileURLToPath(import.meta.url);

/** Installs the rocksdb binding under `peers` when it is not there; the reason when it cannot. */
function installRocksDb(peers: string): string | undefined {
  if (existsSync(join(peers, 'node_modules', 'rocksdb', 'package.json'))) return undefined;
  try {
    installPeer(peers, ROCKSDB);
    return undefined;
  } catch (error) {
    return `\`npm install ${ROCKSDB}\` failed: ${(error as Error).message.split('\n')[0]}`;
  }
}

const MiB = 2 ** 20;
const mib = (bytes: number): string => (bytes / MiB).toFixed(1);

const WORKLOAD_TEXT: Readonly<Record<Workload, string>> = {
  idle: 'open an empty store and close it (the baseline of the memory bound)',
  fillseq:
    "N puts in key order into an empty store (@wal/core's bare log: N appends of key ‖ value, each awaited until written)",
  fillrandom: 'N puts of uniformly random keys (with repeats) into an empty store',
  overwrite: 'N more puts of random keys into the `fillrandom` store',
  readrandom:
    'gets of random keys (1 − e⁻² ≈ 86 % of them present after `fillrandom` and `overwrite`)',
  readseq: 'one iterator over every entry',
  seekrandom: 'one iterator, `seek` to a random key then read one entry, repeated',
  sync1: '1 writer, `put(…, { sync: true })` each awaited, fresh random keys',
  sync64: '64 writers, each awaiting its durable put before the next',
};

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const root = await dataDirectory();
  const keys = Number(option('keys') ?? (quick ? 100_000 : 1_000_000));
  const reads = Number(option('reads') ?? (quick ? Math.min(keys, 20_000) : keys));
  const reps = Number(option('reps') ?? (quick ? 1 : 3));
  const seconds = Number(option('seconds') ?? (quick ? 1 : 3));
  const settings: StoreSettings = {
    cacheBytes: Number(option('cache-bytes') ?? 2 * MiB),
    writeBufferBytes: 4 * MiB,
    peers: join(root, 'peers'),
  };
  const notes: string[] = [];
  /** Children that ended without a result (their runs are left out of the cells). */
  let failedChildren = 0;
  let stores = (option('only')?.split(',') ?? STORES) as StoreName[];
  if (stores.some((s) => s.startsWith('wal-lsm')) && (await lsmLevelClass()) === undefined) {
    stores = stores.filter((s) => !s.startsWith('wal-lsm'));
    notes.push('@wal/lsm was left out: this build of @wal/lsm exports no `LsmLevel` adapter.');
  }
  if (stores.includes('rocksdb')) {
    const failed = installRocksDb(settings.peers);
    if (failed !== undefined) {
      stores = stores.filter((s) => s !== 'rocksdb');
      notes.push(`rocksdb was left out: ${failed}.`);
    }
  }
  let workloads = (option('workloads')?.split(',') ?? WORKLOADS) as Workload[];
  if (workloads.some((w) => ON_FILLED.has(w)) && !workloads.includes('fillrandom')) {
    workloads = ['fillrandom', ...workloads]; // their data set
  }
  workloads = WORKLOADS.filter((w) => workloads.includes(w) || w === 'idle');
  const loadBefore = loadavg()[0]!;
  const results = new Map<string, Result[]>();
  const cell = (workload: Workload, store: StoreName) => results.get(`${workload}/${store}`) ?? [];
  let run = 0;
  for (let rep = 0; rep < reps; rep++) {
    const filled = new Map<StoreName, string>();
    for (const workload of workloads) {
      const references: StoreName[] = !LOG_REFERENCE.has(workload)
        ? []
        : stores.includes('wal-lsm-blocking') && workload !== 'sync64'
          ? ['wal-core', 'wal-core-blocking']
          : ['wal-core'];
      const contenders: StoreName[] = [
        ...stores.filter((s) => s !== 'wal-lsm-blocking' || BLOCKING_RUNS.has(workload)),
        ...references.filter((s) => !stores.includes(s)),
      ];
      for (const store of contenders) {
        const keep = workload === 'fillrandom' || ON_FILLED.has(workload);
        const dir = keep
          ? (filled.get(store) ?? join(root, `lsm-bench-${process.pid}-r${rep}-${store}`))
          : join(root, `lsm-bench-${process.pid}-${run++}`);
        if (!keep || workload === 'fillrandom') {
          await rm(dir, { recursive: true, force: true });
          await mkdir(dir, { recursive: true });
        }
        if (keep) filled.set(store, dir);
        process.stderr.write(`rep ${rep + 1}/${reps} ${workload} ${store}\n`);
        // Write back every dirty page of the file system first: the child's
        // write_bytes then counts only pages it dirties itself, and no
        // writeback left by the previous child runs during its window.
        execFileSync('sync', ['-f', dir]);
        const job: Job = { store, workload, keys, reads, seconds, dir, settings };
        try {
          const t0 = now();
          const result = await inChild<Result>(script, job, ['--expose-gc']);
          process.stderr.write(`  ${((now() - t0) / 1000).toFixed(1)} s\n`);
          results.set(`${workload}/${store}`, [...cell(workload, store), result]);
        } catch (error) {
          // One failed child must not cost the rest of a long run: the report says so.
          const why =
            error instanceof ChildTimeoutError
              ? `its child was still running after ${error.seconds} s and was killed`
              : 'its child ended without a result (its error is on stderr)';
          const failure = `${STORE_LABELS[store]} failed \`${workload}\` in repetition ${rep + 1}: ${why}; the run is left out of its cells.`;
          process.stderr.write(`  ${failure}\n`);
          notes.push(failure);
          failedChildren++;
        } finally {
          if (!keep) await rm(dir, { recursive: true, force: true });
        }
      }
    }
    for (const dir of filled.values()) await rm(dir, { recursive: true, force: true });
  }
  const loadAfter = loadavg()[0]!;

  // ---------------------------------------------------------------- checks
  // Durable puts: every key put reads back its last put once the store is
  // reopened (runJob's durablePuts), per store that can read.
  const checks: Check[] = (['sync1', 'sync64'] as const)
    .filter((w) => workloads.includes(w))
    .flatMap((workload) =>
      stores
        .filter((store) => cell(workload, store).length > 0)
        .map((store) =>
          checkEqual(
            `${workload}, ${STORE_LABELS[store]}: keys reading back their last durable put after reopen = keys put`,
            cell(workload, store).map(
              (r, rep) =>
                [r.readBack?.matched ?? -1, r.readBack?.keys ?? 0, `run ${rep + 1}`] as const,
            ),
          ),
        ),
    );

  // ---------------------------------------------------------------- report
  const rate = (r: Result) => r.ops / r.seconds;
  const rates = (w: Workload, s: StoreName) => cell(w, s).map(rate);
  /** `ratio`, or 'n/a' when a side has no run (its children failed). */
  const versus = (values: number[], refs: number[]): string =>
    values.length === 0 || refs.length === 0 ? 'n/a' : ratio(values, refs);
  const versusClassic = (w: Workload, s: StoreName): string =>
    stores.includes('classic-level') && s !== 'classic-level' && cell(w, s).length > 0
      ? versus(rates(w, s), rates(w, 'classic-level'))
      : '';
  const speedRows: string[][] = [];
  for (const workload of [...WRITES, ...READS]) {
    if (!workloads.includes(workload)) continue;
    const reference: StoreName[] = (['wal-core', 'wal-core-blocking'] as const).filter(
      (s) => LOG_REFERENCE.has(workload) && !stores.includes(s),
    );
    for (const store of [...stores, ...reference]) {
      const rs = cell(workload, store);
      if (rs.length === 0 && store !== 'wal-lsm' && store !== 'classic-level') continue;
      speedRows.push([
        workload,
        STORE_LABELS[store],
        spread(rates(workload, store), int),
        versusClassic(workload, store),
        READS.includes(workload) && workload !== 'readseq'
          ? spread(
              rs.map((r) => (100 * r.found) / Math.max(1, r.ops)),
              fixed(1),
            )
          : '',
        spread(
          rs.map((r) => r.maxRss / MiB),
          fixed(0),
        ),
        spread(
          rs.map((r) => r.liveBytes / MiB),
          fixed(1),
        ),
      ]);
    }
  }
  const writeRows: string[][] = [];
  for (const workload of WRITES) {
    if (!workloads.includes(workload)) continue;
    for (const store of stores) {
      const rs = cell(workload, store);
      if (rs.length === 0 && store === 'wal-lsm-blocking') continue;
      writeRows.push([
        workload,
        STORE_LABELS[store],
        spread(
          rs.map((r) => (r.writeBytes === null ? Number.NaN : r.writeBytes / r.userBytes)),
          fixed(2),
        ),
        spread(
          rs.map((r) => r.diskBytes / MiB),
          fixed(1),
        ),
      ]);
    }
  }
  const syncRows: string[][] = [];
  for (const workload of ['sync1', 'sync64'] as const) {
    if (!workloads.includes(workload)) continue;
    for (const store of new Set<StoreName>([...stores, 'wal-core', 'wal-core-blocking'])) {
      const rs = cell(workload, store);
      if (rs.length === 0) continue;
      syncRows.push([
        String(SYNC_WRITERS[workload]),
        STORE_LABELS[store],
        spread(rates(workload, store), int),
        versusClassic(workload, store),
        spread(
          rs.map((r) => r.p50),
          fixed(2),
        ),
        spread(
          rs.map((r) => r.p99),
          fixed(2),
        ),
        spread(
          rs.map((r) => r.maxRss / MiB),
          fixed(0),
        ),
      ]);
    }
  }

  // Targets of the issue, for @wal/lsm against classic-level in this run.
  const targets: { name: string; measured: string; pass: boolean; note: string }[] = [];
  const rateOf = (w: Workload, s: StoreName) => median(rates(w, s));
  if (stores.includes('wal-lsm') && stores.includes('classic-level')) {
    if (workloads.includes('sync64')) {
      const ours = rateOf('sync64', 'wal-lsm');
      const classic = rateOf('sync64', 'classic-level');
      const log = rateOf('sync64', 'wal-core');
      const threads = threadNote(cell('sync64', 'wal-lsm'), cell('sync64', 'wal-core'));
      targets.push({
        name: 'durable puts, 64 writers ≥ 10× classic-level',
        measured: versus(rates('sync64', 'wal-lsm'), rates('sync64', 'classic-level')),
        pass: ours >= 10 * classic,
        note:
          ours >= 10 * classic
            ? ''
            : 10 * classic > log
              ? `out of reach on this log and disk: 10× classic-level is ${int(10 * classic)} puts/s, above @wal/core's own ${int(log)} appends/s at K = 64 in this run`
              : threads,
      });
      targets.push({
        name: "durable puts, 64 writers ≥ 0.8× @wal/core's durable appends at K = 64",
        measured: versus(rates('sync64', 'wal-lsm'), rates('sync64', 'wal-core')),
        pass: ours >= 0.8 * log,
        note: `@wal/core: ${int(log)} appends/s of ${KEY_BYTES + VALUE_BYTES}-byte records${ours >= 0.8 * log || threads === '' ? '' : `; ${threads}`}`,
      });
    }
    // A program with one writer at a time chooses its mode when it opens the
    // store; the README advises blockingSync for it. So the one-at-a-time
    // writes and the durable puts of 1 writer are judged in that mode when
    // this run measured it (fixed in advance, not the faster of two noisy
    // medians), the default mode's ratio beside; the reads do not depend on it.
    const single = stores.includes('wal-lsm-blocking') ? 'wal-lsm-blocking' : 'wal-lsm';
    for (const workload of [...WRITES, ...READS, 'sync1'] as Workload[]) {
      if (!workloads.includes(workload)) continue;
      const mode: StoreName =
        READS.includes(workload) || cell(workload, single).length === 0 ? 'wal-lsm' : single;
      const classic = rateOf(workload, 'classic-level');
      const ours = rateOf(workload, mode);
      // The bare log in the same mode: one append at a time, each awaited
      // until written (`fillseq`) or durable (`sync1`).
      const logStore: StoreName = mode === 'wal-lsm' ? 'wal-core' : 'wal-core-blocking';
      const log = rateOf('sync1', logStore);
      const written = rateOf('fillseq', logStore);
      const notes: string[] = [];
      if (mode !== 'wal-lsm') {
        notes.push(
          `${STORE_LABELS[mode]} (@wal/lsm without it: ${versus(rates(workload, 'wal-lsm'), rates(workload, 'classic-level'))})`,
        );
      }
      if (ours < classic && workload === 'sync1' && log < classic) {
        notes.push(
          `out of reach on this log and disk: ${STORE_LABELS[logStore]}'s own rate at K = 1 is ${int(log)} appends/s, below classic-level's ${int(classic)} puts/s (one fdatasync per put for both)`,
        );
      } else if (ours < classic && WRITES.includes(workload) && written > 0) {
        notes.push(
          `${versus(rates(workload, mode), rates('fillseq', logStore))} ${STORE_LABELS[logStore]}'s own ${int(written)} appends/s, one at a time each awaited until written (the log under every put)${written < classic ? `: out of reach on this log, whose own rate is below classic-level's ${int(classic)} puts/s` : ''}`,
        );
      }
      targets.push({
        name: `${workload === 'sync1' ? 'durable puts, 1 writer' : workload} ≥ 1.0× classic-level`,
        measured: versus(rates(workload, mode), rates(workload, 'classic-level')),
        pass: ours >= classic,
        note: notes.join('; '),
      });
    }
  }
  // The memory bound (packages/lsm/README.md, "What it costs"): the idle
  // store, plus V8's young generation grown to its maximum (a filling
  // memtable keeps most of what a write allocates alive, which makes V8
  // grow it; the idle store's is 1 MiB), plus what the documented options
  // let the store hold, twice over for a garbage-collected old generation.
  if (stores.includes('wal-lsm')) {
    const idle = median(cell('idle', 'wal-lsm').map((r) => r.maxRss));
    const entry = KEY_BYTES + VALUE_BYTES + 8;
    const tables = 2 * keys * (10 / 8 + 100 / Math.floor(4096 / entry));
    // As packages/lsm/README.md ("What it costs") documents: a memtable cut at
    // `writeBufferSize` counts key + value + 80 bytes per version and holds
    // key + value + 200 in V8; the data log keeps a 1 MiB write buffer and
    // 1 MiB of preallocation zeros.
    const memtable =
      (settings.writeBufferBytes * (KEY_BYTES + VALUE_BYTES + 200)) /
      (KEY_BYTES + VALUE_BYTES + 80);
    const log = 2 * MiB;
    // A compaction's input windows: `compactionReadSize`, 4 MiB by default.
    const compaction = 4 * MiB;
    // Blocks read into buffers rounded up to 256 bytes; up to 256 KiB of
    // evicted ones kept for reuse.
    const held = 2 * memtable + settings.cacheBytes + 256 * 1024 + tables + log + compaction;
    const bound = idle + YOUNG_GENERATION + 2 * held;
    // The durable puts' children also hold the bench's own record of the
    // puts, for their read-back after reopen: allowed on top, for them only.
    const readBack = READ_BACK_BYTES_PER_KEY * keys;
    const allowed = (workload: Workload) => bound + (workload in SYNC_WRITERS ? readBack : 0);
    // Over both modes: a user may open the store either way. The cell
    // closest to (or furthest past) its bound is the one reported.
    let peak = 0;
    let margin = Number.NEGATIVE_INFINITY;
    let where: Workload = 'idle';
    let whereStore: StoreName = 'wal-lsm';
    for (const workload of workloads) {
      for (const store of ['wal-lsm', 'wal-lsm-blocking'] as const) {
        const value = median(cell(workload, store).map((r) => r.maxRss));
        if (value - allowed(workload) > margin) {
          margin = value - allowed(workload);
          peak = value;
          where = workload;
          whereStore = store;
        }
      }
    }
    const live = median(cell(where, whereStore).map((r) => r.liveBytes));
    const boundText = `idle ${mib(idle)} MiB + V8's young generation ${mib(YOUNG_GENERATION)} MiB + 2 × (2 memtables of ${mib(settings.writeBufferBytes)} MiB counted, ${mib(memtable)} MiB in V8 + block cache ${mib(settings.cacheBytes)} MiB and 0.25 MiB of free block buffers + tables' filters and indexes ${mib(tables)} MiB + the log's buffers ${mib(log)} MiB + a compaction's input windows ${mib(compaction)} MiB) = ${mib(bound)} MiB`;
    targets.push({
      name: 'peak RSS bounded by the documented options',
      measured:
        peak > 0
          ? `${mib(peak)} MiB (${where}${whereStore === 'wal-lsm' ? '' : `, ${STORE_LABELS[whereStore]}`})`
          : 'n/a',
      pass: peak > 0 && margin <= 0,
      note: `bound: ${boundText}${where in SYNC_WRITERS ? `, + the bench's record of the durable puts for their read-back, ${mib(readBack)} MiB (two 32-bit numbers a key) = ${mib(allowed(where))} MiB for \`${where}\`` : ''}; JavaScript memory still live after a full garbage collection at the end of \`${where}\`: ${mib(live)} MiB (the rest of the peak is garbage not yet collected, the JIT's code and the runtime's own)`,
    });
  }

  // The chart: every store but classic-level, against it, per workload.
  // (`wal-lsm-blocking` runs the writes only: it is in the tables, not the chart.)
  const charted = stores.includes('classic-level')
    ? stores.filter((s) => s !== 'classic-level' && s !== 'wal-lsm-blocking')
    : [];
  const chartGroups: RatioGroup[] = [...WRITES, ...READS, 'sync1', 'sync64']
    .filter((w) => workloads.includes(w as Workload))
    .map((w) => ({
      workload: w,
      ratios: charted.map((s) => ({
        store: STORE_LABELS[s],
        ratio: rateOf(w as Workload, s) / rateOf(w as Workload, 'classic-level'),
      })),
    }));
  const header = await provenance('src/lsm.ts', 'bench:lsm', root, [loadBefore, loadAfter]);
  const lines = [
    '## LSM key-value stores (@wal/lsm)',
    '',
    ...header,
    '',
    `db_bench's workloads: ${KEY_BYTES}-byte keys (the key number in decimal digits), ${VALUE_BYTES}-byte values that compress to about half, N = ${int(keys)} keys, ${int(reads)} random reads or seeks, one operation at a time each awaited before the next (durable puts: ${seconds} s windows). Block caches of ${mib(settings.cacheBytes)} MiB (@wal/lsm \`blockCacheSize\`, LevelDB and RocksDB \`cacheSize\`; lmdb-js has none and reads its memory-mapped file) and memtables of ${mib(settings.writeBufferBytes)} MiB; every store's files stay in the page cache. ${reps} repetition(s) interleaved, one child process per store, workload and repetition; cells are median (min–max), ratios the ratio of the medians (range of the per-repetition ratios).`,
    ...(stores.includes('wal-lsm-blocking')
      ? [
          '',
          "`@wal/lsm, blockingSync` is the same store opened with `blockingSync: true` (packages/lsm/README.md): its data log's `write()` and fdatasync run on the event-loop thread instead of libuv's thread pool, which saves a thread-pool round trip per write and blocks the event loop for each write and fsync. It runs the writes only (its reads are @wal/lsm's). A program with one writer at a time chooses its mode when it opens the store, and the README advises this mode for one: so the targets of the one-at-a-time writes and of the durable puts with 1 writer are judged in it (fixed in advance, whichever is faster; the default mode's ratio is beside each), each against the bare log opened the same way (`@wal/core (bare log), blockingSync`). The targets at 64 writers are the default mode's: with many writers the event loop would block through every fsync (its row is for information).",
        ]
      : []),
    ...(workloads.includes('overwrite')
      ? [
          '',
          `The data set of the reads (after \`fillrandom\` and \`overwrite\`), in MiB on disk: ${stores
            .filter((s) => s !== 'wal-lsm-blocking')
            .map(
              (s) =>
                `${STORE_LABELS[s]} ${spread(
                  cell('overwrite', s).map((r) => r.diskBytes / MiB),
                  fixed(1),
                )}`,
            )
            .join(', ')}; block caches ${mib(settings.cacheBytes)} MiB.`,
        ]
      : []),
    ...notes.map((note) => `\n${note}`),
    '',
    ...(charted.length > 0
      ? [`![throughput against classic-level per workload](${CHART})`, '']
      : []),
    table(
      ['workload', 'store', 'ops/s', '× classic-level', 'found %', 'peak RSS MiB', 'live JS MiB'],
      speedRows,
    ),
    '',
    ...(syncRows.length === 0
      ? []
      : [
          `Durable puts (\`{ sync: true }\`; lmdb-js: awaiting the put's \`flushed\`; @wal/core: \`append(key ‖ value, { wait: 'durable' })\`, the log under @wal/lsm without the store):`,
          '',
          table(
            ['writers', 'store', 'puts/s', '× classic-level', 'p50 ms', 'p99 ms', 'peak RSS MiB'],
            syncRows,
          ),
          '',
        ]),
    ...(writeRows.length === 0
      ? []
      : [
          "Write amplification: bytes the child process sent towards the disk (`write_bytes` of /proc/self/io, every thread, from before open to after close, so it includes what open and close write: a reopened LevelDB writes the log it replays into a table) per byte of keys and values put. The kernel counts a page when the process dirties it, so a page written again before the kernel writes it back counts once (lmdb-js rewrites its pages in place) and one written back in between (after an fsync) counts again; the file system is synced before each child. Bytes on disk: allocated blocks of the store's directory after close.",
          '',
          table(['workload', 'store', 'write amplification', 'MiB on disk'], writeRows),
          '',
        ]),
    targets.length > 0
      ? table(
          ['target', 'measured', 'verdict', 'note'],
          targets.map((t) => [t.name, t.measured, t.pass ? 'PASS' : 'FAIL', t.note]),
        )
      : '(no targets: @wal/lsm or classic-level was left out)',
    '',
    `Workloads: ${WORKLOADS.map((w) => `\`${w}\`: ${WORKLOAD_TEXT[w]}`).join('; ')}.`,
    ...(checks.length === 0
      ? []
      : [
          '',
          "Checks (a failed one fails the run): after each durable-put run the store is closed, reopened, and every key put is read back; it must hold its last put's value (each value carries its put's number; a key with two puts in flight at once may hold either). @wal/core's bare log has no reads and is not checked here (`bench` checks its reopened log).",
          '',
          ...checks.map((c) => `- ${checkLine(c)}`),
        ]),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  for (const check of checks) process.stderr.write(`${checkLine(check)}\n`);
  for (const t of targets) {
    process.stderr.write(
      `${t.pass ? 'PASS' : 'FAIL'}  ${t.name}: ${t.measured}${t.note === '' ? '' : ` (${t.note})`}\n`,
    );
  }
  failedTargets(targets.filter((t) => !t.pass).length, targets.length, failedChildren, checks);
  const dir = reportDirectory();
  if (dir !== undefined) {
    const path = join(dir, 'BENCHMARKS.md');
    await writeSection(path, 'lsm', lines.join('\n'));
    process.stderr.write(`wrote the LSM section of ${path}\n`);
    if (charted.length > 0) {
      const svg = join(dir, CHART);
      await writeFile(
        svg,
        ratioChart(
          `@wal/lsm and its peers against classic-level (${int(keys)} keys${quick ? ', quick run' : ''})`,
          charted.map((s) => STORE_LABELS[s]),
          chartGroups,
        ),
      );
      process.stderr.write(`wrote ${svg}\n`);
    }
  }
}

if (process.argv[2] === '--child') {
  const job = JSON.parse(process.argv[3]!) as Job;
  const result = await runJob(job);
  process.send!(result, () => process.exit(0));
} else {
  await main();
}
