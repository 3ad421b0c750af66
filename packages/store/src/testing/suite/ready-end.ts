/**
 * readyEnd(): gets the end ready for the next write, for the stores that
 * have it (an optional method). It adds no byte and moves neither the head
 * nor the length; writes, reads and a reopen after it see what they would
 * have seen without it.
 */
import type { Store } from '../../store.js';
import { check, equalBytes, pattern } from './check.js';
import type { SuiteContext } from './context.js';
import { closedTrait } from './traits/closed.js';

/** Registers the checks of `readyEnd`. */
export function readyEndTests(context: SuiteContext): void {
  const { test, withStore, reopen } = context;
  const hasReadyEnd = (store: Store): boolean => typeof store.readyEnd === 'function';

  test('readyEnd adds no byte and moves no end, empty or not, again and again', () =>
    withStore(async (store) => {
      if (!hasReadyEnd(store)) return;
      const same = (head: number, length: number, when: string) => {
        check(store.head === head, `head ${store.head}, not ${head}, ${when}`);
        check(store.length === length, `length ${store.length}, not ${length}, ${when}`);
      };
      await store.readyEnd!();
      same(0, 0, 'after readyEnd on an empty store');
      await store.readyEnd!();
      same(0, 0, 'after a second readyEnd');
      const bytes = pattern(9000, 31);
      await store.write(0, bytes);
      await store.readyEnd!();
      same(0, 9000, 'after readyEnd on 9000 bytes');
      await store.write(9000, pattern(100, 32));
      equalBytes(await store.read(0, 9000), bytes, 'the bytes written before readyEnd');
      equalBytes(await store.read(9000, 100), pattern(100, 32), 'the write after readyEnd');
      await store.sync();
      if (!store.supports.persistent || reopen === undefined) return;
      await store.close();
      const again = await reopen(store);
      try {
        check(again.length === 9100, `length ${again.length} after reopen, not 9100`);
        await again.readyEnd!();
        check(again.length === 9100, `length ${again.length} after readyEnd on reopen`);
        equalBytes(await again.read(0, 9000), bytes, 'the bytes after reopen');
      } finally {
        await again.close();
      }
    }));

  closedTrait(context, 'readyEnd', (store) => store.readyEnd!(), hasReadyEnd);
}
