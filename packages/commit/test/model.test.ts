/**
 * Model-based tests: random interleavings of reservations, in-order and
 * out-of-order completions (plain and durable), failed writes, failed durable
 * writes, syncTo/waitWritten calls, gathering
 * ticks, sync completions, sync failures and resets, checked step by step
 * against a tiny reference model; with a `delayMs` that never runs out in a
 * test, and `syncTo` calls with `delay: false` that cut it short.
 */
import assert from 'node:assert/strict';
import { GroupCommit } from '@wal/commit';
import fc from 'fast-check';
import { drainMicrotasks, FakeSync, tick } from './fake-sync.js';

type WriteState = 'inflight' | 'written' | 'failed' | 'abandoned';

interface Write {
  readonly start: number;
  readonly end: number;
  state: WriteState;
  /** Reported with markDurable: its own range is durable. */
  durable?: boolean;
}

interface Wait {
  readonly kind: 'durable' | 'written';
  readonly target: number;
  /** A `syncTo` with `delay: false`. */
  readonly undelayed: boolean;
  state: 'pending' | 'resolved' | 'rejected';
}

/** A `delayMs` no test outlives: a flush waiting for it starts only when cut short. */
const FOREVER_MS = 600_000;

/** The reference model and the system under test, side by side. */
class World {
  readonly fake = new FakeSync();
  readonly commit: GroupCommit;
  readonly gather: boolean;
  readonly delayed: boolean;
  /**
   * Whether an undelayed `syncTo` was pending at some moment since the last
   * `sync` call began (that call included): only then may a delayed
   * coordinator call `sync` again (the flush it scheduled then may start
   * after the wait settled).
   */
  undelayedSince = false;
  /** Where the current run of writes began: the start offset or the last reset. */
  base: number;
  tail: number;
  writes: Write[] = [];
  poison = Number.POSITIVE_INFINITY;
  poisonCause: unknown;
  /** What the syncs the test resolved covered (a reset lowers it). */
  synced: number;
  latched = false;
  latchedCause: unknown;
  readonly waits: Wait[] = [];
  readonly violations: string[] = [];

  constructor(start: number, gather: boolean, delayed = false) {
    this.gather = gather;
    this.delayed = delayed;
    this.base = start;
    this.tail = start;
    this.synced = start;
    this.commit = new GroupCommit({
      sync: this.fake.sync,
      start,
      gather,
      delayMs: delayed ? FOREVER_MS : 0,
    });
    this.fake.commit = this.commit;
    this.fake.onCall = (call) => {
      if (this.latched) this.violations.push('sync called after a failed sync');
      if (this.fake.calls.slice(0, -1).some((c) => !c.settled)) {
        this.violations.push('two syncs in flight');
      }
      if (call.written !== this.written()) {
        this.violations.push(`sync took written ${call.written}, model ${this.written()}`);
      }
      if (!this.readyWaiter()) this.violations.push('sync called that no waiter needed');
      if (this.delayed && !this.undelayedSince && !this.undelayedPending()) {
        this.violations.push('sync called before the delay ran out, with no undelayed wait');
      }
      this.undelayedSince = this.undelayedPending();
    };
  }

  /** The written watermark, recomputed from scratch. */
  written(): number {
    let written = this.base;
    for (const write of this.writes) {
      if (write.start !== written || write.state !== 'written') break;
      written = write.end;
    }
    return written;
  }

  /**
   * The durable watermark, recomputed from scratch: what the syncs covered,
   * then across the contiguous writes reported durable after it.
   */
  durable(): number {
    let durable = this.synced;
    for (const write of this.writes) {
      if (write.end <= durable) continue;
      if (write.start !== durable || write.state !== 'written' || write.durable !== true) break;
      durable = write.end;
    }
    return durable;
  }

  /** Whether a `syncTo` with `delay: false` is pending. */
  undelayedPending(): boolean {
    return this.waits.some((wait) => wait.undelayed && wait.state === 'pending');
  }

