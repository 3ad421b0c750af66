/**
 * A read-only look at a log's lock file: who holds it and whether that
 * process still runs. It never takes, breaks or changes the lock.
 */
import { readLockHolder } from '@wal/store';

/** What the lock file says, and what we could tell about its holder. */
export interface LockStatus {
  /** True when a lock file exists and its holder looks alive (or cannot be checked). */
  readonly locked: boolean;
  /** The lock file's path. */
  readonly file: string;
  /** Whether a lock file exists. */
  readonly present: boolean;
  readonly pid?: number;
  readonly host?: string;
  /**
   * `alive`: the holder runs on this host; `dead`: it does not (a stale lock,
   * taken over by the next writer); `unknown`: another host, so no check is
   * possible; `unreadable`: the file is empty, only NUL bytes or a record
   * cut short (what a power loss leaves of one: stale); `foreign`: not a lock file of a log, which a writer refuses to
   * open beside and never removes.
   */
  readonly holder?: 'alive' | 'dead' | 'unknown' | 'unreadable' | 'foreign';
}

/** Reads the lock file `file` without touching it (the store's own reading of it). */
export async function lockStatus(file: string): Promise<LockStatus> {
  const holder = await readLockHolder(file);
  if (holder === undefined) return { locked: false, file, present: false };
  const { pid, host, state } = holder;
  if (pid === undefined || host === undefined) {
    return {
      locked: false,
      file,
      present: true,
      holder: state === 'foreign' ? state : 'unreadable',
    };
  }
  return {
    locked: state === 'alive' || state === 'unknown',
    file,
    present: true,
    pid,
    host,
    holder: state,
  };
}

/** One phrase for the text output: `locked by process 123 (alive)`. */
export function describeLock(status: LockStatus): string {
  if (!status.present) return 'not locked';
  switch (status.holder) {
    case 'alive':
      return `locked by process ${status.pid} (running)`;
    case 'unknown':
      return `locked by process ${status.pid} on host ${status.host} (cannot check from here)`;
    case 'dead':
      return `not locked (stale lock file of process ${status.pid}, which no longer runs)`;
    case 'foreign':
      return "not locked, but the lock file is not a log's: a writer refuses to open until it is removed";
    default:
      return 'not locked (empty or cut-short lock file, left by a power loss: treated as stale)';
  }
}
