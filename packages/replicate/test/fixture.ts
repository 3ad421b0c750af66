/**
 * Shared pieces of the replication tests: a cluster per test file, temporary
 * log directories, and readers of a stream and of a log's bytes.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type JetStreamManager, jetstreamManager } from '@nats-io/jetstream';
import { connect, type Msg, type NatsConnection } from '@nats-io/transport-node';
import { Wal } from '@wal/core';
import { Replicator } from '@wal/replicate';
import { type ClusterOptions, NatsCluster } from '@wal/replicate/testing';
import { MemoryStore } from '@wal/store';

/** Starts a cluster before the file's tests and stops it after them (also on failure). */
export function useCluster(options: ClusterOptions = {}): {
  cluster: () => NatsCluster;
  nc: () => NatsConnection;
  dir: () => Promise<string>;
} {
  let cluster: NatsCluster | undefined;
  let nc: NatsConnection | undefined;
  const dirs: string[] = [];
  before(async function () {
    this.timeout(60_000);
    cluster = await NatsCluster.start(options);
    nc = await connect(cluster.connectOptions());
  });
  after(async function () {
    this.timeout(30_000);
    await nc?.close();
    await cluster?.stop();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });
  return {
    cluster: () => cluster!,
    nc: () => nc!,
    dir: async () => {
      const d = await mkdtemp(join(tmpdir(), 'wal-repl-'));
      dirs.push(d);
      return d;
    },
  };
}

let streams = 0;
/** A stream name not used before in this process. */
export function streamName(): string {
  return `log-${process.pid}-${++streams}`;
}

/** A writer: a log opened at `path` and a replicator shipping it to a new stream. */
export async function writer(nats: NatsConnection, path: string) {
  const wal = await Wal.open(path);
  const stream = streamName();
  const replicator = await Replicator.attach(wal, { nats, stream });
  return { path, wal, stream, replicator };
}

/** A promise and the function that resolves it: a step a test holds until it fires it. */
export function signal(): { readonly promise: Promise<void>; readonly fire: () => void } {
  let fire = () => {};
  const promise = new Promise<void>((resolve) => {
    fire = resolve;
  });
  return { promise, fire };
}

/**
 * Settles like `promise`, or rejects after `ms` naming `what`: a promise
 * that never settles fails the test instead of hanging it.
 */
export async function within<T>(what: string, promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** One stored message of a stream, as the tests look at it. */
export interface Stored {
  readonly seq: number;
  readonly lsn: number;
  readonly part: number;
  readonly size: number;
  /**
   * The LSN past the message's last byte of log: a run's end, or the end of
   * the part's bytes within its record's frame (past the frame's header).
   */
  readonly end: number;
  /** Records in the message: a run's count, 0 for a part, a seal or a fence. */
  readonly count: number;
  /** LSNs of the records starting in the message (a run's, or a first part's). */
  readonly starts: number[];
}

/**
 * Every message of `stream`, by direct reads; a request timing out (the
 * meta leader being elected again after a server restart, on a loaded
 * machine) is retried for up to a minute.
 */
export async function storedMessages(nc: NatsConnection, stream: string): Promise<Stored[]> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      return await readStored(nc, stream);
    } catch (error) {
      if ((error as Error).name !== 'TimeoutError' || Date.now() > deadline) throw error;
      await sleep(500);
    }
  }
}

async function readStored(nc: NatsConnection, stream: string): Promise<Stored[]> {
  // A generous timeout: right after a server restart the meta leader may be
  // re-elected, and a loaded machine answers slowly.
  const jsm = await jetstreamManager(nc, { timeout: 15_000 });
  const { state } = await jsm.streams.info(stream);
  const out: Stored[] = [];
  for (let seq = state.first_seq; seq <= state.last_seq && state.messages > 0; seq++) {
    const m = await jsm.streams.getMessage(stream, { seq });
    assert.ok(m !== null, `message ${seq}`);
    const lsn = Number(m.header.get('Wal-Lsn'));
    const count = Number(m.header.get('Wal-Count'));
    const part = Number(m.header.get('Wal-Part'));
    const starts: number[] = [];
    if (count > 0) {
      // A run: the frames of whole records, each `[crc u32][length u32]` then the payload.
      const view = new DataView(m.data.buffer, m.data.byteOffset, m.data.length);
      for (let at = 0; at < m.data.length; at += 8 + view.getUint32(at + 4, true)) {
        starts.push(lsn + at);
      }
    } else if (part === 0) {
      starts.push(lsn);
    }
    const end = count > 0 ? lsn + m.data.length : lsn + 8 + part + m.data.length;
    out.push({ seq, lsn, part, size: m.data.length, end, count: count || 0, starts });
  }
  return out;
}

