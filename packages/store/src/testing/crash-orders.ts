/**
 * Completion orders of a `CrashFs`: which of the calls in flight together
 * completes first, and an explorer that reruns a workload under every order
 * (or a seeded sample of them) of each of its bursts.
 *
 * ## Model
 * With an {@link CompletionOrder} given, a `CrashFs` settles **one** call per
 * macrotask, the one the order picks among the calls in flight (issued and
 * not yet settled), so a small metadata write issued after a large data sync
 * may complete first, as on a real disk or in Node's thread pool. A *burst*
 * is a maximal run of completions during which something stays in flight:
 * it starts with a call issued while nothing is in flight and ends when the
 * last call in flight settles. Effects and durability are unchanged: a call
 * takes effect when made, an `fdatasync` covers the writes completed when it
 * was called, and they become durable when it completes — whenever that is.
 *
 * {@link CompletionExplorer} runs the workload once in call order (the
 * *baseline*, recording every burst's choice points), then, for each burst
 * with two or more calls in flight at some point, reruns it with that burst's
 * completions reordered and every other burst in call order: every order of
 * the burst (depth-first) when the baseline's choice points allow at most
 * `limit` orders, otherwise `limit` orders drawn at random from the seed
 * (each call of the burst gets a random priority; the highest in flight
 * completes first). Taking power-loss states after every completion of the
 * explored burst (while {@link CompletionSchedule.exploring}) then covers a
 * power loss at every point of every explored order.
 */

import { validateInteger } from '@wal/errors';
import type { CrashFsOperation } from './crash-fs.js';
import { mixSeed, Rng } from './crash-util.js';

/**
 * Picks the call to complete next. Called once per macrotask while calls are
 * in flight, with them in call order (at least one); must return an integer
 * index into `inFlight` (anything else makes the `CrashFs` throw a
 * `RangeError` from that macrotask).
 */
export interface CompletionOrder {
  next(inFlight: readonly CrashFsOperation[]): number;
}

/** Options of a {@link CompletionExplorer}. */
export interface CompletionExplorerOptions {
  /** Seed of the sampled orders. Default 0. */
  readonly seed?: number;
  /**
   * Most reorderings tried per burst: a burst whose baseline allows at most
   * this many orders is explored exhaustively (cut at `limit` if other paths
   * turn out larger), a larger one gets `limit` seeded random orders. Default 24.
   */
  readonly limit?: number;
  /**
   * Most bursts explored, spread evenly over the concurrent ones (first and
   * last included), to bound a long workload's reruns. Default: all.
   */
  readonly bursts?: number;
}

/**
 * One run's completion order: call order everywhere except in its target
 * burst, where it plays a choice prefix, then call order (or seeded random
 * choices). Records the choices it made for the explorer.
 */
export class CompletionSchedule implements CompletionOrder {
  /** The burst reordered (0-based), or -1 for the baseline (call order everywhere). */
  readonly target: number;
  /** Choices made in the target burst (indexes into the calls in flight). */
  readonly choices: number[] = [];
  /** Number of calls in flight at each of those choices. */
  readonly widths: number[] = [];
  /** Baseline only: the widths of every burst's completions. */
  readonly bursts: number[][] = [];
  readonly #prefix: readonly number[];
  readonly #rng: Rng | undefined;
  readonly #label: string;
  readonly #priorities = new Map<number, number>();
  #burst = -1;
  #lastWidth = 1;

  /** @internal Built by {@link CompletionExplorer}. */
  constructor(target: number, prefix: readonly number[], rng: Rng | undefined, label: string) {
    this.target = target;
    this.#prefix = prefix;
    this.#rng = rng;
    this.#label = label;
  }

