/** Helpers shared by the txn tests. */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { errorCode } from '@wal/errors';
import { MemoryStore } from '@wal/store';
import type { CrashFs } from '@wal/store/testing';
import { type Isolation, type Transaction, TxnStore } from '../src/index.js';
import { openStore, type TxnTestHooks } from '../src/store.js';

export const LEVELS: readonly Isolation[] = ['serializable', 'snapshot'];

const decoder = new TextDecoder();

/** A value (or key) read back as text. */
export function text(bytes: Uint8Array | undefined): string | undefined {
  return bytes === undefined ? undefined : decoder.decode(bytes);
}

/** A store on a fresh in-memory log (with test hooks, when given). */
export function memoryStore(hooks: TxnTestHooks = {}): Promise<TxnStore> {
  return Object.keys(hooks).length === 0
    ? TxnStore.open(new MemoryStore())
    : openStore(new MemoryStore(), {}, hooks);
}

/**
 * A store at `/db` on `fs` (checkpoints in `/db.checkpoints`, 4 KiB log
 * segments), with automatic checkpoints off unless `checkpoint` says otherwise.
 */
export function openOnFs(fs: CrashFs, checkpoint = {}): Promise<TxnStore> {
  return TxnStore.open('/db', {
    log: { segmentSize: 4096, fs },
    checkpoint: { logBytes: 0, ...checkpoint },
  });
}

/** One turn of the event loop. */
export const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A predicate for `assert.rejects`/`assert.throws`: the error carries `code`. */
export function isCode(code: string): (error: unknown) => boolean {
  return (error: unknown) => {
    assert.equal(errorCode(error), code, String(error));
    return true;
  };
}

/** Every entry of a scan of `tx`, as `[key, value]` text pairs. */
export function entries(tx: Transaction, options = {}): Array<[string, string]> {
  return tx.scan(options).map((e) => [text(e.key)!, text(e.value)!]);
}

/**
 * A memory store whose syncs can be held back (`hold()` … `release()`),
 * counted, or made to fail with EIO (`failSyncs`). A durable write (the
 * log's durable commits) is a write, then such a sync.
 */
export class GatedStore extends MemoryStore {
  syncs = 0;
  failSyncs = false;
  #gate: Promise<void> | undefined;
  #open: (() => void) | undefined;

  hold(): void {
    this.#gate = new Promise((resolve) => {
      this.#open = resolve;
    });
  }

  release(): void {
    this.#open?.();
    this.#gate = undefined;
  }

  protected override async doWriteDurable(offset: number, bytes: Uint8Array): Promise<void> {
    await this.doWrite(offset, bytes);
    await this.doSync();
  }

  protected override async doSync(): Promise<void> {
    this.syncs++;
    await this.#gate;
    if (this.failSyncs)
      throw Object.assign(new Error('EIO: i/o error, fdatasync'), {
        code: 'EIO',
        syscall: 'fdatasync',
      });
  }
}

/**
 * A temporary directory for the tests of the enclosing `describe`, made
 * before each test (or once, with `each: false`) and removed after; call the
 * returned function for its path.
 */
export function temporaryDirectory(prefix: string, each = true): () => string {
  let dir = '';
  (each ? beforeEach : before)(async () => {
    dir = await mkdtemp(join(tmpdir(), prefix));
  });
  (each ? afterEach : after)(async () => {
    await rm(dir, { recursive: true, force: true });
    // The store's default checkpoint directory, beside its log.
    await rm(`${dir}.checkpoints`, { recursive: true, force: true });
  });
  return () => dir;
}

/** Calls `onLine` with each whole line a child process prints on `stream` (split on `\n`). */
export function onLines(stream: NodeJS.ReadableStream, onLine: (line: string) => void): void {
  let buffer = '';
  stream.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    const lines = buffer.split('\n');
    buffer = lines.pop()!;
    for (const line of lines) onLine(line);
  });
}
