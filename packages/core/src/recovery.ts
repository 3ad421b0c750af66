/**
 * Recovery at open (docs/FORMAT.md §8): opening the store a source names,
 * validating the log's metadata, the recovery scan, cutting a torn tail and
 * making what was recovered durable before the log accepts appends.
 * Internal to @wal/core: `Wal.open` and `reopen` call {@link recover}.
 */
import { CorruptionError, invalidArgType, outOfRange } from '@wal/errors';
import { FileStore, type MetaValue, SegmentedStore, type Store, type StoreMeta } from '@wal/store';
import { BoundaryIndex } from './boundary-index.js';
import { type Damage, MAX_FRAME_LENGTH } from './frame.js';
import {
  APPLICATION_KEY,
  checkApplication,
  checkFormat,
  DURABLE_HINT_KEY,
  FORMAT_KEY,
  FORMAT_VERSION,
  META_CUT_TO,
  META_MAX_RECORD,
  META_TRUNCATIONS,
  metaCutTo,
  metaInteger,
  metaTruncations,
} from './meta.js';
import {
  DEFAULT_MAX_RECORD_SIZE,
  type ResolvedOptions,
  WAL_DB_MAX_RECORD_SIZE,
} from './options.js';
import type { StoredRecord } from './record.js';
import { scan } from './scan.js';
import type { LogState } from './state.js';

/** Where a log lives: a path (opened with the layout option), a store, or a function opening one. */
export type WalSource = string | Store | (() => Promise<Store>);

/** What recovery found at open, and what it did (or, read-only, would do). */
export interface RecoveryReport {
  /** First live offset. */
  readonly head: number;
  /** Where the log resumes: the end of the last intact record (or the resume offset after a failure). */
  readonly end: number;
  /** Intact records between `head` and the scan's end. */
  readonly records: number;
  /** Length of the store before recovery. */
  readonly storeLength: number;
  /**
   * The damage that ended the log: a torn write (or, above the durable hint,
   * any damage) at `end`. Undefined when the log ends cleanly, including
   * when only zeros follow its last record (see `zeroTail`).
   */
  readonly tear: Damage | undefined;
  /**
   * Bytes after `end`, up to the last non-zero byte, that recovery cut
   * (read-only: would cut): the torn write, anything after it, records
   * dropped by a `reopen()` after a failure, and records past a cut of the
   * log's end in progress (`wal.cutTo`: a crash halfway through a
   * `truncateAfter`, or read-only, a writer cutting now). 0 when only zeros follow `end`.
   */
  readonly tornBytes: number;
  /**
   * Zero bytes ending the store after `end` (and after the torn bytes) that
   * recovery cut (read-only: would cut): space the log writes ahead of its
   * records (`preallocate`, docs/FORMAT.md §8.4), left by a crash. Not
   * damage. `end + tornBytes + zeroTail` is `storeLength`.
   */
  readonly zeroTail: number;
  /**
   * Intact frames found after the tear and dropped with it. Expected after a
   * power loss (writeback has no order); shown so an operator can tell.
   */
  readonly droppedFrames: number;
  /** Damaged records stepped over under the `skip` policy. */
  readonly skipped: readonly Damage[];
  /** The durable hint read from the metadata (below it, damage is corruption). */
  readonly durableHint: number;
  /** True when recovery changed the log (cut bytes). Always false read-only. */
  readonly truncated: boolean;
}

/** Whether `value` looks like a {@link Store} (the methods a log calls first). */
export function isStore(value: unknown): value is Store {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Store).write === 'function' &&
    typeof (value as Store).readMeta === 'function'
  );
}

/** Opens (or takes) the store `source` names, as `options` say (FORMAT.md §8 step 1). */
export async function openStore(source: WalSource, options: ResolvedOptions): Promise<Store> {
  if (typeof source === 'string') {
    // Before the store changes anything on disk: a format this code cannot
    // read, or another program's log, is refused as it is.
    const checkMeta = (meta: StoreMeta): void => {
      checkFormat(meta);
      checkApplication(meta, options.application, source);
    };
    const common = {
      ...(options.fs === undefined ? {} : { fs: options.fs }),
      ...(options.mode === undefined ? {} : { mode: options.mode }),
    };
    if (options.layout === 'file') {
      return FileStore.open(source, {
        ...common,
        readOnly: options.readOnly,
        adopt: options.adopt,
        checkMeta,
      });
    }
    return SegmentedStore.open(source, {
      ...common,
      readOnly: options.readOnly,
      checkMeta,
      ...(options.segmentSize === undefined ? {} : { segmentSize: options.segmentSize }),
      ...(options.maxOpenSegments === undefined
        ? {}
        : { maxOpenSegments: options.maxOpenSegments }),
    });
  }
  if (typeof source === 'function') {
    const store: unknown = await source();
    if (!isStore(store)) throw invalidArgType('source()', 'to resolve with a Store', store);
    return store;
  }
  if (isStore(source)) return source;
  throw invalidArgType('source', 'a path, a Store or a function resolving with a Store', source);
}

