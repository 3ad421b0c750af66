// Helpers the test files share: logs to damage, snapshots of files, and the
// program run in process (for what a child process cannot reach).
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync, truncateSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { PassThrough } from 'node:stream';
import { Wal } from '@wal/core';
import { SegmentedStore } from '@wal/store';
import { run } from '../src/cli.js';
import { Output } from '../src/output.js';

/** Every file under `path` (and sibling files starting with its name) with its hash. */
export function snapshot(path: string): Map<string, string> {
  const out = new Map<string, string>();
  const parent = dirname(path);
  const base = path.slice(parent.length + 1);
  const visit = (file: string) => {
    if (statSync(file).isDirectory()) {
      for (const name of readdirSync(file)) visit(join(file, name));
    } else {
      out.set(file, createHash('sha256').update(readFileSync(file)).digest('hex'));
    }
  };
  for (const name of readdirSync(parent)) if (name.startsWith(base)) visit(join(parent, name));
  return out;
}

/**
 * A segmented log (4 KiB segments) of 10 records at `path` whose last record
 * is torn (its last 2 bytes cut) above a durable hint of 0: what a crash
 * mid-write leaves, and `wal repair` cuts.
 */
export async function tornLog(path: string): Promise<void> {
  const wal = await Wal.open(path, { segmentSize: 4096 });
  for (let i = 0; i < 10; i++) wal.append(new TextEncoder().encode(`record ${i}`));
  await wal.close();
  const file = join(path, '00000000000000000000.wal');
  truncateSync(file, statSync(file).size - 2);
  const store = await SegmentedStore.open(path);
  await store.updateMeta({ 'wal.durableHint': 0 });
  await store.close();
}

/**
 * Runs `wal …args` in process, on a terminal: when it asks `[y/N]`,
 * `beforeAnswer` runs, then `answer` is typed. Resolves with the exit code
 * and what went to stdout and stderr.
 */
export async function runOnTerminal(
  args: readonly string[],
  answer = 'n',
  beforeAnswer: () => Promise<void> | void = () => {},
): Promise<{ code: number; out: string; err: string }> {
  const stdin = Object.assign(new PassThrough(), { isTTY: true });
  const stdout = new PassThrough();
  const stderr = Object.assign(new PassThrough(), { isTTY: false });
  let out = '';
  let err = '';
  let asked = false;
  stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  stderr.on('data', (chunk: Buffer) => {
    err += chunk.toString();
    if (!asked && err.includes('[y/N]')) {
      asked = true;
      void Promise.resolve(beforeAnswer()).then(() => stdin.write(`${answer}\n`));
    }
  });
  const code = await run(['node', 'wal', ...args], { out: new Output(stdout), err: stderr, stdin });
  return { code, out, err };
}
