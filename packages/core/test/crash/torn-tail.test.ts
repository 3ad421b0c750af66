/**
 * Torn tails: the last record (or the last batch of a group commit) cut at
 * every byte offset, with the torn region cut off, zero-filled, or filled with
 * garbage, above the durable hint. Recovery must end the log just before the
 * first damaged record, keep every earlier record intact, and report the tear
 * and the bytes it cut exactly.
 *
 * The logs are written once with @wal/core; each case copies the bytes,
 * damages them, and recovers them from a fresh in-memory store (or, for a
 * record spanning two segments, a fresh simulated file system).
 */
import assert from 'node:assert/strict';
import { MemoryStore, STORE_META_PREFIX, type StoreMeta } from '@wal/store';
import { CrashFs } from '@wal/store/testing';
import { HEADER_SIZE } from '../../src/frame.js';
import { Wal } from '../../src/index.js';
import { equalBytes, pattern } from '../helpers.js';
import {
  checkLog,
  DIR,
  describeError,
  endOf,
  openIn,
  PARENT,
  Prng,
  type Rec,
  readAll,
  SECTOR,
  SEGMENT,
} from './harness.js';
import { checked, found } from './reliability.js';

type Variant = 'cut' | 'zero' | 'garbage';
const VARIANTS: readonly Variant[] = ['cut', 'zero', 'garbage'];
const HINT = 'wal.durableHint';

/** A log written with @wal/core: its bytes from 0, its records, its metadata. */
interface Built {
  readonly bytes: Uint8Array;
  readonly records: readonly Rec[];
  readonly meta: StoreMeta;
  /** The durable hint recovery is given: the end of the records before the damaged region. */
  readonly hint: number;
}

function userMeta(meta: StoreMeta): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const [key, value] of Object.entries(meta)) {
    if (!key.startsWith(STORE_META_PREFIX)) out[key] = value;
  }
  return out;
}

/**
 * Writes `prefix` (durable), then `last` in one write (one record each, or
 * one batch), without a sync or a close: the hint stays below them.
 */
async function build(prefix: readonly Uint8Array[], last: readonly Uint8Array[]): Promise<Built> {
  const store = new MemoryStore();
  const wal = await Wal.open(store);
  const records: Rec[] = [];
  for (const payload of prefix) {
    records.push({ lsn: await wal.append(payload, { wait: 'durable' }), payload });
  }
  const hint = wal.tail;
  const lsns = await wal.appendBatch(last, { wait: 'written' });
  lsns.forEach((lsn, i) => {
    records.push({ lsn, payload: last[i]! });
  });
  const bytes = await store.read(0, store.length);
  const meta = { ...userMeta(await store.readMeta()), [HINT]: hint };
  await wal.close();
  return { bytes, records, meta, hint };
}

/** The bytes of `built` damaged from absolute offset `at` to the end, as `variant` says. */
function damage(bytes: Uint8Array, at: number, variant: Variant, seed: number): Uint8Array {
  if (variant === 'cut') return bytes.slice(0, at);
  const out = bytes.slice();
  if (variant === 'zero') out.fill(0, at);
  else {
    const rng = new Prng(seed);
    for (let i = at; i < out.length; i++) out[i] = rng.next() & 0xff;
    if (at < out.length && out[at] === bytes[at]) out[at] = out[at]! ^ 0x5a;
  }
  return out;
}

/** What recovery must report for `damaged` bytes of a log of `records`. */
interface Expected {
  /** Records kept: the intact ones before the first damaged record. */
  readonly kept: number;
  readonly end: number;
  readonly tornBytes: number;
  /** Zeros ending the store after the torn bytes (space written ahead; no tear when all is zeros). */
  readonly zeroTail: number;
  readonly tear: { offset: number; kind: string } | undefined;
}

/** Zero bytes ending `bytes` from `from` on. */
function trailingZeros(bytes: Uint8Array, from: number): number {
  let at = bytes.length;
  while (at > from && bytes[at - 1] === 0) at--;
  return bytes.length - at;
}

