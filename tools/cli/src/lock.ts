/**
 * A read-only look at a log's lock file: who holds it and whether that
 * process still runs. It never takes, breaks or changes the lock.
 */
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';

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
   * possible; `unreadable`: the file holds no valid record (stale).
   */
  readonly holder?: 'alive' | 'dead' | 'unknown' | 'unreadable';
}

interface Owner {
  pid: number;
  host: string;
  start?: string;
}

function parse(text: string): Owner | undefined {
  try {
    const value = JSON.parse(text) as Record<string, unknown> | null;
    if (value === null || typeof value !== 'object') return undefined;
    const { pid, host, start } = value;
    if (!Number.isSafeInteger(pid) || (pid as number) <= 0 || typeof host !== 'string') {
      return undefined;
    }
    return typeof start === 'string'
      ? { pid: pid as number, host, start }
      : { pid: pid as number, host };
  } catch {
    return undefined;
  }
}

/** Field 22 of `/proc/<pid>/stat` (start time in clock ticks), or undefined where unknown. */
async function processStart(pid: number): Promise<string | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'latin1');
    // Fields after the parenthesised command name, which may contain spaces.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return rest[19];
  } catch {
    return undefined;
  }
}

async function holderOf(owner: Owner): Promise<'alive' | 'dead' | 'unknown'> {
  if (owner.host !== hostname()) return 'unknown';
  try {
    process.kill(owner.pid, 0);
  } catch (error) {
    // EPERM: the process exists but belongs to another user.
    return (error as { code?: unknown }).code === 'ESRCH' ? 'dead' : 'alive';
  }
  if (owner.start === undefined) return 'alive';
  const start = await processStart(owner.pid);
  // Same pid, another start time: the pid now belongs to an unrelated process.
  return start === undefined || start === owner.start ? 'alive' : 'dead';
}

/** Reads the lock file `file` without touching it. */
export async function lockStatus(file: string): Promise<LockStatus> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ENOENT') {
      return { locked: false, file, present: false };
    }
    throw error;
  }
  const owner = parse(text);
  if (owner === undefined) return { locked: false, file, present: true, holder: 'unreadable' };
  const holder = await holderOf(owner);
  return {
    locked: holder !== 'dead',
    file,
    present: true,
    pid: owner.pid,
    host: owner.host,
    holder,
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
    default:
      return 'not locked (unreadable lock file, treated as stale)';
  }
}
