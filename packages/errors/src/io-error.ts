import { errorCode } from './error-code.js';
import { IoError, isWalError, NoSpaceError, type WalError } from './wal-error.js';

/**
 * Translates a failure of a file-system call into a {@link WalError}, naming
 * what was being done (`what`, e.g. `'fdatasync of /data/log/…'`) and, when
 * given, the byte `offset` concerned. Guarantees:
 *
 * - a value that already is a `WalError` (`WAL_CLOSED`, `WAL_CORRUPTION`,
 *   `WAL_FAILED`, a `WAL_IO` from a lower layer, …), also one of another
 *   copy of this package or another realm ({@link isWalError}), is returned
 *   as it is: its code, offset and message are never lost to a generic I/O
 *   error;
 * - `ENOSPC` and `EDQUOT` become {@link NoSpaceError} (`WAL_NO_SPACE`);
 * - anything else (`EIO`, `EACCES`, a thrown non-error) becomes
 *   {@link IoError} (`WAL_IO`).
 *
 * A new error keeps the original as `cause`, its `errno` and `syscall` when
 * they are strings, and `offset`; its message is `<what> failed (<errno>)`
 * followed by ` at offset <offset>` when there is one. Never throws, whatever
 * `error` is (a getter that throws, a revoked `Proxy`).
 */
export function toWalError(error: unknown, what: string, offset?: number): WalError {
  if (isWalError(error)) return error;
  const errno = errorCode(error);
  const syscall = readSyscall(error);
  const options = {
    cause: error,
    ...(errno === undefined ? {} : { errno }),
    ...(typeof syscall === 'string' ? { syscall } : {}),
    ...(offset === undefined ? {} : { offset }),
  };
  const message = `${what} failed${errno === undefined ? '' : ` (${errno})`}${offset === undefined ? '' : ` at offset ${offset}`}`;
  return errno === 'ENOSPC' || errno === 'EDQUOT'
    ? new NoSpaceError(message, options)
    : new IoError(message, options);
}

/** `error.syscall`, `undefined` where reading it throws. */
function readSyscall(error: unknown): unknown {
  if (typeof error !== 'object' || error === null) return undefined;
  try {
    return (error as { syscall?: unknown }).syscall;
  } catch {
    return undefined;
  }
}
