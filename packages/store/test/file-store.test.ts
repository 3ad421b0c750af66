import assert from 'node:assert/strict';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { FileStore } from '../src/file-store.js';
import { NodeFs } from '../src/fs/node-fs.js';
import { decodeMeta, encodeMeta } from '../src/meta-file.js';
import { FaultFs } from '../src/testing/fault-fs.js';
import { RecordingFs, rejectsCode, removeTempDirs, tempDir } from './fs-helpers.js';

describe('FileStore', () => {
  after(removeTempDirs);

  it('creates the data file (fsyncing its directory) and its .meta beside its .lock', async () => {
    const dir = await tempDir();
    const path = join(dir, 'log');
    const fs = new RecordingFs(new NodeFs());
    const store = await FileStore.open(path, { fs });
    try {
      assert.deepEqual(fs.log, [
        `readdir ${path}`,
        // Nothing is there: none of the files kept beside a log may be another's.
        `open ${path}.meta`,
        `open ${path}.meta.tmp`,
        `open ${path}.lock`,
        `open ${path}.lock.break`,
        // Its directory resolved: the lock and metadata are named after the real file.
        `realpath ${dir}`,
        `lock ${path}.lock`,
        `open ${path}`,
        `open ${path}`,
        `syncDir ${dir}`,
        `open ${path}.meta`,
        `open ${path}.meta.tmp`,
        `pwrite ${path}.meta.tmp`,
        `fdatasync ${path}.meta.tmp`,
        `close ${path}.meta.tmp`,
        `rename ${path}.meta.tmp ${path}.meta`,
        `syncDir ${dir}`,
        `size ${path}`,
      ]);
      assert.deepEqual((await readdir(dir)).sort(), ['log', 'log.lock', 'log.meta']);
      assert.deepEqual(decodeMeta(await readFile(`${path}.meta`), 'm'), {});
      assert.deepEqual(store.supports, {
        durable: true,
        persistent: true,
        prefixReclaim: false,
        locking: true,
      });
      await store.updateMeta({ a: 'x' });
      assert.deepEqual((await readdir(dir)).sort(), ['log', 'log.lock', 'log.meta']);
      assert.deepEqual(decodeMeta(await readFile(`${path}.meta`), 'm'), { a: 'x' });
    } finally {
      await store.close();
    }
    assert.deepEqual((await readdir(dir)).sort(), ['log', 'log.meta']);
  });

  it('truncateBefore records the head in the metadata and reclaims no space', async () => {
    const path = join(await tempDir(), 'log');
    const store = await FileStore.open(path);
    await store.write(0, new Uint8Array(1000).fill(7));
    await store.updateMeta({ keep: true });
    await store.truncateBefore(600);
    assert.equal((await stat(path)).size, 1000);
    assert.deepEqual(decodeMeta(await readFile(`${path}.meta`), 'm'), {
      keep: true,
      'store.head': 600,
    });
    assert.deepEqual(await store.readMeta(), { keep: true });
    await store.updateMeta({ keep: undefined });
    assert.deepEqual(decodeMeta(await readFile(`${path}.meta`), 'm'), { 'store.head': 600 });
    await store.close();
    const again = await FileStore.open(path);
    assert.equal(again.head, 600);
    assert.equal(again.length, 1000);
    await rejectsCode(again.updateMeta({ 'store.head': 0 }), 'ERR_INVALID_ARG_VALUE');
    await again.close();
  });

  it('a head beyond the file (its data lost) opens with length = head, reading zeros', async () => {
    const path = join(await tempDir(), 'log');
    await writeFile(`${path}.meta`, encodeMeta({ 'store.head': 50 }));
    await writeFile(path, new Uint8Array(10));
    const store = await FileStore.open(path);
    assert.equal(store.head, 50);
    assert.equal(store.length, 50);
    await store.write(60, new Uint8Array([1]));
    assert.deepEqual(await store.read(50, 11), Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]));
    await store.close();
  });

  it('refuses damaged metadata with WAL_CORRUPTION and releases the lock', async () => {
    const path = join(await tempDir(), 'log');
    const good = encodeMeta({ a: 1 });
    const cases: Uint8Array[] = [
      good.subarray(0, 10),
      Buffer.concat([Buffer.from('XXXX'), good.subarray(4)]),
      Uint8Array.from(good).fill(9, 4, 5),
      Buffer.concat([good, Buffer.from('x')]),
      encodeMeta({ 'store.head': -1 }),
      encodeMeta({ 'store.head': 'x' }),
    ];
    const flipped = Uint8Array.from(good);
    flipped[20]! ^= 1;
    cases.push(flipped);
    for (const body of ['[1]', 'nope', '{"a":{}}', 'null']) {
      const bytes = Buffer.from(encodeMeta({}));
      const raw = Buffer.from(body);
      const out = Buffer.alloc(16 + raw.length);
      bytes.copy(out, 0, 0, 8);
      out.writeUInt32LE(raw.length, 8);
      raw.copy(out, 16);
      const { crc32c } = await import('@node-rs/crc32');
      out.writeUInt32LE(crc32c(out.subarray(16), crc32c(out.subarray(0, 12))), 12);
      cases.push(out);
    }
    await writeFile(path, ''); // beside nothing, a .meta without the magic is a user's file
    for (const bytes of cases) {
      await writeFile(`${path}.meta`, bytes);
      await rejectsCode(FileStore.open(path), 'WAL_CORRUPTION');
    }
    await writeFile(`${path}.meta`, good);
    const store = await FileStore.open(path);
    assert.deepEqual(await store.readMeta(), { a: 1 });
    await store.close();
  });

  it('metadata encoding round-trips any map (property)', () => {
    const value = fc.oneof(
      fc.string(),
      fc.boolean(),
      fc.double({ noNaN: true, noDefaultInfinity: true }),
    );
    fc.assert(
      fc.property(fc.dictionary(fc.string({ minLength: 1 }), value), (meta) => {
        const decoded = decodeMeta(encodeMeta(meta), 'm');
        assert.deepEqual(decoded, JSON.parse(JSON.stringify(meta)));
      }),
    );
  });

  it('keeps keys that are also Object.prototype names, such as __proto__ (regression)', async () => {
    const meta = JSON.parse('{"__proto__":0,"constructor":"x","toString":true}') as Record<
      string,
      number | string | boolean
    >;
    const decoded = decodeMeta(encodeMeta(meta), 'm');
    assert.deepEqual(Object.keys(decoded).sort(), ['__proto__', 'constructor', 'toString']);
    assert.equal(Object.getPrototypeOf(decoded), Object.prototype);
    const store = await FileStore.open(join(await tempDir(), 'log'));
    try {
      await store.updateMeta(meta);
      assert.deepEqual(Object.keys(await store.readMeta()).sort(), [
        '__proto__',
        'constructor',
        'toString',
      ]);
      await store.updateMeta({ ['__proto__']: undefined });
      assert.deepEqual(Object.keys(await store.readMeta()).sort(), ['constructor', 'toString']);
    } finally {
      await store.close();
    }
  });

  it('loops over short writes and reads; a zero-progress write is WAL_IO', async () => {
    const path = join(await tempDir(), 'log');
    const fs = new FaultFs(new NodeFs());
    const store = await FileStore.open(path, { fs });
    try {
      fs.inject({ method: 'pwrite', fault: { short: 3 }, persistent: true });
      fs.inject({ method: 'pread', fault: 'short', persistent: true });
      const data = Uint8Array.from({ length: 20 }, (_, i) => i);
      const before = fs.count('pwrite');
      await store.write(0, data);
      assert.equal(fs.count('pwrite') - before, 7);
      assert.deepEqual(await store.read(0, 20), data);
      fs.clear();
      fs.inject({ method: 'pwrite', fault: { short: 0 } });
      const error = await rejectsCode(store.write(20, data), 'WAL_IO');
      assert.match(error.message, /no progress/);
      await store.write(20, data); // not latched
      assert.equal(store.length, 40);
    } finally {
      await store.close();
    }
  });

  it('maps ENOSPC to WAL_NO_SPACE without latching', async () => {
    const path = join(await tempDir(), 'log');
    const fs = new FaultFs(new NodeFs());
    const store = await FileStore.open(path, { fs });
    fs.inject({ method: 'pwrite', fault: 'ENOSPC' });
    const error = await rejectsCode(store.write(0, new Uint8Array(5)), 'WAL_NO_SPACE');
    assert.equal((error as { errno?: string }).errno, 'ENOSPC');
    fs.inject({ method: 'pwrite', fault: 'ENOSPC' }); // meta temp write
    await rejectsCode(store.updateMeta({ a: 1 }), 'WAL_NO_SPACE');
    await store.write(0, new Uint8Array(5));
    await store.sync();
    assert.deepEqual(await store.readMeta(), {});
    await store.close();
  });

  it('rejects bad arguments to open', async () => {
    await rejectsCode(FileStore.open('' as never), 'ERR_INVALID_ARG_TYPE');
    await rejectsCode(FileStore.open('x', null as never), 'ERR_INVALID_ARG_TYPE');
  });

  it('a failure opening releases the lock; a failed close of the file still releases it', async () => {
    const path = join(await tempDir(), 'log');
    const fs = new FaultFs(new NodeFs());
    fs.inject({ method: 'size', fault: 'EIO' });
    await rejectsCode(FileStore.open(path, { fs }), 'WAL_IO');
    fs.inject({ method: 'open', fault: { code: 'EACCES' } });
    await rejectsCode(FileStore.open(path, { fs }), 'WAL_IO');
    const store = await FileStore.open(path, { fs });
    fs.inject({ method: 'close', fault: 'EIO' });
    await rejectsCode(store.close(), 'WAL_IO');
    const again = await FileStore.open(path);
    await again.close();
  });

  it('sync flushes only when written since the last flush; the first sync after open also fsyncs the directory', async () => {
    const dir = await tempDir();
    const path = join(dir, 'log');
    const first = await FileStore.open(path);
    await first.write(0, new Uint8Array(3));
    await first.close();
    const fs = new RecordingFs(new NodeFs());
    const store = await FileStore.open(path, { fs });
    fs.log.length = 0;
    await store.sync();
    assert.deepEqual(fs.log.sort(), [`fdatasync ${path}`, `syncDir ${dir}`]);
    fs.log.length = 0;
    await store.sync();
    assert.equal(fs.log.length, 0);
    await store.write(3, new Uint8Array(1));
    await Promise.all([store.sync(), store.sync()]);
    assert.deepEqual(
      fs.log.filter((e) => e.startsWith('fdatasync')),
      [`fdatasync ${path}`],
    );
    await store.close();
  });
});
