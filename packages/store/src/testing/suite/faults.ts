/**
 * Failures of the store's own I/O (suite option `faults`): a failed write or
 * read rejects with a typed I/O error and latches nothing; for a `durable`
 * store a failed sync, or a failed durable write call of `writeDurable`,
 * latches `WAL_FAILED`, as does a failed truncation of stored bytes in any
 * store: every later call rejects with it, `close()` still resolves, and a
 * persistent store reopens with what was synced before the failure.
 */
import type { Store } from '../../store.js';
import type { StoreFaults } from '../store-faults.js';
import { ConformanceError, check, equalBytes, pattern, start } from './check.js';
import type { SuiteContext } from './context.js';

/** What the store holds, synced, before a failure is armed. */
const SYNCED = (): Uint8Array => pattern(1000, 51);

/** What the contract says of a latched failure, for failure messages. */
const LATCH_RULE =
  'the contract latches a failed fsync or durable write call: every later call rejects with FailedError WAL_FAILED';

/**
 * Starts `operation`, armed to fail, and returns its rejection. A
 * resolution, or a synchronous throw, fails the check.
 */
async function rejection(
  operation: () => Promise<unknown>,
  what: string,
  armed: string,
): Promise<unknown> {
  try {
    await start(operation, what);
  } catch (error) {
    if (error instanceof ConformanceError) throw error;
    return error;
  }
  throw new ConformanceError(
    `${what}: resolved although faults.${armed} made its I/O fail; the contract requires a rejection (or the faults hook does not reach the store's I/O)`,
  );
}

/** Awaits `operation`, which must resolve: `rule` says why. */
async function works<T>(operation: () => Promise<T>, what: string, rule: string): Promise<T> {
  try {
    return (await start(operation, what)) as T;
  } catch (error) {
    if (error instanceof ConformanceError) throw error;
    throw new ConformanceError(`${what}: rejected (${String(error)}); ${rule}`);
  }
}

interface Coded {
  readonly code?: unknown;
  readonly name?: unknown;
  readonly errno?: unknown;
  readonly syscall?: unknown;
  readonly cause?: unknown;
}

/** Checks the rejection of a write or read whose I/O failed with `errno`. */
function checkIoError(error: unknown, errno: 'EIO' | 'ENOSPC', what: string): void {
  const [code, name] =
    errno === 'ENOSPC' ? ['WAL_NO_SPACE', 'NoSpaceError'] : ['WAL_IO', 'IoError'];
  const e = (error ?? {}) as Coded;
  const rule = `a failed I/O call rejects with ${name} ${code} (errno, syscall, cause)`;
  check(
    e.code === code,
    `${what}: rejected with code ${String(e.code)} (${String(error)}), not ${code}: ${rule}`,
  );
  check(error instanceof Error && e.name === name, `${what}: a ${String(e.name)}, not a ${name}`);
  check(
    e.errno === errno,
    `${what}: errno is ${String(e.errno)}, not '${errno}' (the failed call's error code): ${rule}`,
  );
  check(
    typeof e.syscall === 'string' && e.syscall.length > 0,
    `${what}: no syscall (the failed system call): ${rule}`,
  );
  check(e.cause !== undefined, `${what}: no cause (the original failure): ${rule}`);
}

/** Checks the rejection of an operation whose fsync or durable write failed with EIO. */
function checkFailed(error: unknown, what: string): void {
  const e = (error ?? {}) as Coded;
  check(
    e.code === 'WAL_FAILED',
    `${what}: rejected with code ${String(e.code)} (${String(error)}), not WAL_FAILED: ${LATCH_RULE}`,
  );
  check(
    error instanceof Error && e.name === 'FailedError',
    `${what}: a ${String(e.name)}, not a FailedError`,
  );
  check(e.cause !== undefined, `${what}: no cause: a FailedError carries the original failure`);
  const chain: Coded[] = [];
  for (let c: unknown = e.cause; typeof c === 'object' && c !== null && chain.length < 10; ) {
    chain.push(c as Coded);
    c = (c as Coded).cause;
  }
  check(
    chain.some((c) => c.code === 'EIO' || c.errno === 'EIO'),
    `${what}: its cause (${String(e.cause)}) is not the failure injected (EIO)`,
  );
}

