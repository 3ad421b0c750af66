// Opening a segmented directory whose metadata records no segment size (a
// wal-db 1.x log, or one whose metadata was lost): the `segmentSize` option
// alone says where each byte is, so the open checks it against the segment
// files before relying on it, and a size that does not fit is refused with
// every file left as it was (FORMAT.md §5.3). Also: the head and metadata
// files are size-checked before they are read (FORMAT.md §4, §5.1).
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errorCode } from '@wal/errors';
import fc from 'fast-check';
import { decodeHead, encodeHead } from '../src/head-file.js';
import {
  FileStore,
  type FsFile,
  NodeFs,
  type OpenMode,
  SegmentedStore,
  segmentName,
} from '../src/index.js';
import { encodeMeta } from '../src/meta-file.js';
import { CrashFs, type CrashStates } from '../src/testing/crash-fs.js';
import { systemError } from '../src/testing/fault-fs.js';
import { pattern, RecordingFs, rejectsCode, removeTempDirs, tempDir, tick } from './fs-helpers.js';

const DIR = '/data/log';

/**
 * A segmented directory without metadata as a log written with segment size
 * `real` leaves it: `length` bytes from offset 0 (every segment full but the
 * highest), a head file naming 0, optionally without segment `missing`.
 */
function metaless(real: number, length: number, missing?: number): Map<string, Uint8Array> {
  const bytes = pattern(length, real);
  const files = new Map<string, Uint8Array>([[`${DIR}/head`, encodeHead(0)]]);
  for (let index = 0; index * real < length; index++) {
    if (index === missing) continue;
    files.set(`${DIR}/${segmentName(index)}`, bytes.slice(index * real, (index + 1) * real));
  }
  return files;
}

/**
 * A segmented directory without metadata holding segments 0.. with the given
 * sizes, as a log written with segment size `real` leaves it after a power
 * loss (a lower segment shorter than `real` lost its tail): segment `k` holds
 * the first `sizes[k]` bytes of `pattern(…)` from offset `k·real`.
 */
function torn(real: number, sizes: readonly number[]): Map<string, Uint8Array> {
  const bytes = pattern(sizes.length * real, real);
  const files = new Map<string, Uint8Array>([[`${DIR}/head`, encodeHead(0)]]);
  sizes.forEach((size, index) => {
    files.set(`${DIR}/${segmentName(index)}`, bytes.slice(index * real, index * real + size));
  });
  return files;
}

/** The bytes a reader with the right segment size sees: zeros past a torn segment's end. */
function tornView(real: number, sizes: readonly number[]): Uint8Array {
  const bytes = pattern(sizes.length * real, real);
  const length = (sizes.length - 1) * real + sizes.at(-1)!;
  const out = new Uint8Array(length);
  sizes.forEach((size, index) => {
    out.set(bytes.subarray(index * real, index * real + size), index * real);
  });
  return out;
}

/** Segment sizes as a log with segment size `real` leaves them: lower ones full or torn (0 to real − 1 bytes). */
const tornSizes = (real: number) =>
  fc
    .tuple(
      fc.array(fc.option(fc.integer({ min: 0, max: real - 1 }), { freq: 2 }), {
        minLength: 1,
        maxLength: 5,
      }),
      fc.integer({ min: 0, max: real }),
    )
    .map(([lower, highest]) => [...lower.map((size) => size ?? real), highest]);

function crashFs(files: Map<string, Uint8Array>): CrashFs {
  return new CrashFs({ image: { files, dirs: new Set(['/data', DIR]) } });
}

/** Every file with its bytes, and every directory: what must stay as it was. */
function contents(fs: CrashFs): string[] {
  const { files, dirs } = fs.snapshot();
  return [
    ...[...dirs].map((dir) => `${dir}/`),
    ...[...files].map(([path, bytes]) => `${path} ${Buffer.from(bytes).toString('hex')}`),
  ].sort();
}

/** Opens writable, then read-only, with `segmentSize`; returns both errors (`undefined` when it opened). */
async function openBoth(fs: CrashFs, segmentSize: number): Promise<unknown[]> {
  const errors: unknown[] = [];
  for (const readOnly of [false, true]) {
    try {
      const store = await SegmentedStore.open(DIR, { fs, segmentSize, readOnly });
      await store.close();
      errors.push(undefined);
    } catch (error) {
      errors.push(error);
    }
  }
  return errors;
}

/** Asserts that opening with `given`, writable and read-only, is refused with `reason`, names no size and changes nothing. */
async function refusedNamingNoSize(fs: CrashFs, given: number, reason: RegExp): Promise<void> {
  const before = contents(fs);
  for (const error of await openBoth(fs, given)) {
    assert.equal(errorCode(error), 'ERR_INVALID_ARG_VALUE', String(error));
    assert.match((error as Error).message, reason);
    assert.doesNotMatch((error as Error).message, /fit a segment size/);
  }
  assert.deepEqual(contents(fs), before);
}

