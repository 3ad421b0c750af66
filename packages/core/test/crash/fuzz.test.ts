/**
 * Hostile bytes into recovery: over 100,000 fast-check inputs per run — random
 * byte arrays; valid frames followed by hostile headers (lengths 2^32−1, 2^31,
 * maxRecordSize+1, maxRecordSize, 0, random; valid or bad CRC) and random
 * bytes; valid logs with random bytes overwritten — with a random durable hint
 * (or none) and head, in a MemoryStore (maxRecordSize 4096), opened read-only
 * and writable. Every input must give a clean open or WAL_CORRUPTION /
 * WAL_RECORD_TOO_LARGE, the same both ways; no store read longer than
 * max(scan window, maxRecordSize + 8); a clean open iterates without error,
 * keeps every valid frame below the first damage, resumes where the read-only
 * open said, and scans clean a second time.
 *
 * Regression fixtures: a failing input is written to
 * packages/core/test/crash/fixtures/ as `fuzz-<hash>.hint-<h>.head-<n>.bin`
 * (the raw log bytes; `.hint-<h>` is the durable hint put in the metadata,
 * absent for none; `.head-<n>` the head, absent for 0), by this test itself.
 * To add one by hand, write the bytes of a log to a file named that way. The
 * last test replays every file there (none is fine).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MemoryStore } from '@wal/store';
import fc from 'fast-check';
import { encodeFrame, HEADER_SIZE } from '../../src/frame.js';
import { Wal } from '../../src/index.js';
import { SCAN_WINDOW, scan } from '../../src/scan.js';
import { record } from './reliability.js';

const MAX = 4096;
/**
 * The longest read an input of `size` bytes may cause: a scan window (never
 * larger than the log, but at least a page) or a frame of a length already
 * checked against the maximum record size. Never a length read from the input.
 */
const readLimit = (size: number): number =>
  Math.max(Math.min(SCAN_WINDOW, Math.max(size, 4096)), MAX + HEADER_SIZE);
const TYPED = new Set(['WAL_CORRUPTION', 'WAL_RECORD_TOO_LARGE']);
/** The package root (this file runs from dist/test/crash). */
const PACKAGE = fileURLToPath(new URL('../../../', import.meta.url));
const FIXTURES = join(PACKAGE, 'test', 'crash', 'fixtures');

interface Input {
  readonly bytes: Uint8Array;
  /** The durable hint in the metadata, or none. */
  readonly hint: number | undefined;
  readonly head: number;
  /** Payloads of the valid frames the input starts with (an oracle), if known. */
  readonly valid?: readonly Uint8Array[];
}

async function storeOf(input: Input, reads: number[]): Promise<MemoryStore> {
  const store = new MemoryStore();
  await store.write(0, input.bytes);
  if (input.head > 0) await store.truncateBefore(input.head);
  await store.updateMeta({
    'wal.format': 1,
    'wal.maxRecordSize': MAX,
    ...(input.hint === undefined ? {} : { 'wal.durableHint': input.hint }),
  });
  const read = store.read.bind(store);
  store.read = (offset: number, length: number) => {
    reads.push(length);
    return read(offset, length);
  };
  const readInto = store.readInto.bind(store);
  store.readInto = (offset: number, into: Uint8Array) => {
    reads.push(into.length);
    return readInto(offset, into);
  };
  return store;
}

async function records(wal: Wal): Promise<Array<[number, Uint8Array]>> {
  const out: Array<[number, Uint8Array]> = [];
  for await (const batch of wal.iterateBatches()) {
    for (const { lsn, payload } of batch) out.push([lsn, payload]);
  }
  return out;
}

function codeOf(error: unknown): string {
  return String((error as { code?: unknown } | null)?.code);
}

/** Outcomes seen, by kind (`open`, or the error code): the fuzzing must reach them all. */
const outcomes = new Map<string, number>();

