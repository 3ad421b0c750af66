// The conformance suite must catch broken backends: each store below breaks one
// rule of the contract, and the suite test that checks that rule must fail
// (while a correct store passes every test, see memory-store.test.ts).
import assert from 'node:assert/strict';
import { FailedError, toWalError } from '@wal/errors';
import { FileStore, MemoryStore, type MetaUpdate, type Store, type StoreMeta } from '@wal/store';
import {
  ConformanceError,
  CrashFs,
  FaultFs,
  faultFsFaults,
  type StoreFaults,
  type SuiteOptions,
  suite,
  systemError,
} from '@wal/store/testing';

/** A Store that forwards to a MemoryStore; variants override one method. */
class Forwarding implements Store {
  inner = new MemoryStore();
  get supports() {
    return this.inner.supports;
  }
  get head() {
    return this.inner.head;
  }
  get length() {
    return this.inner.length;
  }
  get closed() {
    return this.inner.closed;
  }
  write(offset: number, bytes: Uint8Array) {
    return this.inner.write(offset, bytes);
  }
  read(offset: number, length: number) {
    return this.inner.read(offset, length);
  }
  sync() {
    return this.inner.sync();
  }
  truncate(length: number) {
    return this.inner.truncate(length);
  }
  truncateBefore(offset: number) {
    return this.inner.truncateBefore(offset);
  }
  readMeta(): Promise<StoreMeta> {
    return this.inner.readMeta();
  }
  updateMeta(fields: MetaUpdate) {
    return this.inner.updateMeta(fields);
  }
  close() {
    return this.inner.close();
  }
}

/**
 * A durable Store over a MemoryStore whose own "I/O" can be made to fail, the
 * way a user's backend not on the Fs layer implements the suite's
 * `faults` itself: a failed write rejects with a typed I/O error and latches
 * nothing, a failed sync or durable write latches. Variants break one rule.
 */
class Faulty extends Forwarding {
  failure: Error | undefined;
  next: {
    write?: 'EIO' | 'ENOSPC' | undefined;
    sync?: boolean;
    durable?: boolean;
    read?: boolean;
    truncate?: boolean;
  } = {};
  readonly faults: StoreFaults = {
    failNextWrite: (code) => {
      this.next.write = code;
    },
    failNextSync: () => {
      this.next.sync = true;
    },
    failNextDurableWrite: () => {
      this.next.durable = true;
    },
    failNextRead: () => {
      this.next.read = true;
    },
    failNextTruncate: () => {
      this.next.truncate = true;
    },
    clear: () => {
      this.next = {};
    },
  };
  override get supports() {
    return { ...this.inner.supports, durable: true };
  }
  /** Runs `run` unless the store latched a failure (checked after closed). */
  guard<T>(run: () => Promise<T>): Promise<T> {
    return !this.closed && this.failure !== undefined ? Promise.reject(this.failure) : run();
  }
  /** The rejection of a write whose I/O failed with `code`. */
  writeFailed(code: 'EIO' | 'ENOSPC', offset: number): Promise<never> {
    return Promise.reject(toWalError(systemError(code, 'write'), 'write', offset));
  }
  /** Latches a failed fsync (of `syscall`) and rejects with it. */
  fsyncFailed(syscall: string): Promise<never> {
    this.failure = new FailedError(`${syscall} failed`, {
      cause: toWalError(systemError('EIO', syscall), syscall),
    });
    return Promise.reject(this.failure);
  }
  override write(offset: number, bytes: Uint8Array) {
    return this.guard(() => {
      const code = this.next.write;
      if (code === undefined) return super.write(offset, bytes);
      this.next.write = undefined;
      return this.writeFailed(code, offset);
    });
  }
  writeDurable(offset: number, bytes: Uint8Array) {
    return this.guard(() => {
      if (!this.next.durable) return this.inner.writeDurable(offset, bytes);
      this.next.durable = false;
      return this.fsyncFailed('write');
    });
  }
  /** The rejection of a read whose I/O failed. */
  readFailed(offset: number): Promise<never> {
    return Promise.reject(toWalError(systemError('EIO', 'read'), 'read', offset));
  }
  override read(offset: number, length: number) {
    return this.guard(() => {
      if (!this.next.read) return super.read(offset, length);
      this.next.read = false;
      return this.readFailed(offset);
    });
  }
  override sync() {
    return this.guard(() => {
      if (!this.next.sync) return super.sync();
      this.next.sync = false;
      return this.fsyncFailed('fdatasync');
    });
  }
  override truncate(length: number) {
    return this.guard(() => {
      if (!this.next.truncate) return super.truncate(length);
      this.next.truncate = false;
      return this.fsyncFailed('ftruncate');
    });
  }
  override truncateBefore(offset: number) {
    return this.guard(() => super.truncateBefore(offset));
  }
  override readMeta() {
    return this.guard(() => super.readMeta());
  }
  override updateMeta(fields: MetaUpdate) {
    return this.guard(() => super.updateMeta(fields));
  }
}

