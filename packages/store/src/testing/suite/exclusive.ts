/** Exclusivity: a truncation runs alone; anything started beside it gets WAL_BUSY. */
import { check, expectRejection, pattern, start } from './check.js';
import type { SuiteContext } from './context.js';

/** Registers the checks of the truncations' exclusivity. */
export function exclusiveTests(context: SuiteContext): void {
  const { test, withStore } = context;

  test('truncations are exclusive: WAL_BUSY while other work is in flight', () =>
    withStore(async (store) => {
      await store.write(0, pattern(100, 8));
      // Every call is started before anything is awaited, so the first one is
      // still in flight whatever the backend's speed.
      const writing = store.write(100, pattern(100, 9));
      const truncate = start(() => store.truncate(50), 'truncate during a write');
      const truncateBefore = start(() => store.truncateBefore(50), 'truncateBefore during a write');
      await expectRejection(truncate, { code: 'WAL_BUSY' }, 'truncate during a write');
      await expectRejection(truncateBefore, { code: 'WAL_BUSY' }, 'truncateBefore during a write');
      await writing;
      const truncating = store.truncate(150);
      const write = start(() => store.write(0, new Uint8Array(1)), 'write during a truncate');
      const sync = start(() => store.sync(), 'sync during a truncate');
      const read = start(() => store.read(0, 1), 'read during a truncate');
      await expectRejection(write, { code: 'WAL_BUSY' }, 'write during a truncate');
      await expectRejection(sync, { code: 'WAL_BUSY' }, 'sync during a truncate');
      await expectRejection(read, { code: 'WAL_BUSY' }, 'read during a truncate');
      await truncating;
      check((store.length as number) === 150, `length is ${store.length} after truncate(150)`);
      await store.write(150, pattern(1, 1));
    }));
}
