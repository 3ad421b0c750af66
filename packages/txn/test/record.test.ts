/** The commit record format (docs/TXN-FORMAT.md): the test vector, round trips, damage. */
import assert from 'node:assert/strict';
import { encodeFrame } from '@wal/core';
import fc from 'fast-check';
import { commitSize, decodeCommit, encodeCommit, type Write } from '../src/record.js';
import { isCode } from './helpers.js';

const hex = (bytes: Uint8Array) =>
  Buffer.from(bytes)
    .toString('hex')
    .replace(/(..)(?!$)/g, '$1 ');
const utf8 = (s: string) => new TextEncoder().encode(s);

describe('commit record', () => {
  it('matches the test vector of docs/TXN-FORMAT.md', () => {
    const writes: Write[] = [
      { key: utf8('a'), value: utf8('1') },
      { key: utf8('b'), value: undefined },
    ];
    const payload = encodeCommit(1, writes, commitSize(writes));
    assert.equal(
      hex(payload),
      '01 01 00 00 00 00 00 00 00 02 00 00 00 01 01 00 00 00 61 01 00 00 00 31 02 01 00 00 00 62',
    );
    assert.equal(
      hex(encodeFrame(payload)),
      '19 e5 bb da 1e 00 00 00 01 01 00 00 00 00 00 00 00 02 00 00 00 01 01 00 00 00 61 01 00 00 00 31 02 01 00 00 00 62',
    );
    assert.deepEqual(decodeCommit(payload, 0), { seq: 1, writes });
  });

  const write = fc.record({
    key: fc.uint8Array({ maxLength: 40 }),
    value: fc.option(fc.uint8Array({ maxLength: 100 }), { nil: undefined }),
  });

  it('encodes a key given in binary-string form (as the store holds keys) as the same bytes', () => {
    fc.assert(
      fc.property(fc.array(write, { maxLength: 20 }), (writes) => {
        const keyed = writes.map(({ key, value }) => ({
          key: Buffer.from(key).toString('latin1'),
          value,
        }));
        assert.deepEqual(
          encodeCommit(7, keyed, commitSize(keyed)),
          encodeCommit(7, writes, commitSize(writes)),
        );
      }),
    );
  });

  it('round-trips any commit', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
        fc.array(write, { maxLength: 20 }),
        (seq, generated) => {
          const writes = generated.map(({ key, value }) => ({ key, value }));
          const payload = encodeCommit(seq, writes, commitSize(writes));
          assert.equal(payload.length, commitSize(writes));
          assert.deepEqual(decodeCommit(payload, 8), { seq, writes });
        },
      ),
    );
  });

  it('refuses damage with WAL_CORRUPTION at the record’s LSN, never another error', () => {
    const writes: Write[] = [
      { key: utf8('key'), value: utf8('value') },
      { key: utf8('gone'), value: undefined },
    ];
    const good = encodeCommit(7, writes, commitSize(writes));
    const refused = (payload: Uint8Array) => {
      assert.throws(
        () => decodeCommit(payload, 4096),
        (e) => {
          isCode('WAL_CORRUPTION')(e);
          assert.equal((e as { offset?: number }).offset, 4096);
          return true;
        },
      );
    };
    // Every truncation, and every extension, of a good record.
    for (let n = 0; n < good.length; n++) refused(good.subarray(0, n));
    refused(Uint8Array.from([...good, 0]));
    const patched = (at: number, ...bytes: number[]) => {
      const copy = Uint8Array.from(good);
      copy.set(bytes, at);
      return copy;
    };
    refused(patched(0, 2)); // unknown kind
    refused(patched(1, 0, 0, 0, 0, 0, 0, 0, 0)); // sequence 0
    refused(patched(1, 0, 0, 0, 0, 0, 0, 0x20, 0)); // sequence above 2^53 - 1
    refused(patched(9, 0xff, 0xff, 0xff, 0xff)); // a count that cannot fit
    refused(patched(13, 3)); // unknown op
    refused(patched(14, 0xff, 0xff, 0xff, 0x7f)); // a key length past the end
    refused(patched(21, 0xff, 0xff, 0xff, 0x7f)); // a value length past the end
    // Random bytes decode or are refused, nothing else.
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (payload) => {
        try {
          decodeCommit(payload, 4096);
        } catch (error) {
          isCode('WAL_CORRUPTION')(error);
        }
      }),
    );
  });
});
