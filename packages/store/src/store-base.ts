/**
 * The shared half of every backend: argument checks, the closed / busy /
 * latched-failure states, in-flight tracking and the metadata cache. A
 * backend supplies the `do*` operations. Internal to @wal/store (not
 * exported from the package).
 */
import {
  BusyError,
  ClosedError,
  FailedError,
  invalidArgType,
  invalidArgValue,
  isArgumentError,
  MAX_OFFSET,
  outOfRange,
  ReadOnlyError,
  toWalError,
  validateBytes,
  validateOffset,
  type WalError,
} from '@wal/errors';
import {
  MAX_META_BYTES,
  type MetaUpdate,
  type MetaValue,
  STORE_META_PREFIX,
  type Store,
  type StoreMeta,
  type StoreSupports,
} from './store.js';

const EMPTY = new Uint8Array(0);

function validateMetaUpdate(fields: unknown): asserts fields is MetaUpdate {
  if (typeof fields !== 'object' || fields === null || Array.isArray(fields)) {
    throw invalidArgType('fields', 'a plain object', fields);
  }
  for (const [key, value] of Object.entries(fields)) {
    if (key.length === 0) throw outOfRange('fields key', 'a non-empty string', key);
    if (key.startsWith(STORE_META_PREFIX)) {
      throw invalidArgValue(
        'fields key',
        key,
        `must not start with "${STORE_META_PREFIX}" (reserved for the store)`,
      );
    }
    const ok =
      value === undefined ||
      typeof value === 'string' ||
      typeof value === 'boolean' ||
      (typeof value === 'number' && Number.isFinite(value));
    if (!ok)
      throw invalidArgType(
        `fields.${key}`,
        'a string, a finite number, a boolean or undefined',
        value,
      );
  }
}

/**
 * Sets `key` as an own property of a metadata map. Plain assignment would
 * turn a key such as `__proto__` into a prototype change and lose it.
 */
export function setMetaKey(map: Record<string, MetaValue>, key: string, value: MetaValue): void {
  Object.defineProperty(map, key, { value, enumerable: true, writable: true, configurable: true });
}

/** Applies `fields` to `meta`, returning a new frozen map. */
export function mergeMeta(meta: StoreMeta, fields: MetaUpdate): StoreMeta {
  const next: Record<string, MetaValue> = { ...meta };
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) delete next[key];
    else setMetaKey(next, key, value);
  }
  return Object.freeze(next);
}

/** How a failed operation is named in its `WalError`: what it was, and the offset concerned. */
interface Failure {
  readonly what: string;
  readonly offset: number;
}

/** Base class of the @wal backends. */
export abstract class StoreBase implements Store {
  abstract readonly supports: StoreSupports;
  /**
   * True for a handle opened read-only: it changes nothing in storage, and
   * `write`, `sync`, `truncate`, `truncateBefore` and `updateMeta` reject with
   * `WAL_READ_ONLY`. Always false for a `MemoryStore`.
   */
  readonly readOnly: boolean;

  /** Current head; backends set it on open and in `doTruncateBefore`. */
  protected headOffset = 0;
  /** Current length; backends set it on open; the base keeps it current. */
  protected lengthOffset = 0;

  #what: string;
  #closed = false;
  #closing: Promise<void> | undefined;
  #inFlight = 0;
  #idle: Array<() => void> = [];
  #exclusive = false;
  #failure: FailedError | undefined;
  /** The latched failure is a data file's failed fsync or durable write (`latchData`). */
  #dataFailure = false;
  #meta: StoreMeta = Object.freeze({});
  #metaQueue: Promise<unknown> = Promise.resolve();
  #refreshing: Promise<void> = Promise.resolve();

  protected constructor(what: string, readOnly = false) {
    this.#what = what;
    this.readOnly = readOnly;
  }

  get head(): number {
    return this.headOffset;
  }

