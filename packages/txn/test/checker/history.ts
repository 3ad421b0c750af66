/**
 * Histories of transactions, as the workloads record them and the checkers
 * read them, and the non-cycle anomalies both checkers report.
 */
import type { Cycle, DependencyGraph } from './graph.js';

/** A micro-operation of the list-append workload: append `value` to `key`'s list, or read the list. */
export type AppendOp =
  | { readonly f: 'append'; readonly key: string; readonly value: number }
  | { readonly f: 'read'; readonly key: string; readonly value: readonly number[] };

/** A micro-operation of the register workload: write `value` to `key`, or read it (`null`: absent). */
export type RegisterOp =
  | { readonly f: 'write'; readonly key: string; readonly value: number }
  | { readonly f: 'read'; readonly key: string; readonly value: number | null };

/** One transaction of a history. */
export interface Txn<Op> {
  readonly id: number;
  readonly ops: readonly Op[];
  /** True when its commit resolved; false when it failed (it is then known not to have committed). */
  readonly ok: boolean;
  /** Logical time at `begin` and when the commit settled. */
  readonly begin: number;
  readonly end: number;
}

/** An anomaly other than a cycle: what it is and the transactions concerned. */
export interface Finding {
  readonly type:
    | 'G1a'
    | 'G1b'
    | 'P4'
    | 'incompatible-order'
    | 'lost-write'
    | 'garbage-read'
    | 'duplicate-element'
    | 'internal';
  readonly txns: readonly number[];
  readonly detail: string;
}

/** What a checker found in a history. */
export interface Report {
  readonly findings: readonly Finding[];
  readonly cycles: readonly Cycle[];
  /** Number of edges of each type, to show the graph was not empty. */
  readonly edges: Readonly<Record<'ww' | 'wr' | 'rw' | 'rt', number>>;
}

/** The value at `key` in `map`, made by `make` and stored when absent. */
export function entry<K, V>(map: Map<K, V>, key: K, make: () => V): V {
  let value = map.get(key);
  if (value === undefined) {
    value = make();
    map.set(key, value);
  }
  return value;
}

/** The report of a checked history: its findings and the cycles and edge counts of its graph. */
export function report(findings: readonly Finding[], graph: DependencyGraph): Report {
  return {
    findings,
    cycles: graph.cycles(),
    edges: {
      ww: graph.count('ww'),
      wr: graph.count('wr'),
      rw: graph.count('rw'),
      rt: graph.count('rt'),
    },
  };
}