  inflight(): Write[] {
    return this.writes.filter((write) => write.state === 'inflight');
  }

  /** A pending syncTo whose target is written but not durable: some flush owes it. */
  readyWaiter(): boolean {
    const written = this.written();
    return this.waits.some(
      (wait) =>
        wait.kind === 'durable' &&
        wait.state === 'pending' &&
        wait.target > this.durable() &&
        wait.target <= written,
    );
  }

  /**
   * Picks a target in [base − 1, tail + 1]: mostly a record boundary (the end of
   * a reserved write) or one byte either side of one, sometimes any offset.
   */
  target(pick: number): number {
    const low = Math.max(0, this.base - 1);
    const how = pick % 5;
    if (how === 4) return low + (Math.floor(pick / 5) % (this.tail + 2 - low));
    const boundaries = [this.base, ...this.writes.map((write) => write.end)];
    const boundary = boundaries[Math.floor(pick / 5) % boundaries.length]!;
    return Math.max(0, boundary + (how === 0 ? -1 : how === 1 ? 1 : 0));
  }

  /**
   * Calls syncTo (`undelayed`: with `delay: false`) or waitWritten and checks
   * how and when the promise settles.
   */
  wait(kind: 'durable' | 'written', target: number, undelayed = false): void {
    const expectedNow = this.latched
      ? 'WAL_FAILED'
      : target > this.tail
        ? 'ERR_OUT_OF_RANGE'
        : target > this.poison
          ? 'WAL_WRITE_FAILED'
          : undefined;
    const wait: Wait = { kind, target, undelayed, state: 'pending' };
    this.waits.push(wait);
    if (undelayed) this.undelayedSince = true;
    const promise =
      kind === 'written'
        ? this.commit.waitWritten(target)
        : undelayed
          ? this.commit.syncTo(target, { delay: false })
          : this.commit.syncTo(target);
    promise.then(
      () => {
        wait.state = 'resolved';
        if (expectedNow !== undefined) this.violations.push(`${kind} ${target} resolved`);
        if (this.latched) this.violations.push(`${kind} ${target} resolved after a failed sync`);
        if (kind === 'durable' && target > this.durable()) {
          this.violations.push(`syncTo(${target}) resolved with durable ${this.durable()}`);
        }
        if (kind === 'written' && target > this.written()) {
          this.violations.push(`waitWritten(${target}) resolved with written ${this.written()}`);
        }
      },
      (error: { code?: string; offset?: number; cause?: unknown }) => {
        wait.state = 'rejected';
        const code = error.code;
        if (expectedNow !== undefined) {
          if (code !== expectedNow) this.violations.push(`${kind} ${target}: ${code}`);
        } else if (this.latched) {
          if (code !== 'WAL_FAILED' || error.cause !== this.latchedCause) {
            this.violations.push(
              `${kind} ${target} rejected with ${code}, not the latched failure`,
            );
          }
        } else if (target > this.poison) {
          if (code !== 'WAL_WRITE_FAILED' || error.offset !== this.poison) {
            this.violations.push(`${kind} ${target} rejected with ${code} at ${error.offset}`);
          }
          if (error.cause !== this.poisonCause) this.violations.push('lost the write error');
        } else {
          this.violations.push(`${kind} ${target} rejected with ${code} for no reason`);
        }
      },
    );
  }

