/**
 * Applying stream messages to a log in stream order, shared by `restore` and
 * the follower: a run's records are checked (each frame's CRC, the run's
 * CRC) and appended, parts are joined into records and their CRC checked,
 * each record at the LSN the stream names (which must be the log's tail),
 * and seals and fences drop a record left unfinished before them.
 */
import type { Wal } from '@wal/core';
import {
  BoundaryError,
  CorruptionError,
  RecordTooLargeError,
  ReplicaMismatchError,
  TruncatedError,
} from '@wal/errors';
import {
  type HeaderSource,
  type PartPosition,
  type Run,
  reachOf,
  readEpoch,
  readFence,
  readPlacement,
  readSeal,
  recordCrc,
  recordEnd,
} from './message.js';
import { logHolds, logHoldsRunRecord } from './verify.js';

/** A record being reassembled from its parts. */
interface Assembly {
  readonly position: PartPosition;
  readonly payload: Uint8Array;
  filled: number;
}

/** A seal or fence a copy took: its epoch, and the log's tail then. */
interface Cut {
  readonly kind: 'seal' | 'fence';
  readonly epoch: number;
  readonly tail: number;
}

/** The last record a copy appended or found in the log. */
export interface LastRecord {
  readonly lsn: number;
  readonly length: number;
  readonly crc: number;
}

/**
 * A log being extended from the stream. `seq` is the last stream sequence
 * taken (parts of an unfinished record included), `epoch` the writer epoch
 * in effect there.
 */
export class LogCopy {
  readonly #wal: Wal;
  readonly #stream: string;
  #assembly: Assembly | undefined;
  seq: number;
  epoch: number;
  last: LastRecord | undefined;
  /** Records appended. */
  records = 0;
  /** Fences taken. */
  fences = 0;

  /** Sequence of a run whose records below the log's tail are in the log already (F2). */
  readonly #within: number;

  /** Sequence of the last seal or fence taken (0 for none since the copy started). */
  #sealedAt = 0;

  /** The sequence the copy started after: it took the messages past it. */
  readonly #start: number;

  /** The seals and fences the copy took, by sequence (a few per promotion). */
  readonly #cuts = new Map<number, Cut>();

  constructor(wal: Wal, stream: string, seq: number, epoch: number, last?: LastRecord, within = 0) {
    this.#wal = wal;
    this.#stream = stream;
    this.seq = seq;
    this.epoch = epoch;
    this.last = last;
    this.#within = within;
    this.#start = seq;
  }

  /** Drops the parts of a record left unfinished (a fence published after them voids them). */
  dropUnfinished(): void {
    this.#assembly = undefined;
  }

  /** True while parts of a record are held but the record is not appended yet. */
  get unfinished(): boolean {
    return this.#assembly !== undefined;
  }

  /**
   * Takes message `seq`. Resolves with the LSN of the last record it
   * completed and appended, or `undefined`. With `to`, appends no record
   * past the one at `to` (the rest of a run is left out), and stops with
   * `BoundaryError` when a record starts past `to` before one starts at it.
   *
   * @throws `WAL_REPLICA_MISMATCH` for a gap, a message out of LSN order or
   *   not a record, a fence at another tail than the log's; `WAL_CORRUPTION`
   *   for a record failing its CRC; `WAL_RECORD_TOO_LARGE` above the log's
   *   maximum record size (checked before allocating).
   */
  async take(
    seq: number,
    headers: HeaderSource | undefined,
    data: Uint8Array,
    to?: number,
  ): Promise<number | undefined> {
    const wal = this.#wal;
    if (seq !== this.seq + 1) {
      throw new ReplicaMismatchError(
        `stream ${this.#stream} has a gap: message ${seq} follows ${this.seq}`,
        { sequence: this.seq + 1 },
      );
    }
    const seal = readSeal(headers, data.length, seq);
    if (seal !== undefined) {
      // A promotion is under way: no writer publishes after a seal, so a
      // record left unfinished before it is never finished.
      this.#assembly = undefined;
      this.seq = seq;
      this.#sealedAt = seq;
      this.#cuts.set(seq, { kind: 'seal', epoch: seal, tail: wal.tail });
      return undefined;
    }
    const fence = readFence(headers, data.length, seq);
    if (fence !== undefined) {
      if (fence.tail !== wal.tail || fence.epoch <= this.epoch) {
        throw new ReplicaMismatchError(
          `stream message ${seq} is a fence at ${fence.tail} (epoch ${fence.epoch}); the log's tail is ${wal.tail} (epoch ${this.epoch})`,
          { sequence: seq, offset: fence.tail },
        );
      }
      // The fenced writer's unfinished record was never acknowledged.
      this.#assembly = undefined;
      this.seq = seq;
      this.#sealedAt = seq;
      this.epoch = fence.epoch;
      this.fences++;
      this.#cuts.set(seq, { kind: 'fence', epoch: fence.epoch, tail: fence.tail });
      return undefined;
    }
    const placement = readPlacement(headers, data, seq);
    const epoch = readEpoch(headers!, seq);
    if (placement.kind === 'run') return this.#takeRun(seq, placement, epoch, data, to);
    const position = placement;
    let assembly = this.#assembly;
    if (assembly === undefined) {
      if (position.part !== 0 || position.lsn !== wal.tail || epoch !== this.epoch) {
        throw new ReplicaMismatchError(
          `stream message ${seq} holds LSN ${position.lsn} part ${position.part} (epoch ${epoch}); the log's next record is at ${wal.tail} (epoch ${this.epoch})`,
          { sequence: seq, offset: position.lsn },
        );
      }
      if (to !== undefined && position.lsn > to) {
        throw new BoundaryError(`no record of the stream starts at ${to}`, { offset: to });
      }
      // Checked before allocating: the length comes from the stream.
      if (position.length > wal.maxRecordSize) {
        throw new RecordTooLargeError(position.length, wal.maxRecordSize, {
          offset: position.lsn,
        });
      }
      assembly = { position, payload: new Uint8Array(position.length), filled: 0 };
      this.#assembly = assembly;
    } else if (
      position.lsn !== assembly.position.lsn ||
      position.length !== assembly.position.length ||
      position.crc !== assembly.position.crc ||
      position.part !== assembly.filled ||
      epoch !== this.epoch
    ) {
      throw new ReplicaMismatchError(
        `stream message ${seq} does not continue the record at LSN ${assembly.position.lsn}`,
        { sequence: seq, offset: position.lsn },
      );
    }
    assembly.payload.set(data, assembly.filled);
    assembly.filled += position.size;
    this.seq = seq;
    if (assembly.filled < position.length) return undefined;
    this.#assembly = undefined;
    if (recordCrc(assembly.payload) !== position.crc) {
      throw new CorruptionError(
        `the record at LSN ${position.lsn} (stream message ${seq}) fails its checksum`,
        { offset: position.lsn },
      );
    }
    if (!wal.writable) await wal.drained();
    const lsn = wal.append(assembly.payload);
    this.last = { lsn, length: position.length, crc: position.crc };
    this.records++;
    return lsn;
  }

