/** Every stable code a {@link WalError} can carry. Codes never change meaning. */
export type WalErrorCode =
  | 'WAL_BUSY'
  | 'WAL_CLOSED'
  | 'WAL_CORRUPTION'
  | 'WAL_FAILED'
  | 'WAL_IO'
  | 'WAL_LOCKED'
  | 'WAL_NOT_BOUNDARY'
  | 'WAL_NO_SPACE'
  | 'WAL_READ_ONLY'
  | 'WAL_RECORD_TOO_LARGE'
  | 'WAL_TRUNCATED'
  | 'WAL_WRITE_FAILED';

/** Fields every {@link WalError} constructor accepts. */
export interface WalErrorOptions {
  /** The underlying error (an fs error, a failed sync), kept as `error.cause`. */
  readonly cause?: unknown;
  /** The byte offset (LSN) the failure concerns, when there is one. */
  readonly offset?: number;
}

/**
 * Base class of every storage failure raised by `@wal` packages. `code` is stable
 * and documented; `offset`, when set, is the byte offset or LSN concerned.
 */
export class WalError extends Error {
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

/** `WAL_LOCKED`: another handle, in this or another process, holds the exclusive lock. */
export class LockedError extends WalError {
  /** Path of the lock that is held. */
  readonly path: string;

  constructor(path: string, options: WalErrorOptions = {}) {
    super('WAL_LOCKED', `${path} is locked by another open handle`, options);
    this.path = path;
  }
}

/** `WAL_RECORD_TOO_LARGE`: a record is larger than the configured maximum. */
export class RecordTooLargeError extends WalError {
  /** The record's length in bytes. */
  readonly length: number;
  /** The maximum that applied. */
  readonly limit: number;

  constructor(length: number, limit: number, options: WalErrorOptions = {}) {
    const where = options.offset === undefined ? '' : ` at offset ${options.offset}`;
    super(
      'WAL_RECORD_TOO_LARGE',
      `record of ${length} bytes${where} exceeds the maximum record size of ${limit} bytes`,
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

/** True when `error` is a {@link WalError}, and, if `code` is given, carries that code. */
export function isWalError(error: unknown, code?: WalErrorCode): error is WalError {
  return error instanceof WalError && (code === undefined || error.code === code);
}
