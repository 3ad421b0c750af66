/**
 * The list-append checker (Elle's strongest workload). Every appended value
 * is unique per key, so a read of a list names the writer of each element,
 * and the longest read of a key gives the order of its versions: reads that
 * are not prefixes of each other are an anomaly, as are reads of elements
 * from failed transactions (G1a), reads ending at an element its writer
 * followed with another (G1b) and appends missing from a final read that
 * began after every commit (lost writes). The dependency graph then comes
 * from the version orders (ww, wr, rw) and real time (rt).
 */
import { DependencyGraph } from './graph.js';
import { type AppendOp, entry, type Finding, type Report, report, type Txn } from './history.js';
import { realTimeEdges } from './real-time.js';

function isPrefix(a: readonly number[], b: readonly number[]): boolean {
  return a.length <= b.length && a.every((v, i) => b[i] === v);
}

/**
 * Checks `history`. `final` (optional) is the id of a read-only transaction
 * that began after every other one ended and read every key: appends of
 * committed transactions missing from it are lost writes.
 */
export function checkListAppend(history: readonly Txn<AppendOp>[], final?: number): Report {
  const findings: Finding[] = [];
  const graph = new DependencyGraph();
  const writer = new Map<string, Map<number, Txn<AppendOp>>>(); // key → value → txn
  const appendsOf = new Map<string, Map<number, number[]>>(); // key → txn → its values, in order
  for (const txn of history) {
    for (const op of txn.ops) {
      if (op.f !== 'append') continue;
      const byValue = entry(writer, op.key, () => new Map());
      byValue.set(op.value, txn);
      if (!txn.ok) continue;
      const byTxn = entry(appendsOf, op.key, () => new Map());
      byTxn.set(txn.id, [...(byTxn.get(txn.id) ?? []), op.value]);
    }
  }
  // External reads (before the transaction's own appends to the key) of committed transactions.
  const reads: Array<{ txn: Txn<AppendOp>; key: string; value: readonly number[] }> = [];
  const longest = new Map<string, readonly number[]>();
  for (const txn of history) {
    if (!txn.ok) continue;
    const own = new Map<string, number[]>();
    for (const op of txn.ops) {
      if (op.f === 'append') {
        own.set(op.key, [...(own.get(op.key) ?? []), op.value]);
        continue;
      }
      const mine = own.get(op.key) ?? [];
      const external = op.value.slice(0, op.value.length - mine.length);
      if (!isPrefix(mine, op.value.slice(external.length))) {
        findings.push({
          type: 'internal',
          txns: [txn.id],
          detail: `T${txn.id} read ${op.key}=[${op.value}] after appending [${mine}]`,
        });
        continue;
      }
      for (const element of external) {
        const w = writer.get(op.key)?.get(element);
        if (w === undefined)
          findings.push({
            type: 'garbage-read',
            txns: [txn.id],
            detail: `${op.key}: ${element} was never appended`,
          });
        else if (!w.ok)
          findings.push({
            type: 'G1a',
            txns: [w.id, txn.id],
            detail: `T${txn.id} read ${op.key}: ${element} of failed T${w.id}`,
          });
      }
      if (mine.length === 0) reads.push({ txn, key: op.key, value: op.value });
      const known = longest.get(op.key) ?? [];
      if (isPrefix(known, op.value)) longest.set(op.key, op.value);
      else if (!isPrefix(op.value, known))
        findings.push({
          type: 'incompatible-order',
          txns: [txn.id],
          detail: `${op.key}: [${op.value}] and [${known}] are not prefixes of each other`,
        });
    }
  }
  for (const [key, order] of longest) {
    const byValue = writer.get(key);
    if (new Set(order).size !== order.length)
      findings.push({ type: 'duplicate-element', txns: [], detail: `${key}: [${order}]` });
    for (let i = 0; i + 1 < order.length; i++) {
      const w = byValue?.get(order[i]!);
      const next = byValue?.get(order[i + 1]!);
      if (w !== undefined && next !== undefined) graph.add(w.id, next.id, 'ww');
    }
  }
  for (const { txn, key, value } of reads) {
    const order = longest.get(key)!;
    const byValue = writer.get(key);
    if (value.length > 0) {
      const last = value[value.length - 1]!;
      const w = byValue?.get(last);
      if (w !== undefined) {
        graph.add(w.id, txn.id, 'wr');
        const values = appendsOf.get(key)?.get(w.id) ?? [];
        if (w.ok && values[values.length - 1] !== last && w.id !== txn.id)
          findings.push({
            type: 'G1b',
            txns: [w.id, txn.id],
            detail: `T${txn.id} read ${key} ending at ${last}, an intermediate append of T${w.id}`,
          });
      }
    }
    const following = order[value.length];
    if (following !== undefined) {
      const w = byValue?.get(following);
      if (w !== undefined) graph.add(txn.id, w.id, 'rw');
    }
  }
  if (final !== undefined) {
    for (const [key, byTxn] of appendsOf) {
      const seen = new Set(longest.get(key) ?? []);
      for (const [id, values] of byTxn) {
        const missing = values.filter((v) => !seen.has(v));
        if (missing.length > 0)
          findings.push({
            type: 'lost-write',
            txns: [id],
            detail: `${key}: [${missing}] of T${id}`,
          });
      }
    }
  }
  realTimeEdges(history, graph);
  return report(findings, graph);
}
