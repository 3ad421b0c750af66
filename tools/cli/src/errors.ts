/**
 * Exit codes and the translation of failures into one line for the user.
 */
import {
  errorCode,
  isArgumentError,
  isWalError,
  type LockedError,
  type NotALogError,
} from '@wal/errors';

/** Exit codes of every command (documented in the README). */
export const EXIT = {
  /** Success; for `verify`, also a log whose only problem is a torn tail. */
  ok: 0,
  /** The log is damaged (below its durable hint, or its metadata). */
  damaged: 1,
  /** Usage error, I/O error, not a log, locked log. */
  usage: 2,
  /** `repair`: the user declined. */
  declined: 3,
  /** The log is in a format version this release cannot read (a later release wrote it). */
  unsupported: 4,
} as const;

/** A failure meant for the user: printed as one line, no stack. */
export class CliError extends Error {
  /** `cause`: the failure this one describes, when a command may look at it. */
  constructor(
    message: string,
    readonly exitCode: number = EXIT.usage,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'CliError';
  }
}

/** The errno of an I/O failure, from a `WAL_IO` error or a raw Node error. */
function errnoOf(error: unknown): string | undefined {
  const errno = (error as { errno?: unknown } | null)?.errno; // a WAL_IO error's
  if (typeof errno === 'string') return errno;
  const code = errorCode(error);
  return code !== undefined && /^E[A-Z]+$/.test(code) ? code : undefined;
}

const ERRNO_TEXT: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOTDIR: 'not a directory',
  EISDIR: 'is a directory',
  ENOSPC: 'no space left on the device',
  EROFS: 'read-only file system',
};

/** `upTo` as its command-line option: `--up-to`. */
function optionName(name: string): string {
  return `--${name.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`)}`;
}

/**
 * A library message about an option (`The value of "options.upTo" is out of
 * range. It must be <= 9. Received 12`) in the words of the command line:
 * `--up-to 12 is out of range: it must be <= 9`.
 */
export function optionWords(message: string): string {
  const range =
    /^The value of "options\.(\w+)" is out of range\. It must be (.*)\. Received (.*)$/s.exec(
      message,
    );
  if (range !== null) {
    return `${optionName(range[1]!)} ${range[3]} is out of range: it must be ${range[2]}`;
  }
  return message.replace(/"options\.(\w+)"/g, (_, name: string) => optionName(name));
}

/**
 * Turns any failure into `{ message, exitCode }` for `wal: <message>`.
 * `path` names the log for messages that lack it.
 */
export function describeError(
  error: unknown,
  path?: string,
): { message: string; exitCode: number } {
  if (error instanceof CliError) return { message: error.message, exitCode: error.exitCode };
  const where = path === undefined ? '' : `${path}: `;
  if (isWalError(error)) {
    switch (error.code) {
      case 'WAL_CORRUPTION':
        return { message: `${where}the log is damaged: ${error.message}`, exitCode: EXIT.damaged };
      case 'WAL_UNSUPPORTED_FORMAT':
        return { message: `${where}${error.message}`, exitCode: EXIT.unsupported };
      case 'WAL_RECORD_TOO_LARGE':
        return { message: `${where}${error.message}`, exitCode: EXIT.damaged };
      case 'WAL_NOT_A_LOG':
        return {
          message: `${where}not a log: ${(error as NotALogError).found}`,
          exitCode: EXIT.usage,
        };
      case 'WAL_LOCKED': {
        const { pid } = error as LockedError;
        const by = pid === undefined ? 'another process' : `process ${pid}`;
        return {
          message: `${where}the log is locked by ${by} (stop it first)`,
          exitCode: EXIT.usage,
        };
      }
      case 'WAL_IO':
      case 'WAL_NO_SPACE': {
        // The library's message names the path that failed; the errno text
        // is added when it does not say it already.
        const errno = errnoOf(error);
        const text = errno === undefined ? undefined : ERRNO_TEXT[errno];
        const says =
          text === undefined ||
          error.message.includes(text) ||
          error.message.includes(errno!) ||
          (errno === 'ENOSPC' && /no space/i.test(error.message));
        return {
          message: `${where}${error.message}${says ? '' : `: ${text}`}`,
          exitCode: EXIT.usage,
        };
      }
      default:
        return { message: `${where}${error.message}`, exitCode: EXIT.usage };
    }
  }
  if (isArgumentError(error)) {
    return { message: `${where}${optionWords((error as Error).message)}`, exitCode: EXIT.usage };
  }
  const errno = errnoOf(error);
  if (errno !== undefined) {
    const text = ERRNO_TEXT[errno] ?? (error as Error).message;
    const failed = (error as { path?: unknown }).path;
    return {
      message: `${where}${text}${typeof failed === 'string' && failed !== path ? ` (${failed})` : ''}`,
      exitCode: EXIT.usage,
    };
  }
  const message = error instanceof Error ? error.message : String(error);
  return { message: `internal error: ${message}`, exitCode: EXIT.usage };
}
