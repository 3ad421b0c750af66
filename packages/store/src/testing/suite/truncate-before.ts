/** truncateBefore(offset): moves the head exactly; closed store, invalid arguments. */
import { check, equalBytes, pattern, rejectsWith } from './check.js';
import type { SuiteContext } from './context.js';
import { badPositions, invalidArgumentsTrait } from './traits/arguments.js';
import { closedTrait } from './traits/closed.js';

/** Registers the checks of `truncateBefore` and of the head it moves. */
export function truncateBeforeTests(context: SuiteContext): void {
  const { test, withStore } = context;

  test('truncateBefore moves the head exactly and never renumbers', () =>
    withStore(async (store) => {
      const data = pattern(300_000, 6);
      await store.write(0, data);
      await store.truncateBefore(70_001);
      check((store.head as number) === 70_001, `head is ${store.head}, expected exactly 70001`);
      check((store.length as number) === 300_000, `length is ${store.length}, expected 300000`);
      equalBytes(
        await store.read(70_001, 1000),
        data.subarray(70_001, 71_001),
        'read at the new head',
      );
      equalBytes(await store.read(299_000, 1000), data.subarray(299_000), 'read at the end');
      await rejectsWith(
        () => store.read(70_000, 1),
        { code: 'ERR_OUT_OF_RANGE' },
        'read below the head',
      );
      await rejectsWith(
        () => store.write(0, new Uint8Array(1)),
        { code: 'ERR_OUT_OF_RANGE' },
        'write below the head',
      );
      await rejectsWith(
        () => store.truncateBefore(70_000),
        { code: 'ERR_OUT_OF_RANGE' },
        'truncateBefore backwards',
      );
      await rejectsWith(
        () => store.truncateBefore(300_001),
        { code: 'ERR_OUT_OF_RANGE' },
        'truncateBefore past the end',
      );
      await rejectsWith(
        () => store.truncate(70_000),
        { code: 'ERR_OUT_OF_RANGE' },
        'truncate below the head',
      );
      await store.write(300_000, pattern(7, 7));
      equalBytes(await store.read(300_000, 7), pattern(7, 7), 'append after truncateBefore');
      await store.truncateBefore(store.length);
      check(
        (store.head as number) === store.length,
        'truncateBefore(length) leaves an empty live range',
      );
      equalBytes(
        await store.read(store.head, 10),
        new Uint8Array(0),
        'read of an empty live range',
      );
      await store.truncate(store.head);
    }));

  closedTrait(context, 'truncateBefore', (store) => store.truncateBefore(0));

  invalidArgumentsTrait(
    context,
    'truncateBefore',
    badPositions(
      (bad) => `truncateBefore(${bad})`,
      (store, offset) => store.truncateBefore(offset),
    ),
  );
}
