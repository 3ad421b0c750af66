/**
 * `bench:threads`: a log shared with worker threads (`Wal.share`,
 * `SharedWal`) against the single-thread log, same run, interleaved, each
 * run in a fresh child process, on a real disk.
 *
 * - Buffered appends: `--records` (2 M) records of 100 B, appended with
 *   back-pressure (`if (!writable) await drained()`), by the main thread of
 *   an unshared log (`1 thread (unshared)`), or split evenly across 1, 2 and
 *   4 worker threads of a shared log; timed until the last record is
 *   `written`. Reference: raw `fs.writeSync` of 1 MiB chunks of the same
 *   byte count (the write bandwidth).
 * - Durable commits: K = 64 committers, each awaiting its 100-byte record's
 *   durability before its next one, for `--seconds` after 0.5 s of the same
 *   untimed: all in the main thread of an unshared log, or split evenly
 *   across 1, 2 and 4 worker threads.
 *
 * - The coordination-free reference (a bound for any shared design, no
 *   shared log): 1 and 2 worker threads framing and writing their own
 *   chunks of one file (buffered), 2 worker threads each committing to a
 *   log of its own (durable: two unshared logs); timed from when
 *   every thread is ready. When a target fails and this bound falls short of
 *   it too, no sharing protocol can meet it on this machine.
 *
 * Every run reopens its log and checks that it holds exactly the records
 * appended (CHECK lines; a failed check fails the run).
 *
 * Usage: node dist/src/threads.js [--dir=PATH] [--seconds=S] [--reps=N]
 *          [--records=N] [--quick] [--out=DIR|-] [--child-timeout=S]
 * Prints a Markdown report and puts it in DIR/BENCHMARKS.md (its own
 * section; `docs/` by default; `-`: nowhere). Exits 1 when a target or a
 * check fails.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { SharedWal, type SharedWalHandle, Wal } from '@wal/core';
import { errorCode } from '@wal/errors';
import { recordsInLog } from './committers.js';
import {
  type Check,
  checkEqual,
  checkLine,
  dataDirectory,
  failedTargets,
  fixed,
  frameInto,
  inChild,
  int,
  median,
  now,
  option,
  provenance,
  reportDirectory,
  spread,
  table,
  writeSection,
} from './shared.js';

const script = fileURLToPath(import.meta.url);
const SIZE = 100;
const FRAME = 8 + SIZE;
const K = 64;
/** The single-thread log is 0; 1, 2, 4 are worker threads of a shared log. */
const THREADS = [0, 1, 2, 4];

interface BufferedJob {
  readonly kind: 'buffered';
  readonly threads: number;
  readonly records: number;
  readonly dir: string;
}
interface DurableJob {
  readonly kind: 'durable';
  readonly threads: number;
  readonly seconds: number;
  readonly dir: string;
}
interface RawJob {
  readonly kind: 'raw';
  readonly records: number;
  readonly dir: string;
}
/**
 * The coordination-free reference (a bound, no shared log): `threads` worker
 * threads, each framing its own records and writing them to its own range
 * of one file, with no reservation, watermark or copy between threads.
 * Buffered: each frames into its own 1 MiB buffer and `writeSync`s it to
 * its own chunks (chunk numbers `t`, `t + threads`, …). Durable: each opens
 * a log of its own (an unshared @wal/core log, in its own directory) and runs
 * `K / threads` committers on it: the single-thread log's whole commit path,
 * twice, with nothing between the threads.
 */
interface FreeJob {
  readonly kind: 'free';
  readonly mode: 'buffered' | 'durable';
  readonly threads: number;
  readonly records: number;
  readonly seconds: number;
  readonly dir: string;
}
type Job = BufferedJob | DurableJob | RawJob | FreeJob;

interface Result {
  readonly records: number;
  readonly seconds: number;
  /** CPU seconds of the whole process (every thread) in the window. */
  readonly cpuSeconds: number;
  /** Records the reopened log holds (0 for the raw reference). */
  readonly reopened: number;
}

/** What a worker thread of a run does. */
interface ThreadJob {
  readonly handle: SharedWalHandle;
  readonly kind: 'buffered' | 'durable';
  readonly records: number;
  readonly committers: number;
  /** Int32Array: [0] go (1 warm-up, 2 timed, 3 stop), [1] commits in the timed window. */
  readonly control: SharedArrayBuffer;
}

