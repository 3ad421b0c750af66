/**
 * Synchronous vs promise file-system calls, for the choice documented in
 * packages/store/README.md ("Why promise fs calls"). Measures positional
 * writes and reads of 100 B and 1 MiB, and fdatasync after a small write.
 *
 * Usage: node dist/src/fs-calls.js [directory]   (default: the OS temp dir)
 * Run it on a real disk, never on tmpfs: the numbers are meaningless there.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

interface Result {
  readonly case: string;
  readonly style: Style;
  readonly ops: number;
  readonly usPerOp: number;
  readonly opsPerSec: number;
  readonly mbPerSec: number;
  /** Event-loop (main thread) busy time per call, in microseconds. */
  readonly loopUsPerOp: number;
}

type Style = 'sync' | 'promise' | 'promise x4';

const results: Result[] = [];

let elu = performance.eventLoopUtilization();

function begin(): number {
  elu = performance.eventLoopUtilization();
  return performance.now();
}

function record(name: string, style: Style, ops: number, bytes: number, start: number) {
  const ms = performance.now() - start;
  const busy = performance.eventLoopUtilization(elu).active;
  const usPerOp = (ms * 1000) / ops;
  results.push({
    case: name,
    style,
    ops,
    usPerOp: Math.round(usPerOp * 100) / 100,
    opsPerSec: Math.round(ops / (ms / 1000)),
    mbPerSec: Math.round(((ops * bytes) / (ms / 1000) / 1e6) * 10) / 10,
    loopUsPerOp: Math.round(((busy * 1000) / ops) * 100) / 100,
  });
}

async function bench(dir: string, size: number, ops: number, fileSize: number): Promise<void> {
  const label = size >= 1024 * 1024 ? `${size / (1024 * 1024)} MiB` : `${size} B`;
  const buf = randomBytes(size);
  const slots = Math.max(1, Math.floor(fileSize / size));
  // Writes: cycle over a bounded file so large cases do not fill the disk.
  for (const style of ['sync', 'promise', 'sync', 'promise'] as const) {
    const path = join(dir, `w-${style}-${size}`);
    fs.rmSync(path, { force: true });
    if (style === 'sync') {
      const fd = fs.openSync(path, 'w+');
      const start = begin();
      for (let i = 0; i < ops; i++) fs.writeSync(fd, buf, 0, size, (i % slots) * size);
      record(`pwrite ${label}`, style, ops, size, start);
      fs.closeSync(fd);
    } else {
      const handle = await open(path, 'w+');
      const start = begin();
      for (let i = 0; i < ops; i++) await handle.write(buf, 0, size, (i % slots) * size);
      record(`pwrite ${label}`, style, ops, size, start);
      await handle.close();
    }
  }
  for (let round = 0; round < 2; round++) {
    const handle = await open(join(dir, `w-x4-${size}`), 'w+');
    const start = begin();
    let next = 0;
    const worker = async () => {
      while (next < ops) {
        const i = next++;
        await handle.write(buf, 0, size, (i % slots) * size);
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
    record(`pwrite ${label}`, 'promise x4', ops, size, start);
    await handle.close();
  }
  // Reads from the (now cached) file written above.
  const path = join(dir, `w-promise-${size}`);
  const into = Buffer.alloc(size);
  for (const style of ['sync', 'promise', 'sync', 'promise'] as const) {
    if (style === 'sync') {
      const fd = fs.openSync(path, 'r');
      const start = begin();
      for (let i = 0; i < ops; i++) fs.readSync(fd, into, 0, size, (i % slots) * size);
      record(`pread ${label}`, style, ops, size, start);
      fs.closeSync(fd);
    } else {
      const handle = await open(path, 'r');
      const start = begin();
      for (let i = 0; i < ops; i++) await handle.read(into, 0, size, (i % slots) * size);
      record(`pread ${label}`, style, ops, size, start);
      await handle.close();
    }
  }
}

async function benchSync(dir: string, ops: number): Promise<void> {
  const buf = randomBytes(100);
  for (const style of ['sync', 'promise'] as const) {
    const path = join(dir, `s-${style}`);
    if (style === 'sync') {
      const fd = fs.openSync(path, 'w+');
      const start = begin();
      for (let i = 0; i < ops; i++) {
        fs.writeSync(fd, buf, 0, 100, i * 100);
        fs.fdatasyncSync(fd);
      }
      record('pwrite 100 B + fdatasync', style, ops, 100, start);
      fs.closeSync(fd);
    } else {
      const handle = await open(path, 'w+');
      const start = begin();
      for (let i = 0; i < ops; i++) {
        await handle.write(buf, 0, 100, i * 100);
        await handle.datasync();
      }
      record('pwrite 100 B + fdatasync', style, ops, 100, start);
      await handle.close();
    }
  }
}

async function main(): Promise<void> {
  const parent = process.argv[2] ?? tmpdir();
  const dir = await mkdtemp(join(parent, 'wal-fs-calls-'));
  try {
    await bench(dir, 100, 100_000, 64 * 1024 * 1024);
    await bench(dir, 1024 * 1024, 500, 64 * 1024 * 1024);
    await benchSync(dir, 300);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  // Keep the second (warm) run of each pair.
  const warm = new Map<string, Result>();
  for (const r of results) warm.set(`${r.case}/${r.style}`, r);
  console.table([...warm.values()]);
}

await main();