function expected(records: readonly Rec[], original: Uint8Array, damaged: Uint8Array): Expected {
  const length = damaged.length;
  let k = 0;
  for (; k < records.length; k++) {
    const rec = records[k]!;
    const end = endOf(rec);
    if (end > length) break;
    let same = true;
    for (let i = rec.lsn; i < end && same; i++) same = original[i] === damaged[i];
    if (!same) break;
  }
  const end = k === 0 ? 0 : endOf(records[k - 1]!);
  if (k === records.length) {
    const zeroTail = trailingZeros(damaged, end);
    return { kept: k, end, tornBytes: length - end - zeroTail, zeroTail, tear: undefined };
  }
  const lsn = records[k]!.lsn;
  const zeroTail = trailingZeros(damaged, lsn);
  if (lsn + zeroTail === length)
    return { kept: k, end: lsn, tornBytes: 0, zeroTail, tear: undefined };
  let kind: string;
  if (length - lsn < HEADER_SIZE) kind = 'short-header';
  else {
    const claimed =
      (damaged[lsn + 4]! |
        (damaged[lsn + 5]! << 8) |
        (damaged[lsn + 6]! << 16) |
        (damaged[lsn + 7]! << 24)) >>>
      0;
    kind = lsn + HEADER_SIZE + claimed > length ? 'short-payload' : 'checksum';
  }
  return {
    kept: k,
    end: lsn,
    tornBytes: length - lsn - zeroTail,
    zeroTail,
    tear: { offset: lsn, kind },
  };
}

async function memoryStoreOf(bytes: Uint8Array, meta: StoreMeta): Promise<MemoryStore> {
  const store = new MemoryStore();
  if (bytes.length > 0) await store.write(0, bytes);
  await store.updateMeta(meta);
  return store;
}

/** Recovers `wal` and checks it against `exp`; returns a description of the first problem. */
async function checkRecovered(
  wal: Wal,
  records: readonly Rec[],
  exp: Expected,
  hint: number,
  storeLength: number,
): Promise<string | undefined> {
  const report = wal.recovery;
  const got = await readAll(wal);
  // The records below the damage were whole: each missing is lost, each wrong one garbage.
  const kept = records[exp.kept - 1];
  const verdict = checkLog(got, {
    records,
    heads: new Set([got.head]),
    minEnd: kept === undefined ? 0 : endOf(kept),
  });
  found({ lost: verdict.lost, garbage: verdict.garbage });
  if (got.records.length !== exp.kept) {
    return `recovered ${got.records.length} records, expected ${exp.kept}`;
  }
  for (let i = 0; i < exp.kept; i++) {
    const a = got.records[i]!;
    const b = records[i]!;
    if (a.lsn !== b.lsn || !equalBytes(a.payload, b.payload)) return `record #${i} is wrong`;
  }
  if (got.tail !== exp.end || report.end !== exp.end) {
    return `the log ends at ${got.tail} (report ${report.end}), expected ${exp.end}`;
  }
  if (report.records !== exp.kept) return `report.records ${report.records} ≠ ${exp.kept}`;
  if (report.tornBytes !== exp.tornBytes) {
    return `report.tornBytes ${report.tornBytes} ≠ ${exp.tornBytes}`;
  }
  if (report.zeroTail !== exp.zeroTail) {
    return `report.zeroTail ${report.zeroTail} ≠ ${exp.zeroTail}`;
  }
  if (report.truncated !== exp.tornBytes + exp.zeroTail > 0) {
    return `report.truncated is ${report.truncated}`;
  }
  if (report.storeLength !== storeLength) return `report.storeLength ${report.storeLength}`;
  if (report.durableHint !== hint) return `report.durableHint ${report.durableHint} ≠ ${hint}`;
  const tear = report.tear;
  if (exp.tear === undefined) {
    if (tear !== undefined) return `unexpected tear ${JSON.stringify(tear)}`;
  } else if (tear === undefined || tear.offset !== exp.tear.offset || tear.kind !== exp.tear.kind) {
    return `tear ${JSON.stringify(tear)}, expected ${JSON.stringify(exp.tear)}`;
  }
  if (report.droppedFrames !== 0) return `report.droppedFrames ${report.droppedFrames} ≠ 0`;
  if (report.skipped.length !== 0) return 'records reported skipped';
  // Appending resumes exactly at the end.
  const probe = pattern(3, 999);
  const lsn = await wal.append(probe, { wait: 'written' });
  if (lsn !== exp.end) return `append after recovery got LSN ${lsn} ≠ ${exp.end}`;
  if (!equalBytes(await wal.read(lsn), probe)) return 'the appended record reads back wrong';
  return undefined;
}

