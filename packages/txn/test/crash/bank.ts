/**
 * The bank workload of the crash tests, and its check. `ACCOUNTS` accounts
 * start with 100 each. Client `c`'s transfer number `i` (serializable, through
 * `run`) moves a deterministic amount between two accounts when the payer
 * has it, records itself as `h/<c>/<i>` = `from,to,amount` (or `-` when
 * refused) and sets `count/<c>` = `i`; so a store holds client `c`'s
 * transfers 1..count/<c>, each whole or not at all. A transfer that moves
 * money also sets `tag/<account>` = `<c>/<i>` for both accounts: the tags
 * name the transfer whose balance a reader saw (its dependency).
 *
 * The check of a store after a crash: the total is unchanged; for every
 * client, every acknowledged transfer is there, no transfer beyond those
 * begun is there, and `h/<c>/<i>` exists exactly for `i` ≤ `count/<c>`; and
 * every balance equals the initial one plus the recorded transfers (so no
 * transfer is there in part).
 */
import assert from 'node:assert/strict';
import { FS_METHODS, type Fs, type FsMethod } from '@wal/store';
import type { TxnStore } from '../../src/index.js';

/** The synchronous calls of a log opened with `blockingSync`, passed on when `inner` has them. */
const FS_SYNC_METHODS: readonly FsMethod[] = ['pwriteSync', 'fdatasyncSync'];

/**
 * How the crash tests open the log: as by default, and with `blockingSync`
 * (writes and fdatasyncs on the calling thread): the same workloads and
 * checks run in both.
 */
export const LOG_MODES: ReadonlyArray<{ readonly name: string; readonly blockingSync: boolean }> = [
  { name: '', blockingSync: false },
  { name: ' (blockingSync)', blockingSync: true },
];

/** Options of the store in the bank kill test and its child: small automatic checkpoints. */
export const BANK_KILL_OPTIONS = {
  log: { segmentSize: 16 * 1024 },
  checkpoint: { logBytes: 32 * 1024 },
};

export const ACCOUNTS = 6;
export const INITIAL = 100;
const decoder = new TextDecoder();
const number = (bytes: Uint8Array | undefined) =>
  bytes === undefined ? 0 : Number(decoder.decode(bytes));
const text = (bytes: Uint8Array | undefined) =>
  bytes === undefined ? undefined : decoder.decode(bytes);

/**
 * A read-only audit: the total of the balances and the tags of every
 * account (see {@link transfer}), resolved once what it read is durable.
 */
export function audit(
  store: TxnStore,
): Promise<{ total: number; tags: Array<string | undefined> }> {
  return store.run((tx) => {
    const accounts = tx.scan({ gte: 'account/', lt: 'account0' });
    const total = accounts.reduce((sum, { value }) => sum + number(value), 0);
    const tags = Array.from({ length: ACCOUNTS }, (_, a) => text(tx.get(`tag/${a}`)));
    return { total, tags };
  });
}

/** Each client's count of transfers in `store` (`count/<c>`). */
export function bankCounts(store: TxnStore, clients: number): Promise<number[]> {
  return store.run((tx) =>
    Array.from({ length: clients }, (_, client) => number(tx.get(`count/${client}`))),
  );
}

/** Whether the transfer a tag names (`<c>/<i>`) is in a store whose counts are `counts`. */
export function tagSurvived(tag: string | undefined, counts: readonly number[]): boolean {
  if (tag === undefined) return true;
  const [client, i] = tag.split('/').map(Number) as [number, number];
  return i <= counts[client]!;
}

/** The accounts, amount of client `client`'s transfer `i` (deterministic). */
export function transferOf(
  client: number,
  i: number,
): { from: number; to: number; amount: number } {
  let x = (Math.imul(client + 1, 0x9e3779b1) ^ Math.imul(i, 0x85ebca6b)) >>> 0;
  x = Math.imul(x ^ (x >>> 15), 0x2c1b3c6d) >>> 0;
  const from = x % ACCOUNTS;
  const to = (from + 1 + ((x >>> 8) % (ACCOUNTS - 1))) % ACCOUNTS;
  return { from, to, amount: 1 + ((x >>> 16) % 60) };
}

