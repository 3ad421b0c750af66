/**
 * Child process of open-files.test.ts (not a test file itself): appends
 * `count` records of about one 4 KiB segment each to a new log in `dir`,
 * closes it, reopens it (recovery reads every segment) and iterates every
 * record, checking each. Argument 3 is the `maxOpenSegments` of the reopen,
 * or `default` (the log is written with the default).
 * Prints `iterated N records` on success; on failure exits non-zero with the
 * error's codes and messages, causes included, on stderr.
 */
import { Wal, type WalOptions } from '../src/index.js';

const [dir = '', countArg = '', capArg = 'default'] = process.argv.slice(2);
const count = Number(countArg);
const cap: WalOptions = capArg === 'default' ? {} : { maxOpenSegments: Number(capArg) };
const options: WalOptions = { segmentSize: 4096, preallocate: 0 };

function payload(index: number): Uint8Array {
  return new Uint8Array(4000).fill((index % 251) + 1);
}

try {
  const writer = await Wal.open(dir, options);
  for (let index = 0; index < count; index++) writer.append(payload(index));
  await writer.sync();
  await writer.close();
  const wal = await Wal.open(dir, { ...options, ...cap });
  let seen = 0;
  for await (const { payload: bytes } of wal.iterate()) {
    if (bytes.length !== 4000 || bytes.some((b) => b !== (seen % 251) + 1)) {
      throw new Error(`record ${seen} reads back wrong`);
    }
    seen++;
  }
  await wal.close();
  if (seen !== count) throw new Error(`iterated ${seen} records of ${count}`);
  console.log(`iterated ${seen} records`);
} catch (error) {
  for (let e = error as { code?: string; message?: string; cause?: unknown } | undefined; e; ) {
    console.error(`${e.code} ${e.message}`);
    e = e.cause as typeof e;
  }
  process.exitCode = 1;
}
