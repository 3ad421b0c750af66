/**
 * Blocking commits (`WalOptions.blockingSync`, docs/DURABILITY.md §2.1): the
 * log's writes and syncs run synchronously on the calling thread, through
 * the store's `writeNow` and `syncNow`, whenever the store can run them
 * without waiting; otherwise (a segment to create, the store gate closed, a
 * store without them) the asynchronous path runs as usual. It changes who
 * calls fdatasync and on which thread, not what a resolved `durable`
 * promise means: the group commit still marks durable only what a sync that
 * returned covered. Internal to @wal/core.
 */
import type { LogState } from './state.js';

const RESOLVED: Promise<void> = Promise.resolve();

/** How a {@link writeNow} ended: done, not done (use the store's `write`), or failed. */
export type WriteNowOutcome = boolean | { readonly cause: unknown };

/**
 * Writes `bytes` at `start` synchronously if the log runs blocking and the
 * store can: true once the OS has them, false having done nothing, or the
 * failure. The caller holds the write in its own accounting as for `write`,
 * and settles a failure in a later microtask, as that of a write in flight.
 */
export function writeNow(log: LogState, start: number, bytes: Uint8Array): WriteNowOutcome {
  const store = log.store;
  if (!log.blockingSync || store.writeNow === undefined || log.gate.closed !== undefined) {
    return false;
  }
  try {
    return store.writeNow(start, bytes);
  } catch (cause) {
    return { cause };
  }
}

/**
 * The group commit's sync for a blocking log: the store's `syncNow` when it
 * can run now (its failure stops the log as a failed `sync` does), else the
 * asynchronous `Durability.syncStore`. Resolves (already settled) once
 * everything written when it was called is durable.
 */
export function syncNow(log: LogState): Promise<void> {
  const store = log.store;
  if (store.syncNow === undefined || log.gate.closed !== undefined) {
    return log.durability.syncStore();
  }
  const target = log.gc!.written;
  log.preallocation.syncAsked();
  let done: boolean;
  try {
    done = store.syncNow();
  } catch (cause) {
    // Settled as a failed asynchronous sync is: in a later microtask, never
    // inside the caller (an append, a truncation), which goes on as if the
    // sync were in flight.
    return RESOLVED.then(() => {
      log.durability.syncFailed(cause);
      throw cause;
    });
  }
  if (!done) return log.durability.syncStore();
  log.durability.synced(target);
  return RESOLVED;
}
