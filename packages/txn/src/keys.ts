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

/** A code unit beyond ASCII: a string without one is its own binary-string form (its UTF-8 bytes are its code units). */
const BEYOND_ASCII = /[\u0080-\uffff]/;

/** The binary-string form of a key given at the API. */
export function keyString(name: string, input: unknown): string {
  if (typeof input === 'string' && !BEYOND_ASCII.test(input)) return input;
  return keyOf(toBytes(name, input));
}

/** The bytes of `input` in an array of their own (a string's encoding, or a copy of the array). */
export function ownBytes(name: string, input: unknown): Uint8Array {
  if (typeof input !== 'string') return new Uint8Array(toBytes(name, input));
  if (input.length > 64 || BEYOND_ASCII.test(input)) return encoder.encode(input);
  const bytes = new Uint8Array(input.length);
  for (let i = 0; i < input.length; i++) bytes[i] = input.charCodeAt(i);
  return bytes;
}

/** The binary-string form of the key `bytes`. */
export function keyOf(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}

/** The bytes of a binary-string key (a new array). */
export function keyBytes(key: string): Uint8Array {
  if (key.length > 64) return new Uint8Array(Buffer.from(key, 'latin1'));
  const bytes = new Uint8Array(key.length);
  for (let i = 0; i < key.length; i++) bytes[i] = key.charCodeAt(i);
  return bytes;
}
