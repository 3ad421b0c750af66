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
import { mkdir, mkdtemp, open, rm } from 'node:fs/promises';
import { cpus, loadavg, release } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HEADER_SIZE, Wal } from '@wal/core';
import { NodeFs } from '@wal/store';
import {
  type Committer,
  type DurableRun,
  gatheringCommitter,
  naiveCommitter,
  PAYLOAD_SIZE,
  recordsInLog,
  runCommitters,
  walCommitter,
} from './committers.js';
import {
  type Check,
  CountingFs,
  checkDisk,
  checkEqual,
  checkLine,
  failedTargets,
  fixed,
  frameInto,
  int,
  median,
  now,
  ratio,
  spread,
  table,
  writeAll,
} from './shared.js';

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

// ---------------------------------------------------------------- buffered appends

interface BufferedRun {
  /** Records per second of the append loop alone. */
  readonly loopRate: number;
  /** Records per second including the final sync. */
  readonly syncedRate: number;
  readonly writes: number;
  /** Records a reopen of the log finds after close (@wal/core only). */
  readonly reopened?: number;
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
  const reopened = await recordsInLog(dir);
  return {
    loopRate: records / ((looped - started) / 1000),
    syncedRate: records / ((synced - started) / 1000),
    writes,
    reopened,
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
    const checks: Check[] = [];
    if (settings.only !== 'buffered') checks.push(await durableSection(settings, fresh));
    if (settings.only !== 'durable') checks.push(await bufferedSection(settings, fresh));
    console.log(`load average at end: ${load()}`);
    console.log(
      'Cells: median of the repetitions (min–max); ratios: of the medians (range of the per-repetition ratios).',
    );
    console.log('');
    for (const check of checks) console.log(checkLine(check));
    failedTargets(0, 0, 0, checks);
  } finally {
    await rm(base, { recursive: true, force: true });
  }
}

/** Runs and prints the durable section; its check (every commit acknowledged found by a reopen). */
async function durableSection(settings: Settings, fresh: () => Promise<string>): Promise<Check> {
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
        `  durable rep ${rep + 1} ${config.name} K=${config.k}: ${int(result.commits / result.seconds)} commits/s, ${((result.fsyncs ?? Number.NaN) / result.commits).toFixed(3)} fsyncs/commit`,
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
            results.map((r) => (r.fsyncs ?? Number.NaN) / r.commits),
            fixed(3),
          ),
          spread(
            results.map((r) => (r.writes ?? Number.NaN) / r.commits),
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
  return checkEqual(
    '@wal/core durable: records found by reopening the log after close = commits acknowledged (every K and repetition)',
    durableConfigs.flatMap((config, c) =>
      config.name !== '@wal/core'
        ? []
        : durable[c]!.map(
            (run, rep) =>
              [
                run.recovered ?? Number.NaN,
                run.acknowledged ?? Number.NaN,
                `K=${config.k} repetition ${rep + 1}`,
              ] as const,
          ),
    ),
  );
}

/** Runs and prints the buffered section; its check (every record appended found by a reopen). */
async function bufferedSection(settings: Settings, fresh: () => Promise<string>): Promise<Check> {
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
  return checkEqual(
    '@wal/core buffered: records found by reopening the log after close = records appended',
    buffered[0]!.map(
      (run, rep) =>
        [run.reopened ?? Number.NaN, settings.records, `repetition ${rep + 1}`] as const,
    ),
  );
}

try {
  await main();
} catch (error) {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
}
