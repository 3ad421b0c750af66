/**
 * The Store contract: a flat, positional byte space `[head, length)` with a
 * small durable metadata map. Every @wal backend implements it and passes the
 * conformance suite in `@wal/store/testing`. The normative text is the package
 * README ("The Store contract"); this file is its type-level summary.
 */

/** A metadata value: JSON scalars only, so every backend can encode it. */
export type MetaValue = string | number | boolean;

/** The store's metadata map, as read. */
export type StoreMeta = Readonly<Record<string, MetaValue>>;

/** A metadata update: keys set to `undefined` are removed, others replaced. */
export type MetaUpdate = Readonly<Record<string, MetaValue | undefined>>;

/**
 * Metadata keys starting with this prefix belong to the backend (for example
 * `store.segmentSize`, `store.head`): a file backend persists them in the same
 * encoded map, but `readMeta()` never shows them and `updateMeta()` refuses
 * them (`ERR_INVALID_ARG_VALUE`).
 */
export const STORE_META_PREFIX = 'store.';

/** Largest encoded metadata map a store accepts (64 KiB). */
export const MAX_META_BYTES = 64 * 1024;

/**
 * What a backend supports. Tests and callers branch on this, never on the
 * backend's class.
 */
export interface StoreSupports {
  /**
   * `sync()`, `truncate()`, `truncateBefore()` and `updateMeta()` reach stable
   * storage: what they cover survives a power loss. False for `MemoryStore`.
   */
  readonly durable: boolean;
  /** Data and metadata outlive `close()`: reopening the same location finds them. */
  readonly persistent: boolean;
  /**
   * `truncateBefore()` gives storage back (whole segments). When false the head
   * is still recorded and honoured, but the space below it stays allocated.
   */
  readonly prefixReclaim: boolean;
  /**
   * Opening takes an exclusive lock; a second opener gets `WAL_LOCKED`. (A
   * read-only open, where a backend offers one, takes no lock.)
   */
  readonly locking: boolean;
}

/**
 * A flat positional byte space `[head, length)` plus a durable metadata map.
 *
 * Concurrency: `write`, `read`, `sync` and `updateMeta` may be called while
 * others are in flight (writes to overlapping ranges in flight at the same time
 * leave either's bytes). `truncate` and `truncateBefore` are exclusive: called
 * while any other operation is in flight they reject with `WAL_BUSY`, and any
 * operation called while they run rejects with `WAL_BUSY`.
 *
 * Errors: every method returns a promise and never throws synchronously.
 * Invalid arguments reject, before any I/O, with `TypeError` or `RangeError`
 * carrying a `code` (`ERR_INVALID_ARG_TYPE`, `ERR_OUT_OF_RANGE`);
 * every call after `close()` rejects with `WAL_CLOSED`; I/O failures reject
 * with `WAL_IO` / `WAL_NO_SPACE`. A failed fsync (of data, a directory, the
 * metadata or the head), durable write (see `writeDurable`) or cut of
 * stored bytes in `truncate` (the length on storage is then unknown) is latched:
 * that call and every later one rejects with `WAL_FAILED` whose `cause` is
 * the original failure, and so does a `sync`, `writeDurable` or
 * `updateMeta` still in flight then, even if its own fsync succeeds (the
 * second of two fsyncs of one file may succeed once the first reported the
 * write-back error). `close()` always
 * releases the lock and resources, even after a failure.
 */
export interface Store {
  /** What this backend supports. */
  readonly supports: StoreSupports;
  /** First live offset: the last offset passed to `truncateBefore` (0 when never). */
  readonly head: number;
  /** One past the last byte written (or the length set by `truncate`). */
  readonly length: number;
  /** True once `close()` was called. */
  readonly closed: boolean;
  /**
   * True for a read-only handle: it takes no lock and changes nothing in
   * storage; `write`, `sync`, `truncate`, `truncateBefore` and `updateMeta`
   * reject with `WAL_READ_ONLY` (after the `WAL_CLOSED` check). Optional:
   * a backend without read-only opens may leave it out (read as false).
   */
  readonly readOnly?: boolean;

  /**
   * Writes `bytes` at `offset` (`offset >= head`), extending `length` if needed;
   * a gap between the old length and `offset` reads as zeros. Resolves when the
   * OS has the bytes (a process crash keeps them; a power loss may not).
   * The caller does not touch `bytes` while the write is in flight and may
   * reuse the buffer once it settles: a store must copy what it keeps.
   */
  write(offset: number, bytes: Uint8Array): Promise<void>;

  /**
   * Reads `length` bytes from `offset` (`offset >= head`). The result is short
   * only when it reaches the end of the store (empty at or past `length`): a
   * short read is the torn-tail signal.
   */
  read(offset: number, length: number): Promise<Uint8Array>;

  /**
   * Reads into `into` the bytes `read(offset, into.length)` would return (a
   * gap as zeros: every byte up to the count is written) and resolves with
   * their count, short only at the end of the store. Lets a reader reuse its
   * buffers. Optional: a backend without it is read with `read`.
   */
  readInto?(offset: number, into: Uint8Array): Promise<number>;

