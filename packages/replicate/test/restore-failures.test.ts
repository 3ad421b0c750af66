import assert from 'node:assert/strict';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Wal } from '@wal/core';
import { isWalError } from '@wal/errors';
import { Replicator, restore } from '@wal/replicate';
import {
  logContents,
  payload,
  streamName,
  until,
  untilPlaceable,
  useCluster,
  within,
} from './fixture.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const NODES = 3;

describe('restore through server failures (real servers)', function () {
  this.timeout(180_000);
  // A small max_payload: one record per message, so a restore takes many.
  const { cluster, nc, dir } = useCluster({ maxPayload: 4096 });

  /** A log of `count` records of 3000 bytes, shipped to a new stream. */
  async function shipped(count: number): Promise<{ path: string; stream: string }> {
    const path = await dir();
    const wal = await Wal.open(path);
    const stream = streamName();
    const replicator = await Replicator.attach(wal, { nats: nc(), stream });
    for (let i = 0; i < count; i++) {
      if (!wal.writable) await wal.drained();
      wal.append(payload(3000, i));
    }
    await replicator.flush();
    await replicator.close();
    await wal.close();
    return { path, stream };
  }

  /** Waits until the log restore builds at `into` holds some records: the consumer is delivering. */
  async function restoring(into: string): Promise<void> {
    await until('the restore is under way', async () => {
      let size = 0;
      try {
        for (const name of await readdir(into)) size += (await stat(join(into, name))).size;
      } catch {
        return false;
      }
      return size > 64 * 1024;
    });
  }

  async function killAll(): Promise<void> {
    for (let i = 0; i < NODES; i++) await cluster().kill(i);
  }

  async function restartAll(): Promise<void> {
    for (let i = 0; i < NODES; i++) await cluster().restart(i);
    await untilPlaceable(nc(), NODES);
  }

  it('a restore whose connection closes mid-way rejects with WAL_CLOSED; the target holds a valid prefix', async () => {
    // Before: the consumer's iteration ended with the connection and restore
    // resolved with a prefix of the log, as if complete.
    const { path, stream } = await shipped(1000);
    const into = join(await dir(), 'r');
    const restored = restore({
      nats: cluster().connectOptions({ maxReconnectAttempts: 2, reconnectTimeWait: 200 }),
      stream,
      into,
    }).then(
      (report) => report,
      (error: unknown) => error,
    );
    await restoring(into);
    await killAll();
    try {
      const outcome = await within('the restore', restored, 90_000);
      assert.ok(isWalError(outcome, 'WAL_CLOSED'), `settled with ${JSON.stringify(outcome)}`);
      const original = await logContents(path);
      const left = await logContents(into);
      assert.ok(left.tail < original.tail, 'only a prefix was read');
      assert.deepEqual(left.bytes, original.bytes.subarray(0, left.tail));
    } finally {
      await restartAll();
    }
  });

  it('a restore while every server is down for 3 s completes once they are back', async () => {
    // Before: the consumer stopped delivering and restore never settled.
    const { path, stream } = await shipped(1000);
    const into = join(await dir(), 'r');
    const restored = restore({ nats: cluster().connectOptions(), stream, into });
    await restoring(into);
    await killAll();
    await sleep(3000);
    for (let i = 0; i < NODES; i++) await cluster().restart(i);
    // Bounded: a stalled consumer is replaced after 3 s (before, the stalled
    // one delivered again only about a minute later).
    const report = await within('the restore', restored, 35_000);
    const original = await logContents(path);
    assert.equal(report.records, 1000);
    assert.equal(report.end, original.tail);
    assert.deepEqual((await logContents(into)).bytes, original.bytes);
  });
});
