/**
 * One round of shipping: the messages of the log's durable records read from
 * a given offset (runs of whole records, parts of a record too large for
 * one message), and their publication in order, each message expecting the
 * stream sequence before it.
 */
import { JetStreamApiCodes, JetStreamApiError, type PubAck } from '@nats-io/jetstream';
import { headers } from '@nats-io/transport-node';
import { crc32c, HEADER_SIZE, type Wal } from '@wal/core';
import { ReplicaMismatchError } from '@wal/errors';
import {
  encodeRun,
  epochSubject,
  type Fence,
  fenceHeaders,
  type Placement,
  partHeaders,
  placementId,
  type RunRecord,
  recordCrc,
  recordEnd,
  runHeaders,
  sealHeaders,
} from './message.js';
import type { StreamHandle } from './stream.js';

/** A message ready to publish: what it is, and its data. */
export interface Outgoing {
  readonly placement: Placement;
  readonly data: Uint8Array;
}

/** How much one round reads and publishes. */
export interface BatchLimits {
  /** Most messages. */
  readonly messages: number;
  /** Most data bytes (a record is never cut short by it). */
  readonly bytes: number;
  /** Largest message data: the server's maximum payload less room for headers. */
  readonly partSize: number;
}

/**
 * The messages of the records from `from` whose end is at most `durable`,
 * leaving out the first `partial` bytes of the record at `from` (already
 * stored), up to `limits`: consecutive records whose frames fit in
 * `limits.partSize` together go in one run; a record whose frame does not
 * fit (and the rest of a record already partly stored) is split into parts.
 */
export async function collectMessages(
  wal: Wal,
  from: number,
  partial: number,
  durable: number,
  limits: BatchLimits,
): Promise<Outgoing[]> {
  const out: Outgoing[] = [];
  let run: Uint8Array[] = [];
  let runLsn = 0;
  let runSize = 0;
  let bytes = 0;
  const endRun = () => {
    if (run.length === 0) return;
    const data = encodeRun(run);
    const records: RunRecord[] = [];
    let at = 0;
    for (const payload of run) {
      records.push({
        lsn: runLsn + at,
        length: payload.length,
        crc: recordCrc(payload),
        at: at + HEADER_SIZE,
      });
      at += HEADER_SIZE + payload.length;
    }
    const placement: Placement = {
      kind: 'run',
      lsn: runLsn,
      count: run.length,
      crc: crc32c(data, 0, data.length),
      size: data.length,
      records,
    };
    out.push({ placement, data });
    run = [];
    runSize = 0;
  };
  const full = () =>
    out.length + (run.length > 0 ? 1 : 0) >= limits.messages || bytes >= limits.bytes;
  for await (const batch of wal.iterateBatches(from)) {
    for (const record of batch) {
      const payload = record.payload;
      if (recordEnd(record.lsn, payload.length) > durable) {
        endRun();
        return out;
      }
      const frame = HEADER_SIZE + payload.length;
      bytes += frame;
      if (frame <= limits.partSize && !(record.lsn === from && partial > 0)) {
        if (runSize + frame > limits.partSize) endRun();
        if (run.length === 0) runLsn = record.lsn;
        run.push(payload);
        runSize += frame;
      } else {
        endRun();
        splitRecord(out, record.lsn, payload, record.lsn === from ? partial : 0, limits.partSize);
      }
      if (full()) {
        endRun();
        return out;
      }
    }
  }
  endRun();
  return out;
}

/** Pushes the parts of the record at `lsn` from byte `part` on. */
function splitRecord(
  out: Outgoing[],
  lsn: number,
  payload: Uint8Array,
  part: number,
  partSize: number,
): void {
  const crc = recordCrc(payload);
  do {
    const size = Math.min(partSize, payload.length - part);
    out.push({
      placement: { kind: 'part', lsn, length: payload.length, crc, part, size },
      data: payload.subarray(part, part + size),
    });
    part += size;
  } while (part < payload.length);
}

/** What publishing a batch gave: the acknowledgements, in order, up to the first failure. */
export interface Published {
  readonly acks: readonly PubAck[];
  /** Why the message after the last acknowledged one was not stored, or `undefined`. */
  readonly failure: unknown;
}

/** What the caller of {@link publishMessages} hears, and how it stops it. */
export interface PublishHooks {
  /** Asked before each publish: false ends the batch there, with no failure. */
  readonly proceed?: () => boolean;
  /** Each acknowledgement as it comes, with the index of its message. */
  readonly acked?: (ack: PubAck, index: number) => void;
}

