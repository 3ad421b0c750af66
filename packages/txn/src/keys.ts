/**
 * Keys and values at the API (internal): `Uint8Array`s, or strings taken as
 * their UTF-8 bytes. Inside the store a key or value is a binary string (one
 * code unit per byte, see versions.ts); a key's string order is the bytewise
 * key order.
 */
import { Buffer, constants } from 'node:buffer';
import { invalidArgType, invalidArgValue, outOfRange } from '@wal/errors';

/** The longest key or value in bytes: the longest string V8 holds (2^29 − 24 characters on 64-bit). */
export const MAX_BYTES = constants.MAX_STRING_LENGTH;

/** `String.prototype.isWellFormed` (Node.js 20; not in the ES2023 library types). */
type WellFormed = string & { isWellFormed(): boolean };

const encoder = new TextEncoder();

/** A key or value as callers give it: bytes, or a string stored as its UTF-8 bytes. */
export type Bytes = Uint8Array | string;

/**
 * The bytes of `input`: a string's UTF-8 encoding, or the array itself (not
 * copied). A string holding a lone surrogate (a code unit in
 * U+D800–U+DFFF that is not half of a pair) is refused with
 * `ERR_INVALID_ARG_VALUE`: UTF-8 cannot encode it (`TextEncoder` would
 * write U+FFFD, so two different strings would be one key).
 */
export function toBytes(name: string, input: unknown): Uint8Array {
  if (typeof input === 'string') {
    if (!(input as WellFormed).isWellFormed())
      throw invalidArgValue(
        name,
        input,
        'must be well-formed UTF-16: it holds a lone surrogate, which has no UTF-8 encoding',
      );
    return encoder.encode(input);
  }
  if (input instanceof Uint8Array) return input;
  throw invalidArgType(name, 'of type string or an instance of Uint8Array', input);
}

/** A code unit beyond ASCII: a string without one is its own binary-string form (its UTF-8 bytes are its code units). */
const BEYOND_ASCII = /[\u0080-\uffff]/;

/** Whether `input` has no code unit beyond ASCII (a loop for short strings, which costs less than the expression). */
function isAscii(input: string): boolean {
  if (input.length > 32) return !BEYOND_ASCII.test(input);
  for (let i = 0; i < input.length; i++) if (input.charCodeAt(i) > 0x7f) return false;
  return true;
}

/**
 * The binary-string form of a key or value given at the API: an ASCII
 * string is its own; anything else is a new string, which changes of the
 * caller's array after the call do not reach. For lookups; what the store
 * keeps goes through `storedString`.
 */
export function keyString(name: string, input: unknown): string {
  if (typeof input === 'string' && isAscii(input)) return input;
  return converted(name, input);
}

/**
 * `keyString` for a key or value the store keeps (a write): an ASCII
 * string is copied flat (see `flat`).
 */
export function storedString(name: string, input: unknown): string {
  if (typeof input === 'string' && isAscii(input)) return flat(input);
  return converted(name, input);
}

/** The binary-string form of `input`'s bytes; `ERR_OUT_OF_RANGE` beyond `MAX_BYTES` of them. */
function converted(name: string, input: unknown): string {
  const bytes = toBytes(name, input);
  if (bytes.length > MAX_BYTES)
    throw outOfRange(
      `${name}.length`,
      `at most ${MAX_BYTES} bytes (the longest string V8 holds)`,
      bytes.length,
    );
  return keyOf(bytes);
}

/**
 * A copy of `input` that holds no other string: V8 represents a substring
 * of 13 or more characters as a slice of its parent, and a concatenation as
 * a pair of its parts, so keeping the caller's string could keep a far
 * larger one alive (20 characters sliced from a 1 MiB request body would
 * hold the megabyte) as long as the store holds the key or value. Adding a
 * character and slicing it off again flattens the pair into a new string
 * of its own (the slice then points into that one, not into the caller's
 * parent): about 0.1–0.2 µs, a third of a copy through a `Buffer`. Shorter
 * strings are never slices or pairs (V8 copies them).
 */
function flat(input: string): string {
  return input.length < 13 ? input : ` ${input}`.slice(1);
}

/** The binary-string form of `bytes` (a key or value; a new string). */
export function keyOf(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}

/** The bytes of a binary-string key or value (a new array). */
export function keyBytes(key: string): Uint8Array {
  if (key.length > 64) return new Uint8Array(Buffer.from(key, 'latin1'));
  const bytes = new Uint8Array(key.length);
  for (let i = 0; i < key.length; i++) bytes[i] = key.charCodeAt(i);
  return bytes;
}
