/**
 * One round of shipping: the parts of the log's durable records read from a
 * given offset, and their pipelined publication, each part expecting the
 * stream sequence before it.
 */
import { JetStreamApiCodes, JetStreamApiError, type PubAck } from '@nats-io/jetstream';
import { headers } from '@nats-io/transport-node';
import type { Wal } from '@wal/core';
import {
  type Fence,
  fenceHeaders,
  messageId,
  type PartPosition,
  partHeaders,
  recordCrc,
  recordEnd,
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
 * Publishes `parts` pipelined on the handle's subject, part `i` expecting
 * stream sequence `base + i`, with its message id and headers. An
 * acknowledgement for another sequence ends the acknowledged run like a
 * failure does.
 */
export async function publishParts(
  handle: StreamHandle,
  parts: readonly Outgoing[],
  base: number,
  timeout: number,
  epoch = 0,
): Promise<Published> {
  const results = await Promise.allSettled(
    parts.map((part, i) => {
      const h = headers();
      for (const [name, value] of partHeaders(part, epoch)) h.set(name, value);
      return handle.js.publish(handle.subject, part.data, {
        msgID: messageId(part, epoch),
        expect: { lastSequence: base + i },
        headers: h,
        timeout,
      });
    }),
  );
  const acks: PubAck[] = [];
  for (const result of results) {
    if (result.status === 'rejected') return { acks, failure: result.reason };
    const expected = base + acks.length + 1;
    if (result.value.seq !== expected) {
      const failure = new Error(
        `stream ${handle.stream} acknowledged sequence ${result.value.seq}, expected ${expected}`,
      );
      return { acks, failure };
    }
    acks.push(result.value);
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
 * Publishes a fence expecting `lastSeq` to be the stream's last sequence;
 * resolves with the fence's sequence once the stream stored it.
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
  const ack = await handle.js.publish(handle.subject, new Uint8Array(0), {
    msgID: `fence.${fence.epoch}.${fence.tail}.${lastSeq}`,
    expect: { lastSequence: lastSeq },
    headers: h,
    timeout,
  });
  if (ack.seq !== lastSeq + 1) {
    throw new Error(`stream ${handle.stream} stored the fence at ${ack.seq}, not ${lastSeq + 1}`);
  }
  return ack.seq;
}
