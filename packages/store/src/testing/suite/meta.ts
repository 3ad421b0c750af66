/** readMeta() and updateMeta(fields): merge, removal, copies, order, invalid values, closed store. */
import { check, rejectsWith } from './check.js';
import type { SuiteContext } from './context.js';
import { closedTrait } from './traits/closed.js';

/** Registers the checks of the metadata calls. */
export function metaTests(context: SuiteContext): void {
  const { test, withStore } = context;

  test('metadata merges, removes keys set to undefined, and reads as a copy', () =>
    withStore(async (store) => {
      await store.updateMeta({ a: 1, b: 'two', c: true });
      await store.updateMeta({ b: 'deux', c: undefined, d: 0.5 });
      const meta = await store.readMeta();
      check(
        JSON.stringify(Object.entries(meta).sort()) ===
          JSON.stringify([
            ['a', 1],
            ['b', 'deux'],
            ['d', 0.5],
          ]),
        `metadata is ${JSON.stringify(meta)}`,
      );
      (meta as Record<string, unknown>).a = 99;
      check((await store.readMeta()).a === 1, 'mutating a read copy changed the store');
      await Promise.all([
        store.updateMeta({ n: 1 }),
        store.updateMeta({ n: 2 }),
        store.updateMeta({ n: 3 }),
      ]);
      check((await store.readMeta()).n === 3, 'concurrent updates must apply in call order');
      for (const bad of [null, Number.NaN, { x: 1 }, [1], 10n]) {
        await rejectsWith(
          () => store.updateMeta({ bad: bad as never }),
          { code: 'ERR_INVALID_ARG_TYPE' },
          `metadata value ${String(bad)}`,
        );
      }
      await rejectsWith(
        () => store.updateMeta(null as never),
        { code: 'ERR_INVALID_ARG_TYPE' },
        'metadata update null',
      );
      await rejectsWith(
        () => store.updateMeta({ big: 'x'.repeat(70_000) }),
        { code: 'ERR_OUT_OF_RANGE' },
        'oversized metadata',
      );
      check((await store.readMeta()).big === undefined, 'a rejected update must change nothing');
    }));

  closedTrait(context, 'readMeta', (store) => store.readMeta());
  closedTrait(context, 'updateMeta', (store) => store.updateMeta({ a: 1 }));
}
