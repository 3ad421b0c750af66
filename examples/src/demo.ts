// The @wal demo, for now: a round-trip through a durable segmented store in a
// temporary directory, printing each step. (@wal/core will replace it with a
// key-value store on the log.)
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isWalError } from '@wal/errors';
import { SegmentedStore } from '@wal/store';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function step(text: string): void {
  process.stdout.write(`• ${text}\n`);
}

const root = await mkdtemp(join(tmpdir(), 'wal-demo-'));
const dir = join(root, 'log');
try {
  const store = await SegmentedStore.open(dir, { segmentSize: 4096 });
  step(`opened a SegmentedStore in ${dir} (segments of ${store.segmentSize} bytes)`);

  let offset = 0;
  for (let i = 0; i < 300; i++) {
    const bytes = encoder.encode(`put key${i}=value${i};`);
    await store.write(offset, bytes);
    offset += bytes.length;
  }
  step(
    `wrote 300 small records, ${store.length} bytes across ${Math.ceil(store.length / store.segmentSize)} segment files`,
  );
  await store.sync();
  step('synced: every segment written so far is fdatasynced, the directory fsynced');
  step(`files: ${(await readdir(dir)).sort().join(', ')}`);

  try {
    await SegmentedStore.open(dir);
  } catch (error) {
    if (isWalError(error)) step(`a second opener is refused with ${error.code}`);
  }

  await store.updateMeta({ formatVersion: 1, owner: 'demo' });
  await store.truncateBefore(5000);
  step(`truncateBefore(5000): head ${store.head} exactly; whole segments below it are deleted`);
  step(`files: ${(await readdir(dir)).sort().join(', ')}`);
  await store.close();
  step('closed (the lock is released)');

  const again = await SegmentedStore.open(dir);
  step(
    `reopened: head ${again.head}, length ${again.length}, metadata ${JSON.stringify(await again.readMeta())}`,
  );
  const first = await again.read(again.head, 40);
  step(`the first 40 live bytes: "${decoder.decode(first)}"`);
  await again.close();
  try {
    await again.read(again.head, 1);
  } catch (error) {
    if (isWalError(error)) step(`reading after close fails with ${error.code}: ${error.message}`);
  }
} finally {
  await rm(root, { recursive: true, force: true });
}
step('done');
