/**
 * writeDurable(offset, bytes): `write`, durable when it resolves, for the
 * stores that have it (an optional method). With the suite option
 * `powerLoss`, a durable store is also checked through simulated power
 * losses: what `writeDurable` covered survives every state.
 */
import type { Store } from '../../store.js';
import { check, equalBytes, expectRejection, pattern, start } from './check.js';
import type { SuiteContext } from './context.js';
import { badPositions, invalidArgumentsTrait } from './traits/arguments.js';
import { closedTrait } from './traits/closed.js';

const hasDurable = (store: Store): boolean => typeof store.writeDurable === 'function';

/** Checks `store` holds `expected` at `offset` and is at least `end` long. */
async function holds(store: Store, offset: number, expected: Uint8Array, what: string) {
  const end = offset + expected.length;
  check((store.length as number) >= end, `${what}: length is ${store.length}, below ${end}`);
  equalBytes(await store.read(offset, expected.length), expected, what);
}

/** Registers the checks of `writeDurable`. */
export function durableTests(context: SuiteContext): void {
  const { test, withStore, reopen, powerLoss } = context;

  test('writeDurable: writes as write does, beside writes and durable writes in flight', () =>
    withStore(async (store) => {
      if (!hasDurable(store)) return;
      await store.write(0, pattern(1000, 1));
      const buffer = pattern(700, 2);
      await store.writeDurable!(600, buffer); // over written bytes and past the end
      buffer.fill(0xee); // the caller may reuse its buffer once it settled
      check((store.length as number) === 1300, `length is ${store.length}, not 1300`);
      const chunk = 4099;
      const at = (i: number) => 1300 + i * chunk;
      await Promise.all(
        [3, 0, 4, 1, 5, 2].map((i) =>
          i % 3 === 0
            ? store.write(at(i), pattern(chunk, 30 + i))
            : store.writeDurable!(at(i), pattern(chunk, 30 + i)),
        ),
      );
      check(
        (store.length as number) === at(6),
        `length is ${store.length} after concurrent writes, not ${at(6)}`,
      );
      await store.writeDurable!(at(6) + 5000, pattern(10, 3)); // past the end: a gap
      await store.writeDurable!(at(6) + 90_000, new Uint8Array(0)); // no bytes: only the length
      const end = at(6) + 90_000;
      check((store.length as number) === end, `length is ${store.length}, not ${end}`);
      const expected = new Uint8Array(end);
      expected.set(pattern(1000, 1));
      expected.set(pattern(700, 2), 600);
      for (let i = 0; i < 6; i++) expected.set(pattern(chunk, 30 + i), at(i));
      expected.set(pattern(10, 3), at(6) + 5000);
      equalBytes(await store.read(0, end), expected, 'the bytes after the durable writes');
      if (!store.supports.persistent || reopen === undefined) return;
      await store.close();
      const again = await reopen(store);
      try {
        await holds(again, 0, expected.subarray(0, at(6) + 5010), 'the bytes after reopen');
      } finally {
        await again.close();
      }
    }));

  test('writeDurable: refused below the head and beside a truncation (WAL_BUSY)', () =>
    withStore(async (store) => {
      if (!hasDurable(store)) return;
      await store.write(0, pattern(9000, 4));
      await store.truncateBefore(100);
      await expectRejection(
        start(() => store.writeDurable!(99, new Uint8Array(1)), 'writeDurable below the head'),
        { code: 'ERR_OUT_OF_RANGE' },
        'writeDurable below the head',
      );
      const writing = store.writeDurable!(9000, pattern(10, 5));
      const truncate = start(() => store.truncate(8000), 'truncate during a writeDurable');
      await expectRejection(truncate, { code: 'WAL_BUSY' }, 'truncate during a writeDurable');
      await writing;
      const truncating = store.truncate(8000);
      const durable = start(
        () => store.writeDurable!(100, new Uint8Array(1)),
        'writeDurable during a truncate',
      );
      await expectRejection(durable, { code: 'WAL_BUSY' }, 'writeDurable during a truncate');
      await truncating;
      await store.writeDurable!(8000, pattern(5, 6));
      await holds(store, 7995, pattern(9000, 4).subarray(7995, 8000), 'the bytes below the cut');
      await holds(store, 8000, pattern(5, 6), 'the durable write after the truncate');
      check((store.length as number) === 8005, `length is ${store.length}, not 8005`);
    }));

  closedTrait(
    context,
    'writeDurable',
    (store) => store.writeDurable!(0, new Uint8Array(1)),
    hasDurable,
  );

  invalidArgumentsTrait(
    context,
    'writeDurable',
    [
      ...badPositions(
        (bad) => `writeDurable(${bad})`,
        (store, offset) => store.writeDurable!(offset, new Uint8Array(1)),
      ),
      {
        what: 'writeDurable of a string',
        run: (store) => store.writeDurable!(0, 'abc' as never),
        expected: { code: 'ERR_INVALID_ARG_TYPE', name: 'TypeError' },
      },
      {
        what: 'writeDurable past 2^53 - 1',
        run: (store) => store.writeDurable!(2 ** 53 - 2, new Uint8Array(2)),
        expected: { code: 'ERR_OUT_OF_RANGE' },
      },
    ],
    hasDurable,
  );

  if (powerLoss === undefined) return;

  test('writeDurable: what it covered survives a power loss (powerLoss)', async () => {
    const store = await context.factory();
    let states: Iterable<() => Promise<Store>>;
    try {
      if (!hasDurable(store) || !store.supports.durable) return;
      await store.write(0, pattern(6000, 7));
      await store.sync(); // the files exist, durably
      await store.write(6000, pattern(1000, 8)); // not synced: may be lost
      await store.writeDurable!(7000, pattern(1500, 9)); // into the file that exists
      await store.writeDurable!(8600, pattern(200, 14)); // inside the file just written
      await store.writeDurable!(20_000, pattern(300, 10)); // past a gap: a file may be new
      await store.write(25_000, pattern(100, 11)); // not synced, after them
      states = powerLoss(store);
    } finally {
      await store.close();
    }
    let count = 0;
    for (const open of states) {
      const again = await open();
      count++;
      try {
        await holds(again, 0, pattern(6000, 7), `state ${count}: the synced bytes`);
        await holds(again, 7000, pattern(1500, 9), `state ${count}: the first durable write`);
        await holds(again, 8600, pattern(200, 14), `state ${count}: the durable write after it`);
        await holds(again, 20_000, pattern(300, 10), `state ${count}: the second durable write`);
        // Again on the reopened store, whose files a crash may have left unsynced.
        await again.write(21_000, pattern(500, 12));
        await again.writeDurable!(30_000, pattern(200, 13));
        for (const open2 of first(powerLoss(again), 4)) {
          const third = await open2();
          try {
            await holds(third, 20_000, pattern(300, 10), `state ${count}, twice: the second write`);
            await holds(third, 30_000, pattern(200, 13), `state ${count}, twice: the third write`);
          } finally {
            await third.close();
          }
        }
      } finally {
        await again.close();
      }
    }
    check(count > 1, `powerLoss gave ${count} states: the test needs a few`);
  });
}

/** The first `n` items of `items`. */
function* first<T>(items: Iterable<T>, n: number): Generator<T> {
  if (n <= 0) return;
  let taken = 0;
  for (const item of items) {
    yield item;
    if (++taken >= n) return;
  }
}