/** What {@link recover} found: the state a log starts from. */
export interface Recovered {
  readonly index: BoundaryIndex;
  readonly maxRecordSize: number;
  /** Where the log resumes. */
  readonly end: number;
  /** The durable hint as persisted now. */
  readonly hint: number;
  /** Offsets and claimed lengths of damaged records stepped over by the skip policy. */
  readonly skipped: Map<number, number>;
  readonly recovery: RecoveryReport;
  /** Cuts of the log's end made on this log (`wal.truncations`), this recovery's included. */
  readonly truncations: number;
  /** The application name the log records (`WalOptions.application`), if any. */
  readonly application: string | undefined;
}

/**
 * Recovers the log in `store` (FORMAT.md §8 steps 2–7), resuming at most at
 * `resumeAt` (a `reopen()` after a failure). Writable: cuts what follows the
 * end, syncs, and brings the metadata up to date; read-only: changes nothing.
 * Rejects as `Wal.open` documents; the caller closes the store then.
 */
export async function recover(
  store: Store,
  options: ResolvedOptions,
  resumeAt: number | undefined,
  where: string,
): Promise<Recovered> {
  let meta = await store.readMeta();
  let { format, recorded, persistedMax } = checkMeta(meta, options, where);
  for (let attempt = 1; durableHintOf(meta, store.head) > store.length; attempt++) {
    // A read-only open took the metadata before a writer's truncateAfter
    // lowered the hint, and the length after its cut: read both again.
    if (options.readOnly && store.refresh !== undefined && attempt < READ_ONLY_ATTEMPTS) {
      await store.refresh();
      const again = await store.readMeta();
      if (!sameMeta(again, meta)) {
        meta = again;
        ({ format, recorded, persistedMax } = checkMeta(meta, options, where));
        continue;
      }
    }
    throw new CorruptionError(
      `the log ends at ${store.length}, below its durable hint ${durableHintOf(meta, store.head)}: durable records are missing`,
      { offset: store.length },
    );
  }
  const asked = options.application;
  const askedMax = options.maxRecordSize;
  const head = store.head;
  // A new log: nothing of ours or of wal-db's in it yet.
  const created = format === undefined && store.length === 0 && head === 0;
  // A log with records or a head but no metadata of ours was written by
  // wal-db 1.x: its records may be as large as wal-db's own default allows.
  const adopted = format === undefined && (store.length > 0 || head > 0);
  const maxRecordSize =
    askedMax ?? persistedMax ?? (adopted ? WAL_DB_MAX_RECORD_SIZE : DEFAULT_MAX_RECORD_SIZE);
  const storeLength = store.length;
  const hint = durableHintOf(meta, head);
  // A cut of the log's end that was in progress (a crash, or a writer
  // cutting now): the log ends there at most.
  const cutTo = metaCutTo(meta, hint);
  let truncations = metaTruncations(meta);
  const index = new BoundaryIndex(options.indexInterval);
  index.note(head);
  const replay = options.replay;
  const found = await scan(store, {
    maxRecordSize,
    durableHint: hint,
    policy: options.recovery,
    boundaries: index,
    ...(replay === undefined
      ? {}
      : {
          // Records past a cut in progress are dropped: never replayed.
          onRecords:
            cutTo === undefined
              ? replay
              : (records: StoredRecord[]) => {
                  const kept = records.filter((record) => record.lsn < cutTo);
                  return kept.length === 0 ? undefined : replay(kept);
                },
          reuseBuffers: options.replayReusesBuffers,
        }),
  });
  const skipped = new Map<number, number>();
  for (const damage of found.skipped) skipped.set(damage.offset, damage.claimedLength ?? 0);
  let end = found.end;
  const resume = Math.min(resumeAt ?? end, cutTo ?? end);
  if (resume < end) {
    end = Math.max(resume, head);
    index.truncateAfter(end);
    for (const offset of skipped.keys()) if (offset >= end) skipped.delete(offset);
  }
  const cut = storeLength - end;
  /** Bytes other than zeros that the cut drops: records a follower may have read. */
  const torn = cut - found.zeroTail;
  /** The durable hint as persisted now. */
  let persistedHint = hint;
  if (!options.readOnly) {
    if (cut > 0) {
      const before: Record<string, MetaValue> = {};
      if (hint > end) before[DURABLE_HINT_KEY] = end;
      if (torn > 0) {
        // Counted, and marked in progress, before the cut (FORMAT.md §8
        // step 8): offsets a follower read will be written again.
        truncations++;
        before[META_TRUNCATIONS] = truncations;
        before[META_CUT_TO] = end;
      }
      if (Object.keys(before).length > 0) {
        await store.updateMeta(before);
        persistedHint = Math.min(hint, end);
      }
      await store.truncate(end);
    }
    // After a process crash the recovered bytes may be in the page cache
    // only: make them (and the directory) durable before treating them so.
    await store.sync();
    const update: Record<string, MetaValue | undefined> = {};
    // The cut is done (this one, or one a crash interrupted): before any
    // append, so that followers read on.
    if (meta[META_CUT_TO] !== undefined || torn > 0) update[META_CUT_TO] = undefined;
    if (format === undefined) update[FORMAT_KEY] = FORMAT_VERSION;
    if (created && asked !== undefined) update[APPLICATION_KEY] = asked;
    if (persistedMax !== maxRecordSize) update[META_MAX_RECORD] = maxRecordSize;
    if (persistedHint !== end) update[DURABLE_HINT_KEY] = end;
    if (Object.keys(update).length > 0) await store.updateMeta(update);
    persistedHint = end;
  }
  const recovery: RecoveryReport = Object.freeze({
    head,
    end,
    records: found.records,
    storeLength,
    tear: found.tear,
    tornBytes: torn,
    zeroTail: found.zeroTail,
    droppedFrames: found.droppedFrames,
    skipped: Object.freeze([...found.skipped]),
    durableHint: hint,
    truncated: !options.readOnly && cut > 0,
  });
  return {
    index,
    maxRecordSize,
    end,
    hint: persistedHint,
    skipped,
    recovery,
    truncations,
    application: recorded ?? (created && !options.readOnly ? asked : undefined),
  };
}

