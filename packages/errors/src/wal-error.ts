/** Every stable code a {@link WalError} can carry. Codes never change meaning. */
export type WalErrorCode =
  | 'WAL_BUSY'
  | 'WAL_CLOSED'
  | 'WAL_CODEC'
  | 'WAL_CONFLICT'
  | 'WAL_CORRUPTION'
  | 'WAL_FAILED'
  | 'WAL_IO'
  | 'WAL_LOCKED'
  | 'WAL_NOT_BOUNDARY'
  | 'WAL_NOT_A_LOG'
  | 'WAL_NO_SPACE'
  | 'WAL_READ_ONLY'
  | 'WAL_RECORD_TOO_LARGE'
  | 'WAL_REPLICA_FENCED'
  | 'WAL_REPLICA_MISMATCH'
  | 'WAL_TRUNCATED'
  | 'WAL_UNSUPPORTED_FORMAT'
  | 'WAL_WRITE_FAILED';

/** Fields every {@link WalError} constructor accepts. */
export interface WalErrorOptions {
  /** The underlying error (an fs error, a failed sync), kept as `error.cause`. */
  readonly cause?: unknown;
  /** The byte offset (LSN) the failure concerns, when there is one. */
  readonly offset?: number;
}

/**
 * The brand every {@link WalError} carries (on `WalError.prototype`): a
 * registered symbol, the same in every copy of this package (two installed
 * versions, a bundled copy) and in every realm (a `vm` context), where
 * `instanceof` fails. {@link isWalError} and `toWalError` check it.
 */
const WAL_ERROR_BRAND = Symbol.for('@wal/errors.WalError');

/**
 * Base class of every storage failure raised by `@wal` packages. `code` is stable
 * and documented; `offset`, when set, is the byte offset or LSN concerned.
 */
export class WalError extends Error {
  static {
    Object.defineProperty(WalError.prototype, WAL_ERROR_BRAND, { value: true });
  }

  /** Stable machine-readable code; see the package README for each one. */
  readonly code: WalErrorCode;
  /** Offset or LSN the failure concerns, or `undefined` when none applies. */
  readonly offset: number | undefined;

  constructor(code: WalErrorCode, message: string, options: WalErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.offset = options.offset;
  }

  override get name(): string {
    return this.constructor.name;
  }
}

/** `WAL_CORRUPTION`: stored bytes fail a check (CRC, structure) where damage is not a torn tail. */
export class CorruptionError extends WalError {
  constructor(message: string, options: WalErrorOptions = {}) {
    super('WAL_CORRUPTION', message, options);
  }
}

/** `WAL_CLOSED`: the handle was closed; nothing was done. */
export class ClosedError extends WalError {
  constructor(what = 'store', options: WalErrorOptions = {}) {
    super('WAL_CLOSED', `the ${what} is closed`, options);
  }
}

/** Who holds a lock, as its lock file records it: fields of {@link LockedError}. */
export interface LockHolderOptions {
  /** The holder's process id. */
  readonly pid?: number;
  /** The host name the holder runs on. */
  readonly host?: string;
  /**
   * `true` when the holder was seen running (same host, the process exists),
   * `undefined` when that cannot be told from here (another host).
   */
  readonly alive?: boolean;
}

/** Options of {@link LockedError}: who holds the lock, or why it cannot be taken. */
export interface LockedErrorOptions extends WalErrorOptions, LockHolderOptions {
  /**
   * Why the exclusive lock cannot be had when no holder is the cause, e.g.
   * a log file with more than one name (hard links), which a lock named
   * after one of them would not protect. The message then gives it instead
   * of a holder: `<path> cannot be locked: <reason>`.
   */
  readonly reason?: string;
}

/**
 * `WAL_LOCKED`: another handle, in this or another process, holds the
 * exclusive lock. `pid`, `host` and `alive` say who holds it when the lock
 * file records it; the message names the process. With `reason`: the
 * exclusive lock cannot be had for the reason given (see
 * {@link LockedErrorOptions.reason}); `path` then names the file that
 * cannot be locked.
 */
