/**
 * The 12-byte `head` file of a segmented log, byte-compatible with wal-db 1.x:
 * `[u64 LE head][u32 LE CRC-32C of those 8 bytes]`. Internal to @wal/store.
 */
import { crc32c } from '@node-rs/crc32';

/** Size of the head file in bytes. */
export const HEAD_FILE_SIZE = 12;

/** Encodes `head` (an integer in `[0, 2^53 − 1]`). */
export function encodeHead(head: number): Uint8Array {
  const out = Buffer.alloc(HEAD_FILE_SIZE);
  out.writeBigUInt64LE(BigInt(head), 0);
  out.writeUInt32LE(crc32c(out.subarray(0, 8)), 8);
  return out;
}

/** Decodes a head file; `undefined` when damaged (wrong size, bad checksum, beyond 2^53 − 1). */
export function decodeHead(bytes: Uint8Array): number | undefined {
  if (bytes.length !== HEAD_FILE_SIZE) return undefined;
  const file = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (file.readUInt32LE(8) !== crc32c(file.subarray(0, 8))) return undefined;
  const head = file.readBigUInt64LE(0);
  return head > BigInt(Number.MAX_SAFE_INTEGER) ? undefined : Number(head);
}