/** Opens `input` both ways and checks the outcome; throws on a violation. */
async function check(input: Input): Promise<void> {
  const reads: number[] = [];
  // Read-only: what recovery would do.
  let roCode: string | undefined;
  let roEnd = -1;
  let roRecords: Array<[number, Uint8Array]> = [];
  try {
    const wal = await Wal.open(await storeOf(input, reads), { readOnly: true });
    roEnd = wal.recovery.end;
    roRecords = await records(wal);
    await wal.close();
  } catch (error) {
    roCode = codeOf(error);
    if (!TYPED.has(roCode)) throw error;
  }
  // Writable: recovery itself.
  const store = await storeOf(input, reads);
  let rwCode: string | undefined;
  try {
    const wal = await Wal.open(store, { maxRecordSize: MAX });
    try {
      assert.equal(roCode, undefined, `read-only ${roCode}, writable opened`);
      assert.equal(wal.tail, roEnd, 'writable and read-only recovery end differ');
      assert.equal(store.length, wal.tail, 'the torn tail was not cut');
      const got = await records(wal);
      assert.equal(got.length, roRecords.length);
      for (let i = 0; i < got.length; i++) {
        assert.equal(got[i]![0], roRecords[i]![0]);
        assert.equal(Buffer.compare(got[i]![1], roRecords[i]![1]), 0);
      }
      // Valid frames below the hint's damage are never dropped.
      if (input.valid !== undefined && input.head === 0) {
        assert.ok(got.length >= input.valid.length, 'valid frames were dropped');
        let at = 0;
        for (let i = 0; i < input.valid.length; i++) {
          assert.equal(got[i]![0], at);
          assert.equal(Buffer.compare(got[i]![1], input.valid[i]!), 0, `frame ${i} changed`);
          at += HEADER_SIZE + input.valid[i]!.length;
        }
      }
      // Recovering again finds the same, clean log.
      const again = await scan(store, { maxRecordSize: MAX, durableHint: 0, policy: 'strict' });
      assert.equal(again.end, wal.tail);
      assert.equal(again.tear, undefined);
      assert.equal(again.records, got.length);
    } finally {
      await wal.close();
    }
  } catch (error) {
    if (error instanceof assert.AssertionError) throw error;
    rwCode = codeOf(error);
    if (!TYPED.has(rwCode)) throw error;
    assert.equal(rwCode, roCode, `writable ${rwCode}, read-only ${String(roCode)}`);
  }
  const outcome = roCode ?? (roEnd < input.bytes.length ? 'open, tail cut' : 'open');
  outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
  const over = reads.find((length) => length > readLimit(input.bytes.length));
  assert.equal(over, undefined, `a read of ${over} bytes`);
}

// ---------------------------------------------------------------- inputs

const HOSTILE_LENGTHS = [0xffff_ffff, 2 ** 31, MAX + 1, MAX, MAX - 1, 0, 1, 2 ** 31 - 1];

const payloads = fc.array(fc.uint8Array({ maxLength: 80 }), { maxLength: 6 });

function concat(parts: readonly Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

/** A hint anywhere in [0, length + 8], or none. */
function withHintAndHead(
  bytes: Uint8Array,
  valid: readonly Uint8Array[] | undefined,
  hintChoice: number,
  headChoice: number,
): Input {
  const hint =
    hintChoice < 0.25 ? undefined : Math.floor(((hintChoice - 0.25) / 0.75) * (bytes.length + 9));
  const head = headChoice < 0.85 ? 0 : Math.floor(((headChoice - 0.85) / 0.15) * bytes.length);
  return { bytes, hint, head, ...(valid === undefined ? {} : { valid }) };
}

const choice = fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true });

const randomBytes = fc
  .tuple(fc.uint8Array({ maxLength: 200 }), choice, choice)
  .map(([bytes, h, n]) => withHintAndHead(bytes, undefined, h, n));

/** Valid frames, then a hostile header (valid or bad CRC, payload present or not), then random bytes. */
const hostileTail = fc
  .tuple(
    payloads,
    fc.oneof(fc.constantFrom(...HOSTILE_LENGTHS), fc.nat({ max: 2 * MAX })),
    fc.boolean(),
    // Half the time the whole claimed payload is there (when that is small enough).
    fc.oneof(fc.constant(-1), fc.nat({ max: MAX + 64 })),
    fc.uint8Array({ maxLength: 40 }),
    choice,
    choice,
  )
  .map(([valid, length, goodCrc, present, trailer, h, n]) => {
    const frames = valid.map((p) => encodeFrame(p));
    const whole = present < 0 && length <= 2 * MAX + 64;
    const body = new Uint8Array(whole ? length : Math.min(Math.max(present, 0), length));
    for (let i = 0; i < body.length; i++) body[i] = (i * 31 + length) & 0xff;
    const header = new Uint8Array(HEADER_SIZE);
    const view = new DataView(header.buffer);
    view.setUint32(4, length >>> 0, true);
    if (goodCrc && body.length === length) {
      // The CRC a frame of this length and payload would carry.
      view.setUint32(0, new DataView(encodeFrame(body).buffer).getUint32(0, true), true);
    } else {
      view.setUint32(0, (length * 2654435761) >>> 0, true);
    }
    const bytes = concat([...frames, header, body, trailer]);
    // The oracle holds when the damage is at or above the hint.
    const input = withHintAndHead(bytes, valid, h, n);
    const validEnd = frames.reduce((sum, f) => sum + f.length, 0);
    const oracle = input.hint === undefined || input.hint <= validEnd;
    return oracle ? input : { bytes: input.bytes, hint: input.hint, head: input.head };
  });

