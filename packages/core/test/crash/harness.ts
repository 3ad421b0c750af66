/**
 * The crash-proofing harness of the log: one checker every scenario goes
 * through, and a power-loss driver over `CrashFs`.
 *
 * The rules a recovered log must satisfy (docs/DURABILITY.md):
 * - no acknowledged record is lost: a record whose `durable` wait resolved,
 *   or covered by a resolved `sync()`, `close()` or truncation, is present;
 * - the recovered log is an exact run of what was appended (after applying
 *   resolved truncations), starting at the recovered head: same LSNs, same
 *   payloads, no record that was never appended;
 * - recovering again (after a power loss right after recovery) gives the same
 *   log: recovery made what it kept durable;
 * - appending after recovery works, at the LSN where recovery ended.
 *
 * Violations are counted into the shared reliability figures (`lost`,
 * `garbage`, `failed recoveries`) and fail the test.
 */

import assert from 'node:assert/strict';
import type { Fs, FsFile } from '@wal/store';
import {
  type CompletionSchedule,
  CrashFs,
  type CrashState,
  type CrashStates,
} from '@wal/store/testing';
import { HEADER_SIZE } from '../../src/frame.js';
import { Wal, type WalOptions } from '../../src/index.js';
import { equalBytes, pattern, tick } from '../helpers.js';
import { checked, found } from './reliability.js';

/** The log directory inside every simulated file system. */
export const DIR = '/data/log';
export const PARENT = '/data';
export const SEGMENT = 4096;
export const SECTOR = 512;

/** A record as appended: its LSN and payload. */
export interface Rec {
  readonly lsn: number;
  readonly payload: Uint8Array;
}

export const endOf = (rec: Rec): number => rec.lsn + HEADER_SIZE + rec.payload.length;

/** A small seeded PRNG (xorshift32). */
export class Prng {
  #x: number;
  constructor(seed: number) {
    this.#x = (Math.imul(seed + 1, 0x85ebca6b) ^ 0xc2b2ae35) >>> 0 || 1;
  }
  next(): number {
    let x = this.#x;
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    this.#x = x;
    return x;
  }
  /** An integer in `[0, n)`. */
  below(n: number): number {
    return this.next() % n;
  }
}

/** What a recovered log may be, at one point of a workload. */
export interface Expect {
  /** The log as appended (resolved truncations applied): the recovered log is a run of it. */
  readonly records: readonly Rec[];
  /** The heads the recovered log may have. */
  readonly heads: ReadonlySet<number>;
  /** Every record of `records` ending at or below this offset was acknowledged durable. */
  readonly minEnd: number;
}

/** A log as read back after recovery. */
export interface Recovered {
  readonly head: number;
  readonly tail: number;
  readonly records: readonly Rec[];
}

/** What one check found. */
export interface Verdict {
  readonly problems: string[];
  lost: number;
  garbage: number;
  /** Recoveries (or reads after one) that threw where the log should have opened: 0 or more. */
  failed?: number;
}

export function describeError(error: unknown): string {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  return `${String(code)} ${String(message)}`;
}

/** Every record of `wal`, read with `iterate` (payloads copied). */
export async function readAll(wal: Wal): Promise<Recovered> {
  const records: Rec[] = [];
  for await (const rec of wal.iterate()) {
    records.push({ lsn: rec.lsn, payload: rec.payload.slice() });
  }
  return { head: wal.head, tail: wal.tail, records };
}

/**
 * Checks a recovered log against what was appended. `lost`: acknowledged
 * records missing; `garbage`: records that were never appended (or with a
 * wrong LSN or payload).
 */
export function checkLog(got: Recovered, exp: Expect): Verdict {
  const verdict: Verdict = { problems: [], lost: 0, garbage: 0 };
  if (!exp.heads.has(got.head)) {
    verdict.problems.push(`head ${got.head} is none of ${[...exp.heads].join(', ')}`);
  }
  const want = exp.records.filter((rec) => rec.lsn >= got.head);
  let matched = 0;
  for (let i = 0; i < got.records.length; i++) {
    const rec = got.records[i]!;
    const expected = want[i];
    if (
      expected === undefined ||
      expected.lsn !== rec.lsn ||
      !equalBytes(expected.payload, rec.payload)
    ) {
      verdict.garbage++;
      if (verdict.garbage === 1) {
        verdict.problems.push(
          `garbage: record #${i} at ${rec.lsn} (${rec.payload.length} bytes) was never appended there` +
            (expected === undefined
              ? ''
              : ` (expected ${expected.payload.length} bytes at ${expected.lsn})`),
        );
      }
    } else if (matched === i) matched++;
  }
  for (let i = matched; i < want.length; i++) {
    if (endOf(want[i]!) <= exp.minEnd) verdict.lost++;
  }
  if (verdict.lost > 0) {
    verdict.problems.push(
      `lost: ${verdict.lost} acknowledged record(s) (durable up to ${exp.minEnd}; recovered ${got.records.length} from head ${got.head} to ${got.tail})`,
    );
  }
  const last = got.records.at(-1);
  const end = last === undefined ? got.head : endOf(last);
  if (got.tail !== end) verdict.problems.push(`tail ${got.tail} is not the end ${end} of the log`);
  return verdict;
}

