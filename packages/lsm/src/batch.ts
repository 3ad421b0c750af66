/**
 * The data-log record (docs/LSM-FORMAT.md §7): one atomic batch of puts and
 * deletes, its operations numbered from the batch's first sequence number.
 */
import { invalidArgType, invalidArgValue, validateBytes } from '@wal/errors';
import {
  compareBytes,
  KIND_DELETE,
  KIND_RANGE_DELETE,
  KIND_VALUE,
  type Kind,
  Malformed,
  putU32,
  putU64,
  putVarint,
  Reader,
  varintSize,
} from './coding.js';

/**
 * One operation of a batch: a put (`value`), a delete (no value), or a range
 * deletion of `[key, value)` (kind {@link KIND_RANGE_DELETE}, `value` the end).
 */
export interface BatchOp {
  readonly kind: Kind | typeof KIND_RANGE_DELETE;
  readonly key: Uint8Array;
  readonly value: Uint8Array | undefined;
}

/** A decoded batch record. */
export interface BatchRecord {
  /** Sequence number of the first operation; operation `i` has `sequence + i`. */
  readonly sequence: number;
  readonly ops: BatchOp[];
}

/** Bytes of a slab that small records are encoded into, one after another. */
const SLAB_BYTES = 64 * 1024;
/** Records above this size get a buffer of their own. */
const SLAB_RECORD_LIMIT = SLAB_BYTES / 16;

/**
 * Where one store encodes its records: small ones are views into a slab,
 * one after another (never written again once encoded: a slab is dropped
 * whole by the garbage collector once no view into it is left), which
 * spares an allocation of its own per write; larger ones get their own.
 * One per store, so that one store's memtable never keeps alive a slab
 * filled with another store's records.
 */
export class RecordSlab {
  #slab = new Uint8Array(0);
  #used = 0;

  /** A zeroed buffer of `size` bytes for one record. */
  take(size: number): Uint8Array {
    if (size > SLAB_RECORD_LIMIT) return new Uint8Array(size);
    if (this.#used + size > this.#slab.length) {
      this.#slab = new Uint8Array(SLAB_BYTES);
      this.#used = 0;
    }
    const buffer = this.#slab.subarray(this.#used, this.#used + size);
    this.#used += size;
    return buffer;
  }

  /** The next record starts a new slab (a memtable was frozen: no slab spans two). */
  renew(): void {
    this.#slab = new Uint8Array(0);
    this.#used = 0;
  }
}

/**
 * Encodes a batch record: `sequence u64, count u32`, then per op `kind u8,
 * key, [value or end]`, into a buffer of exactly its size (with `slab`, a
 * small one is a view into that slab, shared with other records). With `views`,
 * pushes each operation onto it with its key and value as views into the
 * returned payload (so the caller's buffers need not be copied again).
 */
export function encodeBatch(
  sequence: number,
  ops: readonly BatchOp[],
  views?: BatchOp[],
  slab?: RecordSlab,
): Uint8Array {
  let size = 12;
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!;
    size += 1 + varintSize(op.key.length) + op.key.length;
    if (op.kind !== KIND_DELETE) size += varintSize(op.value!.length) + op.value!.length;
  }
  const payload = slab === undefined ? new Uint8Array(size) : slab.take(size);
  putU64(payload, 0, sequence);
  putU32(payload, 8, ops.length);
  let at = 12;
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!;
    payload[at++] = op.kind;
    at = putVarint(payload, at, op.key.length);
    const keyAt = at;
    payload.set(op.key, at);
    at += op.key.length;
    let value: Uint8Array | undefined;
    if (op.kind !== KIND_DELETE) {
      at = putVarint(payload, at, op.value!.length);
      payload.set(op.value!, at);
      value = payload.subarray(at, at + op.value!.length);
      at += op.value!.length;
    }
    views?.push({ kind: op.kind, key: payload.subarray(keyAt, keyAt + op.key.length), value });
  }
  return payload;
}

