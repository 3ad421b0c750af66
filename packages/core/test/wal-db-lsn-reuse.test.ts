// No LSN handed out twice by either implementation reading the same files
// (FORMAT.md §3.2). wal-db 1.x takes a segmented log's end from its
// highest-numbered segment file; every layout this log leaves behind — after
// a prefix or suffix truncation landing on a segment boundary, after a
// writable open that deletes leftover segments, in every state a power loss
// can leave in between — must give wal-db the same end as ours. The files are
// read by `walDbView`, which follows wal-db's rules, not our scan.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SegmentedStore, segmentName } from '@wal/store';
import { CrashFs } from '@wal/store/testing';
import fc from 'fast-check';
import { Wal } from '../src/index.js';
import { tick } from './helpers.js';
import { filesIn, filesOfImage, walDbHeadFile, walDbView } from './wal-db-reader.js';

const SEGMENT = 4096;
/** A payload whose frame fills a whole segment. */
const FULL = SEGMENT - 8;

function payload(size: number, tag: number): Buffer {
  const out = Buffer.alloc(size);
  for (let i = 0; i < size; i++) out[i] = (tag * 13 + i * 7 + 1) & 0xff;
  return out;
}

async function lsnsOf(wal: Wal): Promise<number[]> {
  const out: number[] = [];
  for await (const record of wal.iterate()) out.push(record.lsn);
  return out;
}

/** wal-db's next LSN for the log in `dir` equals `tail`, and it sees exactly `lsns`. */
function assertSameEnd(dir: string, tail: number, lsns: readonly number[], when: string): void {
  const view = walDbView(filesIn(dir), SEGMENT);
  assert.equal(view.next, tail, `${when}: wal-db would append at ${view.next}, @wal at ${tail}`);
  assert.deepEqual(view.lsns, lsns, `${when}: wal-db sees other records`);
}