export function sameLog(a: Recovered, b: Recovered): string | undefined {
  if (a.head !== b.head || a.tail !== b.tail) {
    return `[${a.head}, ${a.tail}) then [${b.head}, ${b.tail})`;
  }
  if (a.records.length !== b.records.length) {
    return `${a.records.length} records then ${b.records.length}`;
  }
  for (let i = 0; i < a.records.length; i++) {
    const x = a.records[i]!;
    const y = b.records[i]!;
    if (x.lsn !== y.lsn || !equalBytes(x.payload, y.payload)) return `record #${i} differs`;
  }
  return undefined;
}

/** Opens the log in a simulated file system. */
export function openIn(fs: Fs, options: WalOptions = {}): Promise<Wal> {
  return Wal.open(DIR, { fs, segmentSize: SEGMENT, ...options });
}

/** The state a power loss right now leaves when nothing pending survives. */
export function durableOnly(fs: CrashFs): CrashState {
  for (const state of fs.crashStates({ mode: 'sample', limit: 1 })) return state;
  throw new Error('no crash state');
}

/** The full check of one crash state (see the module documentation). */
export async function checkCrashState(
  state: CrashState,
  exp: Expect,
  probeTag: number,
  options: WalOptions = {},
): Promise<Verdict & { recovered?: Recovered; torn?: number }> {
  const fs = state.fs();
  let wal: Wal;
  try {
    wal = await openIn(fs, options);
  } catch (error) {
    // No crash state of a correct workload is corruption: open must succeed.
    return { problems: [`open failed: ${describeError(error)}`], lost: 0, garbage: 0, failed: 1 };
  }
  let verdict: Verdict = { problems: [], lost: 0, garbage: 0 };
  let got: Recovered | undefined;
  try {
    got = await readAll(wal);
    verdict = checkLog(got, exp);
    const report = wal.recovery;
    if (report.end !== got.tail) verdict.problems.push(`report.end ${report.end} ≠ tail`);
    if (report.head !== got.head) verdict.problems.push(`report.head ${report.head} ≠ head`);
    if (
      report.tornBytes + report.zeroTail !== report.storeLength - report.end ||
      report.truncated !== report.storeLength > report.end
    ) {
      verdict.problems.push(
        `report: tornBytes ${report.tornBytes}, zeroTail ${report.zeroTail}, truncated ${report.truncated}, store length ${report.storeLength}, end ${report.end}`,
      );
    }
    if (wal.durable !== got.tail) {
      verdict.problems.push(`durable watermark ${wal.durable} after recovery ≠ end ${got.tail}`);
    }
    // A power loss right after recovery: recovering again gives the same log.
    const after = durableOnly(fs);
    const probe = pattern(5 + (probeTag % 40), 7000 + probeTag);
    const lsn = await wal.append(probe, { wait: 'durable' });
    if (lsn !== got.tail)
      verdict.problems.push(`append after recovery got LSN ${lsn} ≠ ${got.tail}`);
    const back = await wal.read(lsn);
    if (!equalBytes(back, probe)) verdict.problems.push('the appended record reads back wrong');
    await wal.close();
    const again = await openIn(after.fs(), options).catch((error: unknown) => error as Error);
    if (again instanceof Wal) {
      const second = await readAll(again);
      await again.close();
      const diff = sameLog(got, second);
      if (diff !== undefined) verdict.problems.push(`recovering twice differs: ${diff}`);
    } else {
      verdict.problems.push(`second recovery failed: ${describeError(again)}`);
      verdict.failed = (verdict.failed ?? 0) + 1;
    }
    // Counts every cut tail, a torn write or preallocated zeros (the figures in DURABILITY.md).
    return { ...verdict, recovered: got, torn: report.tornBytes + report.zeroTail };
  } catch (error) {
    verdict.problems.push(`check failed: ${describeError(error)}`);
    verdict.failed = (verdict.failed ?? 0) + 1;
    await wal.close().catch(() => undefined);
    return verdict;
  }
}