const failures: string[] = [];
let cases = 0;

async function runCase(
  built: Built,
  at: number,
  variant: Variant,
  label: string,
): Promise<string | undefined> {
  const damaged = damage(built.bytes, at, variant, at * 3 + VARIANTS.indexOf(variant));
  const exp = expected(built.records, built.bytes, damaged);
  let wal: Wal;
  try {
    wal = await Wal.open(await memoryStoreOf(damaged, built.meta));
  } catch (error) {
    cases++;
    found({ failedRecoveries: 1 });
    return `${label} ${variant} at ${at}: open failed: ${describeError(error)}`;
  }
  try {
    const problem = await checkRecovered(wal, built.records, exp, built.hint, damaged.length);
    cases++;
    return problem === undefined ? undefined : `${label} ${variant} at ${at}: ${problem}`;
  } finally {
    await wal.close();
  }
}

function fail(problems: readonly (string | undefined)[]): void {
  const bad = problems.filter((p): p is string => p !== undefined);
  failures.push(...bad);
  if (bad.length > 0) {
    for (const line of bad.slice(0, 10)) console.log(`  torn tail: ${line}`);
    assert.fail(`${bad.length} torn-tail case(s) recovered wrongly; first: ${bad[0]}`);
  }
}

const PREFIX = [pattern(10, 1), pattern(300, 2), pattern(0, 3), pattern(5, 4)];

