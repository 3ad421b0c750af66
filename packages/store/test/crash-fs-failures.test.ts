import assert from 'node:assert/strict';
import type { FsFile } from '@wal/store';
import { CrashFs, type CrashState, FaultFs } from '@wal/store/testing';

/** `n` bytes of `value`. */
const fill = (n: number, value: number): Uint8Array => new Uint8Array(n).fill(value);

/** Every state, exhaustively. */
function all(fs: CrashFs): CrashState[] {
  const states = fs.crashStates({ limit: 100_000, mode: 'exhaustive' });
  assert.ok(states.exhaustive, `expected an exhaustive enumeration, count ${states.count}`);
  return [...states];
}

/** The distinct contents of `path` over `states`, as hex (`undefined`: absent). */
function contents(states: readonly CrashState[], path: string): Set<string | undefined> {
  return new Set(
    states.map((state) => {
      const data = state.files.get(path);
      return data === undefined ? undefined : Buffer.from(data).toString('hex');
    }),
  );
}

const hex = (...parts: Uint8Array[]): string => Buffer.concat(parts).toString('hex');

/** `/f` holding 512 durable bytes of `A`, under a durable name. */
async function durableA(crash: CrashFs): Promise<FsFile> {
  const file = await crash.open('/f', 'create');
  await crash.syncDir('/');
  await crash.pwrite(file, fill(512, 0x41), 0);
  await crash.fdatasync(file);
  return file;
}

