/**
 * `FaultFs`: wraps any {@link Fs} and injects failures — `EIO`, `ENOSPC`,
 * short writes, failed fsyncs (`fdatasync`), failed durable writes
 * (`pwriteDurable`) and failed directory fsyncs (`syncDir`) — at the N-th call (overall or of given methods) or wherever a
 * predicate says, once or persistently. It counts and logs every call.
 */
import { constants } from 'node:os';
import { invalidArgType, invalidArgValue, validateInteger } from '@wal/errors';
import type { Fs, FsFile, FsLock, FsMethod, OpenMode } from '../fs/fs.js';

/** The fsync methods: data (`fdatasync`) and directory (`syncDir`). */
export type { FsMethod };

/**
 * The methods that make something durable — `fdatasync` (and its synchronous
 * form), `pwriteDurable` and `syncDir`: what a fault on every sync targets.
 */
export const FSYNC_METHODS: readonly FsMethod[] = Object.freeze([
  'fdatasync',
  'fdatasyncSync',
  'pwriteDurable',
  'syncDir',
]);

/**
 * The method by which an inner file system that models durability (as
 * `CrashFs` does) learns of a sync failure {@link FaultFs} injects: FaultFs
 * calls it, before rejecting, when a fault with an error code hits
 * `fdatasync` or `fdatasyncSync`, or hits `pwriteDurable` as the write
 * itself (the fault names no other `syscall`, and is not `ENOSPC`: a write
 * refused for space copied nothing). What the inner file system makes of it
 * is its own model; FaultFs forwards it through a FaultFs it wraps.
 */
export const SYNC_FAILED: unique symbol = Symbol('FaultFs sync failed');

/** What {@link SYNC_FAILED} is told: the failed call and its arguments. */
export type SyncFailure =
  | {
      readonly method: 'fdatasync' | 'fdatasyncSync';
      readonly file: FsFile;
      readonly code: string;
    }
  | {
      readonly method: 'pwriteDurable';
      readonly file: FsFile;
      readonly bytes: Uint8Array;
      readonly position: number;
      readonly code: string;
    };

/** An inner file system that models sync failures (see {@link SYNC_FAILED}). */
interface SyncFailureModel {
  [SYNC_FAILED](failure: SyncFailure): void;
}

/** Tells `inner` of a sync failure when it models them; never throws. */
function tellSyncFailed(inner: Fs, failure: SyncFailure): void {
  const model = inner as Partial<SyncFailureModel>;
  if (typeof model[SYNC_FAILED] !== 'function') return;
  try {
    model[SYNC_FAILED](failure);
  } catch {
    // The model's own trouble (a closed file, a dead process) changes nothing.
  }
}

/** One call through a {@link FaultFs}, as logged and as shown to predicates. */
export interface FsCall {
  /** 1-based position among all calls through this `FaultFs`. */
  readonly index: number;
  /** 1-based position among calls of the same method. */
  readonly methodIndex: number;
  readonly method: FsMethod;
  /** The path concerned: the file's path for file calls, the source for `rename`. */
  readonly path: string;
  /** The call's arguments after the file or path (e.g. `[bytes, position]` for `pwrite`). */
  readonly args: readonly unknown[];
  /** The fault injected into this call, if any. */
  readonly fault?: Fault;
}

/**
 * A fault: an error code (the call rejects with a Node-style error carrying
 * `code`, `errno` and `syscall`, having done nothing — except what a failed
 * sync leaves in a file system that models it, see {@link SYNC_FAILED}; `syscall` is the
 * method's own unless `{ code, syscall }` names another, as for a
 * `pwriteDurable` that failed to open its descriptor: `'open'`), or a short write or
 * read (`{ short: n }`: only the first `n` bytes are transferred, and `n` is
 * resolved; `'short'` transfers half, at least one byte). Short faults apply to
 * the positional writes and reads only (`pwrite`, `pwriteSync`,
 * `pwriteDurable`, `pread`, `preadSync`); on other methods they are ignored.
 */
export type Fault =
  | 'EIO'
  | 'ENOSPC'
  | 'short'
  | { readonly code: string; readonly syscall?: string }
  | { readonly short: number };

/** Where and how to inject faults; see {@link FaultFs.inject}. */
export interface FaultRule {
  /** Which calls the rule watches (default: all). */
  readonly method?: FsMethod | readonly FsMethod[];
  /**
   * Fire at the `at`-th watched call (1-based; counted from when the rule was
   * added). Without `at` and `when`, the rule fires at the next watched call.
   */
  readonly at?: number;
  /**
   * A predicate over each watched call: returns the fault to inject (or
   * `true` for `fault`), or `undefined`/`false` to let the call through.
   */
  readonly when?: (call: Omit<FsCall, 'fault'>) => Fault | boolean | undefined;
  /** The fault (default `'EIO'`). */
  readonly fault?: Fault;
  /** Keep failing every later watched call too (default: fire once). */
  readonly persistent?: boolean;
}

