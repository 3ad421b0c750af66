/**
 * Trait: an operation given an invalid argument rejects (never throws) with a
 * coded TypeError or RangeError, like Node's ERR_INVALID_ARG_TYPE and
 * ERR_OUT_OF_RANGE, and leaves the store as it was.
 */
import type { Store } from '../../../store.js';
import { check, type Expected, equalBytes, pattern, rejectsWith } from '../check.js';
import type { SuiteContext } from '../context.js';

/** One invalid call: what the failure message names it, the call, the rejection it must get. */
export interface InvalidCall {
  readonly what: string;
  readonly run: (store: Store) => Promise<unknown>;
  readonly expected: Expected;
}

/** Invalid offsets and lengths, with the code each must be rejected with. */
const BAD_POSITIONS: ReadonlyArray<[unknown, string]> = [
  [-1, 'ERR_OUT_OF_RANGE'],
  [1.5, 'ERR_OUT_OF_RANGE'],
  [Number.NaN, 'ERR_OUT_OF_RANGE'],
  [2 ** 53, 'ERR_OUT_OF_RANGE'],
  ['1', 'ERR_INVALID_ARG_TYPE'],
  [undefined, 'ERR_INVALID_ARG_TYPE'],
];

/**
 * The invalid calls made by passing each bad offset or length as the argument
 * `run` takes; `what` names the call for a given bad value.
 */
export function badPositions(
  what: (bad: string) => string,
  run: (store: Store, position: number) => Promise<unknown>,
): InvalidCall[] {
  return BAD_POSITIONS.map(([bad, code]) => ({
    what: what(String(bad)),
    run: (store: Store) => run(store, bad as number),
    expected: { code },
  }));
}

/**
 * Registers "`name`: invalid arguments reject …": on a store holding 10 bytes,
 * every call of `calls` must reject as it says, and the store must still hold
 * the same bytes, head and length afterwards. When `applies` says the store
 * lacks the operation (an optional method), the test checks nothing.
 */
export function invalidArgumentsTrait(
  context: SuiteContext,
  name: string,
  calls: readonly InvalidCall[],
  applies: (store: Store) => boolean = () => true,
): void {
  context.test(
    `${name}: invalid arguments reject with coded TypeError / RangeError and change nothing`,
    () =>
      context.withStore(async (store) => {
        if (!applies(store)) return;
        await store.write(0, pattern(10, 1));
        for (const call of calls) {
          await rejectsWith(() => call.run(store), call.expected, call.what);
        }
        check(
          (store.length as number) === 10 && (store.head as number) === 0,
          'a rejected call changed the store',
        );
        equalBytes(await store.read(0, 10), pattern(10, 1), 'data after rejected calls');
      }),
  );
}
