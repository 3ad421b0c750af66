// One log, many threads: worker threads do CPU-heavy work (hashing, here)
// and append its results to a log opened by the main thread. Each append
// returns its LSN in the worker at once (no lock, no message); a durable wait
// is served by the main thread's one group commit, for every worker at once.
// Then the main thread closes the log, reopens it and checks every record.
// Everything happens in a fresh temporary directory, removed at the end.
// Run: `./pnpm demo:threads` (from the repository root: builds, then runs).
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { SharedWal, type SharedWalHandle, Wal } from '@wal/core';

const WORKERS = 3;
const JOBS = 2000;
const COMMITTERS = 16;

interface Result {
  readonly worker: number;
  readonly lsns: number[];
}

/** What worker `worker` appends for job `job`: a hash chain, 32 bytes. */
function work(worker: number, job: number): Uint8Array {
  let digest = Buffer.from(`${worker}:${job}`);
  for (let round = 0; round < 200; round++) digest = createHash('sha256').update(digest).digest();
  return digest;
}

async function workerMain(): Promise<void> {
  const { handle, worker } = workerData as { handle: SharedWalHandle; worker: number };
  const log = SharedWal.attach(handle);
  const lsns: number[] = new Array(JOBS);
  let next = 0;
  // Several committers per thread, each awaiting its record's durability
  // before its next job: their fsyncs are shared with every other thread's.
  async function committer(): Promise<void> {
    while (next < JOBS) {
      const job = next++;
      const payload = work(worker, job);
      if (!log.writable) await log.drained();
      lsns[job] = await log.append(payload, { wait: 'durable' });
    }
  }
  await Promise.all(Array.from({ length: COMMITTERS }, committer));
  parentPort!.postMessage({ worker, lsns } satisfies Result);
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'wal-threads-'));
  try {
    const wal = await Wal.open(join(dir, 'log'));
    const started = performance.now();
    const results = await Promise.all(
      Array.from({ length: WORKERS }, (_, worker) => {
        const handle = wal.share();
        const thread = new Worker(new URL(import.meta.url), {
          workerData: { handle, worker },
          transferList: [handle.port],
        });
        return new Promise<Result>((resolve, reject) => {
          thread.once('message', resolve);
          thread.once('error', reject);
        });
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    const stats = wal.stats();
    const records = WORKERS * JOBS;
    console.log(
      `${WORKERS} worker threads, ${COMMITTERS} committers each: ${records} durable appends in ${seconds.toFixed(2)} s, ` +
        `${stats.fsyncs} fsyncs (${(records / Math.max(1, stats.fsyncs)).toFixed(1)} records per fsync)`,
    );
    await wal.close();

    // Every LSN unique, and every record where its worker said it is.
    const reopened = await Wal.open(join(dir, 'log'));
    const expected = new Map<number, Uint8Array>();
    for (const { worker, lsns } of results) {
      for (const [job, lsn] of lsns.entries()) expected.set(lsn, work(worker, job));
    }
    let checked = 0;
    for await (const record of reopened.iterate()) {
      const want = expected.get(record.lsn);
      if (want === undefined || !Buffer.from(record.payload).equals(want)) {
        throw new Error(`the record at LSN ${record.lsn} is not the one its worker appended`);
      }
      checked++;
    }
    await reopened.close();
    if (expected.size !== records || checked !== records) {
      throw new Error(
        `${expected.size} distinct LSNs and ${checked} records read back, of ${records}`,
      );
    }
    console.log(`reopened: all ${checked} records read back, each at the LSN its worker got`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (isMainThread) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
} else {
  void workerMain();
}
