/**
 * Completion orders of CrashFs: one call settles per macrotask, the one the
 * order picks; `fdatasync` still covers only the writes completed when it was
 * called; the explorer reruns a workload under every order of a small burst
 * and under seeded samples of a large one.
 */
import assert from 'node:assert/strict';
import {
  CompletionExplorer,
  type CompletionOrder,
  CompletionSchedule,
  CrashFs,
} from '@wal/store/testing';

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const text = (data: Uint8Array | undefined): string | undefined =>
  data === undefined ? undefined : new TextDecoder().decode(data);

/** Completes the latest call in flight first. */
const newestFirst: CompletionOrder = { next: (inFlight) => inFlight.length - 1 };

/**
 * A burst of three concurrent writes to three files, then their syncs (a
 * second burst); returns the order in which the writes completed.
 */
async function threeWrites(fs: CrashFs): Promise<string> {
  const files = await Promise.all(['/a', '/b', '/c'].map((path) => fs.open(path, 'create')));
  await fs.syncDir('/');
  const done: string[] = [];
  await Promise.all(
    files.map((file, i) => fs.pwrite(file, bytes('xyz'[i]!), 0).then(() => done.push(file.path))),
  );
  await Promise.all(files.map((file) => fs.fdatasync(file)));
  return done.join(' ');
}

describe('CrashFs completion orders', () => {
  it('settles the call the order picks, one per macrotask', async () => {
    const fs = new CrashFs({ order: newestFirst });
    const order = await threeWrites(fs);
    assert.equal(order, '/c /b /a');
    const writes = fs.operations.filter((op) => op.call === 'pwrite');
    const settled = writes.map((op) => op.settledAt!);
    assert.ok(settled[0]! > settled[1]! && settled[1]! > settled[2]!);
    // Without an order, the call order.
    assert.equal(await threeWrites(new CrashFs()), '/a /b /c');
  });

  it('an fdatasync overtaking a write does not cover it', async () => {
    const fs = new CrashFs({ order: newestFirst });
    const file = await fs.open('/f', 'create');
    await fs.syncDir('/');
    const write = fs.pwrite(file, bytes('data'), 0);
    const sync = fs.fdatasync(file); // issued while the write is in flight: completes first
    await Promise.all([write, sync]);
    const states = [...fs.crashStates({ limit: 1000, tear: false, lengths: false })];
    assert.ok(states.some((state) => text(state.files.get('/f')) === ''));
    const record = fs.operations.find((op) => op.call === 'fdatasync')!;
    assert.deepEqual(record.covers, []);
  });

  it('explores every order of a small burst, and only of that burst', async () => {
    const explorer = new CompletionExplorer({ limit: 10 });
    assert.equal(await threeWrites(new CrashFs({ order: explorer.baseline() })), '/a /b /c');
    const seen = new Set<string>();
    for (const order of explorer.orders()) {
      assert.ok(order instanceof CompletionSchedule);
      seen.add(await threeWrites(new CrashFs({ order })));
      assert.match(order.description, /^burst \d+, order [\d.]+$/);
    }
    // The writes' burst in its 5 other orders; the opens' and the syncs' bursts leave them in call order.
    assert.deepEqual([...seen].sort(), [
      '/a /b /c',
      '/a /c /b',
      '/b /a /c',
      '/b /c /a',
      '/c /a /b',
      '/c /b /a',
    ]);
    const f = explorer.figures;
    assert.equal(f.concurrent, 3); // the opens, the writes, the syncs
    assert.equal(f.exhaustive, 3);
    assert.equal(f.sampled, 0);
    assert.equal(f.orders, 15);
  });

  it('samples a large burst from the seed, reproducibly, and bounds the bursts', async () => {
    const run = async (seed: number, bursts: number): Promise<string[]> => {
      const explorer = new CompletionExplorer({ seed, limit: 3, bursts });
      await threeWrites(new CrashFs({ order: explorer.baseline() }));
      const orders: string[] = [];
      for (const order of explorer.orders()) orders.push(await threeWrites(new CrashFs({ order })));
      assert.equal(explorer.figures.sampled, bursts);
      assert.equal(explorer.figures.skipped, 3 - bursts);
      assert.equal(explorer.figures.orders, 3 * bursts);
      return orders;
    };
    const sampled = await run(7, 3);
    assert.deepEqual(await run(7, 3), sampled);
    assert.ok(
      sampled.some((order) => order !== '/a /b /c'),
      'no sampled order reordered the writes',
    );
    await run(7, 1);
    assert.throws(() => new CompletionExplorer({ limit: 0 }), RangeError);
    assert.throws(() => new CompletionExplorer({ bursts: 0 }), RangeError);
    assert.throws(() => new CompletionExplorer().orders().next(), /baseline/);
  });
});
