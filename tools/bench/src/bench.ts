/**
 * The benchmark suite of @wal (issue #9): every configuration and repetition
 * in a fresh child process, on a real disk, against references measured in
 * the same run; results as JSON, Markdown and an SVG chart.
 *
 * Usage: node dist/src/bench.js [--quick] [--dir=PATH] [--reps=N] [--seconds=S]
 *   [--only=durable,buffered,replay,memory,micro] [--ks=1,4,16,64,256] [--out=DIR] [--child-timeout=S]
 * The directory may also come from WAL_BENCH_DIR; default: `.bench/` at the
 * repository root. Output goes to `docs/` at the repository root (--out).
 * The durable section's better-sqlite3 peer is installed on demand under
 * `<dir>/peers` (it compiles from source; the repository's install does not
 * build it); when that fails, the section runs without it.
 *
 * Run: `./pnpm bench` (builds first) or `./pnpm bench -- --quick`.
 */
import { fork } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Job } from './child.js';
import {
  DURABLE_SYSTEMS,
  type DurableRun,
  type DurableSystem,
  type FsyncFloorRun,
  WARM_UP_SECONDS,
} from './committers.js';
import { Progress } from './progress.js';
import { type Results, writeReports } from './report.js';
import {
  ChildTimeoutError,
  checkDisk,
  DEFAULT_CHILD_TIMEOUT_SECONDS,
  describeDisk,
  freeBytes,
  installSqlite,
  killAfter,
} from './shared.js';
import {
  type BufferedResult,
  type BufferedSystem,
  type MemoryResult,
  type MicroResult,
  type PreparedLog,
  REPLAY_SYSTEMS,
  type ReplayResult,
  type ReplaySystem,
  recordCount,
} from './workloads.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const SECTIONS = ['durable', 'buffered', 'replay', 'memory', 'micro'] as const;
type Section = (typeof SECTIONS)[number];
/** The K at which each repetition also measures the fsync floor of the disk, in the rotation. */
const FLOOR_K = 64;
/** What runs in the durable rotation: the contenders and, at {@link FLOOR_K}, the fsync floor. */
type DurableJob = DurableSystem | 'fsync-floor';

export interface Settings {
  readonly quick: boolean;
  readonly root: string;
  readonly out: string;
  readonly reps: number;
  readonly seconds: number;
  readonly ks: readonly number[];
  /** Where peers installed on demand live. */
  readonly peers: string;
  readonly bufferedBytes: number;
  readonly bufferedSizes: readonly number[];
  /** Extra buffered runs of a fixed record count (issue #19: 1 M records of 100 B). */
  readonly bufferedCounts: ReadonlyArray<{ readonly size: number; readonly records: number }>;
  readonly replayBytes: number;
  readonly replaySizes: readonly number[];
  readonly memoryBytes: number;
  readonly memorySmallBytes: number;
  readonly memoryRecord: number;
  readonly microOperations: number;
  readonly only: ReadonlySet<Section>;
  /** Seconds a child may run before it is killed (a hung child fails the run). */
  readonly childTimeout: number;
}

