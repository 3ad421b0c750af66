// Online backup (docs/DURABILITY.md, "Backup"): a durable prefix of a live
// log copied while appends go on; the copy opens with the same records at
// the same LSNs; a power loss at any step leaves the destination absent or
// complete; an existing destination is never touched.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import type { IoError } from '@wal/errors';
import { directoryMode, type Fs, NodeFs } from '@wal/store';
import { CrashFs, FaultFs, permissionsUnder, treeSnapshot, withUmask } from '@wal/store/testing';
import { backup, Wal, type WalRecord } from '../src/index.js';
import { bytes, isCode, rejectsCode } from './helpers.js';

/** Every record of `wal`, from its head. */
async function recordsOf(wal: Wal): Promise<WalRecord[]> {
  const out: WalRecord[] = [];
  for await (const { lsn, payload } of wal.iterate()) out.push({ lsn, payload: payload.slice() });
  return out;
}

/** Opens the copy at `path` read-only and checks it holds exactly `expected` from `head`. */
async function assertCopy(
  path: string,
  head: number,
  expected: readonly WalRecord[],
  fs?: Fs,
): Promise<void> {
  const copy = await Wal.open(path, { readOnly: true, ...(fs === undefined ? {} : { fs }) });
  try {
    assert.equal(copy.head, head, 'the same head');
    assert.equal(copy.recovery.tornBytes, 0, 'nothing torn');
    assert.equal(copy.recovery.tear, undefined);
    assert.deepEqual(await recordsOf(copy), expected);
  } finally {
    await copy.close();
  }
}

