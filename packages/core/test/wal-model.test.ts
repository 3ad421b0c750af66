/**
 * Model-based test of the Wal: random sequences of appends (with every wait
 * level), batches, syncs, reads (of records, of non-boundaries, outside the
 * log), iterations, truncations at both ends, clean reopens and power losses,
 * over a SegmentedStore with small segments on a CrashFs kept across
 * reopens, checked step by step against a reference model: the list of live
 * records (LSN and payload), the head and the tail.
 */

import assert from 'node:assert/strict';
import { CrashFs } from '@wal/store/testing';
import fc from 'fast-check';
import { HEADER_SIZE } from '../src/frame.js';
import { Wal } from '../src/index.js';
import { fillStream } from './bytes.js';
import { record } from './crash/reliability.js';

/** Multiplies the number of runs: `WAL_MODEL_SCALE=100` is the soak (see `pnpm soak:model`). */
const SCALE = Math.max(1, Number(process.env.WAL_MODEL_SCALE ?? 1) || 1);

const DIR = '/wal';
const SEGMENT = 4096;

interface Entry {
  readonly lsn: number;
  readonly payload: Uint8Array;
}

interface Model {
  records: Entry[];
  head: number;
  tail: number;
}

interface Real {
  wal: Wal;
  readonly fs: CrashFs;
}

type Layout = 'segmented' | 'file';
let layout: Layout = 'segmented';

function open(fs: CrashFs): Promise<Wal> {
  const common = { fs, indexInterval: 4096, stagingLimit: 64 * 1024 };
  return layout === 'segmented'
    ? Wal.open(DIR, { ...common, segmentSize: SEGMENT })
    : Wal.open(`${DIR}.log`, { ...common, layout: 'file' });
}

let nextTag = 1;

/** Fresh pseudo-random bytes: every payload of a run is different. */
function payloadOf(length: number): Uint8Array {
  return fillStream(new Uint8Array(length), nextTag++ * 2654435761);
}

const frameEnd = (entry: Entry): number => entry.lsn + HEADER_SIZE + entry.payload.length;

async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
  try {
    await promise;
  } catch (error) {
    assert.equal((error as { code?: unknown }).code, code, String(error));
    return;
  }
  assert.fail(`expected a rejection with ${code}`);
}

/** When staging is full, an append throws WAL_BUSY (and reserves nothing) until drained. */
async function respectBackPressure(wal: Wal): Promise<void> {
  if (wal.writable) return;
  const tail = wal.tail;
  assert.throws(() => wal.append(new Uint8Array(1)), { code: 'WAL_BUSY' });
  assert.equal(wal.tail, tail);
  await wal.drained();
  assert.equal(wal.writable, true);
}

function checkState(model: Model, wal: Wal): void {
  assert.equal(wal.head, model.head, 'head');
  assert.equal(wal.tail, model.tail, 'tail');
  assert.ok(wal.durable <= wal.written && wal.written <= wal.tail, 'watermarks in order');
}

type Command = fc.AsyncCommand<Model, Real>;

class Append implements Command {
  constructor(
    readonly size: number,
    readonly wait: 'none' | 'written' | 'durable',
  ) {}
  check(): boolean {
    return true;
  }
  async run(model: Model, real: Real): Promise<void> {
    const payload = payloadOf(this.size);
    const { wal } = real;
    await respectBackPressure(wal);
    const lsn =
      this.wait === 'none' ? wal.append(payload) : await wal.append(payload, { wait: this.wait });
    assert.equal(lsn, model.tail, 'the LSN is the tail');
    model.records.push({ lsn, payload });
    model.tail = lsn + HEADER_SIZE + payload.length;
    if (this.wait === 'written') assert.ok(wal.written > lsn);
    if (this.wait === 'durable') assert.ok(wal.durable > lsn);
    checkState(model, wal);
  }
  toString(): string {
    return `append(${this.size}, ${this.wait})`;
  }
}

class AppendBatch implements Command {
  constructor(
    readonly sizes: readonly number[],
    readonly wait: boolean,
  ) {}
  check(): boolean {
    return true;
  }
  async run(model: Model, real: Real): Promise<void> {
    const payloads = this.sizes.map(payloadOf);
    await respectBackPressure(real.wal);
    const lsns = this.wait
      ? await real.wal.appendBatch(payloads, { wait: 'durable' })
      : real.wal.appendBatch(payloads);
    let at = model.tail;
    for (const [i, payload] of payloads.entries()) {
      assert.equal(lsns[i], at);
      model.records.push({ lsn: at, payload });
      at += HEADER_SIZE + payload.length;
    }
    model.tail = at;
    // Durable through the last one (an empty batch waits for nothing).
    if (this.wait && lsns.length > 0) assert.equal(real.wal.durable, model.tail);
    checkState(model, real.wal);
  }
  toString(): string {
    return `appendBatch([${this.sizes.join(', ')}]${this.wait ? ', durable' : ''})`;
  }
}

class Sync implements Command {
  check(): boolean {
    return true;
  }
  async run(model: Model, real: Real): Promise<void> {
    await real.wal.sync();
    assert.equal(real.wal.durable, model.tail);
    checkState(model, real.wal);
  }
  toString(): string {
    return 'sync()';
  }
}

