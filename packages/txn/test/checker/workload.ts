/**
 * Random concurrent workloads against a real store, recorded as histories.
 * Clients run transactions of a few micro-operations over a small key space
 * (fewer keys: more contention), yielding to the event loop at random points
 * so that transactions overlap and commits share group commits. Every
 * transaction is recorded with its reads as returned and its outcome.
 */
import { isWalError } from '@wal/errors';
import fc from 'fast-check';
import type { Isolation, Transaction, TxnStore } from '../../src/index.js';
import { tick } from '../helpers.js';
import type { AppendOp, RegisterOp, Txn } from './history.js';

/**
 * A seeded stream of numbers in [0, 1) drawn from fast-check's generator
 * (unbiased), so a failing history can be replayed from its seed.
 */
export function rng(seed: number): () => number {
  const uint32 = fc.noBias(fc.integer({ min: 0, max: 0xffffffff }));
  let chunk = 0;
  let values: number[] = [];
  let at = 0;
  return () => {
    if (at === values.length) {
      values = fc.sample(uint32, { seed: (seed * 7919 + chunk++) | 0, numRuns: 1024 });
      at = 0;
    }
    return values[at++]! / 2 ** 32;
  };
}

export interface WorkloadOptions {
  readonly seed: number;
  readonly isolation: Isolation;
  /** Size of the key space. */
  readonly keys: number;
  readonly clients: number;
  readonly txnsPerClient: number;
  /** Micro-operations per transaction: 1 to this. */
  readonly maxOps: number;
}

const decoder = new TextDecoder();
const keyName = (i: number) => `k${String(i).padStart(3, '0')}`;

interface Recorder<Op> {
  /** Runs one micro-operation in `tx` and returns what to record. */
  op(tx: Transaction, random: () => number): Op | Op[];
}

async function pause(random: () => number): Promise<void> {
  const r = random();
  if (r < 0.4) return;
  if (r < 0.7) await Promise.resolve();
  else await tick();
}

async function run<Op>(
  store: TxnStore,
  options: WorkloadOptions,
  recorder: Recorder<Op>,
  random: () => number,
): Promise<Txn<Op>[]> {
  const history: Txn<Op>[] = [];
  let clock = 0;
  let ids = 0;
  const client = async () => {
    for (let t = 0; t < options.txnsPerClient; t++) {
      await pause(random);
      const id = ++ids;
      const begin = ++clock;
      const tx = store.begin({ isolation: options.isolation });
      const ops: Op[] = [];
      const count = 1 + Math.floor(random() * options.maxOps);
      for (let i = 0; i < count; i++) {
        const done = recorder.op(tx, random);
        if (Array.isArray(done)) ops.push(...done);
        else ops.push(done);
        await pause(random);
      }
      let ok = true;
      try {
        await tx.commit();
      } catch (error) {
        if (!isWalError(error, 'WAL_CONFLICT')) throw error;
        ok = false;
      }
      history.push({ id, ops, ok, begin, end: ++clock });
    }
  };
  await Promise.all(Array.from({ length: options.clients }, client));
  return history;
}

function parseList(bytes: Uint8Array | undefined): number[] {
  if (bytes === undefined) return [];
  return decoder.decode(bytes).split(',').map(Number);
}

/**
 * The list-append workload: reads of a key's list, appends of unique values
 * (a read-modify-write of the list's text), and now and then a scan of the
 * whole key space (a read of every key, absent ones as empty lists). Ends
 * with a final transaction that reads every key after all others ended; its
 * id is returned as `final`.
 */
export async function appendHistory(
  store: TxnStore,
  options: WorkloadOptions,
): Promise<{ history: Txn<AppendOp>[]; final: number }> {
  const random = rng(options.seed);
  let next = 0;
  const recorder: Recorder<AppendOp> = {
    op(tx, r) {
      const x = r();
      if (x < 0.1) {
        const found = new Map(
          tx.scan({ gte: 'k', lt: 'l' }).map((e) => [decoder.decode(e.key), e.value]),
        );
        return Array.from({ length: options.keys }, (_, i) => ({
          f: 'read' as const,
          key: keyName(i),
          value: parseList(found.get(keyName(i))),
        }));
      }
      const key = keyName(Math.floor(r() * options.keys));
      const list = parseList(tx.get(key));
      if (x < 0.55) return { f: 'read', key, value: list };
      const value = ++next;
      tx.put(key, [...list, value].join(','));
      return { f: 'append', key, value };
    },
  };
  const history = await run(store, options, recorder, random);
  const final = history.length + 1;
  const begin = history.length * 2 + 1;
  const tx = store.begin();
  const ops: AppendOp[] = Array.from({ length: options.keys }, (_, i) => ({
    f: 'read',
    key: keyName(i),
    value: parseList(tx.get(keyName(i))),
  }));
  await tx.commit();
  history.push({ id: final, ops, ok: true, begin, end: begin + 1 });
  return { history, final };
}

/** The register workload: reads, and writes of unique values, over a few keys. */
export async function registerHistory(
  store: TxnStore,
  options: WorkloadOptions,
): Promise<Txn<RegisterOp>[]> {
  const random = rng(options.seed);
  let next = 0;
  return run(
    store,
    options,
    {
      op(tx, r) {
        const key = keyName(Math.floor(r() * options.keys));
        if (r() < 0.5) {
          const bytes = tx.get(key);
          return {
            f: 'read',
            key,
            value: bytes === undefined ? null : Number(decoder.decode(bytes)),
          };
        }
        const value = ++next;
        tx.put(key, String(value));
        return { f: 'write', key, value };
      },
    },
    random,
  );
}
