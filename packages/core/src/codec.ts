/**
 * A typed view of a log: records encoded and decoded by a user codec.
 */
import { CodecError, invalidArgType } from '@wal/errors';
import type { WalOptions } from './options.js';
import type { StoredRecord } from './record.js';
import {
  type AppendOptions,
  type RecoveryReport,
  type WaitLevel,
  type WaitOptions,
  Wal,
  type WalSource,
} from './wal.js';

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
 * Options of {@link TypedWal.open}: those of {@link Wal.open}, with a typed
 * `replay` that receives decoded records.
 */
export interface TypedWalOptions<T> extends Omit<WalOptions, 'replay'> {
  /**
   * {@link WalOptions.replay} with decoded records: called with every record
   * of the recovered log, decoded, in LSN order, in batches, before `open`
   * resolves. A decode failure rejects the open with `WAL_CODEC` (the log
   * does not open). With `replayReusesBuffers`, a payload passed to `decode`
   * is valid only during the call: a codec that keeps it must copy it.
   */
  readonly replay?: (records: readonly TypedRecord<T>[]) => void | Promise<void>;
}

function validateCodec(codec: unknown): void {
  if (
    typeof codec !== 'object' ||
    codec === null ||
    typeof (codec as Codec<unknown>).encode !== 'function' ||
    typeof (codec as Codec<unknown>).decode !== 'function'
  ) {
    throw invalidArgType('codec', 'an object with encode and decode functions', codec);
  }
}

/** `codec.encode(value)`, a throw wrapped in `WAL_CODEC`. */
function encode<T>(codec: Codec<T>, value: T): Uint8Array {
  let payload: unknown;
  try {
    payload = codec.encode(value);
  } catch (cause) {
    throw new CodecError('encode', { cause });
  }
  if (!(payload instanceof Uint8Array)) {
    throw new CodecError('encode', {
      cause: invalidArgType('codec.encode()', 'to return a Uint8Array', payload),
    });
  }
  return payload;
}

/** `codec.decode(payload, lsn)` as a typed record, a throw wrapped in `WAL_CODEC`. */
function decode<T>(codec: Codec<T>, record: StoredRecord): TypedRecord<T> {
  const { lsn } = record;
  try {
    return { lsn, value: codec.decode(record.payload, lsn) };
  } catch (cause) {
    throw new CodecError('decode', { cause, offset: lsn });
  }
}

/**
 * A thin typed layer over a {@link Wal}: every method encodes or decodes
 * with `codec` and otherwise behaves (guarantees, errors) exactly as the
 * `Wal` method of the same name. The log stays usable directly.
 *
 * Codec failures are `WAL_CODEC` ({@link CodecError}, the codec's error as
 * `cause`): an `encode` that throws (or returns no `Uint8Array`) appends
 * nothing; a `decode` that throws names the record's LSN as `offset`.
 */
export class TypedWal<T> {
  /**
   * @throws `TypeError` (`ERR_INVALID_ARG_TYPE`) when `codec` lacks `encode` or `decode`.
   */
  constructor(
    readonly wal: Wal,
    readonly codec: Codec<T>,
  ) {
    validateCodec(codec);
  }

  /**
   * Opens the log at `source` ({@link Wal.open}) as a typed log; with
   * `options.replay`, hands it the recovered records decoded. Rejects as
   * `Wal.open` does, with `ERR_INVALID_ARG_TYPE` for a bad codec (before
   * anything is opened), and with `WAL_CODEC` when a replayed record does
   * not decode (the log is then closed, not opened).
   */
  static async open<T>(
    source: WalSource,
    codec: Codec<T>,
    options: TypedWalOptions<T> = {},
  ): Promise<TypedWal<T>> {
    validateCodec(codec);
    if (typeof options !== 'object' || options === null) {
      return new TypedWal(await Wal.open(source, options as WalOptions), codec);
    }
    const { replay, ...rest } = options;
    if (replay === undefined) return new TypedWal(await Wal.open(source, rest), codec);
    if (typeof replay !== 'function') {
      throw invalidArgType('options.replay', 'of type function', replay);
    }
    const wal = await Wal.open(source, {
      ...rest,
      replay: (records) => replay(records.map((record) => decode(codec, record))),
    });
    return new TypedWal(wal, codec);
  }

