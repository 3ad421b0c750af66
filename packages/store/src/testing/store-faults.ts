/**
 * `StoreFaults`: how the conformance suite makes a store's own I/O fail, to
 * check the failure semantics of the Store contract (the suite option
 * `faults`). Backend-neutral: a backend not on our `Fs` layer implements it
 * itself; {@link faultFsFaults} builds it from a {@link FaultFs} for a backend
 * that is.
 */
import type { FaultFs, Injection } from './fault-fs.js';

/**
 * Arms failures of one store's underlying I/O. Each `failNext…` arms exactly
 * one failure, of the next call of its kind that the store makes from then
 * on (whatever operation makes it); the suite arms it right before the
 * operation meant to meet it, on a store with nothing else in flight.
 */
export interface StoreFaults {
  /**
   * The next data write (the system call a `write` of bytes makes, a
   * `pwrite`) fails with `code`, having written nothing: it rejects like a
   * `node:fs` call, an error carrying `code` (and `syscall`). The contract
   * then requires `write` to reject with `IoError` `WAL_IO` (`NoSpaceError`
   * `WAL_NO_SPACE` for `ENOSPC`), `errno` the code, a `syscall` and the
   * failure as `cause`, and to latch nothing.
   */
  failNextWrite(code: 'EIO' | 'ENOSPC'): void;
  /**
   * The next flush of written data to stable storage (the `fdatasync` or
   * `fsync` a `sync()` makes for dirty data) fails with `EIO`. The contract
   * then requires the store to latch: `sync` rejects with `FailedError`
   * `WAL_FAILED` (the failure as `cause`), and so does every later call.
   */
  failNextSync(): void;
  /**
   * The next durable write call of `writeDurable` fails with `EIO`: the
   * call that makes the bytes durable (an `O_DSYNC` write, or a fallback's
   * fdatasync or directory fsync), after which their durability is
   * unknown. Needed when the store has `writeDurable` and is `durable`;
   * the contract then requires the same latch as for a failed sync.
   */
  failNextDurableWrite?(): void;
  /**
   * The next read of stored bytes from storage (a `pread`) fails with
   * `EIO`. The contract then requires `read` (and `readInto`) to reject
   * with `IoError` `WAL_IO` (`errno`, a `syscall`, the failure as `cause`)
   * and to latch nothing: the same read then returns the bytes. Optional:
   * the suite checks failed reads only with it. A backend that serves some
   * reads from memory makes the next read fail all the same.
   */
  failNextRead?(): void;
  /**
   * The next call of a `truncate` that cuts stored bytes (a file's
   * truncation, or its deletion) fails with `EIO`. The contract then
   * requires the store to latch, as after a failed fsync (the length on
   * storage is unknown): `truncate` rejects with `FailedError`
   * `WAL_FAILED`, the failure as `cause`, and so does every later call;
   * `close()` resolves, and a reopen holds every synced byte below the cut
   * and nothing past the length before the truncation. Optional: the suite
   * checks failed truncations only with it.
   */
  failNextTruncate?(): void;
  /** Disarms every failure armed that has not happened yet. */
  clear(): void;
}

/**
 * The {@link StoreFaults} of a store opened on `fs` (our backends, or any
 * on the `Fs` layer): a data write is the next `pwrite` (or `pwriteSync`)
 * through `fs`, a data sync the next `fdatasync` (or `fdatasyncSync`), a
 * durable write call the next `pwriteDurable`, `fdatasync` or `syncDir`, a
 * read the next `pread` (or `preadSync`), a truncation's cut the next
 * `ftruncate` or `unlink`, whatever file they name. Each arms a one-shot rule on `fs`, so nothing
 * else may use `fs` between the arming and the operation.
 *
 * ```ts
 * const fs = new FaultFs(new NodeFs());
 * const store = await FileStore.open(path, { fs });
 * const faults = faultFsFaults(fs);
 * faults.failNextSync();
 * await store.sync(); // rejects with WAL_FAILED
 * ```
 */
export function faultFsFaults(fs: FaultFs): StoreFaults {
  let armed: Injection[] = [];
  const arm = (injection: Injection): void => {
    armed.push(injection);
  };
  return {
    failNextWrite: (code) => arm(fs.inject({ method: ['pwrite', 'pwriteSync'], fault: code })),
    failNextSync: () => arm(fs.inject({ method: ['fdatasync', 'fdatasyncSync'], fault: 'EIO' })),
    failNextDurableWrite: () =>
      arm(fs.inject({ method: ['pwriteDurable', 'fdatasync', 'syncDir'], fault: 'EIO' })),
    failNextRead: () => arm(fs.inject({ method: ['pread', 'preadSync'], fault: 'EIO' })),
    failNextTruncate: () => arm(fs.inject({ method: ['ftruncate', 'unlink'], fault: 'EIO' })),
    clear: () => {
      for (const injection of armed) injection.remove();
      armed = [];
    },
  };
}
