// The conformance suite must catch broken backends: each store below breaks one
// rule of the contract, and the suite test that checks that rule must fail
// (while a correct store passes every test, see memory-store.test.ts).
import assert from 'node:assert/strict';
import { FileStore, MemoryStore, type MetaUpdate, type Store, type StoreMeta } from '@wal/store';
import { ConformanceError, CrashFs, type SuiteOptions, suite } from '@wal/store/testing';

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
