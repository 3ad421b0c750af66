/** The exclusive lock (for stores declaring `supports.locking`): one opener at a time. */
import { rejectsWith } from './check.js';
import type { SuiteContext } from './context.js';

/** Registers the checks of the lock. */
export function lockTests(context: SuiteContext): void {
  const { test, factory, reopen } = context;

  test('locking stores refuse a second opener with WAL_LOCKED until closed', async () => {
    const store = await factory();
    if (!store.supports.locking || reopen === undefined) {
      await store.close();
      return;
    }
    try {
      await rejectsWith(() => reopen(store), { code: 'WAL_LOCKED' }, 'second opener');
    } finally {
      await store.close();
    }
    const again = await reopen(store);
    await again.close();
  });
}
