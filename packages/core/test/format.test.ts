// Test vectors and properties of docs/FORMAT.md: the CRC-32C parameters and
// the record frame. The vectors are byte-compatible with wal-db 1.x.
import assert from 'node:assert/strict';
import { crc32c as nativeCrc32c } from '@node-rs/crc32';
import fc from 'fast-check';
import { crc32c, crc32cTable, NATIVE_THRESHOLD } from '../src/crc32c.js';
import {
  classifyDamage,
  continueFrameCrc,
  encodeFrame,
  frameCrc,
  frameIsValid,
  frameLength,
  HEADER_SIZE,
  lengthFits,
  readHeader,
  writeFrame,
} from '../src/frame.js';

const hex = (bytes: Uint8Array) =>
  Buffer.from(bytes)
    .toString('hex')
    .replace(/(..)(?!$)/g, '$1 ');

describe('CRC-32C (FORMAT.md §1)', () => {
  it('has the catalogued check value 0xE3069283 for "123456789"', () => {
    const input = new TextEncoder().encode('123456789');
    assert.equal(crc32c(input), 0xe3069283);
    assert.equal(crc32cTable(input), 0xe3069283);
  });

  it('table and native implementations agree on every length and split (property)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 4 * NATIVE_THRESHOLD }),
        fc.nat(),
        fc.nat(),
        (bytes, a, b) => {
          const start = bytes.length === 0 ? 0 : a % (bytes.length + 1);
          const end = start + (b % (bytes.length - start + 1));
          const expected = crc32cTable(bytes, start, end);
          // The slice-by-16 table loop against the native SIMD one, at every length.
          assert.equal(nativeCrc32c(Buffer.from(bytes.subarray(start, end)), 0) >>> 0, expected);
          assert.equal(crc32c(bytes, start, end), expected);
          assert.equal(crc32c(Buffer.from(bytes).subarray(start, end)), expected);
          // Continuing from the CRC of a prefix gives the CRC of the whole.
          const mid = start + ((end - start) >> 1);
          assert.equal(crc32c(bytes, mid, end, crc32c(bytes, start, mid)), expected);
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('record frame (FORMAT.md §2)', () => {
  it('frames the empty payload as c7 4b 67 48 00 00 00 00', () => {
    assert.equal(hex(encodeFrame(new Uint8Array(0))), 'c7 4b 67 48 00 00 00 00');
  });

  it('frames "abc" as f8 83 14 55 03 00 00 00 61 62 63', () => {
    assert.equal(
      hex(encodeFrame(new TextEncoder().encode('abc'))),
      'f8 83 14 55 03 00 00 00 61 62 63',
    );
  });

  it('round-trips any payload, and frameCrc matches the stored CRC (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), fc.nat({ max: 16 }), (payload, at) => {
        const buffer = new Uint8Array(at + HEADER_SIZE + payload.length + 3);
        assert.equal(writeFrame(buffer, at, payload), at + HEADER_SIZE + payload.length);
        const header = readHeader(buffer, at);
        assert.equal(header.length, payload.length);
        assert.equal(header.crc, frameCrc(payload));
        assert.ok(frameIsValid(buffer, at, header.length));
        assert.deepEqual(
          buffer.subarray(at + HEADER_SIZE, at + HEADER_SIZE + payload.length),
          payload,
        );
      }),
      { numRuns: 300 },
    );
  });

  it('frames written one after another into a reused chunk equal encodeFrame of each (property)', () => {
    // The writer frames records into staging chunks that are reused after
    // their write (docs/INTERNALS.md §3): stale bytes in a chunk, CRC fields
    // included, must not matter, and nothing outside the frames is touched.
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 600 }), { maxLength: 20 }),
        fc.nat({ max: 16 }),
        fc.uint8Array({ minLength: 1, maxLength: 1 }),
        (payloads, at, [stale]) => {
          const expected = Buffer.concat(payloads.map((payload) => encodeFrame(payload)));
          const chunk = new Uint8Array(at + expected.length + 5).fill(stale!);
          let end = at;
          for (const payload of payloads) end = writeFrame(chunk, end, payload);
          assert.equal(end, at + expected.length);
          assert.deepEqual(Buffer.from(chunk.subarray(at, end)), expected);
          assert.ok(chunk.subarray(0, at).every((byte) => byte === stale));
          assert.ok(chunk.subarray(end).every((byte) => byte === stale));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('detects every single-bit flip in a frame (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 600 }), fc.nat(), (payload, bit) => {
        const frame = encodeFrame(payload);
        const position = bit % (frame.length * 8);
        frame[position >> 3]! ^= 1 << (position & 7);
        const header = readHeader(frame, 0);
        // A flip in the length field may claim more bytes than exist: that is
        // a short frame, never a valid one.
        const complete = header.length <= frame.length - HEADER_SIZE;
        assert.ok(
          !complete || !frameIsValid(frame, 0, header.length),
          `flip of bit ${position} went unnoticed`,
        );
      }),
      { numRuns: 1000 },
    );
  });

  it('reads header fields as unsigned little-endian', () => {
    const bytes = Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
    assert.deepEqual(readHeader(bytes, 0), { crc: 0xffff_ffff, length: 0xffff_ffff });
  });
});

describe('frame checks (FORMAT.md §2, §8 step 4)', () => {
  it('the CRC continued across any split of the covered bytes is the whole one (property)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 3000 }),
        fc.array(fc.nat(), { maxLength: 4 }),
        (payload, cuts) => {
          const frame = encodeFrame(payload);
          const end = frame.length;
          const points = [...new Set(cuts.map((c) => 4 + (c % (end - 3))))].sort((a, b) => a - b);
          let crc = 0;
          let from = 4;
          for (const to of [...points, end]) {
            crc = continueFrameCrc(crc, frame, from, to);
            from = to;
          }
          assert.equal(crc, readHeader(frame, 0).crc);
          assert.equal(frameLength(frame, 0), payload.length);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('bounds a claimed length by the record limit and the end', () => {
    assert.ok(lengthFits(100, 10, 10, 118));
    assert.ok(!lengthFits(100, 11, 10, 200)); // over the limit
    assert.ok(!lengthFits(100, 10, 10, 117)); // past the end
  });

  it('classifies damage: short header, short payload, checksum', () => {
    assert.deepEqual(classifyDamage(10, 17, undefined), {
      offset: 10,
      kind: 'short-header',
      claimedLength: undefined,
    });
    assert.deepEqual(classifyDamage(10, 17, 5), {
      offset: 10,
      kind: 'short-header',
      claimedLength: undefined,
    });
    assert.deepEqual(classifyDamage(10, 30, 13), {
      offset: 10,
      kind: 'short-payload',
      claimedLength: 13,
    });
    assert.deepEqual(classifyDamage(10, 30, 12), {
      offset: 10,
      kind: 'checksum',
      claimedLength: 12,
    });
  });
});

describe('@wal/core format exports', () => {
  it('exposes the frame primitives from the package entry', async () => {
    const core = await import('@wal/core');
    assert.equal(core.HEADER_SIZE, 8);
    assert.equal(core.MAX_FRAME_LENGTH, 2 ** 32 - 1);
    assert.equal(
      hex(core.encodeFrame(Uint8Array.of(0x61, 0x62, 0x63))),
      'f8 83 14 55 03 00 00 00 61 62 63',
    );
    // A whole Buffer at or above the native threshold takes the native path as is.
    const big = Buffer.alloc(NATIVE_THRESHOLD * 2, 7);
    assert.equal(core.crc32c(big), crc32cTable(big));
  });
});
