/**
 * The child of the process-kill test (kill.test.ts, soak.ts): opens the log in
 * a real directory, then appends self-describing records (records.ts) from
 * several concurrent committers until it is killed, and prints one line per
 * acknowledged record after its wait resolved:
 *
 *   O <head> <end>            recovery done (the log is open)
 *   A <lsn> <tag> <length>    the record at <lsn> is acknowledged (written or durable)
 *   W <lsn> <tag> <length>    the same, for a record appended by a worker thread
 *   E <code> <message>        an unexpected error (the parent fails)
 *
 * Usage: node kill-child.js <dir> <segmentSize> <seed> [threads]
 * Writes to a pipe are synchronous on Linux, so a printed line was sent
 * before the acknowledgement could be lost to the kill.
 *
 * With `threads` > 0 the log is shared (`Wal.share`) and that many worker
 * threads append besides the main thread's committers, through `SharedWal`;
 * their records carry UNPLACED for their LSN (records.ts), and their lines
 * reach the pipe through the main thread.
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { SharedWal, type SharedWalHandle, Wal } from '../../src/index.js';
import { makePayload, rng, UNPLACED } from './records.js';

const [dir, segmentArg, seedArg, threadsArg] = isMainThread
  ? process.argv.slice(2)
  : (workerData as { argv: string[] }).argv;
if (dir === undefined || segmentArg === undefined || seedArg === undefined) {
  process.stderr.write('usage: kill-child <dir> <segmentSize> <seed> [threads]\n');
  process.exit(2);
}
const threads = Number(threadsArg ?? 0);
const random = rng(
  Number(seedArg) + (isMainThread ? 0 : (workerData as { thread: number }).thread),
);
const committers = 2 + Math.floor(random() * 6);
// A child that outlives a vanished parent stops on its own.
if (isMainThread) setTimeout(() => process.exit(0), 30_000);
/**
 * The LSN a payload of the main thread says: its own, predicted from the
 * tail, unless worker threads share the log (one of them may reserve
 * between the prediction and the append).
 */
const placed = (lsn: number): number => (threads > 0 ? UNPLACED : lsn);

function fail(error: unknown): never {
  const code = (error as { code?: unknown } | null)?.code;
  process.stdout.write(`E ${String(code)} ${String(error).replace(/\n/g, ' ')}\n`);
  process.exit(3);
}

function length(): number {
  const r = random();
  if (r < 0.05) return 16 + Math.floor(random() * 9000); // spans segments
  return 16 + Math.floor(random() * 300);
}

async function committer(wal: Wal): Promise<void> {
  for (;;) {
    const r = random();
    const tag = Math.floor(random() * 2 ** 32);
    if (r < 0.1) {
      // A batch of consecutive records, one wait for the last.
      const payloads: Uint8Array[] = [];
      let lsn = wal.tail;
      const count = 2 + Math.floor(random() * 3);
      for (let i = 0; i < count; i++) {
        const payload = makePayload(placed(lsn), tag, length());
        payloads.push(payload);
        lsn += 8 + payload.length;
      }
      const lsns = await wal.appendBatch(payloads, { wait: 'durable' });
      lsns.forEach((at, i) => {
        process.stdout.write(`A ${at} ${tag} ${payloads[i]!.length}\n`);
      });
    } else if (r < 0.15) {
      // Unacknowledged appends, then a sync covering them.
      const payload = makePayload(placed(wal.tail), tag, length());
      const lsn = wal.append(payload);
      await wal.sync();
      process.stdout.write(`A ${lsn} ${tag} ${payload.length}\n`);
    } else {
      const lsn = wal.tail;
      const payload = makePayload(placed(lsn), tag, length());
      // `written` survives a process kill as well as `durable` does.
      const wait = r < 0.35 ? 'written' : 'durable';
      const at = await wal.append(payload, { wait });
      if (at !== lsn && threads === 0) fail(new Error(`append returned ${at}, expected ${lsn}`));
      process.stdout.write(`A ${at} ${tag} ${payload.length}\n`);
    }
    if (!wal.writable) await wal.drained();
  }
}

/** A worker thread's committer: appends through the shared log, its LSN known only then. */
async function threadCommitter(log: SharedWal): Promise<void> {
  for (;;) {
    const tag = Math.floor(random() * 2 ** 32);
    const payload = makePayload(UNPLACED, tag, length());
    const wait = random() < 0.3 ? 'written' : 'durable';
    if (!log.writable) await log.drained();
    const lsn = await log.append(payload, { wait });
    process.stdout.write(`W ${lsn} ${tag} ${payload.length}\n`);
  }
}

async function main(): Promise<void> {
  // The workers start while the log opens (a worker takes some 200 ms to
  // load its modules); each gets its handle once the log is open.
  const workers = Array.from({ length: threads }, (_, i) => {
    const worker = new Worker(new URL(import.meta.url), {
      workerData: { argv: process.argv.slice(2), thread: i + 1 },
    });
    worker.on('error', fail);
    return worker;
  });
  const wal = await Wal.open(dir!, { segmentSize: Number(segmentArg) });
  process.stdout.write(`O ${wal.head} ${wal.tail}\n`);
  for (const worker of workers) {
    const handle = wal.share();
    worker.postMessage(handle, [handle.port]);
  }
  await Promise.all(Array.from({ length: committers }, () => committer(wal)));
}

if (isMainThread) main().catch(fail);
else {
  parentPort!.once('message', (handle: SharedWalHandle) => {
    const log = SharedWal.attach(handle);
    Promise.all(
      Array.from({ length: 1 + Math.floor(random() * 4) }, () => threadCommitter(log)),
    ).catch(fail);
  });
}
