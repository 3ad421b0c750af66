/**
 * Checkpoints: the file format (test vector, every damage refused with the
 * file and offset), what a checkpoint does to the log and the directory,
 * open = checkpoint + the log after it, commits going on during a
 * checkpoint, automatic checkpoints, and the refusals.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FsFile } from '@wal/store';
import { MemoryStore } from '@wal/store';
import { CrashFs } from '@wal/store/testing';
import { encodeBlock, encodeHeader, HEADER_SIZE } from '../src/checkpoint.js';
import { TxnStore } from '../src/index.js';
import { isCode, openOnFs as open, text } from './helpers.js';

const DIR = '/db';
const LOG = { segmentSize: 4096 };
const CKPT = '/db.checkpoints';

async function fill(store: TxnStore, from: number, to: number, tag = 'v'): Promise<void> {
  for (let i = from; i < to; i += 10) {
    await store.run((tx) => {
      for (let j = i; j < Math.min(to, i + 10); j++)
        tx.put(`k/${String(j).padStart(5, '0')}`, `${tag}${j}`);
    });
  }
}

async function contents(store: TxnStore): Promise<Map<string, string>> {
  return store.run((tx) => new Map(tx.scan().map((e) => [text(e.key)!, text(e.value)!])));
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

async function fileBytes(fs: CrashFs, path: string): Promise<Uint8Array> {
  const bytes = fs.snapshot().files.get(path);
  assert.ok(bytes !== undefined, `${path} exists`);
  return bytes;
}

describe('checkpoints', () => {
  describe('format (docs/TXN-FORMAT.md §5)', () => {
    it('matches the test vector', () => {
      const log = Uint8Array.from({ length: 16 }, (_, i) => i);
      assert.equal(
        hex(encodeHeader({ seq: 7, lsn: 4096 }, 2, log)),
        '57545843' +
          '02000000' +
          '0700000000000000' +
          '0010000000000000' +
          '0200000000000000' +
          '000102030405060708090a0b0c0d0e0f' +
          'ddfefa68',
      );
      // Version 1 (written before checkpoints named their log), still read.
      const header = encodeHeader({ seq: 7, lsn: 4096 }, 2, undefined);
      assert.equal(
        hex(header),
        '57545843' +
          '01000000' +
          '0700000000000000' +
          '0010000000000000' +
          '0200000000000000' +
          '21ae4746',
      );
      const enc = new TextEncoder();
      const block = encodeBlock([
        { key: enc.encode('a'), value: enc.encode('1') },
        { key: enc.encode('b'), value: new Uint8Array() },
      ]);
      assert.equal(
        hex(block),
        '13000000' +
          '21085a91' +
          '01000000' +
          '61' +
          '01000000' +
          '31' +
          '01000000' +
          '62' +
          '00000000',
      );
    });
  });

  it('writes the state, moves the log head to it, and reopens from it plus the log after', async () => {
    const fs = new CrashFs();
    const store = await open(fs);
    await fill(store, 0, 300);
    await store.run((tx) => tx.delete('k/00007'));
    const info = await store.checkpoint();
    assert.ok(info !== undefined);
    assert.equal(info.entries, 299);
    assert.equal(info.path, `${CKPT}/checkpoint-${String(info.seq).padStart(20, '0')}.ckpt`);
    assert.equal(info.seq, store.stats().committed);
    assert.equal(store.log.head, info.lsn);
    assert.ok(info.lsn > 0);
    assert.equal((await fileBytes(fs, info.path)).length, info.bytes);
    // Nothing new: no checkpoint.
    assert.equal(await store.checkpoint(), undefined);
    await fill(store, 250, 320, 'w');
    await store.run((tx) => tx.delete('k/00001'));
    const before = await contents(store);
    await store.close();
    const reopened = await open(fs);
    assert.deepEqual(await contents(reopened), before);
    assert.equal(reopened.stats().committed, 39);
    // Commits go on from the right sequence number; a second checkpoint replaces the first.
    await fill(reopened, 400, 410);
    const second = await reopened.checkpoint();
    assert.ok(second !== undefined && second.seq === 40);
    assert.deepEqual((await fs.readdir(CKPT)).sort(), [
      `checkpoint-${String(40).padStart(20, '0')}.ckpt`,
    ]);
    const after = await contents(reopened);
    await reopened.close();
    const third = await open(fs);
    assert.deepEqual(await contents(third), after);
    await third.close();
  });

  it('lets transactions commit while it runs, and holds exactly the state at its start', async () => {
    const fs = new CrashFs();
    const store = await open(fs);
    await fill(store, 0, 3000);
    const seq = store.stats().committed;
    let done = false;
    const checkpoint = store.checkpoint().finally(() => {
      done = true;
    });
    let during = 0;
    let client = 0;
    while (!done) {
      const c = client++ % 4;
      await store.run((tx) => {
        tx.put(`k/${String(c).padStart(5, '0')}`, `during${client}`);
        tx.put(`new/${client}`, 'x');
      });
      if (!done) during++;
    }
    const info = (await checkpoint)!;
    assert.ok(during >= 3, `${during} commits resolved while the checkpoint ran`);
    assert.equal(info.seq, seq);
    assert.equal(info.entries, 3000);
    const final = await contents(store);
    await store.close();
    const reopened = await open(fs);
    assert.deepEqual(await contents(reopened), final);
    await reopened.close();
  });

  it('holds only durable commits: it writes nothing until the pending ones it holds are durable', async () => {
    const crash = new CrashFs();
    // The log's fdatasyncs and durable writes wait for `gate` (the
    // checkpoint files' do not).
    let gate: Promise<void> | undefined;
    const fs = new Proxy(crash, {
      get(target, name) {
        if (name === 'fdatasync')
          return async (file: FsFile) => {
            if (file.path.startsWith(`${DIR}/`)) await gate;
            return target.fdatasync(file);
          };
        if (name === 'pwriteDurable')
          return async (file: FsFile, bytes: Uint8Array, position: number) => {
            if (file.path.startsWith(`${DIR}/`)) await gate;
            return target.pwriteDurable(file, bytes, position);
          };
        const value = Reflect.get(target, name);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const store = await open(fs);
    let release = () => {};
    try {
      await fill(store, 0, 20);
      gate = new Promise((resolve) => {
        release = resolve;
      });
      const tx = store.begin();
      tx.put('k/pending', 'p');
      const committing = tx.commit();
      let done = false;
      const checkpointing = store.checkpoint().then((info) => {
        done = true;
        return info;
      });
      await new Promise((resolve) => setTimeout(resolve, 20));
      const written = [...crash.snapshot().files.keys()].filter((p) => p.startsWith(`${CKPT}/`));
      assert.deepEqual(written, [], 'nothing written while the commit is pending');
      assert.equal(done, false);
      release();
      gate = undefined;
      await committing;
      assert.equal((await checkpointing)?.seq, 3);
    } finally {
      release();
      await store.close();
    }
  });

  it('starts by itself once the log holds logBytes, and keeps the log short', async () => {
    const fs = new CrashFs();
    const store = await open(fs, { logBytes: 8192 });
    await fill(store, 0, 2000);
    await store.close();
    const names = await fs.readdir(CKPT);
    assert.equal(names.length, 1, names.join());
    const reopened = await open(fs, { logBytes: 8192 });
    assert.ok(reopened.log.head > 0);
    assert.ok(reopened.log.tail - reopened.log.head < 8192 * 4, 'the log stays short');
    assert.equal((await contents(reopened)).size, 2000);
    await reopened.close();
  });

  describe('a checkpoint directory whose entry is not durable yet', () => {
    const OPTIONS = { logBytes: 0, dir: '/data/ckpt' };
    const openAt = (fs: CrashFs) => open(fs, OPTIONS);

    /** Every power-loss state of `fs` opens with `keys` committed (acknowledged before the crash). */
    async function everyCrashStateHolds(fs: CrashFs, keys: string[]): Promise<void> {
      let states = 0;
      for (const state of fs.crashStates()) {
        states++;
        const store = await openAt(state.fs());
        const found = await store.run((tx) => keys.filter((key) => tx.get(key) !== undefined));
        await store.close();
        assert.deepEqual(found, keys, `crash state ${states}`);
      }
      assert.ok(states > 1, `${states} crash states`);
    }

    it('made by the application (not synced): its parent is fsynced before the log head moves', async () => {
      const fs = new CrashFs();
      await fs.mkdir('/data');
      await fs.syncDir('/');
      await fs.mkdir('/data/ckpt'); // its entry in /data is not durable
      const store = await openAt(fs);
      await fill(store, 0, 200);
      const info = (await store.checkpoint())!;
      assert.ok(store.log.head > 0 && info.lsn === store.log.head);
      // A power loss now (before close, which syncs everything).
      await everyCrashStateHolds(fs, ['k/00000', 'k/00199']);
      await store.close();
    });

    it("left by a process killed before its parent's fsync: the next process fsyncs it", async () => {
      let fs = new CrashFs();
      await fs.mkdir('/data');
      await fs.syncDir('/');
      // The first process creates the directory and dies at its parent's fsync.
      const syncDir = fs.syncDir.bind(fs);
      fs.syncDir = async (path: string) => {
        if (path === '/data') throw new Error('killed');
        return syncDir(path);
      };
      const first = await openAt(fs).catch(() => undefined);
      if (first !== undefined) {
        await fill(first, 0, 10);
        await assert.rejects(first.checkpoint());
      }
      fs = fs.processCrash();
      assert.ok((await fs.readdir('/data')).includes('ckpt'));
      const second = await openAt(fs);
      await fill(second, 0, 100);
      await second.run((tx) => tx.put('acknowledged', 'yes'));
      await second.checkpoint();
      assert.ok(second.log.head > 0);
      await everyCrashStateHolds(fs, ['k/00000', 'k/00099', 'acknowledged']);
      await second.close();
    });
  });

  it('open takes the log (its lock) before it reads a checkpoint: a second opener gets WAL_LOCKED', async () => {
    const fs = new CrashFs();
    const first = await open(fs);
    await fill(first, 0, 50);
    await first.checkpoint();
    // The second opener's calls, by path.
    const paths: string[] = [];
    const watched = new Proxy(fs, {
      get(target, name) {
        const value = Reflect.get(target, name);
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          const at = args[0] as { path?: unknown } | string;
          paths.push(typeof at === 'string' ? at : String(at?.path));
          return value.apply(target, args);
        };
      },
    });
    await assert.rejects(open(watched), isCode('WAL_LOCKED'));
    assert.deepEqual(
      paths.filter((path) => path.startsWith(CKPT)),
      [],
      'nothing of the checkpoint directory is read',
    );
    await first.close();
  });

  describe('a checkpoint belongs to its log', () => {
    const SHARED = { logBytes: 0, dir: '/ckpt' };
    const openAt = (fs: CrashFs, path: string) =>
      TxnStore.open(path, { log: { ...LOG, fs }, checkpoint: SHARED });

    it('two stores given one directory: the second is refused, never deletes or loads the first one’s', async () => {
      const fs = new CrashFs();
      const users = await openAt(fs, '/users');
      // While one store is open, the directory is locked: another store
      // given it is refused before it writes or removes anything there.
      // (Once a checkpoint of the first is there, the second's open finds it
      // another log's before it comes to the lock.)
      const whileOpen = async (code: string): Promise<void> => {
        const names = await fs.readdir('/ckpt');
        await assert.rejects(openAt(fs, '/orders'), isCode(code));
        assert.deepEqual(await fs.readdir('/ckpt'), names);
      };
      await whileOpen('WAL_LOCKED');
      for (let i = 0; i < 30; i++) await users.run((tx) => tx.put(`user${i}`, 'u'));
      const mine = (await users.checkpoint())!;
      await whileOpen('WAL_NOT_A_LOG');
      for (let i = 0; i < 30; i++) await users.run((tx) => tx.put(`user${i}`, 'U'));
      await users.close();
      const ours = (names: string[]) => names.filter((name) => name !== 'txn.lock');
      assert.deepEqual(ours(await fs.readdir('/ckpt')), [mine.path.slice('/ckpt/'.length)]);
      // The other store does not open on it once it is free either, and
      // leaves it as it is: the checkpoint there is another log's.
      const before = await fileBytes(fs, mine.path);
      const error = await openAt(fs, '/orders').catch((e: unknown) => e);
      assert.ok(isCode('WAL_NOT_A_LOG')(error));
      assert.match(String(error), new RegExp(mine.path));
      assert.match(String(error), /belongs to one store/);
      assert.deepEqual(await fileBytes(fs, mine.path), before);
      // The owner reopens with exactly its own keys.
      const reopened = await openAt(fs, '/users');
      const keys = await reopened.run((tx) => tx.scan().map((e) => text(e.key)!));
      assert.equal(keys.length, 30);
      assert.ok(keys.every((key) => key.startsWith('user')));
      await reopened.close();
    });

    it('an older checkpoint with a damaged header fails neither open nor a checkpoint, and is left alone', async () => {
      const fs = new CrashFs();
      const store = await open(fs);
      await fill(store, 0, 50);
      await store.checkpoint();
      await store.close();
      const junk = `${CKPT}/checkpoint-00000000000000000001.ckpt`;
      const file = await fs.open(junk, 'create');
      await fs.pwrite(file, new Uint8Array(64).fill(7), 0);
      await fs.close(file);
      const reopened = await open(fs);
      assert.equal((await contents(reopened)).size, 50);
      await fill(reopened, 50, 60);
      assert.ok((await reopened.checkpoint()) !== undefined);
      await reopened.close();
      assert.ok((await fs.readdir(CKPT)).includes('checkpoint-00000000000000000001.ckpt'));
    });

    it('a checkpoint of version 1 (naming no log) is still read, and the next checkpoint replaces it', async () => {
      const fs = new CrashFs();
      const store = await open(fs);
      await fill(store, 0, 100);
      const info = (await store.checkpoint())!;
      await fill(store, 100, 120);
      const before = await contents(store);
      await store.close();
      // Rewrite it as version 1: the same entries under the older, shorter header.
      const bytes = await fileBytes(fs, info.path);
      const v1 = new Uint8Array(bytes.length - 16);
      v1.set(encodeHeader(info, info.entries, undefined));
      v1.set(bytes.subarray(HEADER_SIZE), 36);
      const old = await fs.open(info.path, 'create');
      await fs.ftruncate(old, 0);
      await fs.pwrite(old, v1, 0);
      await fs.close(old);
      const reopened = await open(fs);
      assert.deepEqual(await contents(reopened), before);
      await fill(reopened, 200, 210);
      const next = (await reopened.checkpoint())!;
      assert.deepEqual(await fs.readdir(CKPT), [next.path.slice(CKPT.length + 1)]);
      await reopened.close();
    });
  });

  it('removes a leftover temporary file, never a foreign one, and names a damaged one', async () => {
    const fs = new CrashFs();
    const store = await open(fs);
    await fill(store, 0, 50);
    await store.checkpoint();
    await store.close();
    for (const name of ['checkpoint-00000000000000000001.ckpt.tmp', 'notes.txt']) {
      const file = await fs.open(`${CKPT}/${name}`, 'create');
      await fs.pwrite(file, new Uint8Array([1, 2, 3]), 0);
      await fs.close(file);
    }
    const reopened = await open(fs);
    await fill(reopened, 50, 60);
    await reopened.checkpoint();
    await reopened.close();
    assert.deepEqual((await fs.readdir(CKPT)).sort(), [
      'checkpoint-00000000000000000006.ckpt',
      'notes.txt',
    ]);
  });

  describe('damage', () => {
    let fs: CrashFs;
    let path: string;
    let good: Uint8Array;
    before(async () => {
      fs = new CrashFs();
      const store = await open(fs);
      await fill(store, 0, 40);
      path = (await store.checkpoint())!.path;
      await store.close();
      good = await fileBytes(fs, path);
    });

    async function reopenWith(bytes: Uint8Array): Promise<unknown> {
      const damaged = new CrashFs({
        image: { files: new Map([...fs.snapshot().files, [path, bytes]]) },
      });
      try {
        const store = await open(damaged);
        await store.close();
        return undefined;
      } catch (error) {
        return error;
      }
    }

    it('every flipped byte is WAL_CORRUPTION naming the file and an offset', async function () {
      this.timeout(60_000);
      for (let at = 0; at < good.length; at++) {
        const bytes = good.slice();
        bytes[at]! ^= 0x40;
        const error = (await reopenWith(bytes)) as {
          code?: string;
          message?: string;
          offset?: number;
        };
        assert.equal(error?.code, 'WAL_CORRUPTION', `flip at ${at}: ${String(error)}`);
        assert.ok(error.message!.includes(path), error.message);
        assert.equal(typeof error.offset, 'number');
      }
    });

    it('every cut and an appended byte are WAL_CORRUPTION', async () => {
      for (let length = 0; length < good.length; length += 7) {
        const error = await reopenWith(good.slice(0, length));
        assert.ok(isCode('WAL_CORRUPTION')(error));
      }
      const longer = new Uint8Array(good.length + 1);
      longer.set(good);
      assert.ok(isCode('WAL_CORRUPTION')(await reopenWith(longer)));
    });

    it('a hostile block length is refused before anything is allocated for it', async () => {
      const bytes = good.slice();
      new DataView(bytes.buffer).setUint32(HEADER_SIZE, 0xfffffff0, true);
      const error = (await reopenWith(bytes)) as Error;
      assert.ok(isCode('WAL_CORRUPTION')(error));
      assert.match(error.message, /overruns the file/);
    });

    it('a missing checkpoint under a truncated log is WAL_CORRUPTION, not an empty store', async () => {
      const files = new Map(fs.snapshot().files);
      files.delete(path);
      const error = await TxnStore.open(DIR, {
        log: { ...LOG, fs: new CrashFs({ image: { files } }) },
      }).catch((e: unknown) => e);
      assert.ok(isCode('WAL_CORRUPTION')(error));
      assert.match(String(error), /the log starts at/);
    });
  });

  it('the default directory is beside the log, from its absolute path; a log at / needs one', async () => {
    const root = await mkdtemp(join(tmpdir(), 'txn-ckpt-'));
    try {
      const log = join(root, 'log');
      await mkdir(log);
      // `log/.` is the log directory: its checkpoints go beside it, not into it.
      const store = await TxnStore.open(`${log}/.`, { checkpoint: { logBytes: 0 } });
      await fill(store, 0, 10);
      await store.checkpoint();
      await store.close();
      assert.deepEqual((await readdir(root)).sort(), ['log', 'log.checkpoints']);
      assert.equal((await readdir(join(root, 'log.checkpoints'))).length, 1);
      assert.ok(!(await readdir(log)).some((name) => name.includes('checkpoints')));
    } finally {
      await rm(root, { recursive: true, force: true });
    }
    await assert.rejects(
      TxnStore.open('/', { log: { fs: new CrashFs() } }),
      isCode('ERR_INVALID_ARG_VALUE'),
    );
  });

  it('a file where the checkpoint directory should be is WAL_NOT_A_LOG, and stays as it was', async () => {
    const fs = new CrashFs();
    const file = await fs.open(CKPT, 'create');
    await fs.pwrite(file, new TextEncoder().encode('mine'), 0);
    await fs.close(file);
    await assert.rejects(open(fs), isCode('WAL_NOT_A_LOG'));
    assert.equal(new TextDecoder().decode(await fileBytes(fs, CKPT)), 'mine');
  });

  it('open creates a missing checkpoint directory (durably), and refuses one whose parent is missing', async () => {
    const fs = new CrashFs();
    await fs.mkdir('/data');
    await fs.syncDir('/');
    const store = await open(fs, { dir: '/data/ckpt' });
    // Created, and its entry durable: it is there in every power-loss state.
    for (const state of fs.crashStates()) assert.ok(state.dirs.has('/data/ckpt'));
    await store.close();
    const error = await open(fs, { dir: '/nowhere/ckpt' }).catch((e: unknown) => e);
    assert.ok(isCode('ERR_INVALID_ARG_VALUE')(error));
    assert.match(String(error), /\/nowhere\/ckpt/);
    assert.deepEqual(await fs.readdir('/'), ['data', 'db'].sort());
    // The store still opens with a good one.
    await (await open(fs, { dir: '/data/ckpt' })).close();
  });

  it('refuses bad options, and checkpoint() without a directory', async () => {
    const fs = new CrashFs();
    for (const checkpoint of [{ logBytes: -1 }, { logBytes: 1.5 }, { dir: '' }, { every: 1 }, 7])
      await assert.rejects(
        TxnStore.open(DIR, { log: { fs }, checkpoint: checkpoint as never }),
        (e: { code?: string }) => e.code?.startsWith('ERR_') === true,
      );
    const store = await TxnStore.open(new MemoryStore());
    await assert.rejects(store.checkpoint(), isCode('ERR_INVALID_ARG_VALUE'));
    await store.close();
    await assert.rejects(store.checkpoint(), isCode('WAL_CLOSED'));
  });
});
