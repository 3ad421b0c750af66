/**
 * The dependency graph of a history and the search for its cycles, in the
 * manner of Elle (Kingsbury and Alvaro, VLDB 2020) over Adya's dependencies:
 * - `ww` T1 → T2: T2 wrote the version of a key after the one T1 wrote;
 * - `wr` T1 → T2: T2 read a version T1 wrote;
 * - `rw` T1 → T2: T1 read a version, T2 wrote the next one (an anti-dependency);
 * - `rt` T1 → T2: T1's commit was acknowledged before T2 began (real time).
 *
 * Anomalies reported, by the edges of the cycle:
 * - `G0`: only ww (and rt) edges;
 * - `G1c`: ww and wr (and rt) edges, at least one wr;
 * - `G-single`: exactly one rw edge;
 * - `G-nonadjacent`: several rw edges, no two of them adjacent in the cycle;
 * - `G2`: any other cycle (several rw edges, some adjacent).
 * Serializability forbids every cycle. Snapshot isolation (strong, with real
 * time) forbids exactly the cycles without two adjacent rw edges: each edge of
 * (ww ∪ wr ∪ rt) ; rw? moves forward in commit time, so that relation is
 * acyclic under SI (Cerone and Gotsman, 2016); G2 cycles whose rw edges come
 * in adjacent pairs (write skew) are allowed.
 */

export type EdgeType = 'ww' | 'wr' | 'rw' | 'rt';

/** One edge of a reported cycle. */
export interface Step {
  readonly from: number;
  readonly to: number;
  readonly type: EdgeType;
}

export type CycleType = 'G0' | 'G1c' | 'G-single' | 'G-nonadjacent' | 'G2';

/** A cycle found in the graph, with its transactions in order. */
export interface Cycle {
  readonly type: CycleType;
  readonly steps: readonly Step[];
}

const DEPENDS: ReadonlySet<EdgeType> = new Set(['ww', 'wr', 'rt']);
const WRITES: ReadonlySet<EdgeType> = new Set(['ww', 'rt']);
const ALL: ReadonlySet<EdgeType> = new Set(['ww', 'wr', 'rw', 'rt']);

export class DependencyGraph {
  readonly #out = new Map<number, Map<number, Set<EdgeType>>>();

  /** Adds an edge (self-edges are ignored: a transaction does not depend on itself). */
  add(from: number, to: number, type: EdgeType): void {
    if (from === to) return;
    let targets = this.#out.get(from);
    if (targets === undefined) {
      targets = new Map();
      this.#out.set(from, targets);
    }
    let types = targets.get(to);
    if (types === undefined) {
      types = new Set();
      targets.set(to, types);
    }
    types.add(type);
  }

