/**
 * A small key-value store on the write-ahead log: the teaching example behind
 * `pnpm demo`.
 *
 * The idea of every WAL-based store, in about 150 lines:
 *
 * - The state lives in memory (a `Map`). Every change is first appended to
 *   the log as a record; a change is acknowledged once its record is durable.
 * - On open, the state is rebuilt: load the last checkpoint (a snapshot of the
 *   map plus the LSN where the log continues), then replay the log from there.
 * - A checkpoint writes the snapshot atomically, then truncates the log before
 *   its LSN, so the log does not grow forever and reopening stays fast.
 *
 * On disk, in `dir`: `wal/` (the log's segment files, lock, head and metadata
 * files) and `snapshot.json` (the last checkpoint).
 */
import { open, readFile, rename } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { type Codec, type RecoveryReport, TypedWal, Wal } from '@wal/core';
import type { Fs } from '@wal/store';

/** A change to the map: the records of the log. */
export type KvRecord =
  | { readonly op: 'put'; readonly key: string; readonly value: string }
  | { readonly op: 'del'; readonly key: string };

/** Records as JSON text in UTF-8: easy to read in a hex dump, good enough here. */
const jsonCodec: Codec<KvRecord> = {
  encode: (record) => new TextEncoder().encode(JSON.stringify(record)),
  decode: (payload, lsn) => {
    const record = JSON.parse(new TextDecoder().decode(payload)) as KvRecord;
    if (record.op !== 'put' && record.op !== 'del') throw new Error(`bad record at LSN ${lsn}`);
    return record;
  },
};

/** What a checkpoint holds: the whole map, and the LSN where replay starts. */
interface Snapshot {
  readonly lsn: number;
  readonly entries: Array<[string, string]>;
}

/** Options of {@link KvStore.open}. */
export interface KvOptions {
  /** The file system under the log (default: the real one). The demo passes one that counts fsyncs. */
  readonly fs?: Fs;
  /** Bytes per log segment (default 1 MiB): a checkpoint deletes the segments before its LSN. */
  readonly segmentSize?: number;
}

/** What {@link KvStore.open} did to rebuild the map. */
export interface KvOpenReport {
  /** The log's own recovery report (torn tail cut, frames dropped, …). */
  readonly recovery: RecoveryReport;
  /** Entries loaded from the snapshot (0 without one). */
  readonly snapshotEntries: number;
  /** Where replay started: the snapshot's LSN, or the log's head. */
  readonly replayFrom: number;
  /** Records replayed from the log. */
  readonly replayed: number;
}

/** A string-to-string map made durable by a write-ahead log. Use it from one event loop. */
export class KvStore {
  readonly #map: Map<string, string>;
  readonly #log: TypedWal<KvRecord>;
  readonly #dir: string;
  /** Set while a checkpoint runs: checkpoints run one at a time (writes never wait for them). */
  #checkpointing: Promise<void> | undefined;
  /** What open did. */
  readonly opened: KvOpenReport;

  private constructor(
    dir: string,
    log: TypedWal<KvRecord>,
    map: Map<string, string>,
    opened: KvOpenReport,
  ) {
    this.#dir = dir;
    this.#log = log;
    this.#map = map;
    this.opened = opened;
  }

  /**
   * Opens (creating if needed) the store in `dir`: opens the log (which
   * recovers it and takes its exclusive lock; a second opener gets
   * `WAL_LOCKED`), loads the snapshot, replays the log from the snapshot's LSN.
   */
  static async open(dir: string, options: KvOptions = {}): Promise<KvStore> {
    const wal = await Wal.open(join(dir, 'wal'), {
      segmentSize: options.segmentSize ?? 1024 * 1024,
      ...(options.fs === undefined ? {} : { fs: options.fs }),
    });
    try {
      const log = new TypedWal(wal, jsonCodec);
      const snapshot = await readSnapshot(join(dir, 'snapshot.json'));
      const map = new Map(snapshot?.entries ?? []);
      const replayFrom = snapshot?.lsn ?? wal.head;
      let replayed = 0;
      for await (const { value } of log.iterate(replayFrom)) {
        apply(map, value);
        replayed++;
      }
      return new KvStore(dir, log, map, {
        recovery: wal.recovery,
        snapshotEntries: snapshot?.entries.length ?? 0,
        replayFrom,
        replayed,
      });
    } catch (error) {
      await wal.close().catch(() => {});
      throw error;
    }
  }