/** What a worker thread of a coordination-free run does ({@link FreeJob}). */
interface FreeThreadJob {
  readonly free: true;
  readonly mode: 'buffered' | 'durable';
  readonly path: string;
  readonly dir: string;
  readonly index: number;
  readonly threads: number;
  readonly records: number;
  readonly committers: number;
  /** Int32Array: [0] go (0 wait, 1 warm-up or go, 2 timed, 3 stop), [1] commits in the timed window. */
  readonly control: SharedArrayBuffer;
}

// ---------------------------------------------------------------- worker thread

/**
 * `committers` loops each awaiting `commit()` until `state[0]` is 3 (stop),
 * counting in `state[1]` the commits that end while it is 2 (timed).
 */
async function commitUntilStopped(
  commit: () => Promise<unknown>,
  state: Int32Array,
  committers: number,
): Promise<void> {
  const committer = async (): Promise<void> => {
    while (Atomics.load(state, 0) !== 3) {
      await commit();
      if (Atomics.load(state, 0) === 2) Atomics.add(state, 1, 1);
    }
  };
  await Promise.all(Array.from({ length: committers }, committer));
}

/**
 * Appends with back-pressure as a thread of a shared log must: another
 * thread may take the room between `writable` and the append (`WAL_BUSY`,
 * nothing appended): then wait and try again. `undefined` when it must wait.
 */
function appendIfRoom(log: SharedWal, payload: Uint8Array): number | undefined {
  if (!log.writable) return undefined;
  try {
    return log.append(payload);
  } catch (error) {
    if (errorCode(error) !== 'WAL_BUSY') throw error;
    return undefined;
  }
}

/** Resolves once `state[0]` leaves 0 (polled: the wait is untimed). */
async function whenStarted(state: Int32Array): Promise<void> {
  while (Atomics.load(state, 0) === 0) await new Promise((resolve) => setTimeout(resolve, 1));
}

async function freeThreadMain(job: FreeThreadJob): Promise<void> {
  const payload = new Uint8Array(SIZE).fill(7);
  const control = new Int32Array(job.control);
  if (job.mode === 'buffered') {
    const fd = openSync(job.path, 'r+');
    try {
      const chunkSize = 1024 * 1024;
      const buffer = new Uint8Array(chunkSize);
      parentPort!.postMessage('ready');
      await whenStarted(control);
      let chunk = job.index;
      let used = 0;
      const flush = (): void => {
        let done = 0;
        while (done < used)
          done += writeSync(fd, buffer, done, used - done, chunk * chunkSize + done);
        chunk += job.threads;
        used = 0;
      };
      for (let i = 0; i < job.records; i++) {
        if (used + FRAME > chunkSize) flush();
        used = frameInto(buffer, used, payload);
      }
      if (used > 0) flush();
    } finally {
      closeSync(fd);
    }
  } else {
    const wal = await Wal.open(join(job.dir, `log-${job.index}`));
    parentPort!.postMessage('ready');
    await whenStarted(control);
    await commitUntilStopped(
      () => wal.append(payload, { wait: 'durable' }),
      control,
      job.committers,
    );
    await wal.close();
  }
  parentPort!.postMessage('done');
}

async function threadMain(job: ThreadJob): Promise<void> {
  const log = SharedWal.attach(job.handle);
  const payload = new Uint8Array(SIZE).fill(7);
  const control = new Int32Array(job.control);
  if (job.kind === 'buffered') {
    let last = 0;
    for (let i = 0; i < job.records; i++) {
      let lsn = appendIfRoom(log, payload);
      while (lsn === undefined) {
        await log.drained();
        lsn = appendIfRoom(log, payload);
      }
      last = lsn;
    }
    await log.waitFor(last, 'written');
  } else {
    await commitUntilStopped(
      () => log.append(payload, { wait: 'durable' }),
      control,
      job.committers,
    );
  }
  log.detach();
  parentPort!.postMessage('done');
}

// ---------------------------------------------------------------- child

function startThreads(wal: Wal, job: Omit<ThreadJob, 'handle'>, count: number): Promise<void>[] {
  return Array.from({ length: count }, () => {
    const handle = wal.share();
    const worker = new Worker(script, {
      workerData: { ...job, handle },
      transferList: [handle.port],
    });
    return new Promise<void>((resolve, reject) => {
      worker.once('message', () => resolve());
      worker.once('error', reject);
    });
  });
}

