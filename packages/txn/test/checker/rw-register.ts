/**
 * The read/write-register checker. Every written value is unique per key, so
 * a read names its writer (wr edges; a value from a failed transaction is
 * G1a, one its writer overwrote within the transaction is G1b). Registers do
 * not reveal their version order by themselves; it is inferred, as Elle does
 * with its "sequential keys" and read-then-write rules, from:
 * - a transaction that read version v of a key and then wrote it: v precedes
 *   its write;
 * - real time: the write of a transaction acknowledged before another began
 *   precedes that other's write of the same key;
 * - the initial state (absent) precedes every write.
 * From that (partial) order come ww edges between writers and rw edges from
 * each reader of v to the writers of the versions known to follow v. Two
 * committed transactions that both read version v of a key and then wrote the
 * key are a lost update (P4) even when the order of their writes is unknown.
 */
import { DependencyGraph } from './graph.js';
import { entry, type Finding, type RegisterOp, type Report, report, type Txn } from './history.js';
import { realTimeEdges } from './real-time.js';

const INITIAL = -1;

export function checkRegisters(history: readonly Txn<RegisterOp>[]): Report {
  const findings: Finding[] = [];
  const graph = new DependencyGraph();
  const writer = new Map<string, Map<number, Txn<RegisterOp>>>(); // key → value → txn
  const finalWrite = new Map<string, Map<number, number>>(); // key → txn → its last value
  for (const txn of history) {
    for (const op of txn.ops) {
      if (op.f !== 'write') continue;
      const byValue = entry(writer, op.key, () => new Map());
      byValue.set(op.value, txn);
      const byTxn = entry(finalWrite, op.key, () => new Map());
      byTxn.set(txn.id, op.value);
    }
  }
  // Version order per key: value → values known to follow it directly.
  const after = new Map<string, Map<number, Set<number>>>();
  const precede = (key: string, a: number, b: number) => {
    entry(
      entry(after, key, () => new Map()),
      a,
      () => new Set<number>(),
    ).add(b);
  };
  const reads: Array<{ txn: Txn<RegisterOp>; key: string; value: number }> = [];
  const readThenWrite = new Map<string, Map<number, number[]>>(); // key → version read → txns
  const ok = history.filter((t) => t.ok);
  for (const txn of ok) {
    const written = new Map<string, number>();
    const readFirst = new Map<string, number>();
    for (const op of txn.ops) {
      if (op.f === 'write') {
        const seen = readFirst.get(op.key);
        if (!written.has(op.key) && seen !== undefined) {
          precede(op.key, seen, op.value);
          const byValue = entry(readThenWrite, op.key, () => new Map());
          byValue.set(seen, [...(byValue.get(seen) ?? []), txn.id]);
        }
        if (!written.has(op.key) && seen === undefined) precede(op.key, INITIAL, op.value);
        written.set(op.key, op.value);
        continue;
      }
      const value = op.value ?? INITIAL;
      if (written.has(op.key)) {
        if (written.get(op.key) !== value)
          findings.push({
            type: 'internal',
            txns: [txn.id],
            detail: `T${txn.id} read ${op.key}=${op.value} after writing ${written.get(op.key)}`,
          });
        continue;
      }
      if (!readFirst.has(op.key)) {
        readFirst.set(op.key, value);
        reads.push({ txn, key: op.key, value });
      } else if (readFirst.get(op.key) !== value) {
        findings.push({
          type: 'internal',
          txns: [txn.id],
          detail: `T${txn.id} read ${op.key} as ${readFirst.get(op.key)} then ${value}`,
        });
      }
      if (value === INITIAL) continue;
      const w = writer.get(op.key)?.get(value);
      if (w === undefined) {
        findings.push({
          type: 'garbage-read',
          txns: [txn.id],
          detail: `${op.key}=${value} never written`,
        });
      } else if (!w.ok) {
        findings.push({
          type: 'G1a',
          txns: [w.id, txn.id],
          detail: `T${txn.id} read ${op.key}=${value} of failed T${w.id}`,
        });
      } else if (finalWrite.get(op.key)!.get(w.id) !== value) {
        findings.push({
          type: 'G1b',
          txns: [w.id, txn.id],
          detail: `T${txn.id} read ${op.key}=${value}, overwritten within T${w.id}`,
        });
      }
    }
  }
  const writerOf = (key: string, value: number) =>
    value === INITIAL ? undefined : writer.get(key)?.get(value);
  // Lost updates: two committed transactions that read the same version, then wrote.
  for (const [key, byValue] of readThenWrite) {
    for (const [value, ids] of byValue) {
      if (ids.length > 1)
        findings.push({
          type: 'P4',
          txns: ids,
          detail: `${key}: T${ids.join(', T')} all read ${value === INITIAL ? 'nothing' : value}, then wrote`,
        });
    }
  }
  // Real time between writers of the same key.
  for (const [key, byTxn] of finalWrite) {
    const writers = ok.filter((t) => byTxn.has(t.id));
    for (const a of writers)
      for (const b of writers)
        if (a.end < b.begin) precede(key, byTxn.get(a.id)!, byTxn.get(b.id)!);
  }
  for (const [key, byValue] of after) {
    for (const [a, nexts] of byValue) {
      const wa = writerOf(key, a);
      for (const b of nexts) {
        const wb = writerOf(key, b);
        if (wa !== undefined && wb !== undefined && wa.ok && wb.ok) graph.add(wa.id, wb.id, 'ww');
      }
    }
  }
  for (const { txn, key, value } of reads) {
    const w = writerOf(key, value);
    if (w !== undefined) graph.add(w.id, txn.id, 'wr');
    for (const next of after.get(key)?.get(value) ?? []) {
      const wn = writerOf(key, next);
      if (wn?.ok) graph.add(txn.id, wn.id, 'rw');
    }
  }
  realTimeEdges(history, graph);
  return report(findings, graph);
}
