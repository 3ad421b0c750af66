/**
 * A writer process for the kill tests: opens the log at argv[2], attaches to
 * stream argv[3] and appends replicated records from 4 committers forever,
 * printing each acknowledged LSN on its own line. The parent SIGKILLs it.
 */
import { Wal } from '@wal/core';
import { Replicator } from '@wal/replicate';
import { payload } from './fixture-bytes.js';

const [path, stream, servers] = process.argv.slice(2) as [string, string, string];
const wal = await Wal.open(path);
const replicator = await Replicator.attach(wal, {
  nats: { servers: servers.split(','), user: 'wal', pass: process.env.WAL_TEST_PASS ?? '' },
  stream,
  timeout: 1000,
});
let seed = Date.now() % 100_000;
async function committer(): Promise<never> {
  for (;;) {
    const n = seed++;
    // Every 7th record is larger than the servers' 64 KiB payload.
    const size = n % 7 === 0 ? 150_000 : (n * 37) % 900;
    const lsn = await replicator.append(payload(size, n));
    process.stdout.write(`${lsn}\n`);
  }
}
await Promise.all([committer(), committer(), committer(), committer()]);
