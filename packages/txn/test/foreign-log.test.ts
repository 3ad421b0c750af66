// A transaction store never takes over another program's log: its log
// records the application name TXN_APPLICATION (@wal/core's `application`
// option); a log recording another name, or an empty log recording none,
// is refused with WAL_NOT_A_LOG and left exactly as it was.
import assert from 'node:assert/strict';
import { Wal } from '@wal/core';
import { CrashFs } from '@wal/store/testing';
import fc from 'fast-check';
import { TXN_APPLICATION, TxnStore } from '../src/index.js';
import { commitSize, encodeCommit } from '../src/record.js';
import { isCode, openOnFs as open, text } from './helpers.js';

const DIR = '/db';
const LOG = { segmentSize: 4096 };
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('TxnStore and logs it did not create', () => {
  it('a new store records its application name in its log', async () => {
    const fs = new CrashFs();
    const store = await open(fs);
    assert.equal(store.log.application, TXN_APPLICATION);
    await store.close();
    const plain = await Wal.open(DIR, { fs, ...LOG, readOnly: true });
    assert.equal(plain.application, TXN_APPLICATION);
    await plain.close();
  });

  it("another program's log, empty or not, is refused with WAL_NOT_A_LOG and left as it was", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(undefined, 'my-queue', '@wal/lsm'),
        fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 4 }),
        async (application, records) => {
          // An empty log without a name is refused too: nothing in it says it is a store's.
          fc.pre(application !== undefined || records.length === 0);
          const fs = new CrashFs();
          const named = application === undefined ? {} : { application };
          const theirs = await Wal.open(DIR, { fs, ...LOG, ...named });
          for (const record of records) theirs.append(record);
          await theirs.close();
          const before = fs.snapshot().files;
          const error = await TxnStore.open(DIR, { log: { fs, ...LOG } }).then(
            () => assert.fail('the store opened another program’s log'),
            (e: Error) => e,
          );
          assert.ok(isCode('WAL_NOT_A_LOG')(error), String(error));
          assert.equal((error as { path?: string }).path, DIR);
          assert.deepEqual(fs.snapshot().files, before, 'the refused open changed nothing');
          // Its owner still opens it, with every record.
          const again = await Wal.open(DIR, { fs, ...LOG, ...named });
          assert.equal(again.recovery.records, records.length);
          await again.close();
        },
      ),
      { numRuns: 30 },
    );
  });

  it('a log without a name whose records are commits (a store of an earlier release) opens', async () => {
    const fs = new CrashFs();
    const old = await Wal.open(DIR, { fs, ...LOG });
    const writes = [{ key: bytes('k'), value: bytes('v') }];
    await old.append(encodeCommit(1, writes, commitSize(writes)), { wait: 'durable' });
    await old.close();
    const store = await open(fs);
    assert.equal(store.log.application, undefined);
    assert.equal(text(await store.run((tx) => tx.get(bytes('k')))), 'v');
    await store.close();
  });

  it('application cannot be set through options.log', async () => {
    await assert.rejects(
      TxnStore.open(DIR, {
        log: { fs: new CrashFs(), application: 'x' } as never,
      }),
      isCode('ERR_INVALID_ARG_VALUE'),
    );
  });
});
