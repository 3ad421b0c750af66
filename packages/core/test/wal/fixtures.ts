// What the Wal API tests share: the paths and segment size they open,
// stores that hold writes on a gate, and ways to append and collect records.

import { MemoryStore } from '@wal/store';
import type { CrashFs, FaultFs } from '@wal/store/testing';
import { Wal, type WalOptions, type WalRecord } from '../../src/index.js';
import { bytes } from '../helpers.js';

/** The segment size of the segmented logs the tests open (small, so records span segments). */
export const SEGMENT = 4096;
/** The directory of a segmented log on a simulated file system. */
export const DIR = '/wal';
/** The file of a single-file log on a simulated file system. */
export const FILE = '/wal.log';

/** Every record an iterator yields, in order. */
export async function collect(iterator: AsyncIterable<WalRecord>): Promise<WalRecord[]> {
  const out: WalRecord[] = [];
  for await (const record of iterator) out.push(record);
  return out;
}

/** Every batch an iterator of batches yields, in order. */
export async function collectBatches(iterator: AsyncIterable<WalRecord[]>): Promise<WalRecord[][]> {
  const out: WalRecord[][] = [];
  for await (const batch of iterator) out.push(batch);
  return out;
}

/** A MemoryStore whose writes wait on a gate the test opens and closes. */
export class GatedStore extends MemoryStore {
  #gate: Promise<void> | undefined;
  #open: (() => void) | undefined;
  /** Writes at or past this offset wait while the gate is closed. */
  #from = 0;
  /** Writes begun (held or not). */
  writes = 0;

  /** Closes the gate for the writes that begin at or past `from`. */
  hold(from = 0): void {
    this.#from = from;
    if (this.#gate !== undefined) return;
    this.#gate = new Promise((resolve) => {
      this.#open = resolve;
    });
  }

  release(): void {
    const open = this.#open;
    this.#gate = undefined;
    this.#open = undefined;
    open?.();
  }

  override async write(offset: number, data: Uint8Array): Promise<void> {
    this.writes++;
    while (this.#gate !== undefined && offset >= this.#from) await this.#gate;
    return super.write(offset, data);
  }

  override async writeDurable(offset: number, data: Uint8Array): Promise<void> {
    this.writes++;
    while (this.#gate !== undefined && offset >= this.#from) await this.#gate;
    return super.writeDurable(offset, data);
  }
}

/** A MemoryStore whose reads, while it holds them, wait until the test lets each one go. */
export class ReadGatedStore extends MemoryStore {
  holding = false;
  /** The reads held, in call order: where they read, and what lets each go. */
  readonly held: { offset: number; length: number; go: () => void }[] = [];

  /** Lets every held read go and holds no more. */
  releaseAll(): void {
    this.holding = false;
    for (const read of this.held.splice(0)) read.go();
  }

  override async read(offset: number, length: number): Promise<Uint8Array> {
    if (this.holding) {
      await new Promise<void>((go) => this.held.push({ offset, length, go }));
    }
    return super.read(offset, length);
  }

  override async readInto(offset: number, into: Uint8Array): Promise<number> {
    if (this.holding) {
      await new Promise<void>((go) => this.held.push({ offset, length: into.length, go }));
    }
    return super.readInto(offset, into);
  }
}

/** Opens a segmented log at {@link DIR} on `fs`, with {@link SEGMENT}-byte segments. */
export const segmented = (fs: CrashFs | FaultFs, extra: WalOptions = {}): Promise<Wal> =>
  Wal.open(DIR, { fs, segmentSize: SEGMENT, ...extra });
/** Opens a single-file log at {@link FILE} on `fs`. */
export const single = (fs: CrashFs | FaultFs, extra: WalOptions = {}): Promise<Wal> =>
  Wal.open(FILE, { fs, layout: 'file', ...extra });

/** Appends `sizes` records and returns their LSNs and payloads. */
export function appendAll(
  wal: Wal,
  sizes: readonly number[],
): { lsns: number[]; payloads: Uint8Array[] } {
  const lsns: number[] = [];
  const payloads: Uint8Array[] = [];
  for (const size of sizes) {
    const payload = bytes(size, lsns.length + 1);
    payloads.push(payload);
    lsns.push(wal.append(payload));
  }
  return { lsns, payloads };
}