/**
 * `fs` whose `call` acknowledges without syncing (`fdatasync` resolves a
 * macrotask later, `fdatasyncSync` returns, `pwriteDurable` is a plain
 * `pwrite`), counting into `lies`; every other call, the other syncs
 * included, is the CrashFs's own.
 */
function lyingSync(fs: CrashFs, call: LyingCall, lies: { count: number }): Fs {
  return new Proxy(fs, {
    get(target, property) {
      if (property === call) {
        if (call === 'pwriteDurable') {
          return (file: FsFile, bytes: Uint8Array, position: number) => {
            lies.count++;
            return target.pwrite(file, bytes, position);
          };
        }
        return call === 'fdatasync'
          ? () => {
              lies.count++;
              return new Promise<void>((resolve) => setImmediate(resolve));
            }
          : () => {
              lies.count++;
            };
      }
      const value = Reflect.get(target, property, target) as unknown;
      return typeof value === 'function' ? value.bind(target) : value;
    },
  }) as Fs;
}

/** What the log must hold, tracked as a workload runs. */
export class LogModel {
  records: Rec[] = [];
  heads = new Set<number>([0]);
  minEnd = 0;
  /** A truncation in flight: until it resolves, its effects may or may not be in a state. */
  #pendingCut: number | undefined;
  #pendingHead: number | undefined;
  version = 0;

  expect(): Expect {
    const heads = new Set(this.heads);
    if (this.#pendingHead !== undefined) heads.add(this.#pendingHead);
    const minEnd =
      this.#pendingCut === undefined ? this.minEnd : Math.min(this.minEnd, this.#pendingCut);
    return { records: this.records.slice(), heads, minEnd };
  }

  appended(rec: Rec): void {
    this.records.push(rec);
    this.version++;
  }

  acknowledged(end: number): void {
    if (end > this.minEnd) {
      this.minEnd = end;
      this.version++;
    }
  }

  cutting(end: number): void {
    this.#pendingCut = end;
    this.version++;
  }

  cut(end: number): void {
    this.#pendingCut = undefined;
    this.records = this.records.filter((rec) => rec.lsn < end);
    // Appends before the call were synced first, then the cut made durable.
    this.minEnd = end;
    this.version++;
  }

  heading(head: number): void {
    this.#pendingHead = head;
    this.version++;
  }

  headed(head: number): void {
    this.#pendingHead = undefined;
    this.heads = new Set([head]);
    this.records = this.records.filter((rec) => rec.lsn >= head);
    this.minEnd = Math.max(this.minEnd, head);
    this.version++;
  }
}

/** Totals of one workload. */
export interface Tally {
  states: number;
  snapshots: number;
  violations: string[];
  lost: number;
  garbage: number;
  /** Recoveries that threw where they should have opened. */
  failed: number;
  /** Crash states whose recovery cut a torn tail. */
  torn: number;
}

/** Options of a {@link LogRun}. */
/** The data sync a self-test's file system lies about. */
export type LyingCall = 'fdatasync' | 'fdatasyncSync' | 'pwriteDurable';

export interface RunOptions {
  /** Crash states drawn per snapshot (exhaustive below it, seeded samples above). */
  readonly perStep?: number;
  /** The file system to start from (default: an empty `/data`). */
  readonly fs?: CrashFs;
  /** Seed offset of this run's enumerations. */
  readonly seed?: number;
  /**
   * Self-test of the harness only: the log's file system acknowledges every
   * call of this one (and only this one) without syncing anything. Its crash
   * states must show losses.
   */
  readonly lyingSync?: LyingCall;
  /**
   * The file system the log is opened with, made from the run's CrashFs (a
   * proxy holding or observing some calls); every call must reach the
   * CrashFs, which records it. Not with `lyingSync`.
   */
  readonly wrapFs?: (fs: CrashFs) => Fs;
  /** Options of every `Wal.open` of the run and of its checks (e.g. `layout: 'file'`). */
  readonly walOptions?: WalOptions;
  /** Extra file offsets a write may tear at (and a length may stop at); see `CrashStatesOptions`. */
  readonly tearAt?: readonly number[];
  /**
   * Completions one per macrotask in this order (with `fs`, the file system
   * must have been made with it); snapshots are taken only once it explores.
   */
  readonly order?: CompletionSchedule;
}

/**
 * Default tear points: inside sectors, so small records written in one
 * sector can tear too (a superset of what a sector-atomic disk does).
 */
export const TEAR_AT: readonly number[] = [
  5, 13, 64, 200, 333, 700, 1030, 1600, 2222, 2700, 3333, 3900, 4093,
];

/**
 * One workload over a `CrashFs`: the model, the log, and a crash-state
 * snapshot at every step — between operations and after every macrotask while
 * one is in flight (with a completion order, CrashFs completes one call per
 * macrotask; snapshots are taken only while the order explores). Each snapshot
 * carries the expectation of that moment: a record counts as acknowledged if
 * its wait resolved before the snapshot, hence before every operation the
 * snapshot's states include.
 */
export class LogRun {
  readonly fs: CrashFs;
  readonly model = new LogModel();
  wal: Wal | undefined;
  readonly perStep: number;
  readonly seed: number;
  readonly tearAt: readonly number[];
  /** The file system the log is opened with (the CrashFs itself, unless lying or wrapped). */
  readonly walFs: Fs;
  /** Calls of the lying sync so far (see {@link RunOptions.lyingSync}). */
  readonly lies = { count: 0 };
  readonly walOptions: WalOptions;
  readonly order: CompletionSchedule | undefined;
  readonly #snaps: { label: string; seed: number; exp: Expect; states: CrashStates }[] = [];
  /** Snapshot points so far, taken or skipped: a point's seed is the same in every order. */
  #points = 0;
  #label = 'start';

