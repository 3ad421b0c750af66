/**
 * Which option keys `Lsm.open` and `new LsmLevel` accept, and the refusal of
 * a misspelt one (internal).
 */
import { invalidArgValue } from '@wal/errors';
import type { LsmOptions } from './options.js';

/**
 * The keys of {@link LsmOptions}. `Lsm.open` refuses any other; `LsmLevel`
 * hands exactly these to the engine. Written as a record so that the build
 * fails when an option is added to `LsmOptions` and not here.
 */
export const LSM_OPTION_KEYS: ReadonlySet<string> = new Set(
  Object.keys({
    fs: true,
    writeBufferSize: true,
    blockSize: true,
    restartInterval: true,
    bitsPerKey: true,
    segmentSize: true,
    level0Trigger: true,
    level0SlowdownTrigger: true,
    level0StopTrigger: true,
    levelBaseBytes: true,
    levelRatio: true,
    targetFileSize: true,
    compactionReadSize: true,
    blockCacheSize: true,
    maxManifestBytes: true,
    syncReads: true,
    blockingSync: true,
  } satisfies Record<keyof LsmOptions, true>),
);

/** The constructor and open options abstract-level itself reads. */
const ABSTRACT_LEVEL_KEYS = [
  'keyEncoding',
  'valueEncoding',
  'createIfMissing',
  'errorIfExists',
  'passive',
];

/** Every key `new LsmLevel(location, options)` knows. */
const LEVEL_OPTION_KEYS: readonly string[] = [...LSM_OPTION_KEYS, ...ABSTRACT_LEVEL_KEYS];

/**
 * Edit distance between `a` and `b` counting insertions, deletions,
 * substitutions and swaps of two neighbouring characters (optimal string
 * alignment), or `limit + 1` as soon as it exceeds `limit`.
 */
function editDistance(a: string, b: string, limit: number): number {
  if (Math.abs(a.length - b.length) > limit) return limit + 1;
  let before: number[] = [];
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    let best = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let value = Math.min(previous[j]! + 1, row[j - 1]! + 1, previous[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        value = Math.min(value, before[j - 2]! + 1);
      }
      row.push(value);
      best = Math.min(best, value);
    }
    if (best > limit) return limit + 1;
    before = previous;
    previous = row;
  }
  return previous[b.length]!;
}

/**
 * How many edits (after case) from a known key of `length` characters still
 * count as a misspelling of it: none for four characters or fewer, where one
 * edit reaches ordinary short names (`ms`, `ts` from `fs`); one up to eight;
 * two beyond.
 */
function misspellingLimit(length: number): number {
  if (length <= 4) return 0;
  return length <= 8 ? 1 : 2;
}

/**
 * The known key that `key` most likely misspells: one equal to it but for
 * case, or, for a known key longer than four characters, within one edit (two
 * for one longer than eight), or `undefined` when `key` is known or resembles
 * no known key.
 */
export function misspeltLevelOption(key: string): string | undefined {
  if (LEVEL_OPTION_KEYS.includes(key)) return undefined;
  const lower = key.toLowerCase();
  for (const known of LEVEL_OPTION_KEYS) {
    const limit = misspellingLimit(known.length);
    if (editDistance(lower, known.toLowerCase(), limit) <= limit) return known;
  }
  return undefined;
}

/**
 * Throws `TypeError` (`ERR_INVALID_ARG_VALUE`, naming `options.<key>` and the
 * option it resembles) for the first own key of `options` that misspells an
 * option of `LsmLevel` or abstract-level (`writeBufferSise`, `valueencoding`,
 * `segmentsize`). Other unknown keys are let through: abstract-level
 * forwards them to `open()` and its hooks, as userland options.
 */
export function rejectMisspeltLevelOptions(options: object): void {
  for (const key of Object.keys(options)) {
    const meant = misspeltLevelOption(key);
    if (meant !== undefined) {
      throw invalidArgValue(
        `options.${key}`,
        (options as Record<string, unknown>)[key],
        `is not an option (did you mean ${meant}?)`,
      );
    }
  }
}