export class LockedError extends WalError {
  /** Path of the lock that is held (or of the file that cannot be locked: `reason`). */
  readonly path: string;
  /** Process id of the holder, when the lock file records it. */
  readonly pid: number | undefined;
  /** Host name of the holder, when the lock file records it. */
  readonly host: string | undefined;
  /** `true`: the holder was seen running; `undefined`: unknown (another host, or no record). */
  readonly alive: boolean | undefined;
  /** Why the lock cannot be had, when no holder is the cause ({@link LockedErrorOptions.reason}). */
  readonly reason: string | undefined;

  constructor(path: string, options: LockedErrorOptions = {}) {
    super(
      'WAL_LOCKED',
      options.reason === undefined
        ? `${path} is locked by ${holderPhrase(options)}`
        : `${path} cannot be locked: ${options.reason}`,
      options,
    );
    this.path = path;
    this.pid = options.pid;
    this.host = options.host;
    this.alive = options.alive;
    this.reason = options.reason;
  }
}

function holderPhrase({ pid, host, alive }: LockHolderOptions): string {
  if (pid === undefined) return 'another open handle';
  if (alive === true && pid === globalThis.process?.pid) {
    return `this process (pid ${pid}), through a handle still open; close that handle first`;
  }
  if (alive === true) return `process ${pid}, which is running`;
  const where = host === undefined ? '' : ` on host ${host}`;
  return `process ${pid}${where} (whether it still runs cannot be checked from here)`;
}

/**
 * `WAL_RECORD_TOO_LARGE`: a record is larger than the configured maximum.
 * `offset` is set for a record found in storage; an append refused for its
 * size has none (nothing was written).
 */
export class RecordTooLargeError extends WalError {
  /** The record's length in bytes. */
  readonly length: number;
  /** The maximum that applied. */
  readonly limit: number;

  constructor(length: number, limit: number, options: WalErrorOptions = {}) {
    super(
      'WAL_RECORD_TOO_LARGE',
      options.offset === undefined
        ? `a record of ${length} bytes exceeds the maximum record size of ${limit} bytes`
        : `the record at offset ${options.offset} has ${length} bytes, which exceeds the maximum record size of ${limit} bytes`,
      options,
    );
    this.length = length;
    this.limit = limit;
  }
}

/**
 * `WAL_FAILED`: an earlier failure (a failed fsync, a failed write) latched the
 * handle; every later call fails the same way. `cause` is the original failure.
 * Nothing after the failure can be assumed durable.
 */
export class FailedError extends WalError {
  constructor(message: string, options: WalErrorOptions = {}) {
    super('WAL_FAILED', message, options);
  }
}

/**
 * `WAL_WRITE_FAILED`: a write at `offset` failed, so nothing at or after it can
 * become written or durable. Data below `offset` is unaffected.
 */
export class WriteFailedError extends WalError {
  constructor(offset: number, options: Omit<WalErrorOptions, 'offset'> = {}) {
    super(
      'WAL_WRITE_FAILED',
      `a write at offset ${offset} failed; nothing at or after it can be made durable`,
      {
        ...options,
        offset,
      },
    );
  }
}

/** `WAL_BUSY`: an exclusive operation (a truncation) is running; try again after it. */
export class BusyError extends WalError {
  constructor(message: string, options: WalErrorOptions = {}) {
    super('WAL_BUSY', message, options);
  }
}

/**
 * `WAL_IO`: an operating-system I/O call failed. `errno` is the system code
 * (`EIO`, `EACCES`, …) and `syscall` the failed call, when known.
 */
export class IoError extends WalError {
  /** The system error code, e.g. `EIO`. */
  readonly errno: string | undefined;
  /** The failed call, e.g. `fdatasync`. */
  readonly syscall: string | undefined;

