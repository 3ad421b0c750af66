// The @wal demo: a small key-value store (./kv.ts) on the write-ahead log.
// It shows, in about ten seconds, what the log is for:
//   1. group commit: many concurrent durable writes share each fsync;
//   2. checkpoints: a snapshot lets the log drop its prefix (segments deleted);
//   3. crash safety: a writer process is killed with SIGKILL, and every write
//      it acknowledged is still there after recovery.
// Everything happens in a fresh temporary directory, removed at the end.
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isWalError } from '@wal/errors';
import { type FsFile, NodeFs } from '@wal/store';
import { KvStore } from './kv.js';

/** The real file system, counting the fsyncs the log asks for. */
class CountingFs extends NodeFs {
  fsyncs = 0;
  override fdatasync(file: FsFile): Promise<void> {
    this.fsyncs++;
    return super.fdatasync(file);
  }
  override syncDir(path: string): Promise<void> {
    this.fsyncs++;
    return super.syncDir(path);
  }
}

const ROUND_MS = 2000;
const KEYS_PER_WRITER = 100;

function say(text = ''): void {
  process.stdout.write(`${text}\n`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function segmentFiles(dir: string): Promise<number> {
  return (await readdir(join(dir, 'wal'))).filter((name) => name.endsWith('.wal')).length;
}

/** `writers` async loops doing durable puts of their own keys for `ms`; resolves with the put count. */
async function putFor(kv: KvStore, writers: number, ms: number): Promise<number> {
  const deadline = Date.now() + ms;
  let commits = 0;
  const filler = 'x'.repeat(40);
  async function writer(id: number): Promise<void> {
    for (let i = 0; Date.now() < deadline; i++) {
      await kv.put(`w${id}-k${i % KEYS_PER_WRITER}`, `value ${i} of writer ${id} ${filler}`);
      commits++;
    }
  }
  await Promise.all(Array.from({ length: writers }, (_, id) => writer(id)));
  return commits;
}

/** Part 1: concurrent durable puts, and the fsyncs they cost. */
async function groupCommit(dir: string): Promise<void> {
  say('1. Group commit');
  say('   Each put is acknowledged only once its record is durable (fsynced).');
  say('   Concurrent puts share one fsync: the more writers, the fewer fsyncs per put.');
  const fs = new CountingFs();
  const kv = await KvStore.open(dir, { fs });
  try {
    for (const writers of [1, 8, 64]) {
      const fsyncsBefore = fs.fsyncs;
      const started = performance.now();
      const commits = await putFor(kv, writers, ROUND_MS);
      const seconds = (performance.now() - started) / 1000;
      const perCommit = (fs.fsyncs - fsyncsBefore) / commits;
      say(
        `   ${String(writers).padStart(2)} writer(s): ${String(Math.round(commits / seconds)).padStart(7)} durable puts/s, ${perCommit.toFixed(3)} fsyncs per put`,
      );
    }
  } finally {
    await kv.close();
  }
}

/** Part 2: a checkpoint, then a reopen that replays only what follows it. */
async function checkpoint(dir: string): Promise<void> {
  say();
  say('2. Checkpoint');
  let kv = await KvStore.open(dir);
  try {
    const before = { head: kv.wal.head, tail: kv.wal.tail, segments: await segmentFiles(dir) };
    say(
      `   before: ${kv.size} keys; the log holds ${((before.tail - before.head) / 1e6).toFixed(1)} MB in ${before.segments} segment files`,
    );
    const lsn = await kv.checkpoint();
    say(
      `   checkpoint: snapshot.json written atomically (${kv.size} keys, replay from LSN ${lsn})`,
    );
    say(
      `   after: log head moved ${before.head} -> ${kv.wal.head}; ${await segmentFiles(dir)} segment file(s) left`,
    );
    for (let i = 0; i < 90; i++) await kv.put(`late-${i}`, `after the checkpoint ${i}`);
    for (let i = 0; i < 10; i++) await kv.del(`w0-k${i}`);
    await kv.close();
    kv = await KvStore.open(dir);
    const { snapshotEntries, replayed } = kv.opened;
    say(
      `   100 more changes, close, reopen: ${snapshotEntries} keys from the snapshot + ${replayed} records replayed = ${kv.size} keys`,
    );
  } finally {
    await kv.close();
  }
}

/** Splits a stream into complete lines; a partial last line (cut by the kill) is dropped. */
function onLines(stream: NodeJS.ReadableStream, handle: (line: string) => void): Promise<void> {
  let rest = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    const lines = (rest + chunk).split('\n');
    rest = lines.pop()!;
    for (const line of lines) handle(line);
  });
  return new Promise((resolve, reject) => {
    stream.on('end', resolve);
    stream.on('error', reject);
  });
}

