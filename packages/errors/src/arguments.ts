/**
 * Invalid-argument errors, shaped like Node's own: a `TypeError` or
 * `RangeError` with a `code` property. They mark programmer mistakes and are
 * kept apart from storage failures ({@link WalError}).
 */
import { errorCode } from './error-code.js';

/** Codes carried by argument errors (the same codes Node's core uses). */
export type ArgumentErrorCode =
  | 'ERR_INVALID_ARG_TYPE'
  | 'ERR_INVALID_ARG_VALUE'
  | 'ERR_OUT_OF_RANGE';

/** Largest offset or length `@wal` accepts: 2^53 − 1, the largest exact integer in a JS number. */
export const MAX_OFFSET = Number.MAX_SAFE_INTEGER;

/** An invalid-argument error: a `TypeError` or `RangeError` (by its code) carrying a `code`. */
export type ArgumentError = (TypeError | RangeError) & { readonly code: ArgumentErrorCode };

/** Builds a `TypeError` or `RangeError` carrying `code`. */
export function argumentError(code: ArgumentErrorCode, message: string): ArgumentError {
  const error = code === 'ERR_OUT_OF_RANGE' ? new RangeError(message) : new TypeError(message);
  Object.defineProperty(error, 'code', { value: code, enumerable: true });
  return error as ArgumentError;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'number') return `${value}`;
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'string') return `'${value.length > 40 ? `${value.slice(0, 40)}…` : value}'`;
  if (typeof value === 'object') return `an instance of ${constructorName(value) ?? 'Object'}`;
  return `type ${typeof value}`;
}

/** The name of `value`'s constructor, `undefined` when it has none or reading it throws. */
function constructorName(value: object): string | undefined {
  try {
    const name: unknown = value.constructor?.name;
    return typeof name === 'string' ? name : undefined;
  } catch {
    return undefined; // a throwing getter, a revoked Proxy
  }
}

/** `TypeError` with code `ERR_INVALID_ARG_TYPE`. */
export function invalidArgType(name: string, expected: string, actual: unknown): ArgumentError {
  return argumentError(
    'ERR_INVALID_ARG_TYPE',
    `The "${name}" argument must be ${expected}. Received ${describe(actual)}`,
  );
}

/** `TypeError` with code `ERR_INVALID_ARG_VALUE`. */
export function invalidArgValue(name: string, actual: unknown, reason: string): ArgumentError {
  return argumentError(
    'ERR_INVALID_ARG_VALUE',
    `The "${name}" argument ${reason}. Received ${describe(actual)}`,
  );
}

/** `RangeError` with code `ERR_OUT_OF_RANGE`. */
export function outOfRange(name: string, range: string, actual: unknown): ArgumentError {
  return argumentError(
    'ERR_OUT_OF_RANGE',
    `The value of "${name}" is out of range. It must be ${range}. Received ${describe(actual)}`,
  );
}

/**
 * True when `error` is an argument error with one of the codes above: a
 * `TypeError` or `RangeError`, of this realm or another, carrying the code.
 * Never throws.
 */
export function isArgumentError(error: unknown, code?: ArgumentErrorCode): boolean {
  if (!isTypeOrRangeError(error)) return false;
  const actual = errorCode(error);
  return code === undefined
    ? actual === 'ERR_INVALID_ARG_TYPE' ||
        actual === 'ERR_INVALID_ARG_VALUE' ||
        actual === 'ERR_OUT_OF_RANGE'
    : actual === code;
}

/**
 * A `TypeError` or `RangeError`, also of another realm (a `vm` context),
 * where `instanceof` fails: an error object (tagged `[object Error]`) whose
 * `name` is `'TypeError'` or `'RangeError'`. False where reading it throws
 * (a revoked `Proxy`).
 */
function isTypeOrRangeError(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  try {
    if (error instanceof TypeError || error instanceof RangeError) return true;
    if (Object.prototype.toString.call(error) !== '[object Error]') return false;
    const name: unknown = (error as { name?: unknown }).name;
    return name === 'TypeError' || name === 'RangeError';
  } catch {
    return false;
  }
}

/**
 * Throws `TypeError` (`ERR_INVALID_ARG_VALUE`, naming `<name>.<key>` and the
 * known keys) for the first own enumerable key of `options` not in `known`:
 * a misspelt option must not be silently ignored by a storage library.
 * Allocates nothing unless it throws.
 */
export function rejectUnknownKeys(name: string, options: object, known: ReadonlySet<string>): void {
  for (const key in options) {
    if (!known.has(key) && Object.hasOwn(options, key)) {
      throw invalidArgValue(
        `${name}.${key}`,
        (options as Record<string, unknown>)[key],
        `is not an option (known: ${[...known].join(', ')})`,
      );
    }
  }
}

/**
 * Checks that `value` is an integer in `[min, max]`. Throws `TypeError`
 * (`ERR_INVALID_ARG_TYPE`) for a non-number and `RangeError`
 * (`ERR_OUT_OF_RANGE`) for NaN, a fraction or a value outside the range.
 */
export function validateInteger(
  name: string,
  value: unknown,
  min = 0,
  max = MAX_OFFSET,
): asserts value is number {
  if (typeof value !== 'number') throw invalidArgType(name, 'of type number', value);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw outOfRange(name, `an integer >= ${min} and <= ${max}`, value);
  }
}

/** Checks that `value` is a byte offset or length: an integer in `[0, 2^53 − 1]`. */
export function validateOffset(name: string, value: unknown): asserts value is number {
  validateInteger(name, value, 0, MAX_OFFSET);
}

/** Checks that `value` is a `Uint8Array` (a `Buffer` is one). */
export function validateBytes(name: string, value: unknown): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array))
    throw invalidArgType(name, 'an instance of Uint8Array', value);
}
