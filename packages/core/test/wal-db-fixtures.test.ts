// Compatibility with logs written by wal-db 1.x (FORMAT.md §1–§4, DESIGN §5).
// Every fixture here is built by hand from the wal-db 1.x specification with
// plain node:fs: the frame layout, the segment file names and the head file
// are computed in this file, not by our writer, so a layout mistake shared by
// our writer and our reader cannot hide. Only the CRC-32C function is ours
// (its parameters are checked against the catalogued check value in
// format.test.ts).
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileStore, SegmentedStore } from '@wal/store';
import { crc32c, WAL_DB_MAX_RECORD_SIZE, Wal, type WalRecord } from '../src/index.js';
import { isCode } from './helpers.js';

// ---- wal-db 1.x layout, written out by hand ---------------------------------

function u32le(value: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt32LE(value >>> 0, 0);
  return out;
}

function u64le(value: number): Buffer {
  const out = Buffer.alloc(8);
  out.writeBigUInt64LE(BigInt(value), 0);
  return out;
}

/** A wal-db frame: crc32c u32 LE over (len u32 LE ‖ payload), then len u32 LE, then the payload. */
function walDbFrame(payload: Uint8Array): Buffer {
  const length = u32le(payload.length);
  const covered = Buffer.concat([length, payload]);
  return Buffer.concat([u32le(crc32c(covered)), covered]);
}

/** The 12-byte wal-db head file: u64 LE head, then crc32c of those 8 bytes (u32 LE). */
function walDbHeadFile(head: number): Buffer {
  const value = u64le(head);
  return Buffer.concat([value, u32le(crc32c(value))]);
}

/** wal-db's segment file name: the 20-digit zero-padded index, then `.wal`. */
function walDbSegmentName(index: number): string {
  return `${index.toString().padStart(20, '0')}.wal`;
}

/** A flat wal-db log: the frames of `payloads` back to back from offset 0, with their LSNs. */
function walDbLog(payloads: readonly Uint8Array[]): { bytes: Buffer; lsns: number[] } {
  const frames: Buffer[] = [];
  const lsns: number[] = [];
  let at = 0;
  for (const payload of payloads) {
    lsns.push(at);
    const frame = walDbFrame(payload);
    frames.push(frame);
    at += frame.length;
  }
  return { bytes: Buffer.concat(frames), lsns };
}

/** Distinct, recognisable payloads of the given sizes. */
function payloads(sizes: readonly number[]): Buffer[] {
  return sizes.map((size, i) => {
    const out = Buffer.alloc(size);
    for (let j = 0; j < size; j++) out[j] = (i * 31 + j * 7 + 1) & 0xff;
    return out;
  });
}

const hex = (bytes: Uint8Array) =>
  Buffer.from(bytes)
    .toString('hex')
    .replace(/(..)(?!$)/g, '$1 ');

async function collect(wal: Wal, from?: number): Promise<WalRecord[]> {
  const out: WalRecord[] = [];
  for await (const record of wal.iterate(from)) out.push(record);
  return out;
}

/** Every file of `dir` (recursively flat: the log directories here have no subdirectories) and its bytes. */
function listing(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const name of readdirSync(dir).sort()) {
    out.set(name, readFileSync(join(dir, name)).toString('hex'));
  }
  return out;
}

/** Writes segments `from..` of the flat `bytes` into `dir`, wal-db style, `segmentSize` bytes each. */
function writeSegments(dir: string, bytes: Buffer, from: number, segmentSize: number): void {
  mkdirSync(dir, { recursive: true });
  for (let k = from; k * segmentSize < bytes.length; k++) {
    writeFileSync(
      join(dir, walDbSegmentName(k)),
      bytes.subarray(k * segmentSize, Math.min((k + 1) * segmentSize, bytes.length)),
    );
  }
}

/** Opens `dir` read-only and checks it starts at `head` and lists `lsns`. */
async function viewFromHead(
  dir: string,
  segmentSize: number,
  head: number,
  lsns: readonly number[],
): Promise<void> {
  const viewer = await Wal.open(dir, { readOnly: true, segmentSize });
  try {
    assert.equal(viewer.head, head);
    assert.deepEqual(
      (await collect(viewer)).map((record) => record.lsn),
      lsns,
    );
  } finally {
    await viewer.close();
  }
}

