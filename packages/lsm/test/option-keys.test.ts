/**
 * Option keys: `Lsm.open` refuses any key it does not know; `new LsmLevel`
 * refuses a key that misspells one of its own or abstract-level's options and
 * forwards any other to abstract-level's `open()` and hooks. Nothing is
 * created on disk by a refused call; every documented key is accepted.
 */
import assert from 'node:assert/strict';
import { CrashFs } from '@wal/store/testing';
import fc from 'fast-check';
import { Lsm, LsmLevel, type LsmOptions } from '../src/index.js';

const DIR = '/db';

/** A valid value for every documented option of `Lsm.open` but `fs`. */
const ENGINE: Required<Omit<LsmOptions, 'fs'>> = {
  writeBufferSize: 4096,
  blockSize: 256,
  restartInterval: 8,
  bitsPerKey: 10,
  segmentSize: 4096,
  level0Trigger: 2,
  level0SlowdownTrigger: 8,
  level0StopTrigger: 12,
  levelBaseBytes: 4096,
  levelRatio: 4,
  targetFileSize: 2048,
  compactionReadSize: 8192,
  blockCacheSize: 65536,
  maxManifestBytes: 4096,
  syncReads: false,
  blockingSync: true,
};

/** A valid value for each option abstract-level itself reads. */
const ABSTRACT = {
  keyEncoding: 'utf8',
  valueEncoding: 'json',
  createIfMissing: true,
  errorIfExists: false,
  passive: false,
};

const ENGINE_KEYS = ['fs', ...Object.keys(ENGINE)];
const LEVEL_KEYS = [...ENGINE_KEYS, ...Object.keys(ABSTRACT)];
/** The keys of `LsmLevel` a one-edit slip of which is refused (longer than four characters). */
const LONG_LEVEL_KEYS = LEVEL_KEYS.filter((key) => key.length > 4);

/** `key` with one edit: a character inserted, deleted, replaced, two swapped, or the case changed. */
const oneEdit = (keys: readonly string[]) =>
  fc
    .tuple(
      fc.constantFrom(...keys),
      fc.constantFrom('insert', 'delete', 'replace', 'swap', 'case'),
      fc.nat(),
      fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABCZ_1'),
    )
    .map(([key, edit, at, char]) => {
      const i = at % key.length;
      switch (edit) {
        case 'insert':
          return key.slice(0, i) + char + key.slice(i);
        case 'delete':
          return key.slice(0, i) + key.slice(i + 1);
        case 'replace':
          return key.slice(0, i) + char + key.slice(i + 1);
        case 'swap':
          return i + 1 < key.length
            ? key.slice(0, i) + key[i + 1] + key[i] + key.slice(i + 2)
            : key;
        default:
          return key.toLowerCase() === key ? key.toUpperCase() : key.toLowerCase();
      }
    })
    .filter((key) => key.length > 0 && !keys.includes(key));

function assertNamesKey(error: unknown, key: string): true {
  assert.ok(error instanceof TypeError, String(error));
  assert.equal((error as { code?: unknown }).code, 'ERR_INVALID_ARG_VALUE');
  assert.ok(error.message.includes(`options.${key}`), error.message);
  return true;
}

