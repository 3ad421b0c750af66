/**
 * The test helpers shared by the core tests: deterministic bytes (a
 * xorshift32 stream from a seed, so every payload can be rebuilt and checked
 * from its seed), ticks of the event loop, promise states, the
 * harshest power loss, and assertions on error codes.
 */
import assert from 'node:assert/strict';
import { errorCode } from '@wal/errors';
import type { CrashFs } from '@wal/store/testing';

/** Fills `out[from..]` with the xorshift32 stream of `seed` (0 is replaced by 1). */
export function fillStream(out: Uint8Array, seed: number, from = 0, or = 0): Uint8Array {
  let x = seed >>> 0 || 1;
  for (let i = from; i < out.length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = (x & 0xff) | or;
  }
  return out;
}

/** Deterministic bytes of `length`, different per `tag`. */
export function bytes(length: number, tag = length): Uint8Array {
  return fillStream(new Uint8Array(length), tag * 2654435761 + 1);
}

/** Deterministic bytes, never zero (so a zero-filled region always differs). */
export function pattern(length: number, tag: number): Uint8Array {
  const out = new Uint8Array(length);
  fillStream(out, Math.imul(tag + 1, 2654435761) ^ 0x9e3779b9, 0, 1);
  return out;
}

/** Whether `a` and `b` hold the same bytes. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A file system holding only what `fs` made durable (the harshest power loss). */
export function durableOnly(fs: CrashFs): CrashFs {
  const [state] = fs.crashStates({ mode: 'sample', limit: 1 });
  return state!.fs();
}

/** A promise's state, read without awaiting it (see {@link track}). */
export interface Tracked {
  state: 'pending' | 'resolved' | 'rejected';
  /** The rejection, once rejected. */
  error?: unknown;
  /** Whether the promise has resolved or rejected. */
  readonly settled: boolean;
}

/** Tracks the state of `promise` without awaiting it. */
export function track(promise: Promise<unknown>): Tracked {
  const tracked: Tracked = {
    state: 'pending',
    get settled() {
      return this.state !== 'pending';
    },
  };
  promise.then(
    () => {
      tracked.state = 'resolved';
    },
    (error: unknown) => {
      tracked.state = 'rejected';
      tracked.error = error;
    },
  );
  return tracked;
}

/** One turn of the event loop. */
export const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * A predicate for `assert.rejects`/`assert.throws`: the error carries `code`
 * (and, when given, `offset`).
 */
export function isCode(code: string, offset?: number): (error: unknown) => boolean {
  return (error: unknown) => {
    assert.equal(errorCode(error), code, String(error));
    if (offset !== undefined) assert.equal((error as { offset?: unknown }).offset, offset);
    return true;
  };
}

/** Asserts that `run` throws synchronously an error with `code`; returns it. */
export function throwsCode(run: () => unknown, code: string): Error {
  let caught: unknown;
  try {
    run();
  } catch (error) {
    caught = error;
  }
  assert.ok(caught !== undefined, `expected a synchronous throw with ${code}`);
  assert.equal(errorCode(caught), code, String(caught));
  return caught as Error;
}

/** Asserts that `promise` rejects with an error carrying `code`; returns the error. */
export async function rejectsCode(promise: Promise<unknown>, code: string): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    assert.equal(errorCode(error), code, String(error));
    return error as Error;
  }
  assert.fail(`expected a rejection with ${code}, but it resolved`);
}
