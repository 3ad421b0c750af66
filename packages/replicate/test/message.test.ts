import assert from 'node:assert/strict';
import { encodeFrame } from '@wal/core';
import { isWalError } from '@wal/errors';
import fc from 'fast-check';
import { messageId, partHeaders, readPosition, recordCrc } from '../src/message.js';

function source(pairs: [string, string][]) {
  const map = new Map(pairs);
  return { get: (name: string) => map.get(name) ?? '' };
}

describe('stream message format', () => {
  it("recordCrc is the frame's CRC (FORMAT.md §2)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (payload) => {
        const frame = encodeFrame(payload);
        const stored = new DataView(frame.buffer, frame.byteOffset).getUint32(0, true);
        assert.equal(recordCrc(payload), stored);
      }),
    );
  });

  it('headers round-trip; ids differ for a different record at the same LSN', () => {
    fc.assert(
      fc.property(
        fc.nat({ max: 2 ** 40 }),
        fc.nat({ max: 10_000 }),
        fc.nat({ max: 10_000 }),
        fc.nat({ max: 0xffff_ffff }),
        (lsn, length, at, crc) => {
          const part = Math.min(at, length);
          const size = Math.min(length - part, 300);
          const position = { lsn, length, crc, part, size };
          if (size === 0 && length !== 0) return;
          assert.deepEqual(readPosition(source(partHeaders(position)), size, 1), position);
          assert.notEqual(messageId(position), messageId({ ...position, crc: (crc + 1) >>> 0 }));
        },
      ),
    );
  });

  it('refuses a message that is not a part of a record', () => {
    const good = partHeaders({ lsn: 8, length: 10, crc: 0xabc, part: 0, size: 10 });
    const bad: [string, [string, string][] | undefined, number][] = [
      ['no headers', undefined, 10],
      ['missing LSN', good.filter(([n]) => n !== 'Wal-Lsn'), 10],
      ['signed LSN', good.map(([n, v]) => [n, n === 'Wal-Lsn' ? '-8' : v]), 10],
      ['leading zero', good.map(([n, v]) => [n, n === 'Wal-Length' ? '010' : v]), 10],
      ['bad CRC', good.map(([n, v]) => [n, n === 'Wal-Crc' ? 'xyz' : v]), 10],
      ['part past the record', good, 11],
      ['empty part of a non-empty record', good, 0],
    ];
    for (const [what, headers, size] of bad) {
      assert.throws(
        () => readPosition(headers === undefined ? undefined : source(headers), size, 5),
        (error) => isWalError(error, 'WAL_REPLICA_MISMATCH') && error.message.includes('5'),
        what,
      );
    }
  });
});
