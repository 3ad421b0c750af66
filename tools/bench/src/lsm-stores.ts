/**
 * The key-value stores `bench:lsm` compares, each behind one small interface
 * used the same way by every workload: @wal/lsm and classic-level through
 * the `abstract-level` API (one code path for both), lmdb-js and rocksdb
 * through their own APIs, and @wal/core's bare log for the durable writes.
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Wal } from '@wal/core';

/** The stores; `wal-core` (the bare log) only takes durable writes. */
export type StoreName =
  | 'wal-lsm'
  | 'wal-lsm-blocking'
  | 'classic-level'
  | 'lmdb'
  | 'rocksdb'
  | 'wal-core'
  | 'wal-core-blocking';
export const STORES: readonly StoreName[] = [
  'wal-lsm',
  'wal-lsm-blocking',
  'classic-level',
  'lmdb',
  'rocksdb',
];

export const STORE_LABELS: Readonly<Record<StoreName, string>> = {
  'wal-lsm': '@wal/lsm',
  'wal-lsm-blocking': '@wal/lsm, blockingSync',
  'classic-level': 'classic-level',
  lmdb: 'lmdb-js',
  rocksdb: 'rocksdb',
  'wal-core': '@wal/core (bare log)',
  'wal-core-blocking': '@wal/core (bare log), blockingSync',
};

/** What every workload needs of a store. Keys and values are never reused by the caller. */
export interface KvStore {
  /** Resolves once written (`sync`: once durable). */
  put(key: Uint8Array, value: Uint8Array, sync: boolean): Promise<unknown>;
  get(key: Uint8Array): Promise<Uint8Array | undefined>;
  /** Reads every entry in key order; counts them and their bytes. */
  scan(): Promise<{ entries: number; bytes: number }>;
  /** One iterator kept open for repeated seeks: each returns the first key ≥ `key`. */
  seeker(): Seeker;
  close(): Promise<void>;
}

export interface Seeker {
  seek(key: Uint8Array): Promise<Uint8Array | undefined>;
  close(): Promise<void>;
}

/** The settings every store is opened with (see the README). */
export interface StoreSettings {
  /** Bytes of the block cache (@wal/lsm, LevelDB, RocksDB); lmdb-js has none. */
  readonly cacheBytes: number;
  /** Memtable size of the LSM stores. */
  readonly writeBufferBytes: number;
  /** Where peers installed on demand live (`<dir>/peers`). */
  readonly peers: string;
}

// ---------------------------------------------------------------- abstract-level

type Entry = [Uint8Array, Uint8Array];

/** The part of the `abstract-level` 3 API the workloads use. */
interface AbstractLevel {
  open(): Promise<void>;
  put(key: Uint8Array, value: Uint8Array, options?: { sync?: boolean }): Promise<void>;
  get(key: Uint8Array): Promise<Uint8Array | undefined>;
  iterator(): AsyncIterable<Entry> & {
    seek(target: Uint8Array): void;
    next(): Promise<Entry | undefined>;
    close(): Promise<void>;
  };
  close(): Promise<void>;
}

type LevelConstructor = new (location: string, options: Record<string, unknown>) => AbstractLevel;

/** Binary keys and values: no encoding cost on either side. */
const VIEWS = { keyEncoding: 'view', valueEncoding: 'view' } as const;

async function levelStore(db: AbstractLevel): Promise<KvStore> {
  await db.open();
  return {
    put: (key, value, sync) => db.put(key, value, sync ? { sync: true } : undefined),
    get: (key) => db.get(key),
    async scan() {
      let entries = 0;
      let bytes = 0;
      for await (const [key, value] of db.iterator()) {
        entries++;
        bytes += key.length + value.length;
      }
      return { entries, bytes };
    },
    seeker() {
      const iterator = db.iterator();
      return {
        async seek(key) {
          iterator.seek(key);
          return (await iterator.next())?.[0];
        },
        close: () => iterator.close(),
      };
    },
    close: () => db.close(),
  };
}