  /** Compares the coordinator with the model; throws on any difference. */
  check(afterTick: boolean): void {
    assert.deepEqual(this.violations, []);
    const written = this.written();
    const { commit } = this;
    assert.equal(commit.reserved, this.tail, 'reserved');
    assert.equal(commit.written, written, 'written watermark');
    const durable = this.durable();
    assert.equal(commit.durable, durable, 'durable watermark');
    assert.ok(durable <= written, 'durable never passes written');
    assert.equal(commit.poisonedAt, Number.isFinite(this.poison) ? this.poison : undefined);
    assert.equal(commit.failure !== undefined, this.latched, 'latched failure');
    if (this.latched) assert.equal(commit.failure?.cause, this.latchedCause);

    // Parked completions: exactly the completed writes above the gap and below any poison,
    // so never more than the writes in flight above the watermark, minus the gap itself.
    const expectedParked = this.latched
      ? 0
      : this.writes.filter(
          (write) =>
            write.state === 'written' && write.start > written && write.start < this.poison,
        ).length;
    assert.equal(commit.parkedCompletions, expectedParked, 'parked completions');
    const beyondWatermark = this.writes.filter((write) => write.start >= written).length;
    if (expectedParked > 0) assert.ok(expectedParked < beyondWatermark);

    for (const wait of this.waits) {
      if (wait.state !== 'pending') continue;
      assert.ok(!this.latched, 'a waiter outlived a failed sync');
      assert.ok(wait.target <= this.poison, 'a waiter past a failed write is still pending');
      if (wait.kind === 'written') assert.ok(wait.target > written, 'written waiter not released');
      else assert.ok(wait.target > durable, 'durable waiter not released');
    }
    const ready = !this.latched && this.readyWaiter();
    // A delayed flush starts only when an undelayed wait cuts the delay short.
    if (ready && (afterTick || !this.gather) && (!this.delayed || this.undelayedPending())) {
      assert.ok(this.fake.pending !== undefined, 'a waiter is ready but no sync started');
    }
    if (!this.latched) {
      const idle = this.inflight().length === 0 && this.fake.pending === undefined && !ready;
      assert.equal(commit.idle, idle, 'idle');
    }
  }
}

type Command = fc.AsyncCommand<World, World>;

abstract class Step implements Command {
  check(_world: Readonly<World>): boolean {
    return true;
  }
  async run(world: World): Promise<void> {
    this.apply(world);
    await drainMicrotasks();
    world.check(false);
  }
  abstract apply(world: World): void;
  abstract toString(): string;
}

class Reserve extends Step {
  constructor(readonly length: number) {
    super();
  }
  apply(world: World): void {
    const end = world.tail + this.length;
    if (world.latched) {
      assert.throws(() => world.commit.reserve(end), { code: 'WAL_FAILED' });
    } else if (Number.isFinite(world.poison)) {
      assert.throws(() => world.commit.reserve(end), { code: 'WAL_WRITE_FAILED' });
    } else {
      world.commit.reserve(end);
      world.writes.push({ start: world.tail, end, state: 'inflight' });
      world.tail = end;
    }
  }
  toString(): string {
    return `reserve(+${this.length})`;
  }
}

class Complete extends Step {
  constructor(readonly pick: number) {
    super();
  }
  override check(world: Readonly<World>): boolean {
    return world.inflight().length > 0;
  }
  apply(world: World): void {
    const inflight = world.inflight();
    const write = inflight[this.pick % inflight.length]!;
    if (world.latched) {
      assert.throws(() => world.commit.markWritten(write.start, write.end), {
        code: 'WAL_FAILED',
      });
      write.state = 'abandoned';
      return;
    }
    // The model moves first: without gathering, markWritten may call sync synchronously.
    write.state = 'written';
    world.commit.markWritten(write.start, write.end);
  }
  toString(): string {
    return `complete(#${this.pick})`;
  }
}

/** A step that settles one of the writes in flight, picked by `pick`. */
abstract class Settle extends Step {
  constructor(readonly pick: number) {
    super();
  }
  override check(world: Readonly<World>): boolean {
    return world.inflight().length > 0;
  }
  apply(world: World): void {
    const inflight = world.inflight();
    this.settle(world, inflight[this.pick % inflight.length]!);
  }
  abstract settle(world: World, write: Write): void;
}

