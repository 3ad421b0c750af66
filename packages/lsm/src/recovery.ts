/**
 * Open and recovery (docs/LSM-FORMAT.md §9): the directory claimed and
 * locked, the manifest replayed, the live tables opened, the data log
 * recovered and replayed into a memtable, orphans deleted.
 */
import { dirname, join } from 'node:path';
import { Wal } from '@wal/core';
import { CorruptionError } from '@wal/errors';
import type { FsLock } from '@wal/store';
import { decodeBatch, RecordSlab } from './batch.js';
import { KIND_RANGE_DELETE, Malformed } from './coding.js';
import {
  claimDirectory,
  removeOrphans,
  survey,
  syncDirectory,
  syncMarker,
  writeMarker,
} from './directory.js';
import { LOCK_NAME, MANIFEST_DIR, tablePath, WAL_DIR } from './files.js';
import {
  applyEdit,
  decodeEdit,
  emptyState,
  encodeEdit,
  snapshotEdit,
  type VersionState,
} from './manifest.js';
import { Memtable } from './memtable.js';
import type { ResolvedOptions } from './options.js';
import { Table } from './table.js';
import { LiveTable } from './version.js';

const noop = (): void => {};

/**
 * The application names the store's two logs record (@wal/core's
 * `application` option, docs/LSM-FORMAT.md §7 and §8): another program opening
 * one with its own name is refused, and so is the store opening a log
 * that records another name.
 */
const WAL_APPLICATION = '@wal/lsm';
const MANIFEST_APPLICATION = '@wal/lsm manifest';
/** @wal/core `stagingLimit` of the manifest log (its smallest): 16 KiB staging chunks. */
const MANIFEST_STAGING_LIMIT = 64 * 1024;

/** What {@link recover} opened: everything a store runs on. */
export interface Recovered {
  readonly lock: FsLock;
  readonly manifest: Wal;
  readonly wal: Wal;
  readonly state: VersionState;
  readonly tables: LiveTable[];
  readonly memtable: Memtable;
}

/**
 * Opens the store at `path` (§9). Rejects as `Lsm.open` documents; nothing
 * stays open or locked on rejection.
 */