/**
 * Over NodeFs: a log with 4096-byte segments that `fill` writes, its `meta`
 * file then removed (as wal-db leaves a directory); `snapshot` lists every
 * file of it with its bytes.
 */
async function metalessDir(fill: (store: SegmentedStore) => Promise<void>) {
  const dir = join(await tempDir(), 'log');
  const writer = await SegmentedStore.open(dir, { segmentSize: 4096 });
  await fill(writer);
  await writer.close();
  await rm(join(dir, 'meta'));
  const snapshot = async () => {
    const names = (await readdir(dir)).sort();
    return Promise.all(names.map(async (name) => [name, await readFile(join(dir, name))]));
  };
  return { dir, snapshot };
}

describe('SegmentedStore: the segment size of a directory without metadata', () => {
  after(removeTempDirs);

  it('full segments and a size other than theirs: refused, writable and (when the files name a size) read-only, nothing changed', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 600 }),
        fc.integer({ min: 2, max: 6 }),
        fc.integer({ min: 1, max: 600 }),
        fc.integer({ min: 1, max: 1200 }),
        async (real, segments, highest, given) => {
          fc.pre(given !== real);
          const length = (segments - 1) * real + Math.min(highest, real);
          const fs = crashFs(metaless(real, length));
          const before = contents(fs);
          // Two full segments below the highest show the size; one does not (it may be torn).
          const named = segments - 1 >= 2;
          const [writable, readOnly] = await openBoth(fs, given);
          assert.equal(readOnly === undefined, given > real && !named, String(readOnly));
          for (const error of readOnly === undefined ? [writable] : [writable, readOnly]) {
            assert.equal(errorCode(error), 'ERR_INVALID_ARG_VALUE', String(error));
            const message = (error as Error).message;
            assert.match(message, /does not match the segment files/);
            assert.ok(message.includes(`segment ${segmentName(0)} holds ${real} bytes`), message);
            assert.ok(message.includes(`the segment size ${given} given`), message);
            assert.equal(message.includes(`fit a segment size of ${real}.`), named, message);
            assert.equal(/fit a segment size/.test(message), named, message);
          }
          assert.deepEqual(contents(fs), before);
          // No lock left behind, and the right size opens every byte.
          const store = await SegmentedStore.open(DIR, { fs, segmentSize: real });
          assert.equal(store.length, length);
          assert.deepEqual(await store.read(0, length), pattern(length, real));
          await store.close();
        },
      ),
      { numRuns: 150 },
    );
  });

  it('torn segments below the highest: the right size opens them (zeros past a tear), a wrong one is refused', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc
          .integer({ min: 1, max: 600 })
          .chain((real) =>
            fc.tuple(
              fc.constant(real),
              tornSizes(real),
              fc.oneof(fc.constant(real), fc.integer({ min: 1, max: 1200 })),
            ),
          ),
        async ([real, sizes, given]) => {
          const fs = crashFs(torn(real, sizes));
          const before = contents(fs);
          const lower = sizes.slice(0, -1);
          const largest = Math.max(...sizes);
          const named = largest > 0 && lower.filter((size) => size === largest).length >= 2;
          const larger = sizes.some((size) => size > given);
          const unproven = !lower.includes(given);
          const [writable, readOnly] = await openBoth(fs, given);
          if (larger || unproven) {
            assert.equal(errorCode(writable), 'ERR_INVALID_ARG_VALUE', String(writable));
            const message = (writable as Error).message;
            assert.equal(message.includes(`fit a segment size of ${largest}.`), named, message);
            assert.equal(/fit a segment size/.test(message), named, message);
          } else {
            assert.equal(writable, undefined, String(writable));
          }
          if (larger || (unproven && named)) {
            assert.equal(errorCode(readOnly), 'ERR_INVALID_ARG_VALUE', String(readOnly));
          } else {
            assert.equal(readOnly, undefined, String(readOnly));
          }
          if (writable !== undefined) assert.deepEqual(contents(fs), before);
          if (given !== real || readOnly !== undefined) return;
          // The right size reads each segment where it belongs, zeros past a tear.
          const view = tornView(real, sizes);
          for (const readOnly of writable === undefined ? [true, false] : [true]) {
            const store = await SegmentedStore.open(DIR, { fs, segmentSize: real, readOnly });
            assert.equal(store.length, view.length);
            assert.deepEqual(await store.read(0, view.length), view);
            await store.close();
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('the reported cases: 4096-byte segments opened with 16384 or with 2048', async () => {
    for (const [given, length] of [
      [16384, 4 * 4096 + 3776],
      [2048, 4 * 4096 + 752],
    ] as const) {
      const fs = crashFs(metaless(4096, length));
      const before = contents(fs);
      const [writable, readOnly] = await openBoth(fs, given);
      for (const error of [writable, readOnly]) {
        assert.equal(errorCode(error), 'ERR_INVALID_ARG_VALUE');
        assert.ok(error instanceof TypeError);
        assert.match((error as Error).message, /the files fit a segment size of 4096\. Nothing/);
      }
      assert.deepEqual(contents(fs), before);
      assert.ok(!fs.snapshot().files.has(`${DIR}/meta`));
    }
  });

  it('torn middle segments with 4096 (DESIGN §3): open writable and read-only; a lone short lower segment proves nothing', async () => {
    for (const sizes of [
      [4096, 3000, 100],
      [4096, 0, 50],
    ]) {
      const fs = crashFs(torn(4096, sizes));
      assert.deepEqual(await openBoth(fs, 4096), [undefined, undefined]);
    }
    // [3000, 100]: a torn segment 0 of 4096-byte segments, or full 3000-byte
    // segments. Writable is refused without suggesting 3000; read-only opens.
    const fs = crashFs(torn(4096, [3000, 100]));
    const before = contents(fs);
    const [writable, readOnly] = await openBoth(fs, 4096);
    assert.equal(errorCode(writable), 'ERR_INVALID_ARG_VALUE');
    const message = (writable as Error).message;
    assert.match(message, /no segment below the highest holds exactly the segment size 4096 given/);
    assert.match(message, /pass the segment size the log was written with/);
    assert.doesNotMatch(message, /fit a segment size|size of 3000/);
    assert.equal(readOnly, undefined);
    assert.deepEqual(contents(fs), before);
  });

  it('one segment only: larger than the size given is refused, no size named', async () => {
    const fs = crashFs(metaless(5000, 3000));
    await refusedNamingNoSize(fs, 2048, /holds 3000 bytes, more than the segment size 2048/);
    // Any size from 3000 up fits one segment of 3000 bytes: nothing tells them apart.
    assert.deepEqual(await openBoth(fs, 3000), [undefined, undefined]);
  });

  it('a highest segment larger than those below it: the size is refused, the size of the highest not named', async () => {
    const grown = metaless(1000, 2500);
    grown.set(`${DIR}/${segmentName(2)}`, pattern(1200, 9));
    await refusedNamingNoSize(
      crashFs(grown),
      1000,
      /holds 1200 bytes, more than the segment size 1000/,
    );
  });

  it('a missing segment between others is not a size mismatch: it reads as zeros (FORMAT.md §3)', async () => {
    const fs = crashFs(metaless(1000, 3500, 1));
    assert.deepEqual(await openBoth(fs, 1000), [undefined, undefined]);
    const store = await SegmentedStore.open(DIR, { fs, readOnly: true });
    assert.equal(store.length, 3500);
    assert.deepEqual(await store.read(1000, 1000), new Uint8Array(1000));
    assert.deepEqual(await store.read(2000, 1500), pattern(3500, 1000).subarray(2000));
    await store.close();
  });

  it('a segment gone since the listing is skipped; any other failure to open one rejects', async () => {
    const fs = crashFs(metaless(1000, 2500));
    const phantom = `${DIR}/${segmentName(7)}`;
    // Listed but gone (a writer truncating while a reader opens): not measured.
    class Listing extends RecordingFs {
      override async readdir(path: string): Promise<string[]> {
        return [...(await super.readdir(path)), segmentName(7)];
      }
      override open(path: string, mode: OpenMode): Promise<FsFile> {
        if (path === phantom) return Promise.reject(systemError('ENOENT', 'open', path));
        if (path.endsWith(segmentName(1)) && this.denied) {
          return Promise.reject(systemError('EACCES', 'open', path));
        }
        return super.open(path, mode);
      }
      denied = false;
    }
    const listing = new Listing(fs);
    const store = await SegmentedStore.open(DIR, {
      fs: listing,
      segmentSize: 1000,
      readOnly: true,
    });
    assert.equal(store.length, 2500);
    await store.close();
    listing.denied = true;
    const before = contents(fs);
    await rejectsCode(
      SegmentedStore.open(DIR, { fs: listing, segmentSize: 1000, readOnly: true }),
      'WAL_IO',
    );
    assert.deepEqual(contents(fs), before);
  });

  it('once the metadata records the size, a different option is refused before anything changes', async () => {
    const files = metaless(4096, 3 * 4096 + 10);
    files.set(`${DIR}/meta`, encodeMeta({ 'store.segmentSize': 4096 }));
    const fs = crashFs(files);
    const before = contents(fs);
    for (const error of await openBoth(fs, 8192)) {
      assert.equal(errorCode(error), 'ERR_INVALID_ARG_VALUE');
      assert.match((error as Error).message, /differs from the segment size 4096/);
    }
    assert.deepEqual(contents(fs), before);
  });

  it('over NodeFs: refused, the listing and every byte as they were, no lock file ever created and nothing fsynced', async () => {
    const { dir, snapshot } = await metalessDir((writer) =>
      writer.write(0, pattern(4 * 4096 + 752, 3)),
    );
    const before = await snapshot();
    for (const readOnly of [false, true]) {
      const fs = new OpenModeFs(new NodeFs());
      await rejectsCode(
        SegmentedStore.open(dir, { fs, segmentSize: 2048, readOnly }),
        'ERR_INVALID_ARG_VALUE',
      );
      assertOnlyRead(fs);
    }
    assert.deepEqual(await snapshot(), before);
  });
});

/** A {@link RecordingFs} that also records the mode of every open not for reading (`open-for-write …`). */
class OpenModeFs extends RecordingFs {
  override open(path: string, mode: OpenMode): Promise<FsFile> {
    if (mode !== 'read') this.log.push(`open-for-${mode} ${path}`);
    return super.open(path, mode);
  }
}

/**
 * Asserts that the calls `fs` saw only read: no lock taken (no lock file
 * created), no file opened to write or create, no directory made or
 * fsynced, no file written, cut, renamed or removed.
 */
function assertOnlyRead(fs: OpenModeFs): void {
  const reading = new Set(['open', 'close', 'pread', 'size', 'readdir']);
  const changing = fs.log.filter((entry) => !reading.has(entry.split(' ')[0]!));
  assert.deepEqual(changing, []);
  assert.ok(fs.count('readdir') > 0); // it did look
}

/** Records, by path, the largest buffer a `pread` was given. */
class ReadSizeFs extends RecordingFs {
  readonly largest = new Map<string, number>();
  override pread(file: FsFile, into: Uint8Array, position: number): Promise<number> {
    this.largest.set(file.path, Math.max(this.largest.get(file.path) ?? 0, into.length));
    return super.pread(file, into, position);
  }
}

describe('head and metadata files larger than they can be', () => {
  after(removeTempDirs);
  const HUGE = 256 * 1024 * 1024; // sparse: no test allocates it

  for (const readOnly of [false, true]) {
    it(`SegmentedStore${readOnly ? ', read-only' : ''}: WAL_CORRUPTION before anything is read from them`, async () => {
      const dir = join(await tempDir(), 'log');
      const writer = await SegmentedStore.open(dir, { segmentSize: 4096 });
      await writer.write(0, pattern(10, 1));
      await writer.close();
      for (const [name, limit] of [
        ['head', 12],
        ['meta', 16 + 64 * 1024 + 4096],
      ] as const) {
        const path = join(dir, name);
        const original = await readFile(path);
        for (const size of [limit + 1, HUGE]) {
          await truncate(path, size);
          const fs = new ReadSizeFs(new NodeFs());
          const error = await rejectsCode(
            SegmentedStore.open(dir, { fs, readOnly }),
            'WAL_CORRUPTION',
          );
          assert.ok(error.message.includes(`${path} is damaged: it holds ${size} bytes`));
          const largest = fs.largest.get(path) ?? 0;
          assert.ok(largest <= limit, `read ${largest} bytes of ${name} at once`);
        }
        const { writeFile } = await import('node:fs/promises');
        await writeFile(path, original);
        // At the limit the file is read (and judged on its contents).
        const fs = new ReadSizeFs(new NodeFs());
        const store = await SegmentedStore.open(dir, { fs, readOnly });
        assert.equal(store.length, 10);
        await store.close();
      }
    });
  }

  it('FileStore: a metadata file larger than it can be is WAL_CORRUPTION, nothing read from it', async () => {
    const path = join(await tempDir(), 'log');
    const writer = await FileStore.open(path);
    await writer.write(0, pattern(10, 1));
    await writer.close();
    await truncate(`${path}.meta`, HUGE);
    for (const readOnly of [false, true]) {
      const fs = new ReadSizeFs(new NodeFs());
      const error = await rejectsCode(FileStore.open(path, { fs, readOnly }), 'WAL_CORRUPTION');
      assert.ok(error.message.includes(`${path}.meta is damaged: it holds ${HUGE} bytes`));
      const largest = fs.largest.get(`${path}.meta`) ?? 0;
      assert.ok(largest <= 16 + 64 * 1024 + 4096, `read ${largest} bytes at once`);
    }
  });
});

/**
 * A directory without metadata holding one segment file, `index`, with the
 * bytes `[index·real, index·real + size)` of a log written with segment size
 * `real`, and a head file naming `head` (none when `head` is undefined).
 */
function single(real: number, index: number, size: number, head?: number) {
  const bytes = pattern((index + 1) * real, real);
  const files = new Map<string, Uint8Array>();
  if (head !== undefined) files.set(`${DIR}/head`, encodeHead(head));
  const start = index * real;
  files.set(`${DIR}/${segmentName(index)}`, bytes.slice(start, start + size));
  return files;
}

/**
 * One segment file `index` of `size` bytes and head `head` hold together
 * under `segmentSize`: the head lies within the bytes the file holds
 * (FORMAT.md §5.3). What the open must accept, and all it may accept.
 */
const headWithin = (index: number, size: number, head: number, segmentSize: number) =>
  head >= index * segmentSize && head <= index * segmentSize + size;

/** A writer's single-segment layouts with segment size `real`: the head within the segment's bytes, or no head file with segment 0. */
const singleLayouts = fc
  .record({
    real: fc.integer({ min: 1, max: 600 }),
    index: fc.integer({ min: 0, max: 5 }),
    fill: fc.oneof(fc.constant(1), fc.double({ min: 0, max: 1, noNaN: true })),
    // 1 with a full segment: wal-db's layout after truncate_before(tail) on a boundary.
    at: fc.oneof(fc.constantFrom(0, 1), fc.double({ min: 0, max: 1, noNaN: true })),
    headFile: fc.boolean(),
  })
  .map(({ real, index, fill, at, headFile }) => {
    const size = Math.floor(fill * real);
    const head = index * real + Math.floor(at * size);
    return { real, index, size, head: headFile || index > 0 ? head : undefined };
  });

describe('SegmentedStore: one segment file and the head file, without metadata', () => {
  after(removeTempDirs);

  it('a head outside the only segment under the size given: refused, writable and read-only, every file unchanged (NodeFs)', async () => {
    // Written with 4096-byte segments; a prefix truncation left segment 2 alone.
    const length = 2 * 4096 + 1000;
    const head = 2 * 4096 + 100;
    const { dir, snapshot } = await metalessDir(async (writer) => {
      await writer.write(0, pattern(length, 5));
      await writer.sync();
      await writer.truncateBefore(head);
    });
    const before = await snapshot();
    assert.deepEqual(
      before.map(([name]) => name),
      [segmentName(2), 'head'],
    );
    const passSize = 'pass the segment size the log was written with';
    for (const [given, reason, why, advice] of [
      // Segment 2 would hold [4096, 5096]: wholly below the head, deleted by the open.
      [
        2048,
        `names the head ${head}, past the end of segment ${segmentName(2)}, the only segment file, which with the segment size 2048 given would hold the bytes [4096, 5096]; the head must lie in [4096, 5096]`,
        'wholly below the head',
        `either 2048 is not the segment size the log was written with (then pass that size), or it is and a wal-db power loss left ${segmentName(2)} holding only bytes below the head (the repair loses none of them: whatever the power loss took from the head on is gone either way); then, to open the log, create segment ${segmentName(4)} holding 100 zero bytes, then remove ${segmentName(2)}, so that a segment file reaches the head`,
      ],
      // [6000, 7000]: past its end, the head would have nothing below it.
      [
        3000,
        `names the head ${head}, past the end of segment ${segmentName(2)}`,
        'the bytes below the head would be missing',
        `then, to open the log, extend ${segmentName(2)} with zeros to 2292 bytes, so that a segment file reaches the head`,
      ],
      // [16384, 17384]: above the head, which would read zeros and be cut there.
      [
        8192,
        `names the head ${head}, below segment ${segmentName(2)}`,
        'no file would hold the bytes from the head on',
        passSize,
      ],
    ] as const) {
      for (const readOnly of [false, true]) {
        const fs = new OpenModeFs(new NodeFs());
        const error = await rejectsCode(
          SegmentedStore.open(dir, { fs, segmentSize: given, readOnly }),
          'ERR_INVALID_ARG_VALUE',
        );
        assert.ok(error instanceof TypeError);
        assert.ok(
          error.message.includes(`the head file ${join(dir, 'head')} ${reason}`),
          error.message,
        );
        assert.ok(error.message.includes(why), error.message);
        assert.ok(error.message.includes(advice), error.message);
        assert.equal(error.message.includes(passSize), advice === passSize, error.message);
        assert.match(error.message, /does not match the segment files .* Nothing was changed\./);
        assertOnlyRead(fs);
        assert.deepEqual(await snapshot(), before, `${given}${readOnly ? ', read-only' : ''}`);
      }
    }
    // The right size still opens every live byte.
    const store = await SegmentedStore.open(dir, { segmentSize: 4096 });
    assert.equal(store.head, head);
    assert.equal(store.length, length);
    assert.deepEqual(await store.read(head, length - head), pattern(length, 5).subarray(head));
    await store.close();
  });

  it('every layout a writer leaves opens with its size; another size opens only when the head lies within the segment under it, and never deletes or changes the segment then', async () => {
    await fc.assert(
      fc.asyncProperty(singleLayouts, fc.integer({ min: 1, max: 1200 }), async (layout, given) => {
        const { real, index, size, head } = layout;
        const files = single(real, index, size, head);
        const segment = `${DIR}/${segmentName(index)}`;
        const fs = crashFs(files);
        const before = contents(fs);
        assert.deepEqual(await openBoth(crashFs(files), real), [undefined, undefined]);
        const fits = size <= given && headWithin(index, size, head ?? 0, given);
        const [writable, readOnly] = await openBoth(fs, given);
        if (!fits) {
          for (const error of [writable, readOnly]) {
            assert.equal(errorCode(error), 'ERR_INVALID_ARG_VALUE', String(error));
          }
          assert.deepEqual(contents(fs), before);
          return;
        }
        assert.deepEqual([writable, readOnly], [undefined, undefined]);
        // wal-db's layout after truncate_before(tail) on a boundary (the full
        // segment k−1, the head k·S) is the one accepted state whose segment
        // lies below the head: the open replaces it by the empty segment k.
        const belowHead = (index + 1) * given <= (head ?? 0);
        assert.equal(belowHead, size === given && head === (index + 1) * given);
        const after = fs.snapshot().files.get(segment);
        if (belowHead) assert.equal(after, undefined);
        else assert.deepEqual(after, files.get(segment));
      }),
      { numRuns: 400 },
    );
  });
});

/**
 * Runs `operation` over `fs`, pushing onto `snapshots` the crash states
 * (up to 40 drawn) after every macrotask until it settles.
 */
async function crashStatesDuring(
  fs: CrashFs,
  operation: () => Promise<unknown>,
  snapshots: CrashStates[],
): Promise<void> {
  let settled = false;
  const promise = operation().finally(() => {
    settled = true;
  });
  for (;;) {
    snapshots.push(fs.crashStates({ seed: snapshots.length + 1, limit: 40 }));
    if (settled) break;
    await tick();
  }
  await promise;
}

/** The end a wal-db 1.x reader derives: the end of the highest segment file, 0 without one (FORMAT.md §3.2). */
function walDbEnd(files: ReadonlyMap<string, Uint8Array>, segmentSize: number): number {
  let end = 0;
  for (const [path, bytes] of files) {
    const index = path.startsWith(`${DIR}/`) ? segmentIndexOf(path.slice(DIR.length + 1)) : -1;
    if (index >= 0) end = Math.max(end, index * segmentSize + bytes.length);
  }
  return end;
}

/** The index a segment file name stands for, -1 for any other name. */
function segmentIndexOf(name: string): number {
  return /^\d{20}\.wal$/.test(name) ? Number(name.slice(0, 20)) : -1;
}

describe('SegmentedStore: a head file and no segment file, without metadata', () => {
  after(removeTempDirs);
  const S = 4096;

  for (const head of [2 * S + 100, 3 * S]) {
    it(`head ${head}: a writable open first creates the segment holding the head, reaching it; a read-only open changes nothing (NodeFs)`, async () => {
      const dir = join(await tempDir(), 'log');
      await mkdir(dir);
      await writeFile(join(dir, 'head'), encodeHead(head));
      const reader = await SegmentedStore.open(dir, { segmentSize: S, readOnly: true });
      assert.deepEqual([reader.head, reader.length], [head, head]);
      await reader.close();
      assert.deepEqual(await readdir(dir), ['head']);
      const store = await SegmentedStore.open(dir, { segmentSize: S });
      assert.deepEqual([store.head, store.length], [head, head]);
      const anchor = segmentName(Math.floor(head / S));
      assert.deepEqual((await readdir(dir)).sort(), [anchor, 'head', 'lock', 'meta']);
      // The end a wal-db reader derives from the highest segment file: the head.
      assert.deepEqual(await readFile(join(dir, anchor)), Buffer.alloc(head % S));
      await store.write(head, pattern(300, 1));
      await store.close();
      const again = await SegmentedStore.open(dir, { readOnly: true });
      assert.deepEqual(await again.read(head, 300), pattern(300, 1));
      await again.close();
    });
  }

  it('every power-loss state of that open opens with the size, writable and read-only; no segment file appears before the metadata; the next writable open makes the segment holding the head reach it', async () => {
    for (const head of [2 * S + 100, 3 * S]) {
      const fs = crashFs(new Map([[`${DIR}/head`, encodeHead(head)]]));
      const snapshots: CrashStates[] = [];
      await crashStatesDuring(
        fs,
        async () => (await SegmentedStore.open(DIR, { fs, segmentSize: S })).close(),
        snapshots,
      );
      const ends = new Set<number>();
      for (const states of snapshots) {
        for (const state of states) {
          // Without metadata, a segment file short of the head would be refused (§5.3).
          const end = walDbEnd(state.files, S);
          if (!state.files.has(`${DIR}/meta`)) assert.equal(end, 0, state.description);
          ends.add(end);
          const reopened = new CrashFs({
            image: { files: new Map(state.files), dirs: state.dirs },
          });
          assert.deepEqual(await openBoth(reopened, S), [undefined, undefined], state.description);
          assert.equal(walDbEnd(reopened.snapshot().files, S), head, state.description);
        }
      }
      // Among them: none yet, the anchor created but short of the head (off a boundary), and whole.
      const expected = head % S === 0 ? [0, head] : [0, head - (head % S), head];
      assert.deepEqual(
        [...ends].sort((a, b) => a - b),
        expected,
      );
    }
  });
});

describe('SegmentedStore: the segment a writable open makes reach the head is durable once the open resolves', () => {
  const S = 4096;

  it('a head file alone: every power-loss state right after the open holds the segment, reaching the head (its data and its directory entry synced)', async () => {
    for (const head of [2 * S + 100, 3 * S]) {
      const fs = crashFs(new Map([[`${DIR}/head`, encodeHead(head)]]));
      const store = await SegmentedStore.open(DIR, { fs, segmentSize: S });
      let states = 0;
      for (const state of fs.crashStates()) {
        states++;
        assert.equal(walDbEnd(state.files, S), head, state.description);
      }
      assert.ok(states > 0);
      await store.close();
    }
  });

  it('a segment holding the head but short of it: every such state holds it extended to the head, its bytes kept', async () => {
    // Segment 1 full, segment 2 holding 50 bytes, the head 100 bytes into segment 2.
    const head = 2 * S + 100;
    const kept = pattern(50, 7);
    const fs = crashFs(
      new Map([
        [`${DIR}/head`, encodeHead(head)],
        [`${DIR}/${segmentName(1)}`, pattern(S, 5)],
        [`${DIR}/${segmentName(2)}`, kept],
      ]),
    );
    const store = await SegmentedStore.open(DIR, { fs, segmentSize: S });
    let states = 0;
    for (const state of fs.crashStates()) {
      states++;
      const segment = state.files.get(`${DIR}/${segmentName(2)}`);
      assert.ok(segment !== undefined, state.description);
      assert.equal(segment.length, 100, state.description);
      assert.deepEqual(segment.subarray(0, 50), kept, state.description);
      assert.equal(walDbEnd(state.files, S), head, state.description);
    }
    assert.ok(states > 0);
    await store.close();
  });
});

describe('SegmentedStore: one segment file holding only bytes below the head, as a wal-db power loss leaves it', () => {
  after(removeTempDirs);
  const S = 4096;

  for (const { what, size, head, repair } of [
    {
      what: 'segment 1 holding 1000 bytes, the head 6096',
      size: 1000,
      head: 6096,
      repair: async (dir: string) => truncate(join(dir, segmentName(1)), 2000),
    },
    {
      what: 'segment 1 full, the head 8292 (its segment 2 lost)',
      size: S,
      head: 2 * S + 100,
      repair: async (dir: string) => {
        await writeFile(join(dir, segmentName(2)), Buffer.alloc(100));
        await rm(join(dir, segmentName(1)));
      },
    },
  ]) {
    it(`${what}: refused with its own size too, naming the repair; once repaired as named, it opens at the head and wal-db finds the end there`, async () => {
      const dir = join(await tempDir(), 'log');
      await mkdir(dir);
      await writeFile(join(dir, 'head'), encodeHead(head));
      await writeFile(join(dir, segmentName(1)), pattern(size, 9));
      for (const readOnly of [false, true]) {
        const error = await rejectsCode(
          SegmentedStore.open(dir, { segmentSize: S, readOnly }),
          'ERR_INVALID_ARG_VALUE',
        );
        assert.match(
          error.message,
          /or it is and a wal-db power loss left .* holding only bytes below the head \(the repair loses none of them: whatever the power loss took from the head on is gone either way\); then, to open the log, /,
        );
      }
      await repair(dir);
      const store = await SegmentedStore.open(dir, { segmentSize: S });
      assert.deepEqual([store.head, store.length], [head, head]);
      await store.close();
      const files = new Map<string, Uint8Array>();
      for (const name of await readdir(dir)) {
        files.set(`${DIR}/${name}`, await readFile(join(dir, name)));
      }
      assert.equal(walDbEnd(files, S), head);
    });
  }
});

describe('SegmentedStore: what the single-segment check cannot see (FORMAT.md §5.3)', () => {
  const S = 4096;

  it("wal-db's full segment 1 with the head 2S, opened with 2S: accepted, the consumed bytes come back above the head", async () => {
    const files = single(S, 1, S, 2 * S);
    const store = await SegmentedStore.open(DIR, {
      fs: crashFs(files),
      segmentSize: 2 * S,
      readOnly: true,
    });
    assert.deepEqual([store.head, store.length], [2 * S, 3 * S]);
    assert.deepEqual(await store.read(2 * S, S), files.get(`${DIR}/${segmentName(1)}`));
    await store.close();
  });

  it('a 3000-byte segment 1 with the head 100 bytes in, opened with 4000: accepted, the head read 96 bytes further into the file', async () => {
    const files = single(S, 1, 3000, S + 100);
    const store = await SegmentedStore.open(DIR, {
      fs: crashFs(files),
      segmentSize: 4000,
      readOnly: true,
    });
    assert.deepEqual([store.head, store.length], [S + 100, 4000 + 3000]);
    const segment = files.get(`${DIR}/${segmentName(1)}`)!;
    assert.deepEqual(await store.read(S + 100, 3000 - 196), segment.subarray(196));
    await store.close();
  });
});

describe('SegmentedStore: every power-loss state of a prefix or suffix truncation, its metadata lost', () => {
  it('with one segment file left, opens with its segment size, writable and read-only (the head check refuses no legal state)', async () => {
    const S = 4096;
    const fs = new CrashFs({
      sectorSize: 1024,
      image: { files: new Map(), dirs: new Set(['/data']) },
    });
    const store = await SegmentedStore.open(DIR, { fs, segmentSize: S });
    const bytes = pattern(6 * S, 7);
    let checked = 0;
    const headsSeen = new Set<string>();
    const snapshots: CrashStates[] = [];
    const step = (operation: () => Promise<unknown>) => crashStatesDuring(fs, operation, snapshots);
    await step(() => store.write(0, bytes.subarray(0, 2 * S + 552)));
    await step(() => store.sync());
    await step(() => store.truncateBefore(2 * S + 52)); // inside segment 2: 0 and 1 deleted
    await step(() => store.write(2 * S + 552, bytes.subarray(2 * S + 552, 3 * S)));
    await step(() => store.sync());
    await step(() => store.truncateBefore(3 * S)); // the tail, on a boundary: the empty segment 3 first
    await step(() => store.write(3 * S, bytes.subarray(3 * S, 4 * S + 300)));
    await step(() => store.sync());
    await step(() => store.truncate(3 * S)); // back to the head, on a boundary: segment 3 kept, empty
    await step(() => store.write(3 * S, bytes.subarray(3 * S, 5 * S + 10)));
    await step(() => store.sync());
    await step(() => store.truncateBefore(5 * S + 10)); // the tail, inside segment 5
    await store.close();
    for (const states of snapshots) {
      for (const state of states) {
        const files = new Map(state.files);
        files.delete(`${DIR}/meta`);
        const segments = [...files.keys()].filter((path) => path.endsWith('.wal'));
        if (segments.length !== 1) continue;
        const errors = await openBoth(new CrashFs({ image: { files, dirs: state.dirs } }), S);
        assert.deepEqual(errors, [undefined, undefined], `${state.description}: ${String(errors)}`);
        checked++;
        const head = files.get(`${DIR}/head`);
        headsSeen.add(`${segments[0]} ${head === undefined ? '-' : decodeHead(head)}`);
      }
    }
    assert.ok(checked > 100, `only ${checked} states had one segment file`);
    // Among them: the head inside the segment, at its start, at its end (the
    // anchor not yet created: wal-db's own layout) and none written yet.
    for (const shape of [
      `${segmentName(0)} 0`,
      `${segmentName(2)} ${2 * S + 52}`,
      `${segmentName(2)} ${3 * S}`,
      `${segmentName(3)} ${3 * S}`,
      `${segmentName(5)} ${5 * S + 10}`,
    ]) {
      assert.ok(
        headsSeen.has(`${DIR}/${shape}`),
        `${shape} not among ${[...headsSeen].join(', ')}`,
      );
    }
  });
});
