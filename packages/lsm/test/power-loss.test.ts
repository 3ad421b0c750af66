/**
 * Power loss at every step of the engine's work: writes, range deletions, background and
 * explicit flushes (table file, directory fsync, manifest edit, log
 * truncation), manifest compaction, close and recovery itself. The workload
 * (with compactions: small level budgets) runs over a CrashFs; between operations and after every macrotask while
 * one is in flight, a sample of the states a power loss could leave is taken,
 * and each is opened and checked: every acknowledged durable write is there,
 * no acknowledged delete comes back, no value appears that was never
 * written, no orphan table stays, a second open agrees, and the store takes
 * writes and flushes again. One workload runs over logs that commit with a
 * write and then an fdatasync (@wal/core's `durableWrites: false`), where a
 * durable write's record is written some time before it is durable.
 */
import assert from 'node:assert/strict';
import { CrashFs, type CrashState, type CrashStates } from '@wal/store/testing';
import { Lsm, type LsmOptions } from '../src/index.js';
import { LOG_OPTIONS } from '../src/options.js';
import { bytes, isCode, text, tick } from './helpers.js';

const DIR = '/db';
const PER_STEP = 3;
const OPTIONS: LsmOptions = {
  segmentSize: 4096,
  writeBufferSize: 1024,
  blockSize: 256,
  level0Trigger: 2,
  levelBaseBytes: 1024,
  levelRatio: 2,
  targetFileSize: 1024,
  maxManifestBytes: 1024,
};

/**
 * Per key: the last acknowledged durable outcome, and every outcome issued
 * and not superseded by an acknowledged one issued after it (by write number).
 */
interface KeyModel {
  acked: string | null | undefined;
  since: Map<number, string | null>;
}

interface Snap {
  readonly label: string;
  readonly states: CrashStates;
  readonly model: Map<string, { acked: string | null | undefined; since: (string | null)[] }>;
}

class Run {
  readonly fs = new CrashFs();
  /**
   * With `snapAtAck`, states are also sampled when each durable write is
   * acknowledged (inside its promise's reaction): with blocking commits the
   * write, its fdatasync and the acknowledgement run in one chain of
   * microtasks, between two macrotask samples.
   */
  constructor(readonly snapAtAck = false) {}
  readonly keys = new Map<string, KeyModel>();
  readonly snaps: Snap[] = [];
  db!: Lsm;
  #seed = 1;
  /** Numbers the writes in call order. */
  #writes = 0;