/** Every record of the log at `path` as [lsn, payload] pairs, and its bytes from its head. */
export async function logContents(
  path: string,
): Promise<{ records: [number, Uint8Array][]; bytes: Uint8Array; head: number; tail: number }> {
  const wal = await Wal.open(path);
  try {
    const records: [number, Uint8Array][] = [];
    for await (const r of wal.iterate()) records.push([r.lsn, r.payload]);
    const bytes = await wal.store.read(wal.head, wal.tail - wal.head);
    return { records, bytes, head: wal.head, tail: wal.tail };
  } finally {
    await wal.close();
  }
}

export { payload } from './fixture-bytes.js';

/** A store whose fdatasync can be held back: records are written, not durable. */
export class HeldSync extends MemoryStore {
  hold: Promise<void> | undefined;
  /** Calls of `sync()` started and not yet finished. */
  syncing = 0;
  override async sync(): Promise<void> {
    this.syncing++;
    try {
      await this.hold;
      return await super.sync();
    } finally {
      this.syncing--;
    }
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` every 50 ms until it holds; fails after `ms`. */
export async function until(what: string, check: () => Promise<boolean> | boolean, ms = 20_000) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(50);
  }
}

let probes = 0;
/**
 * Waits until the cluster can place a stream of `replicas` replicas: right
 * after a server restarted, the servers may still count it offline ("no
 * suitable peers for placement"), and the JetStream API may not answer at
 * all for a while (a meta leader being elected again): every request,
 * also the one `jetstreamManager()` makes, is part of the wait.
 */
export async function untilPlaceable(nc: NatsConnection, replicas: number): Promise<void> {
  const name = `probe-${process.pid}-${++probes}`;
  let jsm: JetStreamManager | undefined;
  await until(
    `a stream of ${replicas} replicas can be placed`,
    async () => {
      try {
        jsm ??= await jetstreamManager(nc);
        await jsm.streams.add({ name, subjects: [name], num_replicas: replicas });
        return true;
      } catch {
        return false;
      }
    },
    30_000,
  );
  await jsm!.streams.delete(name);
}

/** The bytes of an open log from its head to its tail. */
export async function logBytes(wal: Wal): Promise<Uint8Array> {
  return wal.store.read(wal.head, wal.tail - wal.head);
}

/** A test process the kill tests start, and its exit. */
export interface Child {
  readonly process: ChildProcess;
  readonly exited: Promise<unknown>;
}

/**
 * Starts the compiled test script `script` (`writer-child`,
 * `follower-child`) on `path`, `stream` and the cluster's servers, with the
 * cluster's password in its environment, and hands each line it prints to
 * `line`. The kill tests SIGKILL it.
 */
export function startChild(
  script: string,
  cluster: NatsCluster,
  path: string,
  stream: string,
  line: (text: string) => void,
): Child {
  const file = fileURLToPath(new URL(`./${script}.js`, import.meta.url));
  const child = spawn(process.execPath, [file, path, stream, cluster.servers.join(',')], {
    env: { ...process.env, WAL_TEST_PASS: cluster.password },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  let buffer = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    const lines = buffer.split('\n');
    buffer = lines.pop()!;
    for (const text of lines) line(text);
  });
  return { process: child, exited };
}

/** What a test does with a request sent through an {@link interceptable} connection. */
export type OnRequest = (subject: string, forward: () => Promise<Msg>) => Promise<Msg>;

/**
 * `nc` as a replicator sees it, with every request (a JetStream publish, an
 * API call) passed to `control.onRequest` when set: it may hold the request
 * back, send it (`forward()`) and answer otherwise, e.g. lose its reply.
 * The connection stays the caller's.
 */
export function interceptable(nc: NatsConnection): {
  nc: NatsConnection;
  control: { onRequest: OnRequest | undefined };
} {
  const control: { onRequest: OnRequest | undefined } = { onRequest: undefined };
  const proxy = new Proxy(nc, {
    get(target, property) {
      if (property === 'request') {
        return (
          subject: string,
          ...rest: Parameters<NatsConnection['request']> extends [string, ...infer R] ? R : never
        ) => {
          const forward = () => target.request(subject, ...rest);
          return control.onRequest === undefined ? forward() : control.onRequest(subject, forward);
        };
      }
      const value = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { nc: proxy, control };
}
