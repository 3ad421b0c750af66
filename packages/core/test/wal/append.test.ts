// append and appendBatch: LSNs handed out synchronously, copies of the
// payload, all-or-nothing batches, argument and option checks (their waits:
// wait.test.ts; a full staging area: back-pressure.test.ts).

import assert from 'node:assert/strict';
import { MemoryStore } from '@wal/store';
import { HEADER_SIZE } from '../../src/frame.js';
import { Wal, type WalOptions } from '../../src/index.js';
import { bytes, rejectsCode, throwsCode } from '../helpers.js';
import { appendAll } from './fixtures.js';

describe('Wal', () => {
  describe('append', () => {
    it('hands out LSNs synchronously and in order (lsn[i+1] = lsn[i] + 8 + len[i])', async () => {
      const wal = await Wal.open(new MemoryStore());
      const sizes = [0, 1, 7, 100, 5000, 20000, 3];
      const { lsns } = appendAll(wal, sizes);
      assert.equal(lsns[0], 0);
      for (let i = 1; i < lsns.length; i++) {
        assert.equal(lsns[i], lsns[i - 1]! + HEADER_SIZE + sizes[i - 1]!);
      }
      assert.equal(wal.tail, lsns.at(-1)! + HEADER_SIZE + sizes.at(-1)!);
      await wal.close();
    });

    it('copies the payload: changing it after append changes nothing; views and Buffers work', async () => {
      const wal = await Wal.open(new MemoryStore(), { stagingLimit: 64 * 1024 });
      const small = bytes(100);
      const large = bytes(30_000); // larger than a staging chunk: written on its own
      const a = wal.append(small);
      const b = wal.append(large);
      small.fill(0);
      large.fill(0);
      const backing = bytes(64, 7);
      const c = wal.append(backing.subarray(16, 48));
      const d = wal.append(Buffer.from('hello'));
      assert.deepEqual(await wal.read(a), bytes(100));
      assert.deepEqual(await wal.read(b), bytes(30_000));
      assert.deepEqual(await wal.read(c), bytes(64, 7).subarray(16, 48));
      assert.equal(new TextDecoder().decode(await wal.read(d)), 'hello');
      await wal.close();
    });

    it('rejects a non-Uint8Array payload and bad wait options', async () => {
      const wal = await Wal.open(new MemoryStore());
      throwsCode(() => wal.append('x' as unknown as Uint8Array), 'ERR_INVALID_ARG_TYPE');
      await rejectsCode(
        wal.append(bytes(1), null as unknown as { wait: 'written' }),
        'ERR_INVALID_ARG_TYPE',
      );
      await rejectsCode(
        wal.append(bytes(1), { wait: 'soon' as 'written' }),
        'ERR_INVALID_ARG_VALUE',
      );
      assert.equal(wal.tail, 0, 'nothing was reserved');
      await wal.close();
    });

    it('names a misspelt or unknown key of append, appendBatch and iterate options, as open does', async () => {
      const wal = await Wal.open(new MemoryStore());
      const openError = await rejectsCode(
        Wal.open(new MemoryStore(), { waitt: 1 } as unknown as WalOptions),
        'ERR_INVALID_ARG_VALUE',
      );
      assert.match(openError.message, /"options\.waitt" argument is not an option/);
      const misspelt = { waitt: 'durable' } as unknown as { wait: 'durable' };
      const extra = { wait: 'durable', timeout: 5 } as unknown as { wait: 'durable' };
      for (const error of [
        await rejectsCode(wal.append(bytes(1), misspelt), 'ERR_INVALID_ARG_VALUE'),
        await rejectsCode(wal.appendBatch([bytes(1)], misspelt), 'ERR_INVALID_ARG_VALUE'),
      ]) {
        assert.ok(error instanceof TypeError);
        assert.match(
          error.message,
          /"options\.waitt" argument is not an option \(known: wait, signal\)/,
        );
        assert.doesNotMatch(error.message, /options\.wait"/);
      }
      const extraError = await rejectsCode(wal.append(bytes(1), extra), 'ERR_INVALID_ARG_VALUE');
      assert.match(extraError.message, /"options\.timeout"/);
      // Inherited keys are not options given (as for open).
      const inherited = Object.create({ other: 1 }) as { wait: 'written' };
      inherited.wait = 'written';
      assert.equal(await wal.append(bytes(1), inherited), 0);
      assert.equal(wal.tail, HEADER_SIZE + 1, 'nothing refused was reserved');
      throwsCode(
        () =>
          wal.iterateBatches(undefined, { batchbytes: 10 } as unknown as { batchBytes: number }),
        'ERR_INVALID_ARG_VALUE',
      );
      throwsCode(
        () => wal.iterateBatches(undefined, 5 as unknown as { batchBytes: number }),
        'ERR_INVALID_ARG_TYPE',
      );
      await wal.close();
    });

    it('a detached payload is an empty record, as its length says (append and appendBatch, both paths)', async () => {
      const detached = (): Uint8Array => {
        const view = new Uint8Array(16).fill(7);
        structuredClone(view.buffer, { transfer: [view.buffer] });
        assert.equal(view.length, 0);
        return view;
      };
      const wal = await Wal.open(new MemoryStore());
      // The first append of a turn takes the slow path, later ones the fast one.
      const lsns = [wal.append(detached()), wal.append(bytes(3)), wal.append(detached())];
      lsns.push(...wal.appendBatch([bytes(2), detached(), bytes(1)]));
      assert.deepEqual(lsns, [0, 8, 19, 27, 37, 45]);
      assert.equal(wal.stats().appends, 6);
      assert.equal(wal.stats().appendedBytes, 6);
      await wal.sync();
      const read = await Promise.all(lsns.map((lsn) => wal.read(lsn)));
      assert.deepEqual(read, [
        new Uint8Array(0),
        bytes(3),
        new Uint8Array(0),
        bytes(2),
        new Uint8Array(0),
        bytes(1),
      ]);
      await wal.close();
    });

    it('appendBatch: consecutive LSNs; all or nothing on a bad or over-limit element', async () => {
      const wal = await Wal.open(new MemoryStore(), { maxRecordSize: 1000 });
      const lsns = wal.appendBatch([bytes(1), bytes(2), bytes(3)]);
      assert.deepEqual(lsns, [0, 9, 19]);
      assert.deepEqual(wal.appendBatch([]), []);
      const tail = wal.tail;
      throwsCode(
        () => wal.appendBatch([bytes(1), 'x' as unknown as Uint8Array]),
        'ERR_INVALID_ARG_TYPE',
      );
      const tooLarge = throwsCode(
        () => wal.appendBatch([bytes(10), bytes(1001)]),
        'WAL_RECORD_TOO_LARGE',
      );
      assert.equal((tooLarge as { offset?: number }).offset, undefined, 'nothing was written');
      assert.equal(
        tooLarge.message,
        'a record of 1001 bytes exceeds the maximum record size of 1000 bytes',
      );
      throwsCode(() => wal.appendBatch('x' as unknown as Uint8Array[]), 'ERR_INVALID_ARG_TYPE');
      await rejectsCode(
        wal.appendBatch([bytes(1001)], { wait: 'written' }),
        'WAL_RECORD_TOO_LARGE',
      );
      await rejectsCode(
        wal.appendBatch([bytes(1)], { wait: 'x' as 'written' }),
        'ERR_INVALID_ARG_VALUE',
      );
      assert.equal(wal.tail, tail, 'no failed batch reserved anything');
      const waited = await wal.appendBatch([bytes(4), bytes(5)], { wait: 'durable' });
      assert.deepEqual(waited, [tail, tail + HEADER_SIZE + 4]);
      assert.ok(wal.durable > waited[1]!);
      assert.deepEqual(await wal.appendBatch([], { wait: 'durable' }), []);
      for (const [i, lsn] of lsns.entries()) assert.deepEqual(await wal.read(lsn), bytes(i + 1));
      await wal.close();
    });
  });
});
