/**
 * The payloads of the shared-log tests: a pure function of the thread, the
 * record's sequence number in it and the run's seed, so the owner can check
 * every record a thread reported without the thread sending it.
 */
import { pattern } from './helpers.js';

/** The codes a thread of shared-worker.ts reports it stopped on (by index; 0 none). */
export const CODES = ['', 'WAL_CLOSED', 'WAL_WRITE_FAILED', 'WAL_FAILED', 'WAL_BUSY', 'other'];
/** Words before the LSNs in a thread's report. */
export const REPORT_HEADER = 5;

/** Thread 0 is the owner. Sizes 0 to `maxSize` (default 300) bytes, never the same run of bytes twice. */
export function threadPayload(
  thread: number,
  seq: number,
  seed: number,
  maxSize = 300,
): Uint8Array {
  const tag = (thread * 1_000_003 + seq * 7919 + seed * 104_729) >>> 0;
  const size = (Math.imul(tag, 2654435761) >>> 7) % (maxSize + 1);
  return pattern(size, tag);
}
