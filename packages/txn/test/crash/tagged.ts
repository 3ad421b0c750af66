/**
 * The crash tests' workload and its check. Transaction `id` of client `c`
 * writes `t/<id>/a`, `t/<id>/b`, `t/<id>/c` (value: the id) and increments
 * `count/<c>`. After a crash, the store must hold every acknowledged
 * transaction whole, no transaction in part, and counters that sum to the
 * number of transactions found (no increment lost or applied twice).
 */
import assert from 'node:assert/strict';
import type { TxnStore } from '../../src/index.js';

const decoder = new TextDecoder();

/** Commits transaction `id` of client `client`; resolves once it is acknowledged. */
export function commitTagged(store: TxnStore, id: number, client: string): Promise<void> {
  return store.run((tx) => {
    const count = tx.get(`count/${client}`);
    tx.put(`count/${client}`, String(count === undefined ? 1 : Number(decoder.decode(count)) + 1));
    for (const part of ['a', 'b', 'c']) tx.put(`t/${id}/${part}`, String(id));
  });
}

/** Checks the reopened `store` against the acknowledged ids; returns how many transactions it holds. */
export async function checkTagged(
  store: TxnStore,
  acked: Iterable<number>,
  where: string,
): Promise<number> {
  return store.run((tx) => {
    const found = new Map<number, number>();
    for (const { key, value } of tx.scan({ gte: 't/', lt: 't0' })) {
      const [, id] = decoder.decode(key).split('/');
      assert.equal(decoder.decode(value), id, where);
      found.set(Number(id), (found.get(Number(id)) ?? 0) + 1);
    }
    for (const [id, parts] of found)
      assert.equal(parts, 3, `${where}: transaction ${id} is there in part`);
    for (const id of acked)
      assert.ok(found.has(id), `${where}: acknowledged transaction ${id} is missing`);
    let total = 0;
    for (const { value } of tx.scan({ gte: 'count/', lt: 'count0' }))
      total += Number(decoder.decode(value));
    assert.equal(total, found.size, `${where}: the counters disagree with the transactions found`);
    return found.size;
  });
}
