// The @wal demo, for now: a round-trip through a Store, printing each step.
// (@wal/core will replace it with a key-value store on the log.)
import { isWalError } from '@wal/errors';
import { MemoryStore } from '@wal/store';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function step(text: string): void {
  process.stdout.write(`• ${text}\n`);
}

const store = new MemoryStore();
step(`opened a ${store.constructor.name}: head ${store.head}, length ${store.length}`);

const records = ['put a=1', 'put b=2', 'del a', 'put c=3'];
let offset = 0;
for (const text of records) {
  const bytes = encoder.encode(text);
  await store.write(offset, bytes);
  step(`wrote ${bytes.length} bytes at offset ${offset}: "${text}"`);
  offset += bytes.length;
}
await store.sync();
step(`synced; length is now ${store.length}`);

const all = await store.read(0, store.length);
step(`read back everything: "${decoder.decode(all)}"`);

await store.updateMeta({ formatVersion: 1, owner: 'demo' });
step(`metadata: ${JSON.stringify(await store.readMeta())}`);

await store.truncateBefore(7);
step(`dropped the first record with truncateBefore(7): head ${store.head}, length ${store.length}`);
const tail = await store.read(store.head, 100);
step(`read from the head (short read at the end, ${tail.length} bytes): "${decoder.decode(tail)}"`);

await store.close();
try {
  await store.read(store.head, 1);
} catch (error) {
  if (isWalError(error)) step(`reading after close fails with ${error.code}: ${error.message}`);
}
step('done');