/** Part 3: kill a writer process mid-flight; check that nothing it acknowledged is lost. */
async function crash(dir: string): Promise<boolean> {
  say();
  say('3. Crash');
  const writerPath = join(dirname(fileURLToPath(import.meta.url)), 'writer.js');
  const child = spawn(process.execPath, [writerPath, dir], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) => {
    child.on('exit', (code, signal) => resolve(signal ?? code));
  });
  const acked = new Map<string, string>();
  let firstAck: (() => void) | undefined;
  const acking = new Promise<void>((resolve) => {
    firstAck = resolve;
  });
  const output = onLines(child.stdout, (line) => {
    const [kind, key, value] = line.split(' ');
    if (kind === 'ack' && key !== undefined && value !== undefined) {
      acked.set(key, value);
      firstAck?.();
    }
  });
  say(`   a writer process (pid ${child.pid}) opens the store and does durable puts flat out,`);
  say('   checkpointing every 150 ms, printing each put once it is acknowledged');

  await Promise.race([acking, exited]);
  if (child.exitCode !== null) {
    say(`   FAILED: the writer exited with code ${child.exitCode} before acknowledging anything`);
    return false;
  }
  try {
    const intruder = await KvStore.open(dir);
    await intruder.close();
    say('   FAILED: a second open succeeded while the writer held the store');
    child.kill('SIGKILL');
    return false;
  } catch (error) {
    if (!isWalError(error, 'WAL_LOCKED')) throw error;
    say(`   meanwhile, opening the store here fails with ${error.code}: the writer holds its lock`);
  }
  const delay = 300 + Math.floor(Math.random() * 500);
  await sleep(delay);
  child.kill('SIGKILL');
  const how = await exited;
  await output;
  say(`   killed it with SIGKILL ${delay} ms after its first acknowledgement (exit: ${how})`);
  if (how !== 'SIGKILL') {
    say('   FAILED: the writer stopped on its own, not by the kill');
    return false;
  }

  const kv = await KvStore.open(dir);
  try {
    const { recovery, snapshotEntries, replayFrom, replayed } = kv.opened;
    say(
      `   reopened; the log's recovery: ${recovery.records} intact records, ${recovery.tornBytes} bytes of a torn write and ${recovery.zeroTail} zero bytes (space the log preallocates ahead of its end) cut after them, ${recovery.droppedFrames} frames dropped`,
    );
    say(
      `   the store: ${snapshotEntries} keys from the last snapshot, ${replayed} records replayed from LSN ${replayFrom}`,
    );
    const lost: string[] = [];
    for (const [key, value] of acked) {
      if (kv.get(key) !== value) lost.push(`${key}: expected ${value}, found ${kv.get(key)}`);
    }
    if (acked.size === 0 || lost.length > 0) {
      say(`   FAILED: ${lost.length} of ${acked.size} acknowledged writes lost or wrong:`);
      for (const line of lost.slice(0, 10)) say(`     ${line}`);
      return false;
    }
    say(`   verified ${acked.size} acknowledged writes: none lost`);
    return true;
  } finally {
    await kv.close();
  }
}

const started = performance.now();
const root = await mkdtemp(join(tmpdir(), 'wal-demo-'));
let ok = false;
try {
  say('A key-value store on @wal (examples/src/kv.ts), in a fresh temporary directory');
  say();
  await groupCommit(root);
  await checkpoint(root);
  ok = await crash(root);
} finally {
  await rm(root, { recursive: true, force: true });
}
say();
if (ok) {
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  say(`Done in ${seconds} s; the temporary directory is removed.`);
  say('The store is one small file, examples/src/kv.ts; see examples/README.md,');
  say('the root README.md and docs/ for the log itself.');
} else {
  say('The demo FAILED (see above).');
  process.exitCode = 1;
}
