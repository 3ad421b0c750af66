/**
 * The records the log hands out: by `read`, by the iterators and by a replay
 * at open.
 */

/** A record read back: its LSN and its payload. */
export interface WalRecord {
  readonly lsn: number;
  /** The payload. A view into a buffer the log allocated for this read: the caller may keep it. */
  readonly payload: Uint8Array;
}

/**
 * Makes `record` describe another record, for readers whose records are valid
 * only until their consumer returns (a replay with reused buffers), so a
 * batch costs no allocation per record. Internal to @wal/core.
 */
// Assigned by the static block of StoredRecord (it resets the private payload view).
export let refill: (
  record: StoredRecord,
  lsn: number,
  buffer: Uint8Array,
  payloadStart: number,
  payloadEnd: number,
) => void;

/**
 * A record as iteration yields it: besides `lsn` and `payload`, where its
 * payload lies in the buffer the log read, so a decoder can read it in place
 * (`buffer[payloadStart..payloadEnd)`) without making a view. The buffer
 * belongs to the caller (the log never reuses it), except in a replay with
 * `replayReusesBuffers`, where the log reuses the buffer and the record object
 * itself once the callback returns.
 */
export class StoredRecord implements WalRecord {
  #payload: Uint8Array | undefined;

  constructor(
    readonly lsn: number,
    /** The buffer holding this record (and its neighbours in the batch). */
    readonly buffer: Uint8Array,
    /** Where the payload starts in `buffer`. */
    readonly payloadStart: number,
    /** Where the payload ends in `buffer`. */
    readonly payloadEnd: number,
  ) {}

  /** The payload: a view into `buffer`, made on first use. */
  get payload(): Uint8Array {
    this.#payload ??= this.buffer.subarray(this.payloadStart, this.payloadEnd);
    return this.#payload;
  }

  static {
    refill = (record, lsn, buffer, payloadStart, payloadEnd) => {
      const target = record as { -readonly [K in keyof StoredRecord]: StoredRecord[K] };
      target.lsn = lsn;
      target.buffer = buffer;
      target.payloadStart = payloadStart;
      target.payloadEnd = payloadEnd;
      record.#payload = undefined;
    };
  }
}