class CompleteDurable extends Settle {
  constructor(
    pick: number,
    readonly ok: boolean,
  ) {
    super(pick);
  }
  settle(world: World, write: Write): void {
    if (!this.ok) {
      const cause = new Error(`durable write at ${write.start} failed`);
      world.commit.markDurableFailed(write.start, write.end, cause);
      write.state = 'failed';
      if (write.start < world.poison) {
        world.poison = write.start;
        world.poisonCause = cause;
      }
      if (!world.latched) {
        world.latched = true;
        world.latchedCause = cause;
      }
      return;
    }
    if (world.latched) {
      assert.throws(() => world.commit.markDurable(write.start, write.end), {
        code: 'WAL_FAILED',
      });
      write.state = 'abandoned';
      return;
    }
    write.state = 'written';
    write.durable = true;
    world.commit.markDurable(write.start, write.end);
  }
  toString(): string {
    return `complete-durable(#${this.pick}${this.ok ? '' : ', fails'})`;
  }
}

class Fail extends Settle {
  constructor(
    pick: number,
    readonly withCause: boolean,
  ) {
    super(pick);
  }
  settle(world: World, write: Write): void {
    const cause = this.withCause ? new Error(`write at ${write.start} failed`) : undefined;
    world.commit.markFailed(write.start, write.end, cause);
    write.state = 'failed';
    if (write.start < world.poison) {
      world.poison = write.start;
      world.poisonCause = cause;
    }
  }
  toString(): string {
    return `fail(#${this.pick}${this.withCause ? ', cause' : ''})`;
  }
}

class SyncTo extends Step {
  constructor(
    readonly pick: number,
    readonly undelayed = false,
  ) {
    super();
  }
  apply(world: World): void {
    world.wait('durable', world.target(this.pick), this.undelayed);
  }
  toString(): string {
    return `syncTo(#${this.pick}${this.undelayed ? ', { delay: false }' : ''})`;
  }
}

class WaitWritten extends Step {
  constructor(readonly pick: number) {
    super();
  }
  apply(world: World): void {
    world.wait('written', world.target(this.pick));
  }
  toString(): string {
    return `waitWritten(#${this.pick})`;
  }
}

class Tick implements Command {
  check(): boolean {
    return true;
  }
  async run(world: World): Promise<void> {
    await tick();
    await drainMicrotasks();
    world.check(true);
  }
  toString(): string {
    return 'tick';
  }
}

class SettleSync extends Step {
  constructor(readonly ok: boolean) {
    super();
  }
  override check(world: Readonly<World>): boolean {
    return world.fake.pending !== undefined;
  }
  apply(world: World): void {
    const call = world.fake.pending!;
    // After a failed durable write latched the coordinator, a sync still in
    // flight settles without effect: the durable watermark stays where it was.
    if (this.ok) {
      if (!world.latched) world.synced = Math.max(world.synced, call.written);
      call.resolve();
    } else if (world.latched) {
      call.reject(new Error('fdatasync: EIO'));
    } else {
      world.latched = true;
      world.latchedCause = new Error('fdatasync: EIO');
      call.reject(world.latchedCause);
    }
  }
  toString(): string {
    return this.ok ? 'sync resolves' : 'sync rejects';
  }
}

class Reset extends Step {
  constructor(readonly pick: number) {
    super();
  }
  apply(world: World): void {
    const written = world.written();
    const offset = world.base + (this.pick % (written - world.base + 2));
    const busy =
      world.inflight().length > 0 || world.fake.pending !== undefined || world.readyWaiter();
    if (world.latched) {
      assert.throws(() => world.commit.reset(offset), { code: 'WAL_FAILED' });
    } else if (busy) {
      assert.throws(() => world.commit.reset(offset), { code: 'WAL_BUSY' });
    } else if (offset > written) {
      assert.throws(() => world.commit.reset(offset), { code: 'ERR_OUT_OF_RANGE' });
    } else {
      assert.ok(
        world.waits.every((wait) => wait.state !== 'pending'),
        'an idle coordinator has no waiter to strand',
      );
      const durable = world.durable();
      world.commit.reset(offset);
      world.base = offset;
      world.tail = offset;
      world.writes = [];
      world.poison = Number.POSITIVE_INFINITY;
      world.poisonCause = undefined;
      world.synced = Math.min(durable, offset);
    }
  }
  toString(): string {
    return `reset(#${this.pick})`;
  }
}

