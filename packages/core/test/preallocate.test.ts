// Preallocation (`WalOptions.preallocate`, FORMAT.md §8, DURABILITY.md §3):
// zeros written ahead of the end once syncs are asked for, never over data,
// never into a segment that does not exist yet, cut at close and by recovery;
// a failed preallocation only turns it off (or, when the store latched a
// failure, stops the log).
import assert from 'node:assert/strict';
import type { Fs, FsFile } from '@wal/store';
import { CrashFs, FaultFs } from '@wal/store/testing';
import { Wal, type WalOptions } from '../src/index.js';
import { isCode } from './helpers.js';

const PARENT = '/data';
const DIR = '/data/log';
const SEGMENT = 64 * 1024;
const AHEAD = 8 * 1024;

function freshFs(): CrashFs {
  return new CrashFs({ sectorSize: 512, image: { files: new Map(), dirs: new Set([PARENT]) } });
}

/** Bytes held by the segment files, as a flat length (the store's length). */
function fileLength(fs: CrashFs): number {
  let length = 0;
  for (const [path, bytes] of fs.snapshot().files) {
    const match = /(\d{20})\.wal$/.exec(path);
    if (match !== null) length = Math.max(length, Number(match[1]) * SEGMENT + bytes.length);
  }
  return length;
}

const open = (fs: Fs, options: WalOptions = {}): Promise<Wal> =>
  Wal.open(DIR, { fs, segmentSize: SEGMENT, preallocate: AHEAD, ...options });

function payload(i: number, size = 100): Uint8Array {
  const out = new Uint8Array(size);
  for (let j = 0; j < size; j++) out[j] = (i * 13 + j * 5 + 1) & 0xff;
  return out;
}

const isZeros = (bytes: Uint8Array): boolean => bytes.length > 0 && bytes.every((b) => b === 0);

/** Writes `count` records, each awaited durable by one of `committers` loops. */
async function durableRecords(wal: Wal, count: number, committers = 4): Promise<number[]> {
  const lsns: number[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: committers }, async () => {
      while (next < count) {
        const i = next++;
        const lsn = await wal.append(payload(i), { wait: 'durable' });
        lsns[i] = lsn;
      }
    }),
  );
  return lsns;
}

async function payloads(wal: Wal): Promise<Map<number, Uint8Array>> {
  const out = new Map<number, Uint8Array>();
  for await (const record of wal.iterate()) out.set(record.lsn, record.payload);
  return out;
}

