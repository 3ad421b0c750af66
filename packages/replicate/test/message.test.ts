import assert from 'node:assert/strict';
import { crc32c, encodeFrame } from '@wal/core';
import { isWalError } from '@wal/errors';
import fc from 'fast-check';
import {
  crcHex,
  encodeRun,
  lastStart,
  messageId,
  partHeaders,
  reachOf,
  readPlacement,
  readPosition,
  recordCrc,
  runHeaders,
  runId,
} from '../src/message.js';

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

describe('stream message format: runs', () => {
  const runOf = (payloads: Uint8Array[], lsn: number) => {
    const data = encodeRun(payloads);
    const position = {
      lsn,
      count: payloads.length,
      crc: crc32c(data, 0, data.length),
      size: data.length,
    };
    return { data, headers: runHeaders(position) };
  };
  const refused = (code: Parameters<typeof isWalError>[1]) => (error: unknown) =>
    isWalError(error, code) && (error as Error).message.includes('9');

  it('a run is the log frames of its records: read back with their LSNs, byte for byte', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 300 }), { minLength: 1, maxLength: 20 }),
        fc.nat({ max: 2 ** 40 }),
        (payloads, lsn) => {
          const { data, headers } = runOf(payloads, lsn);
          assert.ok(Buffer.from(data).equals(Buffer.concat(payloads.map((p) => encodeFrame(p)))));
          const placement = readPlacement(source(headers), data, 9);
          assert.equal(placement.kind, 'run');
          if (placement.kind !== 'run') return;
          let at = lsn;
          for (const [i, record] of placement.records.entries()) {
            assert.equal(record.lsn, at);
            assert.equal(record.crc, recordCrc(payloads[i]!));
            assert.ok(
              Buffer.from(payloads[i]!).equals(data.subarray(record.at, record.at + record.length)),
            );
            at += 8 + payloads[i]!.length;
          }
          assert.equal(reachOf(placement).end, at);
          assert.equal(lastStart(placement), placement.records[payloads.length - 1]!.lsn);
          const other = { ...placement, crc: (placement.crc + 1) >>> 0 };
          assert.notEqual(runId(placement), runId(other));
          assert.notEqual(runId(placement), messageId({ ...placement, length: 0, part: 0 }));
        },
      ),
    );
  });

  it('refuses a hostile or damaged run with a typed error, allocating nothing from it', () => {
    const payloads = [new Uint8Array([1, 2, 3]), new Uint8Array(0), new Uint8Array(40).fill(7)];
    const { data, headers } = runOf(payloads, 9);
    const set = (name: string, value: string) =>
      headers.filter(([n]) => n !== name).concat([[name, value]]) as [string, string][];
    const resealed = (bytes: Uint8Array) => set('Wal-Crc', crcHex(crc32c(bytes, 0, bytes.length)));
    const longer = data.slice();
    new DataView(longer.buffer).setUint32(4, 0xffff_ffff, true); // first frame claims 4 GiB
    const flipped = data.slice();
    flipped[12]! ^= 1; // the second frame's... first payload's last byte: frame CRC fails
    const cut = data.subarray(0, data.length - 3);
    const cases: [string, [string, string][], Uint8Array, Parameters<typeof isWalError>[1]][] = [
      ['count past the frames', set('Wal-Count', '4'), data, 'WAL_REPLICA_MISMATCH'],
      ['count short of the frames', set('Wal-Count', '2'), data, 'WAL_REPLICA_MISMATCH'],
      ['zero count', set('Wal-Count', '0'), data, 'WAL_REPLICA_MISMATCH'],
      ['bad count', set('Wal-Count', '-1'), data, 'WAL_REPLICA_MISMATCH'],
      ['no data', resealed(new Uint8Array(0)), new Uint8Array(0), 'WAL_REPLICA_MISMATCH'],
      ['a length past the data', resealed(longer), longer, 'WAL_REPLICA_MISMATCH'],
      ['a frame cut short', resealed(cut), cut, 'WAL_REPLICA_MISMATCH'],
      [
        'a header cut short',
        resealed(data.subarray(0, 5)),
        data.subarray(0, 5),
        'WAL_REPLICA_MISMATCH',
      ],
      ['a part header on a run', set('Wal-Part', '0'), data, 'WAL_REPLICA_MISMATCH'],
      ['a bad CRC header', set('Wal-Crc', 'nothex!!'), data, 'WAL_REPLICA_MISMATCH'],
      ['the run fails its CRC', headers, flipped, 'WAL_CORRUPTION'],
      ['a frame fails its CRC', resealed(flipped), flipped, 'WAL_CORRUPTION'],
    ];
    for (const [what, h, bytes, code] of cases) {
      assert.throws(() => readPlacement(source(h), bytes, 9), refused(code), what);
    }
  });
});
