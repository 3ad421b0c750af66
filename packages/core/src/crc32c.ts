/**
 * CRC-32C (Castagnoli): reflected polynomial 0x82F63B78, initial value and
 * final XOR 0xFFFFFFFF; check value crc32c("123456789") = 0xE3069283.
 *
 * Small inputs go through a slice-by-16 table loop here (a native call costs
 * more than the CRC itself below a few hundred bytes); larger ones through the
 * native SIMD implementation.
 */
import { crc32c as nativeCrc32c } from '@node-rs/crc32';

const POLY = 0x82f63b78;
/** Inputs of at least this many bytes use the native implementation. */
export const NATIVE_THRESHOLD = 256;

/** Slice-by-16 tables: TABLES[k][n] is the CRC of byte n followed by k zero bytes. */
const TABLES: Uint32Array[] = (() => {
  const tables = Array.from({ length: 16 }, () => new Uint32Array(256));
  const t0 = tables[0]!;
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t0[n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++) {
    let c = t0[n]!;
    for (let t = 1; t < 16; t++) {
      c = t0[c & 0xff]! ^ (c >>> 8);
      tables[t]![n] = c >>> 0;
    }
  }
  return tables;
})();
const [T0, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13, T14, T15] = TABLES as [
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
];

/** Table-driven CRC-32C of `bytes[start, end)`, continuing from `crc` (a finished CRC, 0 to start). */
export function crc32cTable(bytes: Uint8Array, start = 0, end = bytes.length, crc = 0): number {
  let c = ~crc >>> 0;
  let i = start;
  // 16 bytes per step (about a quarter faster than 8 on a 100-byte record).
  for (; i + 16 <= end; i += 16) {
    const lo =
      (c ^ (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24))) >>>
      0;
    c =
      T15[lo & 0xff]! ^
      T14[(lo >>> 8) & 0xff]! ^
      T13[(lo >>> 16) & 0xff]! ^
      T12[lo >>> 24]! ^
      T11[bytes[i + 4]!]! ^
      T10[bytes[i + 5]!]! ^
      T9[bytes[i + 6]!]! ^
      T8[bytes[i + 7]!]! ^
      T7[bytes[i + 8]!]! ^
      T6[bytes[i + 9]!]! ^
      T5[bytes[i + 10]!]! ^
      T4[bytes[i + 11]!]! ^
      T3[bytes[i + 12]!]! ^
      T2[bytes[i + 13]!]! ^
      T1[bytes[i + 14]!]! ^
      T0[bytes[i + 15]!]!;
  }
  if (i + 8 <= end) {
    const lo =
      (c ^ (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24))) >>>
      0;
    c =
      T7[lo & 0xff]! ^
      T6[(lo >>> 8) & 0xff]! ^
      T5[(lo >>> 16) & 0xff]! ^
      T4[lo >>> 24]! ^
      T3[bytes[i + 4]!]! ^
      T2[bytes[i + 5]!]! ^
      T1[bytes[i + 6]!]! ^
      T0[bytes[i + 7]!]!;
    i += 8;
  }
  for (; i < end; i++) c = T0[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

/**
 * CRC-32C of `bytes[start, end)`, continuing from `crc` (the CRC of the bytes
 * before, 0 to start). Returns an unsigned 32-bit integer.
 */
export function crc32c(bytes: Uint8Array, start = 0, end = bytes.length, crc = 0): number {
  if (end - start < NATIVE_THRESHOLD) return crc32cTable(bytes, start, end, crc);
  const view =
    start === 0 && end === bytes.length && Buffer.isBuffer(bytes)
      ? bytes
      : Buffer.from(bytes.buffer, bytes.byteOffset + start, end - start);
  return nativeCrc32c(view, crc) >>> 0;
}