function parseArgs(argv: readonly string[]): Settings {
  let root = process.env.WAL_BENCH_DIR;
  const repo = fileURLToPath(new URL('../../../../', import.meta.url));
  let out = join(repo, 'docs');
  const quick = argv.includes('--quick');
  let reps = quick ? 2 : 3;
  let seconds = quick ? 0.5 : 2;
  let only = new Set<Section>(SECTIONS);
  let ks = [1, 4, 16, 64, 256];
  let childTimeout = Number(process.env.WAL_BENCH_CHILD_TIMEOUT || DEFAULT_CHILD_TIMEOUT_SECONDS);
  for (const arg of argv) {
    if (arg === '--' || arg === '--quick') continue;
    const match = /^--(dir|out|reps|seconds|only|ks|child-timeout)=(.+)$/.exec(arg);
    if (match === null) throw new Error(`unknown option ${arg}`);
    const value = match[2]!;
    if (match[1] === 'dir') root = value;
    else if (match[1] === 'out') out = value;
    else if (match[1] === 'reps') reps = Math.max(1, Math.round(Number(value)));
    else if (match[1] === 'seconds') seconds = Number(value);
    else if (match[1] === 'child-timeout') childTimeout = Number(value);
    else if (match[1] === 'ks') {
      ks = value.split(',').map(Number);
      if (!ks.every((k) => Number.isInteger(k) && k > 0))
        throw new Error('--ks: positive integers');
    } else {
      only = new Set();
      for (const name of value.split(',')) {
        if (!(SECTIONS as readonly string[]).includes(name))
          throw new Error(`unknown section ${name}`);
        only.add(name as Section);
      }
    }
  }
  if (!Number.isFinite(seconds) || seconds <= 0) throw new Error('--seconds must be positive');
  if (!Number.isFinite(childTimeout) || childTimeout <= 0)
    throw new Error(
      '--child-timeout (or WAL_BENCH_CHILD_TIMEOUT) must be a positive number of seconds',
    );
  root ??= join(repo, '.bench');
  // pnpm runs the script in tools/bench: relative paths are taken from where it was invoked.
  const cwd = process.env.INIT_CWD ?? process.cwd();
  return {
    quick,
    root: resolve(cwd, root),
    out: resolve(cwd, out),
    reps,
    seconds,
    ks,
    peers: join(resolve(cwd, root), 'peers'),
    bufferedBytes: quick ? 64 * MiB : GiB,
    bufferedSizes: [100, 4096, 65536],
    bufferedCounts: [{ size: 100, records: 1_000_000 }],
    replayBytes: quick ? 64 * MiB : GiB,
    replaySizes: [100, 4096],
    memoryBytes: quick ? 512 * MiB : 5 * GiB,
    memorySmallBytes: quick ? 64 * MiB : 512 * MiB,
    memoryRecord: 4096,
    microOperations: quick ? 300_000 : 2_000_000,
    only,
    childTimeout,
  };
}

// ---------------------------------------------------------------- child processes

const CHILD = fileURLToPath(new URL('./child.js', import.meta.url));

/**
 * Runs `job` in a fresh process; resolves with its result. A child still
 * running after `timeoutSeconds` is killed and fails the run, named.
 */
function runChild<T>(job: Job, timeoutSeconds: number): Promise<T> {
  return new Promise((done, fail) => {
    const child = fork(CHILD, [JSON.stringify(job)], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      execArgv: [],
    });
    const limit = killAfter(child, timeoutSeconds);
    let answer: { ok: boolean; result?: unknown; error?: string } | undefined;
    child.on('message', (message) => {
      answer = message as typeof answer;
    });
    child.on('error', fail);
    child.on('exit', (code, signal) => {
      if (limit.expired())
        fail(new ChildTimeoutError(`${job.kind} job ${JSON.stringify(job)}`, timeoutSeconds));
      else if (answer?.ok === true) done(answer.result as T);
      else
        fail(
          new Error(
            `${job.kind} job failed (exit ${code ?? signal}): ${answer?.error ?? 'no answer'}\n${JSON.stringify(job)}`,
          ),
        );
    });
  });
}

// ---------------------------------------------------------------- plan

/**
 * Preallocated size of the reference file: more than any run writes, the
 * untimed warm-up included (it appends to the same file), at 1 M commits/s
 * of 108-byte frames (above every contender measured so far at K=256).
 */
function preallocateBytes(settings: Settings): number {
  return Math.ceil(((WARM_UP_SECONDS + settings.seconds) * 1_000_000 * 108) / MiB) * MiB;
}

