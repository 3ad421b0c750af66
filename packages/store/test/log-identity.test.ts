// What counts as a log (docs/FORMAT.md §3.1): the rule itself, and both file
// backends refusing what is not a log without changing anything on disk.
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, realpath, stat, symlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { crc32c } from '@node-rs/crc32';
import { isWalError, type NotALogError } from '@wal/errors';
import {
  FileStore,
  identifyLog,
  isLogEntry,
  type LogIdentity,
  NodeFs,
  SegmentedStore,
  segmentIndex,
  segmentName,
} from '@wal/store';
import { FaultFs, type FsCall, treeSnapshot } from '@wal/store/testing';
import fc from 'fast-check';
import { judgeLockText } from '../src/fs/lock-file.js';
import { encodeHead } from '../src/head-file.js';
import { encodeMeta } from '../src/meta-file.js';
import { failMetaStep, rejectsCode, removeTempDirs, tempDir } from './fs-helpers.js';

/** A frame as FORMAT.md §2 lays it out: crc u32 LE over (length u32 LE ‖ payload), length, payload. */
function frame(payload: Uint8Array): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32LE(payload.length);
  const covered = Buffer.concat([length, payload]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32LE(crc32c(covered));
  return Buffer.concat([crc, covered]);
}

const NOTES = 'Remember: milk, eggs and bread.\n';

/** A thing at a path, made on disk by `make`. */
interface Fixture {
  readonly name: string;
  make(path: string): Promise<void>;
}

const textFile: Fixture = {
  name: 'a 32-byte text file',
  make: (path) => writeFile(path, NOTES),
};
/** A wal-db log whose only record was torn: its header claims 100 bytes, 50 are there. */
const tornFile: Fixture = {
  name: 'a file whose only frame is torn',
  make: (path) => writeFile(path, frame(new Uint8Array(100).fill(7)).subarray(0, 58)),
};
const photos: Fixture = {
  name: 'a directory of photos',
  async make(path) {
    await mkdir(path);
    await writeFile(join(path, 'photo.jpg'), 'jpeg');
    await writeFile(join(path, 'notes.txt'), NOTES);
    await writeFile(join(path, 'meta.json'), '{}');
    await mkdir(join(path, 'album'));
  },
};
const segmentsAndMore: Fixture = {
  name: 'a directory of segments with a foreign file',
  async make(path) {
    await mkdir(path);
    await writeFile(join(path, segmentName(0)), frame(Buffer.from('abc')));
    await writeFile(join(path, 'head'), encodeHead(0));
    await writeFile(join(path, 'README'), 'mine');
  },
};
/** A user's directory that happens to hold a file named `meta`. */
const notesWithMeta: Fixture = {
  name: "a directory holding a user's file named meta",
  async make(path) {
    await mkdir(path);
    await writeFile(join(path, 'meta'), 'mine');
    await writeFile(join(path, 'photo.jpg'), 'jpeg');
  },
};
const fileLog: Fixture = {
  name: 'a wal-db single-file log',
  make: (path) => writeFile(path, frame(Buffer.from('abc'))),
};
const dirLog: Fixture = {
  name: 'a log directory with metadata',
  async make(path) {
    await mkdir(path);
    await writeFile(join(path, 'meta'), encodeMeta({ 'store.segmentSize': 4096 }));
    await writeFile(join(path, 'head'), encodeHead(0));
  },
};

