/**
 * Keys and values at the API (internal): `Uint8Array`s, or strings taken as
 * their UTF-8 bytes. Inside the store a key is a binary string (one code unit
 * per byte, see versions.ts), whose string order is the bytewise key order.
 */
import { Buffer } from 'node:buffer';
import { invalidArgType } from '@wal/errors';

const encoder = new TextEncoder();

/** A key or value as callers give it: bytes, or a string stored as its UTF-8 bytes. */
export type Bytes = Uint8Array | string;

/** The bytes of `input`: a string's UTF-8 encoding, or the array itself (not copied). */
export function toBytes(name: string, input: unknown): Uint8Array {
  if (typeof input === 'string') return encoder.encode(input);
  if (input instanceof Uint8Array) return input;
  throw invalidArgType(name, 'of type string or an instance of Uint8Array', input);
}

/** The binary-string form of a key given at the API. */
export function keyString(name: string, input: unknown): string {
  return keyOf(toBytes(name, input));
}

/** The binary-string form of the key `bytes`. */
export function keyOf(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}

/** The bytes of a binary-string key (a new array). */
export function keyBytes(key: string): Uint8Array {
  return new Uint8Array(Buffer.from(key, 'latin1'));
}
