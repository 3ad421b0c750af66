/** truncate(length): drops the suffix; closed store, invalid arguments. */
import { check, equalBytes, pattern, rejectsWith } from './check.js';
import type { SuiteContext } from './context.js';
import { badPositions, invalidArgumentsTrait } from './traits/arguments.js';
import { closedTrait } from './traits/closed.js';

/** Registers the checks of `truncate`. */
export function truncateTests(context: SuiteContext): void {
  const { test, withStore } = context;

  test('truncate drops the suffix, and a later write past it reads zeros between', () =>
    withStore(async (store) => {
      await store.write(0, pattern(5000, 4));
      await store.truncate(1200);
      check((store.length as number) === 1200, `length is ${store.length} after truncate(1200)`);
      equalBytes(
        await store.read(0, 5000),
        pattern(5000, 4).subarray(0, 1200),
        'read after truncate',
      );
      await store.write(3000, pattern(10, 5));
      equalBytes(
        await store.read(1200, 1800),
        new Uint8Array(1800),
        'bytes dropped by truncate then re-exposed',
      );
      await rejectsWith(
        () => store.truncate(store.length + 1),
        { code: 'ERR_OUT_OF_RANGE', name: 'RangeError' },
        'truncate past the end',
      );
      await store.truncate(store.length);
      await store.truncate(0);
      check((store.length as number) === 0, 'truncate(0) empties the store');
    }));

  closedTrait(context, 'truncate', (store) => store.truncate(0));

  invalidArgumentsTrait(
    context,
    'truncate',
    badPositions(
      (bad) => `truncate(${bad})`,
      (store, length) => store.truncate(length),
    ),
  );
}
