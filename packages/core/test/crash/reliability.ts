/**
 * The reliability figures of one test run (issue: crash-proofing): every
 * crash-proofing test adds what it exercised and what it found, and the run
 * ends by printing one totals line that a release can quote:
 *
 *   reliability: N crash states, M kills, B torn offsets, F faults, X bit flips, I fuzz inputs, R model runs, 0 lost, 0 garbage
 *
 * `lost` counts acknowledged records missing after recovery, `garbage`
 * records recovered that were never appended (or with a wrong payload or
 * LSN). Both must be 0; tests also fail on their own when they are not.
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
}

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
};

/** Adds figures to the run's totals. */
export function record(figures: Partial<ReliabilityFigures>): void {
  for (const [key, value] of Object.entries(figures) as [keyof ReliabilityFigures, number][]) {
    totals[key] += value;
  }
}

/** The totals so far (a copy). */
export function figures(): ReliabilityFigures {
  return { ...totals };
}

/** The totals line. */
export function totalsLine(f: ReliabilityFigures = totals): string {
  return (
    `reliability: ${f.crashStates} crash states, ${f.kills} kills, ${f.tornOffsets} torn offsets, ` +
    `${f.faults} faults, ${f.bitFlips} bit flips, ${f.fuzzInputs} fuzz inputs, ${f.modelRuns} model runs, ` +
    `${f.lost} lost, ${f.garbage} garbage`
  );
}

// A root-level hook: runs once after every test file of the run.
after(() => {
  console.log(totalsLine());
});
