/**
 * The history checker across a power loss (CrashFs): clients run the
 * list-append workload under serializable isolation while checkpoints run;
 * before every fdatasync, rename and directory fsync, the state a power loss
 * then could leave is kept with where every transaction stood. For each, the
 * store is reopened and a final transaction reads every key; the history
 * before the crash plus that read is checked (test/checker): transactions
 * acknowledged by then must be there (no lost write), transactions whose
 * commit was in flight count as committed when any of their appends
 * survived (then all must have: a commit in part is a lost write), every
 * other one must have left nothing (G1a), and the dependency graph must
 * have no cycle.
 */
import assert from 'node:assert/strict';
import { isWalError } from '@wal/errors';
import { CrashFs, type CrashState } from '@wal/store/testing';
import { TxnStore } from '../../src/index.js';
import { describeCycle } from '../checker/graph.js';
import type { AppendOp, Txn } from '../checker/history.js';
import { checkListAppend } from '../checker/list-append.js';
import { rng } from '../checker/workload.js';
import { tick } from '../helpers.js';
import { steppingFs } from './bank.js';

const DIR = '/lists';
const OPTIONS = { checkpoint: { logBytes: 2500 } };
const LOG = { segmentSize: 4096 };
const KEYS = 5;
const CLIENTS = 4;
const TXNS = 60;
const decoder = new TextDecoder();
const keyName = (i: number) => `k${i}`;
const parse = (bytes: Uint8Array | undefined) =>
  bytes === undefined ? [] : decoder.decode(bytes).split(',').map(Number);

type Status = 'running' | 'committing' | 'ok' | 'failed';
interface Record {
  readonly id: number;
  readonly ops: AppendOp[];
  readonly begin: number;
  end: number;
  status: Status;
}
interface Moment {
  readonly clock: number;
  readonly txns: ReadonlyArray<Readonly<Record>>;
  readonly state: CrashState;
  readonly method: string;
}

/** The history of `moment`, decided by what the reopened `store` holds, with its final read. */
async function historyAfter(moment: Moment, store: TxnStore) {
  const final = await store.run((tx) =>
    Array.from({ length: KEYS }, (_, i) => ({
      f: 'read' as const,
      key: keyName(i),
      value: parse(tx.get(keyName(i))),
    })),
  );
  const present = new Set(final.flatMap((op) => op.value));
  const history: Txn<AppendOp>[] = moment.txns.map((txn) => {
    const appended = txn.ops.filter((op) => op.f === 'append').map((op) => op.value);
    let ok = txn.status === 'ok';
    if (txn.status === 'committing') ok = appended.some((v) => present.has(v));
    const end = txn.status === 'ok' ? txn.end : moment.clock + 1;
    return { id: txn.id, ops: txn.ops, ok, begin: txn.begin, end };
  });
  const id = moment.txns.length + 1;
  history.push({ id, ops: final, ok: true, begin: moment.clock + 2, end: moment.clock + 3 });
  return { history, final: id };
}

describe('crash: the history checker across power losses during list appends and checkpoints (CrashFs)', () => {
  it('finds no lost write, no aborted read and no cycle in any crash state', async function () {
    this.timeout(120_000);
    const random = rng(0x11575);
    const crash = new CrashFs();
    const txns: Record[] = [];
    const moments: Moment[] = [];
    let clock = 0;
    let steps = 0;
    const fs = steppingFs(crash, (method) => {
      if (method !== 'fdatasync' && method !== 'rename' && method !== 'syncDir') return;
      steps++;
      for (const state of crash.crashStates({ seed: steps, limit: 2 }))
        moments.push({ clock: ++clock, txns: txns.map((t) => ({ ...t })), state, method });
    });
    const store = await TxnStore.open(DIR, { ...OPTIONS, log: { ...LOG, fs } });
    let next = 0;
    const client = async () => {
      for (let t = 0; t < TXNS; t++) {
        const record: Record = {
          id: txns.length + 1,
          ops: [],
          begin: ++clock,
          end: 0,
          status: 'running',
        };
        txns.push(record);
        const tx = store.begin();
        for (let i = 0, n = 1 + Math.floor(random() * 3); i < n; i++) {
          const key = keyName(Math.floor(random() * KEYS));
          const list = parse(tx.get(key));
          if (random() < 0.4) {
            record.ops.push({ f: 'read', key, value: list });
          } else {
            const value = ++next;
            tx.put(key, [...list, value].join(','));
            record.ops.push({ f: 'append', key, value });
          }
          if (random() < 0.5) await tick();
        }
        record.status = 'committing';
        try {
          await tx.commit();
          record.status = 'ok';
        } catch (error) {
          if (!isWalError(error, 'WAL_CONFLICT')) throw error;
          record.status = 'failed';
        }
        record.end = ++clock;
      }
    };
    let running = true;
    const checkpointer = (async () => {
      while (running) {
        await new Promise((resolve) => setTimeout(resolve, 3));
        await store.checkpoint();
      }
    })();
    await Promise.all(Array.from({ length: CLIENTS }, client));
    running = false;
    await checkpointer;
    await store.close();

    let inFlight = 0;
    for (const moment of moments) {
      const reopened = await TxnStore.open(DIR, {
        ...OPTIONS,
        log: { ...LOG, fs: moment.state.fs() },
      });
      try {
        const { history, final } = await historyAfter(moment, reopened);
        const report = checkListAppend(history, final);
        const where = `power loss before a ${moment.method} at clock ${moment.clock}, ${moment.state.description}`;
        assert.deepEqual(report.findings, [], where);
        assert.deepEqual(report.cycles.map(describeCycle), [], where);
        inFlight += moment.txns.filter((t) => t.status === 'committing').length;
      } finally {
        await reopened.close();
      }
    }
    console.log(
      `      ${moments.length} crash states checked, ${inFlight} commits in flight at them, ${txns.filter((t) => t.status === 'ok').length} of ${txns.length} transactions acknowledged`,
    );
    assert.ok(moments.length > 30);
    assert.ok(inFlight > 0);
  });
});
