/**
 * The replication stream as both the replicator and restore see it: the
 * connection (given by the caller, or opened from options that pass through
 * untouched to the client), the stream's configuration, and its state
 * checked for gaps.
 */
import {
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type StoredMsg,
  type StreamConfig,
  type StreamInfo,
} from '@nats-io/jetstream';
import { type ConnectionOptions, connect, type NatsConnection } from '@nats-io/transport-node';
import {
  invalidArgType,
  invalidArgValue,
  ReplicaMismatchError,
  validateInteger,
} from '@wal/errors';
import { HEADER_ROOM, readSeal } from './message.js';

/**
 * Where the log is shipped: a connection and a stream name. The connection is
 * either one the caller opened (and keeps owning) or the client's
 * `ConnectionOptions` — servers, user and password, NKey or credentials
 * authenticator, TLS — which are passed to `connect` as they are and never
 * copied into a message, an error or a metric.
 */
export interface StreamTarget {
  /** An open connection (the caller closes it), or options to open one (closed with the replicator). */
  readonly nats: NatsConnection | ConnectionOptions;
  /** The JetStream stream's name. */
  readonly stream: string;
  /** The subject the records are published on; default `wal.<stream>`. */
  readonly subject?: string;
}

/** An open view of the replication stream. */
export interface StreamHandle {
  readonly nc: NatsConnection;
  /** True when the connection was opened from options and is closed with the handle. */
  readonly owned: boolean;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly stream: string;
  readonly subject: string;
}

/**
 * The largest part to publish: the maximum payload the connected server
 * announced in its INFO, less room for headers (at least 1 byte).
 */
export function partSize(nc: NatsConnection): number {
  return Math.max(1, (nc.info?.max_payload ?? 0) - HEADER_ROOM);
}

/**
 * Bytes a consumer of the stream may have delivered but not yet taken (its
 * pull's `max_bytes`): 8 MiB, or two of the largest messages the connected
 * server accepts when that is more (a pull must fit one whole message).
 * Bounds a follower's or a restore's memory, whatever the message size.
 */
export function pullBytes(nc: NatsConnection): number {
  return Math.max(8 * 1024 * 1024, 2 * (nc.info?.max_payload ?? 0) + 2 * HEADER_ROOM);
}

/** A stream's extent: the sequence of its last message (0 when empty). */
export interface StreamExtent {
  readonly lastSeq: number;
}

const NAME = /^[A-Za-z0-9_-]{1,64}$/;

function isConnection(value: object): value is NatsConnection {
  return typeof (value as { publish?: unknown }).publish === 'function';
}

/** Validates a target's names. @throws `TypeError` codes for bad names. */
function targetNames(target: StreamTarget): { stream: string; subject: string } {
  if (typeof target !== 'object' || target === null) {
    throw invalidArgType('options', 'an object', target);
  }
  const { stream } = target;
  if (typeof stream !== 'string') throw invalidArgType('options.stream', 'a string', stream);
  if (!NAME.test(stream)) {
    throw invalidArgValue('options.stream', stream, 'must be 1-64 letters, digits, _ or -');
  }
  const subject = target.subject ?? `wal.${stream}`;
  if (typeof subject !== 'string' || !/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(subject)) {
    throw invalidArgValue('options.subject', subject, 'must be a subject without wildcards');
  }
  if (typeof target.nats !== 'object' || target.nats === null) {
    throw invalidArgType('options.nats', 'a connection or connection options', target.nats);
  }
  return { stream, subject };
}

/**
 * The subjects a log's stream captures: the log's subject (the first
 * writer's) and `<subject>.*` (one per later epoch, see `epochSubject`).
 */
export function streamSubjects(subject: string): [string, string] {
  return [subject, `${subject}.*`];
}

/**
 * The setting of a stream's configuration under which the server may
 * remove or change messages on its own (a limit on messages, bytes, age or
 * messages per subject; interest or work-queue retention; a mirror or
 * sources; sealed), or `undefined` when it keeps every message it stores.
 */
function droppingSetting(config: StreamConfig): string | undefined {
  const limits = [
    ['max_msgs', config.max_msgs],
    ['max_bytes', config.max_bytes],
    ['max_msgs_per_subject', config.max_msgs_per_subject],
  ] as const;
  for (const [name, value] of limits) {
    if (value !== undefined && value > 0) return `${name} ${value}`;
  }
  if (config.max_age !== undefined && config.max_age > 0) return `max_age ${config.max_age}`;
  if (config.retention !== undefined && config.retention !== RetentionPolicy.Limits) {
    return `retention ${config.retention}`;
  }
  if (config.mirror !== undefined && config.mirror !== null) return 'a mirror';
  if ((config.sources ?? []).length > 0) return 'sources';
  if (config.sealed === true) return 'sealed set';
  return undefined;
}

/**
 * Opens the target: connects when given options, and checks (or, with
 * `replicas`, creates) the stream. A stream that captures other subjects than
 * the log's ({@link streamSubjects}) is refused, since its messages would not
 * all be records, and a writer of a later epoch could not publish; so is
 * one whose configuration lets the server drop messages (a limit on
 * messages, bytes, age or messages per subject, interest or work-queue
 * retention, a mirror or sources, sealed): the stream is the log's whole
 * history, read by restore and followers.
 *
 * @throws `WAL_REPLICA_MISMATCH` for a stream with other subjects or a
 *   setting that drops messages, or a
 *   missing stream when `replicas` is not given; the client's errors when it
 *   cannot connect (they name no secret).
 */
