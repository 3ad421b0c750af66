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
 *
 * Oracle: every input is also decoded by {@link referenceDecode}, a small,
 * slow decoder written from docs/FORMAT.md alone (§1 CRC-32C bit by bit, §2
 * frames, §8 steps 3–6 under the strict policy), sharing no code with the
 * log. The writable recovery must give the reference's outcome and exactly
 * its records. Counted into the reliability figures: `lost` = frames the
 * reference accepts below the durable hint that recovery drops, `garbage` =
 * records recovery returns that the reference rejects, `failedRecoveries` =
 * recoveries that throw where the reference opens.
 *
 * Regression fixtures: the last test replays every file in
 * packages/core/test/crash/fixtures/ named `fuzz-<hash>.hint-<h>.head-<n>.bin`
 * (the raw log bytes; `.hint-<h>` is the durable hint put in the metadata,
 * absent for none; `.head-<n>` the head, absent for 0). A failing fuzz run
 * writes its counterexample so named into a new temporary directory and
 * prints where; copy it into fixtures/ to keep it.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MemoryStore } from '@wal/store';
import fc from 'fast-check';
import { encodeFrame, HEADER_SIZE } from '../../src/frame.js';
import { Wal } from '../../src/index.js';
import { SCAN_WINDOW, scan } from '../../src/scan.js';
import { checked, found } from './reliability.js';

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

// ---------------------------------------------------------------- oracle

/** CRC-32C (FORMAT.md §1), one bit at a time. */
function crc32cReference(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

/** What FORMAT.md says recovery (strict policy) makes of an input. */
interface Reference {
  /** `open`, or the error code the open must reject with. */
  readonly outcome: 'open' | 'WAL_CORRUPTION' | 'WAL_RECORD_TOO_LARGE';
  /** Every intact frame from the head up to the first damage, in order. */
  readonly frames: ReadonlyArray<readonly [lsn: number, payload: Uint8Array]>;
  /** Where the recovered log ends (for `open`). */
  readonly end: number;
}

/**
 * Decodes `input` as FORMAT.md §8 describes: a log shorter than the hint is
 * corruption (step 3); frames are walked from the head (§2: CRC over the
 * length field and payload); the first short header, short payload or
 * checksum mismatch is a tear when at or above the hint, corruption below it
 * (steps 5–6); an intact frame longer than the maximum rejects the open.
 */
function referenceDecode(input: Input): Reference {
  const { bytes, head } = input;
  const hint = input.hint ?? head;
  const frames: [number, Uint8Array][] = [];
  if (bytes.length < hint) return { outcome: 'WAL_CORRUPTION', frames, end: head };
  let at = head;
  for (;;) {
    if (at === bytes.length) return { outcome: 'open', frames, end: at };
    let damaged = bytes.length - at < HEADER_SIZE;
    if (!damaged) {
      const u32 = (i: number): number =>
        (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24)) >>> 0;
      const length = u32(at + 4);
      damaged =
        at + HEADER_SIZE + length > bytes.length ||
        crc32cReference(bytes.subarray(at + 4, at + HEADER_SIZE + length)) !== u32(at);
      if (!damaged) {
        if (length > MAX) return { outcome: 'WAL_RECORD_TOO_LARGE', frames, end: at };
        frames.push([at, bytes.slice(at + HEADER_SIZE, at + HEADER_SIZE + length)]);
        at += HEADER_SIZE + length;
        continue;
      }
    }
    return at >= hint
      ? { outcome: 'open', frames, end: at }
      : { outcome: 'WAL_CORRUPTION', frames, end: at };
  }
}

/** Lost and garbage records of a recovery against the reference (see the module documentation). */
function againstReference(
  ref: Reference,
  hint: number,
  got: ReadonlyArray<readonly [number, Uint8Array]> | undefined,
): { lost: number; garbage: number } {
  const accepted = new Map(ref.frames.map(([lsn, payload]) => [lsn, payload]));
  const returned = new Map((got ?? []).map(([lsn, payload]) => [lsn, payload]));
  let garbage = 0;
  for (const [lsn, payload] of returned) {
    const want = accepted.get(lsn);
    if (want === undefined || Buffer.compare(want, payload) !== 0) garbage++;
  }
  let lost = 0;
  for (const [lsn, payload] of accepted) {
    if (lsn + HEADER_SIZE + payload.length <= hint && !returned.has(lsn)) lost++;
  }
  return { lost, garbage };
}

