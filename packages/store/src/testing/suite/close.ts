/**
 * close(): marks the store closed at once, waits for work in flight, may be
 * called again. Each operation on a closed store: traits/closed.ts, registered
 * by the operation's file.
 */
import type { SuiteContext } from './context.js';
import { closeWithWriteInFlight } from './traits/closed.js';

/** Registers the checks of `close`. */
export function closeTests(context: SuiteContext): void {
  context.test(
    'close waits for work in flight, reports closed at once, and may be called again',
    async () => {
      await closeWithWriteInFlight(await context.factory());
    },
  );
}