/**
 * `Wal.refresh` of a read-only log (docs/FORMAT.md §8.1): re-reads the store
 * (records another process appended, a truncation it made) and extends the
 * readable end through the intact records found (never past a cut the
 * writer is making, `wal.cutTo`); resolves with the new end. A truncation by
 * the writer (its head moved, its log shrank, its count of cuts changed, or
 * it is cutting below the readable end) starts the scan over from its head.
 * The maximum record size follows the writer's when it raised it.
 */
export async function rescan(log: LogState): Promise<number> {
  const store = log.store;
  await store.refresh?.();
  let from = log.scannedEnd;
  const meta = await store.readMeta();
  const truncations = metaTruncations(meta);
  // A cut the writer is making: nothing at or past it is read.
  const cutTo = metaCutTo(meta, durableHintOf(meta, store.head));
  // The writer may have raised the maximum (a reopen with a larger one).
  const persistedMax = metaInteger(meta, META_MAX_RECORD, 1, MAX_FRAME_LENGTH);
  if (persistedMax !== undefined && persistedMax > log.maxRecordSize) {
    log.maxRecordSize = persistedMax;
  }
  if (
    store.head > log.head ||
    store.length < log.scannedEnd ||
    truncations !== log.cutCount ||
    (cutTo !== undefined && cutTo < log.scannedEnd)
  ) {
    log.cutCount = truncations;
    // The writer truncated: start over from its head.
    from = store.head;
    log.head = store.head;
    log.index.truncateBefore(store.head);
    log.index.truncateAfter(from);
    log.cuts.push(from);
    log.locator.forgetAbove();
  }
  const found = await scan(store, {
    from,
    ...(cutTo === undefined ? {} : { end: Math.max(cutTo, from) }),
    maxRecordSize: log.maxRecordSize,
    durableHint: 0,
    policy: 'strict',
    boundaries: log.index,
  });
  log.scannedEnd = found.end;
  log.tail = found.end;
  return found.end;
}

/**
 * Validates the log's metadata (FORMAT.md §5.2) against `options`: its format
 * version, application name and maximum record size.
 */
function checkMeta(
  meta: StoreMeta,
  options: ResolvedOptions,
  where: string,
): { format: number | undefined; recorded: string | undefined; persistedMax: number | undefined } {
  const format = checkFormat(meta);
  const recorded = checkApplication(meta, options.application, where);
  const persistedMax = metaInteger(meta, META_MAX_RECORD, 1, MAX_FRAME_LENGTH);
  const askedMax = options.maxRecordSize;
  if (askedMax !== undefined && persistedMax !== undefined && askedMax < persistedMax) {
    throw outOfRange(
      'options.maxRecordSize',
      `>= the log's persisted maximum record size (${persistedMax}); lowering it could make records unreadable`,
      askedMax,
    );
  }
  return { format, recorded, persistedMax };
}

/** How many times a read-only open reads the metadata and the length again when they disagree. */
const READ_ONLY_ATTEMPTS = 4;

/** The durable hint `meta` records, or `head` when it records none. */
function durableHintOf(meta: StoreMeta, head: number): number {
  return metaInteger(meta, DURABLE_HINT_KEY, 0, Number.MAX_SAFE_INTEGER) ?? head;
}

/** Whether two metadata maps hold the same keys and values. */
function sameMeta(a: StoreMeta, b: StoreMeta): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((key) => a[key] === b[key]);
}