/**
 * Publishes `messages` one after the other on the subject of `epoch`,
 * message `i` expecting stream sequence `base + i` both as the stream's last
 * sequence and as the last sequence of that subject, with its message id and
 * headers, stopping at the first failure. Once a message on another subject
 * (a seal, a fence) is stored, no message can follow it.
 *
 * Not pipelined, on purpose: with the last-sequence check alone, a message
 * in flight behind a refused one expects the very sequence a seal or fence
 * took, and would be stored after it (a fenced writer extending the
 * stream); and the servers (2.9) check a subject's last sequence against
 * what they stored, not against messages still in flight, so pipelined
 * messages would be refused anyway. Throughput comes from runs instead:
 * one message carries as many whole records as fit. An acknowledgement for
 * another sequence (a duplicate of a message stored elsewhere) ends the
 * acknowledged run with a `WAL_REPLICA_MISMATCH` failure. `hooks.proceed`
 * returning false stops the batch before its next message.
 */
export async function publishMessages(
  handle: StreamHandle,
  messages: readonly Outgoing[],
  base: number,
  timeout: number,
  epoch = 0,
  hooks: PublishHooks = {},
): Promise<Published> {
  const acks: PubAck[] = [];
  const subject = epochSubject(handle.subject, epoch);
  for (const { placement, data } of messages) {
    if (hooks.proceed !== undefined && !hooks.proceed()) break;
    const expected = base + acks.length;
    const h = headers();
    const run = placement.kind === 'run';
    for (const [name, value] of run
      ? runHeaders(placement, epoch)
      : partHeaders(placement, epoch)) {
      h.set(name, value);
    }
    let ack: PubAck;
    try {
      ack = await handle.js.publish(subject, data, {
        msgID: placementId(placement, epoch),
        expect: { lastSequence: expected, lastSubjectSequence: expected },
        headers: h,
        timeout,
      });
    } catch (error) {
      return { acks, failure: error };
    }
    if (ack.seq !== expected + 1) {
      // Only a duplicate of a message stored elsewhere can be acknowledged
      // at another sequence: the stream is not what this writer holds.
      const failure = new ReplicaMismatchError(
        `stream ${handle.stream} acknowledged the message for LSN ${placement.lsn} at sequence ${ack.seq}, expected ${expected + 1}`,
        { sequence: expected + 1, offset: placement.lsn },
      );
      return { acks, failure };
    }
    acks.push(ack);
    hooks.acked?.(ack, acks.length - 1);
  }
  return { acks, failure: undefined };
}

/** True for the server's refusal of a publish whose expected last sequence is not the stream's. */
export function isWrongLastSequence(error: unknown): boolean {
  return (
    error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamWrongLastSequence
  );
}

/**
 * Publishes a seal for `epoch` on that epoch's subject, expecting nothing:
 * stored whatever a live writer publishes, after which no writer of another
 * subject extends the stream. Resolves with its sequence.
 *
 * @throws the client's transient errors.
 */
export async function publishSeal(
  handle: StreamHandle,
  epoch: number,
  timeout: number,
): Promise<number> {
  const h = headers();
  for (const [name, value] of sealHeaders(epoch)) h.set(name, value);
  const ack = await handle.js.publish(epochSubject(handle.subject, epoch), new Uint8Array(0), {
    headers: h,
    timeout,
  });
  return ack.seq;
}

/**
 * Publishes a fence on its epoch's subject, expecting `lastSeq` to be the
 * stream's last sequence; resolves with the fence's sequence once the stream
 * stored it.
 *
 * @throws the server's wrong-last-sequence refusal when the stream moved
 *   ({@link isWrongLastSequence}), `WAL_REPLICA_MISMATCH` when it is
 *   acknowledged at another sequence (a duplicate of a fence stored
 *   elsewhere), and the client's transient errors.
 */
export async function publishFence(
  handle: StreamHandle,
  fence: Fence,
  lastSeq: number,
  timeout: number,
): Promise<number> {
  const h = headers();
  for (const [name, value] of fenceHeaders(fence)) h.set(name, value);
  const ack = await handle.js.publish(
    epochSubject(handle.subject, fence.epoch),
    new Uint8Array(0),
    {
      msgID: `fence.${fence.epoch}.${fence.tail}.${lastSeq}`,
      expect: { lastSequence: lastSeq },
      headers: h,
      timeout,
    },
  );
  if (ack.seq !== lastSeq + 1) {
    throw new ReplicaMismatchError(
      `stream ${handle.stream} acknowledged the fence at sequence ${ack.seq}, expected ${lastSeq + 1}`,
      { sequence: lastSeq + 1, offset: fence.tail },
    );
  }
  return ack.seq;
}