export async function openStream(
  target: StreamTarget,
  replicas: number | undefined,
): Promise<StreamHandle> {
  const { stream, subject } = targetNames(target);
  if (replicas !== undefined) validateInteger('options.replicas', replicas, 1, 5);
  const owned = !isConnection(target.nats);
  const nc = isConnection(target.nats) ? target.nats : await connect(target.nats);
  try {
    const jsm = await jetstreamManager(nc);
    let info: StreamInfo;
    try {
      info = await jsm.streams.info(stream);
    } catch (error) {
      const missing =
        error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound;
      if (!missing || replicas === undefined) {
        if (missing) {
          throw new ReplicaMismatchError(`stream ${stream} does not exist`, { cause: error });
        }
        throw error;
      }
      info = await jsm.streams.add({
        name: stream,
        subjects: streamSubjects(subject),
        num_replicas: replicas,
        storage: StorageType.File,
        deny_delete: true,
        deny_purge: true,
      });
    }
    const subjects = info.config.subjects ?? [];
    const wanted = streamSubjects(subject);
    if (subjects.length !== wanted.length || !wanted.every((s) => subjects.includes(s))) {
      throw new ReplicaMismatchError(
        `stream ${stream} captures ${JSON.stringify(subjects)}, not exactly the log's subjects ${JSON.stringify(wanted)}`,
      );
    }
    const drops = droppingSetting(info.config);
    if (drops !== undefined) {
      throw new ReplicaMismatchError(
        `stream ${stream} has ${drops}: it may drop messages, and a log's stream must keep its whole history`,
      );
    }
    return {
      nc,
      owned,
      js: jetstream(nc),
      jsm,
      stream,
      subject,
    };
  } catch (error) {
    if (owned) await nc.close().catch(() => undefined);
    throw error;
  }
}

/**
 * How long the servers must keep answering that the stream does not exist
 * before a replicator, follower or restore takes it as deleted (a server
 * still recovering might not know it yet), in milliseconds.
 */
const MISSING_FOR = 5000;

/**
 * True for the server's answer that the stream does not exist: transient
 * until the servers kept giving it for {@link MISSING_FOR} ms, which
 * {@link streamExtent} decides.
 */
export function isStreamNotFound(error: unknown): boolean {
  return error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound;
}

/**
 * The stream's information. A stream the servers keep saying does not exist
 * for {@link MISSING_FOR} ms is gone (deleted): retrying cannot help.
 *
 * @throws `WAL_REPLICA_MISMATCH` for a stream that does not exist.
 */
async function streamInfo(handle: StreamHandle): Promise<StreamInfo> {
  const since = Date.now();
  for (let delay = 100; ; delay = Math.min(delay * 2, 1000)) {
    try {
      return await handle.jsm.streams.info(handle.stream);
    } catch (error) {
      if (!isStreamNotFound(error)) throw error;
      if (Date.now() - since >= MISSING_FOR) {
        throw new ReplicaMismatchError(`stream ${handle.stream} does not exist (deleted?)`, {
          cause: error,
        });
      }
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}

/**
 * The stream's extent, checked to be gap-free from sequence 1: a stream whose
 * messages were deleted or purged no longer holds the whole log.
 *
 * @throws `WAL_REPLICA_MISMATCH` for a stream with a gap, or one that no
 *   longer exists (see {@link streamInfo}).
 */
export async function streamExtent(handle: StreamHandle): Promise<StreamExtent> {
  const { state } = await streamInfo(handle);
  // Empty: never written. Otherwise every message from sequence 1 is there.
  const whole =
    state.messages === 0
      ? state.last_seq === 0
      : state.first_seq === 1 && state.messages === state.last_seq;
  if (!whole) {
    throw new ReplicaMismatchError(
      `stream ${handle.stream} has a gap: ${state.messages} messages between sequences ${state.first_seq} and ${state.last_seq}`,
      { sequence: state.first_seq },
    );
  }
  return { lastSeq: state.last_seq };
}

/** The message at `seq`. @throws `WAL_REPLICA_MISMATCH` when it is missing. */
export async function messageAt(handle: StreamHandle, seq: number): Promise<StoredMsg> {
  const message = await handle.jsm.streams.getMessage(handle.stream, { seq });
  if (message === null) {
    throw new ReplicaMismatchError(`stream ${handle.stream} has no message ${seq}: a gap`, {
      sequence: seq,
    });
  }
  return message;
}

/**
 * The last message at or before `seq` that is not a seal, with its
 * sequence, or `undefined` when there is none (seals carry no position).
 *
 * @throws `WAL_REPLICA_MISMATCH` for a gap or a bad seal.
 */
export async function lastPlaced(
  handle: StreamHandle,
  seq: number,
): Promise<{ seq: number; message: StoredMsg } | undefined> {
  for (let at = seq; at > 0; at--) {
    const message = await messageAt(handle, at);
    if (readSeal(message.header, message.data.length, at) === undefined)
      return { seq: at, message };
  }
  return undefined;
}

/** Closes the connection when the handle opened it. */
export async function closeStream(handle: StreamHandle): Promise<void> {
  if (handle.owned) await handle.nc.close();
}