/** The suite option `faults` of a Faulty store. */
const faultyFaults = { faults: (store: Store) => (store as Faulty).faults };

interface Registered {
  name: string;
  fn: () => Promise<void>;
}

async function failures(
  factory: () => Promise<Store>,
  reopen?: (store: Store) => Promise<Store>,
  extra: Partial<SuiteOptions> = {},
): Promise<Map<string, unknown>> {
  const tests: Registered[] = [];
  suite({
    test: (name, fn) => tests.push({ name, fn }),
    factory,
    runs: 30,
    ...(reopen ? { reopen } : {}),
    ...extra,
  });
  const failed = new Map<string, unknown>();
  for (const { name, fn } of tests) {
    try {
      await fn();
    } catch (error) {
      failed.set(name, error);
    }
  }
  return failed;
}

async function expectFailure(
  factory: () => Promise<Store>,
  test: RegExp,
  message: RegExp,
  reopen?: (store: Store) => Promise<Store>,
  extra: Partial<SuiteOptions> = {},
): Promise<void> {
  const failed = await failures(factory, reopen, extra);
  const match = [...failed].find(([name]) => test.test(name));
  assert.ok(
    match,
    `expected a failure of a test matching ${test}; failed: ${[...failed.keys()].join(' | ') || 'none'}`,
  );
  const error = match[1];
  const text =
    error instanceof Error
      ? `${error.message}\n${String((error as { cause?: unknown }).cause ?? '')}`
      : String(error);
  assert.match(text, message);
}

