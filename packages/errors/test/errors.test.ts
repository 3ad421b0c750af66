import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import vm from 'node:vm';
import {
  BoundaryError,
  BusyError,
  ClosedError,
  CodecError,
  ConflictError,
  CorruptionError,
  errorCode,
  FailedError,
  IoError,
  invalidArgType,
  invalidArgValue,
  isArgumentError,
  isWalError,
  LockedError,
  MAX_OFFSET,
  NoSpaceError,
  NotALogError,
  outOfRange,
  ReadOnlyError,
  RecordTooLargeError,
  ReplicaFencedError,
  ReplicaMismatchError,
  rejectUnknownKeys,
  TruncatedError,
  toWalError,
  UnsupportedFormatError,
  validateBytes,
  validateInteger,
  validateOffset,
  WalError,
  WriteFailedError,
} from '@wal/errors';

describe('WalError hierarchy', () => {
  const cases: Array<[WalError, string]> = [
    [new CorruptionError('bad crc', { offset: 40 }), 'WAL_CORRUPTION'],
    [new ClosedError('log'), 'WAL_CLOSED'],
    [new LockedError('/x/LOCK'), 'WAL_LOCKED'],
    [new ConflictError(new Uint8Array([0x61]), 'read'), 'WAL_CONFLICT'],
    [new RecordTooLargeError(10, 5, { offset: 8 }), 'WAL_RECORD_TOO_LARGE'],
    [new FailedError('sync failed'), 'WAL_FAILED'],
    [new WriteFailedError(77), 'WAL_WRITE_FAILED'],
    [new BusyError('truncating'), 'WAL_BUSY'],
    [new IoError('read failed', { errno: 'EIO', syscall: 'pread' }), 'WAL_IO'],
    [new NoSpaceError('disk full', { errno: 'ENOSPC', syscall: 'pwrite' }), 'WAL_NO_SPACE'],
    [new ReadOnlyError('write'), 'WAL_READ_ONLY'],
    [new TruncatedError('records at 64 were reclaimed', { offset: 64 }), 'WAL_TRUNCATED'],
    [new BoundaryError('no record starts at 65', { offset: 65 }), 'WAL_NOT_BOUNDARY'],
    [new ReplicaMismatchError('gap', { sequence: 3, offset: 80 }), 'WAL_REPLICA_MISMATCH'],
    [new ReplicaFencedError('another writer', { sequence: 9 }), 'WAL_REPLICA_FENCED'],
    [new NotALogError('/x/notes.txt', 'a 32-byte file'), 'WAL_NOT_A_LOG'],
    [new CodecError('decode', { offset: 9 }), 'WAL_CODEC'],
    [new UnsupportedFormatError(2, [1]), 'WAL_UNSUPPORTED_FORMAT'],
  ];

  for (const [error, code] of cases) {
    it(`${error.name} carries the stable code ${code}`, () => {
      assert.equal(error.code, code);
      assert.ok(error instanceof WalError);
      assert.ok(error instanceof Error);
      assert.ok(isWalError(error));
      assert.ok(isWalError(error, error.code));
      assert.equal(error.name, error.constructor.name);
      assert.ok(error.message.length > 0);
    });
  }

  it('UnsupportedFormatError names the found and the supported versions', () => {
    const one = new UnsupportedFormatError(7, [1]);
    assert.equal(one.found, 7);
    assert.deepEqual(one.supported, [1]);
    assert.ok(Object.isFrozen(one.supported));
    assert.match(one.message, /format version 7.*reads version 1\b/);
    const supported = [1, 2];
    const two = new UnsupportedFormatError(3, supported);
    supported.push(3);
    assert.deepEqual(two.supported, [1, 2], 'a copy of the list');
    assert.match(two.message, /reads versions 1, 2/);
    assert.equal(two.offset, undefined);
  });

  it('replication errors keep the stream sequence', () => {
    assert.equal(new ReplicaMismatchError('gap', { sequence: 3, offset: 80 }).sequence, 3);
    assert.equal(new ReplicaMismatchError('gap').sequence, undefined);
    assert.equal(new ReplicaFencedError('fenced', { sequence: 9 }).sequence, 9);
  });

  it('keeps the offset and the cause', () => {
    const cause = Object.assign(new Error('EIO'), { code: 'EIO' });
    const error = new FailedError('fsync failed', { cause, offset: 4096 });
    assert.equal(error.offset, 4096);
    assert.equal(error.cause, cause);
    assert.equal(new ClosedError().offset, undefined);
    assert.equal('cause' in new ClosedError(), false);
  });

  it('names offsets and limits in messages', () => {
    const tooLarge = new RecordTooLargeError(10, 5, { offset: 8 });
    assert.match(tooLarge.message, /record at offset 8 has 10 bytes.* 5 bytes/);
    assert.equal(tooLarge.length, 10);
    assert.equal(tooLarge.limit, 5);
    // Refused before it was written: no offset, only the size and the limit.
    const refused = new RecordTooLargeError(10, 5);
    assert.equal(refused.offset, undefined);
    assert.equal(
      refused.message,
      'a record of 10 bytes exceeds the maximum record size of 5 bytes',
    );
    assert.equal(new WriteFailedError(77).offset, 77);
    assert.match(new WriteFailedError(77).message, /offset 77/);
    assert.equal(new LockedError('/x/LOCK').path, '/x/LOCK');
    const notALog = new NotALogError('/x/photos', 'a directory holding photo.jpg');
    assert.equal(notALog.path, '/x/photos');
    assert.equal(notALog.found, 'a directory holding photo.jpg');
    assert.match(notALog.message, /^\/x\/photos is not a log: a directory holding photo\.jpg/);
  });

  it('ConflictError keeps a copy of the key and names it', () => {
    const key = new TextEncoder().encode('account/7');
    const error = new ConflictError(key, 'scan');
    key[0] = 0;
    assert.equal(new TextDecoder().decode(error.key), 'account/7');
    assert.equal(error.access, 'scan');
    assert.match(error.message, /scanned past \('account\/7'\)/);
    assert.match(new ConflictError(new Uint8Array([0, 255]), 'write').message, /wrote \(0x00ff\)/);
    assert.match(
      new ConflictError(new Uint8Array(40).fill(97), 'read').message,
      /read \('a{32}'…, 40 bytes\)/,
    );
  });

  it('CodecError says which codec call failed, where, and why', () => {
    const cause = new SyntaxError('Unexpected token');
    const decode = new CodecError('decode', { offset: 120, cause });
    assert.deepEqual([decode.operation, decode.offset, decode.cause], ['decode', 120, cause]);
    assert.equal(decode.message, 'the codec failed to decode the record at 120: Unexpected token');
    const encode = new CodecError('encode', { cause: 'no' });
    assert.equal(encode.offset, undefined);
    assert.equal(encode.message, 'the codec failed to encode a value; nothing was appended: no');
    assert.match(new CodecError('decode').message, /record at an unknown LSN$/);
  });

  it('rejectUnknownKeys names the first unknown own key, and ignores inherited ones', () => {
    const known = new Set(['wait']);
    rejectUnknownKeys('options', { wait: 1 }, known);
    rejectUnknownKeys('options', Object.create({ inherited: 1 }), known);
    assert.throws(() => rejectUnknownKeys('options', { wait: 1, waitt: 2 }, known), {
      name: 'TypeError',
      code: 'ERR_INVALID_ARG_VALUE',
      message: 'The "options.waitt" argument is not an option (known: wait). Received 2',
    });
  });

  it('LockedError names the holding process when it is known', () => {
    const unknown = new LockedError('/x/lock');
    assert.equal(unknown.pid, undefined);
    assert.match(unknown.message, /locked by another open handle/);
    const running = new LockedError('/x/lock', { pid: 999999, host: 'h', alive: true });
    assert.deepEqual([running.pid, running.host, running.alive], [999999, 'h', true]);
    assert.match(running.message, /^\/x\/lock is locked by process 999999, which is running$/);
    const self = new LockedError('/x/lock', { pid: process.pid, host: 'h', alive: true });
    assert.match(self.message, new RegExp(`by this process \\(pid ${process.pid}\\)`));
    const remote = new LockedError('/x/lock', { pid: 12, host: 'elsewhere' });
    assert.equal(remote.alive, undefined);
    assert.match(
      remote.message,
      /process 12 on host elsewhere \(whether it still runs cannot be checked/,
    );
  });

  it('LockedError gives the reason a lock cannot be had, when no holder is the cause', () => {
    const error = new LockedError('/x/f.log', { reason: 'it has 2 names (hard links)' });
    assert.equal(error.code, 'WAL_LOCKED');
    assert.equal(error.path, '/x/f.log');
    assert.equal(error.reason, 'it has 2 names (hard links)');
    assert.equal(error.pid, undefined);
    assert.equal(error.message, '/x/f.log cannot be locked: it has 2 names (hard links)');
    assert.equal(new LockedError('/x/lock').reason, undefined);
  });

  it('NoSpaceError is an IoError', () => {
    const error = new NoSpaceError('full', { errno: 'ENOSPC', syscall: 'pwrite' });
    assert.ok(error instanceof IoError);
    assert.equal(error.errno, 'ENOSPC');
    assert.equal(error.syscall, 'pwrite');
  });

  it('isWalError rejects other values and other codes', () => {
    assert.equal(isWalError(new Error('x')), false);
    assert.equal(isWalError(undefined), false);
    assert.equal(isWalError({ code: 'WAL_CLOSED' }), false);
    assert.equal(isWalError(new ClosedError(), 'WAL_BUSY'), false);
  });
});

describe('argument errors', () => {
  it('have Node-style classes and codes', () => {
    const type = invalidArgType('offset', 'of type number', 'x');
    assert.ok(type instanceof TypeError);
    assert.equal(type.code, 'ERR_INVALID_ARG_TYPE');
    assert.match(type.message, /"offset" argument must be of type number. Received 'x'/);
    const range = outOfRange('length', '>= 0', -1);
    assert.ok(range instanceof RangeError);
    assert.equal(range.code, 'ERR_OUT_OF_RANGE');
    const value = invalidArgValue('policy', 'nope', 'must be one of tolerate, strict');
    assert.ok(value instanceof TypeError);
    assert.equal(value.code, 'ERR_INVALID_ARG_VALUE');
  });

  it('describe the received value briefly', () => {
    assert.match(invalidArgType('a', 'x', null).message, /Received null$/);
    assert.match(invalidArgType('a', 'x', 5n).message, /Received 5n$/);
    assert.match(invalidArgType('a', 'x', 'y'.repeat(100)).message, /…'$/);
    assert.match(invalidArgType('a', 'x', [1]).message, /instance of Array$/);
    assert.match(invalidArgType('a', 'x', Object.create(null)).message, /instance of Object$/);
    assert.match(invalidArgType('a', 'x', undefined).message, /type undefined$/);
  });

  it('ReadOnlyError names the refused operation', () => {
    const error = new ReadOnlyError('write');
    assert.equal(error.message, 'cannot write: opened read-only');
    assert.equal(error.offset, undefined);
    assert.equal(error.name, 'ReadOnlyError');
    assert.ok(isWalError(error, 'WAL_READ_ONLY'));
    assert.ok(!isWalError(error, 'WAL_CLOSED'));
    const cause = new Error('why');
    const truncate = new ReadOnlyError('truncate', { cause });
    assert.match(truncate.message, /^cannot truncate: /);
    assert.equal(truncate.cause, cause);
  });

  it('TruncatedError and BoundaryError carry the LSN as offset', () => {
    const truncated = new TruncatedError('records at 4096 were removed', { offset: 4096 });
    assert.equal(truncated.offset, 4096);
    assert.equal(truncated.message, 'records at 4096 were removed');
    assert.equal(truncated.name, 'TruncatedError');
    assert.ok(isWalError(truncated, 'WAL_TRUNCATED'));
    const cause = new Error('inner');
    const boundary = new BoundaryError('not a record boundary', { offset: 13, cause });
    assert.equal(boundary.offset, 13);
    assert.equal(boundary.cause, cause);
    assert.equal(boundary.name, 'BoundaryError');
    assert.ok(isWalError(boundary, 'WAL_NOT_BOUNDARY'));
    assert.equal(new BoundaryError('x').offset, undefined);
    assert.equal('cause' in new TruncatedError('x'), false);
  });

  it('isArgumentError recognises only coded TypeError/RangeError', () => {
    assert.ok(isArgumentError(outOfRange('a', 'b', 1)));
    assert.ok(isArgumentError(outOfRange('a', 'b', 1), 'ERR_OUT_OF_RANGE'));
    assert.ok(!isArgumentError(outOfRange('a', 'b', 1), 'ERR_INVALID_ARG_TYPE'));
    assert.ok(!isArgumentError(new TypeError('plain')));
    assert.ok(!isArgumentError(new Error('plain')));
    assert.ok(!isArgumentError(new ClosedError()));
  });

  it('validateOffset accepts exactly the integers in [0, 2^53 - 1]', () => {
    for (const ok of [0, 1, 4096, MAX_OFFSET]) validateOffset('offset', ok);
    for (const bad of [-1, 0.5, Number.NaN, Number.POSITIVE_INFINITY, MAX_OFFSET + 1, 2 ** 60]) {
      assert.throws(() => validateOffset('offset', bad), {
        name: 'RangeError',
        code: 'ERR_OUT_OF_RANGE',
      });
    }
    for (const bad of ['1', null, undefined, 1n, {}]) {
      assert.throws(() => validateOffset('offset', bad), {
        name: 'TypeError',
        code: 'ERR_INVALID_ARG_TYPE',
      });
    }
  });

  it('validateInteger honours its bounds', () => {
    validateInteger('n', 5, 5, 5);
    assert.throws(() => validateInteger('n', 4, 5, 6), { code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => validateInteger('n', 7, 5, 6), /<= 6/);
  });

  it('validateBytes accepts Uint8Array and Buffer only', () => {
    validateBytes('bytes', new Uint8Array(1));
    validateBytes('bytes', Buffer.from('x'));
    assert.throws(() => validateBytes('bytes', [1, 2]), { code: 'ERR_INVALID_ARG_TYPE' });
    assert.throws(() => validateBytes('bytes', new ArrayBuffer(2)), {
      code: 'ERR_INVALID_ARG_TYPE',
    });
  });
});

describe('errorCode', () => {
  it('returns a string code of any thrown value, else undefined', () => {
    assert.equal(errorCode(Object.assign(new Error('x'), { code: 'ENOENT' })), 'ENOENT');
    assert.equal(errorCode(new ClosedError()), 'WAL_CLOSED');
    assert.equal(errorCode(invalidArgType('n', 'a number', 'x')), 'ERR_INVALID_ARG_TYPE');
    assert.equal(errorCode({ code: 'EEXIST' }), 'EEXIST');
    for (const value of [
      null,
      undefined,
      'ENOENT',
      42,
      new Error('x'),
      { code: 5 },
      { code: null },
    ]) {
      assert.equal(errorCode(value), undefined);
    }
  });
});

describe('toWalError', () => {
  /** A Node-style system error, as `node:fs` rejects with. */
  function systemError(code: string, syscall: string): NodeJS.ErrnoException {
    return Object.assign(new Error(`${code}: ${syscall} failed`), { code, syscall, errno: -5 });
  }

  it('returns a WalError unchanged, whatever its code', () => {
    const errors: WalError[] = [
      new ClosedError('log'),
      new CorruptionError('bad crc', { offset: 4096 }),
      new FailedError('fdatasync', { cause: systemError('EIO', 'fdatasync') }),
      new IoError('lower layer failed', { errno: 'EIO', offset: 7 }),
      new NoSpaceError('full', { errno: 'ENOSPC' }),
      new ReadOnlyError('write'),
    ];
    for (const error of errors) {
      assert.equal(toWalError(error, 'writing /data/log/x.wal', 99), error);
      assert.equal(error.offset === 99, false);
    }
  });

  it('makes ENOSPC and EDQUOT a NoSpaceError with errno, syscall, path and offset', () => {
    for (const code of ['ENOSPC', 'EDQUOT']) {
      const cause = systemError(code, 'write');
      const error = toWalError(cause, 'writing /data/log/x.wal', 8192);
      assert.ok(error instanceof NoSpaceError);
      assert.equal(error.code, 'WAL_NO_SPACE');
      assert.equal(error.errno, code);
      assert.equal(error.syscall, 'write');
      assert.equal(error.offset, 8192);
      assert.equal(error.cause, cause);
      assert.equal(error.message, `writing /data/log/x.wal failed (${code}) at offset 8192`);
    }
  });

  it('makes any other errno an IoError (WAL_IO) with errno, syscall and path', () => {
    for (const code of ['EIO', 'EACCES', 'EROFS', 'EBADF']) {
      const cause = systemError(code, 'fdatasync');
      const error = toWalError(cause, 'fdatasync of /data/log/x.wal');
      assert.ok(error instanceof IoError && !(error instanceof NoSpaceError));
      assert.equal(error.code, 'WAL_IO');
      assert.equal(error.errno, code);
      assert.equal(error.syscall, 'fdatasync');
      assert.equal(error.offset, undefined);
      assert.equal(error.cause, cause);
      assert.equal(error.message, `fdatasync of /data/log/x.wal failed (${code})`);
    }
  });

  it('makes a thrown value without an errno a WAL_IO error and never throws', () => {
    for (const value of [null, undefined, 'boom', 42, new Error('x'), { code: 5 }]) {
      const error = toWalError(value, 'reading /data/t.sst', 0);
      assert.ok(error instanceof IoError);
      assert.equal(error.code, 'WAL_IO');
      assert.equal(error.errno, undefined);
      assert.equal(error.syscall, undefined);
      assert.equal(error.offset, 0);
      assert.equal(error.cause, value);
      assert.equal(error.message, 'reading /data/t.sst failed at offset 0');
    }
  });
});

describe('hostile values: the helpers never throw', () => {
  /** Values whose property reads (or prototype lookups) throw. */
  function hostile(): Array<[name: string, value: object]> {
    const revocable = Proxy.revocable({}, {});
    revocable.revoke();
    const trap = () => {
      throw new Error('trap');
    };
    return [
      [
        'a throwing code getter',
        {
          get code(): string {
            throw new Error('getter');
          },
        },
      ],
      ['a revoked Proxy', revocable.proxy],
      ['a Proxy whose every trap throws', new Proxy({}, { get: trap, getPrototypeOf: trap })],
    ];
  }

  it('errorCode returns undefined', () => {
    for (const [name, value] of hostile()) assert.equal(errorCode(value), undefined, name);
  });

  it('toWalError returns a WAL_IO error with the value as its cause', () => {
    for (const [name, value] of hostile()) {
      const error = toWalError(value, 'fdatasync of /data/log/x.wal', 3);
      assert.ok(error instanceof IoError, name);
      assert.equal(error.code, 'WAL_IO', name);
      assert.equal(error.errno, undefined, name);
      assert.equal(error.syscall, undefined, name);
      assert.equal(error.offset, 3, name);
      assert.equal(error.cause, value, name);
    }
  });

  it('toWalError keeps the errno when only the syscall getter throws', () => {
    const value = {
      code: 'EIO',
      get syscall(): string {
        throw new Error('getter');
      },
    };
    const error = toWalError(value, 'write');
    assert.ok(error instanceof IoError);
    assert.equal(error.code, 'WAL_IO');
    assert.equal(error.errno, 'EIO');
    assert.equal(error.syscall, undefined);
  });

  it('isWalError and isArgumentError return false', () => {
    for (const [name, value] of hostile()) {
      assert.equal(isWalError(value), false, name);
      assert.equal(isArgumentError(value), false, name);
    }
  });

  it('the argument errors describe such a value without reading it', () => {
    for (const [name, value] of hostile()) {
      const error = invalidArgType('x', 'a number', value);
      assert.equal(error.code, 'ERR_INVALID_ARG_TYPE', name);
      assert.equal(
        error.message,
        'The "x" argument must be a number. Received an instance of Object',
      );
      assert.equal(invalidArgValue('x', value, 'is odd').code, 'ERR_INVALID_ARG_VALUE', name);
      assert.equal(outOfRange('x', 'small', value).code, 'ERR_OUT_OF_RANGE', name);
    }
  });
});

describe('a WalError of another copy of the package or another realm', () => {
  /** What a copy of the package exports, as far as these tests use it. */
  type Copy = Pick<typeof import('../src/index.js'), 'FailedError' | 'isWalError' | 'WalError'>;

  /** Asserts that `foreign`, not an instance of this copy's WalError, is recognised as one. */
  function assertRecognised(foreign: Error): void {
    assert.equal(foreign instanceof WalError, false); // really foreign
    assert.equal(isWalError(foreign), true);
    assert.equal(isWalError(foreign, 'WAL_FAILED'), true);
    assert.equal(isWalError(foreign, 'WAL_IO'), false);
    assert.equal(errorCode(foreign), 'WAL_FAILED');
    // Returned as it is: code, offset and message kept, not rewritten as WAL_IO.
    assert.equal(toWalError(foreign, 'fdatasync of /data/log/x.wal', 7), foreign);
  }

  it('a second copy loaded from a copied dist folder: recognised both ways', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'wal-errors-copy-'));
    try {
      await cp(fileURLToPath(new URL('../src', import.meta.url)), join(dir, 'src'), {
        recursive: true,
      });
      await writeFile(join(dir, 'package.json'), '{"type":"module"}');
      const copy = (await import(pathToFileURL(join(dir, 'src', 'index.js')).href)) as Copy;
      assert.notEqual(copy.WalError, WalError);
      const foreign = new copy.FailedError('sync failed', { offset: 42 });
      assertRecognised(foreign);
      assert.equal(foreign.offset, 42);
      // And the copy recognises ours.
      assert.equal(copy.isWalError(new FailedError('x'), 'WAL_FAILED'), true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("a WalError made in a vm realm by this package's own classes", async () => {
    // wal-error.js imports nothing: evaluated as a script (without `export`) in a new realm.
    const source = await readFile(new URL('../src/wal-error.js', import.meta.url), 'utf8');
    const script = `${source.replace(/^export /gm, '')}\n({ FailedError, WalError, isWalError })`;
    const realm = vm.runInNewContext(script) as Copy;
    const foreign = new realm.FailedError('sync failed', { offset: 42 });
    assert.equal(foreign instanceof Error, false); // another realm's Error
    assertRecognised(foreign);
    assert.equal(realm.isWalError(new FailedError('x')), true);
  });

  it('isArgumentError recognises a coded TypeError or RangeError of a vm realm', () => {
    const make = (expression: string) => vm.runInNewContext(expression) as Error;
    const range = make('Object.assign(new RangeError("x"), { code: "ERR_OUT_OF_RANGE" })');
    assert.equal(range instanceof RangeError, false);
    assert.equal(isArgumentError(range), true);
    assert.equal(isArgumentError(range, 'ERR_OUT_OF_RANGE'), true);
    assert.equal(isArgumentError(range, 'ERR_INVALID_ARG_TYPE'), false);
    const type = make('Object.assign(new TypeError("x"), { code: "ERR_INVALID_ARG_VALUE" })');
    assert.equal(isArgumentError(type, 'ERR_INVALID_ARG_VALUE'), true);
    // Not argument errors: no code, another class, or not an error at all.
    assert.equal(isArgumentError(make('new TypeError("x")')), false);
    assert.equal(
      isArgumentError(make('Object.assign(new Error("x"), { code: "ERR_OUT_OF_RANGE" })')),
      false,
    );
    assert.equal(
      isArgumentError(make('({ name: "RangeError", code: "ERR_OUT_OF_RANGE" })')),
      false,
    );
  });
});