  /** Number of edges, by type. */
  count(type: EdgeType): number {
    let n = 0;
    for (const targets of this.#out.values())
      for (const types of targets.values()) if (types.has(type)) n++;
    return n;
  }

  /** The edges out of `from` whose type is in `allowed`. */
  *edges(from: number, allowed: ReadonlySet<EdgeType>): Generator<Step> {
    const targets = this.#out.get(from);
    if (targets === undefined) return;
    for (const [to, types] of targets) {
      for (const type of types) {
        if (allowed.has(type)) {
          yield { from, to, type };
          break;
        }
      }
    }
  }

  nodes(): number[] {
    const nodes = new Set<number>();
    for (const [from, targets] of this.#out) {
      nodes.add(from);
      for (const to of targets.keys()) nodes.add(to);
    }
    return [...nodes];
  }

  /** Shortest path of edges in `allowed` from `from` to `to` (breadth first), or undefined. */
  path(from: number, to: number, allowed: ReadonlySet<EdgeType>): Step[] | undefined {
    const via = new Map<number, Step>();
    const queue = [from];
    const seen = new Set([from]);
    for (let i = 0; i < queue.length; i++) {
      const node = queue[i]!;
      for (const step of this.edges(node, allowed)) {
        if (step.to === to) {
          const path = [step];
          for (let at = node; at !== from; at = via.get(at)!.from) path.unshift(via.get(at)!);
          return path;
        }
        if (!seen.has(step.to)) {
          seen.add(step.to);
          via.set(step.to, step);
          queue.push(step.to);
        }
      }
    }
    return undefined;
  }

  /**
   * The cycles, at most one per strongly connected component of each kind,
   * weakest kind first: G0, then G1c, G-single, G-nonadjacent and G2 (each
   * searched only among transactions not already in a weaker cycle).
   */
  cycles(): Cycle[] {
    const found: Cycle[] = [];
    const covered = new Set<number>();
    const record = (type: CycleType, steps: Step[]) => {
      // Start at the smallest transaction id, so a cycle reads the same whatever the search order.
      let first = 0;
      steps.forEach((s, i) => {
        if (s.from < steps[first]!.from) first = i;
      });
      found.push({ type, steps: [...steps.slice(first), ...steps.slice(0, first)] });
      for (const step of steps) covered.add(step.from);
    };
    for (const component of this.#components(WRITES)) {
      record('G0', this.path(component[0]!, component[0]!, WRITES)!);
    }
    for (const component of this.#components(DEPENDS)) {
      if (component.some((n) => covered.has(n))) continue;
      record('G1c', this.path(component[0]!, component[0]!, DEPENDS)!);
    }
    // G-single: one rw edge closed by a path of other edges.
    for (const from of this.nodes()) {
      if (covered.has(from)) continue;
      for (const rw of this.edges(from, new Set(['rw']))) {
        if (covered.has(from)) break;
        const back = this.path(rw.to, from, DEPENDS);
        if (back !== undefined) record('G-single', [rw, ...back]);
      }
    }
    // G-nonadjacent: a cycle of (ww ∪ wr ∪ rt) ; rw?, whose rw edges are never adjacent.
    for (const cycle of this.#nonadjacent()) {
      if (cycle.some((s) => covered.has(s.from))) continue;
      record(cycle.filter((s) => s.type === 'rw').length > 1 ? 'G-nonadjacent' : 'G-single', cycle);
    }
    for (const component of this.#components(ALL)) {
      if (component.some((n) => covered.has(n))) continue;
      record('G2', this.path(component[0]!, component[0]!, ALL)!);
    }
    return found;
  }

  *#nonadjacent(): Generator<Step[]> {
    // Graph of the composed relation; each edge remembers the steps it stands for.
    const composed = new DependencyGraph();
    const expansion = new Map<string, Step[]>();
    for (const from of this.nodes()) {
      for (const first of this.edges(from, DEPENDS)) {
        const direct = `${from} ${first.to}`;
        if (!expansion.has(direct)) expansion.set(direct, [first]);
        composed.add(from, first.to, 'ww');
        for (const second of this.edges(first.to, new Set(['rw']))) {
          const key = `${from} ${second.to}`;
          if (second.to === from) {
            yield [first, second]; // a two-edge cycle: G-single, reported before
            continue;
          }
          if (!expansion.has(key)) expansion.set(key, [first, second]);
          composed.add(from, second.to, 'ww');
        }
      }
    }
    for (const component of composed.#components(WRITES)) {
      const cycle = composed.path(component[0]!, component[0]!, WRITES)!;
      yield cycle.flatMap((s) => expansion.get(`${s.from} ${s.to}`)!);
    }
  }

  /** Strongly connected components with more than one node (Tarjan), over edges in `allowed`. */
  #components(allowed: ReadonlySet<EdgeType>): number[][] {
    const index = new Map<number, number>();
    const low = new Map<number, number>();
    const stack: number[] = [];
    const onStack = new Set<number>();
    const components: number[][] = [];
    let next = 0;
    const visit = (node: number) => {
      index.set(node, next);
      low.set(node, next);
      next++;
      stack.push(node);
      onStack.add(node);
      for (const { to } of this.edges(node, allowed)) {
        if (!index.has(to)) {
          visit(to);
          low.set(node, Math.min(low.get(node)!, low.get(to)!));
        } else if (onStack.has(to)) {
          low.set(node, Math.min(low.get(node)!, index.get(to)!));
        }
      }
      if (low.get(node) === index.get(node)) {
        const component: number[] = [];
        let member: number;
        do {
          member = stack.pop()!;
          onStack.delete(member);
          component.push(member);
        } while (member !== node);
        if (component.length > 1) components.push(component);
      }
    };
    for (const node of this.nodes()) if (!index.has(node)) visit(node);
    return components;
  }
}

/** Cycle types each isolation level forbids. */
export const FORBIDDEN: Readonly<Record<'serializable' | 'snapshot', ReadonlySet<CycleType>>> = {
  serializable: new Set(['G0', 'G1c', 'G-single', 'G-nonadjacent', 'G2']),
  snapshot: new Set(['G0', 'G1c', 'G-single', 'G-nonadjacent']),
};

/** A cycle in words: `T3 -rw-> T5 -wr-> T3`. */
export function describeCycle(cycle: Cycle): string {
  const steps = cycle.steps;
  return `${cycle.type}: T${steps[0]!.from}${steps.map((s) => ` -${s.type}-> T${s.to}`).join('')}`;
}