describe('conformance suite catches broken stores', () => {
  it('a correct store fails no test', async () => {
    const failed = await failures(async () => new MemoryStore());
    assert.deepEqual([...failed.keys()], []);
  });

  it('a store declaring nowOnceCreated whose writeNow or syncNow never does the work', async () => {
    /** Checks the arguments as writeNow does, then says it would wait (done for no bytes). */
    const refuse = (store: MemoryStore, offset: number, bytes: Uint8Array): boolean =>
      store.writeNow(offset, ArrayBuffer.isView(bytes) ? bytes.subarray(0, 0) : bytes) &&
      bytes.length === 0;
    class LazyWrite extends Forwarding {
      writeNow(offset: number, bytes: Uint8Array) {
        return refuse(this.inner, offset, bytes);
      }
      syncNow() {
        return this.inner.syncNow();
      }
    }
    class LazySync extends Forwarding {
      writeNow(offset: number, bytes: Uint8Array) {
        return this.inner.writeNow(offset, bytes);
      }
      syncNow() {
        this.inner.syncNow();
        return false;
      }
    }
    const declared = { nowOnceCreated: true };
    for (const lazy of [LazyWrite, LazySync]) {
      const failed = await failures(async () => new lazy());
      assert.deepEqual([...failed.keys()], [], `${lazy.name}: ${[...failed.values()].join(' | ')}`);
    }
    await expectFailure(
      async () => new LazyWrite(),
      /done at once/,
      /writeNow\(100, 300\) returned true/,
      undefined,
      declared,
    );
    await expectFailure(
      async () => new LazySync(),
      /done at once/,
      /syncNow after writeNow returned true/,
      undefined,
      declared,
    );
  });

  it('a gap that does not read as zeros', async () => {
    class Dirty extends Forwarding {
      override async read(offset: number, length: number) {
        const bytes = await super.read(offset, length);
        return bytes.map((b) => (b === 0 ? 1 : b));
      }
    }
    await expectFailure(async () => new Dirty(), /gap before a write/, /byte \d+ is 1, expected 0/);
  });

  it('a read that comes back short before the end', async () => {
    class Short extends Forwarding {
      override async read(offset: number, length: number) {
        const bytes = await super.read(offset, length);
        return bytes.length > 1 ? bytes.subarray(0, bytes.length - 1) : bytes;
      }
    }
    await expectFailure(
      async () => new Short(),
      /short only at the end/,
      /expected \d+ bytes, got \d+/,
    );
    await expectFailure(async () => new Short(), /round-trip/, /expected \d+ bytes, got \d+/);
  });

  it("a store that keeps the caller's buffer instead of a copy", async () => {
    // Holds the last written buffer and serves reads of its range from it.
    class Aliasing extends Forwarding {
      #last: { offset: number; bytes: Uint8Array } | undefined;
      override async write(offset: number, bytes: Uint8Array) {
        await super.write(offset, bytes);
        this.#last = { offset, bytes };
      }
      override async read(offset: number, length: number) {
        const last = this.#last;
        if (last !== undefined && offset === last.offset && length === last.bytes.length) {
          return last.bytes;
        }
        return super.read(offset, length);
      }
    }
    await expectFailure(
      async () => new Aliasing(),
      /keeps a copy of what it writes/,
      /after the buffer was reused/,
    );
  });

  it('a head rounded down to a page', async () => {
    class Rounding extends Forwarding {
      override truncateBefore(offset: number) {
        return super.truncateBefore(offset - (offset % 4096));
      }
    }
    await expectFailure(
      async () => new Rounding(),
      /truncateBefore moves the head exactly/,
      /head is 69632, expected exactly 70001/,
    );
  });

  it('a truncate that does not drop the suffix', async () => {
    class Lazy extends Forwarding {
      override async truncate(_length: number) {}
    }
    await expectFailure(
      async () => new Lazy(),
      /truncate drops the suffix/,
      /length is 5000 after truncate\(1200\)/,
    );
  });

  it('an argument check that throws synchronously', async () => {
    class Thrower extends Forwarding {
      override write(offset: number, bytes: Uint8Array) {
        if (offset < 0) throw new RangeError('negative');
        return super.write(offset, bytes);
      }
    }
    await expectFailure(async () => new Thrower(), /invalid arguments/, /threw synchronously/);
  });

  it('a plain Error instead of a coded one', async () => {
    class Uncoded extends Forwarding {
      override async truncate(length: number) {
        if (length > this.length) throw new Error('too far');
        return super.truncate(length);
      }
    }
    await expectFailure(
      async () => new Uncoded(),
      /truncate drops the suffix/,
      /expected code ERR_OUT_OF_RANGE, got undefined/,
    );
  });

  it('metadata handed out by reference, or a merge that keeps removed keys', async () => {
    class Leaky extends Forwarding {
      meta: Record<string, string | number | boolean> = {};
      override async readMeta() {
        return this.meta;
      }
      override async updateMeta(fields: MetaUpdate) {
        await super.updateMeta(fields);
        this.meta = { ...(await super.readMeta()) };
      }
    }
    await expectFailure(async () => new Leaky(), /metadata merges/, /mutating a read copy/);
    class Sticky extends Forwarding {
      override async readMeta() {
        return { ...(await super.readMeta()), c: true };
      }
    }
    await expectFailure(async () => new Sticky(), /metadata merges/, /metadata is/);
  });

  it('no WAL_BUSY for a truncation during a write', async () => {
    class Unchecked extends Forwarding {
      override truncate(length: number) {
        return Promise.resolve().then(() =>
          length <= this.length ? undefined : super.truncate(length),
        );
      }
    }
    await expectFailure(
      async () => new Unchecked(),
      /exclusive/,
      /resolved, expected a rejection with WAL_BUSY/,
    );
  });

  it('a closed store that still answers', async () => {
    class Undead extends Forwarding {
      override read(offset: number, length: number) {
        return this.closed ? Promise.resolve(new Uint8Array(0)) : super.read(offset, length);
      }
    }
    await expectFailure(async () => new Undead(), /after close/, /read after close: resolved/);
  });

  it('a persistent store without reopen, or one that forgets', async () => {
    class Claims extends Forwarding {
      override get supports() {
        return { ...this.inner.supports, persistent: true };
      }
    }
    await expectFailure(
      async () => new Claims(),
      /a new store is empty/,
      /needs the suite option `reopen`/,
    );
    await expectFailure(
      async () => new Claims(),
      /persistent stores keep/,
      /head after reopen is 0, expected 12345/,
      async () => new Claims(),
    );
  });

  it('a locking store that lets a second opener in', async () => {
    class NoLock extends Forwarding {
      override get supports() {
        return { ...this.inner.supports, persistent: true, locking: true };
      }
    }
    await expectFailure(
      async () => new NoLock(),
      /second opener/,
      /second opener: resolved, expected a rejection with WAL_LOCKED/,
      async () => new NoLock(),
    );
  });

  it('a durable write that skips its checks, or that is only a write', async () => {
    class Unchecked extends Forwarding {
      writeDurable(offset: number, bytes: Uint8Array) {
        return this.closed ? Promise.resolve() : this.inner.write(offset, bytes);
      }
    }
    await expectFailure(
      async () => new Unchecked(),
      /writeDurable after close/,
      /writeDurable after close: resolved/,
    );
    // A FileStore over CrashFs whose writeDurable is its write: lost by a power loss.
    const fsOf = new WeakMap<Store, CrashFs>();
    const open = async (fs: CrashFs): Promise<Store> => {
      const store = await FileStore.open('/log', { fs });
      const plain = new Proxy(store, {
        get(target, property) {
          if (property === 'writeDurable') {
            return (offset: number, bytes: Uint8Array) => target.write(offset, bytes);
          }
          const value: unknown = Reflect.get(target, property, target);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      });
      fsOf.set(plain, fs);
      return plain;
    };
    const powerLoss = (store: Store) =>
      [...fsOf.get(store)!.crashStates({ limit: 10 })].map((state) => () => open(state.fs()));
    await expectFailure(
      () => open(new CrashFs()),
      /survives a power loss/,
      /the first durable write/,
      (store) => open(fsOf.get(store)!),
      { powerLoss },
    );
    // The same store without `powerLoss`: nothing else can tell.
    const failed = await failures(
      () => open(new CrashFs()),
      (store) => open(fsOf.get(store)!),
    );
    assert.deepEqual([...failed.keys()], []);
  });

  describe('failures (the suite option faults)', () => {
    /** The names of the suite's tests of failures. */
    const faultTests = (): string[] => {
      const names: string[] = [];
      suite({
        test: (name) => names.push(name),
        factory: async () => new Faulty(),
        ...faultyFaults,
      });
      return names.filter((name) => name.startsWith('faults:'));
    };

    it('are registered only with faults, and a correct store fails none of them', async () => {
      const without: string[] = [];
      suite({ test: (name) => without.push(name), factory: async () => new MemoryStore() });
      assert.deepEqual(
        without.filter((name) => name.startsWith('faults:')),
        [],
      );
      assert.equal(faultTests().length, 11);
      const failed = await failures(async () => new Faulty(), undefined, faultyFaults);
      assert.deepEqual([...failed.keys()], [], [...failed.values()].join(' | '));
    });

    it('a FileStore over FaultFs fails none of them', async () => {
      const fsOf = new WeakMap<Store, FaultFs>();
      const open = async (fs: FaultFs): Promise<Store> => {
        const store = await FileStore.open('/log', { fs });
        fsOf.set(store, fs);
        return store;
      };
      const failed = await failures(
        () => open(new FaultFs(new CrashFs())),
        (store) => open(fsOf.get(store)!),
        { faults: (store) => faultFsFaults(fsOf.get(store)!) },
      );
      assert.deepEqual([...failed.keys()], [], [...failed.values()].join(' | '));
    });

    it('a failed write rejected with an untyped error', async () => {
      class Untyped extends Faulty {
        override writeFailed(code: 'EIO' | 'ENOSPC'): Promise<never> {
          return Promise.reject(systemError(code, 'write'));
        }
      }
      await expectFailure(
        async () => new Untyped(),
        /faults: a write whose I\/O fails with EIO rejects with IoError WAL_IO/,
        /rejected with code EIO .*not WAL_IO/,
        undefined,
        faultyFaults,
      );
      await expectFailure(
        async () => new Untyped(),
        /faults: a write whose I\/O fails with ENOSPC/,
        /rejected with code ENOSPC .*not WAL_NO_SPACE/,
        undefined,
        faultyFaults,
      );
    });

    it('a failed write that latches the store', async () => {
      class LatchesWrites extends Faulty {
        override writeFailed(code: 'EIO' | 'ENOSPC', offset: number): Promise<never> {
          const error = toWalError(systemError(code, 'write'), 'write', offset);
          this.failure = new FailedError('write failed', { cause: error });
          return Promise.reject(error);
        }
      }
      await expectFailure(
        async () => new LatchesWrites(),
        /faults: a failed write latches nothing/,
        /a write at its offset after a failed write: rejected .*latches nothing/,
        undefined,
        faultyFaults,
      );
    });

    it('a failed sync that does not latch the store', async () => {
      class Forgets extends Faulty {
        override fsyncFailed(syscall: string): Promise<never> {
          return Promise.reject(
            new FailedError(`${syscall} failed`, {
              cause: toWalError(systemError('EIO', syscall), syscall),
            }),
          );
        }
      }
      await expectFailure(
        async () => new Forgets(),
        /faults: after a failed sync every call rejects with WAL_FAILED/,
        /write after a failed sync: resolved; the contract latches/,
        undefined,
        faultyFaults,
      );
      await expectFailure(
        async () => new Forgets(),
        /faults: a failed durable write latches WAL_FAILED/,
        /write after a failed durable write: resolved/,
        undefined,
        faultyFaults,
      );
    });

    it('a failed read that latches the store, or rejects untyped', async () => {
      class LatchesReads extends Faulty {
        override readFailed(offset: number): Promise<never> {
          const error = toWalError(systemError('EIO', 'read'), 'read', offset);
          this.failure = new FailedError('read failed', { cause: error });
          return Promise.reject(error);
        }
      }
      await expectFailure(
        async () => new LatchesReads(),
        /faults: a read whose I\/O fails rejects with IoError WAL_IO/,
        /the same read after a read failing with EIO: rejected .*latches nothing/,
        undefined,
        faultyFaults,
      );
      class UntypedRead extends Faulty {
        override readFailed(): Promise<never> {
          return Promise.reject(systemError('EIO', 'read'));
        }
      }
      await expectFailure(
        async () => new UntypedRead(),
        /faults: a read whose I\/O fails rejects with IoError WAL_IO/,
        /rejected with code EIO .*not WAL_IO/,
        undefined,
        faultyFaults,
      );
    });

    it('a failed truncate that does not latch the store', async () => {
      class TruncateForgets extends Faulty {
        override truncate(length: number) {
          if (!this.next.truncate) return super.truncate(length);
          this.next.truncate = false;
          return Promise.reject(
            new FailedError('ftruncate failed', {
              cause: toWalError(systemError('EIO', 'ftruncate'), 'ftruncate'),
            }),
          );
        }
      }
      await expectFailure(
        async () => new TruncateForgets(),
        /faults: a failed truncate latches WAL_FAILED/,
        /write after a failed truncate: resolved; the contract latches/,
        undefined,
        faultyFaults,
      );
    });

    it('a latched store that still answers one operation, or whose close rejects', async () => {
      class ReadsOn extends Faulty {
        override read(offset: number, length: number) {
          return this.closed ? super.read(offset, length) : this.inner.read(offset, length);
        }
      }
      await expectFailure(
        async () => new ReadsOn(),
        /faults: after a failed sync every call rejects/,
        /read after a failed sync: resolved/,
        undefined,
        faultyFaults,
      );
      class CloseRejects extends Faulty {
        override close() {
          return this.failure === undefined ? super.close() : Promise.reject(this.failure);
        }
      }
      await expectFailure(
        async () => new CloseRejects(),
        /faults: after a failed sync every call rejects/,
        /close after a failed sync: rejected .*does not reject because of a latched failure/,
        undefined,
        faultyFaults,
      );
    });
  });

  it('reports through ConformanceError', async () => {
    class Lazy extends Forwarding {
      override async truncate(_length: number) {}
    }
    const failed = await failures(async () => new Lazy());
    for (const error of failed.values())
      assert.ok(error instanceof ConformanceError || error instanceof Error);
    assert.ok(
      [...failed.values()].some(
        (e) => e instanceof ConformanceError && e.name === 'ConformanceError',
      ),
    );
  });
});
