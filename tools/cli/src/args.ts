/** Parsers of option values; they throw commander's `InvalidArgumentError` (a usage error). */
import { InvalidArgumentError } from 'commander';

const UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** Parses a byte size: `4096`, `4k`, `64M`, `1g` (binary units). */
export function parseSize(value: string): number {
  const match = /^(\d+)\s*([kmg]?)(i?b)?$/i.exec(value.trim());
  const unit = match === null ? undefined : UNITS[match[2]!.toLowerCase()];
  const size = match === null || unit === undefined ? Number.NaN : Number(match[1]) * unit;
  if (!Number.isSafeInteger(size) || size <= 0) {
    throw new InvalidArgumentError('expected a size in bytes, such as 4096, 64k or 64M.');
  }
  return size;
}

/** Parses a non-negative integer (an LSN, a count). */
export function parseCount(value: string): number {
  const number = /^\d+$/.test(value.trim()) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(number)) {
    throw new InvalidArgumentError('expected a non-negative integer.');
  }
  return number;
}

/** Longest timer delay Node.js takes (2^31 − 1 ms); a longer one fires after 1 ms. */
export const MAX_INTERVAL = 2 ** 31 - 1;

/** Parses a polling interval in milliseconds, from 1 to {@link MAX_INTERVAL}. */
export function parseInterval(value: string): number {
  const number = /^\d+$/.test(value.trim()) ? Number(value) : Number.NaN;
  if (!(number >= 1 && number <= MAX_INTERVAL)) {
    throw new InvalidArgumentError(`expected milliseconds from 1 to ${MAX_INTERVAL}.`);
  }
  return number;
}

/**
 * Parses a file mode in octal, as `chmod` takes it: `600`, `0640`, `0o644`.
 * Only the syntax is checked here; the range (owner read and write set) is
 * checked where the mode is used, with a `RangeError`.
 */
export function parseMode(value: string): number {
  const match = /^(?:0o?)?([0-7]{1,4})$/i.exec(value.trim());
  if (match === null)
    throw new InvalidArgumentError('expected an octal mode, such as 600 or 0644.');
  return Number.parseInt(match[1]!, 8);
}