/** Rough seconds per job, for the progress bar only. */
const estimate = {
  durable: (s: Settings) => s.seconds + 0.6,
  floor: (s: Settings) => 2 * s.seconds + 0.8,
  buffered: (size: number, bytes: number) => 0.4 + bytes / (size < 1000 ? 200 : 800) / MiB,
  prepare: (s: Settings, size: number) => 0.4 + s.replayBytes / (size < 1000 ? 200 : 800) / MiB,
  replay: (s: Settings, size: number) => 0.4 + s.replayBytes / (size < 1000 ? 100 : 1000) / MiB,
  memory: (bytes: number) => 0.4 + bytes / (500 * MiB),
  micro: (s: Settings) => 1 + s.microOperations / 200_000,
};

/** The command as run, without the directories passed (they are machine paths). */
function commandLine(argv: readonly string[]): string {
  const args = argv
    .filter((arg) => arg !== '--')
    .map((arg) => arg.replace(/^--(dir|out)=.*$/, '--$1=<$1>'));
  return `pnpm bench${args.length > 0 ? ` -- ${args.join(' ')}` : ''}`;
}

/** `items` rotated left by `by`: repetition r starts with a different contender. */
function rotate<T>(items: readonly T[], by: number): T[] {
  const shift = by % items.length;
  return [...items.slice(shift), ...items.slice(0, shift)];
}

/** Bytes of dirty and writeback pages (Linux /proc/meminfo), or 0 when unknown. */
async function dirtyBytes(): Promise<number> {
  try {
    const info = await readFile('/proc/meminfo', 'utf8');
    let kib = 0;
    for (const match of info.matchAll(/^(Dirty|Writeback):\s+(\d+) kB$/gm)) kib += Number(match[2]);
    return kib * 1024;
  } catch {
    return 0;
  }
}

/**
 * Waits (at most `maxSeconds`) until the kernel has written back the dirty
 * pages left by the previous configuration, so that the next one does not
 * pay for its writeback.
 */
async function settle(maxSeconds = 15): Promise<void> {
  const deadline = Date.now() + maxSeconds * 1000;
  while ((await dirtyBytes()) > 32 * MiB && Date.now() < deadline) {
    await new Promise((done) => setTimeout(done, 100));
  }
}