describe('backup', () => {
  let parent: string;

  beforeEach(async () => {
    parent = await mkdtemp(join(tmpdir(), 'wal-backup-'));
  });

  afterEach(async () => {
    await rm(parent, { recursive: true, force: true });
  });

  async function liveLog(count: number, layout: 'segmented' | 'file' = 'segmented', size = 400) {
    const wal = await Wal.open(join(parent, layout === 'file' ? 'log.wal' : 'log'), {
      layout,
      segmentSize: 4096,
    });
    const lsns: number[] = [];
    for (let i = 0; i < count; i++)
      lsns.push(wal.append(bytes(50 + ((i * 37) % size), i)) as number);
    await wal.sync();
    return { wal, lsns };
  }

  /**
   * The real file system, except that the first write to a file of the copy
   * whose path matches `at` waits for `meanwhile`.
   */
  function pausing(meanwhile: () => Promise<void>, at: RegExp): Fs {
    let first: Promise<void> | undefined;
    const real = new NodeFs();
    return new Proxy(real, {
      get(target, property) {
        const value: unknown = Reflect.get(target, property, target);
        if (property !== 'pwrite') return typeof value === 'function' ? value.bind(target) : value;
        return async (file: { path: string }, ...rest: [Uint8Array, number]) => {
          if (at.test(file.path)) {
            first ??= meanwhile();
            await first;
          }
          return target.pwrite(file as never, ...rest);
        };
      },
    });
  }

  for (const layout of ['segmented', 'file'] as const) {
    it(`copies the durable prefix of a ${layout} log while durable appends go on; the copy opens with the same LSNs`, async () => {
      const { wal, lsns } = await liveLog(120, layout);
      await wal.truncateBefore(lsns[30]!);
      const head = wal.head;
      const durable = wal.durable;
      const before = (await recordsOf(wal)).length;
      // Appends and syncs during the backup, some of them durable waits.
      let stop = false;
      let appended = 0;
      const writer = (async () => {
        while (!stop) {
          await wal.append(bytes(200, 1000 + appended), { wait: 'durable' });
          appended++;
        }
      })();
      const progress: Array<[number, number]> = [];
      const result = await backup(wal, join(parent, 'copy'), {
        onProgress: (copied, total) => progress.push([copied, total]),
      });
      stop = true;
      await writer;
      assert.ok(appended > 0, 'appends went on during the backup');
      assert.equal(result.head, head);
      // The durable watermark when the copy started: at least the one before.
      assert.ok(result.end >= durable && result.end <= wal.durable, `end ${result.end}`);
      const all = await recordsOf(wal);
      const prefix = all.filter((record) => record.lsn < result.end);
      assert.equal(result.records, prefix.length);
      assert.ok(prefix.length >= before && prefix.length < all.length, 'a prefix');
      assert.deepEqual(progress.at(-1), [result.end - head, result.end - head]);
      await assertCopy(join(parent, 'copy'), head, prefix);
      // The copy is a log: it opens writable and goes on at the same LSN.
      const copy = await Wal.open(join(parent, 'copy'));
      assert.equal(copy.tail, result.end);
      assert.equal(await copy.append(bytes(10, 1), { wait: 'durable' }), result.end);
      await copy.close();
      assert.deepEqual(
        (await readdir(parent)).sort(),
        [
          'copy',
          layout === 'file' ? 'log.wal' : 'log',
          ...(layout === 'file' ? ['log.wal.lock', 'log.wal.meta'] : []),
        ].sort(),
        'no temporary directory left',
      );
      await wal.close();
    });
  }

  it('upTo: a record boundary at or below the durable watermark; else nothing is created', async () => {
    const { wal, lsns } = await liveLog(40);
    const result = await backup(wal, join(parent, 'part'), { upTo: lsns[20]! });
    assert.equal(result.end, lsns[20]);
    assert.equal(result.records, 20);
    await assertCopy(join(parent, 'part'), 0, (await recordsOf(wal)).slice(0, 20));
    const before = await readdir(parent);
    await rejectsCode(backup(wal, join(parent, 'x'), { upTo: lsns[20]! + 1 }), 'WAL_NOT_BOUNDARY');
    await rejectsCode(
      backup(wal, join(parent, 'x'), { upTo: wal.durable + 1 }),
      'ERR_OUT_OF_RANGE',
    );
    await rejectsCode(backup(wal, join(parent, 'x'), { upTo: -1 }), 'ERR_OUT_OF_RANGE');
    await rejectsCode(
      backup(wal, join(parent, 'x'), { nope: 1 } as never),
      'ERR_INVALID_ARG_VALUE',
    );
    await rejectsCode(backup(wal, join(parent, 'x'), { mode: 0o400 }), 'ERR_OUT_OF_RANGE');
    await rejectsCode(backup(wal, join(parent, 'x'), { segmentSize: 10 }), 'ERR_OUT_OF_RANGE');
    await rejectsCode(backup({} as Wal, join(parent, 'x')), 'ERR_INVALID_ARG_TYPE');
    await rejectsCode(backup(wal, ''), 'ERR_INVALID_ARG_TYPE');
    assert.deepEqual(await readdir(parent), before);
    await wal.close();
  });

  it('copies records larger than its write chunk, and refuses a source with records stepped over', async () => {
    const wal = await Wal.open(join(parent, 'log'), { segmentSize: 64 * 1024 });
    const big = bytes(1536 * 1024, 9); // 1.5 MiB: written on its own
    const lsns = [wal.append(bytes(100, 1)) as number, wal.append(big) as number];
    lsns.push(wal.append(bytes(100, 2)) as number, wal.append(bytes(100, 3)) as number);
    await wal.close();
    const source = await Wal.open(join(parent, 'log'));
    const result = await backup(source, join(parent, 'copy'));
    assert.equal(result.records, 4);
    await assertCopy(join(parent, 'copy'), 0, await recordsOf(source));
    await source.close();
    // Damage below the durable hint, stepped over by the skip policy: a
    // copy would hold a hole where the record was, so it is refused.
    const segment = join(parent, 'log', '00000000000000000000.wal');
    const damaged = await readFile(segment);
    damaged[lsns[0]! + 20] = damaged[lsns[0]! + 20]! ^ 0xff;
    await writeFile(segment, damaged);
    const skipping = await Wal.open(join(parent, 'log'), { recovery: 'skip' });
    assert.equal(skipping.recovery.skipped.length, 1);
    await rejectsCode(backup(skipping, join(parent, 'copy2')), 'WAL_CORRUPTION');
    assert.deepEqual((await readdir(parent)).sort(), ['copy', 'log']);
    await skipping.close();
  });

  it('a log truncated to its tail backs up as an empty log with the same head', async () => {
    const { wal } = await liveLog(30);
    await wal.truncateBefore(wal.tail);
    const result = await backup(wal, join(parent, 'empty'));
    assert.equal(result.records, 0);
    assert.equal(result.head, wal.tail);
    await assertCopy(join(parent, 'empty'), wal.tail, []);
    await wal.close();
  });

  it('follows a truncateBefore that runs during the copy: the copy gets the new head', async () => {
    const { wal, lsns } = await liveLog(400);
    const cut = lsns[350]!;
    // The truncation runs while the copy's directory is being set up,
    // after the backup fixed its prefix (head 0) and before it reads.
    const result = await backup(wal, join(parent, 'copy'), {
      fs: pausing(() => wal.truncateBefore(cut), /head\.tmp$/),
    });
    assert.equal(result.head, cut);
    assert.equal(result.records, 50);
    await assertCopy(
      join(parent, 'copy'),
      result.head,
      (await recordsOf(wal)).filter((record) => record.lsn >= result.head),
    );
    await wal.close();
  });

  it('a backup called while the log’s truncateBefore runs in the store waits for it: never WAL_BUSY, the log unharmed', async () => {
    // The source's file system holds the rename that records the new head
    // (the head file replaced), so the store's truncateBefore (a call a
    // store runs alone) is running when the backup starts and reads the
    // log's metadata.
    let armed = false;
    let holding: (() => void) | undefined;
    let held!: () => void;
    const renaming = new Promise<void>((resolve) => {
      holding = resolve;
    });
    const release = new Promise<void>((resolve) => {
      held = resolve;
    });
    const real = new NodeFs();
    const fs = new Proxy(real, {
      get(target, property) {
        const value: unknown = Reflect.get(target, property, target);
        if (property !== 'rename') return typeof value === 'function' ? value.bind(target) : value;
        return async (from: string, to: string) => {
          if (armed && to.endsWith('/head')) {
            armed = false;
            holding?.();
            await release;
          }
          return target.rename(from, to);
        };
      },
    });
    const wal = await Wal.open(join(parent, 'log'), { fs, segmentSize: 4096 });
    const lsns: number[] = [];
    for (let i = 0; i < 200; i++) lsns.push(wal.append(bytes(100, i)) as number);
    await wal.sync();
    armed = true;
    const cut = wal.truncateBefore(lsns[150]!);
    await renaming;
    const copied = backup(wal, join(parent, 'copy'));
    // Time for the backup to reach its metadata read while the cut is held.
    await new Promise((resolve) => setTimeout(resolve, 50));
    held();
    await cut;
    const result = await copied;
    assert.equal(wal.failure, undefined);
    assert.equal(result.head, lsns[150]);
    assert.equal(result.records, 50);
    await assertCopy(join(parent, 'copy'), result.head, await recordsOf(wal));
    wal.append(bytes(10, 1));
    await wal.sync();
    await wal.close();
  });

  it('a truncateAfter during the copy: WAL_BUSY, nothing created, no temporary directory left', async () => {
    const { wal, lsns } = await liveLog(400, 'segmented', 8000);
    await assert.rejects(
      // The cut runs at the copy's first flush, after about 1 MiB of records.
      backup(wal, join(parent, 'copy'), {
        fs: pausing(() => wal.truncateAfter(lsns[300]!), /\.wal$/),
      }),
      isCode('WAL_BUSY'),
    );
    assert.deepEqual(await readdir(parent), ['log']);
    await wal.close();
  });

  it('a read-only source copies up to the durable hint its writer recorded', async () => {
    const { wal, lsns } = await liveLog(100);
    // A hint behind the written end, as a live writer's is between rolls.
    const hint = lsns[50]!;
    await wal.store.updateMeta({ 'wal.durableHint': hint });
    const reader = await Wal.open(join(parent, 'log'), { readOnly: true });
    assert.ok(hint < reader.written);
    const result = await backup(reader, join(parent, 'copy'));
    assert.equal(result.end, hint);
    await assertCopy(
      join(parent, 'copy'),
      0,
      (await recordsOf(wal)).filter((record) => record.lsn < hint),
    );
    await reader.close();
    await wal.close();
  });

  describe('never backs up where a log keeps its files', () => {
    /**
     * Each of `destinations` (paths made from the log's path) is refused
     * with ERR_INVALID_ARG_VALUE before anything is created; the log then
     * reopens with every record.
     */
    async function refusedInto(
      layout: 'segmented' | 'file',
      destinations: (log: string) => string[],
    ): Promise<void> {
      const { wal } = await liveLog(3, layout); // one segment: no roll writes metadata meanwhile
      const log = join(parent, layout === 'file' ? 'log.wal' : 'log');
      await symlink(parent, join(parent, 'link'));
      if (layout === 'segmented') {
        await mkdir(join(log, 'lost+found'));
        await symlink(join(log, 'lost+found'), join(parent, 'into'));
      }
      const expected = await recordsOf(wal);
      const before = await treeSnapshot(parent);
      for (const destination of destinations(log)) {
        const error = await rejectsCode(backup(wal, destination), 'ERR_INVALID_ARG_VALUE');
        assert.match(error.message, /must not be .*log.*unopenable; nothing was changed/);
        assert.deepEqual(await treeSnapshot(parent), before, `${destination}: nothing created`);
      }
      await wal.close();
      const again = await Wal.open(log, { layout });
      assert.deepEqual(await recordsOf(again), expected);
      assert.equal(again.tail, wal.tail);
      await again.close();
    }

    it('a segmented log: inside its directory, at any depth, by any path to it', () =>
      refusedInto('segmented', (log) => [
        join(log, 'lock'), // a file of the log that is not there
        join(log, 'copy'),
        join(log, 'a', 'b', 'copy'),
        join(parent, 'link', 'log', 'copy'), // through a symbolic link
        join(parent, 'into', 'copy'), // a symbolic link to the log's lost+found
        relative(process.cwd(), join(log, 'copy')),
        `${log}/./copy`,
      ]));

    it('a single-file log: the files it keeps beside it', () =>
      refusedInto('file', (log) => [
        `${log}.meta`,
        `${log}.meta.tmp`,
        `${log}.lock`,
        `${log}.lock.break`,
        `${log}.lock.0123abcd.tmp`,
        join(parent, 'link', 'log.wal.lock'),
      ]));

    it('nor into another log, whatever the source', async () => {
      const { wal } = await liveLog(3);
      const other = join(parent, 'other');
      const second = await Wal.open(other, { segmentSize: 4096 });
      second.append(bytes(10, 1));
      await second.close();
      const file = join(parent, 'other.wal');
      await (await Wal.open(file, { layout: 'file' })).close();
      const walDb = join(parent, 'wal-db'); // no metadata: a segment file only
      await mkdir(walDb);
      await writeFile(join(walDb, '00000000000000000000.wal'), '');
      const before = await treeSnapshot(parent);
      for (const destination of [
        join(other, 'copy'),
        join(other, 'lock'),
        `${file}.lock`,
        `${file}.meta.tmp`,
        join(walDb, 'copy'),
      ]) {
        await rejectsCode(backup(wal, destination), 'ERR_INVALID_ARG_VALUE');
      }
      assert.deepEqual(await treeSnapshot(parent), before);
      for (const [path, layout] of [
        [other, 'segmented'],
        [file, 'file'],
      ] as const) {
        await (await Wal.open(path, { layout })).close();
      }
      await wal.close();
    });

    it('beside the log is fine, and so is a directory holding only lost+found', async () => {
      const mount = join(parent, 'mount');
      await mkdir(join(mount, 'lost+found'), { recursive: true });
      const { wal } = await liveLog(3);
      const expected = await recordsOf(wal);
      await backup(wal, join(mount, 'copy'));
      await wal.close();
      await assertCopy(join(mount, 'copy'), 0, expected);
    });

    it('beside the log is fine: a sibling of the directory, another name beside the file', async () => {
      for (const [layout, name] of [
        ['segmented', 'log.copy'],
        ['file', 'log.wal.copy'],
      ] as const) {
        const { wal } = await liveLog(5, layout);
        const expected = await recordsOf(wal);
        await backup(wal, join(parent, name));
        await wal.close();
        await assertCopy(join(parent, name), 0, expected);
        const source = await Wal.open(join(parent, layout === 'file' ? 'log.wal' : 'log'), {
          layout,
        });
        assert.deepEqual(await recordsOf(source), expected);
        await source.close();
      }
    });
  });

  it('never touches an existing destination: a file, an empty or a full directory', async () => {
    const { wal } = await liveLog(10);
    await writeFile(join(parent, 'file'), 'mine');
    await mkdir(join(parent, 'empty'));
    await mkdir(join(parent, 'full'));
    await writeFile(join(parent, 'full', 'photo.jpg'), 'jpeg');
    const before = await treeSnapshot(parent);
    for (const name of ['file', 'empty', 'full', 'log']) {
      await assert.rejects(backup(wal, join(parent, name)), (error: IoError) => {
        isCode('WAL_IO')(error);
        assert.equal(error.errno, 'EEXIST');
        assert.match(error.message, /exists/);
        return true;
      });
    }
    assert.deepEqual(await treeSnapshot(parent), before);
    await rejectsCode(backup(wal, join(parent, 'no', 'such', 'dir')), 'WAL_IO');
    await wal.close();
  });

  for (const mask of [0o022, 0o077]) {
    it(`the copy's files get the mode, its directory the matching one (umask ${mask.toString(8).padStart(3, '0')})`, async () => {
      const { wal } = await liveLog(40);
      const seen = await withUmask(mask, async () => {
        await backup(wal, join(parent, 'private'), { mode: 0o600 });
        await backup(wal, join(parent, 'default'));
        return {
          private: await permissionsUnder(join(parent, 'private')),
          default: await permissionsUnder(join(parent, 'default')),
        };
      });
      for (const [mode, found] of [
        [0o600, seen.private],
        [0o644, seen.default], // the source's store mode
      ] as const) {
        assert.ok(found.has('head') && found.has('meta') && found.size >= 4);
        for (const [name, bits] of found) {
          const expected = name === '' ? directoryMode(mode) & ~mask : mode & ~mask;
          assert.equal(bits, expected, `${name || 'the directory'}: ${bits.toString(8)}`);
        }
      }
      await wal.close();
    });
  }

  it('inherits the source store’s mode by default', async () => {
    const wal = await Wal.open(join(parent, 'log'), { mode: 0o640, segmentSize: 4096 });
    for (let i = 0; i < 20; i++) wal.append(bytes(100, i));
    await wal.sync();
    await withUmask(0o022, () => backup(wal, join(parent, 'copy')));
    for (const [name, bits] of await permissionsUnder(join(parent, 'copy'))) {
      assert.equal(bits, name === '' ? 0o750 : 0o640, name);
    }
    await wal.close();
  });

  describe('a failure of the last steps: typed, and no destination left', () => {
    type Case = {
      readonly name: string;
      /** The fault rules, given the temporary directory's path test. */
      readonly rules: (fs: FaultFs) => void;
      /** Where the complete copy is left: nowhere, in the temporary directory, or at the destination. */
      readonly left: 'nowhere' | 'temporary' | 'destination';
    };
    const isTemp = (path: string) => /^\/\.copy\.backup-[0-9a-f]+\.tmp$/.test(path);
    /** Fails the temporary directory's fsync made once the copy's store closed. */
    const tempSync = (fs: FaultFs) => {
      let closed = false;
      fs.inject({
        when: (call) => {
          if (call.method === 'close' && call.path.endsWith('.wal')) closed = true;
          return closed && call.method === 'syncDir' && isTemp(call.path);
        },
      });
    };
    const rename = (fs: FaultFs) =>
      fs.inject({ when: (call) => call.method === 'rename' && isTemp(call.path) });
    /** Fails the parent's fsync after the rename (every later one when `persistent`). */
    const parentSync = (fs: FaultFs, persistent: boolean) => {
      let renamed = false;
      fs.inject({
        when: (call) => {
          if (call.method === 'rename' && isTemp(call.path)) renamed = true;
          return renamed && call.method === 'syncDir' && call.path === '/';
        },
        persistent,
      });
    };
    const cases: Case[] = [
      { name: 'the fsync of the copy’s directory', rules: tempSync, left: 'nowhere' },
      { name: 'the rename', rules: rename, left: 'nowhere' },
      {
        name: 'the parent’s fsync after the rename',
        rules: (fs) => parentSync(fs, false),
        left: 'nowhere',
      },
      {
        name: 'the parent’s fsync, also after the rename back',
        rules: (fs) => parentSync(fs, true),
        left: 'temporary',
      },
      {
        name: 'the parent’s fsync, then the rename back',
        rules: (fs) => {
          parentSync(fs, false);
          fs.inject({ when: (call) => call.method === 'rename' && call.path === '/copy' });
        },
        left: 'destination',
      },
    ];
    for (const { name, rules, left } of cases) {
      it(`${name}: WAL_IO; the copy left ${left}`, async () => {
        const fs = new FaultFs(new CrashFs());
        const wal = await Wal.open('/log', { fs, segmentSize: 4096 });
        for (let i = 0; i < 20; i++) wal.append(bytes(30 + i * 11, i));
        await wal.sync();
        const expected = await recordsOf(wal);
        rules(fs);
        const error = (await rejectsCode(backup(wal, '/copy', { fs }), 'WAL_IO')) as IoError;
        assert.equal(error.errno, 'EIO');
        const root = await fs.readdir('/');
        assert.equal(root.includes('copy'), left === 'destination', `root: ${root.join(', ')}`);
        const temps = root.filter((entry) => isTemp(`/${entry}`));
        if (left === 'destination') await assertCopy('/copy', 0, expected, fs);
        else if (left === 'temporary') {
          assert.equal(temps.length, 1);
          await assertCopy(`/${temps[0]}`, 0, expected, fs);
        } else {
          // A custom fs cannot remove a directory: the temporary one is emptied.
          for (const temp of temps) assert.deepEqual(await fs.readdir(`/${temp}`), []);
        }
        await wal.close();
      });
    }
  });

  describe('power loss at every step of the copy', () => {
    /**
     * The destination in every power-loss state: absent, or the complete copy.
     * Returns how many states held the copy.
     */
    async function check(
      crash: CrashFs,
      head: number,
      expected: readonly WalRecord[],
      limit: number,
    ): Promise<{ states: number; present: number }> {
      let states = 0;
      let present = 0;
      for (const state of crash.crashStates({ limit, seed: states })) {
        states++;
        const fs = state.fs();
        if (!(await fs.readdir('/')).includes('copy')) continue;
        present++;
        await assertCopy('/copy', head, expected, fs).catch((error: unknown) => {
          throw new Error(`state ${state.index} (${state.description}): ${String(error)}`, {
            cause: error,
          });
        });
      }
      return { states, present };
    }

    /**
     * The source in every power-loss state (read-only): it still holds the
     * records the copy claims were durable (those below `end`). Returns the
     * states checked.
     */
    async function checkSource(
      crash: CrashFs,
      expected: readonly WalRecord[],
      limit: number,
    ): Promise<number> {
      let states = 0;
      for (const state of crash.crashStates({ limit, seed: 7 })) {
        states++;
        const source = await Wal.open('/log', { fs: state.fs(), readOnly: true });
        try {
          const records = (await recordsOf(source)).slice(0, expected.length);
          assert.deepEqual(records, expected, `state ${state.index} (${state.description})`);
        } finally {
          await source.close();
        }
      }
      return states;
    }

    // With a head above 0 the copy is synced before its head is set; a log
    // never truncated (head 0) has its copied records synced only by the
    // last sync before the rename. A source with blocking commits
    // (`blockingSync`) syncs and truncates on the calling thread: the copy's
    // durable prefix must be on the source's disk too.
    for (const blockingSync of [false, true]) {
      for (const truncated of [true, false]) {
        const title =
          (truncated
            ? 'the destination is absent or a valid copy; after the backup resolves, always the copy'
            : 'a log never truncated (head 0): the destination is absent or a valid copy; after the backup resolves, always the copy') +
          (blockingSync ? ' (a blocking source, blockingSync, keeps what it copied)' : '');
        it(title, async () => {
          const crash = new CrashFs();
          const wal = await Wal.open('/log', { fs: crash, segmentSize: 4096, blockingSync });
          const lsns: number[] = [];
          for (let i = 0; i < 60; i++)
            lsns.push(wal.append(bytes(20 + ((i * 53) % 300), i)) as number);
          await wal.sync();
          if (truncated) await wal.truncateBefore(lsns[25]!); // a head above 0, segment 0 gone
          for (let i = 60; i < 80; i++) wal.append(bytes(64, i)); // written, not yet durable
          const head = wal.head;
          const end = wal.durable;
          const expected = (await recordsOf(wal)).filter((record) => record.lsn < end);
          // Before every file-system call of the backup, every power-loss state.
          let steps = 0;
          let states = 0;
          let present = 0;
          const stepping = new Proxy(crash, {
            get(target, property) {
              const value: unknown = Reflect.get(target, property, target);
              if (typeof value !== 'function') return value;
              return async (...args: unknown[]) => {
                steps++;
                const seen = await check(target, head, expected, 12);
                states += seen.states;
                present += seen.present;
                return (value as (...a: unknown[]) => unknown).apply(target, args);
              };
            },
          });
          const result = await backup(wal, '/copy', { fs: stepping });
          assert.equal(result.end, end);
          const after = await check(crash, head, expected, 200);
          assert.equal(after.present, after.states, 'once resolved, every state holds the copy');
          assert.ok(steps > 20, `${steps} steps`);
          assert.ok(
            present > 0 && present < states,
            `${present} of ${states} states held the copy`,
          );
          assert.equal(head > 0, truncated);
          if (blockingSync) {
            assert.ok((await checkSource(crash, expected, 40)) > 0);
            assert.ok(
              crash.operations.some((op) => op.call === 'fdatasyncSync'),
              'the source synced on the calling thread',
            );
          }
          await wal.close();
        });
      }
    }
  });
});