  /** Acknowledges `value` for `model`: what was issued up to write `id` is superseded. */
  static #acknowledge(model: KeyModel, id: number, value: string | null): void {
    model.acked = value;
    for (const issued of model.since.keys()) if (issued <= id) model.since.delete(issued);
  }

  #key(key: string): KeyModel {
    let model = this.keys.get(key);
    if (model === undefined) {
      model = { acked: undefined, since: new Map() };
      this.keys.set(key, model);
    }
    return model;
  }

  snap(label: string): void {
    const model = new Map(
      [...this.keys].map(([key, m]) => [key, { acked: m.acked, since: [...m.since.values()] }]),
    );
    this.snaps.push({
      label,
      states: this.fs.crashStates({ mode: 'sample', limit: PER_STEP, seed: this.#seed++ }),
      model,
    });
  }

  async step<T>(label: string, operation: () => Promise<T>): Promise<T> {
    let settled = false;
    const promise = operation().finally(() => {
      settled = true;
    });
    promise.catch(() => undefined);
    for (let n = 0; !settled; n++) {
      this.snap(`${label} (in flight, macrotask ${n})`);
      await tick();
    }
    const value = await promise;
    this.snap(`${label} (resolved)`);
    return value;
  }

  /** A write of `value` (null: delete); durable ones count once acknowledged. */
  write(key: string, value: string | null, durable: boolean): Promise<void> {
    const model = this.#key(key);
    const id = this.#writes++;
    model.since.set(id, value);
    const options = { sync: durable };
    const done =
      value === null
        ? this.db.del(bytes(key), options)
        : this.db.put(bytes(key), bytes(value), options);
    return done.then(() => {
      if (!durable) return;
      Run.#acknowledge(model, id, value);
      if (this.snapAtAck) this.snap(`acknowledged write ${id} (${key})`);
    });
  }

  /**
   * One step of `count` turns of the event loop, each issuing `writes(turn)`
   * before the writes of the turns before it are acknowledged.
   */
  overlapping(label: string, count: number, writes: (turn: number) => Promise<void>[]) {
    return this.step(label, async () => {
      const issued: Promise<void>[] = [];
      for (let turn = 0; turn < count; turn++) {
        issued.push(...writes(turn));
        await tick();
      }
      await Promise.all(issued);
    });
  }

  /** A durable range deletion of `[start, end)`: every key written so far in it reads absent once acknowledged. */
  deleteRange(start: string, end: string): Promise<void> {
    const covered = [...this.keys].filter(([key]) => start <= key && key < end);
    const id = this.#writes++;
    for (const [, model] of covered) model.since.set(id, null);
    return this.db.delRange(bytes(start), bytes(end), { sync: true }).then(() => {
      for (const [, model] of covered) Run.#acknowledge(model, id, null);
    });
  }
}

/** The checking opens start no compaction: the table count they check must stand still. */
const CHECK_OPTIONS: LsmOptions = { ...OPTIONS, level0Trigger: 1000, levelBaseBytes: 2 ** 40 };

async function check(snap: Snap): Promise<number> {
  let states = 0;
  for (const state of snap.states) {
    states++;
    const where = `${snap.label}: ${state.description}`;
    const fs = state.fs();
    let db: Lsm;
    try {
      db = await Lsm.open(DIR, { fs, ...CHECK_OPTIONS });
    } catch (error) {
      // A crash before the store's directory was durable leaves nothing, or
      // an empty directory: both open. Anything else failing is a bug.
      throw new Error(`${where}: open failed: ${String(error)}`, { cause: error });
    }
    try {
      const verify = async (): Promise<void> => {
        for (const [key, model] of snap.model) {
          const got = text(await db.get(bytes(key))) ?? null;
          const allowed = new Set<string | null>([model.acked ?? null, ...model.since]);
          assert.ok(
            allowed.has(got),
            `${where}: key ${key} reads ${got}; acknowledged ${model.acked}, since ${[...model.since]}`,
          );
        }
        const tables = (await fs.readdir(DIR)).filter((name) => name.endsWith('.sst')).length;
        const live = db.stats().tables.reduce((a, b) => a + b, 0);
        assert.equal(
          tables,
          live,
          `${where}: ${tables} table files, ${live} live (an orphan stayed)`,
        );
      };
      await verify();
      await db.close();
      db = await Lsm.open(DIR, { fs, ...CHECK_OPTIONS });
      await verify();
      await db.put(bytes('after'), bytes('crash'), { sync: true });
      await db.flush();
      assert.equal(text(await db.get(bytes('after'))), 'crash', where);
    } finally {
      await db.close();
    }
  }
  return states;
}

/** Checks every state `run` sampled: more than `least` of them. */
async function checkAll(run: Run, least: number): Promise<void> {
  let states = 0;
  for (const snap of run.snaps) states += await check(snap);
  assert.ok(states > least, `${states} states checked`);
}

describe('power loss (engine over CrashFs)', function () {
  this.timeout(170_000);

  it('keeps every acknowledged durable write through writes, flushes, manifest compaction and reopen', async () => {
    const run = new Run();
    run.db = await run.step('open (create)', () => Lsm.open(DIR, { fs: run.fs, ...OPTIONS }));
    let compacted = 0;
    const value = (i: number): string => `value-${i}-${'x'.repeat(i % 40)}`;
    for (let i = 0; i < 40; i++) {
      const key = `k${String(i % 25).padStart(2, '0')}`;
      if (i % 9 === 4) {
        await run.step(`delete ${key}`, () =>
          run.write(`k${String(i % 7).padStart(2, '0')}`, null, true),
        );
      }
      if (i % 5 === 2) {
        // A burst: written-level and durable writes in flight together, in
        // either order (a durable write is acknowledged only once durable,
        // even when a written-level one after it in the same turn is written).
        const durableFirst = i % 10 === 7;
        await run.step(`burst at ${i}`, () =>
          Promise.all(
            durableFirst
              ? [run.write(key, value(i), true), run.write(`b${i}`, value(i), false)]
              : [run.write(`b${i}`, value(i), false), run.write(key, value(i), true)],
          ),
        );
      } else {
        await run.step(`put ${key} #${i}`, () => run.write(key, value(i), true));
      }
      if (i % 11 === 7) {
        const from = (i * 3) % 25;
        const [start, end] = [
          `k${String(from).padStart(2, '0')}`,
          `k${String(from + 4).padStart(2, '0')}`,
        ];
        await run.step(`delete range [${start}, ${end})`, () => run.deleteRange(start, end));
      }
      if (i === 15 || i === 30) await run.step(`flush at ${i}`, () => run.db.flush());
      if (i === 20) await run.step('compact manifest', () => run.db.compactManifest());
      if (i === 25) {
        compacted += run.db.stats().compactedBytes;
        await run.step('close', () => run.db.close());
        run.db = await run.step('reopen', () => Lsm.open(DIR, { fs: run.fs, ...OPTIONS }));
      }
    }
    await run.step('compact', () => run.db.compact());
    compacted += run.db.stats().compactedBytes;
    assert.ok(compacted > 0, 'compactions ran');
    await run.step('final close', () => run.db.close());

    await checkAll(run, 200);
  });

  it('acknowledges each durable write of turns in flight together only once its own record is durable', async () => {
    const run = new Run();
    run.db = await run.step('open (create)', () => Lsm.open(DIR, { fs: run.fs, ...OPTIONS }));
    // One or two durable writes per turn, each turn's issued before the
    // previous ones are durable: the log has several in flight at once.
    await run.overlapping('overlapping turns', 30, (turn) => [
      run.write(`k${turn % 6}`, `value-${turn}`, true),
      ...(turn % 3 === 0 ? [run.write(`j${turn % 4}`, `other-${turn}`, true)] : []),
    ]);
    await run.step('close', () => run.db.close());
    await checkAll(run, 30);
  });

  it('over logs that commit with a write and then an fdatasync, acknowledges a durable write of a mixed turn only once durable', async () => {
    // The records of a turn are written before they are made durable: a
    // written-level write after a durable one in the same turn must not
    // acknowledge the durable one when its record is written.
    const options = { ...OPTIONS, [LOG_OPTIONS]: { durableWrites: false } };
    const run = new Run();
    run.db = await run.step('open (create)', () => Lsm.open(DIR, { fs: run.fs, ...options }));
    for (let turn = 0; turn < 24; turn++) {
      const durable = (): Promise<void> => run.write(`k${turn % 5}`, `value-${turn}`, true);
      const written = (): Promise<void> => run.write(`w${turn % 3}`, `other-${turn}`, false);
      await run.step(`mixed turn ${turn}`, () =>
        Promise.all(turn % 2 === 0 ? [durable(), written()] : [written(), durable()]),
      );
    }
    await run.overlapping('overlapping mixed turns', 20, (turn) => [
      run.write(`k${turn % 5}`, `again-${turn}`, true),
      run.write(`w${turn % 3}`, `again-${turn}`, false),
    ]);
    await run.step('close', () => run.db.close());
    await checkAll(run, 30);
  });

  it('with blockingSync, acknowledges a durable write only once its record is durable, through a flush and reopen', async () => {
    // The data log writes and syncs on the calling thread (pwriteSync,
    // fdatasyncSync), in the microtask after the turn's writes.
    const options = { ...OPTIONS, blockingSync: true };
    const run = new Run(true);
    run.db = await run.step('open (create)', () => Lsm.open(DIR, { fs: run.fs, ...options }));
    for (let turn = 0; turn < 16; turn++) {
      const durable = (): Promise<void> => run.write(`k${turn % 5}`, `value-${turn}`, true);
      const written = (): Promise<void> => run.write(`w${turn % 3}`, `other-${turn}`, false);
      await run.step(`mixed turn ${turn}`, () =>
        Promise.all(turn % 2 === 0 ? [durable(), written()] : [written(), durable()]),
      );
      if (turn === 8) await run.step('flush', () => run.db.flush());
    }
    await run.step('close', () => run.db.close());
    run.db = await run.step('reopen', () => Lsm.open(DIR, { fs: run.fs, ...options }));
    await run.overlapping('overlapping mixed turns', 12, (turn) => [
      run.write(`k${turn % 5}`, `again-${turn}`, true),
      run.write(`w${turn % 3}`, `again-${turn}`, false),
    ]);
    await run.step('close', () => run.db.close());
    const logCalls = (call: string) =>
      run.fs.operations.filter((op) => op.call === call && op.path?.startsWith(`${DIR}/wal/`))
        .length;
    assert.ok(logCalls('fdatasyncSync') > 10, `${logCalls('fdatasyncSync')} fdatasyncSync`);
    assert.equal(logCalls('pwriteDurable'), 0);
    await checkAll(run, 100);
  });

  it('a store is complete once its first open resolves: a data log lost after that is WAL_CORRUPTION, never a creation cut short', async () => {
    // The first open's manifest edit must be durable when the open resolves
    // (LSM-FORMAT.md §9 step 7): a manifest without edits beside a missing
    // data log reads as a creation cut short, and opens as an empty store.
    const fs = new CrashFs();
    const db = await Lsm.open(DIR, { fs, ...OPTIONS });
    await db.put(bytes('key'), bytes('value'), { sync: true });
    let states = 0;
    for (const state of fs.crashStates({ limit: 40 })) {
      states++;
      const files = new Map([...state.files].filter(([path]) => !path.startsWith(`${DIR}/wal/`)));
      const dirs = new Set([...(state.dirs ?? [])].filter((dir) => dir !== `${DIR}/wal`));
      const lost = new CrashFs({ image: { files, dirs } });
      await assert.rejects(
        Lsm.open(DIR, { fs: lost, ...CHECK_OPTIONS }),
        isCode('WAL_CORRUPTION', /the data log .* is missing/),
        state.description,
      );
    }
    await db.close();
    assert.ok(states > 1, `${states} states`);
  });

  it('an open after a process crash during a first open makes what that open left durable: the directory, its marker', async () => {
    // A process killed at any call of the first open may leave the store's
    // directory without its parent's fsync and the marker written but not
    // synced. The next open finds both in the page cache and must make them
    // durable itself, the marker's entry before it creates the manifest: else
    // a power loss during that open could leave the manifest without the
    // marker, or after an acknowledged write take the whole store, or leave a
    // marker cut short beside the manifest (neither is a store of ours).
    const probe = new CrashFs();
    await (await Lsm.open(DIR, { fs: probe, ...OPTIONS })).close();
    const calls = probe.operations.length;
    let states = 0;
    /** Opens `state`, failing with `where` when it does not open. */
    const reopen = (state: CrashState, where: string): Promise<Lsm> => {
      states++;
      return Lsm.open(DIR, { fs: state.fs(), ...CHECK_OPTIONS }).catch((error: unknown) => {
        throw new Error(`${where}: open failed: ${String(error)}`, { cause: error });
      });
    };
    for (let kill = 0; kill <= calls; kill++) {
      const killed = new CrashFs();
      const first = Lsm.open(DIR, { fs: killed, ...OPTIONS });
      first.catch(() => undefined);
      for (let i = 0; i < kill; i++) await tick();
      // The calls in flight at the kill: all ran, none did, or a seeded mix, in turn.
      const fate = (['ran', 'lost', undefined] as const)[kill % 3];
      const fs = killed.processCrash(fate === undefined ? { seed: kill } : { inFlight: fate });
      // What the killed open still runs fails (every call of its process does).
      await first.then((db) => db.close()).catch(() => undefined);
      // Every state of the next open, while it runs: nothing acknowledged yet, but it opens.
      let opened = false;
      const opening = Lsm.open(DIR, { fs, ...OPTIONS }).finally(() => {
        opened = true;
      });
      opening.catch(() => undefined);
      const during: CrashStates[] = [];
      while (!opened) {
        during.push(fs.crashStates({ limit: 6, seed: kill }));
        await tick();
      }
      const db = await opening;
      for (const snapshot of during) {
        for (const state of snapshot) {
          await (
            await reopen(state, `killed after ${kill} calls, next open: ${state.description}`)
          ).close();
        }
      }
      // Then an acknowledged write: in every state.
      const value = `value-${kill}`;
      await db.put(bytes('key'), bytes(value), { sync: true });
      for (const state of fs.crashStates({ limit: 12, seed: kill })) {
        const where = `killed after ${kill} calls: ${state.description}`;
        const reopened = await reopen(state, where);
        try {
          assert.equal(text(await reopened.get(bytes('key'))), value, where);
        } finally {
          await reopened.close();
        }
      }
      await db.close();
    }
    assert.ok(states > calls, `${states} states checked`);
  });
});
