/**
 * Model-based tests (fast-check): random interleavings of up to three open
 * transactions against a reference written from the specification — each
 * transaction copies the committed state at begin; commit fails exactly when
 * a commit after its snapshot wrote a key it wrote (both levels) or read or
 * scanned (serializable). Every committed serializable transaction is also
 * checked against a serial execution: its reads, replayed on the state just
 * before its commit (plus its own writes at the time), give the same answers.
 * A second property reopens a real directory and finds the committed state.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import fc from 'fast-check';
import { type Isolation, type ScanOptions, type Transaction, TxnStore } from '../src/index.js';
import { entries, LEVELS, memoryStore, temporaryDirectory, text } from './helpers.js';

const KEYS = ['a', 'b', 'c', 'd', 'e'];
const SLOTS = 3;

type Bound = { key: string; inclusive: boolean } | undefined;
type Cmd =
  | { c: 'begin'; slot: number; isolation: Isolation }
  | { c: 'get'; slot: number; key: string }
  | { c: 'put'; slot: number; key: string; value: string }
  | { c: 'delete'; slot: number; key: string }
  | { c: 'scan'; slot: number; lo: Bound; hi: Bound; limit: number | undefined; reverse: boolean }
  | { c: 'commit'; slot: number }
  | { c: 'abort'; slot: number };

const slot = fc.integer({ min: 0, max: SLOTS - 1 });
const key = fc.constantFrom(...KEYS);
const bound: fc.Arbitrary<Bound> = fc.option(
  fc.record({ key: fc.constantFrom('a', 'bb', 'c', 'e'), inclusive: fc.boolean() }),
  {
    nil: undefined,
  },
);
const command: fc.Arbitrary<Cmd> = fc.oneof(
  fc.record({ c: fc.constant('begin' as const), slot, isolation: fc.constantFrom(...LEVELS) }),
  fc.record({ c: fc.constant('get' as const), slot, key }),
  fc.record({ c: fc.constant('put' as const), slot, key, value: fc.string({ maxLength: 3 }) }),
  fc.record({ c: fc.constant('delete' as const), slot, key }),
  fc.record({
    c: fc.constant('scan' as const),
    slot,
    lo: bound,
    hi: bound,
    limit: fc.option(fc.integer({ min: 0, max: 4 }), { nil: undefined }),
    reverse: fc.boolean(),
  }),
  fc.record({ c: fc.constant('commit' as const), slot }),
  fc.record({ c: fc.constant('abort' as const), slot }),
);

type State = Map<string, string>;
type Writes = Map<string, string | undefined>;
type Observation =
  | { kind: 'get'; key: string; result: string | undefined; own: Writes }
  | { kind: 'scan'; cmd: Cmd & { c: 'scan' }; result: Array<[string, string]>; own: Writes };

interface ModelTxn {
  readonly real: Transaction;
  readonly isolation: Isolation;
  readonly snapshot: number;
  readonly view: State;
  readonly writes: Writes;
  readonly reads: Set<string>;
  readonly ranges: Array<(k: string) => boolean>;
  readonly observations: Observation[];
}

function within(cmd: { lo: Bound; hi: Bound }, k: string): boolean {
  if (cmd.lo !== undefined && (cmd.lo.inclusive ? k < cmd.lo.key : k <= cmd.lo.key)) return false;
  if (cmd.hi !== undefined && (cmd.hi.inclusive ? k > cmd.hi.key : k >= cmd.hi.key)) return false;
  return true;
}

/** The scan `cmd` over `state` overlaid with `own`, and the key range its result depends on. */
function modelScan(cmd: Cmd & { c: 'scan' }, state: State, own: Writes) {
  const merged = new Map(state);
  for (const [k, v] of own) {
    if (v === undefined) merged.delete(k);
    else merged.set(k, v);
  }
  let list = [...merged].filter(([k]) => within(cmd, k)).sort(([a], [b]) => (a < b ? -1 : 1));
  if (cmd.reverse) list.reverse();
  const full = cmd.limit !== undefined && list.length >= cmd.limit;
  if (cmd.limit !== undefined) list = list.slice(0, cmd.limit);
  let depends = (k: string) => within(cmd, k);
  if (cmd.limit === 0) depends = () => false;
  else if (full) {
    const last = list[list.length - 1]![0];
    depends = (k) => within(cmd, k) && (cmd.reverse ? k >= last : k <= last);
  }
  return { list, depends };
}

function scanOptions(cmd: Cmd & { c: 'scan' }): ScanOptions {
  const options: Record<string, unknown> = { reverse: cmd.reverse };
  if (cmd.lo) options[cmd.lo.inclusive ? 'gte' : 'gt'] = cmd.lo.key;
  if (cmd.hi) options[cmd.hi.inclusive ? 'lte' : 'lt'] = cmd.hi.key;
  if (cmd.limit !== undefined) options.limit = cmd.limit;
  return options as ScanOptions;
}

