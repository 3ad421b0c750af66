// Wal.open never takes over what is not a log (docs/FORMAT.md §3.1): a user's
// file or directory is refused with WAL_NOT_A_LOG, read-only or not, and not
// one byte, entry or time under its parent changes.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NotALogError } from '@wal/errors';
import { treeSnapshot } from '@wal/store/testing';
import { encodeFrame, Wal, type WalOptions } from '../src/index.js';
import { isCode } from './helpers.js';

const NOTES = 'Remember: milk, eggs and bread.\n'; // 32 bytes

describe('Wal.open and what is not a log', () => {
  let parent: string;

  beforeEach(async () => {
    parent = await mkdtemp(join(tmpdir(), 'wal-not-a-log-'));
  });

  afterEach(async () => {
    await rm(parent, { recursive: true, force: true });
  });

  /** Opens `path` with `options`, expects WAL_NOT_A_LOG naming `found`, and nothing changed. */
  async function refuses(path: string, options: WalOptions, found: RegExp): Promise<void> {
    const before = await treeSnapshot(parent);
    let error: NotALogError | undefined;
    await assert.rejects(Wal.open(path, options), (thrown: NotALogError) => {
      isCode('WAL_NOT_A_LOG')(thrown);
      error = thrown;
      return true;
    });
    assert.equal(error!.path, path);
    assert.match(error!.found, found);
    assert.deepEqual(await treeSnapshot(parent), before, 'not one byte, entry or time changed');
  }

  for (const readOnly of [false, true]) {
    const mode = readOnly ? ' (read-only)' : '';

    it(`a 32-byte text file with layout 'file' is refused, not truncated${mode}`, async () => {
      const path = join(parent, 'notes.txt');
      await writeFile(path, NOTES);
      await refuses(
        path,
        { layout: 'file', readOnly },
        /^a 32-byte file without log metadata whose first frame does not check/,
      );
      assert.equal(await readFile(path, 'utf8'), NOTES);
    });

    it(`a directory of photos is refused: no head, meta, lock or segment among them${mode}`, async () => {
      const path = join(parent, 'photos');
      await mkdir(path);
      for (const name of ['photo.jpg', 'IMG_0001.jpg', 'IMG_0002.jpg', 'IMG_0003.jpg']) {
        await writeFile(join(path, name), name);
      }
      await refuses(
        path,
        { readOnly },
        /^a directory holding IMG_0001\.jpg \(and 3 more entries not part of a log\)$/,
      );
      assert.deepEqual((await readdir(path)).length, 4);
    });

    it(`a log of the other layout is refused, and says what it is${mode}`, async () => {
      const file = join(parent, 'log');
      await writeFile(file, encodeFrame(new TextEncoder().encode('abc')));
      await refuses(file, { readOnly }, /a wal-db 1\.x log\), where a log directory was expected$/);
      const dir = join(parent, 'dir');
      await mkdir(dir);
      await writeFile(join(dir, '00000000000000000000.wal'), '');
      await refuses(
        dir,
        { layout: 'file', readOnly },
        /^a log directory without metadata .*, where a single-file log was expected$/,
      );
    });
  }

  it("another program's journal.lock and a user's journal.meta.tmp beside a new single-file log stay as they are", async () => {
    const path = join(parent, 'journal');
    await writeFile(`${path}.lock`, '4242\n');
    await writeFile(`${path}.meta.tmp`, 'user data\n');
    await refuses(path, { layout: 'file' }, /^nothing, but a journal\.meta\.tmp beside it/);
    await rm(`${path}.meta.tmp`);
    await refuses(path, { layout: 'file' }, /^nothing, but a journal\.lock beside it/);
    assert.equal(await readFile(`${path}.lock`, 'utf8'), '4242\n');
  });

  it("a directory holding only a user's file named lock is refused", async () => {
    const path = join(parent, 'appdata');
    await mkdir(path);
    await writeFile(join(path, 'lock'), '777\n');
    await refuses(
      path,
      {},
      /^a directory holding lock; its lock is not a log's lock file \(if it is/,
    );
  });

  it("a user's notes.meta beside nothing is refused as not a log, and no empty notes is left", async () => {
    const path = join(parent, 'notes');
    await writeFile(`${path}.meta`, 'my meta notes\n');
    await refuses(path, { layout: 'file' }, /^nothing, but a notes\.meta beside it/);
    assert.deepEqual(await readdir(parent), ['notes.meta']);
  });

  it('a wal-db log whose only record was torn is refused; adopt: true takes it over and recovery cuts it', async () => {
    const path = join(parent, 'log');
    const torn = encodeFrame(new Uint8Array(100).fill(9)).subarray(0, 60);
    await writeFile(path, torn);
    await refuses(path, { layout: 'file' }, /\(open with adopt: true to take it over as a log\)$/);

    // Read-only adoption: reports the cut, makes none.
    const before = await treeSnapshot(parent);
    const viewer = await Wal.open(path, { layout: 'file', readOnly: true, adopt: true });
    try {
      assert.equal(viewer.recovery.tear?.kind, 'short-payload');
      assert.equal(viewer.recovery.tornBytes, 60);
      assert.equal(viewer.recovery.truncated, false);
    } finally {
      await viewer.close();
    }
    assert.deepEqual(await treeSnapshot(parent), before);

    const wal = await Wal.open(path, { layout: 'file', adopt: true });
    try {
      assert.equal(wal.recovery.truncated, true);
      assert.equal(wal.tail, 0);
      assert.equal(await wal.append(new TextEncoder().encode('abc'), { wait: 'durable' }), 0);
    } finally {
      await wal.close();
    }
    assert.deepEqual(
      await readFile(path),
      Buffer.from(encodeFrame(new TextEncoder().encode('abc'))),
    );
    // Now a log with metadata: it opens without the option.
    await (await Wal.open(path, { layout: 'file' })).close();
    await assert.rejects(Wal.open(path, { adopt: 1 as never }), isCode('ERR_INVALID_ARG_TYPE'));
  });

  it('a missing path, an empty file and an empty directory become new logs', async () => {
    for (const [path, options] of [
      [join(parent, 'missing'), {}],
      [join(parent, 'missing-file'), { layout: 'file' }],
      [join(parent, 'empty-file'), { layout: 'file' }],
      [join(parent, 'empty-dir'), {}],
    ] as const) {
      if (path.endsWith('empty-file')) await writeFile(path, '');
      if (path.endsWith('empty-dir')) await mkdir(path);
      const wal = await Wal.open(path, options);
      try {
        assert.equal(wal.tail, 0);
        assert.equal(wal.maxRecordSize, 16 * 1024 * 1024, 'a new log gets the 16 MiB default');
        assert.equal(await wal.append(new TextEncoder().encode('x'), { wait: 'durable' }), 0);
      } finally {
        await wal.close();
      }
    }
  });
});
