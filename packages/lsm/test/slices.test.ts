/**
 * Flushes and compactions build their tables in slices (src/timeslice.ts):
 * with a clock by which every slice is over at its first look, a flush and
 * a compaction merge give the turn back while they build a table, before
 * their next call on the file system, and what they write stays right.
 */
import assert from 'node:assert/strict';
import type { Fs } from '@wal/store';
import { CrashFs } from '@wal/store/testing';
import { Lsm, type LsmOptions } from '../src/index.js';
import { SLICE_CLOCK } from '../src/options.js';
import { bytes, text } from './helpers.js';

const DIR = '/db';

/** A table created by a flush or a compaction. */
interface Created {
  readonly path: string;
  /** Whether a turn of the event loop came after its creation, before the next call on the file system. */
  turned: boolean;
}

/**
 * A CrashFs that queues an immediate each time a table file is created and
 * records, at the next call on the file system (or now, with `settle`),
 * whether that immediate ran: whether the work gave the turn back meanwhile.
 */
function turnProbe(): { fs: Fs; created: Created[]; settle(): void } {
  const inner = new CrashFs();
  const created: Created[] = [];
  let pending: { created: Created; ran: boolean } | undefined;
  const settle = (): void => {
    if (pending !== undefined) pending.created.turned = pending.ran;
    pending = undefined;
  };
  const fs = new Proxy(inner, {
    get(target, property) {
      const value = Reflect.get(target, property, target) as unknown;
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        settle();
        const result = (value as (...a: unknown[]) => unknown).apply(target, args);
        const [path, mode] = args;
        if (property !== 'open' || mode !== 'createExclusive' || !String(path).endsWith('.sst')) {
          return result;
        }
        return (result as Promise<unknown>).then((file) => {
          const probe = { created: { path: String(path), turned: false }, ran: false };
          created.push(probe.created);
          pending = probe;
          setImmediate(() => {
            probe.ran = true;
          });
          return file;
        });
      };
    },
  });
  return { fs: fs as Fs, created, settle };
}

/**
 * A clock that moves on at each look: every slice is over at its first
 * look. `looks` counts them: a test that saw none would pass on the real
 * clock's timing, by chance.
 */
const clock = { looks: 0 };
function racingClock(): () => number {
  return () => clock.looks++;
}

const key = (i: number): Uint8Array => bytes(`key${String(i).padStart(6, '0')}`);

/** Every entry of `db`, as `key=value`. */
async function entries(db: Lsm): Promise<string[]> {
  const out: string[] = [];
  for await (const [k, v] of db.iterator()) out.push(`${text(k)}=${text(v)}`);
  return out;
}

async function open(fs: Fs, options: LsmOptions = {}): Promise<Lsm> {
  return Lsm.open(DIR, {
    fs,
    writeBufferSize: 4 << 20,
    ...options,
    [SLICE_CLOCK]: racingClock(),
  } as LsmOptions);
}

/** Puts `count` keys from `from` by `stride`, with values tagged `tag`; the model follows. */
async function putKeys(
  db: Lsm,
  model: Map<string, string>,
  from: number,
  count: number,
  stride: number,
  tag: string,
): Promise<void> {
  const operations = [];
  for (let n = 0; n < count; n++) {
    const i = from + n * stride;
    const value = `${tag}${i}`;
    operations.push({ type: 'put' as const, key: key(i), value: bytes(value) });
    model.set(text(key(i))!, value);
  }
  await db.batch(operations);
}

/** Every key of `model` reads back from `db`, and `db` holds nothing else. */
async function assertHolds(db: Lsm, model: Map<string, string>): Promise<void> {
  const expected = [...model].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => `${k}=${v}`);
  assert.deepEqual(await entries(db), expected);
  for (const [k, v] of model) assert.equal(text(await db.get(bytes(k))), v, k);
}

describe('Lsm: flushes and compactions give the turn back', () => {
  it('a flush of thousands of entries gives the turn back while it builds its table', async () => {
    const { fs, created, settle } = turnProbe();
    const model = new Map<string, string>();
    const db = await open(fs);
    await putKeys(db, model, 0, 3000, 1, 'v');
    const looks = clock.looks;
    await db.flush();
    settle();
    assert.ok(clock.looks > looks, 'the flush read the slice clock it was given');
    assert.equal(created.length, 1, JSON.stringify(created));
    assert.deepEqual(
      created.map((c) => c.turned),
      [true],
      'the flush ran to its next file call without giving the turn back',
    );
    await assertHolds(db, model);
    await db.close();
    const reopened = await open(fs);
    await assertHolds(reopened, model);
    await reopened.close();
  });

  it('a compaction merge gives the turn back while it builds its tables', async () => {
    const { fs, created, settle } = turnProbe();
    const model = new Map<string, string>();
    const db = await open(fs, { level0Trigger: 2 });
    // Two overlapping level-0 tables: the compaction merges them (no move).
    await putKeys(db, model, 0, 2000, 2, 'a');
    await db.flush();
    await putKeys(db, model, 1000, 2000, 1, 'b');
    await db.flush();
    settle();
    assert.equal(created.length, 2, 'the two flushes, not yet the compaction');
    const looks = clock.looks;
    await db.compact();
    settle();
    assert.ok(clock.looks > looks, 'the compaction read the slice clock it was given');
    assert.ok(db.stats().compactions > 0, 'a compaction ran');
    const outputs = created.slice(2);
    assert.ok(outputs.length > 0, 'the compaction wrote tables');
    assert.deepEqual(
      outputs.map((c) => c.turned),
      outputs.map(() => true),
      'the compaction ran to its next file call without giving the turn back',
    );
    await assertHolds(db, model);
    await db.close();
    const reopened = await open(fs, { level0Trigger: 2 });
    await assertHolds(reopened, model);
    await reopened.close();
  });
});
