/** Assertions on errors shared by the core tests. */
import assert from 'node:assert/strict';

/**
 * A predicate for `assert.rejects`/`assert.throws`: the error carries `code`
 * (and, when given, `offset`).
 */
export function isCode(code: string, offset?: number): (error: unknown) => boolean {
  return (error: unknown) => {
    assert.equal((error as { code?: unknown }).code, code, String(error));
    if (offset !== undefined) assert.equal((error as { offset?: unknown }).offset, offset);
    return true;
  };
}
