/**
 * The block cache: decoded data blocks, shared by every table of a store,
 * least recently used first out, bounded by an estimate of the memory the
 * decoded blocks hold.
 */
import type { DecodedBlock } from './block.js';

/** Estimated bytes of a decoded entry beyond its key and value bytes. */
const ENTRY_OVERHEAD = 64;

/** An LRU cache of decoded blocks, bounded in (estimated) bytes. */
export class BlockCache {
  readonly #blocks = new Map<string, { block: DecodedBlock; size: number }>();
  #bytes = 0;

  /** @param capacity Bytes the cache may hold; 0 caches nothing. */
  constructor(readonly capacity: number) {}

  /** Estimated bytes held. */
  get bytes(): number {
    return this.#bytes;
  }

  /** The block cached under `key`, made the most recently used. */
  get(key: string): DecodedBlock | undefined {
    const hit = this.#blocks.get(key);
    if (hit === undefined) return undefined;
    this.#blocks.delete(key);
    this.#blocks.set(key, hit);
    return hit.block;
  }

  /** Caches `block` whose contents took `contentBytes`, evicting the least recently used. */
  set(key: string, block: DecodedBlock, contentBytes: number): void {
    const size = contentBytes + block.keys.length * ENTRY_OVERHEAD;
    if (size > this.capacity) return;
    const old = this.#blocks.get(key);
    if (old !== undefined) {
      this.#blocks.delete(key);
      this.#bytes -= old.size;
    }
    this.#blocks.set(key, { block, size });
    this.#bytes += size;
    for (const [oldest, entry] of this.#blocks) {
      if (this.#bytes <= this.capacity) break;
      this.#blocks.delete(oldest);
      this.#bytes -= entry.size;
    }
  }
}
