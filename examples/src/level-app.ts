// A small program written for classic-level (LevelDB), as it would be in an
// application: an order book kept in sublevels with JSON values, a secondary
// index maintained by a prewrite hook, chained and array batches, range
// iterators, getMany, a snapshot, a range clear and the 'write' event. Its
// only input is the database class: `ClassicLevel` from classic-level, or
// `LsmLevel` from @wal/lsm; the code is the same for both.
import type { AbstractLevel } from 'abstract-level';

/** What the program needs of a database class: classic-level's constructor. */
export type LevelClass = new (
  location: string,
  options?: { valueEncoding?: string },
) => AbstractLevel<string | Uint8Array, string, unknown>;

interface Order {
  customer: string;
  item: string;
  quantity: number;
}

/** Runs the program on a database at `location`; returns the lines it prints. */
export async function orderBook(Level: LevelClass, location: string): Promise<string[]> {
  const out: string[] = [];
  const db = new Level(location, { valueEncoding: 'json' });
  await db.open();

  const orders = db.sublevel<string, Order>('orders', { valueEncoding: 'json' });
  const byCustomer = db.sublevel<string, string>('by-customer', { valueEncoding: 'utf8' });

  // Index every order by customer, in the same batch as the order itself.
  orders.hooks.prewrite.add((op, batch) => {
    if (op.type === 'put') {
      const { customer } = op.value as Order;
      // (abstract-level's typings accept only descendants of `orders` here; its code takes any sublevel.)
      const sublevel = byCustomer as never;
      batch.add({ type: 'put', sublevel, key: `${customer}!${op.key}`, value: op.key });
    }
  });
  let writes = 0;
  db.on('write', (operations: unknown[]) => {
    writes += operations.length;
  });

  await orders.put('0001', { customer: 'ada', item: 'lamp', quantity: 1 }, {
    sync: true,
  } as object);
  await orders.batch([
    { type: 'put', key: '0002', value: { customer: 'bob', item: 'desk', quantity: 1 } },
    { type: 'put', key: '0003', value: { customer: 'ada', item: 'chair', quantity: 4 } },
  ]);
  await orders
    .batch()
    .put('0004', { customer: 'cy', item: 'lamp', quantity: 2 })
    .put('0005', { customer: 'bob', item: 'shelf', quantity: 3 })
    .write();
  out.push(`write events covered ${writes} operations (orders and their index entries)`);

  for await (const [key, order] of orders.iterator({ gte: '0002', lt: '0005' })) {
    out.push(`order ${key}: ${order.quantity} × ${order.item} for ${order.customer}`);
  }
  const adas = await byCustomer.values({ gt: 'ada!', lt: 'ada~' }).all();
  out.push(`ada's orders: ${adas.join(', ')}`);
  const [first, missing] = await orders.getMany(['0001', '9999']);
  out.push(`getMany: ${first?.item}, ${missing}`);

  const snapshot = db.snapshot();
  await orders.del('0001');
  await orders.clear({ gte: '0004' });
  out.push(`now: ${(await orders.keys().all()).join(', ')}`);
  out.push(`in the snapshot: ${(await orders.keys({ snapshot }).all()).join(', ')}`);
  await snapshot.close();

  const last = await orders.iterator({ reverse: true, limit: 1 }).all();
  out.push(`last order: ${last.map(([key, order]) => `${key} (${order.item})`).join('')}`);
  await db.close();

  // Reopen: everything written is still there.
  const again = new Level(location, { valueEncoding: 'json' });
  await again.open();
  const kept = await again
    .sublevel<string, Order>('orders', { valueEncoding: 'json' })
    .keys()
    .all();
  out.push(`after reopening: ${kept.join(', ')}`);
  await again.close();
  return out;
}