class Read implements Command {
  constructor(readonly pick: number) {}
  check(model: Readonly<Model>): boolean {
    return model.records.length > 0;
  }
  async run(model: Model, real: Real): Promise<void> {
    const entry = model.records[this.pick % model.records.length]!;
    assert.deepEqual(await real.wal.read(entry.lsn), entry.payload, `record at ${entry.lsn}`);
  }
  toString(): string {
    return `read(#${this.pick})`;
  }
}

class ReadNonBoundary implements Command {
  constructor(
    readonly pick: number,
    readonly delta: number,
  ) {}
  check(model: Readonly<Model>): boolean {
    return model.records.length > 0;
  }
  async run(model: Model, real: Real): Promise<void> {
    const entry = model.records[this.pick % model.records.length]!;
    // Strictly inside the frame: never a boundary.
    const offset = entry.lsn + 1 + (this.delta % (HEADER_SIZE + entry.payload.length - 1));
    await expectCode(real.wal.read(offset), 'WAL_NOT_BOUNDARY');
    await expectCode(real.wal.iterate(offset).next(), 'WAL_NOT_BOUNDARY');
    if (this.delta % 2 === 0) await expectCode(real.wal.truncateAfter(offset), 'WAL_NOT_BOUNDARY');
    else await expectCode(real.wal.truncateBefore(offset), 'WAL_NOT_BOUNDARY');
    checkState(model, real.wal);
  }
  toString(): string {
    return `readNonBoundary(#${this.pick}, +${this.delta})`;
  }
}

class ReadOutside implements Command {
  constructor(readonly past: number) {}
  check(): boolean {
    return true;
  }
  async run(model: Model, real: Real): Promise<void> {
    await expectCode(real.wal.read(model.tail + this.past), 'ERR_OUT_OF_RANGE');
    if (model.head > 0) {
      await expectCode(real.wal.read(this.past % model.head), 'WAL_TRUNCATED');
    }
  }
  toString(): string {
    return `readOutside(+${this.past})`;
  }
}

class Iterate implements Command {
  constructor(
    readonly pick: number,
    readonly batchBytes: number | undefined,
  ) {}
  check(): boolean {
    return true;
  }
  async run(model: Model, real: Real): Promise<void> {
    const { wal } = real;
    const written = wal.written;
    // Boundaries up to the written watermark (see the BUG test of iterate(tail) in wal.test.ts).
    const starts = [...model.records.map((r) => r.lsn), model.tail].filter((lsn) => lsn <= written);
    const from = starts.length === 0 ? written : starts[this.pick % starts.length]!;
    const expected = model.records.filter((r) => r.lsn >= from && frameEnd(r) <= written);
    const seen: Entry[] = [];
    if (this.batchBytes === undefined) {
      for await (const record of wal.iterate(from)) seen.push(record);
    } else {
      for await (const batch of wal.iterateBatches(from, { batchBytes: this.batchBytes })) {
        assert.ok(batch.length > 0, 'no empty batch');
        seen.push(...batch);
      }
    }
    assert.deepEqual(
      seen.map((r) => r.lsn),
      expected.map((r) => r.lsn),
      `iterate from ${from} (written ${written})`,
    );
    for (const [i, record] of seen.entries())
      assert.deepEqual(record.payload, expected[i]!.payload);
  }
  toString(): string {
    return `iterate(#${this.pick}${this.batchBytes === undefined ? '' : `, batches of ${this.batchBytes}`})`;
  }
}

class TruncateAfter implements Command {
  constructor(readonly pick: number) {}
  check(model: Readonly<Model>): boolean {
    return model.records.length > 0;
  }
  async run(model: Model, real: Real): Promise<void> {
    const index = this.pick % model.records.length;
    const entry = model.records[index]!;
    await real.wal.truncateAfter(entry.lsn);
    model.records = model.records.slice(0, index + 1);
    model.tail = frameEnd(entry);
    checkState(model, real.wal);
    assert.equal(real.wal.written, model.tail);
  }
  toString(): string {
    return `truncateAfter(#${this.pick})`;
  }
}

class TruncateBefore implements Command {
  constructor(readonly pick: number) {}
  check(): boolean {
    return true;
  }
  async run(model: Model, real: Real): Promise<void> {
    const starts = [...model.records.map((r) => r.lsn), model.tail];
    const lsn = starts[this.pick % starts.length]!;
    await real.wal.truncateBefore(lsn);
    model.records = model.records.filter((r) => r.lsn >= lsn);
    model.head = lsn;
    checkState(model, real.wal);
  }
  toString(): string {
    return `truncateBefore(#${this.pick})`;
  }
}

