/**
 * One round of shipping: the parts of the log's durable records read from a
 * given offset, and their publication in order, each part expecting the
 * stream sequence before it.
 */
import { JetStreamApiCodes, JetStreamApiError, type PubAck } from '@nats-io/jetstream';
import { headers } from '@nats-io/transport-node';
import type { Wal } from '@wal/core';
import {
  epochSubject,
  type Fence,
  fenceHeaders,
  messageId,
  type PartPosition,
  partHeaders,
  recordCrc,
  recordEnd,
  sealHeaders,
} from './message.js';
import type { StreamHandle } from './stream.js';

/** A part ready to publish. */
export interface Outgoing extends PartPosition {
  readonly data: Uint8Array;
}

/** How much one round reads and publishes. */
export interface BatchLimits {
  /** Most messages. */
  readonly messages: number;
  /** Most payload bytes (a record is never cut short by it). */
  readonly bytes: number;
  /** Largest part: the server's maximum payload less room for headers. */
  readonly partSize: number;
}

/**
 * The parts of the records from `from` whose end is at most `durable`,
 * leaving out the first `partial` bytes of the record at `from` (already
 * stored), up to `limits`.
 */
export async function collectParts(
  wal: Wal,
  from: number,
  partial: number,
  durable: number,
  limits: BatchLimits,
): Promise<Outgoing[]> {
  const parts: Outgoing[] = [];
  let bytes = 0;
  for await (const batch of wal.iterateBatches(from)) {
    for (const record of batch) {
      const payload = record.payload;
      if (recordEnd(record.lsn, payload.length) > durable) return parts;
      const crc = recordCrc(payload);
      let part = record.lsn === from ? partial : 0;
      do {
        const size = Math.min(limits.partSize, payload.length - part);
        parts.push({
          lsn: record.lsn,
          length: payload.length,
          crc,
          part,
          size,
          data: payload.subarray(part, part + size),
        });
        part += size;
        bytes += size;
      } while (part < payload.length);
      if (parts.length >= limits.messages || bytes >= limits.bytes) return parts;
    }
  }
  return parts;
}

/** What publishing a batch gave: the acknowledgements, in order, up to the first failure. */
export interface Published {
  readonly acks: readonly PubAck[];
  /** Why the part after the last acknowledged one was not stored, or `undefined`. */
  readonly failure: unknown;
}

/**
 * Publishes `parts` one after the other on the subject of `epoch`, part `i`
 * expecting stream sequence `base + i` both as the stream's last sequence
 * and as the last sequence of that subject, with its message id and
 * headers, stopping at the first failure. Once a message on another
 * subject (a seal, a fence) is stored, no part can follow it.
 *
 * Not pipelined, on purpose: with the last-sequence check alone, a part in
 * flight behind a refused one expects the very sequence a seal or fence
 * took, and would be stored after it (a fenced writer extending the
 * stream); and the servers (2.9) check a subject's last sequence against
 * what they stored, not against parts still in flight, so pipelined parts
 * would be refused anyway. An acknowledgement for another sequence ends
 * the acknowledged run like a failure does.
 */
export async function publishParts(
  handle: StreamHandle,
  parts: readonly Outgoing[],
  base: number,
  timeout: number,
  epoch = 0,
): Promise<Published> {
  const acks: PubAck[] = [];
  const subject = epochSubject(handle.subject, epoch);
  for (const part of parts) {
    const expected = base + acks.length;
    const h = headers();
    for (const [name, value] of partHeaders(part, epoch)) h.set(name, value);
    let ack: PubAck;
    try {
      ack = await handle.js.publish(subject, part.data, {
        msgID: messageId(part, epoch),
        expect: { lastSequence: expected, lastSubjectSequence: expected },
        headers: h,
        timeout,
      });
    } catch (error) {
      return { acks, failure: error };
    }
    if (ack.seq !== expected + 1) {
      const failure = new Error(
        `stream ${handle.stream} acknowledged sequence ${ack.seq}, expected ${expected + 1}`,
      );
      return { acks, failure };
    }
    acks.push(ack);
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
 *   ({@link isWrongLastSequence}), and the client's transient errors.
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
    throw new Error(`stream ${handle.stream} stored the fence at ${ack.seq}, not ${lastSeq + 1}`);
  }
  return ack.seq;
}