/** An injected rule. */
export interface Injection {
  /** How many calls this rule failed so far. */
  readonly fired: number;
  /** Removes the rule. */
  remove(): void;
}

const SYSCALLS: Readonly<Record<FsMethod, string>> = {
  open: 'open',
  close: 'close',
  pwrite: 'write',
  pwriteSync: 'write',
  pwriteDurable: 'write',
  pread: 'read',
  preadSync: 'read',
  fdatasync: 'fdatasync',
  fdatasyncSync: 'fdatasync',
  ftruncate: 'ftruncate',
  size: 'fstat',
  links: 'fstat',
  linksAt: 'stat',
  realpath: 'realpath',
  rename: 'rename',
  unlink: 'unlink',
  readdir: 'scandir',
  mkdir: 'mkdir',
  syncDir: 'fsync',
  lock: 'open',
};

/** A Node-style system error, as `node:fs` rejects with. */
export function systemError(code: string, syscall: string, path?: string): NodeJS.ErrnoException {
  const errno = (constants.errno as Record<string, number | undefined>)[code];
  const where = path === undefined ? '' : ` '${path}'`;
  const error: NodeJS.ErrnoException = new Error(`${code}: injected fault, ${syscall}${where}`);
  error.code = code;
  error.syscall = syscall;
  if (errno !== undefined) error.errno = -errno;
  if (path !== undefined) error.path = path;
  return error;
}

class Rule implements Injection {
  fired = 0;
  seen = 0;
  done = false;

  constructor(
    readonly spec: FaultRule,
    readonly methods: ReadonlySet<FsMethod> | undefined,
    readonly owner: FaultFs,
  ) {}

  remove(): void {
    this.done = true;
  }

  /** The fault for `call`, if this rule fires on it. */
  match(call: Omit<FsCall, 'fault'>): Fault | undefined {
    if (this.done || (this.methods !== undefined && !this.methods.has(call.method))) return;
    this.seen++;
    const { at, when, fault = 'EIO', persistent = false } = this.spec;
    let result: Fault | undefined;
    if (when !== undefined) {
      if (at !== undefined && this.seen < at) return;
      const verdict = when(call);
      result = verdict === true ? fault : verdict === false ? undefined : verdict;
    } else if (at === undefined || this.seen >= at) {
      result = fault;
    }
    if (result === undefined) return;
    this.fired++;
    if (!persistent) this.done = true;
    return result;
  }
}

/**
 * An {@link Fs} wrapper that injects faults. Calls not hit by a rule go to
 * the wrapped file system unchanged. Every call is counted and logged
 * (`calls`), with the fault it got.
 *
 * ```ts
 * const fs = new FaultFs(new NodeFs());
 * fs.inject({ method: 'fdatasync', at: 2, fault: 'EIO', persistent: true });
 * fs.inject({ when: (c) => (c.method === 'pwrite' && c.path.endsWith('.wal') ? 'ENOSPC' : undefined) });
 * ```
 */
export class FaultFs implements Fs {
  /** The wrapped file system. */
  readonly inner: Fs;
  readonly #rules: Rule[] = [];
  readonly #counts = new Map<FsMethod, number>();
  readonly #calls: FsCall[] = [];

  /** `pwrite` done synchronously, with the same faults; present when `inner` has it. */
  readonly pwriteSync?: (file: FsFile, bytes: Uint8Array, position: number) => number;
  /** `fdatasync` done synchronously, with the same faults; present when `inner` has it. */
  readonly fdatasyncSync?: (file: FsFile) => void;
  /**
   * {@link Fs.preadSync} through the rules (method `preadSync`; a `short`
   * fault transfers part, a code throws); present when `inner` has it.
   */
  readonly preadSync?: (file: FsFile, into: Uint8Array, position: number) => number;
  /**
   * {@link Fs.pwriteDurable} through the rules (method `pwriteDurable`; a
   * `short` fault writes, durably, only part; a code rejects having written
   * nothing durably — over a file system that models it, as `CrashFs`, a
   * failed write's bytes reached the page cache: see {@link SYNC_FAILED});
   * present when `inner` has it.
   */
  readonly pwriteDurable?: (file: FsFile, bytes: Uint8Array, position: number) => Promise<number>;
  /** {@link Fs.linksAt} through the rules (method `linksAt`, syscall `stat`); present when `inner` has it. */
  readonly linksAt?: (path: string) => Promise<number>;

