/**
 * The child of the bank process-kill test (bank-kill.test.ts): opens the
 * store in a real directory with small automatic checkpoints, creates the
 * accounts if needed, then runs every client's transfers from where the
 * store says it stopped (`count/<c>` + 1) until it is killed. It prints:
 *
 *   O                   the store is open (checkpoint read, log replayed)
 *   B <client> <i>      transfer i of the client begins
 *   A <client> <i>      transfer i of the client is acknowledged
 *   E <code> <message>  an unexpected error (the parent fails)
 *
 * Usage: node bank-kill-child.js <dir> <clients>
 * Writes to a pipe are synchronous on Linux, so a printed line was sent
 * before the acknowledgement could be lost to the kill.
 */
import { TxnStore } from '../../src/index.js';
import { BANK_KILL_OPTIONS, createAccounts, transfer } from './bank.js';

const [dir, clientsArg] = process.argv.slice(2);
if (dir === undefined || clientsArg === undefined) {
  process.stderr.write('usage: bank-kill-child <dir> <clients>\n');
  process.exit(2);
} else {
  setTimeout(() => process.exit(0), 30_000); // a child that outlives its parent stops on its own
  try {
    const store = await TxnStore.open(dir, BANK_KILL_OPTIONS);
    process.stdout.write('O\n');
    const counts = await store.run((tx) => {
      if (tx.get('account/0') === undefined) return undefined;
      return Array.from({ length: Number(clientsArg) }, (_, c) => {
        const count = tx.get(`count/${c}`);
        return count === undefined ? 0 : Number(new TextDecoder().decode(count));
      });
    });
    if (counts === undefined) await createAccounts(store);
    await Promise.all(
      Array.from({ length: Number(clientsArg) }, async (_, client) => {
        for (let i = (counts?.[client] ?? 0) + 1; ; i++) {
          process.stdout.write(`B ${client} ${i}\n`);
          await transfer(store, client, i);
          process.stdout.write(`A ${client} ${i}\n`);
        }
      }),
    );
  } catch (error) {
    process.stdout.write(
      `E ${String((error as { code?: unknown }).code)} ${String(error).replace(/\n/g, ' ')}\n`,
    );
    process.exit(3);
  }
}