class Reopen implements Command {
  constructor(readonly viaReopen: boolean) {}
  check(): boolean {
    return true;
  }
  async run(model: Model, real: Real): Promise<void> {
    const old = real.wal;
    if (this.viaReopen) {
      real.wal = await old.reopen();
    } else {
      await old.close();
      real.wal = await open(real.fs);
    }
    assert.equal(real.wal.recovery.tornBytes, 0, 'a clean close leaves no torn tail');
    assert.equal(real.wal.recovery.records, model.records.length);
    assert.equal(real.wal.durable, model.tail);
    checkState(model, real.wal);
  }
  toString(): string {
    return this.viaReopen ? 'reopen()' : 'close(); open()';
  }
}

/**
 * A power loss at a random moment (writes and syncs may be in flight): the
 * reopened log keeps at least every record that was durable, and is a prefix
 * of the model at a record boundary.
 */
class PowerLoss implements Command {
  constructor(readonly seed: number) {}
  check(): boolean {
    return true;
  }
  async run(model: Model, real: Real): Promise<void> {
    const durable = real.wal.durable;
    real.fs.powerLoss({ seed: this.seed });
    await real.wal.close().catch(() => {});
    real.wal = await open(real.fs);
    const { wal } = real;
    assert.equal(wal.head, model.head, 'head after a power loss');
    assert.ok(wal.tail >= durable, `tail ${wal.tail} below the durable watermark ${durable}`);
    const kept = model.records.filter((r) => frameEnd(r) <= wal.tail);
    const end = kept.length === 0 ? model.head : frameEnd(kept.at(-1)!);
    assert.equal(wal.tail, end, `tail ${wal.tail} is not a record boundary of the model`);
    model.records = kept;
    model.tail = end;
    assert.equal(wal.recovery.records, kept.length);
    checkState(model, wal);
  }
  toString(): string {
    return `powerLoss(${this.seed})`;
  }
}

const size = fc.oneof(
  { arbitrary: fc.nat({ max: 200 }), weight: 6 },
  { arbitrary: fc.nat({ max: 6000 }), weight: 2 },
  { arbitrary: fc.integer({ min: 16_000, max: 20_000 }), weight: 1 },
);

const append = fc
  .tuple(size, fc.constantFrom('none' as const, 'written' as const, 'durable' as const))
  .map(([n, wait]) => new Append(n, wait));

// Appends are listed three times: the log should grow more than it shrinks.
const commands = [
  append,
  append,
  append,
  fc
    .tuple(fc.array(size, { maxLength: 5 }), fc.boolean())
    .map(([sizes, wait]) => new AppendBatch(sizes, wait)),
  fc.constant(new Sync()),
  fc.nat().map((pick) => new Read(pick)),
  fc.tuple(fc.nat(), fc.nat()).map(([pick, delta]) => new ReadNonBoundary(pick, delta)),
  fc.nat({ max: 10_000 }).map((past) => new ReadOutside(past)),
  fc
    .tuple(fc.nat(), fc.option(fc.integer({ min: 8, max: 3000 }), { nil: undefined }))
    .map(([pick, batchBytes]) => new Iterate(pick, batchBytes)),
  fc.nat().map((pick) => new TruncateAfter(pick)),
  fc.nat().map((pick) => new TruncateBefore(pick)),
  fc.boolean().map((via) => new Reopen(via)),
  fc.nat({ max: 1000 }).map((seed) => new PowerLoss(seed)),
];

describe('Wal against a reference model', () => {
  const runs: Array<[Layout, number]> = [
    ['segmented', 400 * SCALE],
    ['file', 100 * SCALE],
  ];
  // To replay a failure: WAL_MODEL_REPLAY='{"layout":"segmented","seed":…,"path":"…","replayPath":"…"}'
  // with the values fast-check printed (replayPath is in the counterexample's comment).
  const replay = process.env.WAL_MODEL_REPLAY
    ? (JSON.parse(process.env.WAL_MODEL_REPLAY) as {
        layout: Layout;
        seed: number;
        path: string;
        replayPath?: string;
      })
    : undefined;
  for (const [kind, numRuns] of runs) {
    if (replay !== undefined && replay.layout !== kind) continue;
    it(`matches the model under random commands (${kind} layout on a CrashFs kept across reopens)`, async function () {
      this.timeout(SCALE === 1 ? 120_000 : 0);
      layout = kind;
      await fc.assert(
        fc.asyncProperty(
          fc.commands(commands, {
            maxCommands: 60,
            size: 'large',
            ...(replay?.replayPath === undefined ? {} : { replayPath: replay.replayPath }),
          }),
          async (cmds) => {
            const fs = new CrashFs();
            const real: Real = { wal: await open(fs), fs };
            const model: Model = { records: [], head: 0, tail: 0 };
            try {
              await fc.asyncModelRun(() => ({ model, real }), cmds);
              // At the end: everything reads back, in order.
              const seen: Entry[] = [];
              await real.wal.sync();
              for await (const record of real.wal.iterate()) seen.push(record);
              assert.deepEqual(
                seen.map((r) => r.lsn),
                model.records.map((r) => r.lsn),
              );
            } finally {
              await real.wal.close().catch(() => {});
            }
          },
        ),
        replay === undefined
          ? { numRuns }
          : { numRuns, seed: replay.seed, path: replay.path, endOnFailure: true },
      );
      record({ modelRuns: numRuns });
    });
  }
});