  constructor(
    message: string,
    options: WalErrorOptions & { errno?: string; syscall?: string } = {},
    code: 'WAL_IO' | 'WAL_NO_SPACE' = 'WAL_IO',
  ) {
    super(code, message, options);
    this.errno = options.errno;
    this.syscall = options.syscall;
  }
}

/** `WAL_NO_SPACE`: the device is full (`ENOSPC`, `EDQUOT`). An {@link IoError}. */
export class NoSpaceError extends IoError {
  constructor(
    message: string,
    options: WalErrorOptions & { errno?: string; syscall?: string } = {},
  ) {
    super(message, options, 'WAL_NO_SPACE');
  }
}

/**
 * `WAL_READ_ONLY`: the handle was opened read-only, so a call that would change
 * storage (`write`, `sync`, a truncation, a metadata update) was refused.
 * Nothing was done.
 */
export class ReadOnlyError extends WalError {
  /** @param what The refused operation, e.g. `'write'`. */
  constructor(what: string, options: WalErrorOptions = {}) {
    super('WAL_READ_ONLY', `cannot ${what}: opened read-only`, options);
  }
}

/**
 * `WAL_TRUNCATED`: the records at `offset` (an LSN) were removed by a
 * truncation — the prefix holding them was reclaimed, or the suffix holding
 * them was dropped — so they can no longer be read.
 */
export class TruncatedError extends WalError {
  constructor(message: string, options: WalErrorOptions = {}) {
    super('WAL_TRUNCATED', message, options);
  }
}

/**
 * `WAL_NOT_BOUNDARY`: `offset` (an LSN) is not a record boundary of the log:
 * no record starts there. Nothing was done.
 */
export class BoundaryError extends WalError {
  constructor(message: string, options: WalErrorOptions = {}) {
    super('WAL_NOT_BOUNDARY', message, options);
  }
}

/** Fields of the replication errors: the stream sequence concerned, when there is one. */
export interface ReplicaErrorOptions extends WalErrorOptions {
  /** The stream sequence of the message concerned. */
  readonly sequence?: number;
}

/**
 * `WAL_REPLICA_MISMATCH`: a replication stream does not hold this log — it
 * holds another log's records, has a gap in its sequences, a message that is
 * not a log record, or records this log does not have. Nothing was merged.
 */
export class ReplicaMismatchError extends WalError {
  /** The stream sequence concerned, or `undefined`. */
  readonly sequence: number | undefined;

  constructor(message: string, options: ReplicaErrorOptions = {}) {
    super('WAL_REPLICA_MISMATCH', message, options);
    this.sequence = options.sequence;
  }
}

/**
 * `WAL_REPLICA_FENCED`: another writer extended the replication stream, so
 * this one stopped shipping; nothing of this log was published after it.
 */
export class ReplicaFencedError extends WalError {
  /** The stream sequence this writer expected to be the last one. */
  readonly sequence: number | undefined;

  constructor(message: string, options: ReplicaErrorOptions = {}) {
    super('WAL_REPLICA_FENCED', message, options);
    this.sequence = options.sequence;
  }
}

/**
 * `WAL_CONFLICT`: a transaction could not commit because a transaction that
 * committed after its snapshot was taken changed `key` (a key it read, wrote or
 * scanned past, depending on the isolation level). Nothing of the transaction
 * was applied; running it again from the start may succeed.
 */
export class ConflictError extends WalError {
  /** The key whose change caused the conflict (a copy). */
  readonly key: Uint8Array;
  /** What the transaction did with `key`: `'read'`, `'write'` or `'scan'` (a key inside a scanned range). */
  readonly access: 'read' | 'write' | 'scan';

  constructor(key: Uint8Array, access: 'read' | 'write' | 'scan', options: WalErrorOptions = {}) {
    super(
      'WAL_CONFLICT',
      `transaction conflict: a concurrent commit changed a key this transaction ${access === 'scan' ? 'scanned past' : access === 'read' ? 'read' : 'wrote'} (${describeKey(key)})`,
      options,
    );
    this.key = Uint8Array.from(key);
    this.access = access;
  }
}