describe('option keys', () => {
  it('Lsm.open refuses an unknown key with ERR_INVALID_ARG_VALUE naming it, creating nothing', async () => {
    const unknownKey = fc
      .oneof(oneEdit(ENGINE_KEYS), fc.string({ minLength: 1, maxLength: 12 }))
      .filter((key) => !ENGINE_KEYS.includes(key));
    await fc.assert(
      fc.asyncProperty(
        unknownKey,
        fc.anything(),
        fc.subarray(Object.keys(ENGINE)),
        async (key, value, others) => {
          const fs = new CrashFs();
          const options = Object.fromEntries([
            ['fs', fs],
            ...others.map((other) => [other, ENGINE[other as keyof typeof ENGINE]]),
            [key, value],
          ]);
          await assert.rejects(Lsm.open(DIR, options), (error) => assertNamesKey(error, key));
          assert.deepEqual(await fs.readdir('/'), [], 'nothing created');
        },
      ),
      { numRuns: 100 },
    );
  });

  it('Lsm.open accepts every documented key, and undefined for each', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.subarray(Object.keys(ENGINE)),
        fc.subarray(Object.keys(ENGINE)),
        async (given, unset) => {
          const options = Object.fromEntries([
            ['fs', new CrashFs()],
            ...given.map((key) => [key, ENGINE[key as keyof typeof ENGINE]]),
            ...unset.filter((key) => !given.includes(key)).map((key) => [key, undefined]),
          ]);
          const db = await Lsm.open(DIR, options);
          await db.put(new Uint8Array([1]), new Uint8Array([2]));
          await db.close();
        },
      ),
      { numRuns: 15 },
    );
  });

  it('new LsmLevel refuses a misspelt option with ERR_INVALID_ARG_VALUE naming it and the option meant', () => {
    const misspelt = fc.oneof(
      oneEdit(LONG_LEVEL_KEYS),
      fc.constantFrom(...LEVEL_KEYS).chain((key) => fc.mixedCase(fc.constant(key))),
    );
    fc.assert(
      fc.property(
        misspelt.filter((key) => !LEVEL_KEYS.includes(key)),
        fc.anything(),
        (key, value) => {
          const fs = new CrashFs();
          assert.throws(
            () => new LsmLevel(DIR, { fs, [key]: value } as never),
            (error: Error) =>
              assertNamesKey(error, key) && /did you mean \w+\?/.test(error.message),
          );
          assert.throws(
            () => new LsmLevel(DIR, { fs, ...ABSTRACT, [key]: value } as never),
            TypeError,
          );
        },
      ),
      { numRuns: 300 },
    );
    // Typical slips, each naming the option meant.
    for (const [key, meant] of [
      ['writeBufferSise', 'writeBufferSize'],
      ['valueencoding', 'valueEncoding'],
      ['segmentsize', 'segmentSize'],
      ['createIfMising', 'createIfMissing'],
      ['FS', 'fs'],
    ] as const) {
      assert.throws(() => new LsmLevel(DIR, { fs: new CrashFs(), [key]: 1 } as never), {
        code: 'ERR_INVALID_ARG_VALUE',
        message: new RegExp(`options\\.${key}.*did you mean ${meant}\\?`),
      });
    }
  });

  it('new LsmLevel forwards any other key to open() and its hooks, as abstract-level specifies', async () => {
    // Every known key of four characters or fewer is `fs`, and every other is
    // at least seven long: a key of one to four characters other than a case
    // variant of `fs` is beyond the misspelling rule, as are the names below.
    const short = fc
      .oneof(oneEdit(['fs']), fc.string({ minLength: 1, maxLength: 4 }))
      .filter((key) => key.toLowerCase() !== 'fs');
    const userland = fc.oneof(
      fc.constantFrom('userland', 'ms', 'fn', 'ts', 'afs', 'ns', 'ws', 'f', 's'),
      fc.stringMatching(/^x[0-9]{3,12}$/),
      short,
    );
    await fc.assert(
      fc.asyncProperty(userland, fc.jsonValue(), async (key, value) => {
        const db = new LsmLevel(DIR, { fs: new CrashFs(), passive: false, [key]: value } as never);
        const seen: Array<Record<string, unknown>> = [];
        db.hooks.postopen.add(async (options) => {
          seen.push(options as unknown as Record<string, unknown>);
        });
        await db.open();
        assert.deepEqual(seen.at(-1)?.[key], value);
        await db.close();
      }),
      { numRuns: 40 },
    );
    // Short names near `fs` are userland options too, never "did you mean fs?".
    for (const key of ['ms', 'fn', 'ts', 'afs']) {
      const db = new LsmLevel(DIR, { fs: new CrashFs(), [key]: 1 } as never);
      await db.open();
      await db.close();
    }
  });

  it('new LsmLevel accepts every documented key of its own and abstract-level’s', async () => {
    const all = { ...ENGINE, ...ABSTRACT };
    await fc.assert(
      fc.asyncProperty(fc.subarray(Object.keys(all)), async (given) => {
        const options = Object.fromEntries([
          ['fs', new CrashFs()],
          ...given.map((key) => [key, all[key as keyof typeof all]]),
        ]);
        const db = new LsmLevel(DIR, options);
        await db.open();
        await db.put('k', 'v' as never);
        await db.close();
      }),
      { numRuns: 15 },
    );
  });
});