  constructor(
    readonly workload: string,
    options: RunOptions = {},
  ) {
    this.order = options.order;
    this.fs =
      options.fs ??
      new CrashFs({
        sectorSize: SECTOR,
        image: { files: new Map(), dirs: new Set([PARENT]) },
        ...(options.order === undefined ? {} : { order: options.order }),
      });
    this.perStep = options.perStep ?? 40;
    this.seed = options.seed ?? 0;
    this.tearAt = options.tearAt ?? TEAR_AT;
    this.walOptions = options.walOptions ?? {};
    this.walFs =
      options.lyingSync !== undefined
        ? lyingSync(this.fs, options.lyingSync, this.lies)
        : (options.wrapFs?.(this.fs) ?? this.fs);
  }

  get w(): Wal {
    assert.ok(this.wal, 'the log is not open');
    return this.wal;
  }

  snap(label = this.#label): void {
    const seed = this.seed * 100_000 + ++this.#points;
    if (this.order !== undefined && !this.order.exploring) return;
    const states = this.fs.crashStates({
      seed,
      limit: this.perStep,
      mode: 'auto',
      tearAt: this.tearAt,
    });
    this.#snaps.push({ label, seed, exp: this.model.expect(), states });
  }

  /** Runs `operation`, taking a snapshot after every macrotask until it settles and once after. */
  async step<T>(label: string, operation: () => Promise<T>): Promise<T> {
    this.#label = label;
    let settled = false;
    const promise = operation().finally(() => {
      settled = true;
    });
    promise.catch(() => undefined);
    let n = 0;
    while (!settled) {
      this.snap(`${label} (in flight, step ${n++})`);
      await tick();
    }
    const value = await promise;
    this.snap(`${label} (resolved)`);
    return value;
  }

  async open(): Promise<Wal> {
    this.wal = await this.step('open', () => openIn(this.walFs, this.walOptions));
    return this.wal;
  }

  /** Starts a durable append now; the model learns its acknowledgement when it resolves. */
  appendDurable(payload: Uint8Array): Promise<number> {
    const lsn = this.w.tail;
    const rec = { lsn, payload };
    const promise = this.w.append(payload, { wait: 'durable' });
    this.model.appended(rec);
    return promise.then((got) => {
      assert.equal(got, lsn);
      this.model.acknowledged(endOf(rec));
      return got;
    });
  }

  /** A buffered append: never acknowledged by itself. */
  appendBuffered(payload: Uint8Array): number {
    const lsn = this.w.append(payload);
    this.model.appended({ lsn, payload });
    return lsn;
  }

  /** Durable appends of `payloads` from concurrent committers. */
  async commit(label: string, payloads: readonly Uint8Array[]): Promise<void> {
    await this.step(label, () => Promise.all(payloads.map((p) => this.appendDurable(p))));
  }