describe('torn tails (every byte offset, cut / zero-filled / garbage)', function () {
  this.timeout(120_000);

  after(() => {
    checked({ tornOffsets: cases });
    console.log(`torn tails: ${cases} torn cases recovered, ${failures.length} wrong`);
  });

  for (const size of [0, 1, 7, 8, 9, 100, 511, 512, 513, 4095, 4096, 4097]) {
    it(`a ${size}-byte last record torn at each of its ${size + HEADER_SIZE} offsets`, async () => {
      const built = await build(PREFIX, [pattern(size, 100 + size)]);
      const lsn = built.records.at(-1)!.lsn;
      const problems: (string | undefined)[] = [];
      for (let at = lsn; at < lsn + HEADER_SIZE + size; at++) {
        for (const variant of VARIANTS) {
          problems.push(await runCase(built, at, variant, `${size}-byte record`));
        }
      }
      fail(problems);
    });
  }

  it('a 64 KiB last record torn at 200 sampled offsets', async () => {
    const size = 64 * 1024;
    const built = await build(PREFIX, [pattern(size, 64)]);
    const lsn = built.records.at(-1)!.lsn;
    const frame = HEADER_SIZE + size;
    const offsets = new Set<number>();
    for (let i = 0; i <= 12; i++) offsets.add(i);
    for (let i = 1; i <= 12; i++) offsets.add(frame - i);
    for (const s of [512, 4096, 32768]) for (let at = s; at < frame; at += s) offsets.add(at);
    const rng = new Prng(64);
    while (offsets.size < 200) offsets.add(rng.below(frame));
    const problems: (string | undefined)[] = [];
    for (const at of [...offsets].sort((a, b) => a - b)) {
      for (const variant of VARIANTS) {
        problems.push(await runCase(built, lsn + at, variant, '64 KiB record'));
      }
    }
    fail(problems);
  });

  it('a torn group-commit batch: six records in one write, torn at every offset', async () => {
    const batch = [0, 1, 40, 8, 513, 200].map((n, i) => pattern(n, 600 + i));
    // The committers' records reach the store in one positional write.
    const built = await build(PREFIX, batch);
    const first = built.records.at(-batch.length)!.lsn;
    const problems: (string | undefined)[] = [];
    for (let at = first; at < built.bytes.length; at++) {
      for (const variant of VARIANTS) {
        problems.push(await runCase(built, at, variant, 'group-commit batch'));
      }
    }
    fail(problems);
  });

  it('concurrent durable committers in one turn share one write; a tear cuts it anywhere', async () => {
    // The same, built from concurrent waiting appends rather than appendBatch.
    const store = new MemoryStore();
    const wal = await Wal.open(store);
    const records: Rec[] = [];
    for (const payload of PREFIX) {
      records.push({ lsn: await wal.append(payload, { wait: 'durable' }), payload });
    }
    const hint = wal.tail;
    const payloads = [3, 90, 0, 17, 250].map((n, i) => pattern(n, 700 + i));
    const lsns = await Promise.all(payloads.map((p) => wal.append(p, { wait: 'written' })));
    lsns.forEach((lsn, i) => {
      records.push({ lsn, payload: payloads[i]! });
    });
    const bytes = await store.read(0, store.length);
    const built: Built = {
      bytes,
      records,
      meta: { ...userMeta(await store.readMeta()), [HINT]: hint },
      hint,
    };
    await wal.close();
    const problems: (string | undefined)[] = [];
    const rng = new Prng(7);
    for (let at = hint; at < bytes.length; at += 1 + rng.below(3)) {
      for (const variant of VARIANTS) {
        problems.push(await runCase(built, at, variant, 'concurrent committers'));
      }
    }
    fail(problems);
  });

  it('a record spanning two segments, torn at 200 sampled offsets (SegmentedStore over CrashFs)', async () => {
    const fs = new CrashFs({
      sectorSize: SECTOR,
      image: { files: new Map(), dirs: new Set([PARENT]) },
    });
    let wal = await openIn(fs);
    const records: Rec[] = [];
    for (const payload of [pattern(1200, 11), pattern(1500, 12), pattern(300, 13)]) {
      records.push({ lsn: await wal.append(payload, { wait: 'durable' }), payload });
    }
    await wal.close(); // the hint is now the end of these records
    wal = await openIn(fs);
    const hint = wal.tail;
    const last = pattern(3000, 14); // from about 3 KiB to 6 KiB: crosses into segment 1
    records.push({ lsn: await wal.append(last, { wait: 'written' }), payload: last });
    const lsn = records.at(-1)!.lsn;
    const end = endOf(records.at(-1)!);
    assert.ok(lsn < SEGMENT && end > SEGMENT);
    const image = fs.snapshot();
    await wal.close().catch(() => undefined);
    const seg0 = `${DIR}/00000000000000000000.wal`;
    const seg1 = `${DIR}/00000000000000000001.wal`;
    const flat = new Uint8Array(end);
    flat.set(image.files.get(seg0)!, 0);
    flat.set(image.files.get(seg1)!.subarray(0, end - SEGMENT), SEGMENT);
    assert.ok(equalBytes(flat.subarray(lsn + HEADER_SIZE), last));

    const offsets = new Set<number>([0, 1, 4, 7, 8, 9, SEGMENT - lsn - 1, SEGMENT - lsn]);
    offsets.add(SEGMENT - lsn + 1);
    offsets.add(end - lsn - 1);
    const rng = new Prng(2);
    while (offsets.size < 200) offsets.add(rng.below(end - lsn));
    const problems: (string | undefined)[] = [];
    for (const rel of [...offsets].sort((a, b) => a - b)) {
      for (const variant of VARIANTS) {
        const at = lsn + rel;
        const damaged = damage(flat, at, variant, at * 3 + VARIANTS.indexOf(variant));
        const files = new Map(image.files);
        files.set(seg0, damaged.slice(0, Math.min(SEGMENT, damaged.length)));
        if (damaged.length > SEGMENT) files.set(seg1, damaged.slice(SEGMENT));
        else files.delete(seg1);
        const exp = expected(records, flat, damaged);
        const label = `spanning record ${variant} at ${at}`;
        let opened: Wal;
        try {
          opened = await openIn(
            new CrashFs({ sectorSize: SECTOR, image: { files, dirs: image.dirs } }),
          );
        } catch (error) {
          cases++;
          found({ failedRecoveries: 1 });
          problems.push(`${label}: open failed: ${describeError(error)}`);
          continue;
        }
        try {
          const problem = await checkRecovered(opened, records, exp, hint, damaged.length);
          cases++;
          if (problem !== undefined) problems.push(`${label}: ${problem}`);
        } finally {
          await opened.close();
        }
      }
    }
    fail(problems);
  });
});
