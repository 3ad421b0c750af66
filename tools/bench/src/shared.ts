/**
 * Pieces shared by the benchmarks: the disk check, an fsync-counting `Fs`,
 * frame writing for the hand-written references, timing and statistics, and
 * Markdown formatting.
 */
import { type ChildProcess, execFileSync, fork } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { type FileHandle, mkdir, readFile, realpath, statfs, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { cpus, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32c, HEADER_SIZE } from '@wal/core';
import type { Fs, FsFile, FsLock, OpenMode } from '@wal/store';

// ---------------------------------------------------------------- disk

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

/** Names the file system under `dir`; throws when it lives in memory (fsync is free there). */
export async function checkDisk(dir: string): Promise<string> {
  const { type } = await statfs(dir);
  const name = FS_TYPES.get(type) ?? `type 0x${type.toString(16)}`;
  if (MEMORY_FS.has(type)) {
    throw new Error(
      `${dir} is on ${name}: fsync costs nothing there. Pass a directory on a disk-backed file system (--dir, an argument or WAL_BENCH_DIR).`,
    );
  }
  return name;
}

/** Free bytes under `dir`. */
export async function freeBytes(dir: string): Promise<number> {
  const { bavail, bsize } = await statfs(dir);
  return bavail * bsize;
}

// ---------------------------------------------------------------- counting Fs

/** An Fs that counts the calls it passes to the real one. */
export class CountingFs implements Fs {
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
  /**
   * Passed on (the inner Fs has it: the bench wraps a NodeFs). An `O_DSYNC`
   * write flushes what it wrote as an fdatasync would: counted as one write
   * and one fdatasync.
   */
  pwriteDurable(file: FsFile, bytes: Uint8Array, position: number): Promise<number> {
    this.pwrites++;
    this.fdatasyncs++;
    return this.#inner.pwriteDurable!(file, bytes, position);
  }
  /** Passed on (the inner Fs has it: the bench wraps a NodeFs). */
  pwriteSync(file: FsFile, bytes: Uint8Array, position: number): number {
    this.pwrites++;
    return this.#inner.pwriteSync!(file, bytes, position);
  }
  /** Passed on (the inner Fs has it: the bench wraps a NodeFs). */
  fdatasyncSync(file: FsFile): void {
    this.fdatasyncs++;
    this.#inner.fdatasyncSync!(file);
  }
  ftruncate(file: FsFile, length: number): Promise<void> {
    return this.#inner.ftruncate(file, length);
  }
  size(file: FsFile): Promise<number> {
    return this.#inner.size(file);
  }
  links(file: FsFile): Promise<number> {
    return this.#inner.links(file);
  }
  realpath(path: string): Promise<string> {
    return this.#inner.realpath(path);
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

// ---------------------------------------------------------------- frames and writes

/** Writes `value` as a little-endian u32 at `at`. */
export function putU32(into: Uint8Array, at: number, value: number): void {
  into[at] = value;
  into[at + 1] = value >>> 8;
  into[at + 2] = value >>> 16;
  into[at + 3] = value >>> 24;
}

/** Reads a little-endian u32 at `at`. */
export function getU32(from: Uint8Array, at: number): number {
  return (from[at]! | (from[at + 1]! << 8) | (from[at + 2]! << 16) | (from[at + 3]! << 24)) >>> 0;
}

/**
 * Writes the frame of `payload` at `at` in `into`: [crc32c u32 LE][len u32 LE]
 * payload, the CRC over len ‖ payload. Plain Uint8Arrays, as the log stages
 * into, so both feed `crc32c` the same type. Returns the offset after it.
 */
export function frameInto(into: Uint8Array, at: number, payload: Uint8Array): number {
  putU32(into, at + 4, payload.length);
  into.set(payload, at + HEADER_SIZE);
  const end = at + HEADER_SIZE + payload.length;
  putU32(into, at, crc32c(into, at + 4, end));
  return end;
}

/** Writes all of `bytes` at `position`, looping over short writes. */
export async function writeAll(
  handle: FileHandle,
  bytes: Uint8Array,
  position: number,
): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.length - done, position + done);
    done += bytesWritten;
  }
}

// ---------------------------------------------------------------- timing and statistics

/**
 * CPU nanoseconds the main (event-loop) thread has run, from Linux's
 * `/proc/self/task/<pid>/schedstat`; undefined where that is unavailable.
 */
export function mainThreadCpuNs(): number | undefined {
  try {
    const text = readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8');
    const ns = Number(text.split(' ')[0]);
    return Number.isFinite(ns) ? ns : undefined;
  } catch {
    return undefined;
  }
}