/** Checks that `call`, made on a latched store, rejects (never throws) with WAL_FAILED. */
async function refused(call: () => Promise<unknown>, what: string): Promise<void> {
  try {
    await start(call, what);
  } catch (error) {
    if (error instanceof ConformanceError) throw error;
    const { code } = (error ?? {}) as Coded;
    check(
      code === 'WAL_FAILED',
      `${what}: rejected with ${String(code)} (${String(error)}), not WAL_FAILED: ${LATCH_RULE}`,
    );
    return;
  }
  throw new ConformanceError(`${what}: resolved; ${LATCH_RULE}`);
}

/**
 * Checks that every operation `store` has is refused after a latched
 * failure (`when` says which): the asynchronous ones reject with WAL_FAILED,
 * `writeNow` and `syncNow` throw it (or return false, having done nothing).
 */
async function latched(store: Store, when: string): Promise<void> {
  const end = store.length as number;
  const bytes = pattern(10, 55);
  const calls: Array<[string, () => Promise<unknown>]> = [
    ['write', () => store.write(end, bytes)],
    ['write over synced bytes', () => store.write(0, bytes)],
    ['read', () => store.read(0, 10)],
    ['sync', () => store.sync()],
    ['truncate', () => store.truncate(end)],
    ['truncateBefore', () => store.truncateBefore(store.head as number)],
    ['readMeta', () => store.readMeta()],
    ['updateMeta', () => store.updateMeta({ suite: 'after a failure' })],
  ];
  if (typeof store.writeDurable === 'function') {
    calls.push(['writeDurable', () => store.writeDurable!(end, bytes)]);
  }
  if (typeof store.readInto === 'function') {
    calls.push(['readInto', () => store.readInto!(0, new Uint8Array(10))]);
  }
  if (typeof store.readyEnd === 'function') calls.push(['readyEnd', () => store.readyEnd!()]);
  if (typeof store.refresh === 'function') calls.push(['refresh', () => store.refresh!()]);
  for (const [name, call] of calls) await refused(call, `${name} ${when}`);
  for (const [name, call] of [
    ['writeNow', () => store.writeNow?.(end, bytes)],
    ['syncNow', () => store.syncNow?.()],
  ] as const) {
    let done: boolean | undefined;
    try {
      done = call();
    } catch (error) {
      const { code } = (error ?? {}) as Coded;
      check(
        code === 'WAL_FAILED',
        `${name} ${when}: threw ${String(code)} (${String(error)}), not WAL_FAILED: ${LATCH_RULE}`,
      );
    }
    check(done !== true, `${name} ${when}: returned true (done); ${LATCH_RULE}`);
  }
}

/** Closes a latched store: `close()` must resolve (and so release the lock). */
async function closes(store: Store, when: string): Promise<void> {
  await works(
    () => store.close(),
    `close ${when}`,
    'close() does not reject because of a latched failure, and releases the lock',
  );
}

