/** What the process-kill test and its child agree on. */
import type { LsmOptions } from '../src/index.js';

/** Small buffers and budgets: flushes and compactions run all the time. */
export const KILL_OPTIONS: LsmOptions = {
  writeBufferSize: 4096,
  level0Trigger: 2,
  levelBaseBytes: 16 * 1024,
  levelRatio: 4,
  targetFileSize: 4096,
  segmentSize: 16 * 1024,
};

/** The value written under `key`: derived from it, so a wrong one is seen. */
export function expectedValue(key: string): Uint8Array {
  return new TextEncoder().encode(`value of ${key} `.repeat(1 + (key.length % 5)));
}
