/**
 * Runs the usage example of README.md as written, against a fake file: short
 * writes, and a sync that fails while a write is still in flight. The example
 * must not leave an unhandled rejection behind (markWritten throws WAL_FAILED
 * after a failed sync, by design).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { GroupCommit } from '@wal/commit';
import { FailedError } from '@wal/errors';

interface Example {
  readonly commit: GroupCommit;
  readonly append: (bytes: Uint8Array) => Promise<number>;
}

interface FakeFile {
  write(
    bytes: Uint8Array,
    offset: number,
    length: number,
    position: number,
  ): Promise<{ bytesWritten: number }>;
  datasync(): Promise<void>;
}

function loadExample(file: FakeFile, recoveredEnd: number): Example {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const match = /```js\n([\s\S]*?)```/.exec(readme);
  assert.ok(match, 'README.md has a js usage example');
  const body = match[1]!.replace(/^import .*$/m, '');
  const build = new Function(
    'GroupCommit',
    'file',
    'recoveredEnd',
    `${body}\nreturn { commit, append };`,
  );
  return build(GroupCommit, file, recoveredEnd) as Example;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

describe('README usage example', () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => {
    unhandled.push(reason);
  };
  let listeners: NodeJS.UnhandledRejectionListener[] = [];
  beforeEach(() => {
    unhandled.length = 0;
    // Replace mocha's handler for the test, so that a leak is reported as a failure here.
    listeners = process.listeners('unhandledRejection');
    process.removeAllListeners('unhandledRejection');
    process.on('unhandledRejection', onUnhandled);
  });
  afterEach(() => {
    process.off('unhandledRejection', onUnhandled);
    for (const listener of listeners) process.on('unhandledRejection', listener);
  });

  it('writes short writes fully and makes each record durable', async () => {
    const disk = new Uint8Array(64);
    let syncs = 0;
    const file: FakeFile = {
      // Writes at most 3 bytes per call.
      async write(bytes, offset, length, position) {
        const count = Math.min(3, length);
        disk.set(bytes.subarray(offset, offset + count), position);
        return { bytesWritten: count };
      },
      async datasync() {
        syncs++;
      },
    };
    const { commit, append } = loadExample(file, 4);
    const lsns = await Promise.all([
      append(Uint8Array.of(1, 2, 3, 4, 5, 6, 7)),
      append(Uint8Array.of(8, 9, 10, 11)),
    ]);
    assert.deepEqual(lsns, [4, 11]);
    assert.equal(commit.durable, 15);
    assert.deepEqual([...disk.subarray(4, 15)], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    assert.ok(syncs >= 1);
    await delay(5);
    assert.deepEqual(unhandled, []);
  });

  it('fails cleanly when a sync fails with a write still in flight', async () => {
    const cause = new Error('fdatasync: EIO');
    const file: FakeFile = {
      async write(_bytes, _offset, length, position) {
        await delay(position === 0 ? 0 : 20);
        return { bytesWritten: length };
      },
      async datasync() {
        throw cause;
      },
    };
    const { commit, append } = loadExample(file, 0);
    const results = await Promise.allSettled([
      append(new Uint8Array(10)),
      append(new Uint8Array(10)),
    ]);
    for (const result of results) {
      assert.equal(result.status, 'rejected');
      assert.ok(result.reason instanceof FailedError);
    }
    assert.equal(commit.failure?.cause, cause);
    await delay(40); // the second write resolves after the failure
    assert.deepEqual(unhandled, []);
  });

  it('reports a write that fails, or writes nothing, with markFailed', async () => {
    const file: FakeFile = {
      async write() {
        return { bytesWritten: 0 };
      },
      async datasync() {},
    };
    const { commit, append } = loadExample(file, 0);
    await assert.rejects(append(new Uint8Array(5)), { code: 'WAL_WRITE_FAILED', offset: 0 });
    assert.equal(commit.poisonedAt, 0);
    await delay(5);
    assert.deepEqual(unhandled, []);
  });
});
