/**
 * Child process of the descriptor-limit test in open-segments.test.ts (not a
 * test file itself): writes `count` 4 KiB segments into `dir`, syncs, closes,
 * reopens writable and read-only, and reads them all back. Argument 3 is the
 * cap on open segments of the reopens, or `default` (the log is written with
 * the default). Exits non-zero with the error's codes and messages, causes
 * included, on stderr when anything fails.
 */
import { SegmentedStore, type SegmentedStoreOptions } from '../src/segmented-store.js';

const S = 4096;
const [dir = '', countArg = '', capArg = 'default'] = process.argv.slice(2);
const count = Number(countArg);
const cap: SegmentedStoreOptions = capArg === 'default' ? {} : { maxOpenSegments: Number(capArg) };

function segmentBytes(index: number): Uint8Array {
  return new Uint8Array(S).fill((index % 255) + 1);
}

async function readAll(store: SegmentedStore): Promise<void> {
  for (let index = 0; index < count; index++) {
    const bytes = await store.read(index * S, S);
    if (bytes.length !== S || bytes.some((b) => b !== (index % 255) + 1)) {
      throw new Error(`segment ${index} reads back wrong`);
    }
  }
}

try {
  const writer = await SegmentedStore.open(dir, { segmentSize: S });
  for (let index = 0; index < count; index++) {
    await writer.write(index * S, segmentBytes(index));
  }
  await writer.sync();
  await writer.close();
  const again = await SegmentedStore.open(dir, cap);
  await readAll(again);
  await again.sync(); // the first sync after open flushes every segment
  await again.close();
  const reader = await SegmentedStore.open(dir, { ...cap, readOnly: true });
  await readAll(reader);
  await reader.close();
  console.log(`read ${count} segments twice`);
} catch (error) {
  for (let e = error as { code?: string; message?: string; cause?: unknown } | undefined; e; ) {
    console.error(`${e.code} ${e.message}`);
    e = e.cause as typeof e;
  }
  process.exitCode = 1;
}
