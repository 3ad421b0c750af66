/**
 * Power-loss tests of the file backends: workloads run over a CrashFs, the
 * states a power loss could leave are enumerated at every step (between
 * operations and while one is in flight, one file-system call at a time),
 * each state is reopened with the backend and checked against a reference
 * model of what the Store contract had made durable.
 *
 * What a state must satisfy (README, "The Store contract"):
 * - open succeeds (no state reachable from a correct workload is corruption);
 * - the head is at least the last head `truncateBefore` resolved with and at
 *   most the last one asked for;
 * - the length is at least the durable length (last resolved `sync` or
 *   `truncate`) and at most the largest length asked for since the last
 *   resolved `truncate`;
 * - every durable byte in `[head, durable length)` reads back unchanged;
 * - the metadata map is exactly the old or the new one (atomic replace);
 * - writing past the reopened length reads zeros in the gap (no stale bytes).
 * Bytes in `[durable length, length)` were never synced: the contract says
 * nothing about them (the log's CRCs deal with garbage). We still check, in
 * every state where no torn sector was filled with garbage by the simulated
 * disk, that each such byte is zero or a value some write put at that offset
 * since the last truncation below it: the backends never invent bytes or
 * resurrect truncated ones.
 *
 * Failures print the workload, the enumeration seed and the state
 * description, so a state can be replayed with `crashStates({ seed, ... })`
 * on the same trace.
 */
import assert from 'node:assert/strict';
import { crc32c } from '@node-rs/crc32';
import { FileStore } from '../src/file-store.js';
import type { Fs } from '../src/fs/fs.js';
import { SegmentedStore } from '../src/segmented-store.js';
import type { MetaUpdate, Store, StoreMeta } from '../src/store.js';
import { CrashFs, type CrashState, type CrashStates } from '../src/testing/crash-fs.js';
import { CompletionExplorer, type CompletionSchedule } from '../src/testing/crash-orders.js';
import { pattern, tick, unsyncedCloses } from './fs-helpers.js';

const SEGMENT = 4096;
const SECTOR = 1024;
const PARENT = '/data';
const LOCATION = '/data/log';
/** Crash states drawn per snapshot: exhaustive below this, seeded samples above. */
const PER_STEP = 80;

interface Backend {
  readonly name: string;
  readonly segmented: boolean;
  open(fs: Fs): Promise<Store>;
}

const BACKENDS: readonly Backend[] = [
  {
    name: 'SegmentedStore',
    segmented: true,
    open: (fs) => SegmentedStore.open(LOCATION, { fs, segmentSize: SEGMENT }),
  },
  {
    // Every segment opened closes the one open before it: handles are closed
    // between a write and the sync that must cover it.
    name: 'SegmentedStore (1 open segment)',
    segmented: true,
    open: (fs) => SegmentedStore.open(LOCATION, { fs, segmentSize: SEGMENT, maxOpenSegments: 1 }),
  },
  { name: 'FileStore', segmented: false, open: (fs) => FileStore.open(LOCATION, { fs }) },
];

/**
 * Reorderings tried per burst of concurrent calls (exhaustive up to this
 * many orders, seeded samples beyond); `WAL_ORDERS` raises it for long runs.
 */
const ORDERS = Number(process.env.WAL_ORDERS ?? 6);
/** Seed of the sampled orders; `WAL_ORDER_SEED` changes it for long runs. */
const ORDER_SEED = Number(process.env.WAL_ORDER_SEED ?? 1);

/** A CrashFs whose only durable content is the empty parent directory. */
function freshFs(order?: CompletionSchedule): CrashFs {
  return new CrashFs({
    sectorSize: SECTOR,
    image: { files: new Map(), dirs: new Set([PARENT]) },
    ...(order === undefined ? {} : { order }),
  });
}

function canonical(meta: StoreMeta): string {
  return JSON.stringify(
    Object.fromEntries(Object.entries(meta).sort(([a], [b]) => (a < b ? -1 : 1))),
  );
}