/** `LsmLevel` of @wal/lsm, or undefined while the package does not export it. */
export async function lsmLevelClass(): Promise<LevelConstructor | undefined> {
  const module = (await import('@wal/lsm')) as Record<string, unknown>;
  return module.LsmLevel as LevelConstructor | undefined;
}

/** `blockingSync`: the data log's writes and fdatasyncs on the event-loop thread (a single-writer program's choice). */
async function openWalLsm(
  dir: string,
  settings: StoreSettings,
  blockingSync: boolean,
): Promise<KvStore> {
  const LsmLevel = await lsmLevelClass();
  if (LsmLevel === undefined) throw new Error('@wal/lsm exports no LsmLevel');
  return levelStore(
    new LsmLevel(join(dir, 'lsm'), {
      ...VIEWS,
      blockCacheSize: settings.cacheBytes,
      writeBufferSize: settings.writeBufferBytes,
      blockingSync,
    }),
  );
}

async function openClassicLevel(dir: string, settings: StoreSettings): Promise<KvStore> {
  const { ClassicLevel } = await import('classic-level');
  return levelStore(
    new (ClassicLevel as unknown as LevelConstructor)(join(dir, 'level'), {
      ...VIEWS,
      cacheSize: settings.cacheBytes,
      writeBufferSize: settings.writeBufferBytes,
    }),
  );
}

// ---------------------------------------------------------------- lmdb-js

/**
 * lmdb-js. Opened for durable writes with `separateFlushed` (a put's own
 * promise resolves once its commit is visible, its `flushed` once synced);
 * otherwise with `noSync`: commits are written, not synced, LevelDB's
 * `sync: false` (lmdb-js's default syncs every commit in the background,
 * which makes one awaited put at a time cost an fsync each).
 */
async function openLmdb(dir: string, durable: boolean): Promise<KvStore> {
  const { open } = await import('lmdb');
  const db = open<Uint8Array, Uint8Array>({
    path: join(dir, 'lmdb'),
    encoding: 'binary',
    keyEncoding: 'binary',
    ...(durable ? { separateFlushed: true } : { noSync: true }),
  } as Parameters<typeof open>[0]) as unknown as {
    put(key: Uint8Array, value: Uint8Array): Promise<boolean> & { flushed?: Promise<unknown> };
    get(key: Uint8Array): Uint8Array | undefined;
    getRange(options?: {
      start?: Uint8Array;
      limit?: number;
    }): Iterable<{ key: Uint8Array; value: Uint8Array }>;
    close(): Promise<void>;
  };
  return {
    put(key, value, sync) {
      const committed = db.put(key, value);
      return sync ? (committed.flushed ?? committed) : committed;
    },
    get: async (key) => db.get(key),
    async scan() {
      let entries = 0;
      let bytes = 0;
      for (const { key, value } of db.getRange()) {
        entries++;
        bytes += key.length + value.length;
      }
      return { entries, bytes };
    },
    seeker: () => ({
      async seek(key) {
        for (const entry of db.getRange({ start: key, limit: 1 })) return entry.key;
        return undefined;
      },
      close: async () => {},
    }),
    close: () => db.close(),
  };
}

// ---------------------------------------------------------------- rocksdb

/** The `rocksdb` package installed under `peers` on demand (the Level binding; callbacks). */
export const ROCKSDB = 'rocksdb@5.2.1';

type Callback<T = void> = (error: Error | null | undefined, result?: T) => void;
interface RocksIterator {
  seek(target: Uint8Array): void;
  next(callback: (error: Error | null | undefined, key?: Buffer, value?: Buffer) => void): void;
  end(callback: Callback): void;
}
interface RocksDb {
  open(options: Record<string, unknown>, callback: Callback): void;
  put(key: Uint8Array, value: Uint8Array, options: { sync: boolean }, callback: Callback): void;
  get(key: Uint8Array, options: { asBuffer: true }, callback: Callback<Buffer>): void;
  iterator(options: { keyAsBuffer: true; valueAsBuffer: true }): RocksIterator;
  close(callback: Callback): void;
}

