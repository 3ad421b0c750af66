/** Reopening a persistent store: data, head and metadata survive close and reopen. */
import { check, equalBytes, pattern } from './check.js';
import type { SuiteContext } from './context.js';

/** Registers the checks of persistence (for stores declaring `supports.persistent`). */
export function persistenceTests(context: SuiteContext): void {
  const { test, factory, reopen } = context;

  test('persistent stores keep data, head and metadata across close and reopen', async () => {
    const store = await factory();
    if (!store.supports.persistent) {
      await store.close();
      return;
    }
    check(reopen !== undefined, 'a persistent store needs the suite option `reopen`');
    const data = pattern(150_000, 11);
    try {
      await store.write(0, data);
      await store.updateMeta({ owner: 'suite', version: 3 });
      await store.truncateBefore(12_345);
      await store.sync();
    } finally {
      await store.close();
    }
    const again = await reopen(store);
    try {
      check(
        (again.head as number) === 12_345,
        `head after reopen is ${again.head}, expected 12345`,
      );
      check(
        (again.length as number) === 150_000,
        `length after reopen is ${again.length}, expected 150000`,
      );
      equalBytes(await again.read(12_345, 150_000), data.subarray(12_345), 'data after reopen');
      const meta = await again.readMeta();
      check(
        meta.owner === 'suite' && meta.version === 3,
        `metadata after reopen is ${JSON.stringify(meta)}`,
      );
      await again.truncate(100_000);
    } finally {
      await again.close();
    }
    const third = await reopen(again);
    try {
      check(
        (third.length as number) === 100_000,
        `length after truncate and reopen is ${third.length}, expected 100000`,
      );
    } finally {
      await third.close();
    }
  });
}