async function runModel(store: TxnStore, commands: Cmd[]): Promise<State> {
  const state: State = new Map();
  const commits: Writes[] = [];
  const open: Array<ModelTxn | undefined> = [];
  for (const cmd of commands) {
    const txn = open[cmd.slot];
    if (cmd.c === 'begin') {
      if (txn !== undefined) continue;
      open[cmd.slot] = {
        real: store.begin({ isolation: cmd.isolation }),
        isolation: cmd.isolation,
        snapshot: commits.length,
        view: new Map(state),
        writes: new Map(),
        reads: new Set(),
        ranges: [],
        observations: [],
      };
      continue;
    }
    if (txn === undefined) continue;
    const tracks = txn.isolation === 'serializable';
    switch (cmd.c) {
      case 'get': {
        const expected = txn.writes.has(cmd.key) ? txn.writes.get(cmd.key) : txn.view.get(cmd.key);
        if (!txn.writes.has(cmd.key) && tracks) txn.reads.add(cmd.key);
        const result = text(txn.real.get(cmd.key));
        assert.equal(result, expected);
        txn.observations.push({ kind: 'get', key: cmd.key, result, own: new Map(txn.writes) });
        break;
      }
      case 'put':
        txn.real.put(cmd.key, cmd.value);
        txn.writes.set(cmd.key, cmd.value);
        break;
      case 'delete':
        txn.real.delete(cmd.key);
        txn.writes.set(cmd.key, undefined);
        break;
      case 'scan': {
        const { list, depends } = modelScan(cmd, txn.view, txn.writes);
        const result = entries(txn.real, scanOptions(cmd));
        assert.deepEqual(result, list);
        if (tracks) txn.ranges.push(depends);
        txn.observations.push({ kind: 'scan', cmd, result, own: new Map(txn.writes) });
        break;
      }
      case 'abort':
        txn.real.abort();
        open[cmd.slot] = undefined;
        break;
      case 'commit': {
        open[cmd.slot] = undefined;
        const later = commits.slice(txn.snapshot);
        const conflict =
          txn.writes.size > 0 &&
          later.some((w) =>
            [...w.keys()].some(
              (k) =>
                txn.writes.has(k) || (tracks && (txn.reads.has(k) || txn.ranges.some((r) => r(k)))),
            ),
          );
        let committed = true;
        try {
          await txn.real.commit();
        } catch (error) {
          assert.equal((error as { code?: unknown }).code, 'WAL_CONFLICT', String(error));
          committed = false;
        }
        assert.equal(
          committed,
          !conflict,
          `commit outcome (expected ${conflict ? 'a conflict' : 'success'})`,
        );
        if (!committed) break;
        if (tracks) {
          // Serial reference: the reads hold on the state just before this commit.
          for (const o of txn.observations) {
            if (o.kind === 'get') {
              const expected = o.own.has(o.key) ? o.own.get(o.key) : state.get(o.key);
              assert.equal(o.result, expected, 'a serializable read differs from the serial order');
            } else {
              assert.deepEqual(
                o.result,
                modelScan(o.cmd, state, o.own).list,
                'a serializable scan differs',
              );
            }
          }
        }
        if (txn.writes.size === 0) break;
        for (const [k, v] of txn.writes) {
          if (v === undefined) state.delete(k);
          else state.set(k, v);
        }
        commits.push(txn.writes);
        break;
      }
    }
  }
  for (const txn of open) txn?.real.abort();
  return state;
}

function sorted(state: State): Array<[string, string]> {
  return [...state].sort(([a], [b]) => (a < b ? -1 : 1));
}

describe('model: random transactions against the reference', function () {
  this.timeout(120_000);

  it('reads, scans, commit outcomes and the final state match; memory is reclaimed', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(command, { maxLength: 80 }),
        fc.boolean(),
        async (commands, tiny) => {
          // Half the runs keep the ordered keys in blocks of 1 to 2 keys.
          const store = await memoryStore(tiny ? { indexBlockSize: 1 } : {});
          try {
            const state = await runModel(store, commands);
            const final = await store.run((tx) => entries(tx));
            assert.deepEqual(
              final,
              [...state].sort(([a], [b]) => (a < b ? -1 : 1)),
            );
            // No transaction is open: every old version and every deleted key is gone.
            const stats = store.stats();
            assert.equal(stats.activeTransactions, 0);
            assert.equal(stats.versions, state.size);
            assert.equal(stats.keys, state.size);
          } finally {
            await store.close();
          }
        },
      ),
      { numRuns: 400 },
    );
  });

  describe('on a real directory', () => {
    const directory = temporaryDirectory('wal-txn-model-', false);

    it('reopening the log finds exactly the committed state', async () => {
      let run = 0;
      await fc.assert(
        fc.asyncProperty(fc.array(command, { maxLength: 40 }), async (commands) => {
          const path = join(directory(), String(run++));
          let store = await TxnStore.open(path);
          const state = await runModel(store, commands);
          await store.close();
          store = await TxnStore.open(path);
          try {
            assert.deepEqual(await store.run((tx) => entries(tx)), sorted(state));
          } finally {
            await store.close();
          }
        }),
        { numRuns: 25 },
      );
    });
  });
});
