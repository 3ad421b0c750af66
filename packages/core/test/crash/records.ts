/**
 * Self-describing record payloads for the crash tests (kill, faults, audit):
 * a payload says at which LSN it was appended and which append made it, so
 * any record recovered from a log can be checked on its own — a frame at the
 * wrong LSN, a stale frame or a mixed-up payload shows as garbage.
 *
 *   [u32 tag][u32 lsn low][u32 lsn high][u32 length] + bytes from a PRNG seeded by (lsn, tag)
 *
 * No mocha here: the kill child and the soak entry point import it too.
 */

import { fillStream } from '../helpers.js';

/** Bytes of the self-describing header. */
export const RECORD_HEADER = 16;

/**
 * The LSN a worker thread of a shared log writes into its payloads: it gets
 * its LSN only from the append itself, so its records say which append made
 * them but not where (the lanes check them by tag, at the LSN acknowledged).
 */
export const UNPLACED = 2 ** 52;

function fill(out: Uint8Array, from: number, lsn: number, tag: number): void {
  fillStream(out, Math.imul(lsn >>> 0, 2654435761) ^ Math.imul(tag, 40503) ^ 0x9e3779b9, from);
}

/** The payload appended at `lsn` by the append tagged `tag`, `length` ≥ 16 bytes. */
export function makePayload(lsn: number, tag: number, length: number): Uint8Array {
  const out = new Uint8Array(Math.max(RECORD_HEADER, length));
  const view = new DataView(out.buffer);
  view.setUint32(0, tag >>> 0, true);
  view.setUint32(4, lsn >>> 0, true);
  view.setUint32(8, Math.floor(lsn / 2 ** 32), true);
  view.setUint32(12, out.length, true);
  fill(out, RECORD_HEADER, lsn, tag);
  return out;
}

/** The tag of a payload that is a valid record for `lsn`, or `undefined` (garbage). */
export function checkPayload(lsn: number, payload: Uint8Array): number | undefined {
  if (payload.length < RECORD_HEADER) return undefined;
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const tag = view.getUint32(0, true);
  const at = view.getUint32(4, true) + view.getUint32(8, true) * 2 ** 32;
  if (at !== lsn || view.getUint32(12, true) !== payload.length) return undefined;
  const expected = makePayload(lsn, tag, payload.length);
  for (let i = RECORD_HEADER; i < payload.length; i++) {
    if (payload[i] !== expected[i]) return undefined;
  }
  return tag;
}

/** A small deterministic PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
