/**
 * One lane of the process-kill test: a directory reused across kills. Each
 * round spawns kill-child.js, SIGKILLs it at a seeded random moment (during
 * startup and recovery, or while it appends), then recovers the log in this
 * process and checks it: every acknowledged record present with its payload,
 * every record a valid self-describing one at its LSN (no garbage), the
 * records a gapless chain from the head, a second recovery identical and
 * cutting nothing, and an append after recovery durable. Used by kill.test.ts
 * and soak.ts (no mocha here).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Wal } from '../../src/index.js';
import { checkPayload, makePayload, rng, UNPLACED } from './records.js';

/**
 * Where the lanes' directories go: WAL_KILL_TMPDIR, else /dev/shm when present
 * (a kernel file system with a page cache, which is what a process kill
 * tests; fsyncs there cost nothing, so more kills fit in a run), else the
 * system's temporary directory.
 */
export function killTmpdir(): string {
  const asked = process.env.WAL_KILL_TMPDIR;
  if (asked !== undefined && asked !== '') return asked;
  return existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
}

/** The compiled child, next to this file in dist. */
export const CHILD = fileURLToPath(new URL('./kill-child.js', import.meta.url));

export interface LaneOptions {
  readonly dir: string;
  readonly segmentSize: number;
  readonly seed: number;
  readonly kills: number;
  /** Keep the live log below about this many bytes by truncating its prefix. */
  readonly maxLogBytes?: number;
  /** Worker threads appending through a shared log besides the child's main thread (default 0). */
  readonly threads?: number;
  readonly onRound?: (round: number, result: LaneResult) => void;
}

export interface LaneResult {
  kills: number;
  /** Acknowledgements received and checked. */
  acked: number;
  /** Of those, acknowledgements of records appended by worker threads. */
  threadAcked: number;
  /** Rounds killed before the child finished recovery. */
  earlyKills: number;
  lost: number;
  garbage: number;
  /** Recoveries that threw (the lane stops at the first). */
  failedRecoveries: number;
  /** Descriptions of every violation (empty when all is well). */
  problems: string[];
}

interface Ack {
  readonly tag: number;
  readonly length: number;
}

const EXTRA_TAG = 0xfffffff0;

/**
 * Runs one child until killed; resolves with its acknowledgements (and how
 * many came from worker threads) and whether it opened. With `killAfterOpenMs`
 * the kill comes that long after the log opened, or, when worker threads
 * append, after the first acknowledgement from one of them: starting a worker
 * takes tens of milliseconds of CPU, and on a loaded machine a timer started
 * at the open would mostly kill children whose threads had not appended yet.
 */
async function round(
  options: LaneOptions,
  seed: number,
  killAfterOpenMs: number | undefined,
  killAfterSpawnMs: number,
): Promise<{ acks: Array<[number, Ack]>; threadAcks: number; opened: boolean; problem?: string }> {
  const threads = options.threads ?? 0;
  const child: ChildProcess = spawn(
    process.execPath,
    [CHILD, options.dir, String(options.segmentSize), String(seed), String(threads)],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const acks: Array<[number, Ack]> = [];
  let threadAcks = 0;
  let opened = false;
  let problem: string | undefined;
  let pending = '';
  let stderr = '';
  let killed = false;
  const kill = (): void => {
    if (killed) return;
    killed = true;
    child.kill('SIGKILL');
  };
  const closed = new Promise<number | null>((resolve) => {
    child.on('close', (code) => resolve(code));
  });
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => {
    stderr += chunk;
  });
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    pending += chunk;
    let newline = pending.indexOf('\n');
    while (newline >= 0) {
      const line = pending.slice(0, newline);
      pending = pending.slice(newline + 1);
      newline = pending.indexOf('\n');
      const parts = line.split(' ');
      if (parts[0] === 'A' || parts[0] === 'W') {
        acks.push([Number(parts[1]), { tag: Number(parts[2]), length: Number(parts[3]) }]);
        if (parts[0] === 'W' && ++threadAcks === 1 && killAfterOpenMs !== undefined) {
          setTimeout(kill, killAfterOpenMs);
        }
      } else if (parts[0] === 'O') {
        opened = true;
        if (killAfterOpenMs !== undefined && threads === 0) setTimeout(kill, killAfterOpenMs);
      } else {
        problem ??= `child: ${line}`;
      }
    }
  });
  if (killAfterOpenMs === undefined) setTimeout(kill, killAfterSpawnMs);
  // A child that never opens, or whose threads never append (a bug), is killed eventually.
  const guard = setTimeout(() => {
    if (!opened) problem ??= 'the child did not open within 10 s';
    else if (threads > 0 && threadAcks === 0) {
      problem ??= 'no worker thread of the child acknowledged an append within 10 s';
    }
    kill();
  }, 10_000);
  const code = await closed;
  clearTimeout(guard);
  if (!killed) problem ??= `the child exited by itself (code ${code}): ${stderr.slice(0, 2000)}`;
  return { acks, threadAcks, opened, ...(problem === undefined ? {} : { problem }) };
}

