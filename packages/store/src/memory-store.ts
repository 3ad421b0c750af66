import type { StoreMeta, StoreSupports } from './store.js';
import { StoreBase } from './store-base.js';

const PAGE = 64 * 1024;

/**
 * A `Store` in process memory. Nothing is durable or persistent: `sync()` only
 * orders, and the data is gone with the object. Sparse: only pages that hold
 * written bytes take memory, and `truncateBefore` frees the pages below the
 * head. For tests, caches and the in-memory mode of tools.
 */
export class MemoryStore extends StoreBase {
  /** Not durable, not persistent; reclaims prefix space; no lock. */
  readonly supports: StoreSupports = Object.freeze({
    durable: false,
    persistent: false,
    prefixReclaim: true,
    locking: false,
  });

  readonly #pages = new Map<number, Uint8Array>();

  constructor() {
    super('memory store');
  }

  protected doWrite(offset: number, bytes: Uint8Array): Promise<void> {
    this.doWriteNow(offset, bytes);
    return Promise.resolve();
  }

  /** Not durable: exactly `doWrite`. */
  protected doWriteDurable(offset: number, bytes: Uint8Array): Promise<void> {
    return this.doWrite(offset, bytes);
  }

  protected override doWriteNow(offset: number, bytes: Uint8Array): boolean {
    let done = 0;
    while (done < bytes.length) {
      const at = offset + done;
      const index = Math.floor(at / PAGE);
      const within = at - index * PAGE;
      const count = Math.min(PAGE - within, bytes.length - done);
      let page = this.#pages.get(index);
      if (page === undefined) {
        page = new Uint8Array(PAGE);
        this.#pages.set(index, page);
      }
      page.set(bytes.subarray(done, done + count), within);
      done += count;
    }
    return true;
  }

  protected doReadInto(offset: number, out: Uint8Array): Promise<void> {
    const length = out.length;
    let done = 0;
    while (done < length) {
      const at = offset + done;
      const index = Math.floor(at / PAGE);
      const within = at - index * PAGE;
      const count = Math.min(PAGE - within, length - done);
      const page = this.#pages.get(index);
      if (page !== undefined) out.set(page.subarray(within, within + count), done);
      else out.fill(0, done, done + count);
      done += count;
    }
    return Promise.resolve();
  }

  protected doSync(): Promise<void> {
    return Promise.resolve();
  }

  protected override doSyncNow(): boolean {
    return true;
  }

  protected doTruncate(length: number): Promise<void> {
    const lastKept = Math.floor(length / PAGE);
    for (const index of [...this.#pages.keys()]) {
      if (index > lastKept) this.#pages.delete(index);
    }
    const page = this.#pages.get(lastKept);
    if (page !== undefined) page.fill(0, length - lastKept * PAGE);
    return Promise.resolve();
  }

  protected doTruncateBefore(offset: number): Promise<void> {
    const firstKept = Math.floor(offset / PAGE);
    for (const index of [...this.#pages.keys()]) {
      if (index < firstKept) this.#pages.delete(index);
    }
    return Promise.resolve();
  }

  protected doUpdateMeta(_next: StoreMeta): Promise<void> {
    return Promise.resolve();
  }

  protected override doUpdateMetaAfterFailure(_next: StoreMeta): Promise<void> {
    return Promise.resolve();
  }

  protected doClose(): Promise<void> {
    this.#pages.clear();
    return Promise.resolve();
  }
}