const cpuOf = (from: NodeJS.CpuUsage): number => {
  const used = process.cpuUsage(from);
  return (used.user + used.system) / 1e6;
};

async function buffered(job: BufferedJob): Promise<Result> {
  const wal = await Wal.open(job.dir);
  const payload = new Uint8Array(SIZE).fill(7);
  const cpu = process.cpuUsage();
  const started = now();
  if (job.threads === 0) {
    let last = 0;
    for (let i = 0; i < job.records; i++) {
      if (!wal.writable) await wal.drained();
      last = wal.append(payload);
    }
    await wal.waitFor(last, 'written');
  } else {
    const per = Math.floor(job.records / job.threads);
    const control = new SharedArrayBuffer(8);
    await Promise.all(
      startThreads(wal, { kind: 'buffered', records: per, committers: 0, control }, job.threads),
    );
  }
  const seconds = (now() - started) / 1000;
  const cpuSeconds = cpuOf(cpu);
  const records =
    job.threads === 0 ? job.records : Math.floor(job.records / job.threads) * job.threads;
  await wal.close();
  return { records, seconds, cpuSeconds, reopened: await recordsInLog(job.dir) };
}

/**
 * The timed window of a durable run whose committers already run (`state[0]`
 * 1, warm-up): 0.5 s untimed, then `seconds` counted (`state[0]` 2, commits
 * in `state[1]`), then stop (3) and wait for `done`. CPU of the window only.
 */
async function durableWindow(
  state: Int32Array,
  seconds: number,
  done: Promise<unknown>,
): Promise<{ commits: number; seconds: number; cpuSeconds: number }> {
  await new Promise((resolve) => setTimeout(resolve, 500));
  const cpu = process.cpuUsage();
  const started = now();
  Atomics.store(state, 0, 2);
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  Atomics.store(state, 0, 3);
  const elapsed = (now() - started) / 1000;
  const commits = Atomics.load(state, 1);
  const cpuSeconds = cpuOf(cpu);
  await done;
  return { commits, seconds: elapsed, cpuSeconds };
}

async function durable(job: DurableJob): Promise<Result> {
  const wal = await Wal.open(job.dir);
  const payload = new Uint8Array(SIZE).fill(7);
  const control = new SharedArrayBuffer(8);
  const state = new Int32Array(control);
  Atomics.store(state, 0, 1);
  let done: Promise<unknown>;
  if (job.threads === 0) {
    done = commitUntilStopped(() => wal.append(payload, { wait: 'durable' }), state, K);
  } else {
    done = Promise.all(
      startThreads(
        wal,
        { kind: 'durable', records: 0, committers: K / job.threads, control },
        job.threads,
      ),
    );
  }
  const { commits, seconds, cpuSeconds } = await durableWindow(state, job.seconds, done);
  const appended = wal.tail / FRAME;
  await wal.close();
  // Every record appended, warm-up and stragglers included, is in the log:
  // `reopened` is 1 when so (the records of the window alone are not known).
  const reopened = (await recordsInLog(job.dir)) === appended ? 1 : 0;
  return { records: commits, seconds, cpuSeconds, reopened };
}

function raw(job: RawJob): Result {
  const chunk = new Uint8Array(1024 * 1024).fill(7);
  const total = job.records * FRAME;
  const fd = openSync(join(job.dir, 'raw'), 'w');
  const cpu = process.cpuUsage();
  const started = now();
  try {
    let at = 0;
    while (at < total) at += writeSync(fd, chunk, 0, Math.min(chunk.length, total - at), at);
  } finally {
    closeSync(fd);
  }
  return {
    records: job.records,
    seconds: (now() - started) / 1000,
    cpuSeconds: cpuOf(cpu),
    reopened: 0,
  };
}

/**
 * Runs the coordination-free reference ({@link FreeJob}). Timed from when
 * every thread is ready (started, file open, its range preallocated), so the
 * threads' start-up is left out: a bound generous to the reference.
 */
