/**
 * The bloom filter of a table (docs/LSM-FORMAT.md §4): one filter over the
 * user keys of the whole table, `bitsPerKey` bits per key, probed by double
 * hashing of a 32-bit hash (FNV-1a, then the MurmurHash3 finaliser).
 */

/**
 * The 32-bit key hash of §4: FNV-1a over the bytes (of `key[0, end)`), then
 * the MurmurHash3 `fmix32` finaliser.
 */
export function bloomHash(key: Uint8Array, end = key.length): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < end; i++) {
    h ^= key[i]!;
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Probes per key for `bitsPerKey`: round(bitsPerKey · ln 2), clamped to [1, 30]. */
export function probesFor(bitsPerKey: number): number {
  return Math.min(30, Math.max(1, Math.round(bitsPerKey * 0.69)));
}

/**
 * Builds the filter block contents for the key hashes `hashes`: the bit
 * array (at least 64 bits, rounded up to whole bytes) followed by one byte,
 * the probe count. `bitsPerKey` 0 gives an empty filter that matches
 * everything (contents: the single byte 0).
 */
export function buildFilter(hashes: readonly number[], bitsPerKey: number): Uint8Array {
  if (bitsPerKey === 0) return new Uint8Array([0]);
  const probes = probesFor(bitsPerKey);
  const bits = Math.max(64, hashes.length * bitsPerKey);
  const bytes = Math.ceil(bits / 8);
  const m = bytes * 8;
  const filter = new Uint8Array(bytes + 1);
  for (const hash of hashes) {
    let h = hash;
    const delta = ((h >>> 17) | (h << 15)) >>> 0;
    for (let j = 0; j < probes; j++) {
      const bit = h % m;
      filter[bit >>> 3]! |= 1 << (bit & 7);
      h = (h + delta) >>> 0;
    }
  }
  filter[bytes] = probes;
  return filter;
}

/**
 * True when the key with hash `hash` may be in the set `filter` was built
 * from; false only when it certainly is not. A filter with probe count 0 or
 * above 30 (reserved) matches everything.
 */
export function filterMayContain(filter: Uint8Array, hash: number): boolean {
  if (filter.length < 2) return true;
  const bytes = filter.length - 1;
  const probes = filter[bytes]!;
  if (probes === 0 || probes > 30) return true;
  const m = bytes * 8;
  let h = hash;
  const delta = ((h >>> 17) | (h << 15)) >>> 0;
  for (let j = 0; j < probes; j++) {
    const bit = h % m;
    if ((filter[bit >>> 3]! & (1 << (bit & 7))) === 0) return false;
    h = (h + delta) >>> 0;
  }
  return true;
}