/** Every record of the log, checked as self-describing records. */
async function readAll(
  wal: Wal,
  result: LaneResult,
  label: string,
): Promise<Array<[number, number]>> {
  const records: Array<[number, number]> = [];
  let expected = wal.head;
  for await (const batch of wal.iterateBatches()) {
    for (const { lsn, payload } of batch) {
      if (lsn !== expected) {
        result.garbage++;
        result.problems.push(`${label}: record at ${lsn}, expected the next one at ${expected}`);
      }
      expected = lsn + 8 + payload.length;
      // A shared log's records say which append made them, not where.
      const tag = checkPayload(lsn, payload) ?? checkPayload(UNPLACED, payload);
      if (tag === undefined) {
        result.garbage++;
        result.problems.push(`${label}: garbage record at ${lsn} (${payload.length} bytes)`);
      }
      records.push([lsn, tag ?? -1]);
    }
  }
  if (expected !== wal.tail) {
    result.problems.push(`${label}: records end at ${expected}, the log at ${wal.tail}`);
  }
  return records;
}

/** Runs a lane; resolves with its figures (problems listed, never thrown). */
export async function runLane(options: LaneOptions): Promise<LaneResult> {
  const random = rng(options.seed);
  const acked = new Map<number, Ack>();
  const result: LaneResult = {
    kills: 0,
    acked: 0,
    threadAcked: 0,
    earlyKills: 0,
    lost: 0,
    garbage: 0,
    failedRecoveries: 0,
    problems: [],
  };
  const maxLog = options.maxLogBytes ?? 1024 * 1024;
  for (let i = 0; i < options.kills && result.problems.length === 0; i++) {
    const early = random() < 0.25;
    const outcome = await round(
      options,
      Math.floor(random() * 2 ** 31),
      early ? undefined : Math.floor(random() * 60),
      Math.floor(random() * 500),
    );
    result.kills++;
    result.threadAcked += outcome.threadAcks;
    if (!outcome.opened) result.earlyKills++;
    if (outcome.problem !== undefined) result.problems.push(`round ${i}: ${outcome.problem}`);
    for (const [lsn, ack] of outcome.acks) {
      acked.set(lsn, ack);
      result.acked++;
    }
    const label = `round ${i} (${options.dir})`;

    // First recovery: a recovery that throws is a finding, not a crash of the test.
    const recover = (which: string): Promise<Wal | undefined> =>
      Wal.open(options.dir, { segmentSize: options.segmentSize }).catch((error: unknown) => {
        result.failedRecoveries++;
        result.problems.push(`${label}: ${which} recovery failed: ${String(error)}`);
        return undefined;
      });
    let wal = await recover('first');
    if (wal === undefined) break;
    const first = await readAll(wal, result, `${label}, first recovery`);
    const found = new Map(first);
    for (const [lsn, ack] of acked) {
      if (lsn < wal.head) continue;
      if (found.get(lsn) !== ack.tag) {
        result.lost++;
        result.problems.push(`${label}: acknowledged record at ${lsn} (tag ${ack.tag}) lost`);
      }
    }
    const end = wal.tail;
    await wal.close();

    // Second recovery: the same log, nothing cut; then an append works.
    wal = await recover('second');
    if (wal === undefined) break;
    if (wal.recovery.truncated || wal.tail !== end) {
      result.problems.push(
        `${label}: second recovery changed the log (end ${end} -> ${wal.tail}, cut ${wal.recovery.tornBytes})`,
      );
    }
    const second = await readAll(wal, result, `${label}, second recovery`);
    if (JSON.stringify(second) !== JSON.stringify(first)) {
      result.problems.push(`${label}: the second recovery read different records`);
    }
    const lsn = wal.tail;
    const payload = makePayload(lsn, EXTRA_TAG, 16 + (i % 50));
    await wal.append(payload, { wait: 'durable' });
    acked.set(lsn, { tag: EXTRA_TAG, length: payload.length });
    // Keep the log small: drop a prefix at a record boundary.
    if (wal.tail - wal.head > maxLog && second.length > 4) {
      const cut = second[Math.floor(second.length / 2)]![0];
      await wal.truncateBefore(cut);
      for (const at of [...acked.keys()]) if (at < cut) acked.delete(at);
    }
    await wal.close();
    options.onRound?.(i, result);
  }
  return result;
}
