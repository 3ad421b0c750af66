// Recovery through Wal.open (DESIGN §5 "Open / recovery", FORMAT.md §2–§4):
// the durable hint telling corruption from a torn tail, the skip policy,
// hostile headers, record-size limits, idempotence, and that recovered bytes
// are made durable before the log treats them as durable. The log lives in a
// SegmentedStore over a CrashFs, so process crashes and power losses are
// simulated exactly, and "changes nothing" is checked on the file contents.
import assert from 'node:assert/strict';
import { SegmentedStore, type Store } from '@wal/store';
import { CrashFs } from '@wal/store/testing';
import fc from 'fast-check';
import { crc32c, Wal, type WalOptions, type WalRecord } from '../src/index.js';
import { isCode } from './helpers.js';

const SEGMENT = 4096;
const PARENT = '/data';
const DIR = '/data/log';

function freshFs(): CrashFs {
  return new CrashFs({ sectorSize: 512, image: { files: new Map(), dirs: new Set([PARENT]) } });
}

const segmentPath = (index: number): string => `${DIR}/${String(index).padStart(20, '0')}.wal`;

/** A distinct payload for record `i`. */
function payload(i: number, size: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let j = 0; j < size; j++) out[j] = (i * 37 + j * 11 + 3) & 0xff;
  return out;
}

/** A frame laid out by hand: crc32c over (length u32 LE ‖ payload), then the length, then the payload. */
function frameOf(body: Uint8Array, claimedLength = body.length, crc?: number): Uint8Array {
  const out = new Uint8Array(8 + body.length);
  const view = new DataView(out.buffer);
  view.setUint32(4, claimedLength, true);
  out.set(body, 8);
  view.setUint32(0, crc ?? crc32c(out, 4), true);
  return out;
}

/**
 * Writes `bytes` at flat offset `offset` of the segmented log in `fs`, as a
 * disk might hold them after a crash (the whole image becomes durable).
 */
function patch(fs: CrashFs, offset: number, bytes: Uint8Array): void {
  const image = fs.snapshot();
  const files = new Map(image.files);
  let done = 0;
  while (done < bytes.length) {
    const at = offset + done;
    const index = Math.floor(at / SEGMENT);
    const within = at % SEGMENT;
    const count = Math.min(SEGMENT - within, bytes.length - done);
    const old = files.get(segmentPath(index)) ?? new Uint8Array(0);
    const next = new Uint8Array(Math.max(old.length, within + count));
    next.set(old);
    next.set(bytes.subarray(done, done + count), within);
    files.set(segmentPath(index), next);
    done += count;
  }
  fs.reset({ files, dirs: image.dirs });
}

/** Flips bits of the byte at flat offset `offset`. */
function flip(fs: CrashFs, offset: number, mask = 0x04): void {
  const file = fs.snapshot().files.get(segmentPath(Math.floor(offset / SEGMENT)));
  assert.ok(file !== undefined && file.length > offset % SEGMENT, `byte ${offset} exists`);
  patch(fs, offset, Uint8Array.of(file[offset % SEGMENT]! ^ mask));
}

/** Every file and its bytes, as a process would read them. */
function contents(fs: CrashFs): Map<string, string> {
  const out = new Map<string, string>();
  for (const [path, bytes] of [...fs.snapshot().files].sort(([a], [b]) => (a < b ? -1 : 1))) {
    out.set(path, Buffer.from(bytes).toString('hex'));
  }
  return out;
}

/** The log's bytes as one flat array (segment files laid end to end). */
function flatLog(fs: CrashFs): Uint8Array {
  const out = new Uint8Array(logLength(fs));
  for (const [path, bytes] of fs.snapshot().files) {
    const match = /(\d{20})\.wal$/.exec(path);
    if (match !== null) out.set(bytes, Number(match[1]) * SEGMENT);
  }
  return out;
}

/** Where intact frames starting at `from` end in `bytes`: the recovery scan's model. */
function intactEnd(bytes: Uint8Array, from: number): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  let at = from;
  while (at + 8 <= bytes.length) {
    const length = view.getUint32(at + 4, true);
    if (at + 8 + length > bytes.length) break;
    if (crc32c(bytes.subarray(at + 4, at + 8 + length)) !== view.getUint32(at, true)) break;
    at += 8 + length;
  }
  return at;
}