/** Milliseconds from a monotonic clock. */
export const now = (): number => Number(process.hrtime.bigint()) / 1e6;

/**
 * The `q` quantile (0 ≤ q ≤ 1) of an ascending array by the nearest-rank
 * definition: the ⌈q·n⌉-th smallest of the n values (the smallest for q = 0),
 * so p99 of 100 latencies is the 99th smallest, not the largest. NaN when
 * the array is empty.
 *
 * @throws `RangeError` when `q` is outside [0, 1].
 */
export function quantile(sorted: Float64Array, q: number): number {
  if (!(q >= 0 && q <= 1)) throw new RangeError(`a quantile is in [0, 1], not ${q}`);
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  // q·n in binary floating point can land a hair above an integer (0.07 × 100
  // is 7.000000000000001): round it to 9 decimals before taking the ceiling.
  const rank = Math.ceil(Math.round(q * n * 1e9) / 1e9);
  return sorted[Math.min(n, Math.max(1, rank)) - 1]!;
}

/**
 * A figure the run checks against the value it must have, computed apart
 * from it (records recovered against commits acknowledged, bytes read back
 * against bytes appended, …): a figure that could not fail would show
 * nothing. A failed check fails the run like a failed target.
 */
export interface Check {
  readonly name: string;
  /** What the figure must be, computed independently of it. */
  readonly expected: number;
  /** What the run measured. */
  readonly actual: number;
  readonly pass: boolean;
  /** Where it went wrong when it failed (e.g. which repetition). */
  readonly detail?: string;
}

/**
 * The check that `actual` equals `expected` over every run of a group:
 * `pairs` holds each run's [actual, expected] and a label naming the run.
 * Its figures are the sums; it fails when any run differs (or none ran,
 * which would make it hold vacuously), naming the first such run.
 */
export function checkEqual(
  name: string,
  pairs: ReadonlyArray<readonly [actual: number, expected: number, run: string]>,
): Check {
  let actual = 0;
  let expected = 0;
  let wrong: string | undefined;
  for (const [a, e, run] of pairs) {
    actual += a;
    expected += e;
    if (a !== e && wrong === undefined) wrong = `${run}: ${a} instead of ${e}`;
  }
  if (pairs.length === 0) wrong = 'no run to check';
  return {
    name,
    expected,
    actual,
    pass: wrong === undefined,
    ...(wrong === undefined ? {} : { detail: wrong }),
  };
}

/** One line per check: `CHECK` or `CHECK FAILED`, its name, its figures. */
export function checkLine(check: Check): string {
  const figures = check.pass
    ? `${check.actual} as expected`
    : `${check.actual}, expected ${check.expected}${check.detail === undefined ? '' : ` (${check.detail})`}`;
  return `${check.pass ? 'CHECK' : 'CHECK FAILED'}  ${check.name}: ${figures}`;
}

/**
 * Ends the verdict lines of a command (the caller prints a {@link checkLine}
 * per check before it): a run with a failed target, a failed child or a
 * failed check is a failed run, with a last line saying so (naming the
 * failed checks) and exit code 1; the reports are written either way.
 */
