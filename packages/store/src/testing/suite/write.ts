/** write(offset, bytes): copies, concurrency, closed store, invalid arguments. */
import { check, equalBytes, pattern } from './check.js';
import type { SuiteContext } from './context.js';
import { badPositions, invalidArgumentsTrait } from './traits/arguments.js';
import { closedTrait } from './traits/closed.js';

/** Registers the checks of `write`. */
export function writeTests(context: SuiteContext): void {
  const { test, withStore } = context;

  test('a store keeps a copy of what it writes: the caller may reuse its buffer', () =>
    withStore(async (store) => {
      const buffer = pattern(300, 4);
      await store.write(0, buffer);
      buffer.fill(0xee);
      equalBytes(
        await store.read(0, 300),
        pattern(300, 4),
        'the bytes after the buffer was reused',
      );
      const read = await store.read(0, 300);
      read.fill(0xdd);
      equalBytes(
        await store.read(0, 300),
        pattern(300, 4),
        'the bytes after a read result was changed',
      );
    }));

  test('concurrent writes to disjoint ranges all land', () =>
    withStore(async (store) => {
      const chunk = 4099;
      const order = [7, 2, 9, 0, 5, 1, 8, 3, 6, 4];
      await Promise.all(order.map((i) => store.write(i * chunk, pattern(chunk, i + 10))));
      check(
        (store.length as number) === 10 * chunk,
        `length is ${store.length}, expected ${10 * chunk}`,
      );
      const all = await store.read(0, 10 * chunk);
      for (let i = 0; i < 10; i++) {
        equalBytes(all.subarray(i * chunk, (i + 1) * chunk), pattern(chunk, i + 10), `chunk ${i}`);
      }
      await Promise.all([
        store.sync(),
        store.read(0, 10),
        store.write(10 * chunk, pattern(3, 1)),
        store.sync(),
      ]);
    }));

  closedTrait(context, 'write', (store) => store.write(0, new Uint8Array(1)));

  invalidArgumentsTrait(context, 'write', [
    ...badPositions(
      (bad) => `write(${bad})`,
      (store, offset) => store.write(offset, new Uint8Array(1)),
    ),
    {
      what: 'write of a string',
      run: (store) => store.write(0, 'abc' as never),
      expected: { code: 'ERR_INVALID_ARG_TYPE', name: 'TypeError' },
    },
    {
      what: 'write past 2^53 - 1',
      run: (store) => store.write(2 ** 53 - 2, new Uint8Array(2)),
      expected: { code: 'ERR_OUT_OF_RANGE' },
    },
  ]);
}