  constructor(inner: Fs) {
    if (typeof inner !== 'object' || inner === null) throw invalidArgType('inner', 'an Fs', inner);
    this.inner = inner;
    if (typeof inner.pwriteSync === 'function') {
      this.pwriteSync = (file, bytes, position) => {
        const view = this.#faulted('pwriteSync', file, bytes, position);
        return view.length === 0 ? 0 : inner.pwriteSync!(file, view, position);
      };
    }
    if (typeof inner.fdatasyncSync === 'function') {
      this.fdatasyncSync = (file) => {
        const fault = this.#enter('fdatasyncSync', file.path, []);
        const code = codeOf(fault);
        if (code !== undefined) {
          tellSyncFailed(inner, { method: 'fdatasyncSync', file, code });
          throw faultError(fault!, code, 'fdatasyncSync', file.path);
        }
        inner.fdatasyncSync!(file);
      };
    }
    if (typeof inner.pwriteDurable === 'function') {
      this.pwriteDurable = (file, bytes, position) => {
        let view: Uint8Array;
        try {
          view = this.#faulted('pwriteDurable', file, bytes, position, (fault, code) => {
            const named =
              typeof fault === 'object' && 'syscall' in fault ? fault.syscall : undefined;
            if (code === 'ENOSPC' || (named !== undefined && named !== 'write')) return;
            tellSyncFailed(inner, { method: 'pwriteDurable', file, bytes, position, code });
          });
        } catch (error) {
          return Promise.reject(error);
        }
        return view.length === 0 && bytes.length > 0
          ? Promise.resolve(0)
          : inner.pwriteDurable!(file, view, position);
      };
    }
    if (typeof inner.linksAt === 'function') {
      this.linksAt = (path) => this.#call('linksAt', path, [], () => inner.linksAt!(path));
    }
    if (typeof inner.preadSync === 'function') {
      this.preadSync = (file, into, position) => {
        const view = this.#faulted('preadSync', file, into, position);
        return view.length === 0 && into.length > 0 ? 0 : inner.preadSync!(file, view, position);
      };
    }
  }

  /** Adds a fault rule; rules are checked in the order added, the first that fires wins. */
  inject(rule: FaultRule): Injection {
    if (typeof rule !== 'object' || rule === null) throw invalidArgType('rule', 'an object', rule);
    if (rule.at !== undefined) validateInteger('rule.at', rule.at, 1);
    if (rule.when !== undefined && typeof rule.when !== 'function') {
      throw invalidArgType('rule.when', 'a function', rule.when);
    }
    if (rule.fault !== undefined) checkFault(rule.fault);
    const methods =
      rule.method === undefined
        ? undefined
        : new Set<FsMethod>(typeof rule.method === 'string' ? [rule.method] : rule.method);
    for (const method of methods ?? []) {
      if (!(method in SYSCALLS))
        throw invalidArgValue('rule.method', method, 'is not an Fs method');
    }
    const injected = new Rule(rule, methods, this);
    this.#rules.push(injected);
    return injected;
  }

  /** Removes every rule (counts and the log are kept). */
  clear(): void {
    for (const rule of this.#rules) rule.remove();
    this.#rules.length = 0;
  }

  /** Every call so far, in order. */
  get calls(): readonly FsCall[] {
    return this.#calls;
  }

  /** Number of calls so far, of `method` or of all methods. */
  count(method?: FsMethod): number {
    return method === undefined ? this.#calls.length : (this.#counts.get(method) ?? 0);
  }

  /** Forgets the counts and the log (rules keep their own progress). */
  resetCounts(): void {
    this.#calls.length = 0;
    this.#counts.clear();
  }

  /** Logs a call and returns the fault to inject, if any. */
  #enter(method: FsMethod, path: string, args: readonly unknown[]): Fault | undefined {
    const methodIndex = (this.#counts.get(method) ?? 0) + 1;
    this.#counts.set(method, methodIndex);
    const call = { index: this.#calls.length + 1, methodIndex, method, path, args };
    let fault: Fault | undefined;
    for (const rule of this.#rules) {
      fault = rule.match(call);
      if (fault !== undefined) break;
    }
    this.#calls.push(fault === undefined ? call : { ...call, fault });
    return fault;
  }

  /** Runs `call` unless a fault replaces it with a rejection. */
  async #call<T>(
    method: FsMethod,
    path: string,
    args: readonly unknown[],
    call: () => Promise<T>,
    onError?: (code: string) => void,
  ): Promise<T> {
    const fault = this.#enter(method, path, args);
    const code = codeOf(fault);
    if (code !== undefined) {
      onError?.(code);
      throw faultError(fault!, code, method, path);
    }
    return call();
  }

  /** Positional transfer with an optional short fault. */
  async #transfer(
    method: 'pwrite' | 'pread',
    file: FsFile,
    bytes: Uint8Array,
    position: number,
  ): Promise<number> {
    const view = this.#faulted(method, file, bytes, position);
    if (view.length === 0 && bytes.length > 0) return 0;
    return method === 'pwrite'
      ? this.inner.pwrite(file, view, position)
      : this.inner.pread(file, view, position);
  }

  /**
   * Logs a positional transfer and applies its fault: throws an error fault,
   * returns the part of `bytes` a short fault leaves (all of it without one).
   */
  #faulted(
    method: 'pwrite' | 'pwriteSync' | 'pwriteDurable' | 'pread' | 'preadSync',
    file: FsFile,
    bytes: Uint8Array,
    position: number,
    onError?: (fault: Fault, code: string) => void,
  ): Uint8Array {
    const fault = this.#enter(method, file.path, [bytes, position]);
    const code = codeOf(fault);
    if (code !== undefined) {
      onError?.(fault!, code);
      throw faultError(fault!, code, method, file.path);
    }
    if (fault === undefined) return bytes;
    const short =
      fault === 'short'
        ? Math.max(1, Math.floor(bytes.length / 2))
        : (fault as { short: number }).short;
    return bytes.subarray(0, Math.max(0, Math.min(short, bytes.length)));
  }

  open(path: string, mode: OpenMode, permissions?: number): Promise<FsFile> {
    return this.#call('open', path, [mode], () => this.inner.open(path, mode, permissions));
  }

  close(file: FsFile): Promise<void> {
    return this.#call('close', file.path, [], () => this.inner.close(file));
  }

  pwrite(file: FsFile, bytes: Uint8Array, position: number): Promise<number> {
    return this.#transfer('pwrite', file, bytes, position);
  }

  pread(file: FsFile, into: Uint8Array, position: number): Promise<number> {
    return this.#transfer('pread', file, into, position);
  }

  fdatasync(file: FsFile): Promise<void> {
    return this.#call(
      'fdatasync',
      file.path,
      [],
      () => this.inner.fdatasync(file),
      (code) => tellSyncFailed(this.inner, { method: 'fdatasync', file, code }),
    );
  }

  /** Forwards a sync failure injected by a FaultFs wrapping this one to the inner file system. */
  [SYNC_FAILED](failure: SyncFailure): void {
    tellSyncFailed(this.inner, failure);
  }

  ftruncate(file: FsFile, length: number): Promise<void> {
    return this.#call('ftruncate', file.path, [length], () => this.inner.ftruncate(file, length));
  }

  size(file: FsFile): Promise<number> {
    return this.#call('size', file.path, [], () => this.inner.size(file));
  }

  links(file: FsFile): Promise<number> {
    return this.#call('links', file.path, [], () => this.inner.links(file));
  }

  realpath(path: string): Promise<string> {
    return this.#call('realpath', path, [], () => this.inner.realpath(path));
  }

  rename(from: string, to: string): Promise<void> {
    return this.#call('rename', from, [to], () => this.inner.rename(from, to));
  }

  unlink(path: string): Promise<void> {
    return this.#call('unlink', path, [], () => this.inner.unlink(path));
  }

  readdir(path: string): Promise<string[]> {
    return this.#call('readdir', path, [], () => this.inner.readdir(path));
  }

  mkdir(path: string, permissions?: number): Promise<boolean> {
    return this.#call('mkdir', path, [], () => this.inner.mkdir(path, permissions));
  }

  syncDir(path: string): Promise<void> {
    return this.#call('syncDir', path, [], () => this.inner.syncDir(path));
  }

  lock(path: string, permissions?: number): Promise<FsLock> {
    return this.#call('lock', path, [], () => this.inner.lock(path, permissions));
  }
}