describe('CrashFs: failed syncs (writeback errors) and tears that keep no sector', () => {
  for (const method of ['fdatasync', 'fdatasyncSync'] as const) {
    it(`a failed ${method}: its writes stay readable, and no later fdatasync (this process or the next) makes them durable`, async () => {
      const crash = new CrashFs();
      const file = await durableA(crash);
      const fs = new FaultFs(crash);
      fs.inject({ method, fault: 'EIO' });
      await fs.pwrite(file, fill(512, 0x42), 512);
      if (method === 'fdatasync') await assert.rejects(fs.fdatasync(file), { code: 'EIO' });
      else assert.throws(() => fs.fdatasyncSync!(file), { code: 'EIO' });
      // The page cache keeps the bytes whose writeback failed.
      const read = new Uint8Array(1024);
      assert.equal(await crash.pread(file, read, 0), 1024);
      assert.equal(hex(read), hex(fill(512, 0x41), fill(512, 0x42)));
      // A retry succeeds without writing them: they may still be lost.
      await fs.fdatasync(file);
      const lost = hex(fill(512, 0x41));
      assert.ok(contents(all(crash), '/f').has(lost), 'lost after a successful retry');
      // Nor does the first sync of the next process.
      const next = crash.processCrash();
      const again = await next.open('/f', 'write');
      await next.fdatasync(again);
      const states = contents(all(next), '/f');
      assert.ok(states.has(lost), 'lost after a later process synced');
      assert.ok(states.has(hex(fill(512, 0x41), fill(512, 0x42))), 'or kept');
      assert.ok(states.has(hex(fill(512, 0x41), fill(512, 0))), 'or its size kept, zeros');
      // The failed call is in the trace, covering nothing.
      const failed = crash.operations.find((op) => op.error === 'EIO')!;
      assert.equal(failed.call, method);
      assert.deepEqual(failed.covers, []);
    });
  }

  for (const end of ['settles', 'ran at a process crash'] as const) {
    it(`an fdatasync in flight when a later one fails (it ${end}) makes none of the failed writes durable`, async () => {
      // Both wait on the same failed writeback: the error goes to one caller,
      // the other may return success, and the pages are clean, never written.
      const crash = new CrashFs();
      const file = await durableA(crash);
      const fs = new FaultFs(crash);
      await fs.pwrite(file, fill(512, 0x42), 512);
      const first = fs.fdatasync(file);
      fs.inject({ method: 'fdatasync', fault: 'EIO' });
      await assert.rejects(fs.fdatasync(file), { code: 'EIO' });
      let states: CrashState[];
      if (end === 'settles') {
        await first;
        states = all(crash);
      } else {
        first.catch(() => {});
        states = all(crash.processCrash({ inFlight: 'ran' }));
      }
      assert.ok(contents(states, '/f').has(hex(fill(512, 0x41))), 'the failed write may be lost');
    });
  }

  it('a write in flight when an fdatasync fails is not made durable by a later one', async () => {
    // Its bytes were in the page cache when the failed writeback ran.
    const crash = new CrashFs();
    const file = await durableA(crash);
    const fs = new FaultFs(crash);
    fs.inject({ method: 'fdatasync', fault: 'EIO' });
    const written = fs.pwrite(file, fill(512, 0x42), 512);
    await assert.rejects(fs.fdatasync(file), { code: 'EIO' });
    await written;
    await fs.fdatasync(file);
    assert.ok(contents(all(crash), '/f').has(hex(fill(512, 0x41))), 'lost after the retry');
  });

  it('a write made after a failed fdatasync is made durable by the next one', async () => {
    const crash = new CrashFs();
    const file = await durableA(crash);
    const fs = new FaultFs(crash);
    fs.inject({ method: 'fdatasync', fault: 'EIO' });
    await fs.pwrite(file, fill(512, 0x42), 512);
    await assert.rejects(fs.fdatasync(file), { code: 'EIO' });
    // Written again: dirty again, so the next fdatasync writes it back.
    await fs.pwrite(file, fill(512, 0x43), 512);
    await fs.fdatasync(file);
    assert.deepEqual(contents(all(crash), '/f'), new Set([hex(fill(512, 0x41), fill(512, 0x43))]));
  });

  it('a failed pwriteDurable: its bytes are in the page cache, may be lost, and no later fdatasync makes them durable', async () => {
    const crash = new CrashFs();
    const file = await durableA(crash);
    const fs = new FaultFs(crash);
    fs.inject({ method: 'pwriteDurable', fault: 'EIO' });
    await assert.rejects(fs.pwriteDurable!(file, fill(512, 0x42), 512), { code: 'EIO' });
    const read = new Uint8Array(1024);
    assert.equal(await crash.pread(file, read, 0), 1024);
    assert.equal(hex(read), hex(fill(512, 0x41), fill(512, 0x42)));
    await fs.fdatasync(file);
    const states = contents(all(crash), '/f');
    assert.ok(states.has(hex(fill(512, 0x41))), 'lost');
    assert.ok(states.has(hex(fill(512, 0x41), fill(512, 0x42))), 'or kept');
  });

  it('a pwriteDurable failing with ENOSPC, or failing to open its descriptor, wrote nothing', async () => {
    for (const fault of ['ENOSPC', { code: 'EMFILE', syscall: 'open' }] as const) {
      const crash = new CrashFs();
      const file = await durableA(crash);
      const fs = new FaultFs(crash);
      fs.inject({ method: 'pwriteDurable', fault });
      await assert.rejects(fs.pwriteDurable!(file, fill(512, 0x42), 512));
      assert.equal(await crash.size(file), 512, JSON.stringify(fault));
      assert.deepEqual(contents(all(crash), '/f'), new Set([hex(fill(512, 0x41))]));
    }
  });

  it('a FaultFs over a FaultFs over a CrashFs: the failure reaches the CrashFs', async () => {
    const crash = new CrashFs();
    const file = await durableA(crash);
    const fs = new FaultFs(new FaultFs(crash));
    fs.inject({ method: 'fdatasync', fault: 'EIO' });
    await fs.pwrite(file, fill(512, 0x42), 512);
    await assert.rejects(fs.fdatasync(file), { code: 'EIO' });
    await fs.fdatasync(file);
    assert.ok(contents(all(crash), '/f').has(hex(fill(512, 0x41))));
  });

  it('a pending extending write may leave the file at its new length reading zeros, one sector or many', async () => {
    for (const length of [100, 512, 4096]) {
      const crash = new CrashFs();
      const file = await crash.open('/f', 'create');
      await crash.syncDir('/');
      await crash.pwrite(file, fill(length, 0x41), 0);
      const states = contents(all(crash), '/f');
      assert.ok(states.has(hex(fill(length, 0))), `${length} bytes: the size kept, the data lost`);
      // Sampling draws it too.
      const sampled = new Set<string>();
      for (const state of crash.crashStates({ mode: 'sample', limit: 2000, unique: false })) {
        sampled.add(Buffer.from(state.files.get('/f')!).toString('hex'));
      }
      assert.ok(sampled.has(hex(fill(length, 0))), `${length} bytes: sampled`);
    }
  });

  it('a state that keeps no sector of a torn write says so', async () => {
    const crash = new CrashFs();
    const file = await crash.open('/f', 'create');
    await crash.syncDir('/');
    await crash.pwrite(file, fill(100, 0x41), 0);
    const zeros = all(crash).find((state) => {
      const data = state.files.get('/f')!;
      return data.length === 100 && data.every((byte) => byte === 0);
    });
    assert.match(zeros!.description, /kept none of 1, lost=/);
  });
});
