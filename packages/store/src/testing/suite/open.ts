/** Opening: a new store is empty and declares what it supports. */
import { check, equalBytes } from './check.js';
import type { SuiteContext } from './context.js';

/** Registers the checks of a freshly opened store. */
export function openTests(context: SuiteContext): void {
  const { test, withStore, reopen } = context;

  test('a new store is empty', () =>
    withStore(async (store) => {
      check((store.head as number) === 0, `head of a new store is ${store.head}, expected 0`);
      check((store.length as number) === 0, `length of a new store is ${store.length}, expected 0`);
      check(!store.closed, 'a new store reports closed');
      equalBytes(await store.read(0, 10), new Uint8Array(0), 'read of an empty store');
      const meta = await store.readMeta();
      check(Object.keys(meta).length === 0, `a new store has metadata ${JSON.stringify(meta)}`);
      const { supports } = store;
      for (const key of ['durable', 'persistent', 'prefixReclaim', 'locking'] as const) {
        check(typeof supports[key] === 'boolean', `supports.${key} must be a boolean`);
      }
      check(!supports.locking || supports.persistent, 'a locking store must be persistent');
      check(
        !supports.persistent || reopen !== undefined,
        'a persistent store needs the suite option `reopen`',
      );
    }));
}