export function failedTargets(
  failed: number,
  total: number,
  failedChildren = 0,
  checks: readonly Check[] = [],
): void {
  const failedChecks = checks.filter((c) => !c.pass);
  // A command with checks and no target (bench:replication) speaks of its checks only.
  const targetsToo = total > 0 || checks.length === 0;
  if (failed === 0 && failedChildren === 0 && failedChecks.length === 0) {
    const held = `all ${checks.length} checks held`;
    const passed = `all ${total} targets passed`;
    process.stderr.write(
      `${targetsToo ? passed : held}${targetsToo && checks.length > 0 ? `, ${held}` : ''}\n`,
    );
    return;
  }
  const parts = targetsToo ? [`${failed} of ${total} targets`] : [];
  if (failedChildren > 0) parts.push(`${failedChildren} child process(es) failed`);
  if (failedChecks.length > 0)
    parts.push(
      `${failedChecks.length} of ${checks.length} checks failed: ${failedChecks.map((c) => c.name).join('; ')}`,
    );
  process.stderr.write(`FAILED: ${parts.join('; ')}\n`);
  process.exitCode = 1;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Best of `rounds` timings of `body`, in nanoseconds per operation. */
export function nsPerOp(operations: number, rounds: number, body: () => void): number {
  let best = Number.POSITIVE_INFINITY;
  for (let round = 0; round < rounds; round++) {
    const started = process.hrtime.bigint();
    body();
    const elapsed = Number(process.hrtime.bigint() - started);
    best = Math.min(best, elapsed / operations);
  }
  return best;
}

// ---------------------------------------------------------------- formatting

/** "median (min–max)" of `values`, each formatted by `format`. */
export function spread(values: readonly number[], format: (value: number) => string): string {
  if (values.every(Number.isNaN)) return 'n/a';
  if (values.length === 1) return format(values[0]!);
  return `${format(median(values))} (${format(Math.min(...values))}–${format(Math.max(...values))})`;
}

/**
 * `values` against `refs` (same repetitions): the ratio of the medians, then
 * the range of the per-repetition ratios (each run against the reference run
 * next to it).
 */
export function ratio(values: readonly number[], refs: readonly number[]): string {
  const overall = `${(median(values) / median(refs)).toFixed(2)}×`;
  if (values === refs || values.length === 1 || values.length !== refs.length) return overall;
  const paired = values.map((value, i) => value / refs[i]!);
  return `${overall} (${Math.min(...paired).toFixed(2)}–${Math.max(...paired).toFixed(2)})`;
}

export const int = (value: number): string =>
  Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : '–';
export const fixed =
  (digits: number) =>
  (value: number): string =>
    Number.isFinite(value) ? value.toFixed(digits) : '–';

/** `text` with the characters XML gives a meaning escaped (for SVG text). */
export const escapeXml = (text: string): string =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
  for (const row of rows) lines.push(`| ${row.join(' | ')} |`);
  return lines.join('\n');
}

/**
 * The file system type (from /proc/mounts, the longest mount point holding
 * `dir`) and a generic description of the block device under it, on Linux;
 * `undefined` fields where unknown. Names no paths.
 */
export async function describeDisk(
  dir: string,
): Promise<{ fsType: string | undefined; device: string | undefined }> {
  let fsType: string | undefined;
  let device: string | undefined;
  try {
    const mounts = await readFile('/proc/mounts', 'utf8');
    let best = '';
    let source = '';
    for (const line of mounts.split('\n')) {
      const [from, point, type] = line.split(' ');
      if (from === undefined || point === undefined || type === undefined) continue;
      const inside = point === '/' || dir === point || dir.startsWith(`${point}/`);
      if (inside && point.length >= best.length) {
        best = point;
        fsType = type;
        source = from;
      }
    }
    const name = /^\/dev\/([a-z]+)\d*$/.exec(source)?.[1];
    if (name !== undefined) {
      const block = `/sys/block/${name}`;
      const rotational = (
        await readFile(`${block}/queue/rotational`, 'utf8').catch(() => '')
      ).trim();
      const driver = await realpath(`${block}/device/driver`).catch(() => '');
      const kind = driver.endsWith('virtio_blk')
        ? 'virtio block device (virtual machine)'
        : driver.endsWith('nvme')
          ? 'NVMe device'
          : name.startsWith('sd')
            ? 'SCSI/SATA device'
            : 'block device';
      device =
        rotational === '1'
          ? `${kind}, reported rotational`
          : rotational === '0'
            ? `${kind}, non-rotational`
            : kind;
    }
  } catch {
    // not Linux, or /proc not mounted: leave unknown
  }
  return { fsType, device };
}

// ---------------------------------------------------------------- commands

/** The repository this package is in (from the built file's place, dist/src). */
export const REPOSITORY = fileURLToPath(new URL('../../../../', import.meta.url));

/**
 * The data directory of a run: `--dir`, else `WAL_BENCH_DIR`, else `.bench/`
 * in the repository; created when missing. Throws when it is in memory.
 */
export async function dataDirectory(): Promise<string> {
  const root = resolve(option('dir') ?? process.env.WAL_BENCH_DIR ?? join(REPOSITORY, '.bench'));
  await mkdir(root, { recursive: true });
  await checkDisk(root);
  return root;
}

/** Where a command writes its section: `--out`, else `docs/` in the repository; undefined for `--out=-`. */
export function reportDirectory(): string | undefined {
  const out = option('out');
  return out === '-' ? undefined : resolve(out ?? join(REPOSITORY, 'docs'));
}

/** The value of the command-line argument `--name=value`, or undefined. */
export function option(name: string): string | undefined {
  const arg = process.argv.find((a) => a.startsWith(`--${name}=`));
  return arg?.slice(name.length + 3);
}

/**
 * Seconds a benchmark child may run before the runner kills it: far above
 * the longest child of a full run (a few minutes at most), so that only a
 * hung child reaches it.
 */