/** Flat log bytes held by the segment files (for lengths). */
function logLength(fs: CrashFs): number {
  let length = 0;
  for (const [path, bytes] of fs.snapshot().files) {
    const match = /(\d{20})\.wal$/.exec(path);
    if (match !== null && bytes.length > 0) {
      length = Math.max(length, Number(match[1]) * SEGMENT + bytes.length);
    }
  }
  return length;
}

const open = (fs: CrashFs, options: WalOptions = {}): Promise<Wal> =>
  Wal.open(DIR, { fs, segmentSize: SEGMENT, ...options });

async function collect(wal: Wal): Promise<WalRecord[]> {
  const out: WalRecord[] = [];
  for await (const record of wal.iterate()) out.push({ lsn: record.lsn, payload: record.payload });
  return out;
}

/** Creates a log of `count` records of `size` bytes and closes it cleanly; returns their LSNs and the end. */
async function cleanLog(
  fs: CrashFs,
  count: number,
  size: number,
  options: WalOptions = {},
): Promise<{ lsns: number[]; end: number }> {
  const wal = await open(fs, options);
  const lsns: number[] = [];
  for (let i = 0; i < count; i++) {
    lsns.push(wal.append(payload(i, size)));
    // Sync now and then, so the hint is written at segment rolls too.
    if (i % 4 === 3) await wal.sync();
  }
  await wal.close();
  return { lsns, end: lsns.length === 0 ? 0 : lsns.at(-1)! + 8 + size };
}