async function main(): Promise<void> {
  const settings = parseArgs(process.argv.slice(2));
  await mkdir(settings.root, { recursive: true });
  const fsName = await checkDisk(settings.root);
  const disk = await describeDisk(settings.root);
  const notes: string[] = [];
  const free = await freeBytes(settings.root);
  let memoryBytes = settings.memoryBytes;
  const needed = memoryBytes + 2 * Math.max(settings.replayBytes, settings.bufferedBytes) + GiB;
  if (settings.only.has('memory') && free < needed) {
    memoryBytes = Math.max(settings.memorySmallBytes * 2, Math.floor((free - GiB) / 2 / GiB) * GiB);
    notes.push(
      `Only ${(free / GiB).toFixed(1)} GiB free in the bench directory: the memory run appends ${(memoryBytes / GiB).toFixed(1)} GiB instead of ${(settings.memoryBytes / GiB).toFixed(1)} GiB.`,
    );
  }
  const base = await mkdtemp(join(settings.root, 'run-'));
  let dirs = 0;
  const fresh = async (): Promise<string> => {
    const dir = join(base, `c${dirs++}`);
    await mkdir(dir);
    return dir;
  };
  const drop = async (dir: string): Promise<void> => {
    await rm(dir, { recursive: true, force: true });
    await settle();
  };
  const load = (): number[] => loadavg().map((value) => Math.round(value * 100) / 100);
  await settle();
  const started = Date.now();
  const loadStart = load();
  const s = settings;
  const has = (section: Section): boolean => s.only.has(section);

  let total = 0;
  if (has('durable')) {
    total += s.reps * s.ks.length * DURABLE_SYSTEMS.length * estimate.durable(s);
    if (s.ks.includes(FLOOR_K)) total += s.reps * estimate.floor(s);
  }
  const bufferedRuns = [
    ...s.bufferedSizes.map((size) => ({ size, totalBytes: s.bufferedBytes })),
    ...s.bufferedCounts.map(({ size, records }) => ({ size, totalBytes: size * records })),
  ];
  if (has('buffered'))
    for (const run of bufferedRuns)
      total += s.reps * 3 * estimate.buffered(run.size, run.totalBytes);
  if (has('replay'))
    for (const size of s.replaySizes)
      total +=
        s.reps * (estimate.prepare(s, size) + REPLAY_SYSTEMS.length * estimate.replay(s, size));
  if (has('memory'))
    total += 2 * (estimate.memory(memoryBytes) + estimate.memory(s.memorySmallBytes));
  if (has('micro')) total += estimate.micro(s);
  const progress = new Progress(total);
  progress.log(
    `@wal benchmarks (${s.quick ? 'quick' : 'full'}): ${base} on ${fsName}; load average ${loadStart.join(' ')}`,
  );

  const results: Results = {
    meta: {
      date: new Date().toISOString(),
      mode: s.quick ? 'quick' : 'full',
      command: commandLine(process.argv.slice(2)),
      node: process.version,
      cpu: cpus()[0]?.model.trim() ?? 'unknown CPU',
      cpus: cpus().length,
      memoryGiB: Math.round(totalmem() / GiB),
      // The version only: a vendor suffix of the release string says nothing about speed.
      kernel: /^\d+\.\d+(\.\d+)?/.exec(release())?.[0] ?? release(),
      fileSystem: disk.fsType ?? fsName,
      disk: disk.device ?? 'unknown device',
      loadStart,
      loadEnd: [],
      seconds: 0,
      settings: {
        reps: s.reps,
        durableSeconds: s.seconds,
        ks: s.ks,
        bufferedBytes: s.bufferedBytes,
        bufferedCounts: s.bufferedCounts,
        replayBytes: s.replayBytes,
        memoryBytes,
        memorySmallBytes: s.memorySmallBytes,
        memoryRecord: s.memoryRecord,
        microOperations: s.microOperations,
      },
      notes,
    },
    durable: [],
    fsyncFloor: [],
    buffered: [],
    replay: [],
    memory: [],
    micro: undefined,
  };

  let systems = DURABLE_SYSTEMS;
  if (has('durable')) {
    try {
      installSqlite(s.peers);
    } catch (error) {
      systems = systems.filter((system) => system !== 'sqlite');
      notes.push(`better-sqlite3 could not be installed, so it is left out: ${String(error)}`);
    }
  }

  try {
    if (has('durable')) {
      const cells = new Map<string, DurableRun[]>();
      const preallocate = preallocateBytes(s);
      for (let rep = 0; rep < s.reps; rep++) {
        for (const k of s.ks) {
          const jobs: DurableJob[] = k === FLOOR_K ? [...systems, 'fsync-floor'] : [...systems];
          for (const system of rotate(jobs, rep)) {
            progress.step(`durable rep ${rep + 1}/${s.reps} K=${k} ${system}`);
            const dir = await fresh();
            if (system === 'fsync-floor') {
              const floor = await runChild<FsyncFloorRun>(
                {
                  kind: 'fsync-floor',
                  seconds: s.seconds,
                  dir,
                },
                s.childTimeout,
              );
              await drop(dir);
              results.fsyncFloor.push(floor);
              progress.advance(estimate.floor(s));
              continue;
            }
            const run = await runChild<DurableRun>(
              {
                kind: 'durable',
                system,
                k,
                seconds: s.seconds,
                preallocate,
                dir,
                peers: s.peers,
              },
              s.childTimeout,
            );
            await drop(dir);
            const key = `${system}/${k}`;
            cells.set(key, [...(cells.get(key) ?? []), run]);
            progress.advance(estimate.durable(s));
          }
        }
      }
      for (const k of s.ks)
        for (const system of systems)
          results.durable.push({ system, k, runs: cells.get(`${system}/${k}`) ?? [] });
    }

    if (has('buffered')) {
      const systems: BufferedSystem[] = ['wal', 'framing', 'raw'];
      const cells = new Map<string, BufferedResult[]>();
      for (let rep = 0; rep < s.reps; rep++) {
        for (const { size, totalBytes } of bufferedRuns) {
          for (const system of rotate(systems, rep)) {
            progress.step(
              `buffered rep ${rep + 1}/${s.reps} ${size} B × ${recordCount(size, totalBytes)} ${system}`,
            );
            const dir = await fresh();
            const run = await runChild<BufferedResult>(
              {
                kind: 'buffered',
                system,
                size,
                totalBytes,
                dir,
              },
              s.childTimeout,
            );
            await drop(dir);
            const key = `${system}/${size}/${totalBytes}`;
            cells.set(key, [...(cells.get(key) ?? []), run]);
            progress.advance(estimate.buffered(size, totalBytes));
          }
        }
      }
      for (const { size, totalBytes } of bufferedRuns)
        for (const system of systems)
          results.buffered.push({
            system,
            size,
            totalBytes,
            runs: cells.get(`${system}/${size}/${totalBytes}`) ?? [],
          });
    }

    if (has('replay')) {
      const systems = REPLAY_SYSTEMS;
      for (const size of s.replaySizes) {
        const cells = new Map<ReplaySystem, ReplayResult[]>();
        let log: PreparedLog | undefined;
        for (let rep = 0; rep < s.reps; rep++) {
          progress.step(`replay rep ${rep + 1}/${s.reps} ${size} B: writing the log`);
          const dir = await fresh();
          log = await runChild<PreparedLog>(
            {
              kind: 'prepare',
              size,
              totalBytes: s.replayBytes,
              dir,
            },
            s.childTimeout,
          );
          progress.advance(estimate.prepare(s, size));
          await settle();
          for (const system of rotate(systems, rep)) {
            progress.step(`replay rep ${rep + 1}/${s.reps} ${size} B ${system}`);
            const run = await runChild<ReplayResult>(
              {
                kind: 'replay',
                system,
                logBytes: log.bytes,
                dir,
              },
              s.childTimeout,
            );
            // Its records and bytes against the log's: a check of the report (runChecks).
            cells.set(system, [...(cells.get(system) ?? []), run]);
            progress.advance(estimate.replay(s, size));
          }
          await drop(dir);
        }
        for (const system of systems)
          results.replay.push({ system, size, log: log!, runs: cells.get(system) ?? [] });
      }
    }

    if (has('memory')) {
      for (const bytes of [s.memorySmallBytes, memoryBytes]) {
        const dir = await fresh();
        for (const phase of ['append', 'recover'] as const) {
          progress.step(`memory ${phase} ${(bytes / GiB).toFixed(2)} GiB`);
          const run = await runChild<MemoryResult>(
            {
              kind: 'memory',
              phase,
              size: s.memoryRecord,
              totalBytes: bytes,
              dir,
            },
            s.childTimeout,
          );
          results.memory.push({ phase, totalBytes: bytes, size: s.memoryRecord, run });
          progress.advance(estimate.memory(bytes));
        }
        await drop(dir);
      }
    }

    if (has('micro')) {
      progress.step('micro');
      results.micro = await runChild<MicroResult>(
        { kind: 'micro', operations: s.microOperations },
        s.childTimeout,
      );
      progress.advance(estimate.micro(s));
    }
  } finally {
    progress.finish();
    await rm(base, { recursive: true, force: true });
  }
  results.meta.loadEnd = load();
  results.meta.seconds = Math.round((Date.now() - started) / 100) / 10;
  const written = await writeReports(results, s.out);
  process.stderr.write(
    `done in ${results.meta.seconds} s; load average at end ${results.meta.loadEnd.join(' ')}\n`,
  );
  for (const path of written) process.stderr.write(`wrote ${path}\n`);
}

export type { DurableSystem };

try {
  await main();
} catch (error) {
  console.error(error instanceof Error ? (error.stack ?? error.message) : error);
  process.exitCode = 1;
}
