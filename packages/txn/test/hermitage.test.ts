/**
 * Hermitage (Kleppmann's catalogue of isolation anomalies), test by test, at
 * both isolation levels. The table `test (id, value)` is keys "1", "2", …
 * holding their value as text, starting as {1: 10, 2: 20}; a SQL statement
 * with a predicate is a scan over the whole table filtered in the test, so
 * under serializable isolation the whole table is a scanned range. A
 * statement that blocks in a locking database runs at once here (optimistic
 * concurrency): the outcome is decided at commit. The last test checks that
 * the README's table says exactly what these tests found.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import type { Isolation, Transaction, TxnStore } from '../src/index.js';
import { entries, isCode, LEVELS, memoryStore, text } from './helpers.js';

async function setup(): Promise<TxnStore> {
  const store = await memoryStore();
  await store.run((tx) => {
    tx.put('1', '10');
    tx.put('2', '20');
  });
  return store;
}

/** `select * from test where <predicate on value>` */
function select(tx: Transaction, where: (value: number) => boolean = () => true): string[] {
  return entries(tx)
    .filter(([, value]) => where(Number(value)))
    .map(([id, value]) => `${id}=${value}`);
}

function value(tx: Transaction, id: string): string | undefined {
  return text(tx.get(id));
}

/** The commit outcomes of the running test, by transaction name. */
let outcomes: Array<{ name: string; result: 'committed' | 'aborted' }> = [];

/** Commits; returns (and records) 'committed' or 'aborted' (a `WAL_CONFLICT`). */
async function outcome(tx: Transaction, name: string): Promise<'committed' | 'aborted'> {
  let result: 'committed' | 'aborted' = 'committed';
  try {
    await tx.commit();
  } catch (error) {
    isCode('WAL_CONFLICT')(error);
    result = 'aborted';
  }
  outcomes.push({ name, result });
  return result;
}

async function table(store: TxnStore): Promise<string[]> {
  return store.run((tx) => select(tx));
}

/** A scenario asserts what happens; it returns 'anomaly' when the anomaly occurred (as expected). */
type Scenario = (store: TxnStore, isolation: Isolation) => Promise<'anomaly' | undefined>;

/** README table row → isolation level → the cell these tests found. */
const found = new Map<string, Map<Isolation, string>>();

/** The README cell for what a test found, in the words of the table. */
function cell(anomaly: boolean): string {
  if (anomaly) return `**anomaly** (${outcomes.length === 2 ? 'both' : 'all'} commit)`;
  const aborted = outcomes.filter((o) => o.result === 'aborted').map((o) => o.name);
  return aborted.length === 0 ? 'prevented' : `prevented (${aborted.join(', ')} aborts at commit)`;
}

function hermitage(name: string, row: string, scenario: Scenario): void {
  describe(name, () => {
    for (const isolation of LEVELS) {
      it(isolation, async () => {
        const store = await setup();
        outcomes = [];
        try {
          const anomaly = (await scenario(store, isolation)) === 'anomaly';
          const cells = found.get(row) ?? new Map<Isolation, string>();
          cells.set(isolation, cell(anomaly));
          found.set(row, cells);
        } finally {
          await store.close();
        }
      });
    }
  });
}

