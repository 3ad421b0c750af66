// Wal.open options: every invalid value rejected before the store is
// touched, every option accepted at a valid value, commitDelayMs.

import assert from 'node:assert/strict';
import { MemoryStore, type SegmentedStore } from '@wal/store';
import { CrashFs } from '@wal/store/testing';
import { HEADER_SIZE } from '../../src/frame.js';
import { Wal, type WalOptions } from '../../src/index.js';
import { bytes, rejectsCode } from '../helpers.js';
import { DIR, SEGMENT } from './fixtures.js';

describe('Wal', () => {
  describe('options', () => {
    const cases: Array<[string, unknown, string]> = [
      ['options', 5, 'ERR_INVALID_ARG_TYPE'],
      ['options', null, 'ERR_INVALID_ARG_TYPE'],
      ['maxRecordSize', '1', 'ERR_INVALID_ARG_TYPE'],
      ['maxRecordSize', 0, 'ERR_OUT_OF_RANGE'],
      ['maxRecordSize', 2 ** 30 + 1, 'ERR_OUT_OF_RANGE'],
      ['maxRecordSize', 1.5, 'ERR_OUT_OF_RANGE'],
      ['recovery', 'lenient', 'ERR_INVALID_ARG_VALUE'],
      ['recovery', 1, 'ERR_INVALID_ARG_VALUE'],
      ['stagingLimit', 64 * 1024 - 1, 'ERR_OUT_OF_RANGE'],
      ['stagingLimit', 2 ** 30 + 1, 'ERR_OUT_OF_RANGE'],
      ['stagingLimit', '1', 'ERR_INVALID_ARG_TYPE'],
      ['indexInterval', 4095, 'ERR_OUT_OF_RANGE'],
      ['indexInterval', Number.NaN, 'ERR_OUT_OF_RANGE'],
      ['indexInterval', true, 'ERR_INVALID_ARG_TYPE'],
      ['readOnly', 'yes', 'ERR_INVALID_ARG_TYPE'],
      ['readOnly', 1, 'ERR_INVALID_ARG_TYPE'],
      ['commitDelayMs', -1, 'ERR_OUT_OF_RANGE'],
      ['commitDelayMs', 2 ** 31, 'ERR_OUT_OF_RANGE'],
      ['commitDelayMs', '0', 'ERR_INVALID_ARG_TYPE'],
      ['layout', 'dir', 'ERR_INVALID_ARG_VALUE'],
      ['segmentSize', 0, 'ERR_OUT_OF_RANGE'],
      ['segmentSize', 'big', 'ERR_INVALID_ARG_TYPE'],
      ['maxOpenSegments', 0, 'ERR_OUT_OF_RANGE'],
      ['maxOpenSegments', 2 ** 31, 'ERR_OUT_OF_RANGE'],
      ['maxOpenSegments', '8', 'ERR_INVALID_ARG_TYPE'],
      ['fs', 'x', 'ERR_INVALID_ARG_TYPE'],
      ['fs', null, 'ERR_INVALID_ARG_TYPE'],
      ['segmentsize', 4096, 'ERR_INVALID_ARG_VALUE'],
      ['sync', true, 'ERR_INVALID_ARG_VALUE'],
    ];
    for (const [key, value, code] of cases) {
      it(`${key} = ${String(value)} → ${code}`, async () => {
        const options = key === 'options' ? value : { [key]: value };
        const store = new MemoryStore();
        const error = await rejectsCode(Wal.open(store, options as WalOptions), code);
        assert.ok(error instanceof (code === 'ERR_OUT_OF_RANGE' ? RangeError : TypeError));
        assert.equal(store.closed, false, 'validated before the store is touched');
      });
    }

    it('accepts every option at a valid value', async () => {
      const fs = new CrashFs();
      const wal = await Wal.open(DIR, {
        maxRecordSize: 1,
        recovery: 'skip',
        stagingLimit: 64 * 1024,
        indexInterval: 4096,
        readOnly: false,
        commitDelayMs: 1,
        layout: 'segmented',
        segmentSize: SEGMENT,
        maxOpenSegments: 2,
        fs,
      });
      await wal.append(bytes(1), { wait: 'durable' });
      assert.equal((wal.store as SegmentedStore).maxOpenSegments, 2, 'passed to the store');
      await wal.close();
      const unset = await Wal.open(new MemoryStore(), {});
      assert.equal(unset.maxRecordSize, 16 * 1024 * 1024);
      await unset.close();
    });

    it('commitDelayMs delays a flush but still makes records durable', async () => {
      const wal = await Wal.open(new MemoryStore(), { commitDelayMs: 2 });
      const lsns = await Promise.all([
        wal.append(bytes(1), { wait: 'durable' }),
        wal.append(bytes(2), { wait: 'durable' }),
      ]);
      assert.deepEqual(lsns, [0, HEADER_SIZE + 1]);
      await wal.close();
    });
  });
});
