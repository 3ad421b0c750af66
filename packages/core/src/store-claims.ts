/**
 * Which store instances an open log holds: one `Wal` per `Store` object at a
 * time (docs/DURABILITY.md §1). A path open makes its own store and its file
 * lock keeps a second writer out; a store instance passed in (or returned by
 * a function) has no such guard inside this process: two logs over the same
 * object would both recover it, hand out the same LSNs and overwrite each
 * other's acknowledged records. Internal to @wal/core.
 */
import { LockedError } from '@wal/errors';
import type { Store } from '@wal/store';

/** The stores held by a `Wal` from its open until its close settled. */
const held = new WeakSet<Store>();

/**
 * Takes `store` for a log being opened. Throws `WAL_LOCKED` (changing
 * nothing, the store untouched) while another log holds it.
 */
export function claimStore(store: Store): void {
  if (held.has(store)) {
    throw new LockedError('the store instance', { pid: process.pid, alive: true });
  }
  held.add(store);
}

/** Gives `store` back: the log holding it failed to open, or its close settled. */
export function releaseStore(store: Store): void {
  held.delete(store);
}