describe('Hermitage', () => {
  describe('anomalies', () => {
    hermitage(
      'G0 write cycles (dirty writes): prevented, the second writer aborts',
      'G0 write cycles (dirty writes)',
      async (store, isolation) => {
        const t1 = store.begin({ isolation });
        const t2 = store.begin({ isolation });
        t1.put('1', '11');
        t2.put('1', '12');
        t1.put('2', '21');
        assert.equal(await outcome(t1, 'T1'), 'committed');
        t2.put('2', '22');
        assert.equal(await outcome(t2, 'T2'), 'aborted');
        assert.deepEqual(await table(store), ['1=11', '2=21']);
      },
    );

    hermitage('G1a aborted reads: prevented', 'G1a aborted reads', async (store, isolation) => {
      const t1 = store.begin({ isolation });
      const t2 = store.begin({ isolation });
      t1.put('1', '101');
      assert.deepEqual(select(t2), ['1=10', '2=20']);
      t1.abort();
      assert.deepEqual(select(t2), ['1=10', '2=20']);
      assert.equal(await outcome(t2, 'T2'), 'committed');
      assert.deepEqual(await table(store), ['1=10', '2=20']);
    });

    hermitage(
      'G1b intermediate reads: prevented',
      'G1b intermediate reads',
      async (store, isolation) => {
        const t1 = store.begin({ isolation });
        const t2 = store.begin({ isolation });
        t1.put('1', '101');
        assert.deepEqual(select(t2), ['1=10', '2=20']);
        t1.put('1', '11');
        assert.equal(await outcome(t1, 'T1'), 'committed');
        assert.deepEqual(select(t2), ['1=10', '2=20']);
        assert.equal(await outcome(t2, 'T2'), 'committed');
      },
    );

    hermitage(
      'G1c circular information flow: prevented',
      'G1c circular information flow',
      async (store, isolation) => {
        const t1 = store.begin({ isolation });
        const t2 = store.begin({ isolation });
        t1.put('1', '11');
        t2.put('2', '22');
        assert.equal(value(t1, '2'), '20');
        assert.equal(value(t2, '1'), '10');
        assert.equal(await outcome(t1, 'T1'), 'committed');
        // Neither saw the other: no wr cycle. Serializable also refuses the rw
        // cycle left (t2 read key 1, which t1 changed).
        assert.equal(
          await outcome(t2, 'T2'),
          isolation === 'serializable' ? 'aborted' : 'committed',
        );
      },
    );

    hermitage(
      'OTV observed transaction vanishes: prevented',
      'OTV observed transaction vanishes',
      async (store, isolation) => {
        const t1 = store.begin({ isolation });
        const t2 = store.begin({ isolation });
        t1.put('1', '11');
        t1.put('2', '19');
        t2.put('1', '12');
        assert.equal(await outcome(t1, 'T1'), 'committed');
        const t3 = store.begin({ isolation });
        assert.equal(value(t3, '1'), '11');
        t2.put('2', '18');
        assert.equal(value(t3, '2'), '19');
        assert.equal(await outcome(t2, 'T2'), 'aborted');
        assert.equal(value(t3, '2'), '19');
        assert.equal(value(t3, '1'), '11');
        assert.equal(await outcome(t3, 'T3'), 'committed');
      },
    );

    hermitage(
      'PMP predicate-many-preceders (read predicate): prevented',
      'PMP predicate-many-preceders (read)',
      async (store, isolation) => {
        const t1 = store.begin({ isolation });
        const t2 = store.begin({ isolation });
        assert.deepEqual(
          select(t1, (v) => v === 30),
          [],
        );
        t2.put('3', '30');
        assert.equal(await outcome(t2, 'T2'), 'committed');
        assert.deepEqual(
          select(t1, (v) => v % 3 === 0),
          [],
        );
        assert.equal(await outcome(t1, 'T1'), 'committed');
      },
    );

    hermitage(
      'PMP write predicate: prevented, the deleter aborts',
      'PMP predicate-many-preceders (write)',
      async (store, isolation) => {
        const t1 = store.begin({ isolation });
        const t2 = store.begin({ isolation });
        for (const [id, v] of entries(t1)) t1.put(id, String(Number(v) + 10));
        for (const [id] of entries(t2).filter(([, v]) => v === '20')) t2.delete(id);
        assert.equal(await outcome(t1, 'T1'), 'committed');
        assert.equal(await outcome(t2, 'T2'), 'aborted');
        assert.deepEqual(await table(store), ['1=20', '2=30']);
      },
    );

    hermitage(
      'P4 lost update: prevented, the second writer aborts',
      'P4 lost update',
      async (store, isolation) => {
        const t1 = store.begin({ isolation });
        const t2 = store.begin({ isolation });
        assert.equal(value(t1, '1'), '10');
        assert.equal(value(t2, '1'), '10');
        t1.put('1', '11');
        t2.put('1', '11');
        assert.equal(await outcome(t1, 'T1'), 'committed');
        assert.equal(await outcome(t2, 'T2'), 'aborted');
      },
    );

    hermitage('G-single read skew: prevented', 'G-single read skew', async (store, isolation) => {
      const t1 = store.begin({ isolation });
      const t2 = store.begin({ isolation });
      assert.equal(value(t1, '1'), '10');
      assert.equal(value(t2, '1'), '10');
      assert.equal(value(t2, '2'), '20');
      t2.put('1', '12');
      t2.put('2', '18');
      assert.equal(await outcome(t2, 'T2'), 'committed');
      assert.equal(value(t1, '2'), '20');
      assert.equal(await outcome(t1, 'T1'), 'committed');
    });

    hermitage(
      'G-single read skew, predicate dependencies: prevented',
      'G-single read skew, predicate dependencies',
      async (store, isolation) => {
        const t1 = store.begin({ isolation });
        const t2 = store.begin({ isolation });
        assert.deepEqual(
          select(t1, (v) => v % 5 === 0),
          ['1=10', '2=20'],
        );
        for (const [id] of entries(t2).filter(([, v]) => v === '10')) t2.put(id, '12');
        assert.equal(await outcome(t2, 'T2'), 'committed');
        assert.deepEqual(
          select(t1, (v) => v % 3 === 0),
          [],
        );
        assert.equal(await outcome(t1, 'T1'), 'committed');
      },
    );

    hermitage(
      'G-single read skew, write predicate: prevented, the deleter aborts',
      'G-single read skew, write predicate',
      async (store, isolation) => {
        const t1 = store.begin({ isolation });
        const t2 = store.begin({ isolation });
        assert.equal(value(t1, '1'), '10');
        assert.deepEqual(select(t2), ['1=10', '2=20']);
        t2.put('1', '12');
        t2.put('2', '18');
        assert.equal(await outcome(t2, 'T2'), 'committed');
        for (const [id] of entries(t1).filter(([, v]) => v === '20')) t1.delete(id);
        assert.equal(await outcome(t1, 'T1'), 'aborted');
        assert.deepEqual(await table(store), ['1=12', '2=18']);
      },
    );

    hermitage(
      'G2-item write skew: serializable prevents it (the second committer aborts); snapshot allows it',
      'G2-item write skew',
      async (store, isolation) => {
        const t1 = store.begin({ isolation });
        const t2 = store.begin({ isolation });
        assert.deepEqual([value(t1, '1'), value(t1, '2')], ['10', '20']);
        assert.deepEqual([value(t2, '1'), value(t2, '2')], ['10', '20']);
        t1.put('1', '11');
        t2.put('2', '21');
        assert.equal(await outcome(t1, 'T1'), 'committed');
        if (isolation === 'serializable') {
          assert.equal(await outcome(t2, 'T2'), 'aborted');
          assert.deepEqual(await table(store), ['1=11', '2=20']);
          return undefined;
        } else {
          assert.equal(await outcome(t2, 'T2'), 'committed');
          assert.deepEqual(await table(store), ['1=11', '2=21']); // the anomaly
          return 'anomaly';
        }
      },
    );

    hermitage(
      'G2 anti-dependency cycles (predicates): serializable prevents them; snapshot allows them',
      'G2 anti-dependency cycles (predicates)',
      async (store, isolation) => {
        const t1 = store.begin({ isolation });
        const t2 = store.begin({ isolation });
        assert.deepEqual(
          select(t1, (v) => v % 3 === 0),
          [],
        );
        assert.deepEqual(
          select(t2, (v) => v % 3 === 0),
          [],
        );
        t1.put('3', '30');
        t2.put('4', '42');
        assert.equal(await outcome(t1, 'T1'), 'committed');
        const result = await outcome(t2, 'T2');
        assert.equal(result, isolation === 'serializable' ? 'aborted' : 'committed');
        return result === 'committed' ? 'anomaly' : undefined;
      },
    );

    hermitage(
      'G2 with two anti-dependency edges (Fekete et al., a read-only anomaly): serializable prevents it; snapshot allows it',
      'G2 two anti-dependency edges (read-only anomaly)',
      async (store, isolation) => {
        const t1 = store.begin({ isolation });
        assert.deepEqual(select(t1), ['1=10', '2=20']);
        const t2 = store.begin({ isolation });
        t2.put('2', String(Number(value(t2, '2')) + 5));
        assert.equal(await outcome(t2, 'T2'), 'committed');
        const t3 = store.begin({ isolation });
        assert.deepEqual(select(t3), ['1=10', '2=25']);
        assert.equal(await outcome(t3, 'T3'), 'committed');
        t1.put('1', '0');
        // T3 saw T2 but not T1, T1 did not see T2: T1 -rw-> T2 -wr-> T3 -rw-> T1.
        const result = await outcome(t1, 'T1');
        assert.equal(result, isolation === 'serializable' ? 'aborted' : 'committed');
        return result === 'committed' ? 'anomaly' : undefined;
      },
    );
  });

  // Runs after the suite above (mocha runs sibling suites in order).
  describe('README', () => {
    it('the README table says what these tests found', async () => {
      const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
      const rows = readme
        .split('\n')
        .map((line) => line.split('|').map((c) => c.trim()))
        .filter((cells) => cells.length === 5 && found.has(cells[1]!));
      assert.equal(found.size, 14, 'every anomaly test ran first');
      assert.equal(rows.length, found.size, 'a tested anomaly is missing from the README table');
      for (const [, row, serializable, snapshot] of rows) {
        const cells = found.get(row!)!;
        assert.equal(serializable, cells.get('serializable'), `${row}, serializable`);
        assert.equal(snapshot, cells.get('snapshot'), `${row}, snapshot`);
      }
    });
  });
});
