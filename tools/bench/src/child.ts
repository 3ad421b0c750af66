/**
 * One benchmark configuration in a fresh process: the runner (bench.ts)
 * forks this file with a job as JSON, and it answers with one IPC message.
 */
import { type DurableSystem, fsyncFloor, makeCommitter, runCommitters } from './committers.js';
import {
  type BufferedSystem,
  buffered,
  memory,
  micro,
  prepareLog,
  type ReplaySystem,
  replay,
} from './workloads.js';

export type Job =
  | {
      readonly kind: 'durable';
      readonly system: DurableSystem;
      readonly k: number;
      readonly seconds: number;
      readonly preallocate: number;
      readonly dir: string;
      /** Where peers installed on demand live. */
      readonly peers: string;
    }
  | { readonly kind: 'fsync-floor'; readonly seconds: number; readonly dir: string }
  | {
      readonly kind: 'buffered';
      readonly system: BufferedSystem;
      readonly size: number;
      readonly totalBytes: number;
      readonly dir: string;
    }
  | {
      readonly kind: 'prepare';
      readonly size: number;
      readonly totalBytes: number;
      readonly dir: string;
    }
  | {
      readonly kind: 'replay';
      readonly system: ReplaySystem;
      readonly logBytes: number;
      readonly dir: string;
    }
  | {
      readonly kind: 'memory';
      readonly phase: 'append' | 'recover';
      readonly size: number;
      readonly totalBytes: number;
      readonly dir: string;
    }
  | { readonly kind: 'micro'; readonly operations: number };

async function run(job: Job): Promise<unknown> {
  switch (job.kind) {
    case 'durable':
      return runCommitters(
        await makeCommitter(job.system, job.dir, job.preallocate, job.peers),
        job.k,
        job.seconds,
      );
    case 'fsync-floor':
      return fsyncFloor(job.dir, job.seconds);
    case 'buffered':
      return buffered(job.system, job.dir, job.size, job.totalBytes);
    case 'prepare':
      return prepareLog(job.dir, job.size, job.totalBytes);
    case 'replay':
      return replay(job.system, job.dir, job.logBytes);
    case 'memory':
      return memory(job.phase, job.dir, job.size, job.totalBytes);
    case 'micro':
      return micro(job.operations);
  }
}

const send = (message: unknown): Promise<void> =>
  new Promise((done) => {
    if (process.send === undefined) {
      console.log(JSON.stringify(message));
      done();
    } else process.send(message, () => done());
  });

try {
  const result = await run(JSON.parse(process.argv[2] ?? '{}') as Job);
  await send({ ok: true, result });
} catch (error) {
  await send({
    ok: false,
    error: error instanceof Error ? (error.stack ?? error.message) : String(error),
  });
  process.exitCode = 1;
}
process.disconnect?.();