describe('preallocation: zeros written ahead of the end', () => {
  it('once syncs are asked for, keeps zeros ahead; close cuts them; a reopen finds no tear', async () => {
    const fs = freshFs();
    const wal = await open(fs);
    await durableRecords(wal, 200);
    const tail = wal.tail;
    assert.ok(fileLength(fs) > tail, `files hold ${fileLength(fs)} bytes for a tail of ${tail}`);
    // Topped up by `preallocate` bytes once less than half of that is left.
    assert.ok(fileLength(fs) - tail <= 1.5 * AHEAD, 'at most 1.5 × preallocate bytes ahead');
    await wal.close();
    assert.equal(fileLength(fs), tail);
    const again = await open(fs);
    assert.equal(again.recovery.tear, undefined);
    assert.equal(again.recovery.tornBytes, 0);
    assert.equal(again.recovery.records, 200);
    await again.close();
  });

  it('a log with no syncs preallocates nothing (buffered appends gain nothing from it)', async () => {
    const fs = freshFs();
    const wal = await open(fs);
    for (let i = 0; i < 2000; i++) wal.append(payload(i));
    await wal.waitFor(wal.tail - 108, 'written');
    assert.equal(fileLength(fs), wal.tail);
    await wal.close();
  });

  it('never creates a segment: zeros stop at the end of the segment holding records', async () => {
    const fs = new FaultFs(freshFs());
    const wal = await open(fs, { preallocate: 1024 * 1024 });
    // Every segment file must get records before it gets zeros: zeros written
    // into a file of their own would have created it (the store splits writes
    // at segment ends, so a bound on positions could not tell).
    const withRecords = new Set<string>();
    const problems: string[] = [];
    let zeroWrites = 0;
    // Durable records are written with pwriteDurable, others and zeros with pwrite.
    for (const method of ['pwrite', 'pwriteDurable'] as const) {
      fs.inject({
        method,
        persistent: true,
        when: (call) => {
          const [bytes] = call.args as [Uint8Array, number];
          if (!isZeros(bytes)) {
            withRecords.add(call.path);
          } else {
            zeroWrites++;
            if (!withRecords.has(call.path)) problems.push(`zeros first into ${call.path}`);
          }
          return undefined;
        },
      });
    }
    // Cross several segment boundaries with durable records.
    await durableRecords(wal, 1500, 8);
    assert.ok(zeroWrites > 0, 'preallocated');
    assert.ok(withRecords.size > 2, `${withRecords.size} segments`);
    assert.deepEqual(problems, []);
    await wal.close();
  });

  it('zeros never land over records: writes into the preallocated range wait for them (slow zero writes)', async () => {
    // A file system on which writing zeros is slow: without the wait, records
    // written meanwhile into the same range would be overwritten when the
    // zeros land, and recovery would find damage below the durable hint.
    class SlowZeros extends FaultFs {
      override async pwrite(file: FsFile, bytes: Uint8Array, position: number): Promise<number> {
        if (isZeros(bytes)) await new Promise((resolve) => setTimeout(resolve, 15));
        return super.pwrite(file, bytes, position);
      }
    }
    const crash = freshFs();
    const wal = await open(new SlowZeros(crash));
    const appended = new Map<number, Uint8Array>();
    let i = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (i < 600) {
          const bytes = payload(i++, 40 + (i % 200));
          appended.set(await wal.append(bytes, { wait: 'durable' }), bytes);
        }
      }),
    );
    await wal.close();
    const again = await open(crash);
    assert.deepEqual(await payloads(again), new Map([...appended].sort(([a], [b]) => a - b)));
    await again.close();
  });

  it('a process crash with zeros ahead: recovery reports them as a zero tail, not a torn write', async () => {
    let fs = freshFs();
    const wal = await open(fs);
    await durableRecords(wal, 150);
    const tail = wal.tail;
    const length = fileLength(fs);
    assert.ok(length > tail, 'zeros ahead of the records');
    fs = fs.processCrash(); // killed: the log is never closed
    const reopened = await open(fs);
    try {
      const report = reopened.recovery;
      assert.equal(report.end, tail);
      assert.equal(report.records, 150);
      assert.equal(report.tear, undefined, 'no torn write');
      assert.equal(report.tornBytes, 0);
      assert.equal(report.zeroTail, length - tail);
      assert.equal(report.droppedFrames, 0);
      assert.equal(report.truncated, true);
      assert.equal(report.end + report.tornBytes + report.zeroTail, report.storeLength);
    } finally {
      await reopened.close();
    }
  });

  it('power loss with zeros ahead: every durable record survives, recovery cuts the zeros as a zero tail', async () => {
    const fs = freshFs();
    const wal = await open(fs);
    const lsns = await durableRecords(wal, 150);
    const durable = wal.durable;
    assert.ok(fileLength(fs) > durable);
    // Records written but not synced, into the zeros: pending at the power loss.
    for (let i = 0; i < 30; i++) wal.append(payload(1000 + i));
    await wal.waitFor(wal.tail - 108, 'written');
    let states = 0;
    let zeroTails = 0;
    for (const state of fs.crashStates({ seed: 11, limit: 40 })) {
      states++;
      const reopened = await open(state.fs());
      try {
        assert.ok(reopened.tail >= durable, state.description);
        const seen = await payloads(reopened);
        for (const [i, lsn] of lsns.entries()) assert.deepEqual(seen.get(lsn), payload(i));
        // What recovery cut past the intact records: zeros, or the records
        // written after the last sync (possibly torn), never anything else.
        const image = state.fs().snapshot();
        const flat = new Uint8Array(reopened.recovery.storeLength);
        for (const [path, bytes] of image.files) {
          const match = /(\d{20})\.wal$/.exec(path);
          if (match !== null) flat.set(bytes, Number(match[1]) * SEGMENT);
        }
        const cut = flat.subarray(reopened.tail);
        if (cut.length > 0 && isZeros(cut)) zeroTails++;
        // The report tells the zeros ending the store from the bytes before them.
        const zeros = cut.length - (cut.findLastIndex((byte) => byte !== 0) + 1);
        const report = reopened.recovery;
        assert.equal(report.zeroTail, zeros, state.description);
        assert.equal(report.tornBytes, cut.length - zeros, state.description);
        assert.equal(report.tear === undefined, report.tornBytes === 0, state.description);
      } finally {
        await reopened.close();
      }
    }
    assert.ok(states > 1 && zeroTails > 0, `${states} states, ${zeroTails} with zeros cut`);
    await wal.close();
  });

  it('a failed zero write turns preallocation off and loses nothing', async () => {
    const fs = new FaultFs(freshFs());
    const wal = await open(fs);
    const rule = fs.inject({
      method: 'pwrite',
      persistent: true,
      when: (call) => isZeros((call.args as [Uint8Array])[0]) && 'ENOSPC',
    });
    await durableRecords(wal, 300);
    assert.ok(rule.fired >= 1, 'a zero write failed');
    assert.equal(rule.fired, 1, 'and none was tried again');
    assert.equal(wal.failure, undefined);
    const tail = wal.tail;
    await wal.close();
    const again = await open(fs);
    assert.equal(again.tail, tail);
    assert.equal(again.recovery.records, 300);
    assert.equal(again.recovery.tornBytes, 0, 'close left no tail to cut');
    await again.close();
  });

  it('truncateAfter cuts the zeros with the records', async () => {
    const fs = freshFs();
    const wal = await open(fs);
    const lsns = await durableRecords(wal, 100, 1);
    assert.ok(fileLength(fs) > wal.tail);
    await wal.truncateAfter(lsns[49]!);
    assert.equal(fileLength(fs), lsns[50]);
    await durableRecords(wal, 20, 1);
    await wal.close();
    const again = await open(fs);
    assert.equal(again.recovery.records, 70);
    await again.close();
  });

  it('a read-only follower stops quietly at the zeros', async () => {
    const fs = freshFs();
    const wal = await open(fs);
    await durableRecords(wal, 50);
    assert.ok(fileLength(fs) > wal.tail);
    const follower = await open(fs, { readOnly: true });
    assert.equal(follower.written, wal.tail);
    await durableRecords(wal, 50);
    assert.equal(await follower.refresh(), wal.tail);
    assert.equal((await payloads(follower)).size, 100);
    await follower.close();
    await wal.close();
  });

  it('is off for a store passed in, and validates the option', async () => {
    const fs = freshFs();
    const { SegmentedStore } = await import('@wal/store');
    const wal = await Wal.open(await SegmentedStore.open(DIR, { fs, segmentSize: SEGMENT }));
    await durableRecords(wal, 100);
    assert.equal(fileLength(fs), wal.tail);
    await wal.close();
    await assert.rejects(open(fs, { preallocate: -1 }), isCode('ERR_OUT_OF_RANGE'));
    await assert.rejects(open(fs, { preallocate: 2 ** 31 }), isCode('ERR_OUT_OF_RANGE'));
    await assert.rejects(open(fs, { preallocate: '1' as never }), isCode('ERR_INVALID_ARG_TYPE'));
    const off = await open(fs, { preallocate: 0 });
    await durableRecords(off, 100);
    assert.equal(fileLength(fs), off.tail);
    await off.close();
  });
});