  /** The log under the store (for the demo's numbers; do not append to it). */
  get wal(): Wal {
    return this.#log.wal;
  }

  get size(): number {
    return this.#map.size;
  }

  get(key: string): string | undefined {
    return this.#map.get(key);
  }

  /** Sets `key` to `value`; resolves once the change is durable (survives a crash or power loss). */
  put(key: string, value: string): Promise<void> {
    return this.#write({ op: 'put', key, value });
  }

  /** Removes `key`; resolves once the change is durable. */
  del(key: string): Promise<void> {
    return this.#write({ op: 'del', key });
  }

  async #write(record: KvRecord): Promise<void> {
    // The log refuses appends (WAL_BUSY) while its staging memory is full:
    // wait for it to drain. A checkpoint running meanwhile refuses nothing.
    while (!this.wal.writable) await this.wal.drained();
    // The append hands out the LSN synchronously (or throws, changing
    // nothing), and the map changes in the same step, so the map always holds
    // exactly the records below the log's tail, in LSN order. A `get` may see
    // a change that is not durable yet; if the process dies first it may be
    // lost, but it was never acknowledged.
    const lsn = this.#log.append(record);
    apply(this.#map, record);
    await this.wal.waitFor(lsn, 'durable');
  }

  /**
   * Writes a snapshot of the map, then drops the log before it. Resolves with
   * the snapshot's LSN (the new head of the log).
   */
  async checkpoint(): Promise<number> {
    while (this.#checkpointing !== undefined) await this.#checkpointing;
    // Take the map and the tail in one synchronous step: they match exactly.
    const lsn = this.wal.tail;
    const snapshot: Snapshot = { lsn, entries: [...this.#map] };
    let done: () => void = () => {};
    this.#checkpointing = new Promise((resolve) => {
      done = resolve;
    });
    try {
      // The records below `lsn` must be durable before a snapshot that
      // points past them is: otherwise a crash could leave a snapshot whose
      // LSN is beyond the end of the recovered log.
      await this.wal.sync();
      await writeAtomically(join(this.#dir, 'snapshot.json'), JSON.stringify(snapshot));
      // Only now is the prefix of the log redundant. Writers go on
      // meanwhile: their records land after `lsn` and stay.
      await this.wal.truncateBefore(lsn);
    } finally {
      this.#checkpointing = undefined;
      done();
    }
    return lsn;
  }

  /** Closes the store: pending changes are made durable, the lock is released. */
  async close(): Promise<void> {
    while (this.#checkpointing !== undefined) await this.#checkpointing;
    await this.wal.close();
  }
}

function apply(map: Map<string, string>, record: KvRecord): void {
  if (record.op === 'put') map.set(record.key, record.value);
  else map.delete(record.key);
}

async function readSnapshot(path: string): Promise<Snapshot | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ENOENT') return undefined;
    throw error;
  }
  return JSON.parse(text) as Snapshot;
}

/**
 * Replaces `path` with `text` so that after a crash it holds the old text or
 * the new one, never a mix: write a temporary file, flush it, rename it over
 * `path`, then flush the directory (which makes the rename itself durable).
 */
async function writeAtomically(path: string, text: string): Promise<void> {
  const temp = `${path}.tmp`;
  const file = await open(temp, 'w');
  try {
    await file.writeFile(text, 'utf8');
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(temp, path);
  const dir = await open(dirname(path), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
