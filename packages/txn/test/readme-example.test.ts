/** The README's quick example, run as written (with a temporary directory). */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ConflictError } from '@wal/errors';
import { TxnStore } from '../src/index.js';
import { temporaryDirectory } from './helpers.js';

describe('README example', () => {
  const directory = temporaryDirectory('wal-txn-readme-', false);

  it('runs', async () => {
    const log: string[] = [];
    const console = { log: (...args: unknown[]) => log.push(args.join(' ')) };
    const path = join(directory(), 'bank');
    // --- README example starts
    const decoder = new TextDecoder();
    const balance = (bytes: Uint8Array | undefined) =>
      Number(decoder.decode(bytes ?? new Uint8Array()));

    // Open (or create) the store: its log is a directory; opening replays it.
    const store = await TxnStore.open(path);

    await store.run((tx) => {
      tx.put('account/alice', '100');
      tx.put('account/bob', '50');
    });

    // A transfer: read, check, write. `run` commits (durably) and retries
    // the whole function if a concurrent transfer conflicts.
    async function transfer(from: string, to: string, amount: number) {
      await store.run((tx) => {
        const a = balance(tx.get(`account/${from}`));
        if (a < amount) throw new Error(`${from} has only ${a}`);
        tx.put(`account/${from}`, String(a - amount));
        tx.put(`account/${to}`, String(balance(tx.get(`account/${to}`)) + amount));
      });
    }
    await Promise.all([
      transfer('alice', 'bob', 30),
      transfer('bob', 'alice', 10),
      transfer('alice', 'bob', 5),
    ]);

    // A range scan in a snapshot: a consistent total, whatever commits meanwhile.
    const total = await store.run((tx) =>
      tx
        .scan({ gte: 'account/', lt: 'account0' })
        .reduce((sum, { value }) => sum + balance(value), 0),
    );
    console.log(`total ${total}`); // total 150

    // Explicit transactions: begin, then commit or abort.
    const tx = store.begin({ isolation: 'snapshot' });
    tx.put('account/carol', '0');
    try {
      await tx.commit();
    } catch (error) {
      if (!(error instanceof ConflictError)) throw error;
      console.log(`conflict on ${decoder.decode(error.key)}`);
    }

    await store.close();
    // --- README example ends
    assert.deepEqual(log, ['total 150']);
    const reopened = await TxnStore.open(path);
    const balances = await reopened.run((t) =>
      t.scan().map((e) => [decoder.decode(e.key), balance(e.value)]),
    );
    await reopened.close();
    assert.deepEqual(balances, [
      ['account/alice', 75],
      ['account/bob', 75],
      ['account/carol', 0],
    ]);
  });
});
