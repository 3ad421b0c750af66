/**
 * The one error hierarchy of @wal. Every storage failure is a {@link WalError}
 * with a stable `code`; invalid arguments are Node-style `TypeError` /
 * `RangeError` values carrying a `code` (see {@link invalidArgType}).
 *
 * @packageDocumentation
 */

export {
  type ArgumentError,
  type ArgumentErrorCode,
  argumentError,
  invalidArgType,
  invalidArgValue,
  isArgumentError,
  MAX_OFFSET,
  outOfRange,
  rejectUnknownKeys,
  validateBytes,
  validateInteger,
  validateOffset,
} from './arguments.js';
export { errorCode } from './error-code.js';
export { toWalError } from './io-error.js';
export {
  BoundaryError,
  BusyError,
  ClosedError,
  CodecError,
  ConflictError,
  CorruptionError,
  FailedError,
  IoError,
  isWalError,
  LockedError,
  type LockedErrorOptions,
  type LockHolderOptions,
  NoSpaceError,
  NotALogError,
  ReadOnlyError,
  RecordTooLargeError,
  type ReplicaErrorOptions,
  ReplicaFencedError,
  ReplicaMismatchError,
  TruncatedError,
  UnsupportedFormatError,
  WalError,
  type WalErrorCode,
  type WalErrorOptions,
  WriteFailedError,
} from './wal-error.js';