export const DEFAULT_CHILD_TIMEOUT_SECONDS = 900;

/**
 * The time limit of every benchmark child, in seconds: `--child-timeout=S`,
 * else `WAL_BENCH_CHILD_TIMEOUT`, else {@link DEFAULT_CHILD_TIMEOUT_SECONDS}.
 *
 * @throws `RangeError` when the value given is not a positive number.
 */
export function childTimeoutSeconds(): number {
  const given = option('child-timeout') ?? process.env.WAL_BENCH_CHILD_TIMEOUT;
  if (given === undefined || given === '') return DEFAULT_CHILD_TIMEOUT_SECONDS;
  const seconds = Number(given);
  if (!(seconds > 0) || !Number.isFinite(seconds)) {
    throw new RangeError(`the child timeout is a positive number of seconds, not ${given}`);
  }
  return seconds;
}

/**
 * Kills `child` (SIGKILL: a hung child may not answer anything else) unless
 * it has exited within `seconds`; `expired()` says whether it was killed so.
 */
export function killAfter(child: ChildProcess, seconds: number): { expired(): boolean } {
  let expired = false;
  const timer = setTimeout(() => {
    expired = true;
    child.kill('SIGKILL');
  }, seconds * 1000);
  child.once('exit', () => clearTimeout(timer));
  return { expired: () => expired };
}

/** The error of a child killed by {@link killAfter}: names the child and the limit. */
export class ChildTimeoutError extends Error {
  override readonly name = 'ChildTimeoutError';
  constructor(
    /** The child (its job). */
    readonly child: string,
    /** The limit it ran past, seconds. */
    readonly seconds: number,
  ) {
    super(
      `${child} timed out: still running after ${seconds} s, killed (raise the limit with --child-timeout=S or WAL_BENCH_CHILD_TIMEOUT)`,
    );
  }
}

/**
 * Runs `job` in a fresh process forked from `script` (`--child <job as
 * JSON>`, Node.js flags `execArgv`); resolves with the one IPC message the
 * child sends, rejects when it exits without one or is still running after
 * `timeoutSeconds` (then it is killed).
 */
export function inChild<T>(
  script: string,
  job: unknown,
  execArgv: string[] = [],
  timeoutSeconds = childTimeoutSeconds(),
): Promise<T> {
  return new Promise((resolvePromise, reject) => {
    const child = fork(script, ['--child', JSON.stringify(job)], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      execArgv,
    });
    const limit = killAfter(child, timeoutSeconds);
    let result: T | undefined;
    child.on('message', (message) => {
      result = message as T;
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      const what = `the child for ${JSON.stringify(job)}`;
      if (limit.expired()) reject(new ChildTimeoutError(what, timeoutSeconds));
      else if (result !== undefined) resolvePromise(result);
      else reject(new Error(`${what} exited with ${code ?? signal}`));
    });
  });
}

/** `npm install`s the package `spec` under `peers` (a peer installed on demand); throws when npm fails. */
export function installPeer(peers: string, spec: string, why = ''): void {
  process.stderr.write(`installing ${spec} under ${peers}${why}…\n`);
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--prefix', peers, spec], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
}

/** The better-sqlite3 release the benches install on demand. */
export const SQLITE = 'better-sqlite3@12.11.x';

/**
 * Installs better-sqlite3 under `peers` when it is not there (it compiles
 * from source, so the repository's install never builds it); throws when npm fails.
 */
export function installSqlite(peers: string): void {
  if (existsSync(join(peers, 'node_modules', 'better-sqlite3', 'build', 'Release'))) return;
  installPeer(peers, SQLITE, ' (compiles from source)');
}

/** The part of a better-sqlite3 prepared statement the benches use. */
export interface SqliteStatement {
  get(...parameters: unknown[]): unknown;
  run(...parameters: unknown[]): void;
}

/** The part of a better-sqlite3 database the benches use. */
export interface SqliteDatabase {
  exec(sql: string): void;
  prepare(sql: string): SqliteStatement;
  close(): void;
}

/**
 * A better-sqlite3 database at `path` (the module installed under `peers`
 * by {@link installSqlite}), in WAL mode with `synchronous = FULL`: every
 * commit fsyncs the WAL before it returns.
 */