function describeKey(key: Uint8Array): string {
  const shown = key.subarray(0, 32);
  const printable = shown.every((b) => b >= 0x20 && b < 0x7f);
  const text = printable
    ? `'${String.fromCharCode(...shown)}'`
    : `0x${Array.from(shown, (b) => b.toString(16).padStart(2, '0')).join('')}`;
  return key.length > 32 ? `${text}…, ${key.length} bytes` : text;
}

/**
 * `WAL_NOT_A_LOG`: an open found something at `path` that is not a log (a
 * user's file or directory; docs/FORMAT.md §3.1 says what counts as a log)
 * and refused it. `found` says what is there. Nothing on disk was changed:
 * no truncation, no metadata, lock, head or segment file, no directory.
 */
export class NotALogError extends WalError {
  /** The path that was opened. */
  readonly path: string;
  /** What was found there, e.g. `a directory holding photo.jpg`. */
  readonly found: string;

  constructor(path: string, found: string, options: WalErrorOptions = {}) {
    super('WAL_NOT_A_LOG', `${path} is not a log: ${found}; nothing was changed`, options);
    this.path = path;
    this.found = found;
  }
}

/**
 * `WAL_CODEC`: the codec of a typed log threw. Encoding (`operation:
 * 'encode'`): nothing was appended. Decoding (`'decode'`): the record at
 * `offset` (its LSN) is intact in the log but the codec refused its bytes.
 * `cause` is what the codec threw.
 */
export class CodecError extends WalError {
  /** Which codec call failed. */
  readonly operation: 'encode' | 'decode';

  constructor(operation: 'encode' | 'decode', options: WalErrorOptions = {}) {
    const what =
      operation === 'encode'
        ? 'the codec failed to encode a value; nothing was appended'
        : `the codec failed to decode the record at ${options.offset ?? 'an unknown LSN'}`;
    const cause = options.cause;
    const reason =
      cause instanceof Error ? cause.message : cause === undefined ? '' : String(cause);
    super('WAL_CODEC', reason === '' ? what : `${what}: ${reason}`, options);
    this.operation = operation;
  }
}

/**
 * `WAL_UNSUPPORTED_FORMAT`: the log is in a format version (`found`, its
 * `wal.format` metadata key) this release cannot read — written by a later
 * release — so the open refused it before reading a record. Nothing on disk
 * was changed: no truncation, no metadata, head or segment file. Open it with
 * a release whose `supported` versions include `found`.
 */
export class UnsupportedFormatError extends WalError {
  /** The format version the log records. */
  readonly found: number;
  /** The format versions this release reads, in ascending order. */
  readonly supported: readonly number[];

  constructor(found: number, supported: readonly number[], options: WalErrorOptions = {}) {
    super(
      'WAL_UNSUPPORTED_FORMAT',
      `the log is in format version ${found}, which this release cannot read (it reads version${supported.length === 1 ? '' : 's'} ${supported.join(', ')}); open it with a release that supports version ${found}`,
      options,
    );
    this.found = found;
    this.supported = Object.freeze([...supported]);
  }
}

/**
 * True when `error` is a {@link WalError}, and, if `code` is given, carries
 * that code. A `WalError` of another copy of this package or of another
 * realm counts (it carries the same brand), although `instanceof WalError`
 * is false for it. Never throws (false for a revoked `Proxy`).
 */
export function isWalError(error: unknown, code?: WalErrorCode): error is WalError {
  if (typeof error !== 'object' || error === null) return false;
  try {
    if ((error as { [WAL_ERROR_BRAND]?: unknown })[WAL_ERROR_BRAND] !== true) return false;
    return code === undefined || (error as { code?: unknown }).code === code;
  } catch {
    return false;
  }
}
