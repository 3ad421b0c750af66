/** Deterministic test bytes, shared by the tests and the writer process. */
import { createHash } from 'node:crypto';

/** `size` bytes repeating a 32-byte pattern that depends on `seed`. */
export function payload(size: number, seed: number): Uint8Array {
  const pattern = createHash('sha256').update(String(seed)).digest();
  return new Uint8Array(Buffer.alloc(size, pattern));
}
