/** sync(): on a closed store (its concurrency with writes: write.ts, with truncations: exclusive.ts). */
import type { SuiteContext } from './context.js';
import { closedTrait } from './traits/closed.js';

/** Registers the checks of `sync`. */
export function syncTests(context: SuiteContext): void {
  closedTrait(context, 'sync', (store) => store.sync());
}