describe('no LSN reuse by wal-db 1.x reading our files (FORMAT.md §3.2)', () => {
  let root: string;
  let dir: string;

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'wal-db-end-'));
    dir = join(root, 'log');
  });

  afterEach(() => {
    rmSync(root, { recursive: true, force: true });
  });

  it('truncateBefore(tail) on a segment boundary keeps an empty segment at the tail', async () => {
    const wal = await Wal.open(dir, { segmentSize: SEGMENT });
    try {
      await wal.append(payload(FULL, 1));
      await wal.append(payload(FULL, 2), { wait: 'durable' });
      assert.equal(wal.tail, 2 * SEGMENT);
      await wal.truncateBefore(wal.tail);
      assert.equal(wal.head, 2 * SEGMENT);
      assert.deepEqual(
        readdirSync(dir).filter((name) => name.endsWith('.wal')),
        [segmentName(2)],
      );
      assertSameEnd(dir, 2 * SEGMENT, [], 'after the truncation');
    } finally {
      await wal.close();
    }
    assertSameEnd(dir, 2 * SEGMENT, [], 'after close');
    const again = await Wal.open(dir);
    try {
      assert.equal(again.tail, 2 * SEGMENT);
      assert.equal(await again.append(payload(10, 3), { wait: 'durable' }), 2 * SEGMENT);
      assertSameEnd(dir, 2 * SEGMENT + 18, [2 * SEGMENT], 'after the next append');
    } finally {
      await again.close();
    }
  });

  it("a writable open of wal-db's own layout after truncate_before(tail) keeps its end", async () => {
    // wal-db keeps the last full segment (k-1) and records the head k·S.
    mkdirSync(dir);
    const frame = Buffer.alloc(SEGMENT);
    const written = await Wal.open(join(root, 'source'), { segmentSize: SEGMENT, preallocate: 0 });
    await written.append(payload(FULL, 1), { wait: 'durable' });
    await written.append(payload(FULL, 2), { wait: 'durable' });
    await written.close();
    const source = filesIn(join(root, 'source'));
    source.get(segmentName(1))!.copy(frame);
    writeFileSync(join(dir, segmentName(1)), frame);
    writeFileSync(join(dir, 'head'), walDbHeadFile(2 * SEGMENT));
    assertSameEnd(dir, 2 * SEGMENT, [], 'the fixture');

    const wal = await Wal.open(dir, { segmentSize: SEGMENT });
    try {
      assert.equal(wal.head, 2 * SEGMENT);
      assert.equal(wal.tail, 2 * SEGMENT);
      // The leftover segment 1 lay wholly below the head: deleted, but only
      // after the empty segment 2 marks the end.
      assert.deepEqual(
        readdirSync(dir).filter((name) => name.endsWith('.wal')),
        [segmentName(2)],
      );
      assertSameEnd(dir, 2 * SEGMENT, [], 'after the open');
    } finally {
      await wal.close();
    }
  });

  it('recovery cutting every record after a head on a boundary keeps the end', async () => {
    // A torn frame alone after the head 2·S: recovery truncates to the head.
    mkdirSync(dir);
    const torn = Buffer.alloc(100, 0x5a);
    writeFileSync(join(dir, segmentName(2)), torn);
    writeFileSync(join(dir, 'head'), walDbHeadFile(2 * SEGMENT));
    const wal = await Wal.open(dir, { segmentSize: SEGMENT });
    try {
      assert.equal(wal.tail, 2 * SEGMENT);
      assert.equal(wal.recovery.tornBytes, 100);
      assertSameEnd(dir, 2 * SEGMENT, [], 'after recovery');
    } finally {
      await wal.close();
    }
  });

  it('SegmentedStore.truncate to a head on a segment boundary keeps an empty segment there', async () => {
    const store = await SegmentedStore.open(dir, { segmentSize: SEGMENT });
    try {
      await store.write(0, new Uint8Array(3 * SEGMENT).fill(7));
      await store.sync();
      await store.truncateBefore(2 * SEGMENT);
      await store.truncate(2 * SEGMENT);
      assert.equal(store.length, 2 * SEGMENT);
      const view = walDbView(filesIn(dir), SEGMENT);
      assert.equal(view.end, 2 * SEGMENT);
      assert.equal(view.head, 2 * SEGMENT);
    } finally {
      await store.close();
    }
    const again = await SegmentedStore.open(dir);
    try {
      assert.equal(again.length, 2 * SEGMENT);
      assert.equal(again.head, 2 * SEGMENT);
    } finally {
      await again.close();
    }
  });

  it('any sequence of appends, truncations and reopens: wal-db derives our tail (property)', async () => {
    // Frame sizes that divide the segment size make the tail land on
    // segment boundaries often; odd sizes make it land anywhere.
    const sizes = [56, 120, 248, 504, 1016, 2040, FULL, 0, 13, 3000, 9000];
    const op = fc.oneof(
      fc.record({
        kind: fc.constant('append' as const),
        sizes: fc.array(fc.constantFrom(...sizes), { minLength: 1, maxLength: 6 }),
      }),
      fc.record({ kind: fc.constant('before' as const), at: fc.nat() }),
      fc.record({ kind: fc.constant('beforeTail' as const) }),
      fc.record({ kind: fc.constant('after' as const), at: fc.nat() }),
      fc.record({ kind: fc.constant('reopen' as const) }),
    );
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 12 }), async (ops) => {
        const path = join(root, `run-${run++}`);
        let wal = await Wal.open(path, { segmentSize: SEGMENT });
        let lsns: number[] = [];
        let tag = 0;
        try {
          for (const step of ops) {
            switch (step.kind) {
              case 'append':
                for (const size of step.sizes) lsns.push(wal.append(payload(size, tag++)));
                await wal.sync();
                break;
              case 'before': {
                const keep = lsns.length === 0 ? wal.tail : lsns[step.at % lsns.length]!;
                await wal.truncateBefore(keep);
                lsns = lsns.filter((lsn) => lsn >= keep);
                break;
              }
              case 'beforeTail':
                await wal.truncateBefore(wal.tail);
                lsns = [];
                break;
              case 'after': {
                if (lsns.length === 0) break;
                const keep = lsns[step.at % lsns.length]!;
                await wal.truncateAfter(keep);
                lsns = lsns.filter((lsn) => lsn <= keep);
                break;
              }
              case 'reopen':
                await wal.close();
                wal = await Wal.open(path);
                break;
            }
            assert.deepEqual(await lsnsOf(wal), lsns);
            assertSameEnd(path, wal.tail, lsns, `after ${step.kind}`);
          }
        } finally {
          await wal.close();
        }
        assertSameEnd(path, wal.tail, lsns, 'after close');
      }),
      { numRuns: 60 },
    );
  });

  it('a single file after truncateBefore: wal-db shows the dropped records again, at the same LSNs (FORMAT §5.3)', async () => {
    const path = join(root, 'single.log');
    const wal = await Wal.open(path, { layout: 'file', preallocate: 0 });
    const lsns: number[] = [];
    try {
      for (let i = 0; i < 3; i++) lsns.push(wal.append(payload(100 + i, i)));
      await wal.sync();
      await wal.truncateBefore(lsns[2]!);
      assert.deepEqual(await lsnsOf(wal), [lsns[2]]);
    } finally {
      await wal.close();
    }
    // wal-db reads a single file from offset 0 and ignores `<path>.meta`,
    // where the head lives: the hazard FORMAT §5.3 documents. The end is the
    // same, so still no LSN is handed out twice.
    const view = walDbView(
      new Map([[segmentName(0), readFileSync(path)]]),
      Number.MAX_SAFE_INTEGER,
    );
    assert.deepEqual(view.lsns, lsns);
    assert.equal(view.next, wal.tail);
  });

  it('every state a power loss leaves during truncateBefore(tail) on a boundary gives wal-db the same end', async () => {
    const location = '/data/log';
    const fs = new CrashFs({
      sectorSize: 512,
      image: { files: new Map(), dirs: new Set(['/data']) },
    });
    const wal = await Wal.open(location, { fs, segmentSize: SEGMENT, preallocate: 0 });
    const tail = 3 * SEGMENT;
    try {
      for (let i = 0; i < 3; i++) wal.append(payload(FULL, i));
      await wal.sync();
      assert.equal(wal.tail, tail);
      let settled = false;
      const truncation = wal.truncateBefore(tail).finally(() => {
        settled = true;
      });
      let states = 0;
      const check = (): void => {
        for (const state of fs.crashStates({ limit: 200 })) {
          const view = walDbView(filesOfImage(state.files, location), SEGMENT);
          assert.equal(
            view.next,
            tail,
            `state ${state.description}: wal-db would append at ${view.next}`,
          );
          assert.ok(
            view.head === 0 || view.head === tail,
            `state ${state.description}: head ${view.head}`,
          );
          states++;
        }
      };
      while (!settled) {
        check();
        await tick();
      }
      await truncation;
      check();
      assert.ok(states > 20, `only ${states} states checked`);
    } finally {
      await wal.close();
    }
  });
});
