/**
 * Trait: an operation called on a closed store rejects with WAL_CLOSED. The
 * store is closed the hard way, with a write still in flight when close() is
 * called, and closed twice.
 */
import type { Store } from '../../../store.js';
import { check, pattern, rejectsWith } from '../check.js';
import type { SuiteContext } from '../context.js';

/**
 * Closes `store` while a write is in flight, and again once closed: `closed`
 * must turn true at once, and the write and both closes must resolve.
 */
export async function closeWithWriteInFlight(store: Store): Promise<void> {
  const writing = store.write(0, pattern(5000, 2));
  const closing = store.close();
  check(store.closed, 'closed is false once close() was called');
  await writing;
  await closing;
  await store.close();
}

/**
 * Registers "`name` after close rejects with WAL_CLOSED": `run` is the call on
 * the closed store. When `applies` says the store lacks the operation (an
 * optional method), the test checks nothing.
 */
export function closedTrait(
  context: SuiteContext,
  name: string,
  run: (store: Store) => Promise<unknown>,
  applies: (store: Store) => boolean = () => true,
): void {
  context.test(`${name} after close rejects with WAL_CLOSED`, async () => {
    const store = await context.factory();
    await closeWithWriteInFlight(store);
    if (!applies(store)) return;
    await rejectsWith(() => run(store), { code: 'WAL_CLOSED' }, `${name} after close`);
  });
}