  /** What recovery found at open; see {@link Wal.recovery}. */
  get recovery(): RecoveryReport {
    return this.wal.recovery;
  }

  /** Encodes and appends `value`; see {@link Wal.append}. Throws `WAL_CODEC` when encoding fails. */
  append(value: T): number;
  /** Encodes and appends `value`, resolving once it is written or durable; see {@link Wal.append}. */
  append(value: T, options: AppendOptions): Promise<number>;
  append(value: T, options?: AppendOptions): number | Promise<number> {
    if (options === undefined) return this.wal.append(encode(this.codec, value));
    let payload: Uint8Array;
    try {
      payload = encode(this.codec, value);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.wal.append(payload, options);
  }

  /**
   * Encodes every value, then appends them as consecutive records; see
   * {@link Wal.appendBatch}. All or nothing: a value that fails to encode
   * (`WAL_CODEC`) appends none.
   */
  appendBatch(values: readonly T[]): number[];
  appendBatch(values: readonly T[], options: AppendOptions): Promise<number[]>;
  appendBatch(values: readonly T[], options?: AppendOptions): number[] | Promise<number[]> {
    let payloads: Uint8Array[];
    try {
      if (!Array.isArray(values)) throw invalidArgType('values', 'an array', values);
      payloads = values.map((value) => encode(this.codec, value));
    } catch (error) {
      if (options === undefined) throw error;
      return Promise.reject(error);
    }
    return options === undefined
      ? this.wal.appendBatch(payloads)
      : this.wal.appendBatch(payloads, options);
  }

  /** Resolves once the record at `lsn` is `written` or `durable`; see {@link Wal.waitFor}. */
  waitFor(lsn: number, level: WaitLevel, options?: WaitOptions): Promise<void> {
    return this.wal.waitFor(lsn, level, options);
  }

  /** Makes every record appended so far durable; see {@link Wal.sync}. */
  sync(options?: WaitOptions): Promise<void> {
    return this.wal.sync(options);
  }

  /** Closes the log; see {@link Wal.close}. */
  close(): Promise<void> {
    return this.wal.close();
  }

  /** Reads and decodes the record at `lsn`; see {@link Wal.read}. Rejects with `WAL_CODEC` when decoding fails. */
  async read(lsn: number): Promise<T> {
    const payload = await this.wal.read(lsn);
    try {
      return this.codec.decode(payload, lsn);
    } catch (cause) {
      throw new CodecError('decode', { cause, offset: lsn });
    }
  }

  /**
   * Iterates decoded records; see {@link Wal.iterate}: the same bounds and
   * errors, one record per step (a truncation made between two steps ends it
   * at the cut, or rejects `WAL_TRUNCATED`, even for records it already
   * read). A step rejects with `WAL_CODEC` when decoding fails.
   */
  async *iterate(fromLsn?: number): AsyncGenerator<TypedRecord<T>, void, undefined> {
    // Wal.iterate, not its batches: it checks every record it yields against
    // the truncations made since it read it.
    for await (const record of this.wal.iterate(fromLsn)) yield decode(this.codec, record);
  }

  /** Iterates decoded records in batches; see {@link Wal.iterateBatches}. */
  async *iterateBatches(
    fromLsn?: number,
    options?: { batchBytes?: number },
  ): AsyncGenerator<TypedRecord<T>[], void, undefined> {
    for await (const batch of this.wal.iterateBatches(fromLsn, options)) {
      yield batch.map((record) => decode(this.codec, record));
    }
  }
}