describe('what counts as a log (FORMAT.md §3.1)', () => {
  after(removeTempDirs);

  describe('identifyLog', () => {
    const cases: Array<{
      fixture: Fixture;
      expect: Pick<LogIdentity, 'type' | 'verdict' | 'metadata' | 'adoptable'>;
      found: RegExp;
    }> = [
      {
        fixture: textFile,
        expect: { type: 'file', verdict: 'not-a-log', metadata: false, adoptable: true },
        found: /^a 32-byte file without log metadata whose first frame does not check$/,
      },
      {
        fixture: tornFile,
        expect: { type: 'file', verdict: 'not-a-log', metadata: false, adoptable: true },
        found: /^a 58-byte file without log metadata whose first frame does not check$/,
      },
      {
        fixture: fileLog,
        expect: { type: 'file', verdict: 'log', metadata: false, adoptable: false },
        found: /first frame checks \(a wal-db 1\.x log\)/,
      },
      {
        fixture: { name: 'a file of zeros', make: (path) => writeFile(path, Buffer.alloc(64)) },
        expect: { type: 'file', verdict: 'not-a-log', metadata: false, adoptable: true },
        found: /64-byte file/,
      },
      {
        fixture: { name: 'an empty file', make: (path) => writeFile(path, '') },
        expect: { type: 'file', verdict: 'new', metadata: false, adoptable: false },
        found: /^an empty file$/,
      },
      {
        fixture: {
          name: 'a text file with a metadata file beside it',
          async make(path) {
            await writeFile(path, NOTES);
            await writeFile(`${path}.meta`, encodeMeta({}));
          },
        },
        expect: { type: 'file', verdict: 'log', metadata: true, adoptable: false },
        found: /^a log file/,
      },
      {
        fixture: {
          name: "a text file beside a user's .meta file",
          async make(path) {
            await writeFile(path, NOTES);
            await writeFile(`${path}.meta`, 'mine');
          },
        },
        expect: { type: 'file', verdict: 'not-a-log', metadata: false, adoptable: false },
        found: /^a 32-byte file beside a target\.meta that is not log metadata$/,
      },
      {
        fixture: {
          name: 'an empty file beside a damaged .meta (ours: its open says WAL_CORRUPTION)',
          async make(path) {
            await writeFile(path, '');
            await writeFile(`${path}.meta`, 'XXXX');
          },
        },
        expect: { type: 'file', verdict: 'log', metadata: true, adoptable: false },
        found: /^a log file/,
      },
      {
        fixture: notesWithMeta,
        expect: { type: 'directory', verdict: 'not-a-log', metadata: false, adoptable: false },
        found: /^a directory holding meta \(and 1 more entry not part of a log\)$/,
      },
      {
        fixture: {
          name: 'log entries with a damaged meta (ours: its open says WAL_CORRUPTION)',
          async make(path) {
            await mkdir(path);
            await writeFile(join(path, 'meta'), 'XXXX');
            await writeFile(join(path, segmentName(0)), '');
          },
        },
        expect: { type: 'directory', verdict: 'log', metadata: true, adoptable: false },
        found: /^a log directory$/,
      },
      {
        fixture: photos,
        expect: { type: 'directory', verdict: 'not-a-log', metadata: false, adoptable: false },
        found: /^a directory holding album \(and 3 more entries not part of a log\)$/,
      },
      {
        fixture: segmentsAndMore,
        expect: { type: 'directory', verdict: 'not-a-log', metadata: false, adoptable: false },
        found: /^a directory holding README$/,
      },
      {
        fixture: { name: 'an empty directory', make: (path) => mkdir(path) },
        expect: { type: 'directory', verdict: 'new', metadata: false, adoptable: false },
        found: /^an empty directory$/,
      },
      {
        fixture: {
          name: 'a wal-db directory with every allowed entry',
          async make(path) {
            await mkdir(path);
            for (const name of [
              segmentName(0),
              segmentName(7),
              'head',
              'lock',
              'head.tmp',
              'meta.tmp',
              'lock.break',
              'lock.0123456789abcdef01234567.tmp',
              'lock.break.0123456789abcdef01234567.tmp',
            ]) {
              await writeFile(join(path, name), '');
            }
            await mkdir(join(path, 'lost+found'));
          },
        },
        expect: { type: 'directory', verdict: 'log', metadata: false, adoptable: false },
        found: /without metadata \(a wal-db 1\.x log, 2 segment file\(s\)\)/,
      },
      {
        fixture: dirLog,
        expect: { type: 'directory', verdict: 'log', metadata: true, adoptable: false },
        found: /^a log directory$/,
      },
      {
        fixture: { name: 'nothing', make: async () => {} },
        expect: { type: 'missing', verdict: 'new', metadata: false, adoptable: false },
        found: /^nothing$/,
      },
    ];

    for (const { fixture, expect, found } of cases) {
      it(`${fixture.name}: ${expect.verdict}`, async () => {
        const path = join(await tempDir(), 'target');
        await fixture.make(path);
        const before = await treeSnapshot(join(path, '..'));
        const identity = await identifyLog(path);
        const { found: words, realPath, links, ...rest } = identity;
        assert.deepEqual(rest, expect);
        assert.match(words, found);
        assert.equal(realPath, expect.type === 'file' ? await realpath(path) : undefined);
        assert.equal(links, expect.type === 'file' ? 1 : undefined);
        assert.deepEqual(await treeSnapshot(join(path, '..')), before, 'identifyLog reads only');
      });
    }

    it('a file reached through a symbolic link: judged with the metadata beside the file', async () => {
      const parent = await tempDir();
      const target = join(parent, 'journal');
      // A text file: only the metadata beside it makes it a log.
      await writeFile(target, NOTES);
      await writeFile(`${target}.meta`, encodeMeta({}));
      const link = join(parent, 'alias');
      await symlink(target, link);
      const before = await treeSnapshot(parent);
      const identity = await identifyLog(link);
      assert.equal(identity.verdict, 'log');
      assert.equal(identity.metadata, true);
      assert.equal(identity.realPath, await realpath(target));
      assert.equal(identity.links, 1);
      assert.match(identity.found, /with journal\.meta beside it/);
      assert.deepEqual(await treeSnapshot(parent), before, 'identifyLog reads only');
    });

    it('names segment files as wal-db does, and only those', () => {
      assert.equal(segmentIndex('00000000000000000000.wal'), 0);
      assert.equal(segmentIndex(segmentName(123456)), 123456);
      for (const name of [
        '0000000000000000000.wal', // 19 digits
        '000000000000000000000.wal', // 21 digits
        '00000000000000000000.wal.bak',
        '00000000000000000000.WAL',
        'x0000000000000000000.wal',
      ]) {
        assert.equal(segmentIndex(name), undefined, name);
        assert.equal(isLogEntry(name), false, name);
      }
      for (const name of ['photo.jpg', 'meta.json', 'head.bak', 'lock.tmp', 'lock.xyz.tmp']) {
        assert.equal(isLogEntry(name), false, name);
      }
    });

    it('a file without metadata is a log exactly when its first frame checks (property)', async () => {
      const dir = await tempDir();
      const path = join(dir, 'file');
      await fc.assert(
        fc.asyncProperty(
          fc.uint8Array({ minLength: 0, maxLength: 40 }),
          fc.uint8Array({ minLength: 0, maxLength: 20 }),
          fc.nat({ max: 60 }),
          fc.option(fc.nat({ max: 70 }), { nil: undefined }),
          async (payload, after, cut, flip) => {
            // A frame followed by anything, cut anywhere, maybe with a bit flipped.
            const bytes = Buffer.concat([frame(payload), after]).subarray(0, cut);
            if (flip !== undefined && flip < bytes.length * 8) {
              bytes[flip >> 3]! ^= 1 << (flip & 7);
            }
            await writeFile(path, bytes);
            // The oracle, by FORMAT.md §2.
            let checks = false;
            if (bytes.length >= 8) {
              const length = bytes.readUInt32LE(4);
              checks =
                8 + length <= bytes.length &&
                crc32c(bytes.subarray(4, 8 + length)) === bytes.readUInt32LE(0);
            }
            const identity = await identifyLog(path);
            const expected = bytes.length === 0 ? 'new' : checks ? 'log' : 'not-a-log';
            assert.equal(identity.verdict, expected);
            assert.equal(identity.adoptable, expected === 'not-a-log');
          },
        ),
        { numRuns: 300 },
      );
    });

    it('checks a large first frame in bounded chunks, and a length beyond the file without reading it', async () => {
      const dir = await tempDir();
      const big = join(dir, 'big');
      const payload = Buffer.alloc(3 * 1024 * 1024 + 5, 0x5a);
      await writeFile(big, frame(payload));
      assert.equal((await identifyLog(big)).verdict, 'log');
      const damaged = frame(payload);
      damaged[damaged.length - 1]! ^= 1; // the last chunk's last byte
      await writeFile(big, damaged);
      assert.equal((await identifyLog(big)).verdict, 'not-a-log');
      // A header claiming 4 GiB − 1 in a 12-byte file: refused from the header alone.
      const claim = join(dir, 'claim');
      await writeFile(claim, Buffer.from([0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4]));
      assert.equal((await identifyLog(claim)).verdict, 'not-a-log');
    });
  });

  describe('opens refuse what is not a log and change nothing', () => {
    const backends = [
      {
        name: 'FileStore',
        open: (path: string, readOnly: boolean) => FileStore.open(path, { readOnly }),
        refused: [
          { fixture: textFile, found: /^a 32-byte file without log metadata/ },
          { fixture: tornFile, found: /^a 58-byte file .*\(open with adopt: true/ },
          {
            fixture: photos,
            found: /^a directory holding album .*, where a single-file log was expected$/,
          },
          { fixture: dirLog, found: /^a log directory, where a single-file log was expected$/ },
        ],
      },
      {
        name: 'SegmentedStore',
        open: (path: string, readOnly: boolean) =>
          SegmentedStore.open(path, { readOnly, segmentSize: 4096 }),
        refused: [
          { fixture: photos, found: /^a directory holding album \(and 3 more entries/ },
          { fixture: segmentsAndMore, found: /^a directory holding README$/ },
          { fixture: notesWithMeta, found: /^a directory holding meta / },
          { fixture: textFile, found: /^a 32-byte file .*, where a log directory was expected$/ },
          { fixture: fileLog, found: /wal-db 1\.x log\), where a log directory was expected$/ },
        ],
      },
    ];

    for (const backend of backends) {
      for (const { fixture, found } of backend.refused) {
        for (const readOnly of [false, true]) {
          it(`${backend.name}${readOnly ? ' read-only' : ''}: ${fixture.name}`, async () => {
            const parent = await tempDir();
            const path = join(parent, 'target');
            await fixture.make(path);
            const before = await treeSnapshot(parent);
            const error = (await rejectsCode(
              backend.open(path, readOnly),
              'WAL_NOT_A_LOG',
            )) as NotALogError;
            assert.ok(isWalError(error, 'WAL_NOT_A_LOG'));
            assert.equal(error.path, path);
            assert.match(error.found, found);
            assert.match(error.message, /nothing was changed/);
            assert.deepEqual(await treeSnapshot(parent), before, 'not one byte, entry or time');
          });
        }
      }
    }

    it('FileStore adopt: true takes over a file whose first frame does not check, keeping its bytes', async () => {
      const parent = await tempDir();
      const path = join(parent, 'notes.txt');
      await textFile.make(path);
      const before = await treeSnapshot(parent);
      const viewer = await FileStore.open(path, { readOnly: true, adopt: true });
      assert.equal(viewer.length, 32);
      assert.deepEqual(Buffer.from(await viewer.read(0, 32)), Buffer.from(NOTES));
      await viewer.close();
      assert.deepEqual(await treeSnapshot(parent), before, 'a read-only adoption changes nothing');

      const store = await FileStore.open(path, { adopt: true });
      assert.equal(store.length, 32);
      await store.close();
      assert.equal(await readFile(path, 'utf8'), NOTES, 'the store cuts nothing');
      assert.deepEqual((await readdir(parent)).sort(), ['notes.txt', 'notes.txt.meta']);
      // From now on it is a log: it opens without the option.
      assert.equal((await identifyLog(path)).verdict, 'log');
      await (await FileStore.open(path)).close();
      await rejectsCode(FileStore.open(path, { adopt: 'yes' as never }), 'ERR_INVALID_ARG_TYPE');
    });

    it('adopt never takes over a directory or a file with foreign content beside a directory', async () => {
      const parent = await tempDir();
      const path = join(parent, 'photos');
      await photos.make(path);
      const before = await treeSnapshot(parent);
      await rejectsCode(FileStore.open(path, { adopt: true }), 'WAL_NOT_A_LOG');
      assert.deepEqual(await treeSnapshot(parent), before);
    });

    /** A lock record of ours whose holder is dead: taken over as stale. */
    const deadLock = JSON.stringify({ pid: 2 ** 22 + 12345, token: 'dead', host: hostname() });
    /** Files another program or a user may keep under a lock file's name. */
    const foreignLocks: Array<[string, (path: string) => Promise<void>]> = [
      ["another program's pid file", (path) => writeFile(path, '4242\n')],
      ['a record without a token', (path) => writeFile(path, '{"pid":4242,"host":"h"}\n')],
      ['JSON that is no record', (path) => writeFile(path, '{"pid":1.5}')],
      ['JSON without our keys', (path) => writeFile(path, '{"owner":"backup","pid":4242}\n')],
      ['text', (path) => writeFile(path, 'locked by backup.sh since 03:00\n')],
      ['a long file', (path) => writeFile(path, Buffer.alloc(5000))],
      ['a directory', (path) => mkdir(path)],
    ];

    /** Asserts that `open` rejects with WAL_NOT_A_LOG naming `named`, and not one byte, entry or time under `parent` changed. */
    async function refusedUnchanged(
      parent: string,
      named: string,
      open: () => Promise<{ close(): Promise<void> }>,
      found: RegExp,
    ): Promise<void> {
      const before = await treeSnapshot(parent);
      const error = (await rejectsCode(open(), 'WAL_NOT_A_LOG')) as NotALogError;
      assert.equal(error.path, named);
      assert.match(error.found, found);
      assert.deepEqual(await treeSnapshot(parent), before, 'not one byte, entry or time');
    }

    describe('a new single-file log is not created beside files that are not ours', () => {
      const siblings: Array<[string, string, (path: string) => Promise<void>]> = [
        ['.meta', "a user's file", (path) => writeFile(path, 'my meta notes\n')],
        ['.meta', 'a directory', (path) => mkdir(path)],
        ['.meta.tmp', "a user's file", (path) => writeFile(path, 'user data\n')],
        ...foreignLocks.map(
          ([name, make]) => ['.lock', name, make] as [string, string, typeof make],
        ),
        ['.lock.break', "another program's pid file", (path) => writeFile(path, '4242\n')],
      ];
      for (const [suffix, name, make] of siblings) {
        for (const readOnly of [false, true]) {
          it(`${suffix}: ${name}${readOnly ? ' (read-only)' : ''}`, async () => {
            const parent = await tempDir();
            const path = join(parent, 'journal');
            await make(`${path}${suffix}`);
            const wanted = suffix.startsWith('.meta') ? 'log metadata' : "a log's lock file";
            await refusedUnchanged(
              parent,
              path,
              () => FileStore.open(path, { readOnly }),
              new RegExp(
                `^nothing, but a journal${suffix.replaceAll('.', '\\.')} beside it that is not ${wanted}( \\(if it is .* remove ${path.replaceAll('.', '\\.')}\\.lock.*\\))?$`,
              ),
            );
          });
        }
      }

      it("the reviewer's case: another program's journal.lock and a user's journal.meta.tmp", async () => {
        const parent = await tempDir();
        const path = join(parent, 'journal');
        await writeFile(`${path}.lock`, '4242\n');
        await writeFile(`${path}.meta.tmp`, 'user data\n');
        await refusedUnchanged(parent, path, () => FileStore.open(path), /journal\.meta\.tmp/);
      });

      it('what we leave behind is ours: a stale lock, an empty or zeroed lock, log metadata', async () => {
        for (const [suffix, content] of [
          ['.lock', deadLock],
          ['.lock', ''],
          ['.lock', '\0\0\0\0'],
          ['.lock.break', deadLock],
          ['.meta', encodeMeta({ kept: 'yes' })],
          ['.meta.tmp', encodeMeta({})],
        ] as const) {
          const parent = await tempDir();
          const path = join(parent, 'journal');
          await writeFile(`${path}${suffix}`, content);
          const store = await FileStore.open(path);
          if (suffix === '.meta') assert.equal((await store.readMeta()).kept, 'yes');
          await store.close();
          // A guard is removed by the next take-over of a stale lock, not before.
          const left = suffix === '.lock.break' ? ['journal.lock.break'] : [];
          assert.deepEqual(
            (await readdir(parent)).sort(),
            ['journal', ...left, 'journal.meta'],
            suffix,
          );
        }
      });
    });

    it('a lock file that is not ours is never taken over, beside a log either', async () => {
      for (const [name, make] of foreignLocks) {
        const parent = await tempDir();
        const path = join(parent, 'log');
        await fileLog.make(path);
        await make(`${path}.lock`);
        await refusedUnchanged(
          parent,
          `${path}.lock`,
          () => FileStore.open(path),
          /^a file that is not a lock file of a log/,
        ).catch((error: unknown) => {
          throw new Error(`${name}: ${String(error)}`, { cause: error });
        });
        // A log directory's lock the same.
        const dir = join(parent, 'dir');
        await dirLog.make(dir);
        await make(join(dir, 'lock'));
        await refusedUnchanged(
          parent,
          join(dir, 'lock'),
          () => SegmentedStore.open(dir),
          /^a file that is not a lock file of a log/,
        );
        // The guard of a take-over too, beside a stale lock of ours.
        const other = join(parent, 'other');
        await fileLog.make(other);
        await writeFile(`${other}.lock`, deadLock);
        await make(`${other}.lock.break`);
        const before = await readFile(`${other}.lock`);
        await rejectsCode(new NodeFs().lock(`${other}.lock`), 'WAL_NOT_A_LOG');
        assert.deepEqual(await readFile(`${other}.lock`), before, name);
        assert.ok(await stat(`${other}.lock.break`), name);
      }
    });

    describe('a directory without metadata is a log only if its lock file is ours', () => {
      for (const [name, make] of foreignLocks) {
        it(`lock: ${name}`, async () => {
          for (const entries of [[], [segmentName(0)]]) {
            const parent = await tempDir();
            const path = join(parent, 'appdata');
            await mkdir(path);
            for (const entry of entries)
              await writeFile(join(path, entry), frame(Buffer.from('x')));
            await make(join(path, 'lock'));
            assert.equal((await identifyLog(path)).verdict, 'not-a-log');
            await refusedUnchanged(
              parent,
              path,
              () => SegmentedStore.open(path, { segmentSize: 4096 }),
              /^a directory holding lock; its lock is not a log's lock file \(if it is/,
            );
          }
        });
      }

      it('a lock.break that is not ours', async () => {
        const parent = await tempDir();
        const path = join(parent, 'appdata');
        await mkdir(path);
        await writeFile(join(path, 'lock.break'), '4242\n');
        await refusedUnchanged(
          parent,
          path,
          () => SegmentedStore.open(path, { segmentSize: 4096 }),
          /^a directory holding lock\.break; its lock\.break is not a log's/,
        );
      });

      it('our own lock, stale or emptied by a power loss, still counts', async () => {
        for (const content of [deadLock, '', '\0\0']) {
          const path = join(await tempDir(), 'log');
          await mkdir(path);
          await writeFile(join(path, segmentName(0)), frame(Buffer.from('x')));
          await writeFile(join(path, 'lock'), content);
          assert.equal((await identifyLog(path)).verdict, 'log', JSON.stringify(content));
          const store = await SegmentedStore.open(path, { segmentSize: 4096 });
          assert.equal(store.length, 9);
          await store.close();
        }
      });
    });

    it('a new log whose directory fsyncs fail after the metadata rename keeps only its empty file', async () => {
      const parent = await tempDir();
      const path = join(parent, 'journal');
      const fs = new FaultFs(new NodeFs());
      let renamed = false;
      fs.inject({
        fault: 'EIO',
        persistent: true,
        when: (call) => {
          if (call.method === 'rename') renamed = true;
          return call.method === 'syncDir' && renamed;
        },
      });
      await rejectsCode(FileStore.open(path, { fs }), 'WAL_IO');
      // The clean-up could not make the removal of the metadata durable: the
      // empty file stays, as a killed open leaves it, and is taken over.
      assert.deepEqual(await readdir(parent), ['journal']);
      assert.equal((await stat(path)).size, 0);
      await (await FileStore.open(path)).close();
      assert.deepEqual((await readdir(parent)).sort(), ['journal', 'journal.meta']);
    });

    describe('a lock file of ours cut short by a power loss is still ours', () => {
      /** The text of a real lock file, as `NodeFs.lock` writes it; its holder has gone. */
      async function realRecord(): Promise<string> {
        const path = join(await tempDir(), 'lock');
        const lock = await new NodeFs().lock(path);
        const text = await readFile(path, 'utf8');
        await lock.release();
        // The same record, of a process that no longer runs.
        return text.replace(/^\{"pid":\d+,/, `{"pid":${2 ** 22 + 12345},`);
      }
      /** Every strict prefix of `record`, with and without NUL bytes after it. */
      function cutShort(record: string): string[] {
        const cuts: string[] = [];
        for (let length = 0; length < record.length; length++) {
          const prefix = record.slice(0, length);
          cuts.push(prefix, prefix + '\0'.repeat(1 + (length % 13)));
        }
        return cuts;
      }

      it('any record, cut anywhere and padded with NUL bytes or not, is residue (property)', () => {
        const record = fc.record(
          {
            pid: fc.integer({ min: 1, max: 2 ** 31 }),
            token: fc
              .uint8Array({ minLength: 12, maxLength: 12 })
              .map((bytes) => Buffer.from(bytes).toString('hex')),
            host: fc.domain(),
            start: fc.nat().map(String),
          },
          { requiredKeys: ['pid', 'token', 'host'] },
        );
        fc.assert(
          fc.property(record, fc.nat(), fc.nat({ max: 64 }), (owner, cut, nuls) => {
            const text = `${JSON.stringify(owner)}\n`;
            // Only the newline lost, it is the whole record: cut before.
            const kept = text.slice(0, cut % (text.length - 1));
            assert.equal(judgeLockText(kept + '\0'.repeat(nuls)), 'residue', JSON.stringify(kept));
            // The whole record is a record, NUL bytes after it or not.
            assert.deepEqual(judgeLockText(text + '\0'.repeat(nuls)), { ...owner });
          }),
        );
      });

      it('text that is no prefix of a record stays foreign (property)', () => {
        // Anything not starting like a record: another program's text.
        fc.assert(
          fc.property(fc.string({ minLength: 1 }), (text) => {
            fc.pre(!'{"pid":'.startsWith(text.slice(0, 7)) && !/^\0*$/.test(text));
            assert.equal(judgeLockText(text), 'foreign');
          }),
        );
        // JSON objects whose keys are not ours in our order.
        fc.assert(
          fc.property(fc.dictionary(fc.string(), fc.jsonValue(), { minKeys: 1 }), (value) => {
            fc.pre(Object.keys(value)[0] !== 'pid');
            assert.equal(judgeLockText(JSON.stringify(value)), 'foreign');
          }),
        );
        for (const text of [
          '{"pid":12}',
          '{"pid":"12"',
          '{"pid":,"token":"ab',
          '{"pid":12,"token":"xyz',
          '{"pid":12,"token":"ab","host":"h"}x',
        ]) {
          assert.equal(judgeLockText(text), 'foreign', text);
        }
      });

      it('a single-file log whose lock file was cut short opens, at every length', async () => {
        const parent = await tempDir();
        const path = join(parent, 'journal');
        await fileLog.make(path);
        const fresh = join(parent, 'fresh'); // nothing there yet
        for (const text of cutShort(await realRecord())) {
          for (const at of [path, fresh]) {
            await writeFile(`${at}.lock`, text);
            const store = await FileStore.open(at);
            await store.close();
            await assert.rejects(stat(`${at}.lock`), { code: 'ENOENT' }, JSON.stringify(text));
          }
        }
      });

      it('a wal-db directory whose lock was cut short is a log, read-only and writable', async () => {
        const path = join(await tempDir(), 'log');
        await mkdir(path);
        await writeFile(join(path, segmentName(0)), frame(Buffer.from('x')));
        for (const text of cutShort(await realRecord())) {
          await writeFile(join(path, 'lock'), text);
          assert.equal((await identifyLog(path)).verdict, 'log', JSON.stringify(text));
          const reader = await SegmentedStore.open(path, { segmentSize: 4096, readOnly: true });
          assert.equal(reader.length, 9);
          await reader.close();
        }
        const store = await SegmentedStore.open(path, { segmentSize: 4096 });
        assert.equal(store.length, 9);
        await store.close();
      });
    });

    it('a refusal of a lock file names it, saying it may be ours damaged', async () => {
      const parent = await tempDir();
      const path = join(parent, 'journal');
      await writeFile(`${path}.lock`, '4242\n');
      const remove = (file: string): RegExp =>
        new RegExp(
          `damaged by a power loss and no process of the log runs, remove ${file.replaceAll('.', '\\.')}\\)$`,
        );
      await refusedUnchanged(parent, path, () => FileStore.open(path), remove(`${path}.lock`));
      await fileLog.make(path);
      await refusedUnchanged(
        parent,
        `${path}.lock`,
        () => FileStore.open(path),
        remove(`${path}.lock`),
      );
      const dir = join(parent, 'dir');
      await mkdir(dir);
      await writeFile(join(dir, 'lock'), 'locked by me\n');
      for (const readOnly of [true, false]) {
        await refusedUnchanged(
          parent,
          dir,
          () => SegmentedStore.open(dir, { segmentSize: 4096, readOnly }),
          remove(join(dir, 'lock')),
        );
      }
    });

    it('a refused open of a new single-file log leaves no file behind', async () => {
      const parent = await tempDir();
      const path = join(parent, 'journal');
      // Our metadata, damaged: WAL_CORRUPTION, and no empty journal is left.
      await writeFile(`${path}.meta`, encodeMeta({}).subarray(0, 6));
      await rejectsCode(FileStore.open(path), 'WAL_CORRUPTION');
      assert.deepEqual(await readdir(parent), ['journal.meta']);
      // A format the caller refuses (checkMeta): the same.
      await writeFile(`${path}.meta`, encodeMeta({ version: 99 }));
      const refuse = (): never => {
        throw new Error('a version this caller cannot read');
      };
      await rejectsCode(FileStore.open(path, { checkMeta: refuse }), 'WAL_IO');
      assert.deepEqual(await readdir(parent), ['journal.meta']);
      await (await FileStore.open(path)).close(); // and a later open goes on
    });

    describe('an open that fails writing the first metadata leaves no file blocking the next', () => {
      /** Each step of the metadata's atomic replace, failed: which call, and what stays beside an existing file. */
      const steps: Array<
        [string, (call: Omit<FsCall, 'fault'>, renamed: boolean) => boolean, string[]]
      > = [
        [
          'pwrite of journal.meta.tmp (ENOSPC)',
          (call) => call.method === 'pwrite' && call.path.endsWith('.meta.tmp'),
          [],
        ],
        [
          'fdatasync of journal.meta.tmp',
          (call) => call.method === 'fdatasync' && call.path.endsWith('.meta.tmp'),
          [],
        ],
        [
          'rename of journal.meta.tmp',
          (call) => call.method === 'rename' && call.path.endsWith('.meta.tmp'),
          [],
        ],
        // The rename happened: an existing file keeps its (valid) metadata.
        [
          'directory fsync after the rename',
          (call, renamed) => call.method === 'syncDir' && renamed,
          ['journal.meta'],
        ],
      ];
      for (const [step, fails, kept] of steps) {
        for (const existing of [false, true]) {
          it(`${step}, ${existing ? 'beside an existing empty file' : 'on a new path'}`, async () => {
            const parent = await tempDir();
            const path = join(parent, 'journal');
            if (existing) await writeFile(path, '');
            const fs = new FaultFs(new NodeFs());
            failMetaStep(fs, fails);
            const error = await FileStore.open(path, { fs }).then(
              async (store) => {
                await store.close();
                throw new Error('the open succeeded');
              },
              (failure: unknown) => failure,
            );
            assert.ok(isWalError(error), String(error));
            // A new path: nothing at all; an existing file: it, and its metadata once renamed.
            assert.deepEqual((await readdir(parent)).sort(), existing ? ['journal', ...kept] : []);
            const store = await FileStore.open(path);
            await store.write(0, new Uint8Array([1, 2, 3]));
            await store.close();
            assert.deepEqual((await readdir(parent)).sort(), ['journal', 'journal.meta']);
          });
        }
      }
    });

    it('opens a new log in nothing, an empty file or an empty directory; a wal-db log as it is', async () => {
      const parent = await tempDir();
      for (const [name, make] of [
        ['missing', async () => {}],
        ['empty', (path: string) => writeFile(path, '')],
        ['wal-db', fileLog.make],
      ] as const) {
        const path = join(parent, name);
        await make(path);
        const store = await FileStore.open(path);
        await store.close();
        assert.ok((await readdir(parent)).includes(`${name}.meta`), name);
      }
      const empty = join(parent, 'empty-dir');
      await mkdir(empty);
      await (await SegmentedStore.open(empty)).close();
      const walDb = join(parent, 'wal-db-dir');
      await mkdir(walDb);
      await writeFile(join(walDb, segmentName(0)), frame(Buffer.from('abc')));
      await mkdir(join(walDb, 'lost+found'));
      const store = await SegmentedStore.open(walDb, { segmentSize: 1000 });
      assert.equal(store.length, 11);
      assert.equal(store.segmentSize, 1000);
      await store.close();
      // Its size is recorded: it reopens without the option.
      const again = await SegmentedStore.open(walDb);
      assert.equal(again.segmentSize, 1000);
      await again.close();
    });
  });
});