async function free(job: FreeJob): Promise<Result> {
  const path = join(job.dir, 'free');
  closeSync(openSync(path, 'w'));
  const control = new SharedArrayBuffer(8);
  const state = new Int32Array(control);
  const per = Math.floor(job.records / job.threads);
  const messages = Array.from({ length: job.threads }, (_, index) => {
    const data: FreeThreadJob = {
      free: true,
      mode: job.mode,
      path,
      dir: job.dir,
      index,
      threads: job.threads,
      records: per,
      committers: K / job.threads,
      control,
    };
    const worker = new Worker(script, { workerData: data });
    let ready: () => void = () => {};
    const readyNow = new Promise<void>((resolve) => {
      ready = resolve;
    });
    const done = new Promise<void>((resolve, reject) => {
      worker.on('message', (message) => {
        if (message === 'ready') ready();
        else resolve();
      });
      worker.once('error', reject);
    });
    return { readyNow, done };
  });
  await Promise.all(messages.map((m) => m.readyNow));
  const done = Promise.all(messages.map((m) => m.done));
  if (job.mode === 'buffered') {
    const cpu = process.cpuUsage();
    const started = now();
    Atomics.store(state, 0, 1);
    await done;
    const seconds = (now() - started) / 1000;
    return { records: per * job.threads, seconds, cpuSeconds: cpuOf(cpu), reopened: 0 };
  }
  Atomics.store(state, 0, 1);
  const { commits, seconds, cpuSeconds } = await durableWindow(state, job.seconds, done);
  return { records: commits, seconds, cpuSeconds, reopened: 0 };
}

async function child(job: Job): Promise<Result> {
  if (job.kind === 'buffered') return buffered(job);
  if (job.kind === 'durable') return durable(job);
  if (job.kind === 'free') return free(job);
  return raw(job);
}

// ---------------------------------------------------------------- runner

/** Threads of the coordination-free buffered reference. */
const FREE_BUFFERED_THREADS = [1, 2];
const freeLabel = (threads: number): string =>
  `${threads} worker thread${threads > 1 ? 's' : ''}, no coordination (a bound, no shared log)`;

