/**
 * File-system failures become typed errors naming the file, and a typed error
 * raised below the engine keeps its code and offset (it is not re-wrapped as
 * a generic `WAL_IO`).
 */
import assert from 'node:assert/strict';
import { IoError, NoSpaceError } from '@wal/errors';
import { CrashFs, type Fault, FaultFs } from '@wal/store/testing';
import { Lsm } from '../src/index.js';

const DIR = '/db';
const MARKER = `${DIR}/LSM`;

/** Opens a new store whose marker write or sync fails with `fault`; resolves the rejection. */
async function failedCreation(method: 'pwrite' | 'fdatasync', fault: Fault): Promise<unknown> {
  const fs = new FaultFs(new CrashFs());
  fs.inject({ method, when: (call) => call.path === MARKER, fault });
  try {
    const db = await Lsm.open(DIR, { fs: fs as never });
    await db.close();
  } catch (error) {
    return error;
  }
  assert.fail('the open succeeded');
}

describe('I/O errors', () => {
  it('ENOSPC writing a file is WAL_NO_SPACE naming the file, with errno and syscall', async () => {
    const error = await failedCreation('pwrite', 'ENOSPC');
    assert.ok(error instanceof NoSpaceError, String(error));
    assert.equal(error.code, 'WAL_NO_SPACE');
    assert.equal(error.errno, 'ENOSPC');
    assert.equal(error.syscall, 'write');
    assert.match(error.message, /creating the marker \/db\/LSM failed \(ENOSPC\)/);
  });

  it('EIO from fdatasync is WAL_IO naming the file, with errno and syscall', async () => {
    const error = await failedCreation('fdatasync', 'EIO');
    assert.ok(error instanceof IoError && !(error instanceof NoSpaceError), String(error));
    assert.equal(error.code, 'WAL_IO');
    assert.equal(error.errno, 'EIO');
    assert.equal(error.syscall, 'fdatasync');
    assert.match(error.message, /\/db\/LSM failed \(EIO\)/);
  });

  it('a typed error from below keeps its own message and offset', async () => {
    // A write that makes no progress is refused by @wal/store as WAL_IO at
    // the offset concerned; the engine passes that error on as it is.
    const error = await failedCreation('pwrite', { short: 0 });
    assert.ok(error instanceof IoError, String(error));
    assert.equal(error.code, 'WAL_IO');
    assert.equal(error.offset, 0);
    assert.match(error.message, /\/db\/LSM made no progress at position 0/);
  });
});