/** Creates the accounts (one commit). */
export function createAccounts(store: TxnStore): Promise<void> {
  return store.run((tx) => {
    for (let a = 0; a < ACCOUNTS; a++) tx.put(`account/${a}`, String(INITIAL));
  });
}

/**
 * Runs client `client`'s transfer number `i`; resolves once it is
 * acknowledged (durable), with the tags of the two accounts it read (the
 * transfers it depends on; `undefined` for an account no transfer moved yet).
 */
export function transfer(
  store: TxnStore,
  client: number,
  i: number,
): Promise<Array<string | undefined>> {
  const { from, to, amount } = transferOf(client, i);
  return store.run(
    (tx) => {
      const a = number(tx.get(`account/${from}`));
      const b = number(tx.get(`account/${to}`));
      const tags = [from, to].map((account) => text(tx.get(`tag/${account}`)));
      const moved = a >= amount;
      if (moved) {
        tx.put(`account/${from}`, String(a - amount));
        tx.put(`account/${to}`, String(b + amount));
        tx.put(`tag/${from}`, `${client}/${i}`);
        tx.put(`tag/${to}`, `${client}/${i}`);
      }
      tx.put(`h/${client}/${i}`, moved ? `${from},${to},${amount}` : '-');
      tx.put(`count/${client}`, String(i));
      return tags;
    },
    { attempts: 1000, backoffMs: 0, maxBackoffMs: 0 },
  );
}

/** What the clients had done at one moment: transfers acknowledged and begun, per client. */
export interface BankProgress {
  readonly acked: readonly number[];
  readonly begun: readonly number[];
}

/** Checks a reopened store against `progress` (see the module documentation). */
export async function checkBank(
  store: TxnStore,
  progress: BankProgress,
  where: string,
): Promise<number> {
  return store.run((tx) => {
    const accounts = tx.scan({ gte: 'account/', lt: 'account0' });
    if (accounts.length === 0) {
      assert.ok(
        progress.acked.every((n) => n === 0),
        `${where}: the accounts are missing`,
      );
      return 0;
    }
    assert.equal(accounts.length, ACCOUNTS, where);
    const balances = accounts.map(({ value }) => number(value));
    const total = balances.reduce((s, b) => s + b, 0);
    assert.equal(total, ACCOUNTS * INITIAL, `${where}: the total changed`);
    const expected = Array.from({ length: ACCOUNTS }, () => INITIAL);
    let found = 0;
    progress.begun.forEach((begun, client) => {
      const count = number(tx.get(`count/${client}`));
      assert.ok(
        count >= progress.acked[client]!,
        `${where}: client ${client} has ${count} transfers, ${progress.acked[client]} were acknowledged`,
      );
      assert.ok(count <= begun, `${where}: client ${client} has ${count} of ${begun} begun`);
      const history = tx.scan({ gte: `h/${client}/`, lt: `h/${client}0` });
      assert.equal(
        history.length,
        count,
        `${where}: client ${client}'s history is not 1..${count}`,
      );
      for (const { key, value } of history) {
        const i = Number(decoder.decode(key).split('/')[2]);
        assert.ok(i >= 1 && i <= count, `${where}: transfer ${client}/${i} beyond the count`);
        const text = decoder.decode(value);
        if (text === '-') continue;
        const { from, to, amount } = transferOf(client, i);
        assert.equal(text, `${from},${to},${amount}`, where);
        expected[from]! -= amount;
        expected[to]! += amount;
      }
      found += count;
    });
    assert.deepEqual(balances, expected, `${where}: a transfer is there in part`);
    return found;
  });
}

/**
 * An `Fs` that calls `step()` before each call it passes on: a hook to
 * capture the states a power loss at that moment could leave.
 */
export function steppingFs(inner: Fs, step: (method: string) => void): Fs {
  const fs: Record<string, unknown> = {};
  const own = inner as unknown as Record<string, unknown>;
  const methods = [...FS_METHODS, ...FS_SYNC_METHODS.filter((m) => typeof own[m] === 'function')];
  for (const method of methods) {
    fs[method] = (...args: unknown[]) => {
      step(method);
      return (inner as unknown as Record<string, (...a: unknown[]) => unknown>)[method]!(...args);
    };
  }
  return fs as unknown as Fs;
}
