// TypeScript consumer (ES module), checked under `strict` with the packages'
// own declarations (no skipLibCheck), then run: the same as smoke.mjs.
import { type AppendOptions, Wal, type WalRecord } from '@wal/core';
import { WalError } from '@wal/errors';
import { MemoryStore, type Store } from '@wal/store';

const dir: string = process.argv[2] ?? 'log';
const written: readonly string[] = ['one', 'two', 'three'];
const durable: AppendOptions = { wait: 'durable' };
const wal: Wal = await Wal.open(dir);
for (const text of written) {
  const lsn: number = await wal.append(new TextEncoder().encode(text), durable);
  void lsn;
}
await wal.close();

const reopened = await Wal.open(dir);
const read: string[] = [];
for await (const record of reopened.iterate()) {
  const typed: WalRecord = record;
  read.push(new TextDecoder().decode(typed.payload));
}
await reopened.close();
const store: Store = new MemoryStore();
console.log(
  JSON.stringify({
    read,
    store: typeof store,
    errors: Object.getPrototypeOf(WalError.prototype) === Error.prototype,
  }),
);
