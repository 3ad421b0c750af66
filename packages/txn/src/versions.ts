/**
 * The ordered index of committed versions (internal). Keys are held as
 * "binary strings": one UTF-16 code unit per key byte (latin1), so that
 * JavaScript's string order is the bytewise order of the keys and a `Map`
 * gives point lookups. Each key has a chain of versions, newest first; a
 * version is the value a commit gave the key (`undefined` for a delete),
 * held as a binary string too (a few bytes of heap where a `Uint8Array`
 * takes a few hundred), and the commit's sequence number. The `Map` holds
 * the newest version itself (the chain's head, one object per key for as
 * long as the key lives): a commit turns the head into its own version in
 * place and links a copy of the previous head behind it. So a point read
 * reaches the newest value in one hop from the `Map`, and the objects a
 * commit allocates are the copies, which pruning drops soon after (they
 * die young), not the heads that live on. A commit's versions go in as soon as its
 * record is appended, before it is durable (the store tracks what readers of
 * them depend on); readers skip versions newer than their snapshot by
 * sequence number, validation sees them.
 *
 * Invariants:
 * - `sorted` holds exactly the keys of `chains` (outside a bulk load, which
 *   sorts once at its end);
 * - a chain's head is the key's newest version while its key is in the
 *   index (its `seq` is {@link REMOVED} once the key left it), and sequence
 *   numbers strictly decrease from the head down the `older` links;
 * - `prune(key, horizon)` keeps every version a snapshot at or after
 *   `horizon` can read, and every version newer than `horizon` (validation
 *   needs those).
 */

import { SortedKeys } from './sorted-keys.js';

/** One committed value of a key (a chain's head changes in place: see {@link Chain}). */
export interface Version {
  seq: number;
  /** The value as a binary string, or `undefined` for a delete (a tombstone). */
  value: string | undefined;
  /** The key's version before this one, until pruning drops it. */
  older: Version | undefined;
}

/** The `seq` of a chain whose key left the index. */
const REMOVED = -1;

/** Bounds of a key range in binary-string form; `undefined` is unbounded. */
export interface KeyRange {
  readonly lo: string | undefined;
  readonly loInclusive: boolean;
  readonly hi: string | undefined;
  readonly hiInclusive: boolean;
}

/**
 * The versions of one key: its head, the newest version, which a commit
 * updates in place (linking a copy of what it held as the older version),
 * so that whoever kept the chain sees the newest version. Its `seq` is
 * {@link REMOVED} once the key left the index.
 */
export type Chain = Version;

/** Whether `chain` (kept by a caller) is still its key's chain in the index. */
function live(chain: Chain | undefined): chain is Chain {
  return chain !== undefined && chain.seq !== REMOVED;
}

/**
 * The newest version in `chain` (as {@link VersionIndex.chain} just gave it)
 * at or before `snapshot`. A version found is read at once: a later commit
 * changes a head in place.
 */
export function versionIn(chain: Chain | undefined, snapshot: number): Version | undefined {
  let version = chain;
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
    return (live(chain) ? chain : this.#chains.get(key))?.seq ?? 0;
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
    const head = live(chain) ? chain : this.#chains.get(key);
    this.#versions++;
    if (head !== undefined) {
      head.older = { seq: head.seq, value: head.value, older: head.older };
      head.seq = seq;
      head.value = value;
      return head;
    }
    const created: Chain = { seq, value, older: undefined };
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
      if (chain !== undefined) this.#remove(key, versionsFrom(chain));
      return;
    }
    if (chain !== undefined) {
      this.#versions -= versionsFrom(chain.older);
      chain.seq = seq;
      chain.value = value;
      chain.older = undefined;
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
    const chain = live(known) ? known : this.#chains.get(key);
    if (chain === undefined) return;
    let keep: Version | undefined = chain;
    while (keep !== undefined && keep.seq > horizon) keep = keep.older;
    if (keep === undefined) return;
    if (keep.older !== undefined) {
      this.#versions -= versionsFrom(keep.older);
      keep.older = undefined;
    }
    if (keep === chain && keep.value === undefined) this.#remove(key, 1);
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
    const chain = this.#chains.get(key)!;
    chain.seq = REMOVED;
    chain.value = undefined;
    chain.older = undefined;
    this.#chains.delete(key);
    this.#versions -= versions;
    if (!this.#bulk) this.#sorted.delete(key);
  }
}