/** A valid log with random bytes overwritten. */
const mutatedLog = fc
  .tuple(
    payloads,
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
    choice,
    choice,
  )
  .map(([valid, edits, h, n]) => {
    const bytes = concat(valid.map((p) => encodeFrame(p)));
    for (const [at, value] of edits) if (bytes.length > 0) bytes[at % bytes.length] = value;
    return withHintAndHead(bytes, undefined, h, n);
  });

function fixtureName(input: Input): string {
  const hash = createHash('sha256').update(input.bytes).digest('hex').slice(0, 12);
  const hint = input.hint === undefined ? '' : `.hint-${input.hint}`;
  const head = input.head === 0 ? '' : `.head-${input.head}`;
  return `fuzz-${hash}${hint}${head}.bin`;
}

function parseFixture(name: string, bytes: Uint8Array): Input {
  const hint = /\.hint-(\d+)/.exec(name)?.[1];
  const head = /\.head-(\d+)/.exec(name)?.[1];
  return {
    bytes,
    hint: hint === undefined ? undefined : Number(hint),
    head: head === undefined ? 0 : Number(head),
  };
}

/** Runs `runs` inputs; a failing one is saved as a fixture before the test fails. */
async function fuzz(arbitrary: fc.Arbitrary<Input>, runs: number): Promise<void> {
  const result = await fc.check(fc.asyncProperty(arbitrary, check), { numRuns: runs });
  record({ fuzzInputs: result.numRuns });
  if (result.failed) {
    const input = result.counterexample?.[0];
    if (input !== undefined) {
      mkdirSync(FIXTURES, { recursive: true });
      writeFileSync(join(FIXTURES, fixtureName(input)), input.bytes);
    }
    throw new Error(fc.defaultReportMessage(result) ?? 'fuzzing failed');
  }
}

describe('crash: hostile headers and fuzzed logs into recovery', () => {
  it('random byte arrays (30,000 inputs)', async function () {
    this.timeout(120_000);
    await fuzz(randomBytes, 30_000);
  });

  it('valid frames then a hostile header and random bytes (40,000 inputs)', async function () {
    this.timeout(120_000);
    await fuzz(hostileTail, 40_000);
  });

  it('valid logs with bytes overwritten (30,000 inputs)', async function () {
    this.timeout(120_000);
    await fuzz(mutatedLog, 30_000);
  });

  it('reached every outcome: clean opens, torn tails cut, WAL_CORRUPTION, WAL_RECORD_TOO_LARGE', () => {
    console.log(`      outcomes: ${JSON.stringify(Object.fromEntries(outcomes))}`);
    for (const kind of ['open', 'open, tail cut', 'WAL_CORRUPTION', 'WAL_RECORD_TOO_LARGE']) {
      assert.ok((outcomes.get(kind) ?? 0) > 100, `${kind}: ${outcomes.get(kind) ?? 0}`);
    }
  });

  it('replays every regression fixture in test/crash/fixtures', async () => {
    const files = existsSync(FIXTURES)
      ? readdirSync(FIXTURES).filter((name) => name.endsWith('.bin'))
      : [];
    for (const name of files) {
      const input = parseFixture(name, new Uint8Array(readFileSync(join(FIXTURES, name))));
      await check(input).catch((error: unknown) => {
        throw new Error(`fixture ${name}: ${String(error)}`, { cause: error });
      });
    }
    record({ fuzzInputs: files.length });
  });
});