const commandArbitraries = [
  fc.integer({ min: 1, max: 64 }).map((length): Command => new Reserve(length)),
  fc.nat().map((pick): Command => new Complete(pick)),
  fc.nat().map((pick): Command => new Complete(pick)),
  fc.nat().map((pick): Command => new CompleteDurable(pick, true)),
  fc.nat().map((pick): Command => new CompleteDurable(pick, true)),
  fc.nat().map((pick): Command => new CompleteDurable(pick, false)),
  fc.tuple(fc.nat(), fc.boolean()).map(([pick, withCause]): Command => new Fail(pick, withCause)),
  fc.nat().map((pick): Command => new SyncTo(pick)),
  fc.nat().map((pick): Command => new SyncTo(pick)),
  fc.nat().map((pick): Command => new SyncTo(pick, true)),
  fc.nat().map((pick): Command => new WaitWritten(pick)),
  fc.nat().map((pick): Command => new WaitWritten(pick)),
  fc.constant<Command>(new Tick()),
  fc.constant<Command>(new SettleSync(true)),
  fc.constant<Command>(new SettleSync(true)),
  fc.constant<Command>(new SettleSync(false)),
  fc.nat().map((pick): Command => new Reset(pick)),
];

/**
 * Reports every write, then lets every flush run and succeed (a delayed
 * coordinator asked as a close asks: for everything written, with `delay:
 * false`), then checks that all settled.
 */
async function drain(world: World): Promise<void> {
  for (const write of world.inflight()) {
    if (world.latched) {
      write.state = 'abandoned';
    } else {
      write.state = 'written';
      world.commit.markWritten(write.start, write.end);
    }
  }
  if (world.delayed) world.wait('durable', world.written(), true);
  for (let round = 0; round < 100; round++) {
    await tick();
    await drainMicrotasks();
    world.check(true);
    const call = world.fake.pending;
    if (call === undefined) break;
    if (!world.latched) world.synced = Math.max(world.synced, call.written);
    call.resolve();
    await drainMicrotasks();
  }
  world.check(true);
  for (const wait of world.waits) assert.notEqual(wait.state, 'pending', 'every promise settles');
  if (!world.latched) assert.equal(world.commit.idle, true);
}

describe('GroupCommit against a reference model', () => {
  it('matches the model under random interleavings', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 10_000 }),
        fc.boolean(),
        fc.boolean(),
        fc.commands(commandArbitraries, { size: 'medium' }),
        async (start, gather, delayed, commands) => {
          const world = new World(start, gather, delayed);
          await fc.asyncModelRun(() => ({ model: world, real: world }), commands);
          await drain(world);
        },
      ),
      { numRuns: 600 },
    );
  });

  it('shares one sync among N committers released in one turn, whatever the completion order', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 10_000 }),
        fc
          .array(fc.integer({ min: 1, max: 100 }), { minLength: 1, maxLength: 128 })
          .chain((lengths) =>
            fc.tuple(
              fc.constant(lengths),
              fc.shuffledSubarray(
                lengths.map((_, i) => i),
                { minLength: lengths.length, maxLength: lengths.length },
              ),
            ),
          ),
        async (start, [lengths, order]) => {
          const fake = new FakeSync();
          const commit = new GroupCommit({ sync: fake.sync, start });
          fake.commit = commit;
          const ends: number[] = [];
          let tail = start;
          for (const length of lengths) {
            tail += length;
            ends.push(tail);
          }
          commit.reserve(tail);
          const commits = order.map((i) => {
            const end = ends[i]!;
            commit.markWritten(end - lengths[i]!, end);
            return commit.syncTo(end);
          });
          await tick();
          assert.equal(fake.calls.length, 1);
          assert.equal(fake.calls[0]?.written, tail);
          fake.resolvePending();
          await Promise.all(commits);
          await tick();
          assert.equal(fake.calls.length, 1);
          assert.equal(commit.durable, tail);
        },
      ),
      { numRuns: 200 },
    );
  });
});
