/**
 * The reliability figures of one test run: every crash-proofing test adds
 * what it exercised and what it found, and the run ends by printing one
 * totals line that a release can quote:
 *
 *   reliability: N crash states, M kills, B torn offsets, F faults, X bit flips, I fuzz inputs, R model runs, 0 lost, 0 garbage, 0 failed recoveries, S skipped by policy
 *
 * or, when any test of the run failed (a failing test's figures are partial):
 *
 *   reliability: FAILED (N failing tests) …the same figures…
 *
 * Rules the tests follow:
 * - the exercise counts (crash states, kills, …) are added with
 *   {@link checked} once the checks they count ran to completion, assertion
 *   included — never before the outcome is known, never for a check cut
 *   short;
 * - every suite that recovers a log reports what it found with
 *   {@link found}: `lost` = acknowledged (durable) records missing after a
 *   recovery, `garbage` = records recovered that were never appended there
 *   (or with a wrong payload), `failedRecoveries` = recoveries that threw
 *   where they should have opened. All three must be 0. `skipped` = intact
 *   records the `skip` recovery policy dropped inside a damaged frame's
 *   claimed span (reported by recovery as that span, by design).
 */
export interface ReliabilityFigures {
  crashStates: number;
  kills: number;
  tornOffsets: number;
  faults: number;
  bitFlips: number;
  fuzzInputs: number;
  modelRuns: number;
  lost: number;
  garbage: number;
  failedRecoveries: number;
  skipped: number;
}

/** What a recovery check found (the `found` part of the figures). */
export type Findings = Partial<
  Pick<ReliabilityFigures, 'lost' | 'garbage' | 'failedRecoveries' | 'skipped'>
>;

/** Exercise counts (the `checked` part of the figures). */
export type Exercised = Partial<
  Pick<
    ReliabilityFigures,
    'crashStates' | 'kills' | 'tornOffsets' | 'faults' | 'bitFlips' | 'fuzzInputs' | 'modelRuns'
  >
>;

const totals: ReliabilityFigures = {
  crashStates: 0,
  kills: 0,
  tornOffsets: 0,
  faults: 0,
  bitFlips: 0,
  fuzzInputs: 0,
  modelRuns: 0,
  lost: 0,
  garbage: 0,
  failedRecoveries: 0,
  skipped: 0,
};

function add(figures: Partial<ReliabilityFigures>): void {
  for (const [key, value] of Object.entries(figures) as [keyof ReliabilityFigures, number][]) {
    totals[key] += value;
  }
}

/** Adds exercise counts: call only once the checks counted ran to completion with their assertion. */
export function checked(figures: Exercised): void {
  add(figures);
}

/** Adds what recovery checks found (call as soon as known, before failing the test). */
export function found(findings: Findings): void {
  add(findings);
}

/** The totals so far (a copy). */
export function figures(): ReliabilityFigures {
  return { ...totals };
}

/** The totals line; `failing` tests make it read `FAILED`. */
export function totalsLine(f: ReliabilityFigures = totals, failing = 0): string {
  const status = failing > 0 ? `FAILED (${failing} failing test${failing === 1 ? '' : 's'}) ` : '';
  return (
    `reliability: ${status}${f.crashStates} crash states, ${f.kills} kills, ${f.tornOffsets} torn offsets, ` +
    `${f.faults} faults, ${f.bitFlips} bit flips, ${f.fuzzInputs} fuzz inputs, ${f.modelRuns} model runs, ` +
    `${f.lost} lost, ${f.garbage} garbage, ${f.failedRecoveries} failed recoveries, ` +
    `${f.skipped} skipped by policy`
  );
}

/** Minimal view of mocha's suites and runnables (tests and hooks). */
interface SuiteLike {
  readonly suites: readonly SuiteLike[];
  readonly tests: readonly { readonly state?: string }[];
  readonly _beforeAll?: readonly { readonly state?: string }[];
  readonly _beforeEach?: readonly { readonly state?: string }[];
  readonly _afterAll?: readonly { readonly state?: string }[];
  readonly _afterEach?: readonly { readonly state?: string }[];
}

/** Failed tests and hooks under `suite`, recursively. */
export function failingIn(suite: SuiteLike): number {
  const runnables = [
    ...suite.tests,
    ...(suite._beforeAll ?? []),
    ...(suite._beforeEach ?? []),
    ...(suite._afterAll ?? []),
    ...(suite._afterEach ?? []),
  ];
  let n = runnables.filter((r) => r.state === 'failed').length;
  for (const child of suite.suites) n += failingIn(child);
  return n;
}

// A root-level hook: runs once after every test file of the run, and reads
// the outcome of every test first.
after(function () {
  let root = this.test?.parent as unknown as (SuiteLike & { parent?: unknown }) | undefined;
  while (root?.parent !== undefined) root = root.parent as SuiteLike & { parent?: unknown };
  const failing = root === undefined ? 0 : failingIn(root);
  console.log(totalsLine(totals, failing));
});