/** Registers the checks of failures (given the suite option `faults`). */
export function faultTests(context: SuiteContext): void {
  const { test, withStore, factory, reopen, faults: faultsOf } = context;
  if (faultsOf === undefined) return;

  /** `withStore`, with the store's faults, disarmed before it closes. */
  const withFaults = (fn: (store: Store, faults: StoreFaults) => Promise<void>) =>
    withStore(async (store) => {
      const faults = faultsOf(store);
      try {
        await fn(store, faults);
      } finally {
        faults.clear();
      }
    });

  /**
   * Runs `fn` on a fresh store holding SYNCED at 0, synced; disarms the
   * faults and closes the store afterwards, ignoring a failed close (`fn`
   * checks the close it needs).
   */
  const withLatchable = async (fn: (store: Store, faults: StoreFaults) => Promise<void>) => {
    const store = await factory();
    const faults = faultsOf(store);
    try {
      await store.write(0, SYNCED());
      await store.sync();
      await fn(store, faults);
    } finally {
      faults.clear();
      await store.close().catch(() => undefined);
    }
  };

  /** Reopens a latched store closed with `closes`: the lock was released, the synced bytes are there. */
  const reopens = async (store: Store, when: string): Promise<void> => {
    const again = await works(
      () => reopen!(store),
      `reopen ${when}`,
      'close() releases the lock even after a latched failure, and the store opens again',
    );
    try {
      check(
        (again.length as number) >= 1000,
        `length after reopen ${when} is ${again.length}, below the 1000 bytes synced before the failure`,
      );
      equalBytes(
        await again.read(0, 1000),
        SYNCED(),
        `the bytes synced before the failure, after reopen ${when}`,
      );
    } finally {
      await again.close();
    }
  };

  for (const errno of ['EIO', 'ENOSPC'] as const) {
    const code = errno === 'EIO' ? 'IoError WAL_IO' : 'NoSpaceError WAL_NO_SPACE';
    test(`faults: a write whose I/O fails with ${errno} rejects with ${code} (errno, syscall, cause)`, () =>
      withFaults(async (store, faults) => {
        await store.write(0, SYNCED());
        faults.failNextWrite(errno);
        const what = `a write failing with ${errno}`;
        checkIoError(
          await rejection(() => store.write(500, pattern(1000, 53)), what, 'failNextWrite'),
          errno,
          what,
        );
      }));
  }

  test('faults: a failed write latches nothing: a write at its offset, a sync and a read work', () =>
    withFaults(async (store, faults) => {
      await store.write(0, SYNCED());
      await store.sync();
      faults.failNextWrite('EIO');
      await rejection(
        () => store.write(500, pattern(1000, 53)),
        'the failing write',
        'failNextWrite',
      );
      const rule = 'a failed write (not an fsync) latches nothing';
      const again = 'after a failed write';
      await works(
        () => store.write(500, pattern(1000, 54)),
        `a write at its offset ${again}`,
        rule,
      );
      await works(() => store.sync(), `sync ${again}`, rule);
      check(
        (store.length as number) === 1500,
        `length is ${store.length} ${again} and a write of [500, 1500), not 1500`,
      );
      const bytes = await works(() => store.read(0, 1500), `read ${again}`, rule);
      equalBytes(bytes.subarray(0, 500), SYNCED().subarray(0, 500), `the bytes before ${again}`);
      equalBytes(bytes.subarray(500), pattern(1000, 54), `the bytes written ${again}`);
      await works(() => store.readMeta(), `readMeta ${again}`, rule);
      await works(() => store.updateMeta({ suite: 1 }), `updateMeta ${again}`, rule);
    }));

  test('faults: a failed sync rejects with FailedError WAL_FAILED carrying the failure', () =>
    withLatchable(async (store, faults) => {
      if (!store.supports.durable) return;
      await store.write(1000, pattern(1000, 52));
      faults.failNextSync();
      const what = 'a sync whose flush failed';
      checkFailed(await rejection(() => store.sync(), what, 'failNextSync'), what);
    }));

  test('faults: after a failed sync every call rejects with WAL_FAILED, and close() resolves', () =>
    withLatchable(async (store, faults) => {
      if (!store.supports.durable) return;
      await store.write(1000, pattern(1000, 52));
      faults.failNextSync();
      await rejection(() => store.sync(), 'a sync whose flush failed', 'failNextSync');
      await latched(store, 'after a failed sync');
      await closes(store, 'after a failed sync');
    }));

  test('faults: after a failed sync and close, a reopen works and holds what was synced', () =>
    withLatchable(async (store, faults) => {
      if (!store.supports.durable || !store.supports.persistent || reopen === undefined) return;
      await store.write(1000, pattern(1000, 52));
      faults.failNextSync();
      await rejection(() => store.sync(), 'a sync whose flush failed', 'failNextSync');
      await closes(store, 'after a failed sync');
      await reopens(store, 'after a failed sync');
    }));

  /** Makes a durable write whose durable call fails; false when the store has none to check. */
  const failDurableWrite = async (store: Store, faults: StoreFaults): Promise<boolean> => {
    if (typeof store.writeDurable !== 'function' || !store.supports.durable) return false;
    check(
      faults.failNextDurableWrite !== undefined,
      'the store has writeDurable and is durable: its faults need failNextDurableWrite',
    );
    faults.failNextDurableWrite();
    const what = 'a durable write whose durable call failed';
    const error = await rejection(
      () => store.writeDurable!(1000, pattern(1000, 56)),
      what,
      'failNextDurableWrite',
    );
    checkFailed(error, what);
    return true;
  };

  test('faults: a failed durable write latches WAL_FAILED: every later call rejects, close() resolves', () =>
    withLatchable(async (store, faults) => {
      if (!(await failDurableWrite(store, faults))) return;
      await latched(store, 'after a failed durable write');
      await closes(store, 'after a failed durable write');
    }));

  test('faults: after a failed durable write and close, a reopen works and holds what was synced', () =>
    withLatchable(async (store, faults) => {
      if (!store.supports.persistent || reopen === undefined) return;
      if (!(await failDurableWrite(store, faults))) return;
      await closes(store, 'after a failed durable write');
      await reopens(store, 'after a failed durable write');
    }));

  test('faults: a read whose I/O fails rejects with IoError WAL_IO (errno, syscall, cause) and latches nothing', () =>
    withFaults(async (store, faults) => {
      if (faults.failNextRead === undefined) return;
      await store.write(0, SYNCED());
      await store.sync();
      const reads: Array<[string, () => Promise<Uint8Array>]> = [
        ['read', () => store.read(100, 800)],
      ];
      if (typeof store.readInto === 'function') {
        reads.push([
          'readInto',
          async () => {
            const into = new Uint8Array(800);
            await store.readInto!(100, into);
            return into;
          },
        ]);
      }
      const rule = 'a failed read latches nothing';
      for (const [name, read] of reads) {
        faults.failNextRead();
        const what = `a ${name} failing with EIO`;
        checkIoError(await rejection(read, what, 'failNextRead'), 'EIO', what);
        const again = `after ${what}`;
        equalBytes(
          await works(read, `the same ${name} ${again}`, rule),
          SYNCED().subarray(100, 900),
          `the bytes a ${name} returns ${again}`,
        );
        await works(() => store.write(1000, pattern(10, 57)), `a write ${again}`, rule);
        await works(() => store.sync(), `sync ${again}`, rule);
      }
    }));

  /** Truncates a store holding SYNCED then 1000 more synced bytes to 1500, its cut armed to fail. */
  const failTruncate = async (store: Store, faults: StoreFaults): Promise<boolean> => {
    if (faults.failNextTruncate === undefined) return false;
    await store.write(1000, pattern(1000, 52));
    await store.sync();
    faults.failNextTruncate();
    const what = 'a truncate whose cut failed';
    checkFailed(await rejection(() => store.truncate(1500), what, 'failNextTruncate'), what);
    return true;
  };

  test('faults: a failed truncate latches WAL_FAILED: every later call rejects, close() resolves', () =>
    withLatchable(async (store, faults) => {
      if (!(await failTruncate(store, faults))) return;
      await latched(store, 'after a failed truncate');
      await closes(store, 'after a failed truncate');
    }));

  test('faults: after a failed truncate and close, a reopen holds the synced bytes below the cut', () =>
    withLatchable(async (store, faults) => {
      if (!store.supports.persistent || reopen === undefined) return;
      if (!(await failTruncate(store, faults))) return;
      await closes(store, 'after a failed truncate');
      const when = 'after a failed truncate to 1500 of 2000 synced bytes';
      const again = await works(
        () => reopen(store),
        `reopen ${when}`,
        'close() releases the lock even after a latched failure, and the store opens again',
      );
      try {
        const length = again.length as number;
        check(
          length >= 1500 && length <= 2000,
          `length after reopen ${when} is ${length}: a failed truncation keeps what lies below its cut and adds nothing`,
        );
        const bytes = await again.read(0, 1500);
        equalBytes(
          bytes.subarray(0, 1000),
          SYNCED(),
          `the first 1000 synced bytes, reopened ${when}`,
        );
        equalBytes(
          bytes.subarray(1000),
          pattern(1000, 52).subarray(0, 500),
          `the synced bytes of [1000, 1500), reopened ${when}`,
        );
      } finally {
        await again.close();
      }
    }));
}