  get length(): number {
    return this.lengthOffset;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The latched failure, if any. */
  get failure(): FailedError | undefined {
    return this.#failure;
  }

  // ---- backend hooks -------------------------------------------------------

  protected abstract doWrite(offset: number, bytes: Uint8Array): Promise<void>;
  /**
   * `writeDurable`'s work (`bytes` not empty): `doWrite`, durable for a
   * durable store when it resolves (see {@link Store.writeDurable}). The
   * backend latches a failure of the durable call itself (a `pwriteDurable`
   * through {@link StoreBase.durableWriteFailed}, an fdatasync, a directory
   * fsync); any other rejection (opening or creating a file, a plain write
   * of the fallback) is reported as `write`'s is, not latched. It is on a
   * commit's latency path: no more promise layers than needed.
   */
  protected abstract doWriteDurable(offset: number, bytes: Uint8Array): Promise<void>;
  /** Fills `into` with `[offset, offset + into.length)`, all below the current length; gaps as zeros. */
  protected abstract doReadInto(offset: number, into: Uint8Array): Promise<void>;
  protected abstract doSync(): Promise<void>;
  /**
   * `readyEnd`'s work: nothing by default (a backend whose next write never
   * waits for a file to be created or opened).
   */
  protected doReadyEnd(): Promise<void> {
    return Promise.resolve();
  }
  protected abstract doTruncate(length: number): Promise<void>;
  protected abstract doTruncateBefore(offset: number): Promise<void>;
  /** Persists the whole map `next` atomically. */
  protected abstract doUpdateMeta(next: StoreMeta): Promise<void>;
  /**
   * `updateMetaAfterFailure`'s work: persists the whole map `next`
   * atomically although the store latched a failure, through the file
   * system as it is (not the latched one), latching nothing. Called only
   * when the latched failure is a data file's ({@link StoreBase.latchData}).
   * The default refuses with the latched failure (nothing recorded).
   */
  protected doUpdateMetaAfterFailure(_next: StoreMeta): Promise<void> {
    return Promise.reject(this.#failure);
  }
  /** Releases everything; called once, with nothing in flight. */
  protected abstract doClose(): Promise<void>;
  /**
   * Re-reads the head, the metadata and the length from storage (read-only
   * handles only; never writes). Sets the new state only once it is fully
   * read. The default does nothing.
   */
  /** `writeNow`'s work (`bytes` not empty): false, having done nothing, when it would wait. */
  protected doWriteNow(_offset: number, _bytes: Uint8Array): boolean {
    return false;
  }
  /** `syncNow`'s work: false, having done nothing, when it would wait. */
  protected doSyncNow(): boolean {
    return false;
  }
  protected doRefresh(): Promise<void> {
    return Promise.resolve();
  }

  /** The caller's metadata map as last persisted (for backends that re-encode it). */
  protected get currentMeta(): StoreMeta {
    return this.#meta;
  }

  /** Sets the metadata map read at open. */
  protected initMeta(meta: StoreMeta): void {
    this.#meta = Object.freeze({ ...meta });
  }

  /**
   * Latches `cause` (a failed fsync of data, a directory, the metadata or the
   * head, or a failed durable write) and throws the latched error. Every
   * later call rejects with it.
   */
  protected latch(cause: unknown, what: string): never {
    this.#failure ??= new FailedError(
      `${what} failed; the ${this.#what} refuses all further work (nothing after the last successful sync can be assumed durable)`,
      { cause },
    );
    throw this.#failure;
  }

  /**
   * Latches a failed durable write call (`pwriteDurable`) that began at
   * `offset` of the store, as a failed fsync is latched (the bytes'
   * durability is unknown): the cause is `cause` as a `WalError` carrying
   * `offset`. Throws the latched error.
   */
  protected durableWriteFailed(cause: unknown, offset: number): never {
    const what = `durable write at offset ${offset}`;
    return this.latchData(toWalError(cause, 'durable write', offset), what);
  }

  /**
   * {@link StoreBase.latch} for a failed fsync of a data file (the
   * metadata's file and the directory are not involved, so that
   * `updateMetaAfterFailure` may still replace the metadata).
   */
  protected latchData(cause: unknown, what: string): never {
    if (this.#failure === undefined) this.#dataFailure = true;
    return this.latch(cause, what);
  }

  // ---- the contract --------------------------------------------------------

  async write(offset: number, bytes: Uint8Array): Promise<void> {
    this.#checkWrite(offset, bytes);
    return this.#run(
      async () => {
        if (bytes.length > 0) await this.doWrite(offset, bytes);
        const end = offset + bytes.length;
        if (end > this.lengthOffset) this.lengthOffset = end;
      },
      undefined,
      { what: `write of ${bytes.length} bytes`, offset },
    );
  }

  /**
   * `write`, durable when it resolves (see {@link Store.writeDurable}):
   * the same checks and refusals as `write` (`WAL_READ_ONLY` naming
   * `writeDurable`). A failure of the durable call itself (`pwriteDurable`,
   * the fallback's fdatasync, a directory fsync) latches the store
   * (`WAL_FAILED`, the failure as its cause), since the bytes' durability is
   * then unknown; the backend latches it where it happens. A failure before
   * that (opening or creating a file, the fallback's plain write) rejects
   * as `write`'s does (`WAL_IO`, `WAL_NO_SPACE`, carrying `offset`), not
   * latched. A call that completes after the store latched a failure (of
   * another call) rejects with it, as `sync` does (see `#track`). One
   * `.then` over the backend's work: no `async` layer.
   */
  writeDurable(offset: number, bytes: Uint8Array): Promise<void> {
    try {
      this.#checkWrite(offset, bytes, 'writeDurable');
    } catch (error) {
      return Promise.reject(error);
    }
    const end = offset + bytes.length;
    this.#inFlight++;
    let work: Promise<void>;
    try {
      work = bytes.length === 0 ? Promise.resolve() : this.doWriteDurable(offset, bytes);
    } catch (error) {
      work = Promise.reject(error);
    }
    return work.then(
      () => {
        if (--this.#inFlight === 0) this.#drained();
        if (end > this.lengthOffset) this.lengthOffset = end;
        // Latched while in flight: the success of this call's own durable
        // call proves nothing (see `#track`).
        if (this.#failure) throw this.#failure;
      },
      (error: unknown) => {
        if (--this.#inFlight === 0) this.#drained();
        // A latched failure is a FailedError already, kept as it is.
        throw toWalError(error, `durable write of ${bytes.length} bytes`, offset);
      },
    );
  }

  writeNow(offset: number, bytes: Uint8Array): boolean {
    this.#checkWrite(offset, bytes);
    const end = offset + bytes.length;
    const failure = { what: `write of ${bytes.length} bytes`, offset };
    if (bytes.length > 0 && !this.#trackNow(() => this.doWriteNow(offset, bytes), failure)) {
      return false;
    }
    if (end > this.lengthOffset) this.lengthOffset = end;
    return true;
  }

  /** The checks of `write`, `writeNow` and `writeDurable` (`name`), before any I/O: throws what they refuse. */
  #checkWrite(offset: number, bytes: Uint8Array, name = 'write'): void {
    validateOffset('offset', offset);
    validateBytes('bytes', bytes);
    if (offset + bytes.length > MAX_OFFSET) {
      throw outOfRange('offset + bytes.length', `<= ${MAX_OFFSET}`, offset + bytes.length);
    }
    this.#refuseIfUnusable(name);
    if (offset < this.headOffset)
      throw outOfRange('offset', `>= the head (${this.headOffset})`, offset);
  }

  syncNow(): boolean {
    this.#refuseIfUnusable('sync');
    return this.#trackNow(() => this.doSyncNow());
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    validateOffset('offset', offset);
    validateOffset('length', length);
    this.#checkRead(offset);
    return this.#run(async () => {
      const available = Math.min(length, this.lengthOffset - offset);
      if (available <= 0) return EMPTY;
      const out = new Uint8Array(available);
      await this.doReadInto(offset, out);
      return out;
    });
  }

  /** The checks of a read at a valid `offset`: an open store, at or above the head. */
  #checkRead(offset: number): void {
    this.#refuseIfUnusable();
    if (offset < this.headOffset)
      throw outOfRange('offset', `>= the head (${this.headOffset})`, offset);
  }

