/**
 * A typed view of a log: records encoded and decoded by a user codec.
 */
import { invalidArgType } from '@wal/errors';
import type { AppendOptions, Wal } from './wal.js';

/** Turns values into payloads and back. `decode` may throw for bytes it does not accept. */
export interface Codec<T> {
  /** The payload that stands for `value`. */
  encode(value: T): Uint8Array;
  /** The value of `payload`, the record at `lsn`; may throw for bytes it does not accept. */
  decode(payload: Uint8Array, lsn: number): T;
}

/** A typed record read back. */
export interface TypedRecord<T> {
  readonly lsn: number;
  readonly value: T;
}

/**
 * A thin typed layer over a {@link Wal}: every method encodes or decodes
 * with `codec` and otherwise behaves (guarantees, errors) exactly as the
 * `Wal` method of the same name. The log stays usable directly.
 */
export class TypedWal<T> {
  /**
   * @throws `TypeError` (`ERR_INVALID_ARG_TYPE`) when `codec` lacks `encode` or `decode`.
   */
  constructor(
    readonly wal: Wal,
    readonly codec: Codec<T>,
  ) {
    if (
      typeof codec !== 'object' ||
      codec === null ||
      typeof codec.encode !== 'function' ||
      typeof codec.decode !== 'function'
    ) {
      throw invalidArgType('codec', 'an object with encode and decode functions', codec);
    }
  }

  /** Encodes and appends `value`; see {@link Wal.append}. */
  append(value: T): number;
  append(value: T, options: AppendOptions): Promise<number>;
  append(value: T, options?: AppendOptions): number | Promise<number> {
    if (options === undefined) return this.wal.append(this.codec.encode(value));
    let payload: Uint8Array;
    try {
      payload = this.codec.encode(value);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.wal.append(payload, options);
  }

  /** Reads and decodes the record at `lsn`; see {@link Wal.read}. */
  async read(lsn: number): Promise<T> {
    return this.codec.decode(await this.wal.read(lsn), lsn);
  }

  /** Iterates decoded records; see {@link Wal.iterate}. */
  async *iterate(fromLsn?: number): AsyncGenerator<TypedRecord<T>, void, undefined> {
    for await (const batch of this.wal.iterateBatches(fromLsn)) {
      for (const record of batch) {
        yield { lsn: record.lsn, value: this.codec.decode(record.payload, record.lsn) };
      }
    }
  }
}