/** What a crash state taken at some point must satisfy. */
interface Expect {
  readonly version: number;
  readonly minHead: number;
  readonly maxHead: number;
  readonly durableLength: number;
  readonly maxLength: number;
  /** Durable bytes of `[0, durableLength)`; -1 where not known durable. */
  readonly durable: Int16Array;
  /** Bitset of 256 bits per offset: the values an unsynced byte may hold (zero always may). */
  readonly allowed: Uint8Array;
  /** 1 where a durable byte was overwritten by a write not yet synced (either value may be read). */
  readonly overwritten: Uint8Array;
  readonly metas: ReadonlySet<string>;
  /** The log (directory or file) must exist in the state. */
  readonly mustExist: boolean;
}

/** The reference model: what the workload asked for and what is durable. */
class Model {
  content = new Uint8Array(0);
  length = 0;
  #durable = new Int16Array(0);
  #durableLength = 0;
  #minHead = 0;
  #maxHead = 0;
  #maxLength = 0;
  #allowed = new Uint8Array(0);
  #overwritten = new Uint8Array(0);
  #meta: StoreMeta = {};
  #metas = new Set<string>([canonical({})]);
  #exists = false;
  #version = 0;

  #grow(length: number): void {
    if (this.content.length < length) {
      const next = new Uint8Array(Math.max(length, this.content.length * 2));
      next.set(this.content);
      this.content = next;
    }
    if (this.#allowed.length < length * 32) {
      const next = new Uint8Array(Math.max(length, this.content.length) * 32);
      next.set(this.#allowed);
      this.#allowed = next;
    }
  }

  /** A write about to be issued. */
  write(offset: number, bytes: Uint8Array): void {
    this.#grow(offset + bytes.length);
    this.content.set(bytes, offset);
    for (let i = 0; i < bytes.length; i++) {
      const at = (offset + i) * 32 + (bytes[i]! >> 3);
      this.#allowed[at] = this.#allowed[at]! | (1 << (bytes[i]! & 7));
    }
    if (offset < this.#durableLength) {
      this.#overwritten.fill(1, offset, Math.min(offset + bytes.length, this.#durableLength));
    }
    this.length = Math.max(this.length, offset + bytes.length);
    this.#maxLength = Math.max(this.#maxLength, this.length);
    this.#version++;
  }

  /** A sync about to be issued; the returned commit runs when it resolves. */
  sync(): () => void {
    const length = this.length;
    const bytes = this.content.slice(0, length);
    return () => {
      const durable = new Int16Array(length);
      durable.set(bytes);
      this.#durable = durable;
      this.#durableLength = length;
      this.#overwritten = new Uint8Array(length);
      this.#exists = true;
      this.#version++;
    };
  }