  async readInto(offset: number, into: Uint8Array): Promise<number> {
    validateOffset('offset', offset);
    validateBytes('into', into);
    this.#checkRead(offset);
    return this.#run(async () => {
      const available = Math.min(into.length, this.lengthOffset - offset);
      if (available <= 0) return 0;
      await this.doReadInto(offset, into.subarray(0, available));
      return available;
    });
  }

  sync(): Promise<void> {
    return this.#run(() => this.doSync(), 'sync', undefined, true);
  }

  readyEnd(): Promise<void> {
    return this.#run(() => this.doReadyEnd(), 'readyEnd');
  }

  async truncate(length: number): Promise<void> {
    validateOffset('length', length);
    this.#refuseIfUnusable('truncate');
    if (length < this.headOffset || length > this.lengthOffset) {
      throw outOfRange(
        'length',
        `between the head (${this.headOffset}) and the length (${this.lengthOffset})`,
        length,
      );
    }
    return this.#runExclusive(async () => {
      await this.doTruncate(length);
      this.lengthOffset = length;
    });
  }

  async truncateBefore(offset: number): Promise<void> {
    validateOffset('offset', offset);
    this.#refuseIfUnusable('truncateBefore');
    if (offset < this.headOffset || offset > this.lengthOffset) {
      throw outOfRange(
        'offset',
        `between the head (${this.headOffset}) and the length (${this.lengthOffset})`,
        offset,
      );
    }
    return this.#runExclusive(async () => {
      await this.doTruncateBefore(offset);
      this.headOffset = offset;
    });
  }

  readMeta(): Promise<StoreMeta> {
    return this.#run(() => Promise.resolve({ ...this.#meta }));
  }

  async updateMeta(fields: MetaUpdate): Promise<void> {
    validateMetaUpdate(fields);
    // Validate the size against the map as it will be once earlier queued
    // updates land; checked again when this one runs.
    const run = this.#run(
      () => {
        const result = this.#metaQueue.then(async () => {
          const next = mergeMeta(this.#meta, fields);
          const size = Buffer.byteLength(JSON.stringify(next));
          if (size > MAX_META_BYTES) {
            throw outOfRange('fields', `a map encoding to at most ${MAX_META_BYTES} bytes`, size);
          }
          await this.doUpdateMeta(next);
          this.#meta = next;
        });
        this.#metaQueue = result.catch(() => undefined);
        return result;
      },
      'updateMeta',
      undefined,
      true,
    );
    return run;
  }

  updateMetaAfterFailure(fields: MetaUpdate): Promise<void> {
    if (this.#failure === undefined || this.#closed || this.readOnly) {
      return this.updateMeta(fields);
    }
    try {
      validateMetaUpdate(fields);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#track(() => {
      const result = this.#metaQueue.then(async () => {
        const next = mergeMeta(this.#meta, fields);
        const size = Buffer.byteLength(JSON.stringify(next));
        if (size > MAX_META_BYTES) {
          throw outOfRange('fields', `a map encoding to at most ${MAX_META_BYTES} bytes`, size);
        }
        // After a failed fsync of the metadata or the directory, a second
        // one proves nothing: refused (nothing recorded).
        if (!this.#dataFailure) throw this.#failure;
        await this.doUpdateMetaAfterFailure(next);
        this.#meta = next;
      });
      this.#metaQueue = result.catch(() => undefined);
      return result;
    });
  }

  /**
   * Read-only handles: re-reads the head, the metadata and the length from
   * storage, so a reader sees records another process appended (or a
   * truncation it made) since open or the last refresh. Never writes. On a
   * writable handle it resolves without doing anything (that handle's state
   * is already current). Rejects as other calls do after `close()`; a failed
   * refresh leaves the handle's state as it was.
   */
  refresh(): Promise<void> {
    if (!this.readOnly) return this.#run(() => Promise.resolve());
    this.#refreshing = this.#refreshing
      .catch(() => undefined)
      .then(() => this.#run(() => this.doRefresh()));
    return this.#refreshing;
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true;
      if (this.#inFlight > 0) await new Promise<void>((resolve) => this.#idle.push(resolve));
      await this.doClose();
    })();
    return this.#closing;
  }

  // ---- machinery -----------------------------------------------------------

  /**
   * Throws the closed / latched / busy refusal before range checks that
   * depend on the head or length: a latched store answers `WAL_FAILED` even
   * to a call whose range was computed from state the failure left behind.
   */
  #refuseIfUnusable(mutating?: string): void {
    const refusal = this.#refusal(mutating);
    if (refusal) throw refusal;
  }

  /** `mutating`: the name of a call that changes storage, refused on a read-only handle. */
  #refusal(mutating?: string): WalError | undefined {
    if (this.#closed) return new ClosedError(this.#what);
    if (mutating !== undefined && this.readOnly) return new ReadOnlyError(mutating);
    if (this.#failure) return this.#failure;
    if (this.#exclusive) return new BusyError(`a truncation of the ${this.#what} is running`);
    return undefined;
  }

  #run<T>(
    operation: () => Promise<T>,
    mutating?: string,
    failure?: Failure,
    durable = false,
  ): Promise<T> {
    const refusal = this.#refusal(mutating);
    if (refusal) return Promise.reject(refusal);
    return this.#track(operation, failure, durable);
  }

  /**
   * Runs `operation` counted in flight; an I/O failure rejects as a
   * `WalError` named by `failure` (with its offset), or as an operation of
   * the store. A `durable` operation (one that makes something durable:
   * `sync`, `updateMeta`) that completes after the store latched a failure
   * rejects with it, although its own fsync succeeded: two fsyncs of one
   * file can be in flight together, and on Linux the one that does not
   * report a write-back error may return success after the other consumed
   * it, with the lost pages marked clean.
   */
  async #track<T>(operation: () => Promise<T>, failure?: Failure, durable = false): Promise<T> {
    this.#inFlight++;
    try {
      const result = await operation();
      if (durable && this.#failure) throw this.#failure;
      return result;
    } catch (error) {
      throw this.#failed(error, failure);
    } finally {
      if (--this.#inFlight === 0) this.#drained();
    }
  }

  /** `#track` for a synchronous operation. */
  #trackNow(operation: () => boolean, failure?: Failure): boolean {
    this.#inFlight++;
    try {
      return operation();
    } catch (error) {
      throw this.#failed(error, failure);
    } finally {
      if (--this.#inFlight === 0) this.#drained();
    }
  }

  #failed(error: unknown, failure: Failure | undefined): unknown {
    if (isArgumentError(error)) return error;
    return failure === undefined
      ? toWalError(error, `${this.#what} operation`)
      : toWalError(error, failure.what, failure.offset);
  }

  async #runExclusive(operation: () => Promise<void>): Promise<void> {
    const refusal = this.#refusal();
    if (refusal) throw refusal;
    if (this.#inFlight > 0) {
      throw new BusyError(
        `${this.#inFlight} operation(s) of the ${this.#what} are in flight; truncation needs exclusive access`,
      );
    }
    this.#exclusive = true;
    try {
      await this.#track(operation);
    } finally {
      this.#exclusive = false;
    }
  }

  #drained(): void {
    const waiting = this.#idle;
    this.#idle = [];
    for (const resolve of waiting) resolve();
  }
}
