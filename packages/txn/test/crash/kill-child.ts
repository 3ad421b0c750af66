/**
 * The child of the process-kill test (kill.test.ts): opens the store in a
 * real directory, then commits from several concurrent clients until it is
 * killed (the workload of tagged.ts); it prints one line once a commit
 * resolved:
 *
 *   O <committed>        the store is open (recovery and replay done)
 *   A <id> <client>      transaction <id> is acknowledged
 *   E <code> <message>   an unexpected error (the parent fails)
 *
 * Usage: node kill-child.js <dir> <firstId> <clients>
 * Writes to a pipe are synchronous on Linux, so a printed line was sent
 * before the acknowledgement could be lost to the kill.
 */
import { TxnStore } from '../../src/index.js';
import { commitTagged } from './tagged.js';

const [dir, firstArg, clientsArg] = process.argv.slice(2);
if (dir === undefined || firstArg === undefined || clientsArg === undefined) {
  process.stderr.write('usage: kill-child <dir> <firstId> <clients>\n');
  process.exit(2);
}
setTimeout(() => process.exit(0), 30_000); // a child that outlives its parent stops on its own

let next = Number(firstArg);

async function client(store: TxnStore, name: string): Promise<void> {
  for (;;) {
    const id = next++;
    await commitTagged(store, id, name);
    process.stdout.write(`A ${id} ${name}\n`);
  }
}

try {
  const store = await TxnStore.open(dir!, { log: { segmentSize: 64 * 1024 } });
  process.stdout.write(`O ${store.stats().committed}\n`);
  await Promise.all(Array.from({ length: Number(clientsArg) }, (_, i) => client(store, `c${i}`)));
} catch (error) {
  process.stdout.write(
    `E ${String((error as { code?: unknown }).code)} ${String(error).replace(/\n/g, ' ')}\n`,
  );
  process.exit(3);
}
