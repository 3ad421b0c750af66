/**
 * The child process of the demo's crash test: opens the key-value store in
 * the directory given as its argument and writes to it as fast as it can
 * until it is killed, checkpointing now and then.
 *
 * Every put is printed as `ack <key> <value>` on stdout only after it is
 * durable: each such line is a promise the store must keep after the crash.
 */
import { KvStore } from './kv.js';

/** Concurrent writers: enough for group commit to matter. */
const WRITERS = 16;
/** Milliseconds between checkpoints, so a kill may land in the middle of one. */
const CHECKPOINT_EVERY_MS = 150;
/** Gives up on its own if nobody kills it (the parent died, say). */
const MAX_RUN_MS = 20_000;

const dir = process.argv[2];
if (dir === undefined) {
  process.stderr.write('usage: writer <store directory>\n');
  process.exit(2);
}

const kv = await KvStore.open(dir);
process.stdout.write(`ready ${kv.size}\n`);

let next = 0;
async function writer(): Promise<void> {
  for (;;) {
    const n = next++;
    const key = `crash-${n}`;
    const value = `v${n}-${Math.random().toString(36).slice(2, 10)}`;
    await kv.put(key, value);
    process.stdout.write(`ack ${key} ${value}\n`);
  }
}

const timer = setInterval(() => {
  kv.checkpoint().catch(fail);
}, CHECKPOINT_EVERY_MS);
setTimeout(() => process.exit(3), MAX_RUN_MS).unref();

function fail(error: unknown): never {
  process.stderr.write(`writer failed: ${String(error)}\n`);
  clearInterval(timer);
  process.exit(1);
}

for (let i = 0; i < WRITERS; i++) writer().catch(fail);
