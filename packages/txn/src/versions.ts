/**
 * The ordered index of committed versions (internal). Keys are held as
 * "binary strings": one UTF-16 code unit per key byte (latin1), so that
 * JavaScript's string order is the bytewise order of the keys and a `Map`
 * gives point lookups. Each key has a chain of versions, newest first; a
 * version is the value a commit gave the key (`undefined` for a delete),
 * held as a binary string too (a few bytes of heap where a `Uint8Array`
 * takes a few hundred), and the commit's sequence number. A commit's versions go in as soon as its
 * record is appended, before it is durable (the store tracks what readers of
 * them depend on); readers skip versions newer than their snapshot by
 * sequence number, validation sees them.
 *
 * Invariants:
 * - `sorted` holds exactly the keys of `chains` (outside a bulk load, which
 *   sorts once at its end);
 * - a chain is never empty while its key is in the index, and its sequence
 *   numbers strictly decrease from its newest version down its `older` links;
 * - `prune(key, horizon)` keeps every version a snapshot at or after
 *   `horizon` can read, and every version newer than `horizon` (validation
 *   needs those).
 */

import { SortedKeys } from './sorted-keys.js';

/** One committed value of a key. */
export interface Version {
  readonly seq: number;
  /** The value as a binary string, or `undefined` for a delete (a tombstone). */
  readonly value: string | undefined;
  /** The key's version before this one, until pruning drops it. */
  older: Version | undefined;
}

/** Bounds of a key range in binary-string form; `undefined` is unbounded. */
export interface KeyRange {
  readonly lo: string | undefined;
  readonly loInclusive: boolean;
  readonly hi: string | undefined;
  readonly hiInclusive: boolean;
}

/**
 * The versions of one key: the newest, linked to the older ones (a commit
 * adds one object, the version). `newest` is `undefined` once the key left
 * the index.
 */
export interface Chain {
  newest: Version | undefined;
}

/** The newest version in `chain` (as {@link VersionIndex.chain} gave it) at or before `snapshot`. */
export function versionIn(chain: Chain | undefined, snapshot: number): Version | undefined {
  let version = chain?.newest;
  while (version !== undefined && version.seq > snapshot) version = version.older;
  return version;
}

/** How many versions `version` and the older ones linked to it are. */
function versionsFrom(version: Version | undefined): number {
  let count = 0;
  for (; version !== undefined; version = version.older) count++;
  return count;
}

export class VersionIndex {
  readonly #chains = new Map<string, Chain>();
  readonly #sorted: SortedKeys;
  #bulk = false;
  #versions = 0;

  /** @param blockSize Block size of the ordered key set (small in tests, to exercise splits). */
  constructor(blockSize?: number) {
    this.#sorted = new SortedKeys(blockSize);
  }

  /** Number of keys with at least one version (tombstones included). */
  get keys(): number {
    return this.#chains.size;
  }

  /** Number of versions held, over all keys. */
  get versions(): number {
    return this.#versions;
  }

  /**
   * The versions of `key`, or `undefined`. A caller may keep
   * the chain to pass back to the methods below (saving the lookup); once
   * the key leaves the index its chain is emptied, and they look it up again.
   */
  chain(key: string): Chain | undefined {
    return this.#chains.get(key);
  }

  /** Sequence number of the newest version of `key` (visible or not), or 0; `chain` as {@link chain} gave it. */
  latestSeq(key: string, chain?: Chain): number {
    const live = chain?.newest === undefined ? this.#chains.get(key) : chain;
    return live?.newest?.seq ?? 0;
  }

  /** The value of `key` a snapshot at `snapshot` sees (`undefined`: absent). */
  read(key: string, snapshot: number): string | undefined {
    return this.version(key, snapshot)?.value;
  }

  /**
   * The version of `key` a snapshot at `snapshot` sees (a delete is a version
   * too), or `undefined` when no commit at or before `snapshot` wrote `key`.
   */
  version(key: string, snapshot: number): Version | undefined {
    return versionIn(this.#chains.get(key), snapshot);
  }

  /** Adds the version a commit at `seq` (newer than every version of `key`) gives `key`; returns its chain. */
  install(key: string, seq: number, value: string | undefined, chain?: Chain): Chain {
    const live = chain?.newest === undefined ? this.#chains.get(key) : chain;
    this.#versions++;
    if (live !== undefined) {
      live.newest = { seq, value, older: live.newest };
      return live;
    }
    const created: Chain = { newest: { seq, value, older: undefined } };
    this.#chains.set(key, created);
    if (!this.#bulk) this.#sorted.insert(key);
    return created;
  }

  /**
   * Replaces every version of `key` by one (replay at open, where no snapshot
   * can see older versions); a delete removes the key.
   */
  replace(key: string, seq: number, value: string | undefined): void {
    const chain = this.#chains.get(key);
    if (value === undefined) {
      if (chain !== undefined) this.#remove(key, versionsFrom(chain.newest));
      return;
    }
    if (chain !== undefined) {
      this.#versions -= versionsFrom(chain.newest) - 1;
      chain.newest = { seq, value, older: undefined };
    } else {
      this.install(key, seq, value);
    }
  }

  /**
   * Drops the versions of `key` no snapshot at or after `horizon` can read:
   * every version older than the newest one at or before `horizon`, and that
   * one too when it is a delete and nothing newer exists.
   */
  prune(key: string, horizon: number, known?: Chain): void {
    const chain = known?.newest === undefined ? this.#chains.get(key) : known;
    if (chain === undefined) return;
    let keep = chain.newest;
    while (keep !== undefined && keep.seq > horizon) keep = keep.older;
    if (keep === undefined) return;
    if (keep.older !== undefined) {
      this.#versions -= versionsFrom(keep.older);
      keep.older = undefined;
    }
    if (keep === chain.newest && keep.value === undefined) this.#remove(key, 1);
  }

  /** Starts a bulk load: new keys are not sorted until {@link endBulk}. */
  beginBulk(): void {
    this.#bulk = true;
  }

  /** Ends a bulk load: sorts the keys once. */
  endBulk(): void {
    this.#bulk = false;
    this.#sorted.reset([...this.#chains.keys()].sort());
  }

  /**
   * The keys inside `range`, in ascending order (descending with `reverse`),
   * visible or not. The caller must not change the index while iterating.
   */
  *keysIn(range: KeyRange, reverse = false): Generator<string> {
    yield* this.#sorted.range(range.lo, range.loInclusive, range.hi, range.hiInclusive, reverse);
  }

  #remove(key: string, versions: number): void {
    // Emptied: whoever kept this chain looks the key up again.
    this.#chains.get(key)!.newest = undefined;
    this.#chains.delete(key);
    this.#versions -= versions;
    if (!this.#bulk) this.#sorted.delete(key);
  }
}