/** The error of a fault with `code` injected into `method`: its own `syscall`, or the one the fault names. */
function faultError(fault: Fault, code: string, method: FsMethod, path: string): Error {
  const named = typeof fault === 'object' && 'syscall' in fault ? fault.syscall : undefined;
  return systemError(code, named ?? SYSCALLS[method], path);
}

function codeOf(fault: Fault | undefined): string | undefined {
  if (fault === undefined || fault === 'short') return undefined;
  if (typeof fault === 'string') return fault;
  return 'code' in fault ? fault.code : undefined;
}

function checkFault(fault: unknown): void {
  if (fault === 'EIO' || fault === 'ENOSPC' || fault === 'short') return;
  if (typeof fault === 'object' && fault !== null) {
    const { code, short, syscall } = fault as {
      code?: unknown;
      short?: unknown;
      syscall?: unknown;
    };
    const syscallOk = syscall === undefined || (typeof syscall === 'string' && syscall.length > 0);
    if (typeof code === 'string' && code.length > 0 && syscallOk) return;
    if (typeof short === 'number' && Number.isInteger(short) && short >= 0) return;
  }
  throw invalidArgValue(
    'rule.fault',
    fault,
    "must be 'EIO', 'ENOSPC', 'short', { code }, { code, syscall } or { short: n }",
  );
}
