/**
 * A recording {@link Fs} for the crash tests: every call is logged twice in
 * one sequence — when issued and when it settles (resolved or rejected) — and
 * the test adds its own events (acknowledgements) to the same sequence, so an
 * audit can order "fdatasync of f completed" against "the durable wait
 * resolved".
 */
import type { Fs, FsFile, FsLock, FsMethod, OpenMode } from '@wal/store';

/** One event of the sequence. */
export type FsEvent =
  | {
      readonly type: 'call';
      /** Sequence number of the call (its issue event). */
      readonly id: number;
      readonly method: FsMethod;
      readonly path: string;
      /** Arguments after the file or path (`[position, length]` for pwrite). */
      readonly args: readonly unknown[];
    }
  | { readonly type: 'done'; readonly id: number; readonly ok: boolean; readonly error?: string }
  | { readonly type: 'ack'; readonly what: string; readonly end: number };

/** The `what` of an event marking a new session (a fresh open: new handles); not an acknowledgement. */
export const SESSION = 'session';

export class RecordingFs implements Fs {
  readonly events: FsEvent[] = [];
  #next = 0;

  constructor(readonly inner: Fs) {}

  /** Adds an acknowledgement to the sequence. */
  ack(what: string, end: number): void {
    this.events.push({ type: 'ack', what, end });
  }

  async #run<T>(
    method: FsMethod,
    path: string,
    args: readonly unknown[],
    call: () => Promise<T>,
  ): Promise<T> {
    const id = this.#next++;
    this.events.push({ type: 'call', id, method, path, args });
    try {
      const result = await call();
      this.events.push({ type: 'done', id, ok: true });
      return result;
    } catch (error) {
      const code = (error as { code?: unknown } | null)?.code;
      this.events.push({ type: 'done', id, ok: false, error: String(code) });
      throw error;
    }
  }

  open(path: string, mode: OpenMode): Promise<FsFile> {
    return this.#run('open', path, [mode], () => this.inner.open(path, mode));
  }
  close(file: FsFile): Promise<void> {
    return this.#run('close', file.path, [], () => this.inner.close(file));
  }
  pwrite(file: FsFile, bytes: Uint8Array, position: number): Promise<number> {
    return this.#run('pwrite', file.path, [position, bytes.length], () =>
      this.inner.pwrite(file, bytes, position),
    );
  }
  /** The inner file system's durable write (every `Fs` the tests wrap has one). */
  pwriteDurable(file: FsFile, bytes: Uint8Array, position: number): Promise<number> {
    return this.#run('pwriteDurable', file.path, [position, bytes.length], () =>
      this.inner.pwriteDurable!(file, bytes, position),
    );
  }
  pread(file: FsFile, into: Uint8Array, position: number): Promise<number> {
    return this.#run('pread', file.path, [position, into.length], () =>
      this.inner.pread(file, into, position),
    );
  }
  fdatasync(file: FsFile): Promise<void> {
    return this.#run('fdatasync', file.path, [], () => this.inner.fdatasync(file));
  }
  ftruncate(file: FsFile, length: number): Promise<void> {
    return this.#run('ftruncate', file.path, [length], () => this.inner.ftruncate(file, length));
  }
  size(file: FsFile): Promise<number> {
    return this.#run('size', file.path, [], () => this.inner.size(file));
  }
  links(file: FsFile): Promise<number> {
    return this.#run('links', file.path, [], () => this.inner.links(file));
  }
  realpath(path: string): Promise<string> {
    return this.#run('realpath', path, [], () => this.inner.realpath(path));
  }
  rename(from: string, to: string): Promise<void> {
    return this.#run('rename', from, [to], () => this.inner.rename(from, to));
  }
  unlink(path: string): Promise<void> {
    return this.#run('unlink', path, [], () => this.inner.unlink(path));
  }
  readdir(path: string): Promise<string[]> {
    return this.#run('readdir', path, [], () => this.inner.readdir(path));
  }
  mkdir(path: string): Promise<boolean> {
    return this.#run('mkdir', path, [], () => this.inner.mkdir(path));
  }
  syncDir(path: string): Promise<void> {
    return this.#run('syncDir', path, [], () => this.inner.syncDir(path));
  }
  lock(path: string): Promise<FsLock> {
    return this.#run('lock', path, [], () => this.inner.lock(path));
  }
}

/**
 * Fsyncs (fdatasync or durable write of a path, syncDir of a directory)
 * issued after an fsync of the same path had failed: a retried fsync, which
 * can report success for pages the kernel dropped. Calls in flight when the
 * failure settled are not retries; a {@link SESSION} event (a new store
 * opened: new handles) starts afresh.
 */
export function retriedFsyncs(events: readonly FsEvent[]): string[] {
  const calls = new Map<number, { method: FsMethod; path: string }>();
  const failed = new Set<string>();
  const problems: string[] = [];
  for (const event of events) {
    if (event.type === 'call') {
      calls.set(event.id, event);
      const key = fsyncKey(event.method, event.path);
      if (key === undefined) continue;
      if (failed.has(key)) problems.push(`${key} issued again after it failed (call ${event.id})`);
    } else if (event.type === 'ack' && event.what === SESSION) {
      failed.clear();
    } else if (event.type === 'done' && !event.ok) {
      const call = calls.get(event.id)!;
      const key = fsyncKey(call.method, call.path);
      if (key !== undefined) failed.add(key);
    }
  }
  return problems;
}

/** What an fsync call syncs (a durable write syncs its file as fdatasync does), or undefined. */
function fsyncKey(method: FsMethod, path: string): string | undefined {
  if (method === 'fdatasync' || method === 'pwriteDurable') return `fdatasync ${path}`;
  if (method === 'syncDir') return `syncDir ${path}`;
  return undefined;
}