  truncate(length: number): () => void {
    this.length = length;
    this.content.fill(0, length);
    this.#version++;
    return () => {
      const durable = new Int16Array(length).fill(-1);
      durable.set(this.#durable.subarray(0, Math.min(length, this.#durableLength)));
      this.#durable = durable;
      const overwritten = new Uint8Array(length);
      overwritten.set(this.#overwritten.subarray(0, Math.min(length, this.#overwritten.length)));
      this.#overwritten = overwritten;
      this.#durableLength = length;
      this.#maxLength = Math.max(length, this.length);
      this.#allowed.fill(0, length * 32);
      this.#version++;
    };
  }

  truncateBefore(head: number): () => void {
    this.#maxHead = head;
    this.#version++;
    return () => {
      this.#minHead = head;
      this.#exists = true;
      this.#version++;
    };
  }

  updateMeta(fields: MetaUpdate): () => void {
    const next: Record<string, string | number | boolean> = { ...this.#meta };
    for (const [key, value] of Object.entries(fields)) {
      if (value === undefined) delete next[key];
      else next[key] = value;
    }
    this.#metas.add(canonical(next));
    this.#version++;
    return () => {
      this.#meta = next;
      this.#metas = new Set([canonical(next)]);
      this.#exists = true;
      this.#version++;
    };
  }

  opened(): void {
    this.#exists = true;
    this.#version++;
  }

  expect(): Expect {
    return {
      version: this.#version,
      minHead: this.#minHead,
      maxHead: this.#maxHead,
      durableLength: this.#durableLength,
      maxLength: this.#maxLength,
      durable: this.#durable,
      allowed: this.#allowed.slice(),
      overwritten: this.#overwritten.slice(),
      metas: new Set(this.#metas),
      mustExist: this.#exists,
    };
  }
}

/** Counts of one workload over every backend. */
class Tally {
  readonly checked = new Set<string>();
  snapshots = 0;
  violations: string[] = [];
  /** Heads seen on reopen by value, to show both sides of a head replacement were reached. */
  readonly heads = new Map<number, number>();
  /** Distinct states found only by reordered completions, and the reruns that found them. */
  reordered = 0;
  orders = 0;
}

const TALLIES = new Map<string, Tally>();

function tally(name: string): Tally {
  let found = TALLIES.get(name);
  if (found === undefined) {
    found = new Tally();
    TALLIES.set(name, found);
  }
  return found;
}

function fingerprint(state: CrashState): string {
  const parts = [...state.dirs].sort();
  for (const [path, bytes] of [...state.files].sort(([a], [b]) => (a < b ? -1 : 1))) {
    parts.push(`${path}:${bytes.length}:${crc32c(bytes)}`);
  }
  return parts.join('|');
}

function describeError(error: unknown): string {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  return `${String(code)} ${String(message)}`;
}

/** Reopens `state` with `backend` and returns the first violation, if any. */
async function checkState(
  backend: Backend,
  state: CrashState,
  exp: Expect,
  heads: Map<number, number>,
): Promise<string | undefined> {
  if (exp.mustExist) {
    const exists = backend.segmented ? state.dirs.has(LOCATION) : state.files.has(LOCATION);
    if (!exists) return `the log at ${LOCATION} is gone after its open resolved`;
  }
  const fs = state.fs();
  let store: Store;
  try {
    store = await backend.open(fs);
  } catch (error) {
    return `open failed: ${describeError(error)}`;
  }
  try {
    const { head, length } = store;
    heads.set(head, (heads.get(head) ?? 0) + 1);
    if (head < exp.minHead || head > exp.maxHead) {
      return `head ${head} outside [${exp.minHead}, ${exp.maxHead}]`;
    }
    if (length < exp.durableLength) return `length ${length} < durable length ${exp.durableLength}`;
    if (length > exp.maxLength)
      return `length ${length} > largest length asked for ${exp.maxLength}`;
    if (backend.segmented && (store as SegmentedStore).segmentSize !== SEGMENT) {
      return `segment size ${(store as SegmentedStore).segmentSize}`;
    }
    const meta = canonical(await store.readMeta());
    if (!exp.metas.has(meta)) return `metadata ${meta} is neither of ${[...exp.metas].join(' / ')}`;
    const bytes = await store.read(head, length - head);
    if (bytes.length !== length - head) return `read of [${head}, ${length}) came back short`;
    const garbage = state.description.includes('lost=garbage');
    const written = (at: number, value: number): boolean =>
      value === 0 || ((exp.allowed[at * 32 + (value >> 3)] ?? 0) & (1 << (value & 7))) !== 0;
    for (let at = head; at < exp.durableLength; at++) {
      const want = exp.durable[at]!;
      const value = bytes[at - head]!;
      if (want < 0 || value === want) continue;
      // A durable byte overwritten by a later, unsynced write may read as that write left it.
      if (exp.overwritten[at] === 1 && (garbage || written(at, value))) continue;
      return `durable byte at ${at} is ${value}, expected ${want}`;
    }
    if (!garbage) {
      for (let at = Math.max(head, exp.durableLength); at < length; at++) {
        const value = bytes[at - head]!;
        if (!written(at, value))
          return `unsynced byte at ${at} is ${value}, which no write put there`;
      }
    }
    // A write past the end: the gap (crossing a segment boundary) must read as zeros.
    const gap = SEGMENT + 123;
    await store.write(length + gap, Uint8Array.of(0xee));
    const tail = await store.read(length, gap + 1);
    if (tail.length !== gap + 1 || tail[gap] !== 0xee) return 'write past the end did not land';
    const stale = tail.subarray(0, gap).findIndex((value) => value !== 0);
    if (stale >= 0)
      return `stale byte ${tail[stale]} at ${length + stale} in the gap after reopen+write`;
    return undefined;
  } catch (error) {
    return `check failed: ${describeError(error)}`;
  } finally {
    await store.close();
  }
}

/**
 * One workload over one backend: a CrashFs, the model, and the crash-state
 * snapshots taken so far (checked by {@link Run.check}).
 */
class Run {
  /** The file system of the running process: a process crash replaces it. */
  fs: CrashFs;
  readonly model = new Model();
  store: Store | undefined;
  readonly #snaps: { label: string; seed: number; exp: Expect; states: CrashStates }[] = [];
  #points = 0;

  /** `order`: completions one per macrotask in that order; snapshots only once it explores. */
  constructor(
    readonly backend: Backend,
    readonly workload: string,
    readonly perStep = PER_STEP,
    readonly order?: CompletionSchedule,
  ) {
    this.fs = freshFs(order);
  }

  get s(): Store {
    assert.ok(this.store);
    return this.store;
  }

  snap(label: string, exp: Expect = this.model.expect()): void {
    // A point's seed is the same in every order (points skipped count too).
    const seed = ++this.#points;
    if (this.order !== undefined && !this.order.exploring) return;
    const states = this.fs.crashStates({ seed, limit: this.perStep, mode: 'auto' });
    this.#snaps.push({ label, seed, exp, states });
  }

  /**
   * Starts `operation`, takes a snapshot after every macrotask until it
   * settles (one file-system call completes per macrotask), then commits the
   * model and takes a snapshot of the settled state.
   */
  async step<T>(
    label: string,
    operation: () => Promise<T>,
    commit?: () => void,
    inFlight: (exp: Expect) => Expect = (exp) => exp,
  ): Promise<T> {
    const exp = inFlight(this.model.expect());
    let settled = false;
    const promise = operation().finally(() => {
      settled = true;
    });
    promise.catch(() => undefined);
    let n = 0;
    while (!settled) {
      this.snap(`${label} (in flight, step ${n++})`, exp);
      await tick();
    }
    const value = await promise;
    commit?.();
    this.snap(`${label} (resolved)`);
    return value;
  }

  /** `durable`: the open itself makes the log's existence durable (see the after-a-crash test). */
  async open(durable = true): Promise<void> {
    this.store = await this.step(
      'open',
      () => this.backend.open(this.fs),
      () => {
        if (durable) this.model.opened();
      },
    );
  }

  async write(offset: number, bytes: Uint8Array): Promise<void> {
    this.model.write(offset, bytes);
    await this.step(`write ${bytes.length}@${offset}`, () => this.s.write(offset, bytes));
  }

  async sync(): Promise<void> {
    await this.step('sync', () => this.s.sync(), this.model.sync());
  }

  async truncate(length: number): Promise<void> {
    // While it runs, the bytes at and past the cut are being dropped: a state
    // may hold any part of them (a directory fsync orders the unlinks only
    // after it), but every byte below the cut must be there.
    await this.step(
      `truncate(${length})`,
      () => this.s.truncate(length),
      this.model.truncate(length),
      (exp) => ({ ...exp, durableLength: Math.min(exp.durableLength, length) }),
    );
  }

  async truncateBefore(offset: number): Promise<void> {
    await this.step(
      `truncateBefore(${offset})`,
      () => this.s.truncateBefore(offset),
      this.model.truncateBefore(offset),
    );
  }

  /** A read, checked against what the workload wrote. */
  async read(offset: number, length: number): Promise<void> {
    const bytes = await this.step(`read ${length}@${offset}`, () => this.s.read(offset, length));
    assert.deepEqual(bytes, this.model.content.subarray(offset, offset + length));
  }

  async updateMeta(fields: MetaUpdate): Promise<void> {
    await this.step(
      `updateMeta(${JSON.stringify(fields)})`,
      () => this.s.updateMeta(fields),
      this.model.updateMeta(fields),
    );
  }

  /** Checks every state of every snapshot; records counts and violations. */
  async check(): Promise<Tally> {
    await this.store?.close();
    const t = tally(this.workload);
    const local: string[] = [];
    for (const { label, seed, exp, states } of this.#snaps) {
      t.snapshots++;
      for (const state of states) {
        const key = `${this.backend.name}|${exp.version}|${fingerprint(state)}`;
        if (t.checked.has(key)) continue;
        t.checked.add(key);
        const violation = await checkState(this.backend, state, exp, t.heads);
        if (violation !== undefined) {
          const order = this.order === undefined ? '' : `, ${this.order.description}`;
          local.push(
            `${this.backend.name} ${this.workload} at "${label}" [seed ${seed}, limit ${this.perStep}${order}] ${state.description}: ${violation}`,
          );
        }
      }
    }
    t.violations.push(...local);
    return t;
  }
}

/**
 * Runs `body` in call order, then again under reordered completions of each
 * burst of concurrent calls (see `CompletionExplorer`), checking every new
 * state; returns the call-order run (for its trace) and the tally.
 */
async function explore(
  backend: Backend,
  workload: string,
  body: (run: Run) => Promise<void>,
  perStep = PER_STEP,
): Promise<{ run: Run; t: Tally }> {
  const explorer = new CompletionExplorer({ seed: ORDER_SEED, limit: ORDERS });
  const run = new Run(backend, workload, perStep, explorer.baseline());
  await body(run);
  const t = await run.check();
  assertClean(run, t.violations);
  const before = t.checked.size;
  for (const order of explorer.orders()) {
    const rerun = new Run(backend, workload, perStep, order);
    await body(rerun);
    await rerun.check();
    assertClean(rerun, t.violations);
  }
  t.reordered += t.checked.size - before;
  t.orders += explorer.figures.orders;
  const f = explorer.figures;
  console.log(
    `power loss: ${backend.name} ${workload}: ${f.concurrent} of ${f.bursts} bursts concurrent (${f.exhaustive} in every order, ${f.sampled} sampled), ${f.orders} reorderings, ${t.checked.size - before} new states`,
  );
  return { run, t };
}

function assertClean(run: Run, violations: readonly string[]): void {
  const mine = violations.filter((line) => line.startsWith(`${run.backend.name} ${run.workload} `));
  if (mine.length > 0) {
    for (const line of mine.slice(0, 20)) console.log(`  violation: ${line}`);
    assert.fail(`${mine.length} crash state(s) violate the contract; first: ${mine[0]}`);
  }
}

describe('power loss (CrashFs)', function () {
  this.timeout(120_000);

  after(() => {
    let total = 0;
    let bad = 0;
    let reordered = 0;
    for (const [name, t] of TALLIES) {
      total += t.checked.size;
      bad += t.violations.length;
      reordered += t.reordered;
      console.log(
        `power loss: ${name}: ${t.checked.size} crash states checked (${t.snapshots} snapshots, ${t.reordered} found only by ${t.orders} reordered runs), ${t.violations.length} violations`,
      );
    }
    console.log(
      `power loss: ${total} crash states checked in total (${reordered} by reordered completions), ${bad} violations`,
    );
  });

  for (const backend of BACKENDS) {
    describe(backend.name, () => {
      it('(a) growth and segment creation: synced bytes survive every state', async () => {
        await explore(backend, 'segment creation', async (run) => {
          await run.open();
          await run.write(0, pattern(3000, 1));
          await run.sync();
          await run.write(3000, pattern(3000, 2)); // into segment 1
          await run.sync();
          await run.write(6000, pattern(2 * SEGMENT + 500, 3)); // spans segments 1..3
          await run.sync();
          await run.write(run.model.length + SEGMENT + 10, pattern(700, 4)); // a gap, a new segment
          await run.write(0, pattern(100, 5)); // an overwrite of synced bytes, then sync
          await run.sync();
        });
      });

      it('(b) prefix truncation: the head never reverts below a durable truncateBefore, nothing durable is lost', async () => {
        const { t } = await explore(backend, 'prefix truncation', async (run) => {
          await run.open();
          await run.write(0, pattern(6 * SEGMENT + 200, 11));
          await run.sync();
          await run.truncateBefore(100); // inside segment 0: nothing to delete
          await run.truncateBefore(2 * SEGMENT + 100); // deletes segments 0 and 1
          await run.truncateBefore(4 * SEGMENT); // exactly on a boundary: deletes 2 and 3
          await run.write(run.model.length, pattern(SEGMENT, 12)); // unsynced tail meanwhile
          await run.truncateBefore(5 * SEGMENT + 7);
          await run.sync();
        });
        if (backend.segmented) {
          // Both sides of every head replacement were reached, not only one.
          for (const head of [0, 100, 2 * SEGMENT + 100, 4 * SEGMENT, 5 * SEGMENT + 7]) {
            assert.ok((t.heads.get(head) ?? 0) > 0, `no state reopened with head ${head}`);
          }
        }
      });

      it('(c) metadata replacement: old or new map, never mixed or damaged', async () => {
        await explore(
          backend,
          'metadata replacement',
          async (run) => {
            await run.open();
            await run.write(0, pattern(500, 21));
            await run.sync();
            await run.updateMeta({ a: 1, b: 'x' });
            await run.updateMeta({ b: 'y'.repeat(3000), c: true }); // grows past a sector
            await run.updateMeta({ a: undefined }); // removes a key
            await run.updateMeta({ b: 'z' }); // shrinks
            await run.truncateBefore(200); // FileStore keeps its head in the same file
            await run.updateMeta({ d: 4.5 });
          },
          60,
        );
      });

      it('(d) suffix truncation: kept bytes survive, cut bytes never resurface', async () => {
        await explore(backend, 'suffix truncation', async (run) => {
          await run.open();
          await run.write(0, pattern(5 * SEGMENT + 300, 31));
          await run.sync();
          await run.truncate(2 * SEGMENT + 1000); // deletes segments 3..5, cuts segment 2
          await run.write(3 * SEGMENT + 50, pattern(200, 32)); // past the cut: a gap of zeros
          await run.sync();
          await run.truncate(SEGMENT); // exactly on a boundary
          await run.write(SEGMENT + 500, pattern(100, 33)); // unsynced, then cut again
          await run.truncate(SEGMENT - 10);
          await run.write(2 * SEGMENT, pattern(50, 34));
          await run.sync();
        });
      });

      it('(e) first open of a new log: once open resolves, the log survives', async () => {
        await explore(backend, 'first open', async (run) => {
          await run.open();
          await run.updateMeta({ v: 1 });
          await run.write(0, pattern(100, 41));
          await run.sync();
        });
      });

      it('(f) segments closed to make room between writes and their sync: nothing synced is lost', async () => {
        await explore(backend, 'closed before sync', async (run) => {
          await run.open();
          await run.write(0, pattern(3 * SEGMENT - 100, 61)); // segments 0..2 in one write
          await run.read(100, 50); // segment 0 again: with one open segment, 2 is closed
          await run.write(SEGMENT + 10, pattern(300, 62)); // 1: closes 0
          await run.sync();
          await run.write(3 * SEGMENT - 100, pattern(SEGMENT, 63)); // 2 and 3
          await run.write(0, pattern(200, 64)); // an overwrite of synced bytes in 0
          await run.read(2 * SEGMENT, 50); // 2: closes 0 holding the overwrite
          await run.write(5 * SEGMENT + 7, pattern(100, 65)); // a gap, then 5
          await run.read(10, 10);
          await run.sync();
          const end = run.fs.mark('closing the store');
          assert.deepEqual(unsyncedCloses(run.fs.operations, end), []);
          if (backend.name.includes('1 open segment')) {
            const closes = run.fs.operations.filter(
              (op) => op.call === 'close' && op.path?.endsWith('.wal') && op.issuedAt < end,
            );
            assert.ok(closes.length >= 5, `only ${closes.length} segment files were closed`);
          }
        });
      });

      it('(e) first open after a process crash during an earlier first open', async () => {
        // Kill the process at every call of a first open, then open again:
        // what the second open resolves must survive a power loss too.
        const probe = freshFs();
        await backend.open(probe).then((store) => store.close());
        const calls = probe.operations.length;
        // The calls in flight at the kill: all ran, none did, a seeded mix.
        const fates = ['ran', 'lost', undefined] as const;
        const runs: Run[] = [];
        for (let kill = 0; kill <= calls * fates.length + fates.length - 1; kill++) {
          const inFlight = fates[kill % fates.length];
          const run = new Run(backend, 'first open after a crash', 20);
          const first = backend.open(run.fs);
          first.catch(() => undefined);
          for (let i = 0; i < Math.floor(kill / fates.length); i++) await tick();
          // What the killed open still runs fails and lands nothing.
          run.fs = run.fs.processCrash(inFlight === undefined ? { seed: kill } : { inFlight });
          // A FileStore open writes nothing durable of its own: losing the
          // still-empty file is harmless until a durable operation resolves.
          // A SegmentedStore open writes its metadata (segment size) durably.
          await run.open(backend.segmented);
          await run.updateMeta({ v: kill });
          await run.write(0, pattern(100, 50 + kill));
          await run.sync();
          await run.check();
          runs.push(run);
        }
        for (const run of runs) assertClean(run, tally(run.workload).violations);
      });
    });
  }
});