  next(inFlight: readonly CrashFsOperation[]): number {
    if (this.#lastWidth === 1) {
      this.#burst++;
      if (this.target < 0) this.bursts.push([]);
    }
    const width = inFlight.length;
    this.#lastWidth = width;
    if (this.target < 0) {
      this.bursts[this.#burst]!.push(width);
      return 0;
    }
    if (this.#burst !== this.target) return 0;
    const k = this.choices.length;
    let choice = 0;
    if (k < this.#prefix.length) choice = Math.min(this.#prefix[k]!, width - 1);
    else if (this.#rng !== undefined) {
      // Random priorities, drawn once per call: the call in flight with the
      // highest completes. Any completion order can come out, and a call is
      // overtaken by a long chain of later ones far more often than by
      // uniform choices at each step.
      let best = -1;
      inFlight.forEach((op, i) => {
        let priority = this.#priorities.get(op.id);
        if (priority === undefined) {
          priority = this.#rng!.next();
          this.#priorities.set(op.id, priority);
        }
        if (priority > best) {
          best = priority;
          choice = i;
        }
      });
    }
    this.choices.push(choice);
    this.widths.push(width);
    return choice;
  }

  /**
   * True while the latest completion belongs to the target burst (always,
   * for the baseline): the states to take. Before it the run is the
   * baseline's; after it, the other bursts complete in call order again.
   */
  get exploring(): boolean {
    return this.target < 0 || this.#burst === this.target;
  }

  /** The burst (0-based) of the latest completion, -1 before the first. */
  get burst(): number {
    return this.#burst;
  }

  /** For failure messages: the burst and the choices (`call order` for the baseline). */
  get description(): string {
    return this.target < 0 ? 'call order' : `${this.#label} ${this.choices.join('.')}`;
  }
}

/** Figures of an exploration, for test output. */
export interface ExplorationFigures {
  /** Bursts in the baseline. */
  bursts: number;
  /** Bursts with two or more calls in flight at some point. */
  concurrent: number;
  /** Concurrent bursts left unexplored (over the `bursts` option). */
  skipped: number;
  /** Of those, explored in every order. */
  exhaustive: number;
  /** Of those, explored by seeded random orders. */
  sampled: number;
  /** Runs made besides the baseline. */
  orders: number;
}

/**
 * Drives the reruns of a deterministic workload (see the module
 * documentation). Use: run the workload with {@link baseline}, then once more
 * with each schedule {@link orders} yields, each run to completion before
 * taking the next schedule (the explorer reads the choices it made).
 */
export class CompletionExplorer {
  readonly seed: number;
  readonly limit: number;
  readonly bursts: number;
  readonly figures: ExplorationFigures = {
    bursts: 0,
    concurrent: 0,
    skipped: 0,
    exhaustive: 0,
    sampled: 0,
    orders: 0,
  };
  #baseline: CompletionSchedule | undefined;

  /** @throws RangeError (`ERR_OUT_OF_RANGE`) for a bad seed or limit. */
  constructor(options: CompletionExplorerOptions = {}) {
    this.seed = options.seed ?? 0;
    this.limit = options.limit ?? 24;
    validateInteger('options.seed', this.seed, 0, 2 ** 53 - 1);
    this.bursts = options.bursts ?? 2 ** 31 - 1;
    validateInteger('options.limit', this.limit, 1, 2 ** 31 - 1);
    validateInteger('options.bursts', this.bursts, 1, 2 ** 31 - 1);
  }

  /** The schedule of the baseline run: every burst in call order. */
  baseline(): CompletionSchedule {
    this.#baseline = new CompletionSchedule(-1, [], undefined, 'baseline');
    return this.#baseline;
  }

  /**
   * The schedules of the reruns, lazily; each depends on the choices the
   * previous run made.
   * @throws Error when the baseline was not taken first.
   */
  *orders(): Generator<CompletionSchedule> {
    const baseline = this.#baseline;
    if (baseline === undefined) throw new Error('run the baseline schedule first');
    const figures = this.figures;
    figures.bursts = baseline.bursts.length;
    const concurrent = baseline.bursts.flatMap((widths, burst) =>
      widths.some((width) => width > 1) ? [burst] : [],
    );
    figures.concurrent = concurrent.length;
    const picked = spread(concurrent, this.bursts);
    figures.skipped = concurrent.length - picked.length;
    for (const burst of picked) {
      const widths = baseline.bursts[burst]!;
      const label = `burst ${burst}, order`;
      const size = widths.reduce((product, width) => Math.min(product * width, 2 ** 31), 1);
      if (size <= this.limit + 1) {
        let previous = { choices: widths.map(() => 0), widths };
        let runs = 0;
        let prefix = nextPrefix(previous.choices, previous.widths);
        while (prefix !== undefined && runs < this.limit) {
          const schedule = new CompletionSchedule(burst, prefix, undefined, label);
          yield schedule;
          runs++;
          figures.orders++;
          previous = { choices: schedule.choices, widths: schedule.widths };
          prefix = nextPrefix(previous.choices, previous.widths);
        }
        if (prefix === undefined) figures.exhaustive++;
        else figures.sampled++;
      } else {
        figures.sampled++;
        for (let k = 0; k < this.limit; k++) {
          const rng = new Rng(mixSeed(this.seed, burst, k));
          yield new CompletionSchedule(burst, [], rng, `${label} (seed ${this.seed}, ${k})`);
          figures.orders++;
        }
      }
    }
  }
}

/** At most `n` of `items`, evenly spread, first and last included. */
function spread(items: readonly number[], n: number): number[] {
  if (items.length <= n) return [...items];
  if (n === 1) return [items[0]!];
  return Array.from(
    { length: n },
    (_, i) => items[Math.round((i * (items.length - 1)) / (n - 1))]!,
  );
}

/** The next choice sequence depth-first after `choices`, or undefined when none is left. */
function nextPrefix(choices: readonly number[], widths: readonly number[]): number[] | undefined {
  for (let i = choices.length - 1; i >= 0; i--) {
    if (choices[i]! + 1 < widths[i]!) return [...choices.slice(0, i), choices[i]! + 1];
  }
  return undefined;
}
