/**
 * Random concurrent histories, checked in Elle's manner (checker/): under
 * serializable isolation no dependency cycle at all; under snapshot isolation
 * no cycle that SI forbids (G0, G1c, G-single, G-nonadjacent), while the G2
 * cycles it allows (write skew) do show up; never an aborted, intermediate,
 * garbage or lost read. A store whose serializable validation skips the read
 * set and the scanned ranges is caught with G2 cycles, one whose snapshot
 * validation skips write-write conflicts with lost updates.
 *
 * TXN_HISTORY_SCALE multiplies the number of histories (the soak script:
 * `pnpm --filter @wal/txn soak:histories`).
 */
import assert from 'node:assert/strict';
import type { Isolation, TxnStore } from '../src/index.js';
import { type Cycle, describeCycle, FORBIDDEN } from './checker/graph.js';
import type { AppendOp, RegisterOp, Report, Txn } from './checker/history.js';
import { checkListAppend } from './checker/list-append.js';
import { checkRegisters } from './checker/rw-register.js';
import { appendHistory, registerHistory, type WorkloadOptions } from './checker/workload.js';
import { LEVELS, memoryStore } from './helpers.js';

const SCALE = Number(process.env.TXN_HISTORY_SCALE ?? 1);
const PER_LEVEL = Math.round(600 * SCALE);

/** Contention from high (2 keys, 8 clients) to low (32 keys, 3 clients). */
const CONTENTION = [
  { keys: 2, clients: 8 },
  { keys: 4, clients: 6 },
  { keys: 8, clients: 5 },
  { keys: 32, clients: 3 },
] as const;

type Workload = 'list-append' | 'rw-register';

async function check(
  store: TxnStore,
  workload: Workload,
  options: WorkloadOptions,
): Promise<{ report: Report; history: readonly Txn<AppendOp | RegisterOp>[] }> {
  if (workload === 'list-append') {
    const { history, final } = await appendHistory(store, options);
    return { report: checkListAppend(history, final), history };
  }
  const history = await registerHistory(store, options);
  return { report: checkRegisters(history), history };
}

/** A cycle with the operations of its transactions, as Elle explains one. */
function explain(cycle: Cycle, history: readonly Txn<AppendOp | RegisterOp>[]): string {
  const lines = [describeCycle(cycle)];
  for (const { from } of cycle.steps) {
    const txn = history.find((t) => t.id === from)!;
    const ops = txn.ops.map((op) => `${op.f} ${op.key} ${JSON.stringify(op.value)}`).join(', ');
    lines.push(`  T${from}: [${ops}]`);
  }
  return lines.join('\n');
}

interface Tally {
  histories: number;
  problems: string[];
  allowed: Cycle[];
  edges: Record<'ww' | 'wr' | 'rw' | 'rt', number>;
}

async function runMany(
  workload: Workload,
  isolation: Isolation,
  count: number,
  open: () => Promise<TxnStore>,
  firstSeed: number,
): Promise<Tally> {
  const tally: Tally = {
    histories: 0,
    problems: [],
    allowed: [],
    edges: { ww: 0, wr: 0, rw: 0, rt: 0 },
  };
  for (let i = 0; i < count; i++) {
    const seed = firstSeed + i;
    const { keys, clients } = CONTENTION[i % CONTENTION.length]!;
    const store = await open();
    let checked: Awaited<ReturnType<typeof check>>;
    try {
      checked = await check(store, workload, {
        seed,
        isolation,
        keys,
        clients,
        txnsPerClient: 4 + (seed % 5),
        maxOps: 4,
      });
    } finally {
      await store.close();
    }
    const { report, history } = checked;
    tally.histories++;
    for (const type of ['ww', 'wr', 'rw', 'rt'] as const) tally.edges[type] += report.edges[type];
    for (const f of report.findings) tally.problems.push(`seed ${seed}: ${f.type} ${f.detail}`);
    for (const cycle of report.cycles) {
      if (FORBIDDEN[isolation].has(cycle.type))
        tally.problems.push(`seed ${seed}: ${explain(cycle, history)}`);
      else tally.allowed.push(cycle);
    }
  }
  return tally;
}

describe('histories (Elle-style cycle checking of random concurrent workloads)', function () {
  this.timeout(0);

  for (const workload of ['list-append', 'rw-register'] as const) {
    for (const isolation of LEVELS) {
      it(`${workload}, ${isolation}: ${PER_LEVEL} histories, no forbidden anomaly`, async () => {
        const seed =
          (workload === 'list-append' ? 1 : 1_000_000) + (isolation === 'snapshot' ? 500_000 : 0);
        const tally = await runMany(workload, isolation, PER_LEVEL, () => memoryStore(), seed);
        assert.deepEqual(tally.problems.slice(0, 10), []);
        // The checker had something to check: every kind of dependency occurred.
        for (const type of ['ww', 'wr', 'rw', 'rt'] as const)
          assert.ok(tally.edges[type] > 0, `no ${type} edge in ${tally.histories} histories`);
        if (isolation === 'snapshot') {
          // Write skew happens under SI, and the checker sees it as G2.
          assert.ok(
            tally.allowed.some((c) => c.type === 'G2'),
            'no G2 cycle under snapshot isolation: the workload or the checker is too weak',
          );
        } else {
          assert.deepEqual(tally.allowed, []);
        }
      });
    }
  }

  for (const workload of ['list-append', 'rw-register'] as const) {
    it(`${workload}: catches a snapshot validation that skips write-write conflicts (lost updates)`, async () => {
      const tally = await runMany(
        workload,
        'snapshot',
        Math.max(40, PER_LEVEL / 4),
        () => memoryStore({ skipWriteValidation: true }),
        8_000_000,
      );
      // A lost append shows as lists that are not prefixes of each other, or
      // as a lost write; a lost register update as P4 or a G-single cycle.
      const found = tally.problems.filter((p) =>
        / (incompatible-order|lost-write|P4|G-single|G0|G1c):? /.test(p),
      );
      assert.ok(found.length > 0, `no lost update reported in ${tally.histories} histories`);
    });

    it(`${workload}: catches a serializable validation that skips the read set (G2 cycles)`, async () => {
      const tally = await runMany(
        workload,
        'serializable',
        Math.max(40, PER_LEVEL / 4),
        () => memoryStore({ skipReadValidation: true }),
        7_000_000,
      );
      const g2 = tally.problems.filter((p) => / G2: /.test(p));
      assert.ok(
        g2.length > 0,
        `no G2 reported in ${tally.histories} histories: ${tally.problems.slice(0, 3)}`,
      );
      assert.match(g2[0]!, /-rw->.*-rw->/);
      assert.match(
        g2[0]!,
        /\n {2}T\d+: \[/,
        'the report lists the operations of the transactions in the cycle',
      );
    });
  }
});
