/**
 * writeNow(offset, bytes) and syncNow(): the synchronous forms of `write` and
 * `sync`, for the stores that have them (optional methods).
 */
import type { Store } from '../../store.js';
import { check, equalBytes, pattern, rejectsWith } from './check.js';
import type { SuiteContext } from './context.js';
import { badPositions } from './traits/arguments.js';
import { closedTrait } from './traits/closed.js';

/** `writeNow`, falling back to `write` when the store says it would wait. */
async function writeSoon(store: Store, offset: number, bytes: Uint8Array): Promise<boolean> {
  const done = store.writeNow!(offset, bytes);
  check(typeof done === 'boolean', `writeNow returned ${String(done)}, not a boolean`);
  if (!done) await store.write(offset, bytes);
  return done;
}

/** Registers the checks of `writeNow` and `syncNow`. */
export function nowTests(context: SuiteContext): void {
  const { test, withStore, reopen, nowOnceCreated } = context;
  const hasNow = (store: Store): boolean =>
    typeof store.writeNow === 'function' && typeof store.syncNow === 'function';

  test('writeNow and syncNow: what they report done is there, beside writes in flight', () =>
    withStore(async (store) => {
      if (!hasNow(store)) return;
      await store.write(0, pattern(1000, 1)); // the file exists: the usual case
      const chunk = 3001;
      const done: boolean[] = [];
      const inFlight: Promise<void>[] = [];
      for (let i = 0; i < 6; i++) {
        const at = 1000 + i * chunk;
        if (i % 2 === 0) done.push(await writeSoon(store, at, pattern(chunk, 20 + i)));
        else inFlight.push(store.write(at, pattern(chunk, 20 + i)));
        check(
          i % 2 === 1 || (store.length as number) >= at + chunk,
          `length is ${store.length} once writeNow returned true for [${at}, ${at + chunk})`,
        );
      }
      await Promise.all(inFlight);
      const all = await store.read(1000, 6 * chunk);
      for (let i = 0; i < 6; i++) {
        equalBytes(all.subarray(i * chunk, (i + 1) * chunk), pattern(chunk, 20 + i), `chunk ${i}`);
      }
      check(
        store.writeNow!(1000 + 6 * chunk, new Uint8Array(0)),
        'writeNow of no bytes is not done',
      );
      const synced = store.syncNow!();
      check(typeof synced === 'boolean', `syncNow returned ${String(synced)}, not a boolean`);
      if (!synced) await store.sync();
      if (!store.supports.persistent || reopen === undefined) return;
      await store.close();
      const again = await reopen(store);
      try {
        equalBytes(await again.read(1000, 6 * chunk), all, 'the bytes after reopen');
      } finally {
        await again.close();
      }
    }));

  if (nowOnceCreated) {
    test('writeNow and syncNow: done at once inside a file that exists (nowOnceCreated)', () =>
      withStore(async (store) => {
        check(hasNow(store), 'a store declaring nowOnceCreated has writeNow and syncNow');
        await store.write(0, pattern(1000, 1)); // creates the file
        await store.sync();
        for (const [at, bytes] of [
          [100, pattern(300, 2)], // over written bytes
          [1000, pattern(500, 3)], // at the end
          [1700, pattern(200, 4)], // past the end, leaving a gap
        ] as const) {
          check(
            store.writeNow!(at, bytes) === true,
            `writeNow(${at}, ${bytes.length}) returned true`,
          );
        }
        check(store.syncNow!() === true, 'syncNow after writeNow returned true');
        check(store.syncNow!() === true, 'syncNow with nothing to sync returned true');
        const expected = pattern(1900, 1);
        expected.set(pattern(300, 2), 100);
        expected.set(pattern(500, 3), 1000);
        expected.fill(0, 1500, 1700);
        expected.set(pattern(200, 4), 1700);
        check((store.length as number) === 1900, `length is ${store.length}, not 1900`);
        equalBytes(await store.read(0, 1900), expected, 'the bytes writeNow wrote');
      }));
  }

  closedTrait(context, 'writeNow', async (store) => store.writeNow!(0, new Uint8Array(1)), hasNow);
  closedTrait(context, 'syncNow', async (store) => store.syncNow!(), hasNow);

  test('writeNow: invalid arguments throw coded TypeError / RangeError and change nothing', () =>
    withStore(async (store) => {
      if (!hasNow(store)) return;
      await store.write(0, pattern(10, 1));
      const calls = [
        ...badPositions(
          (bad) => `writeNow(${bad})`,
          async (s, offset) => s.writeNow!(offset, new Uint8Array(1)),
        ),
        {
          what: 'writeNow of a string',
          run: async (s: Store) => s.writeNow!(0, 'abc' as never),
          expected: { code: 'ERR_INVALID_ARG_TYPE', name: 'TypeError' },
        },
      ];
      for (const call of calls) await rejectsWith(() => call.run(store), call.expected, call.what);
      check(
        (store.length as number) === 10,
        `length is ${store.length} after invalid writeNow calls`,
      );
      equalBytes(await store.read(0, 10), pattern(10, 1), 'the bytes after invalid writeNow calls');
    }));
}