export async function recover(path: string, options: ResolvedOptions): Promise<Recovered> {
  const { fs, cache, logOptions } = options;
  const created = (await claimDirectory(fs, path)) === 'created';
  let lock: FsLock | undefined;
  let manifest: Wal | undefined;
  let wal: Wal | undefined;
  const tables: LiveTable[] = [];
  try {
    lock = await fs.lock(join(path, LOCK_NAME));
    // Checked again under the lock: another opener may have raced us.
    const claim = await claimDirectory(fs, path);
    // A process killed during an earlier open may have created the directory
    // and never fsynced its parent: made durable before anything is
    // acknowledged, as when this open creates it (§9 step 2).
    if (!created) await syncDirectory(fs, dirname(path));
    const fresh = claim !== 'store';
    // A marker found in place may be one a killed process wrote and never
    // synced: made durable too, or a power loss could leave a store whose
    // marker is cut short, refused as not ours.
    if (fresh) await writeMarker(fs, path);
    else await syncMarker(fs, path);
    const found = fresh ? undefined : await survey(fs, path);
    if (found !== undefined && !found.manifest && (found.wal || found.tables > 0)) {
      throw new CorruptionError(
        `store ${path}: the manifest ${join(path, MANIFEST_DIR)} is missing, yet the store holds ${found.wal ? 'a data log' : `${found.tables} table file(s)`}; nothing was changed`,
      );
    }

    const state = emptyState();
    let edits = 0;
    manifest = await Wal.open(join(path, MANIFEST_DIR), {
      ...logOptions,
      application: MANIFEST_APPLICATION,
      // One edit at a time, each awaited until durable: a small staging
      // (16 KiB chunks; a larger edit gets a buffer of its own size), not
      // the 1 MiB chunks kept for the data log's stream of records.
      stagingLimit: MANIFEST_STAGING_LIMIT,
      replay: (records) => {
        for (const record of records) {
          edits++;
          try {
            applyEdit(state, decodeEdit(record.payload));
          } catch (error) {
            if (!(error instanceof Malformed)) throw error;
            throw new CorruptionError(
              `manifest ${join(path, MANIFEST_DIR)} holds a damaged edit at offset ${record.lsn}: ${error.message}`,
              { offset: record.lsn },
            );
          }
        }
      },
    });
    if (found !== undefined && !found.wal && (edits > 0 || found.tables > 0)) {
      throw new CorruptionError(
        `store ${path}: the data log ${join(path, WAL_DIR)} is missing, yet ${edits > 0 ? 'the manifest holds edits' : `the store holds ${found.tables} table file(s)`}; nothing was changed`,
      );
    }
    for (const entry of state.tables.values()) {
      const table = await Table.open(fs, tablePath(path, entry.number), cache);
      tables.push(new LiveTable(entry, table));
    }

    const memtable = new Memtable();
    // The log keeps its options, this callback with them, for its whole life:
    // the callback reaches the memtable through `replayInto`, cleared once
    // open, so it does not hold the memtable (all its versions) past its flush.
    let replayInto: Memtable | undefined = memtable;
    // Each record applied is copied once, into slabs as a live write's
    // record is, and its entries keep views of that copy: views of the
    // payload would keep the log's whole read window alive. Cleared with
    // `replayInto`: the log keeps this callback for its whole life.
    let slab: RecordSlab | undefined = new RecordSlab();
    const walPath = join(path, WAL_DIR);
    wal = await Wal.open(walPath, {
      ...logOptions,
      application: WAL_APPLICATION,
      blockingSync: options.blockingSync,
      replay: (records) => {
        const into = replayInto!;
        for (const record of records) {
          let batch: ReturnType<typeof decodeBatch>;
          try {
            batch = decodeBatch(record.payload);
          } catch (error) {
            if (!(error instanceof Malformed)) throw error;
            throw new CorruptionError(
              `log ${walPath} holds a damaged batch at offset ${record.lsn}: ${error.message}`,
              { offset: record.lsn },
            );
          }
          if (batch.sequence <= state.lastSequence) continue;
          if (batch.sequence <= into.lastSequence) {
            throw new CorruptionError(
              `log ${walPath}: batch at offset ${record.lsn} reuses sequence ${batch.sequence}`,
              { offset: record.lsn },
            );
          }
          const payload = record.payload;
          const own = slab!.take(payload.length);
          own.set(payload);
          // The decoded views, moved from the payload onto its copy.
          const moved = (view: Uint8Array): Uint8Array => {
            const at = view.byteOffset - payload.byteOffset;
            return own.subarray(at, at + view.length);
          };
          for (let i = 0; i < batch.ops.length; i++) {
            const op = batch.ops[i]!;
            const key = moved(op.key);
            if (op.kind === KIND_RANGE_DELETE)
              into.deleteRange(key, moved(op.value!), batch.sequence + i);
            else
              into.insert(
                key,
                batch.sequence + i,
                op.kind,
                op.value === undefined ? undefined : moved(op.value),
              );
          }
        }
      },
    });
    replayInto = undefined;
    slab = undefined;
    // Only now that the manifest, the live tables and the data log opened:
    // a store refused for any of them is left as it was, orphans included.
    await removeOrphans(fs, path, state);
    // The first edit completes the store's creation (§9 step 7): from then
    // on a store always has a manifest edit and a data log, so a lost
    // manifest or data log is told from a creation cut short.
    if (edits === 0) await manifest.append(encodeEdit(snapshotEdit(state)), { wait: 'durable' });
    return { lock, manifest, wal, state, tables, memtable };
  } catch (error) {
    for (const { table } of tables) await table.close();
    await wal?.close().catch(noop);
    await manifest?.close().catch(noop);
    await lock?.release();
    throw error;
  }
}