// ---- Tests ------------------------------------------------------------------

describe('wal-db 1.x fixtures (FORMAT.md §1–§4)', () => {
  let root: string;

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'wal-db-fixture-'));
  });

  afterEach(() => {
    rmSync(root, { recursive: true, force: true });
  });

  describe('the hand-built layout matches the DESIGN test vectors', () => {
    it('frames an empty payload as c7 4b 67 48 00 00 00 00', () => {
      assert.equal(hex(walDbFrame(new Uint8Array(0))), 'c7 4b 67 48 00 00 00 00');
    });

    it('frames "abc" as f8 83 14 55 03 00 00 00 61 62 63', () => {
      assert.equal(
        hex(walDbFrame(new TextEncoder().encode('abc'))),
        'f8 83 14 55 03 00 00 00 61 62 63',
      );
    });

    it('writes head 3 as 03 00 00 00 00 00 00 00 e3 35 6c 57', () => {
      assert.equal(hex(walDbHeadFile(3)), '03 00 00 00 00 00 00 00 e3 35 6c 57');
    });

    it('names segments with 20 zero-padded digits', () => {
      assert.equal(walDbSegmentName(0), '00000000000000000000.wal');
      assert.equal(walDbSegmentName(12), '00000000000000000012.wal');
    });
  });

  describe('a single-file log', () => {
    const sizes = [0, 3, 1, 200, 17, 4000, 5, 0, 64];

    it('reads back every record with its LSN, appends after it, and a reopen sees all', async () => {
      const records = payloads(sizes);
      const { bytes, lsns } = walDbLog(records);
      const path = join(root, 'log');
      writeFileSync(path, bytes);

      const wal = await Wal.open(path, { layout: 'file' });
      try {
        assert.equal(wal.head, 0);
        assert.equal(wal.tail, bytes.length);
        assert.equal(wal.recovery.records, records.length);
        assert.equal(wal.recovery.tornBytes, 0);
        assert.equal(wal.recovery.tear, undefined);
        const seen = await collect(wal);
        assert.deepEqual(
          seen.map((record) => record.lsn),
          lsns,
        );
        for (let i = 0; i < records.length; i++) {
          assert.deepEqual(Buffer.from(seen[i]!.payload), records[i]);
          assert.deepEqual(Buffer.from(await wal.read(lsns[i]!)), records[i]);
        }
        // Iterating from a middle LSN starts there.
        const fromThird = await collect(wal, lsns[3]);
        assert.deepEqual(
          fromThird.map((record) => record.lsn),
          lsns.slice(3),
        );

        const extra = payloads([9, 0, 300]).map((p) => Buffer.from(p.map((b) => b ^ 0x5a)));
        const extraLsns: number[] = [];
        for (const payload of extra) extraLsns.push(await wal.append(payload, { wait: 'durable' }));
        assert.equal(extraLsns[0], bytes.length);
        assert.equal(extraLsns[1], bytes.length + 8 + 9);
        assert.equal(extraLsns[2], bytes.length + 8 + 9 + 8);
        await wal.close();

        // What we appended is laid out as wal-db frames right after its bytes,
        // and wal-db's own bytes are untouched.
        const after = readFileSync(path);
        assert.deepEqual(after.subarray(0, bytes.length), bytes);
        assert.deepEqual(after.subarray(bytes.length), walDbLog(extra).bytes);

        const reopened = await Wal.open(path, { layout: 'file' });
        try {
          const all = await collect(reopened);
          assert.deepEqual(
            all.map((record) => record.lsn),
            [...lsns, ...extraLsns],
          );
          assert.deepEqual(
            all.map((record) => Buffer.from(record.payload)),
            [...records, ...extra],
          );
          assert.equal(reopened.recovery.tornBytes, 0);
        } finally {
          await reopened.close();
        }
      } finally {
        await wal.close();
      }
    });

    it('opens an empty wal-db file as an empty log', async () => {
      const path = join(root, 'log');
      writeFileSync(path, Buffer.alloc(0));
      const wal = await Wal.open(path, { layout: 'file' });
      try {
        assert.equal(wal.tail, 0);
        assert.deepEqual(await collect(wal), []);
        assert.equal(await wal.append(new TextEncoder().encode('abc'), { wait: 'durable' }), 0);
      } finally {
        await wal.close();
      }
      assert.equal(hex(readFileSync(path)), 'f8 83 14 55 03 00 00 00 61 62 63');
    });
  });

  describe('a segmented log with a head file and no metadata', () => {
    const SEGMENT = 4096;
    // Sizes chosen so that several frames straddle segment boundaries and one
    // frame (2 × 4096 bytes of payload) covers a whole segment.
    const sizes = [
      100,
      900,
      1500,
      2000,
      0,
      700,
      3000,
      50,
      2 * SEGMENT,
      400,
      1000,
      1,
      2500,
      333,
      4000,
      12,
    ];
    let dir: string;
    let records: Buffer[];
    let lsns: number[];
    let total: number;
    let head: number;
    /** Index of the first record at or after the head. */
    let first: number;

    beforeEach(() => {
      records = payloads(sizes);
      const log = walDbLog(records);
      lsns = log.lsns;
      total = log.bytes.length;
      // As after wal-db's truncate_before(head) with head a record boundary in
      // segment 2: segments 0 and 1 deleted, the head file names the head.
      first = lsns.findIndex((lsn) => lsn >= 2 * SEGMENT);
      head = lsns[first]!;
      assert.ok(head > 2 * SEGMENT && head < 3 * SEGMENT, 'the head is inside segment 2');
      dir = join(root, 'log');
      mkdirSync(dir);
      const lastSegment = Math.floor((total - 1) / SEGMENT);
      for (let k = 2; k <= lastSegment; k++) {
        writeFileSync(
          join(dir, walDbSegmentName(k)),
          log.bytes.subarray(k * SEGMENT, Math.min((k + 1) * SEGMENT, total)),
        );
      }
      writeFileSync(join(dir, 'head'), walDbHeadFile(head));
      // Some frame after the head spans a segment boundary.
      assert.ok(
        lsns.some(
          (lsn, i) =>
            lsn >= head &&
            Math.floor(lsn / SEGMENT) !== Math.floor((lsn + 8 + sizes[i]! - 1) / SEGMENT),
        ),
      );
    });

    it('requires the segment size: without it open rejects with ERR_INVALID_ARG_VALUE', async () => {
      const before = listing(dir);
      await assert.rejects(Wal.open(dir), isCode('ERR_INVALID_ARG_VALUE'));
      await assert.rejects(Wal.open(dir, { readOnly: true }), isCode('ERR_INVALID_ARG_VALUE'));
      const after = listing(dir);
      after.delete('lock'); // a writable open may take (and leave) the lock file
      assert.deepEqual(after, before, 'no metadata is written for a rejected open');
    });

    it('refuses a segment size the files do not fit, writable or read-only, and cuts nothing', async () => {
      const before = listing(dir);
      for (const segmentSize of [4 * SEGMENT, SEGMENT / 2, SEGMENT + 1]) {
        for (const readOnly of [false, true]) {
          await assert.rejects(
            Wal.open(dir, { segmentSize, readOnly }),
            (error: Error) =>
              isCode('ERR_INVALID_ARG_VALUE')(error) &&
              error.message.includes(`the segment size ${segmentSize} given`) &&
              error.message.includes(`fit a segment size of ${SEGMENT}`),
          );
          assert.deepEqual(listing(dir), before, 'no metadata written, no segment cut');
        }
      }
      await viewFromHead(dir, SEGMENT, head, lsns.slice(first));
    });

    it('a torn middle segment (power loss, DESIGN §3): opens read-only, and writable recovery cuts at the tear keeping every record before it', async () => {
      const sizeOf = (i: number) => 8 + sizes[i]!;
      for (const [k, kept] of [
        [3, 1000],
        [4, 0],
        [5, 2500],
      ] as const) {
        rmSync(dir, { recursive: true, force: true });
        mkdirSync(dir);
        const log = walDbLog(records);
        writeSegments(dir, log.bytes, 2, SEGMENT);
        writeFileSync(join(dir, 'head'), walDbHeadFile(head));
        const segment = join(dir, walDbSegmentName(k));
        writeFileSync(segment, readFileSync(segment).subarray(0, kept));
        assert.ok(listing(dir).has(walDbSegmentName(k + 1)), 'a segment above the torn one');
        // Every record ending at or before the tear survives; the first one past it is torn.
        const tear = k * SEGMENT + kept;
        let last = first;
        while (last < records.length && lsns[last]! + sizeOf(last) <= tear) last++;
        const end = last === first ? head : lsns[last - 1]! + sizeOf(last - 1);
        assert.ok(last > first && last < records.length);

        const before = listing(dir);
        await viewFromHead(dir, SEGMENT, head, lsns.slice(first, last));
        assert.deepEqual(listing(dir), before, 'a read-only open changes nothing');

        const wal = await Wal.open(dir, { segmentSize: SEGMENT });
        try {
          assert.equal(wal.recovery.end, end);
          assert.equal(wal.recovery.tear?.offset, end);
          assert.equal(wal.recovery.truncated, true);
          assert.equal(wal.tail, end);
          const seen = await collect(wal);
          assert.deepEqual(
            seen.map((record) => Buffer.from(record.payload)),
            records.slice(first, last),
          );
        } finally {
          await wal.close();
        }
        // The segment size is recorded and the log ends at the cut.
        const again = await Wal.open(dir);
        try {
          assert.equal(again.tail, end);
          assert.equal(again.recovery.tear, undefined);
          assert.deepEqual(
            (await collect(again)).map((record) => record.lsn),
            lsns.slice(first, last),
          );
        } finally {
          await again.close();
        }
      }
    });

    it('opens with the segment size: head from the head file, records from the head on', async () => {
      const wal = await Wal.open(dir, { segmentSize: SEGMENT });
      try {
        assert.equal(wal.head, head);
        assert.equal(wal.recovery.head, head);
        assert.equal(wal.tail, total);
        assert.equal(wal.recovery.records, records.length - first);
        assert.equal(wal.recovery.tornBytes, 0);
        const seen = await collect(wal);
        assert.deepEqual(
          seen.map((record) => record.lsn),
          lsns.slice(first),
        );
        assert.deepEqual(
          seen.map((record) => Buffer.from(record.payload)),
          records.slice(first),
        );
        for (let i = first; i < records.length; i++) {
          assert.deepEqual(Buffer.from(await wal.read(lsns[i]!)), records[i]);
        }
        // Below the head the records are gone.
        await assert.rejects(wal.read(lsns[0]!), isCode('WAL_TRUNCATED'));
        await assert.rejects(wal.read(lsns[first - 1]!), isCode('WAL_TRUNCATED'));

        const lsn = await wal.append(Buffer.from('after wal-db'), { wait: 'durable' });
        assert.equal(lsn, total);
      } finally {
        await wal.close();
      }
      // wal-db's files are unchanged but for the appended frame; our metadata
      // is a separate file, and the head file is still wal-db's.
      assert.deepEqual(readFileSync(join(dir, 'head')), walDbHeadFile(head));
      const names = readdirSync(dir);
      assert.ok(names.includes('meta'));
      const flat = Buffer.concat(
        names
          .filter((name) => name.endsWith('.wal'))
          .sort()
          .map((name) => readFileSync(join(dir, name))),
      );
      assert.deepEqual(
        flat,
        Buffer.concat([
          walDbLog(records).bytes.subarray(2 * SEGMENT),
          walDbFrame(Buffer.from('after wal-db')),
        ]),
      );

      // The metadata now holds the segment size: it opens without the option.
      const reopened = await Wal.open(dir);
      try {
        assert.equal(reopened.head, head);
        const seen = await collect(reopened);
        assert.equal(seen.length, records.length - first + 1);
        assert.equal(seen.at(-1)!.lsn, total);
      } finally {
        await reopened.close();
      }
    });

    it('opens read-only with the segment size, reads the same, and changes nothing', async () => {
      const before = listing(dir);
      const wal = await Wal.open(dir, { readOnly: true, segmentSize: SEGMENT });
      try {
        assert.equal(wal.readOnly, true);
        assert.equal(wal.head, head);
        assert.equal(wal.recovery.truncated, false);
        const seen = await collect(wal);
        assert.deepEqual(
          seen.map((record) => record.lsn),
          lsns.slice(first),
        );
        assert.deepEqual(
          seen.map((record) => Buffer.from(record.payload)),
          records.slice(first),
        );
        assert.deepEqual(Buffer.from(await wal.read(lsns.at(-1)!)), records.at(-1));
      } finally {
        await wal.close();
      }
      const after = listing(dir);
      assert.deepEqual([...after.keys()], [...before.keys()], 'no meta or lock file created');
      assert.deepEqual(after, before, 'every file byte-for-byte unchanged');
    });
  });

  describe('other wal-db directory states', () => {
    const SEGMENT = 4096;

    it('an interrupted truncate_before (head file written, segments below it left): reads from the head', async () => {
      const records = payloads([1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000]);
      const { bytes, lsns } = walDbLog(records);
      const dir = join(root, 'log');
      writeSegments(dir, bytes, 0, SEGMENT);
      const first = lsns.findIndex((lsn) => lsn >= SEGMENT + 100);
      const head = lsns[first]!;
      writeFileSync(join(dir, 'head'), walDbHeadFile(head));

      const before = listing(dir);
      await viewFromHead(dir, SEGMENT, head, lsns.slice(first));
      assert.deepEqual(listing(dir), before, 'read-only deletes nothing');

      const wal = await Wal.open(dir, { segmentSize: SEGMENT });
      try {
        assert.equal(wal.head, head);
        const seen = await collect(wal);
        assert.deepEqual(
          seen.map((record) => record.lsn),
          lsns.slice(first),
        );
        assert.deepEqual(
          seen.map((record) => Buffer.from(record.payload)),
          records.slice(first),
        );
      } finally {
        await wal.close();
      }
      // Segment 0 lay wholly below the head: the writable open finished the deletion.
      const names = readdirSync(dir);
      assert.ok(!names.includes(walDbSegmentName(0)));
      assert.ok(names.includes(walDbSegmentName(1)));
    });

    it('a torn frame spanning into the last segment: the tail is cut across the boundary', async () => {
      const records = payloads([1500, 1500, 3000, 100]);
      const { bytes, lsns } = walDbLog(records);
      const torn = 2; // spans segments 0 and 1
      assert.equal(Math.floor(lsns[torn]! / SEGMENT), 0);
      const cut = SEGMENT + 200; // inside record 2's payload, in segment 1
      assert.ok(cut < lsns[torn]! + 8 + 3000);
      const dir = join(root, 'log');
      writeSegments(dir, bytes.subarray(0, cut), 0, SEGMENT);

      const wal = await Wal.open(dir, { segmentSize: SEGMENT });
      try {
        assert.equal(wal.recovery.tear?.offset, lsns[torn]);
        assert.equal(wal.recovery.tear?.kind, 'short-payload');
        assert.equal(wal.recovery.tornBytes + wal.recovery.zeroTail, cut - lsns[torn]!);
        assert.equal(wal.tail, lsns[torn]);
        assert.deepEqual(
          (await collect(wal)).map((record) => Buffer.from(record.payload)),
          records.slice(0, torn),
        );
      } finally {
        await wal.close();
      }
      assert.deepEqual(readFileSync(join(dir, walDbSegmentName(0))), bytes.subarray(0, lsns[torn]));
      // Segment 1 held only torn bytes: deleted (highest segments first), so
      // no stale byte can resurface.
      assert.ok(!readdirSync(dir).includes(walDbSegmentName(1)));
    });

    // BUG (reported): a wal-db log whose every record was consumed, with the
    // end on a segment boundary, is a directory holding only the head file
    // (wal-db deletes the segments wholly below the head and creates the
    // next one lazily). It has no metadata, so its segment size is unknown;
    // it must be required like for a directory of segments. Opening it
    // without `segmentSize` instead adopts the 64 MiB default, persists it,
    // and the next append (LSN 12288) lands at offset 12288 of
    // 00000000000000000000.wal, where wal-db (4096-byte segments) would
    // expect it at the start of 00000000000000000003.wal.
    it('a directory with only a head file (every segment consumed) requires the segment size', async () => {
      const dir = join(root, 'log');
      mkdirSync(dir);
      const head = 3 * SEGMENT;
      writeFileSync(join(dir, 'head'), walDbHeadFile(head));
      const before = listing(dir);
      await assert.rejects(Wal.open(dir, { readOnly: true }), isCode('ERR_INVALID_ARG_VALUE'));
      await assert.rejects(Wal.open(dir), isCode('ERR_INVALID_ARG_VALUE'));
      const after = listing(dir);
      after.delete('lock');
      assert.deepEqual(after, before, 'no metadata or segment written');
    });

    it('a directory with only a head file opens with the segment size and appends in the right segment', async () => {
      const dir = join(root, 'log');
      mkdirSync(dir);
      const head = 3 * SEGMENT;
      writeFileSync(join(dir, 'head'), walDbHeadFile(head));
      const wal = await Wal.open(dir, { segmentSize: SEGMENT });
      try {
        assert.equal(wal.head, head);
        assert.equal(wal.tail, head);
        assert.equal(await wal.append(new TextEncoder().encode('abc'), { wait: 'durable' }), head);
      } finally {
        await wal.close();
      }
      assert.equal(
        hex(readFileSync(join(dir, walDbSegmentName(3)))),
        'f8 83 14 55 03 00 00 00 61 62 63',
      );
      assert.deepEqual(
        readdirSync(dir).filter((name) => name.endsWith('.wal')),
        [walDbSegmentName(3)],
      );
    });
  });

  describe("wal-db's own limits, honoured and then recorded", () => {
    it('a single file with a 20 MiB record opens under the 64 MiB limit, which is then persisted', async () => {
      const big = Buffer.alloc(20 * 1024 * 1024);
      for (let i = 0; i < big.length; i += 4096) big[i] = (i >>> 12) & 0xff;
      const records = [Buffer.from('before'), big, Buffer.from('after')];
      const { bytes, lsns } = walDbLog(records);
      const path = join(root, 'log');
      writeFileSync(path, bytes);

      // Read-only: wal-db's limit applies, nothing is written.
      const viewer = await Wal.open(path, { layout: 'file', readOnly: true });
      try {
        assert.equal(viewer.maxRecordSize, WAL_DB_MAX_RECORD_SIZE);
        assert.equal(viewer.recovery.records, 3);
      } finally {
        await viewer.close();
      }
      assert.deepEqual(readdirSync(root), ['log']);

      const wal = await Wal.open(path, { layout: 'file' });
      try {
        assert.equal(wal.maxRecordSize, 64 * 1024 * 1024);
        assert.equal(wal.recovery.records, 3);
        assert.equal(wal.recovery.tornBytes, 0);
        assert.ok(Buffer.from(await wal.read(lsns[1]!)).equals(big));
        assert.deepEqual(Buffer.from(await wal.read(lsns[2]!)), records[2]);
      } finally {
        await wal.close();
      }
      // Persisted: the metadata records the limit, and a reopen keeps it.
      const store = await FileStore.open(path, { readOnly: true });
      try {
        assert.equal((await store.readMeta())['wal.maxRecordSize'], 64 * 1024 * 1024);
      } finally {
        await store.close();
      }
      const reopened = await Wal.open(path, { layout: 'file' });
      try {
        assert.equal(reopened.maxRecordSize, 64 * 1024 * 1024);
        assert.equal(reopened.recovery.records, 3);
      } finally {
        await reopened.close();
      }
      // A larger limit may be asked for; a new log keeps the 16 MiB default.
      const raised = await Wal.open(path, { layout: 'file', maxRecordSize: 100 * 1024 * 1024 });
      assert.equal(raised.maxRecordSize, 100 * 1024 * 1024);
      await raised.close();
      const fresh = await Wal.open(join(root, 'new'), { layout: 'file' });
      assert.equal(fresh.maxRecordSize, 16 * 1024 * 1024);
      await fresh.close();
    });

    it('a directory with 1,000-byte segments opens with segmentSize 1000, which is then persisted', async () => {
      const SEGMENT = 1000;
      const sizes = [10, 1100, 2500, 0, 300, 1200, 42, 990, 5];
      const records = payloads(sizes);
      const { bytes, lsns } = walDbLog(records);
      // As after wal-db's truncate_before(lsns[2]): segment 0 deleted, the head names the boundary.
      const head = lsns[2]!;
      assert.ok(head > SEGMENT && head < 2 * SEGMENT);
      const dir = join(root, 'log');
      writeSegments(dir, bytes, 1, SEGMENT);
      writeFileSync(join(dir, 'head'), walDbHeadFile(head));

      const before = listing(dir);
      await viewFromHead(dir, SEGMENT, head, lsns.slice(2));
      assert.deepEqual(listing(dir), before, 'read-only changes nothing');

      const wal = await Wal.open(dir, { segmentSize: SEGMENT });
      let appended: number;
      try {
        assert.equal(wal.maxRecordSize, WAL_DB_MAX_RECORD_SIZE);
        const seen = await collect(wal);
        assert.deepEqual(
          seen.map((record) => Buffer.from(record.payload)),
          records.slice(2),
        );
        // An append spanning three segments lands where wal-db puts it.
        appended = await wal.append(Buffer.alloc(2100, 0x33), { wait: 'durable' });
        assert.equal(appended, bytes.length);
      } finally {
        await wal.close();
      }
      const flat = Buffer.concat(
        readdirSync(dir)
          .filter((name) => name.endsWith('.wal'))
          .sort()
          .map((name) => readFileSync(join(dir, name))),
      );
      assert.deepEqual(
        flat,
        Buffer.concat([bytes, walDbFrame(Buffer.alloc(2100, 0x33))]).subarray(SEGMENT),
      );
      for (const name of readdirSync(dir).filter((n) => n.endsWith('.wal'))) {
        assert.ok(readFileSync(join(dir, name)).length <= SEGMENT, name);
      }
      // Persisted: the size is in the metadata, so the directory opens without it.
      const store = await SegmentedStore.open(dir, { readOnly: true });
      assert.equal(store.segmentSize, SEGMENT);
      await store.close();
      const reopened = await Wal.open(dir);
      try {
        assert.equal(reopened.maxRecordSize, WAL_DB_MAX_RECORD_SIZE);
        assert.equal((await collect(reopened)).at(-1)!.lsn, appended);
      } finally {
        await reopened.close();
      }
      // Below 4 KiB is for logs that exist: a new log refuses it and creates nothing.
      const fresh = join(root, 'fresh');
      await assert.rejects(Wal.open(fresh, { segmentSize: SEGMENT }), isCode('ERR_OUT_OF_RANGE'));
      assert.ok(!readdirSync(root).includes('fresh'));
    });
  });

  describe('damage in a wal-db log (no durable hint)', () => {
    const sizes = [10, 20, 300, 40, 50, 600, 7];

    it('cuts a tail torn in the middle of the last frame', async () => {
      const records = payloads(sizes);
      const { bytes, lsns } = walDbLog(records);
      const last = lsns.at(-1)!;
      // Torn in the payload, and (separately) in the header.
      for (const cut of [last + 8 + 3, last + 5]) {
        const path = join(root, `torn-${cut}`);
        writeFileSync(path, bytes.subarray(0, cut));
        const wal = await Wal.open(path, { layout: 'file' });
        try {
          assert.ok(wal.recovery.tornBytes > 0);
          assert.equal(wal.recovery.tornBytes, cut - last);
          assert.ok(wal.recovery.tear !== undefined);
          assert.equal(wal.recovery.tear.offset, last);
          assert.equal(wal.recovery.tear.kind, cut - last < 8 ? 'short-header' : 'short-payload');
          assert.equal(wal.recovery.truncated, true);
          assert.equal(wal.recovery.droppedFrames, 0);
          assert.equal(wal.tail, last);
          const seen = await collect(wal);
          assert.deepEqual(
            seen.map((record) => record.lsn),
            lsns.slice(0, -1),
          );
          assert.deepEqual(
            seen.map((record) => Buffer.from(record.payload)),
            records.slice(0, -1),
          );
          await assert.rejects(wal.read(last), isCode('ERR_OUT_OF_RANGE'));
        } finally {
          await wal.close();
        }
        assert.deepEqual(readFileSync(path), bytes.subarray(0, last), 'the torn bytes are cut');
      }
    });

    it('ends the log before a bit-flipped middle record and counts the valid frames dropped', async () => {
      // A wal-db log has no durable hint (its head, 0, stands in for one), so
      // nothing tells a torn tail from damage to bytes that were durable: any
      // damaged frame is treated as a tear and the log ends before it, even
      // with valid frames after it. This is the expected, documented
      // behaviour without a hint (DESIGN §5 "Tear or corruption?");
      // `recovery.droppedFrames` shows the operator how many valid frames
      // were dropped with it.
      const records = payloads(sizes);
      const { bytes, lsns } = walDbLog(records);
      const damaged = 2;
      const flipped = Buffer.from(bytes);
      flipped[lsns[damaged]! + 8 + 100]! ^= 0x10; // a payload bit: the length still steps over it
      const path = join(root, 'flipped');
      writeFileSync(path, flipped);

      // Read-only first: reports the same, cuts nothing.
      const viewer = await Wal.open(path, { layout: 'file', readOnly: true });
      try {
        assert.equal(viewer.recovery.tear?.offset, lsns[damaged]);
        assert.equal(viewer.recovery.droppedFrames, records.length - damaged - 1);
        assert.equal(viewer.recovery.truncated, false);
      } finally {
        await viewer.close();
      }
      assert.deepEqual(readFileSync(path), flipped);

      const wal = await Wal.open(path, { layout: 'file' });
      try {
        const report = wal.recovery;
        assert.equal(report.durableHint, 0);
        assert.deepEqual(report.tear, {
          offset: lsns[damaged],
          kind: 'checksum',
          claimedLength: sizes[damaged],
        });
        assert.equal(report.end, lsns[damaged]);
        assert.equal(report.records, damaged);
        assert.equal(report.droppedFrames, records.length - damaged - 1);
        assert.equal(report.tornBytes, bytes.length - lsns[damaged]!);
        assert.deepEqual(report.skipped, []);
        const seen = await collect(wal);
        assert.deepEqual(
          seen.map((record) => Buffer.from(record.payload)),
          records.slice(0, damaged),
        );
        assert.equal(await wal.append(Buffer.from('next'), { wait: 'durable' }), lsns[damaged]);
      } finally {
        await wal.close();
      }
      assert.deepEqual(
        readFileSync(path),
        Buffer.concat([bytes.subarray(0, lsns[damaged]), walDbFrame(Buffer.from('next'))]),
      );
    });
  });

  // FORMAT.md §5.3, "What the check cannot see": with one segment file, a
  // wrong size under which the head still falls inside that file is
  // accepted. These pin what such a size does, as documented.
  describe('one segment file and a wrong size the head check cannot see', () => {
    const SEGMENT = 4096;

    it("wal-db's full segment 1 with the head 2·4096, opened read-only with 8192: the consumed records come back at new LSNs", async () => {
      const dir = join(root, 'log');
      // 128-byte frames: 32 per segment, one starting at 4096.
      const { bytes } = walDbLog(payloads(Array(64).fill(120)));
      writeSegments(dir, bytes, 1, SEGMENT);
      writeFileSync(join(dir, 'head'), walDbHeadFile(2 * SEGMENT));
      await viewFromHead(dir, SEGMENT, 2 * SEGMENT, []);
      const wal = await Wal.open(dir, { readOnly: true, segmentSize: 2 * SEGMENT });
      try {
        const records = await collect(wal);
        assert.deepEqual(
          records.map((record) => record.lsn),
          Array.from({ length: 32 }, (_, i) => 2 * SEGMENT + 128 * i),
        );
        assert.deepEqual(Buffer.from(records[0]!.payload), payloads(Array(64).fill(120))[32]);
      } finally {
        await wal.close();
      }
    });

    it('a 3000-byte segment 1 with the head 100 bytes in, opened writable with 4000: accepted, and recovery cuts all 29 live records', async () => {
      const dir = join(root, 'log');
      // 41 frames of 100 bytes and one of 96: a record starts at 4196; then 29 of 100 bytes.
      const sizes = [...Array(41).fill(92), 88, ...Array(29).fill(92)];
      const { bytes, lsns } = walDbLog(payloads(sizes));
      assert.equal(bytes.length, SEGMENT + 3000);
      writeSegments(dir, bytes, 1, SEGMENT);
      writeFileSync(join(dir, 'head'), walDbHeadFile(SEGMENT + 100));
      await viewFromHead(dir, SEGMENT, SEGMENT + 100, lsns.slice(42));
      const wal = await Wal.open(dir, { segmentSize: 4000 });
      try {
        assert.deepEqual(await collect(wal), []);
      } finally {
        await wal.close();
      }
      // Cut at the head under 4000 (196 bytes into the file), and 4000 recorded.
      assert.equal(readFileSync(join(dir, walDbSegmentName(1))).length, 196);
      await assert.rejects(
        Wal.open(dir, { readOnly: true, segmentSize: SEGMENT }),
        isCode('ERR_INVALID_ARG_VALUE'),
      );
    });
  });
});