const label = (threads: number): string =>
  threads === 0
    ? '1 thread (unshared log)'
    : `${threads} worker thread${threads > 1 ? 's' : ''} (shared log)`;

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const root = await dataDirectory();
  const seconds = Number(option('seconds') ?? (quick ? 1 : 2));
  const reps = Number(option('reps') ?? (quick ? 1 : 3));
  const records = Number(option('records') ?? (quick ? 500_000 : 2_000_000));
  const loadBefore = loadavg()[0]!;
  const bufferedRuns = new Map<number, Result[]>();
  const durableRuns = new Map<number, Result[]>();
  const rawRuns: Result[] = [];
  /** Coordination-free references: buffered with 1 and 2 threads, durable with 2. */
  const freeBuffered = new Map<number, Result[]>();
  const freeDurable: Result[] = [];
  let run = 0;
  const inDir = async <T>(what: string, job: (dir: string) => Job): Promise<T> => {
    const dir = join(root, `threads-bench-${process.pid}-${run++}`);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    process.stderr.write(`${what}\n`);
    try {
      return await inChild<T>(script, job(dir));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  };
  for (let rep = 0; rep < reps; rep++) {
    rawRuns.push(
      await inDir<Result>(`rep ${rep + 1}/${reps} raw writeSync`, (dir) => ({
        kind: 'raw',
        records,
        dir,
      })),
    );
    for (const threads of FREE_BUFFERED_THREADS) {
      const result = await inDir<Result>(
        `rep ${rep + 1}/${reps} buffered, ${freeLabel(threads)}`,
        (dir) => ({ kind: 'free', mode: 'buffered', threads, records, seconds, dir }),
      );
      freeBuffered.set(threads, [...(freeBuffered.get(threads) ?? []), result]);
    }
    freeDurable.push(
      await inDir<Result>(`rep ${rep + 1}/${reps} durable K=${K}, ${freeLabel(2)}`, (dir) => ({
        kind: 'free',
        mode: 'durable',
        threads: 2,
        records: 0,
        seconds,
        dir,
      })),
    );
    for (const threads of THREADS) {
      const buffered = await inDir<Result>(
        `rep ${rep + 1}/${reps} buffered, ${label(threads)}`,
        (dir) => ({
          kind: 'buffered',
          threads,
          records,
          dir,
        }),
      );
      bufferedRuns.set(threads, [...(bufferedRuns.get(threads) ?? []), buffered]);
      const durable = await inDir<Result>(
        `rep ${rep + 1}/${reps} durable K=${K}, ${label(threads)}`,
        (dir) => ({
          kind: 'durable',
          threads,
          seconds,
          dir,
        }),
      );
      durableRuns.set(threads, [...(durableRuns.get(threads) ?? []), durable]);
    }
  }
  const loadAfter = loadavg()[0]!;

  const rate = (r: Result): number => r.records / r.seconds;
  const cpuPer = (r: Result): number => (r.cpuSeconds * 1e9) / r.records;
  const rates = (runs: readonly Result[] | undefined): number[] => (runs ?? []).map(rate);
  const bufferedRows = THREADS.map((threads) => {
    const runs = bufferedRuns.get(threads) ?? [];
    return [label(threads), spread(rates(runs), int), spread(runs.map(cpuPer), int)];
  });
  const rawRate = median(rates(rawRuns));
  for (const threads of FREE_BUFFERED_THREADS) {
    const runs = freeBuffered.get(threads) ?? [];
    bufferedRows.push([
      freeLabel(threads),
      spread(rates(runs), int),
      spread(runs.map(cpuPer), int),
    ]);
  }
  bufferedRows.push([
    'raw `fs.writeSync`, 1 MiB chunks (same bytes)',
    spread(rates(rawRuns), int),
    '–',
  ]);
  const durableRows = THREADS.map((threads) => {
    const runs = durableRuns.get(threads) ?? [];
    return [
      label(threads),
      spread(rates(runs), int),
      spread(
        runs.map((r) => cpuPer(r) / 1000),
        fixed(2),
      ),
    ];
  });

  durableRows.push([
    freeLabel(2),
    spread(rates(freeDurable), int),
    spread(
      freeDurable.map((r) => cpuPer(r) / 1000),
      fixed(2),
    ),
  ]);
  const cpuOne = median((bufferedRuns.get(1) ?? []).map(cpuPer));
  const cpuUnshared = median((bufferedRuns.get(0) ?? []).map(cpuPer));
  const durableCpuOne = median((durableRuns.get(1) ?? []).map(cpuPer)) / 1000;
  const durableCpuUnshared = median((durableRuns.get(0) ?? []).map(cpuPer)) / 1000;
  const one = median(rates(bufferedRuns.get(0)));
  const two = median(rates(bufferedRuns.get(2)));
  const bar = Math.min(1.5 * one, 0.9 * rawRate);
  const durableOne = median(rates(durableRuns.get(0)));
  const durableTwo = median(rates(durableRuns.get(2)));
  const freeTwo = median(rates(freeBuffered.get(2)));
  const freeOne = median(rates(freeBuffered.get(1)));
  const freeDurableTwo = median(rates(freeDurable));
  /** What the coordination-free reference says of a target the shared log missed. */
  const bound = (reached: number, needed: number, what: string): string =>
    reached < needed
      ? ` (out of reach on this machine: ${what} reached ${int(reached)}, ${fixed(2)(reached / needed)}× what the target needs)`
      : ` (${what} reached ${int(reached)}, ${fixed(2)(reached / needed)}× what the target needs: within reach of a design without coordination)`;
  const targets: [string, string, string, 'PASS' | 'FAIL'][] = [
    [
      'buffered appends, 2 threads ≥ min(1.5× one thread, 0.9× raw write bandwidth)',
      `${int(two)} vs ${int(bar)} records/s (one thread ${int(one)}; raw ${int(rawRate)} records of ${FRAME} B/s)${two >= bar ? '' : bound(freeTwo, bar, `2 threads with no coordination at all (each framing and writing its own chunks; 1 such thread: ${int(freeOne)})`)}`,
      fixed(2)(two / bar),
      two >= bar ? 'PASS' : 'FAIL',
    ],
    [
      `durable commits, K = ${K} split across 2 threads ≥ 1.0× the single-thread log`,
      `${int(durableTwo)} vs ${int(durableOne)} commits/s${durableTwo >= durableOne ? '' : bound(freeDurableTwo, durableOne, '2 threads with no coordination at all (each committing K/2 to an unshared log of its own)')}`,
      fixed(2)(durableTwo / durableOne),
      durableTwo >= durableOne ? 'PASS' : 'FAIL',
    ],
  ];
  const checks: Check[] = [
    checkEqual(
      'buffered: records in the reopened log = records appended',
      THREADS.flatMap((threads) =>
        (bufferedRuns.get(threads) ?? []).map(
          (r, rep) => [r.reopened, r.records, `${label(threads)}, repetition ${rep + 1}`] as const,
        ),
      ),
    ),
    checkEqual(
      'durable: the reopened log holds every record appended (warm-up and stragglers too)',
      THREADS.flatMap((threads) =>
        (durableRuns.get(threads) ?? []).map(
          (r, rep) => [r.reopened, 1, `${label(threads)}, repetition ${rep + 1}`] as const,
        ),
      ),
    ),
  ];

  const header = await provenance('src/threads.ts', 'bench:threads', root, [loadBefore, loadAfter]);
  const lines = [
    '## One log, many threads (`Wal.share`)',
    '',
    ...header,
    '',
    `${SIZE}-byte records; ${reps} repetition(s) interleaved, each run in a fresh child process; cells are median (min–max). CPU is the child's \`process.cpuUsage()\` (every thread) divided by the records of the run. Buffered: ${int(records)} records appended with back-pressure, timed until the last is \`written\`. Durable: K = ${K} committers awaiting each record's durability, for ${seconds} s after 0.5 s untimed, all in the main thread of an unshared log or split evenly across the worker threads of a shared log (the main thread then only writes and commits). The rows “no coordination” are a bound, not a contender: worker threads that share nothing but the disk (buffered: each frames its records into its own 1 MiB buffer and writes it to its own chunks of one file; durable: each commits K/2 records at a time to an unshared log of its own, in its own directory), timed from when every thread is ready; no reservation, watermark, copy or wake-up between threads, which a shared log cannot do without.`,
    '',
    table(['buffered appends', 'records/s', 'CPU ns/record'], bufferedRows),
    '',
    table([`durable commits, K = ${K}`, 'commits/s', 'CPU µs/commit'], durableRows),
    '',
    table(
      ['target', 'measured', 'ratio', 'result'],
      targets.map(([a, b, c, d]) => [a, b, c, d === 'PASS' ? 'PASS' : '**FAIL**']),
    ),
    '',
    `Where the time goes, from the CPU columns of this run: a buffered record costs ${int(cpuOne)} ns of CPU through one worker thread of a shared log against ${int(cpuUnshared)} ns in the unshared log, and a durable commit ${fixed(2)(durableCpuOne)} µs against ${fixed(2)(durableCpuUnshared)} µs. Profiles of these workloads, taken apart from this run (\`node --cpu-prof\`, which profiles the worker thread too), put the worker's share in the append protocol: the compare-and-swap reservation and the slot's announcement on 64-bit shared words (each an \`Atomics\` call on a \`BigInt64Array\`, with a BigInt per value), the publication, the checks of the state and the slot's generation, on top of the framing and CRC every append does; the owner's share is the copy out of the ring and the writes. A durable commit also waits for two cross-thread wake-ups per round (the thread wakes the owner, the owner's published watermark wakes the thread through \`Atomics.waitAsync\`, tens of microseconds each here), where the single-thread log's committers are resumed by a promise in the same thread; the main-thread rows have none of these costs.`,
    '',
    `This machine has ${cpus().length} cores: the main thread (which copies every frame out of the shared ring and writes it) and the worker threads share them, so threads add framing capacity only while a core is free. With a core per thread, the threads' framing runs in parallel and the main thread's copy and writes bound the buffered rate; the durable rate stays bound by the wake-ups per round, which more cores do not shorten.`,
  ];
  const report = lines.join('\n');
  process.stdout.write(`${report}\n`);
  for (const check of checks) process.stdout.write(`${checkLine(check)}\n`);
  const out = reportDirectory();
  if (out !== undefined) await writeSection(join(out, 'BENCHMARKS.md'), 'threads', report);
  failedTargets(targets.filter((t) => t[3] !== 'PASS').length, targets.length, 0, checks);
}

if (!isMainThread) {
  if ((workerData as Partial<FreeThreadJob>).free === true) void freeThreadMain(workerData);
  else void threadMain(workerData as ThreadJob);
} else if (process.argv[2] === '--child') {
  const job = JSON.parse(process.argv[3]!) as Job;
  child(job).then(
    (result) => process.send!(result, () => process.exit(0)),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
} else {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