  async sync(): Promise<void> {
    const tail = this.w.tail;
    await this.step('sync', () => this.w.sync());
    this.model.acknowledged(tail);
  }

  async truncateAfter(lsn: number): Promise<void> {
    const kept = this.model.records.find((rec) => rec.lsn === lsn);
    assert.ok(kept, `no record at ${lsn}`);
    const end = endOf(kept);
    this.model.cutting(end);
    await this.step(`truncateAfter(${lsn})`, () => this.w.truncateAfter(lsn));
    this.model.cut(end);
    this.snap(`truncateAfter(${lsn}) (model updated)`);
  }

  async truncateBefore(lsn: number): Promise<void> {
    this.model.heading(lsn);
    await this.step(`truncateBefore(${lsn})`, () => this.w.truncateBefore(lsn));
    this.model.headed(lsn);
    this.snap(`truncateBefore(${lsn}) (model updated)`);
  }

  async close(): Promise<void> {
    const tail = this.w.tail;
    await this.step('close', () => this.w.close());
    this.model.acknowledged(tail);
    this.wal = undefined;
    this.snap('closed');
  }

  /** Every state of every snapshot, with the expectation of its moment. */
  *allStates(): Generator<{ state: CrashState; exp: Expect; label: string }> {
    for (const { label, exp, states } of this.#snaps) {
      for (const state of states) yield { state, exp, label };
    }
  }

  /** Checks every distinct state of every snapshot. */
  async check(tally: Tally, seen: Set<string>, onState?: OnState): Promise<void> {
    await this.wal?.close().catch(() => undefined);
    this.wal = undefined;
    let probe = 0;
    for (const { label, seed, exp, states } of this.#snaps) {
      tally.snapshots++;
      const expKey = expectKey(exp);
      for (const state of states) {
        const key = `${expKey}#${fingerprint(state)}`;
        if (seen.has(key)) continue;
        seen.add(key);
        tally.states++;
        const verdict = await checkCrashState(state, exp, probe++, this.walOptions);
        tally.lost += verdict.lost;
        tally.garbage += verdict.garbage;
        tally.failed += verdict.failed ?? 0;
        if ((verdict.torn ?? 0) > 0) tally.torn++;
        if (verdict.problems.length > 0) {
          const order = this.order === undefined ? '' : `, ${this.order.description}`;
          tally.violations.push(
            `${this.workload} at "${label}" [seed ${seed}, limit ${this.perStep}${order}] ${state.description}: ${verdict.problems.join('; ')}`,
          );
        }
        onState?.(state, exp, verdict);
      }
    }
  }
}

export type OnState = (
  state: CrashState,
  exp: Expect,
  verdict: Verdict & { recovered?: Recovered; torn?: number },
) => void;

function expectKey(exp: Expect): string {
  const last = exp.records.at(-1);
  return `${exp.records.length}:${last === undefined ? 0 : endOf(last)}:${[...exp.heads].join(',')}:${exp.minEnd}:${exp.records.map((r) => r.payload[0] ?? 0).join('.')}`;
}

/** FNV-1a over a file image, for de-duplicating states. */
export function fingerprint(state: CrashState): string {
  const parts = [...state.dirs].sort();
  for (const [path, bytes] of [...state.files].sort(([a], [b]) => (a < b ? -1 : 1))) {
    let h = 0x811c9dc5;
    for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i]!, 16777619);
    parts.push(`${path}:${bytes.length}:${(h >>> 0).toString(16)}`);
  }
  return parts.join('|');
}

export function newTally(): Tally {
  return { states: 0, snapshots: 0, violations: [], lost: 0, garbage: 0, failed: 0, torn: 0 };
}

/**
 * Records a workload's figures (every state in the tally was checked to the
 * end), prints its line, and fails on a violation.
 */
export function report(name: string, tally: Tally): void {
  found({ lost: tally.lost, garbage: tally.garbage, failedRecoveries: tally.failed });
  checked({ crashStates: tally.states });
  console.log(
    `power loss (log): ${name}: ${tally.states} crash states (${tally.snapshots} snapshots, ${tally.torn} with a torn tail), ${tally.violations.length} violations`,
  );
  if (tally.violations.length > 0) {
    for (const line of tally.violations.slice(0, 10)) console.log(`  violation: ${line}`);
    assert.fail(
      `${tally.violations.length} crash state(s) of "${name}" violate the log's contract; first: ${tally.violations[0]}`,
    );
  }
}