/** The binding takes a Buffer as bytes (other objects as their string form): a view, no copy. */
const buffer = (bytes: Uint8Array): Buffer =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

const settle =
  <T>(resolve: (value: T) => void, reject: (error: Error) => void) =>
  (error: Error | null | undefined, value?: T): void =>
    error ? reject(error) : resolve(value as T);

function nextEntry(iterator: RocksIterator): Promise<Entry | undefined> {
  return new Promise((resolve, reject) =>
    iterator.next((error, key, value) => {
      if (error) reject(error);
      else resolve(key === undefined || value === undefined ? undefined : [key, value]);
    }),
  );
}

async function openRocksDb(dir: string, settings: StoreSettings): Promise<KvStore> {
  const require = createRequire(join(settings.peers, 'package.json'));
  const RocksDB = require('rocksdb') as (location: string) => RocksDb;
  const db = RocksDB(join(dir, 'rocksdb'));
  await new Promise<void>((resolve, reject) =>
    db.open(
      { cacheSize: settings.cacheBytes, writeBufferSize: settings.writeBufferBytes },
      settle(resolve, reject),
    ),
  );
  const BUFFERS = { keyAsBuffer: true, valueAsBuffer: true } as const;
  const end = (iterator: RocksIterator) =>
    new Promise<void>((resolve, reject) => iterator.end(settle(resolve, reject)));
  return {
    put: (key, value, sync) =>
      new Promise<void>((resolve, reject) =>
        db.put(buffer(key), buffer(value), { sync }, settle(resolve, reject)),
      ),
    get: (key) =>
      new Promise((resolve, reject) =>
        db.get(buffer(key), { asBuffer: true }, (error, value) => {
          if (!error) resolve(value);
          else if (/NotFound/i.test(error.message)) resolve(undefined);
          else reject(error);
        }),
      ),
    async scan() {
      const iterator = db.iterator(BUFFERS);
      let entries = 0;
      let bytes = 0;
      for (let entry = await nextEntry(iterator); entry; entry = await nextEntry(iterator)) {
        entries++;
        bytes += entry[0].length + entry[1].length;
      }
      await end(iterator);
      return { entries, bytes };
    },
    seeker() {
      const iterator = db.iterator(BUFFERS);
      return {
        async seek(key) {
          iterator.seek(buffer(key));
          return (await nextEntry(iterator))?.[0];
        },
        close: () => end(iterator),
      };
    },
    close: () => new Promise<void>((resolve, reject) => db.close(settle(resolve, reject))),
  };
}

// ---------------------------------------------------------------- @wal/core

/** @wal/core's log: each put appends key ‖ value as one record; nothing to read back. */
async function openWalCore(dir: string, blockingSync: boolean): Promise<KvStore> {
  const wal = await Wal.open(join(dir, 'wal'), { blockingSync });
  const unsupported = (): never => {
    throw new Error('the bare log only takes durable writes in this benchmark');
  };
  return {
    put(key, value, sync) {
      const record = new Uint8Array(key.length + value.length);
      record.set(key);
      record.set(value, key.length);
      return wal.append(record, { wait: sync ? 'durable' : 'written' });
    },
    get: unsupported,
    scan: unsupported,
    seeker: unsupported,
    close: () => wal.close(),
  };
}

/** Opens (or creates) `store` in `dir`; `durable` when it will take durable writes. */
export function openStore(
  store: StoreName,
  dir: string,
  settings: StoreSettings,
  durable: boolean,
): Promise<KvStore> {
  switch (store) {
    case 'wal-lsm':
      return openWalLsm(dir, settings, false);
    case 'wal-lsm-blocking':
      return openWalLsm(dir, settings, true);
    case 'classic-level':
      return openClassicLevel(dir, settings);
    case 'lmdb':
      return openLmdb(dir, durable);
    case 'rocksdb':
      return openRocksDb(dir, settings);
    case 'wal-core':
      return openWalCore(dir, false);
    case 'wal-core-blocking':
      return openWalCore(dir, true);
  }
}
