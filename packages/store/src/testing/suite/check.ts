/**
 * The checks every file of the conformance suite uses: a failed check throws
 * a ConformanceError whose message says what the contract requires.
 */

/** Thrown when a check of the suite fails; the message says what the contract requires. */
export class ConformanceError extends Error {
  override readonly name = 'ConformanceError';
}

/** Throws a ConformanceError with `message` unless `condition` holds. */
export function check(condition: unknown, message: string): asserts condition {
  if (!condition) throw new ConformanceError(message);
}

/** Throws a ConformanceError naming the first byte where `actual` and `expected` differ. */
export function equalBytes(actual: Uint8Array, expected: Uint8Array, what: string): void {
  check(
    actual.length === expected.length,
    `${what}: expected ${expected.length} bytes, got ${actual.length}`,
  );
  for (let i = 0; i < expected.length; i++) {
    if (actual[i] !== expected[i]) {
      throw new ConformanceError(`${what}: byte ${i} is ${actual[i]}, expected ${expected[i]}`);
    }
  }
}

/**
 * Calls `operation` and returns its promise; a synchronous throw is turned into
 * a ConformanceError, since promise-returning calls must reject instead.
 */
export function start(operation: () => Promise<unknown>, what: string): Promise<unknown> {
  try {
    return operation();
  } catch (error) {
    return Promise.reject(
      new ConformanceError(
        `${what}: threw synchronously (${String(error)}); a promise-returning call must reject`,
      ),
    );
  }
}

/** The `code` (and, when given, the `name`) a rejection must carry. */
export interface Expected {
  readonly code: string;
  readonly name?: string;
}

/** Checks that `promise` rejects with an error carrying `expected.code` (and `name`). */
export async function expectRejection(
  promise: Promise<unknown>,
  expected: Expected,
  what: string,
): Promise<void> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof ConformanceError) throw error;
    const { code, name } = error as { code?: unknown; name?: unknown };
    check(
      code === expected.code,
      `${what}: expected code ${expected.code}, got ${String(code)} (${String(error)})`,
    );
    if (expected.name !== undefined) {
      check(
        error instanceof Error && name === expected.name,
        `${what}: expected a ${expected.name}, got ${String(name)}`,
      );
    }
    return;
  }
  throw new ConformanceError(`${what}: resolved, expected a rejection with ${expected.code}`);
}

/** Starts `operation` and checks that it rejects (never throws) with `expected`. */
export function rejectsWith(
  operation: () => Promise<unknown>,
  expected: Expected,
  what: string,
): Promise<void> {
  return expectRejection(start(operation, what), expected, what);
}

/** Deterministic pseudo-random bytes (xorshift32), different per `seed`. */
export function pattern(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}