/**
 * Whether {@link check} adds its findings to the reliability figures: only
 * for counterexamples and fixtures, not for fast-check's shrinking runs
 * (passing inputs find nothing: their check asserts it).
 */
let counting = false;

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
  // Writable: recovery itself, against the reference decoder.
  const ref = referenceDecode(input);
  const hint = input.hint ?? input.head;
  const store = await storeOf(input, reads);
  let rwCode: string | undefined;
  let rwRecords: Array<[number, Uint8Array]> | undefined;
  try {
    const wal = await Wal.open(store, { maxRecordSize: MAX });
    try {
      rwRecords = await records(wal);
      const findings = againstReference(ref, hint, rwRecords);
      if (counting) found(findings);
      assert.deepEqual(findings, { lost: 0, garbage: 0 }, 'recovery differs from the reference');
      assert.equal(ref.outcome, 'open', `the reference says ${ref.outcome}, recovery opened`);
      assert.equal(wal.tail, ref.end, 'recovery ends elsewhere than the reference');
      assert.equal(rwRecords.length, ref.frames.length, 'records the reference does not have');
      assert.equal(roCode, undefined, `read-only ${roCode}, writable opened`);
      assert.equal(wal.tail, roEnd, 'writable and read-only recovery end differ');
      assert.equal(store.length, wal.tail, 'the torn tail was not cut');
      const got = rwRecords;
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
    if (rwRecords === undefined && ref.outcome === 'open') {
      // A recovery that throws where the reference opens drops what it accepted.
      if (counting) found({ failedRecoveries: 1, ...againstReference(ref, hint, []) });
    }
    if (!TYPED.has(rwCode)) throw error;
    assert.equal(rwCode, roCode, `writable ${rwCode}, read-only ${String(roCode)}`);
    assert.equal(rwCode, ref.outcome, `recovery ${rwCode}, the reference ${ref.outcome}`);
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

/**
 * Random bytes, half of them zero: length fields small enough to fit (and
 * zero runs) come up often, so frames that parse and fail only their CRC are
 * common, not one in 2^24 as with uniform bytes.
 */
const randomBytes = fc
  .tuple(
    fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 255 })), { maxLength: 200 }),
    choice,
    choice,
  )
  .map(([bytes, h, n]) => withHintAndHead(Uint8Array.from(bytes), undefined, h, n));

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

/**
 * Runs `runs` inputs. Counts the inputs checked to the end (on a failure,
 * those before the counterexample); a failing input is written to a new
 * temporary directory (never into the sources) and the error says where.
 */
async function fuzz(arbitrary: fc.Arbitrary<Input>, runs: number): Promise<void> {
  const result = await fc.check(fc.asyncProperty(arbitrary, check), { numRuns: runs });
  if (!result.failed) {
    checked({ fuzzInputs: result.numRuns });
    return;
  }
  checked({ fuzzInputs: result.numRuns - 1 });
  const input = result.counterexample?.[0];
  let saved = '';
  if (input !== undefined) {
    counting = true;
    await check(input).catch(() => undefined);
    counting = false;
    const dir = mkdtempSync(join(tmpdir(), 'wal-fuzz-'));
    const file = join(dir, fixtureName(input));
    writeFileSync(file, input.bytes);
    saved = `\ncounterexample written to ${file} (copy it into test/crash/fixtures/ to keep it)`;
    console.log(`      fuzz: ${saved.trim()}`);
  }
  throw new Error(`${fc.defaultReportMessage(result) ?? 'fuzzing failed'}${saved}`);
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
    counting = true;
    try {
      for (const name of files) {
        const input = parseFixture(name, new Uint8Array(readFileSync(join(FIXTURES, name))));
        await check(input).catch((error: unknown) => {
          throw new Error(`fixture ${name}: ${String(error)}`, { cause: error });
        });
      }
    } finally {
      counting = false;
    }
    checked({ fuzzInputs: files.length });
  });
});
