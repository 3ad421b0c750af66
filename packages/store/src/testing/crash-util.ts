/**
 * Small helpers of `CrashFs`: Node-style errors, a seeded generator, a
 * growable byte buffer and a content fingerprint. Internal to the testing
 * entry point (not exported from it).
 */

import { posix } from 'node:path';

const MESSAGES: Readonly<Record<string, readonly [number, string]>> = {
  EBADF: [-9, 'bad file descriptor'],
  EBUSY: [-16, 'resource busy or locked'],
  EEXIST: [-17, 'file already exists'],
  EINVAL: [-22, 'invalid argument'],
  EISDIR: [-21, 'illegal operation on a directory'],
  ENOENT: [-2, 'no such file or directory'],
  ENOTDIR: [-20, 'not a directory'],
  ENOTEMPTY: [-39, 'directory not empty'],
};

/** An error shaped like the ones `node:fs` raises. */
export interface FsErrorLike extends Error {
  readonly code: string;
  readonly errno: number;
  readonly syscall: string;
  readonly path?: string;
  readonly dest?: string;
}

/**
 * Builds an error like `node:fs` does: message `CODE: text, syscall 'path'`,
 * with `code`, `errno`, `syscall` and, when given, `path` and `dest`.
 */
export function fsError(code: string, syscall: string, path?: string, dest?: string): FsErrorLike {
  const [errno, text] = MESSAGES[code] ?? [-5, 'i/o error'];
  const where =
    path === undefined ? '' : dest === undefined ? ` '${path}'` : ` '${path}' -> '${dest}'`;
  const error = new Error(`${code}: ${text}, ${syscall}${where}`) as Error &
    Record<string, unknown>;
  error.code = code;
  error.errno = errno;
  error.syscall = syscall;
  if (path !== undefined) error.path = path;
  if (dest !== undefined) error.dest = dest;
  return error as unknown as FsErrorLike;
}

/** Normalises a POSIX path to an absolute one (relative paths are taken from `/`). */
export function normalisePath(path: string): string {
  return posix.resolve('/', path);
}

/** Splits an absolute normalised path into its parent and its last component. */
export function splitPath(path: string): [parent: string, name: string] {
  return [posix.dirname(path), posix.basename(path)];
}

/** Mixes integers into a 32-bit seed (a small avalanche hash). */
export function mixSeed(...parts: readonly number[]): number {
  let h = 0x9e3779b9;
  for (const part of parts) {
    // Fold in the high bits too, so offsets beyond 2^32 still differ.
    const lo = part >>> 0;
    const hi = Math.floor(part / 2 ** 32) >>> 0;
    for (const word of [lo, hi]) {
      h = Math.imul(h ^ word, 0x85ebca6b);
      h ^= h >>> 13;
      h = Math.imul(h, 0xc2b2ae35);
      h ^= h >>> 16;
    }
  }
  return h >>> 0;
}

/** A seeded pseudo-random generator (mulberry32-style). Deterministic per seed. */
export class Rng {
  #state: number;

  constructor(seed: number) {
    this.#state = mixSeed(seed) || 1;
  }

  /** A float in `[0, 1)`. */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  }

  /** An integer in `[0, n)`. */
  below(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** Fills `into` with pseudo-random bytes. */
  fill(into: Uint8Array): void {
    for (let i = 0; i < into.length; i++) into[i] = this.below(256);
  }
}

/**
 * A growable byte buffer. Invariant: every byte of `bytes` at or after
 * `length` is zero, so extending the length exposes zeros, as a file does.
 */
export class ByteBuffer {
  bytes: Uint8Array;
  length: number;

  constructor(initial?: Uint8Array) {
    this.bytes = initial === undefined ? new Uint8Array(0) : Uint8Array.from(initial);
    this.length = this.bytes.length;
  }

  /** The live bytes `[0, length)` (a view, not a copy). */
  view(): Uint8Array {
    return this.bytes.subarray(0, this.length);
  }

  #reserve(capacity: number): void {
    if (capacity <= this.bytes.length) return;
    const grown = new Uint8Array(Math.max(capacity, this.bytes.length * 2, 64));
    grown.set(this.bytes.subarray(0, this.length));
    this.bytes = grown;
  }

  /** Copies `source` to `position`, extending the length when it ends past it. */
  write(position: number, source: Uint8Array): void {
    this.#reserve(position + source.length);
    this.bytes.set(source, position);
    this.length = Math.max(this.length, position + source.length);
  }

  /** Sets bytes `[start, end)` to `value`, extending the length when needed. */
  fill(start: number, end: number, value: number): void {
    this.#reserve(end);
    this.bytes.fill(value, start, end);
    this.length = Math.max(this.length, end);
  }

  /** Extends the length to at least `length` (new bytes read as zero). */
  extend(length: number): void {
    this.#reserve(length);
    this.length = Math.max(this.length, length);
  }

  /** Sets the length: cuts (zeroing what is cut) or zero-extends. */
  truncate(length: number): void {
    if (length < this.length) this.bytes.fill(0, length, this.length);
    else this.#reserve(length);
    this.length = length;
  }

  /** Copies bytes from `position` into `into`; returns the count (0 at or past the end). */
  read(into: Uint8Array, position: number): number {
    if (position >= this.length) return 0;
    const count = Math.min(into.length, this.length - position);
    into.set(this.bytes.subarray(position, position + count));
    return count;
  }
}

/** A 64-bit-ish content fingerprint (two FNV-1a lanes) as a hex string. */
export function fingerprint(bytes: Uint8Array): string {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ bytes.length;
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i]!;
    a = Math.imul(a ^ byte, 0x01000193);
    b = Math.imul(b ^ byte ^ (i & 0xff), 0x01000193) + 0x9e3779b9;
  }
  return `${(a >>> 0).toString(16)}${(b >>> 0).toString(16)}:${bytes.length}`;
}
