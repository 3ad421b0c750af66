/** read(offset, length) and readInto(offset, into): gaps, short reads, closed store, invalid arguments. */
import { check, equalBytes, pattern } from './check.js';
import type { SuiteContext } from './context.js';
import { badPositions, invalidArgumentsTrait } from './traits/arguments.js';
import { closedTrait } from './traits/closed.js';

/** Registers the checks of `read` and of the optional `readInto`. */
export function readTests(context: SuiteContext): void {
  const { test, withStore } = context;

  test('a gap before a write reads as zeros', () =>
    withStore(async (store) => {
      await store.write(0, pattern(10, 1));
      await store.write(100_000, pattern(5, 2));
      check((store.length as number) === 100_005, `length is ${store.length}, expected 100005`);
      const gap = await store.read(10, 99_990);
      equalBytes(gap, new Uint8Array(99_990), 'the gap');
      if (store.readInto !== undefined) {
        const into = new Uint8Array(100_000).fill(0xa5);
        const count = await store.readInto(10, into);
        check(count === 99_995, `readInto read ${count}, expected 99995 (to the end)`);
        equalBytes(
          into.subarray(0, 99_990),
          new Uint8Array(99_990),
          'the gap read into a dirty buffer',
        );
        equalBytes(into.subarray(99_990, 99_995), pattern(5, 2), 'the bytes after the gap');
      }
      equalBytes(await store.read(100_000, 5), pattern(5, 2), 'the bytes after the gap');
    }));

  test('a read is short only at the end of the store', () =>
    withStore(async (store) => {
      const data = pattern(1000, 3);
      await store.write(0, data);
      equalBytes(await store.read(990, 50), data.subarray(990), 'read across the end');
      equalBytes(await store.read(1000, 5), new Uint8Array(0), 'read at the end');
      equalBytes(await store.read(5000, 5), new Uint8Array(0), 'read past the end');
      equalBytes(await store.read(10, 0), new Uint8Array(0), 'zero-length read');
      equalBytes(await store.read(0, 1000), data, 'read of everything');
    }));

  closedTrait(context, 'read', (store) => store.read(0, 1));
  closedTrait(
    context,
    'readInto',
    (store) => store.readInto!(0, new Uint8Array(1)),
    (store) => store.readInto !== undefined,
  );

  invalidArgumentsTrait(context, 'read', [
    ...badPositions(
      (bad) => `read(${bad}, 1)`,
      (store, offset) => store.read(offset, 1),
    ),
    ...badPositions(
      (bad) => `read(0, ${bad})`,
      (store, length) => store.read(0, length),
    ),
  ]);
}