describe('Wal.open recovery (DESIGN §5)', () => {
  describe('the durable hint: damage below it is corruption', () => {
    const COUNT = 20;
    const SIZE = 600;
    const DAMAGED = 10;

    it('rejects WAL_CORRUPTION at the damaged LSN and changes nothing; skip steps over it', async () => {
      const fs = freshFs();
      const { lsns, end } = await cleanLog(fs, COUNT, SIZE);
      assert.ok(end > 2 * SEGMENT, 'the records span three segments');

      // The clean close recorded the hint at the end.
      const viewer = await open(fs, { readOnly: true });
      assert.equal(viewer.recovery.durableHint, end);
      await viewer.close();

      const lsn = lsns[DAMAGED]!;
      assert.ok(lsn < end);
      flip(fs, lsn + 8 + 17);
      const before = contents(fs);
      await assert.rejects(open(fs), isCode('WAL_CORRUPTION', lsn));
      assert.deepEqual(contents(fs), before, 'a rejected open changes nothing');
      // Read-only, the same verdict.
      await assert.rejects(open(fs, { readOnly: true }), isCode('WAL_CORRUPTION', lsn));
      assert.deepEqual(contents(fs), before);

      const wal = await open(fs, { recovery: 'skip' });
      try {
        const report = wal.recovery;
        assert.deepEqual(report.skipped, [{ offset: lsn, kind: 'checksum', claimedLength: SIZE }]);
        assert.equal(report.tear, undefined);
        assert.equal(report.tornBytes, 0);
        assert.equal(report.truncated, false);
        assert.equal(report.records, COUNT - 1);
        assert.equal(report.end, end);
        assert.equal(wal.tail, end);

        const seen = await collect(wal);
        assert.deepEqual(
          seen.map((record) => record.lsn),
          lsns.filter((_, i) => i !== DAMAGED),
        );
        for (const record of seen) {
          assert.deepEqual(record.payload, payload(lsns.indexOf(record.lsn), SIZE));
        }
        let batched = 0;
        for await (const batch of wal.iterateBatches(undefined, { batchBytes: 1000 })) {
          batched += batch.length;
          assert.ok(batch.every((record) => record.lsn !== lsn));
        }
        assert.equal(batched, COUNT - 1);

        await assert.rejects(wal.read(lsn), isCode('WAL_CORRUPTION', lsn));
        for (let i = 0; i < COUNT; i++) {
          if (i !== DAMAGED) assert.deepEqual(await wal.read(lsns[i]!), payload(i, SIZE));
        }
        // An iterator starting at the damaged record steps over it too.
        const from: WalRecord[] = [];
        for await (const record of wal.iterate(lsn)) from.push(record);
        assert.deepEqual(
          from.map((record) => record.lsn),
          lsns.slice(DAMAGED + 1),
        );

        assert.equal(await wal.append(payload(99, 5), { wait: 'durable' }), end);
        assert.deepEqual(await wal.read(end), payload(99, 5));
      } finally {
        await wal.close();
      }
    });

    it('a log shorter than its durable hint (last segment deleted) is WAL_CORRUPTION', async () => {
      const fs = freshFs();
      const { end } = await cleanLog(fs, COUNT, SIZE);
      const last = Math.floor((end - 1) / SEGMENT);
      assert.ok(last >= 2);
      const image = fs.snapshot();
      const files = new Map(image.files);
      assert.ok(files.delete(segmentPath(last)));
      fs.reset({ files, dirs: image.dirs });
      const before = contents(fs);
      await assert.rejects(open(fs), isCode('WAL_CORRUPTION'));
      assert.deepEqual(contents(fs), before);
    });

    it('a middle segment gone (reads as zeros) is WAL_CORRUPTION at the record it breaks', async () => {
      const fs = freshFs();
      const { lsns } = await cleanLog(fs, COUNT, SIZE);
      const image = fs.snapshot();
      const files = new Map(image.files);
      assert.ok(files.delete(segmentPath(1)));
      fs.reset({ files, dirs: image.dirs });
      const before = contents(fs);
      // The first record with a byte in segment 1.
      const broken = lsns.find((lsn) => lsn + 8 + SIZE > SEGMENT)!;
      await assert.rejects(open(fs), isCode('WAL_CORRUPTION', broken));
      assert.deepEqual(contents(fs), before);
    });
  });

  describe('above the hint: a torn tail', () => {
    it('cuts damage in records appended after the hint (process crash), counting dropped frames', async () => {
      let fs = freshFs();
      const { end: hint } = await cleanLog(fs, 6, 100);
      const wal = await open(fs);
      const appended: number[] = [];
      for (let i = 0; i < 8; i++)
        appended.push(await wal.append(payload(100 + i, 100), { wait: 'written' }));
      assert.equal(appended[0], hint);
      assert.ok(appended.at(-1)! + 108 < SEGMENT, 'no segment roll: the hint stays where it was');
      fs = fs.processCrash(); // the log is abandoned, never closed
      const storeLength = logLength(fs);
      assert.equal(storeLength, appended.at(-1)! + 108);

      // The crash left a damaged record above the hint, with valid ones after it.
      const damaged = appended[3]!;
      flip(fs, damaged + 8 + 50);
      const before = contents(fs);

      const viewer = await open(fs, { readOnly: true });
      try {
        assert.equal(viewer.recovery.durableHint, hint);
        assert.equal(viewer.recovery.tear?.offset, damaged);
        assert.equal(viewer.recovery.droppedFrames, 4);
        assert.equal(viewer.recovery.tornBytes, storeLength - damaged);
        assert.equal(viewer.recovery.truncated, false);
      } finally {
        await viewer.close();
      }
      assert.deepEqual(contents(fs), before, 'read-only recovery cuts nothing');

      const reopened = await open(fs);
      try {
        const report = reopened.recovery;
        assert.equal(report.durableHint, hint);
        assert.deepEqual(report.tear, { offset: damaged, kind: 'checksum', claimedLength: 100 });
        assert.equal(report.end, damaged);
        assert.equal(report.records, 6 + 3);
        assert.equal(report.droppedFrames, 4);
        assert.equal(report.tornBytes, storeLength - damaged);
        assert.equal(report.storeLength, storeLength);
        assert.equal(report.truncated, true);
        assert.equal(logLength(fs), damaged, 'the torn tail is cut on disk');
        const seen = await collect(reopened);
        assert.equal(seen.length, 9);
        assert.equal(seen.at(-1)!.lsn, appended[2]);
        assert.equal(await reopened.append(payload(7, 7), { wait: 'durable' }), damaged);
      } finally {
        await reopened.close();
      }
    });
  });

  describe('a zero tail (preallocated space) is no torn write', () => {
    /** What can follow the last record after a crash: zeros, any bytes, a torn or an intact frame. */
    const piece = fc.oneof(
      fc.integer({ min: 1, max: 3000 }).map((n) => new Uint8Array(n)),
      fc.uint8Array({ minLength: 1, maxLength: 300 }),
      fc
        .tuple(fc.uint8Array({ maxLength: 300 }), fc.nat())
        .map(([body, cut]) => frameOf(body).subarray(0, 1 + (cut % (body.length + 7)))),
      fc.uint8Array({ maxLength: 300 }).map((body) => frameOf(body)),
    );

    it('reports the zeros ending the store apart from the torn bytes before them (property)', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.nat({ max: 12 }),
          fc.array(piece, { minLength: 1, maxLength: 5 }),
          async (count, pieces) => {
            const fs = freshFs();
            const { end: hint } = await cleanLog(fs, count, 90);
            let at = hint;
            for (const bytes of pieces) {
              patch(fs, at, bytes);
              at += bytes.length;
            }
            // The model: intact frames from the hint on, then the zeros that end the store.
            const flat = flatLog(fs);
            const end = intactEnd(flat, hint);
            const after = flat.subarray(end);
            const zeros = after.length - (after.findLastIndex((byte) => byte !== 0) + 1);
            const expect = (report: Wal['recovery'], readOnly: boolean): void => {
              const seen = JSON.stringify(report);
              assert.equal(report.end, end, seen);
              assert.equal(report.zeroTail, zeros, seen);
              assert.equal(report.tornBytes, after.length - zeros, seen);
              assert.equal(report.end + report.tornBytes + report.zeroTail, report.storeLength);
              if (zeros === after.length) assert.equal(report.tear, undefined, seen);
              else assert.equal(report.tear?.offset, end, seen);
              if (report.tear === undefined) assert.equal(report.droppedFrames, 0);
              assert.equal(report.truncated, !readOnly && after.length > 0);
            };
            const viewer = await open(fs, { readOnly: true });
            expect(viewer.recovery, true);
            await viewer.close();
            const wal = await open(fs);
            expect(wal.recovery, false);
            await wal.close();
            assert.equal(logLength(fs), end, 'cut at the end of the intact records');
            const again = await open(fs);
            assert.deepEqual(
              [again.recovery.tear, again.recovery.tornBytes, again.recovery.zeroTail],
              [undefined, 0, 0],
            );
            await again.close();
          },
        ),
        { numRuns: 150 },
      );
    });

    it('zeros before a torn write, or after one, are part of a tear', async () => {
      const fs = freshFs();
      const { end } = await cleanLog(fs, 3, 90);
      // Zeros where a record should start, then bytes of a record that landed
      // later (unordered writeback), then zeros again.
      patch(fs, end, new Uint8Array(500));
      patch(fs, end + 500, frameOf(payload(9, 90)));
      patch(fs, end + 598, new Uint8Array(700));
      const wal = await open(fs);
      assert.deepEqual(wal.recovery.tear, { offset: end, kind: 'checksum', claimedLength: 0 });
      assert.equal(wal.recovery.tornBytes, 598);
      assert.equal(wal.recovery.zeroTail, 700);
      await wal.close();
    });
  });

  describe('hostile headers at the tail', () => {
    const MAX = 1024;
    /** A hostile header (8 bytes) followed by `after` bytes of filler. */
    const cases: Array<{ name: string; crc: number; length: number; after: number; kind: string }> =
      [
        {
          name: 'length 0xFFFFFFFF',
          crc: 0x1234_5678,
          length: 0xffff_ffff,
          after: 64,
          kind: 'short-payload',
        },
        {
          name: 'length 2^31',
          crc: 0x1234_5678,
          length: 2 ** 31,
          after: 64,
          kind: 'short-payload',
        },
        {
          name: 'length maxRecordSize + 1, bytes present, bad CRC',
          crc: 0x1234_5678,
          length: MAX + 1,
          after: MAX + 1 + 40,
          kind: 'checksum',
        },
        {
          name: 'length maxRecordSize + 1, past the end',
          crc: 0x1234_5678,
          length: MAX + 1,
          after: 30,
          kind: 'short-payload',
        },
        {
          name: 'a length past the end of the store',
          crc: 0x1234_5678,
          length: 100,
          after: 20,
          kind: 'short-payload',
        },
        {
          name: 'length 0 with a bad CRC',
          crc: 0xdead_beef,
          length: 0,
          after: 0,
          kind: 'checksum',
        },
      ];

    for (const hostile of cases) {
      it(`${hostile.name}: a tear, cut, read in bounded memory`, async () => {
        const fs = freshFs();
        const { lsns, end } = await cleanLog(fs, 5, 100, { maxRecordSize: MAX });
        const header = new Uint8Array(8);
        new DataView(header.buffer).setUint32(0, hostile.crc, true);
        new DataView(header.buffer).setUint32(4, hostile.length, true);
        const tail = new Uint8Array(8 + hostile.after).fill(0xa7);
        tail.set(header);
        patch(fs, end, tail);

        // Record the size of every read recovery asks of the store.
        const reads: number[] = [];
        const source = async (): Promise<Store> => {
          const store = await SegmentedStore.open(DIR, { fs, segmentSize: SEGMENT });
          return new Proxy(store, {
            get(target, property) {
              const value: unknown = Reflect.get(target, property, target);
              if (property === 'read') {
                return (offset: number, length: number) => {
                  reads.push(length);
                  return target.read(offset, length);
                };
              }
              return typeof value === 'function' ? value.bind(target) : value;
            },
          });
        };
        const wal = await Wal.open(source);
        try {
          const report = wal.recovery;
          assert.equal(report.end, end);
          assert.equal(report.tear?.offset, end);
          assert.equal(report.tear?.kind, hostile.kind);
          assert.equal(report.tear?.claimedLength, hostile.length);
          // A header ending in zero bytes (length 0): those are the zero tail.
          const zeros = hostile.after === 0 && hostile.length === 0 ? 4 : 0;
          assert.equal(report.tornBytes, 8 + hostile.after - zeros);
          assert.equal(report.zeroTail, zeros);
          assert.equal(report.records, 5);
          assert.equal(report.truncated, true);
          assert.ok(Math.max(...reads) <= 1024 * 1024 + 8, `reads of ${Math.max(...reads)} bytes`);
          assert.equal(logLength(fs), end);
          assert.deepEqual(
            (await collect(wal)).map((record) => record.lsn),
            lsns,
          );
          assert.equal(await wal.append(payload(9, 9), { wait: 'durable' }), end);
        } finally {
          await wal.close();
        }
      });
    }

    it('an intact frame above maxRecordSize is WAL_RECORD_TOO_LARGE, nothing cut; a larger maximum reads it', async () => {
      const fs = freshFs();
      const { lsns, end } = await cleanLog(fs, 3, 100, { maxRecordSize: MAX });
      const big = payload(42, MAX + 1);
      patch(fs, end, frameOf(big));
      const before = contents(fs);

      for (const options of [{}, { maxRecordSize: MAX }, { readOnly: true }] as WalOptions[]) {
        await assert.rejects(open(fs, options), (error: unknown) => {
          isCode('WAL_RECORD_TOO_LARGE', end)(error);
          assert.equal((error as { length?: unknown }).length, MAX + 1);
          assert.equal((error as { limit?: unknown }).limit, MAX);
          return true;
        });
        assert.deepEqual(contents(fs), before, 'nothing is cut');
      }

      const wal = await open(fs, { maxRecordSize: 2 * MAX });
      try {
        assert.equal(wal.recovery.tear, undefined);
        assert.equal(wal.recovery.records, 4);
        assert.deepEqual(await wal.read(end), big);
        assert.deepEqual(
          (await collect(wal)).map((record) => record.lsn),
          [...lsns, end],
        );
      } finally {
        await wal.close();
      }
      // The raised maximum is persisted.
      const again = await open(fs);
      try {
        assert.equal(again.maxRecordSize, 2 * MAX);
        assert.deepEqual(await again.read(end), big);
      } finally {
        await again.close();
      }
    });
  });

  describe('maxRecordSize persistence', () => {
    it('a smaller maximum on reopen is ERR_OUT_OF_RANGE and changes nothing', async () => {
      const fs = freshFs();
      await cleanLog(fs, 3, 100, { maxRecordSize: 4096 });
      const before = contents(fs);
      await assert.rejects(open(fs, { maxRecordSize: 2048 }), (error: unknown) => {
        assert.ok(error instanceof RangeError);
        return isCode('ERR_OUT_OF_RANGE')(error);
      });
      await assert.rejects(
        open(fs, { maxRecordSize: 2048, readOnly: true }),
        isCode('ERR_OUT_OF_RANGE'),
      );
      assert.deepEqual(contents(fs), before);

      const wal = await open(fs);
      assert.equal(wal.maxRecordSize, 4096);
      assert.equal(wal.recovery.records, 3);
      await wal.close();

      const raised = await open(fs, { maxRecordSize: 8192 });
      assert.equal(raised.maxRecordSize, 8192);
      await raised.close();
      await assert.rejects(open(fs, { maxRecordSize: 4096 }), isCode('ERR_OUT_OF_RANGE'));
    });
  });

  describe('idempotence', () => {
    it('recovering twice gives the same records; appends continue from the recovered end', async () => {
      let fs = freshFs();
      await cleanLog(fs, 5, 200);
      const wal = await open(fs);
      for (let i = 0; i < 10; i++) await wal.append(payload(50 + i, 300), { wait: 'written' });
      fs = fs.processCrash();
      // A power loss tore the tail: the last 1000 bytes came back as zeros.
      const length = logLength(fs);
      patch(fs, length - 1000, new Uint8Array(1000));

      const first = await open(fs);
      const recovered = first.recovery;
      const records = await collect(first);
      assert.ok(recovered.tornBytes > 0);
      assert.equal(records.length, recovered.records);
      fs = fs.processCrash(); // crash again, right after recovery

      const second = await open(fs);
      try {
        assert.equal(second.recovery.tornBytes, 0);
        assert.equal(second.recovery.tear, undefined);
        assert.equal(second.recovery.end, recovered.end);
        assert.equal(second.recovery.records, recovered.records);
        assert.deepEqual(await collect(second), records);
        const lsn = await second.append(payload(77, 33), { wait: 'durable' });
        assert.equal(lsn, recovered.end);
      } finally {
        await second.close();
      }
      const third = await open(fs);
      try {
        const all = await collect(third);
        assert.deepEqual(all.slice(0, -1), records);
        assert.equal(all.at(-1)!.lsn, recovered.end);
        assert.deepEqual(all.at(-1)!.payload, payload(77, 33));
        assert.equal(third.tail, recovered.end + 8 + 33);
      } finally {
        await third.close();
      }
    });
  });

  describe('a power loss during recovery', () => {
    const MUTATING = new Set([
      'open',
      'pwrite',
      'fdatasync',
      'ftruncate',
      'rename',
      'unlink',
      'syncDir',
      'mkdir',
    ]);

    /**
     * Runs a recovering open over `fs`, taking the crash states a power loss
     * could leave before each of its mutating file-system calls and after it.
     */
    async function openRecording(
      fs: CrashFs,
    ): Promise<{ wal: Wal; steps: Array<Iterable<{ fs(): CrashFs; description: string }>> }> {
      const steps: Array<Iterable<{ fs(): CrashFs; description: string }>> = [];
      const recording = new Proxy(fs, {
        get(target, property) {
          const value: unknown = Reflect.get(target, property, target);
          if (typeof value !== 'function') return value;
          if (typeof property === 'string' && MUTATING.has(property)) {
            return (...args: unknown[]) => {
              steps.push(target.crashStates({ limit: 12, seed: steps.length }));
              return (value as (...a: unknown[]) => unknown).apply(target, args);
            };
          }
          return value.bind(target);
        },
      });
      const wal = await Wal.open(DIR, { fs: recording, segmentSize: SEGMENT });
      steps.push(fs.crashStates({ limit: 12, seed: steps.length }));
      return { wal, steps };
    }

    for (const torn of [false, true]) {
      it(`every state opens, never as corruption, and keeps the durable records${torn ? ' (recovery cuts a tear)' : ''}`, async () => {
        let fs = freshFs();
        const { lsns: durable } = await cleanLog(fs, 6, 300);
        const wal = await open(fs);
        const appended: number[] = [];
        for (let i = 0; i < 20; i++)
          appended.push(await wal.append(payload(200 + i, 300), { wait: 'written' }));
        assert.ok(appended.at(-1)! > SEGMENT, 'the unsynced records reach a second segment');
        fs = fs.processCrash();
        let keep = durable.length;
        if (torn) {
          // A power loss already left a hole in record 10 of the appended ones;
          // the reset makes this image durable.
          flip(fs, appended[10]! + 8 + 5);
          keep += 10;
        }

        const { wal: recovered, steps } = await openRecording(fs);
        const reported = recovered.recovery.records;
        await recovered.close();
        assert.equal(reported, torn ? keep : durable.length + appended.length);
        assert.ok(steps.length > 2);

        let checked = 0;
        for (const [step, states] of steps.entries()) {
          for (const state of states) {
            let found: WalRecord[];
            try {
              const reopened = await open(state.fs());
              try {
                found = await collect(reopened);
              } finally {
                await reopened.close();
              }
            } catch (error) {
              assert.fail(`step ${step}, ${state.description}: open rejected: ${String(error)}`);
            }
            const least = step === steps.length - 1 ? reported : keep;
            assert.ok(
              found.length >= least,
              `step ${step}, ${state.description}: ${found.length} records, expected ${least}`,
            );
            checked++;
          }
        }
        assert.ok(checked > steps.length);
      });
    }
  });

  describe('recovered bytes are made durable before they are treated as durable', () => {
    const COUNT = 12;
    const SIZE = 700;

    async function survivors(state: { fs(): CrashFs }): Promise<WalRecord[]> {
      const wal = await open(state.fs());
      try {
        return await collect(wal);
      } finally {
        await wal.close();
      }
    }

    it('after a process crash, open fsyncs the recovered segments and the directory', async () => {
      let fs = freshFs();
      const wal = await open(fs);
      const lsns: number[] = [];
      for (let i = 0; i < COUNT; i++)
        lsns.push(await wal.append(payload(i, SIZE), { wait: 'written' }));
      const end = lsns.at(-1)! + 8 + SIZE;
      const segments = Math.ceil(end / SEGMENT);
      assert.ok(segments >= 3);
      fs = fs.processCrash(); // the records are in the page cache only

      // Control: a power loss now could lose some of them.
      let lossy = 0;
      for (const state of fs.crashStates({ limit: 40 })) {
        if ((await survivors(state)).length < COUNT) lossy++;
      }
      assert.ok(lossy > 0, 'unsynced records can be lost by a power loss');

      const mark = fs.mark('reopen');
      const reopened = await open(fs);
      try {
        assert.equal(reopened.recovery.records, COUNT);
        assert.equal(reopened.durable, end);
        const after = fs.operations.filter((op) => op.issuedAt > mark);
        for (let k = 0; k < segments; k++) {
          assert.ok(
            after.some((op) => op.call === 'fdatasync' && op.path === segmentPath(k)),
            `segment ${k} fdatasynced`,
          );
        }
        assert.ok(
          after.some((op) => op.call === 'syncDir' && op.path === DIR),
          'directory fsynced',
        );

        // Whatever a power loss now leaves holds every record the reopened log reported.
        const states = fs.crashStates({ limit: 60 });
        let checked = 0;
        for (const state of states) {
          const found = await survivors(state);
          assert.ok(found.length >= COUNT, `${state.description}: ${found.length} records`);
          for (let i = 0; i < COUNT; i++) {
            assert.equal(found[i]!.lsn, lsns[i]);
            assert.deepEqual(found[i]!.payload, payload(i, SIZE), state.description);
          }
          checked++;
        }
        assert.ok(checked > 0);
      } finally {
        await reopened.close();
      }
    });
  });
});
