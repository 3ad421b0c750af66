// The application name (WalOptions.application, docs/FORMAT.md §5.2
// `wal.application`): recorded by the open that creates a log, checked by
// every later open given one, never added to an existing log.

import assert from 'node:assert/strict';
import { MemoryStore } from '@wal/store';
import { CrashFs } from '@wal/store/testing';
import fc from 'fast-check';
import { Wal } from '../../src/index.js';
import { bytes, rejectsCode } from '../helpers.js';
import { appendAll, DIR, FILE, segmented, single } from './fixtures.js';

const name = fc
  .string({ minLength: 1, maxLength: 40 })
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what the option refuses
  .filter((s) => !/[\u0000-\u001f\u007f]/.test(s));

describe('Wal', () => {
  describe('application name', () => {
    it('a new log records it; an open with the same name or none opens it, another name is refused with nothing changed', async () => {
      await fc.assert(
        fc.asyncProperty(
          name,
          name,
          fc.constantFrom('segmented', 'file'),
          fc.nat({ max: 3 }),
          async (mine, theirs, layout, records) => {
            fc.pre(mine !== theirs);
            const fs = new CrashFs();
            const open = layout === 'segmented' ? segmented : single;
            const where = layout === 'segmented' ? DIR : FILE;
            const created = await open(fs, { application: mine });
            assert.equal(created.application, mine);
            for (let i = 0; i < records; i++) created.append(bytes(10, i));
            await created.close();
            assert.equal((await readMeta(fs, layout))['wal.application'], mine);

            // Another program's open: refused, naming both names and the path.
            const before = fs.snapshot().files;
            const error = await rejectsCode(open(fs, { application: theirs }), 'WAL_NOT_A_LOG');
            assert.equal((error as { path?: string }).path, where);
            assert.ok(error.message.includes(JSON.stringify(mine)), error.message);
            assert.ok(error.message.includes(JSON.stringify(theirs)), error.message);
            assert.deepEqual(fs.snapshot().files, before, 'a refused open changes nothing');
            // Read-only too.
            await rejectsCode(open(fs, { application: theirs, readOnly: true }), 'WAL_NOT_A_LOG');

            for (const options of [{ application: mine }, {}, { readOnly: true }]) {
              const again = await open(fs, options);
              assert.equal(again.application, mine);
              assert.equal(again.recovery.records, records);
              await again.close();
            }
          },
        ),
        { numRuns: 25 },
      );
    });

    it('refused before the open repairs anything: a segment left below the head stays (FORMAT §8 step 1)', async () => {
      const fs = new CrashFs();
      const wal = await segmented(fs, { application: 'mine' });
      const { lsns } = appendAll(wal, [3000, 3000, 3000]);
      await wal.waitFor(lsns[2]!, 'durable');
      await wal.truncateBefore(lsns[2]!);
      await wal.close();
      // What a crash between the head's move and the unlink leaves: the first segment again.
      const stale = `${DIR}/${'0'.repeat(20)}.wal`;
      const file = await fs.open(stale, 'create');
      await fs.pwrite(file, bytes(100, 9), 0);
      await fs.close(file);
      const before = fs.snapshot().files;
      await rejectsCode(segmented(fs, { application: 'theirs' }), 'WAL_NOT_A_LOG');
      assert.deepEqual(fs.snapshot().files, before, 'nothing repaired, nothing written');
      // Its own program's open repairs it.
      const own = await segmented(fs, { application: 'mine' });
      await own.close();
      assert.equal(fs.snapshot().files.has(stale), false);
    });

    it('a log created without one keeps none: any name opens it, and the caller sees undefined', async () => {
      const fs = new CrashFs();
      const plain = await segmented(fs);
      assert.equal(plain.application, undefined);
      plain.append(bytes(5));
      await plain.close();
      const named = await segmented(fs, { application: '@wal/txn' });
      assert.equal(named.application, undefined);
      assert.equal(named.recovery.records, 1);
      named.append(bytes(5));
      await named.close();
      assert.equal((await readMeta(fs, 'segmented'))['wal.application'], undefined);
      const other = await segmented(fs, { application: 'another' });
      assert.equal(other.application, undefined);
      await other.close();
    });

    it('an empty log of our format without a name is not new: it gets none', async () => {
      const fs = new CrashFs();
      await (await single(fs)).close();
      const named = await single(fs, { application: 'mine' });
      assert.equal(named.application, undefined);
      await named.close();
      assert.equal((await readMeta(fs, 'file'))['wal.application'], undefined);
    });

    it('a read-only open of a new store records nothing', async () => {
      const store = new MemoryStore();
      const wal = await Wal.open(store, { application: 'mine', readOnly: true });
      assert.equal(wal.application, undefined);
      assert.deepEqual(await store.readMeta(), {});
      await wal.close();
    });

    it('reopen() after close keeps checking the name', async () => {
      const fs = new CrashFs();
      const wal = await segmented(fs, { application: 'mine' });
      await wal.close();
      const again = await wal.reopen();
      assert.equal(again.application, 'mine');
      await again.close();
    });

    it('a damaged value is WAL_CORRUPTION, with or without the option', async () => {
      for (const value of ['', 7, true]) {
        const fs = new CrashFs();
        const wal = await segmented(fs);
        await wal.store.updateMeta({ 'wal.application': value });
        await wal.close();
        await rejectsCode(segmented(fs), 'WAL_CORRUPTION');
        await rejectsCode(segmented(fs, { application: 'x' }), 'WAL_CORRUPTION');
      }
    });

    it('a name that is not a string of 1 to 256 characters without control characters is refused before anything is opened', async () => {
      for (const bad of ['', 'x'.repeat(257), 'a\nb', 'tab\t', '\u007f', 7, null, {}]) {
        await rejectsCode(
          Wal.open(new MemoryStore(), { application: bad as string }),
          'ERR_INVALID_ARG_TYPE',
        );
      }
      const longest = await Wal.open(new MemoryStore(), { application: 'é'.repeat(256) });
      assert.equal(longest.application, 'é'.repeat(256));
      await longest.close();
    });
  });
});

async function readMeta(fs: CrashFs, layout: string): Promise<Record<string, unknown>> {
  const wal = await (layout === 'segmented'
    ? segmented(fs, { readOnly: true })
    : single(fs, { readOnly: true }));
  const meta = await wal.store.readMeta();
  await wal.close();
  return meta;
}
