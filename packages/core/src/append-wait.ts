/**
 * An append made with options (`wait`, `signal`): the one path of
 * `Wal.append` and `SharedWal.append`. Internal to @wal/core.
 */
import { abortable, abortError } from './abort.js';
import { appendSignal, type WaitLevel, waitLevel } from './options.js';

/**
 * Checks `options`, appends `payload` with `append` (synchronous; throws as
 * the caller's append does), then waits with `wait(lsn + 1, level)` for the
 * record's level, abortable by `options.signal`; resolves with the LSN.
 * Rejects, appending nothing, for invalid options or an aborted signal.
 */
export function appendAndWait(
  payload: Uint8Array,
  options: object,
  append: (payload: Uint8Array) => number,
  wait: (target: number, level: WaitLevel) => Promise<unknown>,
): Promise<number> {
  let lsn: number;
  let level: WaitLevel;
  let signal: AbortSignal | undefined;
  try {
    level = waitLevel(options);
    signal = appendSignal(options);
    if (signal?.aborted === true) throw abortError(signal);
    lsn = append(payload);
  } catch (error) {
    return Promise.reject(error);
  }
  return abortable(
    wait(lsn + 1, level).then(() => lsn),
    signal,
  );
}
