import assert from 'node:assert/strict';
import { MemoryStore } from '@wal/store';
import { suite } from '@wal/store/testing';

describe('MemoryStore', () => {
  describe('conformance', () => {
    suite({ test: it, factory: async () => new MemoryStore(), runs: 60, nowOnceCreated: true });
  });

  it('declares itself neither durable nor persistent', () => {
    const store = new MemoryStore();
    assert.deepEqual(store.supports, {
      durable: false,
      persistent: false,
      prefixReclaim: true,
      locking: false,
    });
    assert.ok(Object.isFrozen(store.supports));
  });

  it('handles offsets far beyond its memory (sparse pages)', async () => {
    const store = new MemoryStore();
    const far = 2 ** 40;
    await store.write(far, Uint8Array.of(1, 2, 3));
    assert.equal(store.length, far + 3);
    assert.deepEqual(await store.read(far - 2, 5), Uint8Array.of(0, 0, 1, 2, 3));
    await store.truncateBefore(far + 1);
    assert.deepEqual(await store.read(far + 1, 10), Uint8Array.of(2, 3));
    await store.close();
  });

  it('zeroes the cut part of a page so a later extension reads zeros', async () => {
    const store = new MemoryStore();
    await store.write(0, new Uint8Array(100).fill(7));
    await store.truncate(40);
    await store.write(99, Uint8Array.of(1));
    const bytes = await store.read(0, 100);
    assert.equal(bytes[39], 7);
    assert.ok(bytes.subarray(40, 99).every((b) => b === 0));
    await store.close();
  });
});