/**
 * Decodes a batch record; values and keys are views into `payload`.
 * Throws {@link Malformed} for bytes that break §7 (offsets in `payload`).
 */
export function decodeBatch(payload: Uint8Array): BatchRecord {
  const reader = new Reader(payload, 0, payload.length);
  const sequence = reader.u64('sequence');
  reader.need(4, 'count');
  const count =
    (payload[8]! | (payload[9]! << 8) | (payload[10]! << 16) | (payload[11]! << 24)) >>> 0;
  reader.at = 12;
  // Every operation takes at least 2 bytes: a count beyond that is damage.
  if (count > (payload.length - 12) / 2) throw new Malformed(`batch claims ${count} operations`, 8);
  if (count === 0) throw new Malformed('empty batch', 8);
  if (sequence > Number.MAX_SAFE_INTEGER - (count - 1)) throw new Malformed('sequence overflow', 0);
  const ops: BatchOp[] = [];
  for (let i = 0; i < count; i++) {
    const at = reader.at;
    const kind = reader.u8('kind');
    if (kind !== KIND_DELETE && kind !== KIND_VALUE && kind !== KIND_RANGE_DELETE)
      throw new Malformed(`unknown kind ${kind}`, at);
    const key = reader.lengthPrefixed('key');
    const value = kind === KIND_DELETE ? undefined : reader.lengthPrefixed('value');
    if (kind === KIND_RANGE_DELETE && compareBytes(key, value!) >= 0)
      throw new Malformed('range deletion whose end is not above its start', at);
    ops.push({ kind, key, value });
  }
  if (!reader.done) throw new Malformed('trailing bytes after the last operation', reader.at);
  return { sequence, ops };
}

/**
 * The operations of a `batch` call, checked (docs/LSM-FORMAT.md §7); an
 * empty range deletion is left out. Keys and values are the caller's, not
 * copies: {@link encodeBatch} copies them before the call returns. Throws `ERR_INVALID_ARG_TYPE`
 * and `ERR_INVALID_ARG_VALUE` naming the operation.
 */
export function batchOps(operations: unknown): BatchOp[] {
  if (!Array.isArray(operations)) throw invalidArgType('operations', 'an array', operations);
  const ops: BatchOp[] = [];
  for (let i = 0; i < operations.length; i++) {
    const op: unknown = operations[i];
    if (typeof op !== 'object' || op === null) {
      throw invalidArgType(`operations[${i}]`, 'of type object', op);
    }
    const { type, key, value, start, end } = op as Record<string, unknown>;
    if (type === 'delRange') {
      validateBytes(`operations[${i}].start`, start);
      validateBytes(`operations[${i}].end`, end);
      // An empty range deletes nothing: no tombstone for it.
      if (compareBytes(start, end) < 0) {
        ops.push({ kind: KIND_RANGE_DELETE, key: start, value: end });
      }
      continue;
    }
    validateBytes(`operations[${i}].key`, key);
    if (type === 'put') {
      validateBytes(`operations[${i}].value`, value);
      ops.push({ kind: KIND_VALUE, key, value });
    } else if (type === 'del') {
      ops.push({ kind: KIND_DELETE, key, value: undefined });
    } else {
      throw invalidArgValue(`operations[${i}].type`, type, "must be 'put', 'del' or 'delRange'");
    }
  }
  return ops;
}

/** The `sync` of write options (default `false`). Throws `ERR_INVALID_ARG_TYPE`. */
export function syncOption(options: unknown): boolean {
  if (options === undefined) return false;
  if (typeof options !== 'object' || options === null) {
    throw invalidArgType('options', 'of type object', options);
  }
  const { sync } = options as { sync?: unknown };
  if (sync !== undefined && typeof sync !== 'boolean') {
    throw invalidArgType('options.sync', 'of type boolean', sync);
  }
  return sync === true;
}