  /**
   * Makes every write that had resolved when `sync` was called durable (for a
   * `durable` store: survives power loss). A failure is latched (`WAL_FAILED`);
   * a `sync` in flight when the store latches rejects with that failure.
   */
  sync(): Promise<void>;

  /**
   * `write`, durable when it resolves: after a power loss the bytes of
   * `[offset, offset + bytes.length)` read back as written, as if a `sync`
   * called after the write had resolved (for a store that is not `durable`,
   * exactly `write`). It need not make any other write durable: bytes
   * written earlier and not synced may or may not become durable with it
   * (callers must not rely on either). A failure of the durable write call
   * itself (an `O_DSYNC` write, or the fallback's fdatasync or directory
   * fsync) is latched (`WAL_FAILED`), as a failed `sync` is, since the
   * bytes' durability is unknown; a failure before it (opening or creating
   * a file, the descriptor of the durable write, or the fallback's plain
   * write) rejects as `write`'s does (`WAL_IO`, `WAL_NO_SPACE`, with the
   * `offset`), not latched. Optional: a backend without it is written with
   * `write` then `sync`.
   */
  writeDurable?(offset: number, bytes: Uint8Array): Promise<void>;

  /**
   * Gets the end ready for the next write: a backend with files creates the
   * file holding the end when none does (empty, its directory entry made
   * durable first, as a write into a new file would) and opens it, so that
   * a write there issues its system call in the call that makes it. Adds no
   * byte and moves neither the head nor the length. The log calls it once
   * its recovery is done, on a writable handle. Rejects with
   * `WAL_READ_ONLY`, `WAL_CLOSED`, `WAL_BUSY` (a truncation runs), or as
   * `write` and `sync` do (`WAL_IO`, `WAL_NO_SPACE`; a failed directory
   * fsync latches, `WAL_FAILED`). Optional: a backend without it is
   * written as it is.
   */
  readyEnd?(): Promise<void>;

  /**
   * `write`, done synchronously on the calling thread when the store can do
   * it without waiting (the file is open, nothing exclusive runs): returns
   * true once the OS has the bytes, as a resolved `write` does, or false
   * having done nothing, when it would have to wait (a file to open or
   * create first, a range across files, a file system without synchronous
   * calls): use `write` then. Throws what `write` rejects with. Blocks the
   * event loop for the system call. Optional: a backend without it is only
   * written with `write`.
   */
  writeNow?(offset: number, bytes: Uint8Array): boolean;

  /**
   * `sync`, done synchronously on the calling thread when the store can do
   * it without waiting: returns true once every write that had completed
   * (resolved, or returned by `writeNow`) when it was called is durable, or
   * false having done nothing when it would have to wait (a file to open, a
   * directory to sync): use `sync` then. Throws what `sync` rejects with; a
   * failure is latched (`WAL_FAILED`) as `sync`'s is. Blocks the event loop
   * for the whole flush. Optional, like `writeNow`.
   */
  syncNow?(): boolean;

  /**
   * Drops every byte at and after `length` (`head <= length <= this.length`),
   * durably for a durable store, before resolving. Exclusive.
   */
  truncate(length: number): Promise<void>;

  /**
   * Drops every byte before `offset` (`head <= offset <= length`) without
   * renumbering: the head becomes exactly `offset` and is recorded durably
   * before resolving; reads below it are refused. Space is reclaimed only where
   * `supports.prefixReclaim` (and then only in whole units). Exclusive.
   */
  truncateBefore(offset: number): Promise<void>;

  /** Reads the metadata map (a fresh copy). */
  readMeta(): Promise<StoreMeta>;

  /**
   * Merges `fields` into the metadata map (`undefined` removes a key) and
   * replaces it atomically: after a crash the map is the old one or the new
   * one, never a mix. Durable on resolve for a durable store. Updates are
   * applied in call order.
   */
  updateMeta(fields: MetaUpdate): Promise<void>;

  /**
   * `updateMeta` for a store that latched a failure (`WAL_FAILED`): merges
   * `fields` into the metadata map and replaces it as `updateMeta` does
   * (atomically; durable on resolve for a durable store), although every
   * other call is refused. The metadata lives apart from the data (its own
   * file, replaced through a new one), so this can succeed when the data's
   * write-back failed: a log records there where its trusted bytes end, for
   * any later open to cut there. A failure rejects and latches nothing new.
   * Without a latched failure it is `updateMeta`. Refused when closed or
   * read-only. Optional: a backend without it leaves nothing recorded.
   */
  updateMetaAfterFailure?(fields: MetaUpdate): Promise<void>;

  /**
   * Read-only handles: re-reads the head, the metadata and the length from
   * storage, so a reader sees records another process appended (or a
   * truncation it made) since open or the last refresh. Never writes.
   * Optional: a backend without read-only opens may leave it out. The `@wal`
   * backends resolve without doing anything on a writable handle (its state
   * is always current).
   */
  refresh?(): Promise<void>;

  /**
   * Closes the store: waits for operations in flight, releases the lock and
   * every file. Never rejects for a latched failure; idempotent.
   */
  close(): Promise<void>;
}
