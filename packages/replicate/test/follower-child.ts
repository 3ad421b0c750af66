/**
 * A follower process for the kill tests: opens the log at argv[2] and
 * follows stream argv[3] into it. Prints `open <sequence> <tail>` once the
 * follower started (the sequence it consumes after, the log's tail), then
 * `at <sequence> <messages> <duplicates>` whenever one of them changed, and
 * `failed <code> <message>` if it stopped. The parent
 * SIGKILLs it.
 */
import { Wal } from '@wal/core';
import { Follower } from '@wal/replicate';

const [path, stream, servers] = process.argv.slice(2) as [string, string, string];
const wal = await Wal.open(path);
// The tail the follower starts from: it appends as soon as it opened.
const tail = wal.tail;
const follower = await Follower.open(wal, {
  nats: { servers: servers.split(','), user: 'wal', pass: process.env.WAL_TEST_PASS ?? '' },
  stream,
});
process.stdout.write(`open ${follower.sequence} ${tail}\n`);
let printed = '';
setInterval(() => {
  if (follower.failure !== undefined) {
    process.stdout.write(`failed ${follower.failure.code} ${follower.failure.message}\n`);
    process.exit(1);
  }
  const { messages, duplicates } = follower.stats;
  const line = `at ${follower.sequence} ${messages} ${duplicates}`;
  if (line === printed) return;
  printed = line;
  process.stdout.write(`${line}\n`);
}, 5);
