/**
 * Cancellable waits (docs/DURABILITY.md §3): an `AbortSignal` ends a caller's
 * wait, never the operation waited for. Internal to @wal/core.
 */
import { invalidArgType, rejectUnknownKeys } from '@wal/errors';

/**
 * The error a cancelled wait rejects with: a `DOMException` named
 * `'AbortError'` (as `fetch` and the web streams of Node give), whose `cause`
 * is `signal.reason`.
 */
export function abortError(signal: AbortSignal): DOMException {
  return new DOMException('The operation was aborted', {
    name: 'AbortError',
    cause: signal.reason,
  });
}

/** Throws `ERR_INVALID_ARG_TYPE`, naming `name`, unless `value` is an `AbortSignal` or `undefined`. */
export function validateSignal(
  name: string,
  value: unknown,
): asserts value is AbortSignal | undefined {
  if (value !== undefined && !(value instanceof AbortSignal)) {
    throw invalidArgType(name, 'an instance of AbortSignal', value);
  }
}

/** The waits pending on one signal and the one listener dispatching to them. */
interface Pending {
  /** Their rejections, in call order (a `Set` keeps insertion order). */
  readonly waits: Set<(error: DOMException) => void>;
  readonly onAbort: () => void;
}

/**
 * The waits pending on each signal. A `WeakMap`: a signal with no pending wait
 * has no entry, and no entry keeps a signal alive.
 */
const pendingBySignal = new WeakMap<AbortSignal, Pending>();

/** The entry of `signal`, adding its listener if it had none. */
function pendingOn(signal: AbortSignal): Pending {
  let pending = pendingBySignal.get(signal);
  if (pending === undefined) {
    const waits: Pending['waits'] = new Set();
    const onAbort = (): void => {
      pendingBySignal.delete(signal);
      for (const rejectWait of waits) rejectWait(abortError(signal));
      waits.clear();
    };
    pending = { waits, onAbort };
    pendingBySignal.set(signal, pending);
    signal.addEventListener('abort', onAbort, { once: true });
  }
  return pending;
}

/**
 * `wait`, or a rejection with {@link abortError} as soon as `signal` aborts,
 * whichever comes first. However many waits are pending on one signal, it has
 * a single `'abort'` listener, added by the first of them and removed when the
 * last one settles: one long-lived signal may serve any number of waits, and
 * Node never warns of too many listeners (`MaxListenersExceededWarning`). On
 * abort, the pending waits reject in call order, each with its own
 * {@link abortError}. `wait` goes on regardless (its outcome is then observed
 * and dropped). The caller checks `signal.aborted` first: an aborted signal
 * starts nothing.
 */
export function abortable<T>(wait: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return wait;
  return new Promise<T>((resolve, reject) => {
    const pending = pendingOn(signal);
    pending.waits.add(reject);
    const settled = (): void => {
      // Not there any more if the signal aborted first.
      if (!pending.waits.delete(reject) || pending.waits.size !== 0) return;
      pendingBySignal.delete(signal);
      signal.removeEventListener('abort', pending.onAbort);
    };
    wait.then(
      (value) => {
        settled();
        resolve(value);
      },
      (error: unknown) => {
        settled();
        reject(error);
      },
    );
  });
}

const WAIT_OPTIONS: ReadonlySet<string> = new Set(['signal']);

/**
 * Runs `start` unless the signal of `options` (those of `waitFor`, `sync`,
 * `drained`: `undefined` or `{ signal }`) is already aborted, and makes its
 * wait {@link abortable}. Rejects, starting nothing, for invalid options
 * (`ERR_INVALID_ARG_TYPE`, `ERR_INVALID_ARG_VALUE` for an unknown key) or an
 * aborted signal (`AbortError`).
 */
export function cancellable<T>(options: unknown, start: () => Promise<T>): Promise<T> {
  let signal: AbortSignal | undefined;
  if (options !== undefined) {
    try {
      if (typeof options !== 'object' || options === null) {
        throw invalidArgType('options', 'of type object', options);
      }
      rejectUnknownKeys('options', options, WAIT_OPTIONS);
      signal = (options as { signal?: unknown }).signal as AbortSignal | undefined;
      validateSignal('options.signal', signal);
      if (signal?.aborted === true) throw abortError(signal);
    } catch (error) {
      return Promise.reject(error);
    }
  }
  return abortable(start(), signal);
}
