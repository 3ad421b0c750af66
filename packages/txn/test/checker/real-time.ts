/** Real-time edges: T1 → T2 when T1's commit was acknowledged before T2 began. */
import type { DependencyGraph } from './graph.js';
import type { Txn } from './history.js';

/**
 * Adds the real-time order among committed transactions, reduced: an edge to
 * T2 only from the transactions that ended before T2 began and after the
 * latest begin among those (earlier ones reach T2 through them).
 */
export function realTimeEdges(history: readonly Txn<unknown>[], graph: DependencyGraph): void {
  const ok = history.filter((t) => t.ok);
  const byEnd = [...ok].sort((a, b) => a.end - b.end);
  for (const t2 of ok) {
    const before = byEnd.filter((t1) => t1.end < t2.begin);
    if (before.length === 0) continue;
    // The frontier: those not followed in real time by another one also before t2.
    for (const t1 of before) {
      if (!before.some((t) => t.begin > t1.end)) graph.add(t1.id, t2.id, 'rt');
    }
  }
}
