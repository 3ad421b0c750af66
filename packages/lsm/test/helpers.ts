/** Helpers shared by the @wal/lsm tests. */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { errorCode } from '@wal/errors';

/** UTF-8 bytes of `text`. */
export const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

/** Text of UTF-8 `data` (or `undefined`). */
export const text = (data: Uint8Array | undefined): string | undefined =>
  data === undefined ? undefined : new TextDecoder().decode(data);

/** Parses space-separated hex. */
export const fromHex = (hex: string): Uint8Array =>
  Uint8Array.from(Buffer.from(hex.replace(/\s+/g, ''), 'hex'));

/** Space-separated hex of `data`. */
export const toHex = (data: Uint8Array): string =>
  Buffer.from(data)
    .toString('hex')
    .replace(/(..)(?!$)/g, '$1 ');

/** One turn of the event loop. */
export const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * A predicate for `assert.rejects`/`assert.throws`: the error carries `code`
 * (and, when given, a message matching `message`).
 */
export function isCode(code: string, message?: RegExp): (error: unknown) => boolean {
  return (error: unknown) => {
    assert.equal(errorCode(error), code, String(error));
    if (message !== undefined) assert.match(String((error as Error).message), message);
    return true;
  };
}

/**
 * A fresh directory under the system's temporary one for each test of the
 * calling `describe` (named `prefix…`, removed after the test): its path is
 * `.path` inside the tests.
 */
export function tempRoot(prefix: string): { path: string } {
  const root = { path: '' };
  beforeEach(async () => {
    root.path = await mkdtemp(join(tmpdir(), prefix));
  });
  afterEach(async () => {
    await rm(root.path, { recursive: true, force: true });
  });
  return root;
}
