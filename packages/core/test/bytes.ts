/**
 * Deterministic test bytes shared by the core tests: a xorshift32 stream
 * from a seed, so every payload can be rebuilt (and checked) from its seed.
 */

/** Fills `out[from..]` with the xorshift32 stream of `seed` (0 is replaced by 1). */
export function fillStream(out: Uint8Array, seed: number, from = 0, or = 0): Uint8Array {
  let x = seed >>> 0 || 1;
  for (let i = from; i < out.length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = (x & 0xff) | or;
  }
  return out;
}