export function openSqliteDurable(peers: string, path: string): SqliteDatabase {
  const require = createRequire(join(peers, 'package.json'));
  const Sqlite = require('better-sqlite3') as new (
    path: string,
  ) => SqliteDatabase & { pragma(setting: string): void };
  const db = new Sqlite(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  return db;
}

/**
 * The two lines that open a recorded section: what generated it (`script`
 * of `module`), when, with which arguments, and on which machine under which
 * load (the load averages at the start and the end of the run).
 */
export async function provenance(
  module: string,
  script: string,
  root: string,
  load: readonly [number, number],
): Promise<string[]> {
  const disk = await checkDisk(root);
  const { fsType, device } = await describeDisk(root);
  const args = process.argv
    .slice(2)
    .filter((a) => a !== '--')
    .map((a) => a.replace(/^--(dir|out)=.*/, '--$1=…'))
    .join(' ');
  const command = `pnpm --filter @wal/bench ${script}${args === '' ? '' : ` -- ${args}`}`;
  const busy = Math.max(...load) > cpus().length;
  return [
    `Generated by \`tools/bench\` (\`${module}\`, \`${script}\`; see its README); do not edit by hand. ${new Date().toISOString()}, command \`${command}\`.`,
    `Machine: ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, data on ${fsType ?? disk}${device === undefined ? '' : ` (${device})`}. Load average ${load[0].toFixed(2)} at the start, ${load[1].toFixed(2)} at the end${busy ? ': more runnable work than CPUs, the machine was shared with other jobs and the numbers are noisy (compare the min–max ranges)' : ''}.`,
  ];
}

// ---------------------------------------------------------------- report sections

/** The commands that record a section of their own in BENCHMARKS.md, between markers. */
export type RecordedSection = 'txn' | 'lsm' | 'threads';
export const RECORDED_SECTIONS: readonly RecordedSection[] = ['txn', 'lsm', 'threads'];

const begin = (name: RecordedSection): string => `<!-- bench:${name} begin -->`;
const end = (name: RecordedSection): string => `<!-- bench:${name} end -->`;

/** The `bench:<name>` section of the Markdown file at `path` (markers included), or '' when none. */
export async function recordedSection(path: string, name: RecordedSection): Promise<string> {
  const text = await readFile(path, 'utf8').catch(() => '');
  const from = text.indexOf(begin(name));
  const to = text.indexOf(end(name));
  return from >= 0 && to > from ? text.slice(from, to + end(name).length) : '';
}

/** Puts `body` as the `bench:<name>` section of the Markdown file at `path` (replacing it, or at the end). */
export async function writeSection(
  path: string,
  name: RecordedSection,
  body: string,
): Promise<void> {
  const text = await readFile(path, 'utf8').catch(() => '');
  const section = `${begin(name)}\n${body.trimEnd()}\n${end(name)}`;
  const old = await recordedSection(path, name);
  await mkdir(dirname(path), { recursive: true });
  const next =
    old !== ''
      ? text.replace(old, () => section)
      : text.trim() === ''
        ? `${section}\n`
        : `${text.trimEnd()}\n\n${section}\n`;
  await writeFile(path, next);
}

// ---------------------------------------------------------------- random numbers

/** A deterministic generator in [0, 1) (xorshift, 32-bit) seeded by `seed`. */
export function seededRandom(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 4294967296;
  };
}

/**
 * The group-commit flushes of every @wal/core log of the child (the
 * `wal:commit` diagnostics channel) in a durable window: how many, and the
 * part of the window during which at least one was in flight.
 */
export interface FlushTimes {
  readonly count: number;
  /** Fraction of the window with a durable write or sync of a log in flight. */
  readonly busy: number;
  /** Median duration of one, milliseconds. */
  readonly medianMs: number;
}

/**
 * {@link FlushTimes} of the flushes ending at `end` after `ms` each, over
 * the window `[from, to)`: each counted when it ended in the window, its
 * time in flight clipped to it; `undefined` when none ended there.
 */
export function flushTimes(
  flushes: ReadonlyArray<readonly [end: number, ms: number]>,
  from: number,
  to: number,
): FlushTimes | undefined {
  const inWindow = flushes.filter(([end]) => end >= from && end < to);
  if (inWindow.length === 0 || to <= from) return undefined;
  const spans = flushes
    .map(([end, ms]) => [Math.max(from, end - ms), Math.min(to, end)] as const)
    .filter(([start, end]) => end > start)
    .sort((a, b) => a[0] - b[0]);
  let busy = 0;
  let reached = from;
  for (const [start, end] of spans) {
    if (end <= reached) continue;
    busy += end - Math.max(start, reached);
    reached = end;
  }
  const durations = Float64Array.from(inWindow.map(([, ms]) => ms)).sort();
  return {
    count: inWindow.length,
    busy: busy / (to - from),
    medianMs: durations[Math.floor(durations.length / 2)]!,
  };
}