  /**
   * Takes message `seq` as a consumer delivered it: one at or below
   * {@link LogCopy.seq}, delivered again (a consumer created again on a
   * replica behind the others starts below where it was asked), is checked
   * ({@link LogCopy.retaken}) and skipped, resolving `undefined`; any other
   * is taken ({@link LogCopy.take}, with `to`).
   *
   * @throws what `retaken` and `take` throw.
   */
  async deliver(
    seq: number,
    headers: HeaderSource | undefined,
    data: Uint8Array,
    to?: number,
  ): Promise<number | undefined> {
    if (seq <= this.seq) {
      await this.retaken(seq, headers, data);
      return undefined;
    }
    return this.take(seq, headers, data, to);
  }

  /**
   * Checks message `seq`, at or below {@link LogCopy.seq}, delivered again:
   * it must be the one taken, so the log must hold its records at their
   * LSNs byte for byte (or, for a part of the record being joined, the
   * parts held must be its bytes; records below the log's head, which a
   * checkpoint removed, only by their offsets). A seal or fence this copy
   * took must come again as the same seal or fence (same epoch, same
   * tail), and a record message never where it took one. A part of a
   * record a promotion voided (a part of an earlier epoch, or from before
   * the last seal, that the log does not hold) cannot be compared, as the
   * log never kept it: it is accepted only at the LSN where such a record
   * can start, the log's tail at a later seal or fence this copy took.
   * For messages taken before this copy started (a restarted follower), a
   * seal is accepted unchecked, and a fence and a voided part only at a
   * record boundary of the log (a record's LSN, or its tail; below the
   * log's head, unchecked), a fence only with a tail not past the log's
   * and an epoch not past the copy's. Changes nothing; syncs the log first
   * when the records to compare are not durable yet.
   *
   * @throws `WAL_REPLICA_MISMATCH` when the message is not what was taken
   *   at that sequence (the stream under the name is another one now), or
   *   is not a record; the log's read errors.
   */
  async retaken(seq: number, headers: HeaderSource | undefined, data: Uint8Array): Promise<void> {
    const wal = this.#wal;
    const differs = (offset?: number) =>
      new ReplicaMismatchError(
        `stream ${this.#stream} delivered message ${seq} again and it is not the one taken at that sequence: the log does not hold it`,
        offset === undefined ? { sequence: seq } : { sequence: seq, offset },
      );
    const taken = seq > this.#start;
    const cut = this.#cuts.get(seq);
    const seal = readSeal(headers, data.length, seq);
    if (seal !== undefined) {
      if (taken && (cut?.kind !== 'seal' || cut.epoch !== seal)) throw differs(cut?.tail);
      return;
    }
    const fence = readFence(headers, data.length, seq);
    if (fence !== undefined) {
      if (taken) {
        if (cut?.kind !== 'fence' || cut.epoch !== fence.epoch || cut.tail !== fence.tail) {
          throw differs(fence.tail);
        }
        return;
      }
      if (
        fence.tail > wal.tail ||
        fence.epoch > this.epoch ||
        !(await this.#boundary(fence.tail))
      ) {
        throw differs(fence.tail);
      }
      return;
    }
    const placement = readPlacement(headers, data, seq);
    if (cut !== undefined) throw differs(placement.lsn);
    const assembly = this.#assembly;
    // A part of a record a promotion voided (left unfinished before a seal
    // or fence, so never in the log: the new writer may have put another
    // record at its LSN, even the one being joined) is from an earlier
    // epoch, or before the last seal.
    const voidable =
      placement.kind === 'part' && (readEpoch(headers!, seq) < this.epoch || seq < this.#sealedAt);
    const voided = async () => voidable && (await this.#voidedAt(seq, placement.lsn));
    if (!voidable && placement.kind === 'part' && assembly?.position.lsn === placement.lsn) {
      // A part of the record being joined: compared with the bytes held.
      const held = assembly.payload.subarray(placement.part, placement.part + placement.size);
      const same =
        placement.length === assembly.position.length &&
        placement.crc === assembly.position.crc &&
        placement.part + placement.size <= assembly.filled &&
        Buffer.from(held.buffer, held.byteOffset, held.length).equals(data);
      if (!same) throw differs(placement.lsn);
      return;
    }
    // The whole record a part belongs to, every record of a run.
    const end =
      placement.kind === 'part'
        ? recordEnd(placement.lsn, placement.length)
        : reachOf(placement).end;
    if (end > wal.tail) {
      if (await voided()) return;
      throw differs(placement.lsn);
    }
    if (end > wal.durable) await wal.sync();
    let holds = true;
    if (placement.kind === 'part') holds = await logHolds(wal, placement, data);
    for (const r of placement.kind === 'run' ? placement.records : []) {
      holds &&= await logHoldsRunRecord(wal, r, data);
    }
    if (!holds && !(await voided())) throw differs(placement.lsn);
  }

  /**
   * True when a record voided by a promotion can have started at `lsn`
   * and been sent at `seq`: the log's tail at a seal or fence this copy
   * took after `seq`; for a message from before the copy, a record
   * boundary of the log.
   */
  async #voidedAt(seq: number, lsn: number): Promise<boolean> {
    if (seq <= this.#start) return this.#boundary(lsn);
    for (const [at, cut] of this.#cuts) if (at > seq && cut.tail === lsn) return true;
    return false;
  }

  /**
   * True when `lsn` is the log's tail or the LSN of a record it holds, or
   * below its head (records a checkpoint removed: not known any more).
   */
  async #boundary(lsn: number): Promise<boolean> {
    const wal = this.#wal;
    if (lsn === wal.tail || lsn < wal.head) return true;
    if (lsn > wal.tail) return false;
    if (lsn >= wal.durable) await wal.sync();
    try {
      await wal.read(lsn);
      return true;
    } catch (error) {
      if (error instanceof BoundaryError || error instanceof TruncatedError) return false;
      throw error;
    }
  }

  /** Appends the records of a run (checked by `readPlacement`), from the log's tail on. */
  async #takeRun(
    seq: number,
    run: Run,
    epoch: number,
    data: Uint8Array,
    to: number | undefined,
  ): Promise<number | undefined> {
    const wal = this.#wal;
    const tail = wal.tail;
    // A restarted follower's log may end inside its first run (F2).
    const skip = seq === this.#within ? run.records.findIndex((r) => r.lsn === tail) : 0;
    const first = run.records[skip];
    if (
      this.#assembly !== undefined ||
      first === undefined ||
      first.lsn !== tail ||
      epoch !== this.epoch
    ) {
      throw new ReplicaMismatchError(
        `stream message ${seq} holds a run from LSN ${run.lsn} (epoch ${epoch}); the log's next record is at ${tail} (epoch ${this.epoch})${this.#assembly === undefined ? '' : ', inside an unfinished record'}`,
        { sequence: seq, offset: run.lsn },
      );
    }
    if (to !== undefined && first.lsn > to) {
      throw new BoundaryError(`no record of the stream starts at ${to}`, { offset: to });
    }
    const payloads: Uint8Array[] = [];
    for (let i = skip; i < run.records.length; i++) {
      const record = run.records[i]!;
      if (to !== undefined && record.lsn > to) {
        // Stopped inside the run: the record before must be the one at `to`.
        if (run.records[i - 1]!.lsn !== to) {
          throw new BoundaryError(`no record of the stream starts at ${to}`, { offset: to });
        }
        break;
      }
      if (record.length > wal.maxRecordSize) {
        throw new RecordTooLargeError(record.length, wal.maxRecordSize, { offset: record.lsn });
      }
      payloads.push(data.subarray(record.at, record.at + record.length));
    }
    if (!wal.writable) await wal.drained();
    if (payloads.length > 0) wal.appendBatch(payloads);
    const last = run.records[skip + payloads.length - 1];
    this.seq = seq;
    if (last === undefined) return undefined;
    this.last = { lsn: last.lsn, length: last.length, crc: last.crc };
    this.records += payloads.length;
    return last.lsn;
  }
}
