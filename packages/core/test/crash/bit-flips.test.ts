/**
 * Bit flips and multi-byte mutations of a small multi-segment log (three
 * 4 KiB segments written by @wal/core, durable hint at the last segment roll,
 * not closed, so the log has bytes below and above its hint), and of its
 * `head` and `meta` files.
 *
 * What must hold:
 * - read and iterate never return a wrong payload or a record never appended;
 * - damage to a record starting below the durable hint: `WAL_CORRUPTION`
 *   under the default policy; under `skip`, the report lists the record,
 *   iteration steps over it and `read` of it rejects, every other record
 *   intact (a damaged length field may also give `WAL_CORRUPTION`);
 * - damage to a record at or above the hint ends the log there as a tear,
 *   every earlier record intact, and the report counts the intact frames
 *   dropped after it;
 * - a damaged `head` or `meta` file: `WAL_CORRUPTION`, or (head file with
 *   segment 0 present) an open whose records are all genuine.
 */
import assert from 'node:assert/strict';
import { MemoryStore, STORE_META_PREFIX, type StoreMeta } from '@wal/store';
import { CrashFs } from '@wal/store/testing';
import { HEADER_SIZE } from '../../src/frame.js';
import { Wal } from '../../src/index.js';
import { equalBytes, pattern } from '../helpers.js';
import {
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

interface Log {
  /** The simulated file system's files (page-cache view), by path. */
  readonly files: ReadonlyMap<string, Uint8Array>;
  readonly dirs: ReadonlySet<string>;
  /** The log's bytes from its head, flat (segments concatenated). */
  readonly flat: Uint8Array;
  readonly head: number;
  readonly records: readonly Rec[];
  readonly meta: StoreMeta;
  readonly hint: number;
}

const segmentPath = (index: number): string => `${DIR}/${String(index).padStart(20, '0')}.wal`;

/** Writes a log of about three segments (durable appends, not closed); `cutBefore`: truncateBefore that LSN first. */
async function buildLog(cutBefore?: (records: readonly Rec[]) => number): Promise<Log> {
  const fs = new CrashFs({
    sectorSize: SECTOR,
    image: { files: new Map(), dirs: new Set([PARENT]) },
  });
  const wal = await openIn(fs);
  let records: Rec[] = [];
  let i = 0;
  while (wal.tail < 3 * SEGMENT - 700) {
    const payload = pattern([20, 310, 0, 75, 640, 9, 150][i % 7]!, 40 + i);
    records.push({ lsn: await wal.append(payload, { wait: 'durable' }), payload });
    i++;
  }
  if (cutBefore !== undefined) {
    const lsn = cutBefore(records);
    await wal.truncateBefore(lsn);
    records = records.filter((rec) => rec.lsn >= lsn);
  }
  // Let the durable-hint update of the last roll settle; no close (it would move the hint to the end).
  for (let t = 0; t < 20; t++) await new Promise((resolve) => setImmediate(resolve));
  const image = fs.snapshot();
  await wal.close();
  const head = wal.head;
  const tail = endOf(records.at(-1)!);
  const flat = new Uint8Array(tail - head);
  for (let index = Math.floor(head / SEGMENT); index * SEGMENT < tail; index++) {
    const bytes = image.files.get(segmentPath(index))!;
    const start = index * SEGMENT;
    const from = Math.max(start, head);
    flat.set(bytes.subarray(from - start, Math.min(bytes.length, tail - start)), from - head);
  }
  // The metadata as the log left it, read back through a read-only open.
  const probe = await openIn(new CrashFs({ sectorSize: SECTOR, image }), { readOnly: true });
  const hint = probe.recovery.durableHint;
  const meta = await probe.store.readMeta();
  await probe.close();
  const user: Record<string, string | number | boolean> = {};
  for (const [key, value] of Object.entries(meta)) {
    if (!key.startsWith(STORE_META_PREFIX)) user[key] = value;
  }
  return { files: image.files, dirs: image.dirs, flat, head, records, meta: user, hint };
}

/** A fresh in-memory store holding `flat` from `head`, with the log's metadata. */
async function memoryStore(log: Log, flat: Uint8Array): Promise<MemoryStore> {
  const store = new MemoryStore();
  if (log.head > 0) {
    await store.write(0, new Uint8Array(1));
    await store.truncateBefore(log.head);
  }
  await store.write(log.head, flat);
  await store.updateMeta(log.meta);
  return store;
}

/**
 * `cases`: damaged logs whose check ran to the end. `spanned`: intact records
 * dropped because the skip policy stepped over a damaged length field's
 * claimed span (reported by recovery as that span; the reliability line's
 * `skipped by policy`). Lost, garbage and failed recoveries go straight to
 * the reliability figures.
 */
const figures = { cases: 0, wrong: 0, spanned: 0 };

/** The index of the record holding log offset `at`. */
function recordAt(records: readonly Rec[], at: number): number {
  let lo = 0;
  let hi = records.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (records[mid]!.lsn <= at) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** Checks that every record `wal` yields is genuine; returns the records read. */
async function genuine(wal: Wal, records: readonly Rec[]): Promise<Rec[] | string> {
  const byLsn = new Map(records.map((rec) => [rec.lsn, rec]));
  const got = await readAll(wal);
  const wrong = got.records.filter((rec) => {
    const want = byLsn.get(rec.lsn);
    return want === undefined || !equalBytes(want.payload, rec.payload);
  });
  if (wrong.length > 0) {
    found({ garbage: wrong.length });
    const rec = wrong[0]!;
    return `garbage: a record at ${rec.lsn} (${rec.payload.length} bytes) was never appended there`;
  }
  return [...got.records];
}

/**
 * Recovers `damaged` (a copy of the log with bytes changed from log offset
 * `first` on) under `policy` and checks the outcome; returns the problem, if any.
 * `lengthTouched`: the damage may have changed the damaged record's length field.
 */
async function checkDamaged(
  log: Log,
  damaged: Uint8Array,
  first: number,
  policy: 'strict' | 'skip',
  lengthTouched: boolean,
  exact: boolean,
): Promise<string | undefined> {
  const k = recordAt(log.records, first);
  const bad = log.records[k]!;
  const storeEnd = log.head + damaged.length;
  let wal: Wal;
  try {
    wal = await Wal.open(await memoryStore(log, damaged), { recovery: policy });
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code !== 'WAL_CORRUPTION') {
      found({ failedRecoveries: 1 });
      return `open failed with ${describeError(error)}`;
    }
    if (bad.lsn >= log.hint) {
      found({ failedRecoveries: 1 });
      return `WAL_CORRUPTION for damage at ${bad.lsn}, above the hint ${log.hint}`;
    }
    if (policy === 'skip' && !lengthTouched) {
      return `skip policy: WAL_CORRUPTION for a checksum failure at ${bad.lsn}`;
    }
    return undefined;
  }
  try {
    const got = await genuine(wal, log.records);
    if (typeof got === 'string') return got;
    const report = wal.recovery;
    if (bad.lsn >= log.hint) {
      // A torn tail: the log ends just before the damaged record.
      if (got.length !== k)
        return `tear at ${bad.lsn}: recovered ${got.length} records, expected ${k}`;
      if (wal.tail !== bad.lsn || report.end !== bad.lsn)
        return `tear: the log ends at ${wal.tail}, expected ${bad.lsn}`;
      if (report.tear?.offset !== bad.lsn)
        return `tear reported at ${report.tear?.offset}, expected ${bad.lsn}`;
      if (report.tornBytes + report.zeroTail !== storeEnd - bad.lsn) {
        return `tornBytes ${report.tornBytes} + zeroTail ${report.zeroTail}`;
      }
      const after = log.records.length - k - 1;
      if (exact && !lengthTouched && report.droppedFrames !== after) {
        return `droppedFrames ${report.droppedFrames}, expected ${after}`;
      }
      if (report.droppedFrames > after) return `droppedFrames ${report.droppedFrames} > ${after}`;
      return undefined;
    }
    if (policy === 'strict')
      return `damage at ${bad.lsn}, below the hint ${log.hint}, opened under strict`;
    // Skip: the damaged record is listed and stepped over; nothing else is lost silently.
    if (report.skipped[0]?.offset !== bad.lsn) {
      return `skip: report.skipped ${JSON.stringify(report.skipped)} does not start at ${bad.lsn}`;
    }
    if (got.some((rec) => rec.lsn === bad.lsn)) return 'skip: the damaged record was yielded';
    // Recovery never cuts the log inside an intact record (a tear is at a boundary it walked to).
    const tear = report.tear;
    if (tear !== undefined) {
      const inside = log.records.find((rec) => rec.lsn < tear.offset && endOf(rec) > tear.offset);
      if (inside !== undefined && inside.lsn !== bad.lsn) {
        found({ lost: log.records.filter((rec) => endOf(rec) > tear.offset).length });
        return (
          `skip: recovery stepped over the damaged record by its claimed length ${bad.lsn}+${report.skipped[0]?.claimedLength}, ` +
          `landed at ${tear.offset} inside the intact record at ${inside.lsn}, took it for a torn tail and cut ${report.tornBytes} bytes ` +
          `(${log.records.filter((rec) => endOf(rec) > tear.offset).length} durable records destroyed)`
        );
      }
    }
    // Every record not yielded is accounted for by the report: inside a range
    // it stepped over, or at or after the tear that ended the log.
    const yielded = new Set(got.map((rec) => rec.lsn));
    const tearAt = report.tear?.offset ?? Number.POSITIVE_INFINITY;
    for (const rec of log.records) {
      if (yielded.has(rec.lsn) || rec.lsn === bad.lsn) continue;
      const inSkip = report.skipped.some(
        (d) => rec.lsn >= d.offset && endOf(rec) <= d.offset + HEADER_SIZE + (d.claimedLength ?? 0),
      );
      if (inSkip) figures.spanned++;
      else if (rec.lsn < tearAt) {
        found({ lost: 1 });
        return `skip: the intact record at ${rec.lsn} is missing and the report does not account for it`;
      }
    }
    if (!lengthTouched && exact) {
      if (got.length !== log.records.length - 1) {
        return `skip: ${got.length} records, expected every other (${log.records.length - 1})`;
      }
      const read = await wal.read(bad.lsn).then(
        () => 'resolved',
        (error: unknown) => String((error as { code?: unknown }).code),
      );
      if (read !== 'WAL_CORRUPTION') return `skip: read of the damaged record: ${read}`;
      if (!equalBytes(await wal.read(log.records.at(-1)!.lsn), log.records.at(-1)!.payload)) {
        return 'skip: the last record reads back wrong';
      }
    }
    return undefined;
  } finally {
    await wal.close();
  }
}

function finish(problems: string[], what: string): void {
  figures.wrong += problems.length;
  if (problems.length > 0) {
    for (const line of problems.slice(0, 10)) console.log(`  bit flips: ${line}`);
    assert.fail(`${problems.length} ${what} case(s) broke the contract; first: ${problems[0]}`);
  }
}

describe('bit flips and mutations (segmented log, 4 KiB segments)', function () {
  this.timeout(240_000);
  let log: Log;

  before(async () => {
    log = await buildLog();
    assert.ok(log.hint > log.head && log.hint < log.head + log.flat.length, `hint ${log.hint}`);
  });

  after(() => {
    checked({ bitFlips: figures.cases });
    found({ skipped: figures.spanned });
    console.log(`bit flips: ${figures.cases} damaged logs recovered, ${figures.wrong} wrong`);
    if (figures.spanned > 0) {
      console.log(
        `  bit flips: skip policy: ${figures.spanned} intact record(s) dropped inside the claimed span of a damaged length field (reported only as that skipped span)`,
      );
    }
  });

  it('every bit of every frame header, under both policies', async () => {
    const problems: string[] = [];
    for (const rec of log.records) {
      for (let bit = 0; bit < HEADER_SIZE * 8; bit++) {
        const at = rec.lsn - log.head + (bit >> 3);
        const damaged = log.flat.slice();
        damaged[at] = damaged[at]! ^ (1 << (bit & 7));
        const lengthTouched = bit >= 32;
        // Skip with a damaged length field: its own test below.
        const policies = lengthTouched ? (['strict'] as const) : (['strict', 'skip'] as const);
        for (const policy of policies) {
          const problem = await checkDamaged(log, damaged, rec.lsn, policy, lengthTouched, true);
          figures.cases++;
          if (problem !== undefined)
            problems.push(`${policy}, header bit ${bit} of the record at ${rec.lsn}: ${problem}`);
        }
      }
    }
    finish(problems, 'header bit flip');
  });

  it('skip policy: a flipped length field below the hint never makes recovery cut intact records', async () => {
    // Stepping over a damaged record by a damaged length lands at an offset
    // that is no record boundary; if that is above the hint, what it finds
    // there must not be taken for a torn tail and cut.
    const problems: string[] = [];
    for (const rec of log.records) {
      if (rec.lsn >= log.hint) break;
      for (let bit = 32; bit < 64; bit++) {
        const at = rec.lsn - log.head + (bit >> 3);
        const damaged = log.flat.slice();
        damaged[at] = damaged[at]! ^ (1 << (bit & 7));
        const problem = await checkDamaged(log, damaged, rec.lsn, 'skip', true, true);
        figures.cases++;
        if (problem !== undefined) {
          problems.push(`skip, length bit ${bit - 32} of the record at ${rec.lsn}: ${problem}`);
        }
      }
    }
    finish(problems, 'skip-policy length flip');
  });

  it('skip policy, minimal case: one flipped length bit below the hint must not cut the log', async () => {
    // Four durable records; the hint (56) covers the first two.
    const store = new MemoryStore();
    const wal = await Wal.open(store);
    const payloads = [
      new Uint8Array(20).fill(0x11),
      new Uint8Array(20).fill(0x22),
      new Uint8Array(300).fill(0xab),
      new Uint8Array(20).fill(0x33),
    ];
    for (const payload of payloads) await wal.append(payload, { wait: 'durable' });
    const bytes = await store.read(0, store.length);
    await wal.close();
    bytes[4] = bytes[4]! ^ 0x40; // the first record's length: 20 -> 84
    const damaged = new MemoryStore();
    await damaged.write(0, bytes);
    await damaged.updateMeta({ 'wal.durableHint': 56 });
    // The store is closed when open rejects; watch for any change instead,
    // and the lowest offset it touched.
    const changes: string[] = [];
    let touched = Number.POSITIVE_INFINITY;
    for (const method of ['write', 'truncate', 'truncateBefore'] as const) {
      const original = damaged[method].bind(damaged) as (...args: never[]) => Promise<void>;
      damaged[method] = ((...args: never[]) => {
        changes.push(method);
        touched = Math.min(touched, method === 'truncateBefore' ? 0 : Number(args[0]));
        return original(...args);
      }) as never;
    }
    // Stepping 84 bytes lands at 92, inside the intact record at 56: not a
    // proven record boundary. What follows cannot be told from a tear, so
    // recovery must refuse (scan.ts, skip policy) rather than cut.
    await assert.rejects(Wal.open(damaged, { recovery: 'skip' }), (error: unknown) => {
      assert.equal((error as { code?: unknown }).code, 'WAL_CORRUPTION');
      assert.equal((error as { offset?: unknown }).offset, 92);
      return true;
    });
    // The intact records (all but the first) at or past what a change touched are lost.
    let at = 0;
    let lost = 0;
    for (const [i, payload] of payloads.entries()) {
      if (i > 0 && at + HEADER_SIZE + payload.length > touched) lost++;
      at += HEADER_SIZE + payload.length;
    }
    found({ lost });
    assert.deepEqual(changes, [], 'a refused open must not change the log');
    figures.cases++;
  });

  it('every payload bit (strict), and every 7th under skip', async () => {
    const problems: string[] = [];
    let n = 0;
    for (const rec of log.records) {
      for (let at = rec.lsn + HEADER_SIZE; at < endOf(rec); at++) {
        for (let bit = 0; bit < 8; bit++) {
          const rel = at - log.head;
          const damaged = log.flat.slice();
          damaged[rel] = damaged[rel]! ^ (1 << bit);
          const policies = n++ % 7 === 0 ? (['strict', 'skip'] as const) : (['strict'] as const);
          for (const policy of policies) {
            const problem = await checkDamaged(log, damaged, at, policy, false, true);
            figures.cases++;
            if (problem !== undefined) problems.push(`${policy}, bit ${bit} at ${at}: ${problem}`);
          }
        }
      }
    }
    finish(problems, 'payload bit flip');
  });

  it('seeded multi-byte mutations (overwrites, zeroed runs, swaps)', async () => {
    const problems: string[] = [];
    const rng = new Prng(2024);
    for (let i = 0; i < 3000; i++) {
      const damaged = log.flat.slice();
      const start = rng.below(damaged.length);
      const length = 2 + rng.below(i % 3 === 0 ? 64 : 12);
      const end = Math.min(damaged.length, start + length);
      const kind = i % 3;
      for (let at = start; at < end; at++) {
        if (kind === 0) damaged[at] = rng.next() & 0xff;
        else if (kind === 1) damaged[at] = 0;
        else damaged[at] = damaged[at]! ^ (1 << rng.below(8));
      }
      let first = start;
      while (first < end && damaged[first] === log.flat[first]) first++;
      if (first === end) continue;
      const firstLsn = first + log.head;
      const k = recordAt(log.records, firstLsn);
      const rec = log.records[k]!;
      // Damage spilling into the next record changes what the report can count.
      const lengthTouched =
        (firstLsn - rec.lsn < HEADER_SIZE && firstLsn - rec.lsn + (end - first) > 4) ||
        end + log.head > endOf(rec);
      // Skip with a damaged length field: its own test below.
      const policy = i % 2 === 0 || lengthTouched ? 'strict' : 'skip';
      const problem = await checkDamaged(log, damaged, firstLsn, policy, lengthTouched, true);
      figures.cases++;
      if (problem !== undefined)
        problems.push(
          `${policy}, mutation #${i} [${start + log.head}, ${end + log.head}): ${problem}`,
        );
    }
    finish(problems, 'mutation');
  });

  it('flips through the real segmented store: a sample of segment bits', async () => {
    // The same rules hold when the damaged bytes sit in segment files.
    const problems: string[] = [];
    const rng = new Prng(99);
    for (let i = 0; i < 150; i++) {
      const rel = rng.below(log.flat.length);
      const bit = rng.below(8);
      const at = rel + log.head;
      const index = Math.floor(at / SEGMENT);
      const files = new Map(log.files);
      const segment = files.get(segmentPath(index))!.slice();
      segment[at - index * SEGMENT] = segment[at - index * SEGMENT]! ^ (1 << bit);
      files.set(segmentPath(index), segment);
      const k = recordAt(log.records, at);
      const rec = log.records[k]!;
      const fs = new CrashFs({ sectorSize: SECTOR, image: { files, dirs: log.dirs } });
      let wal: Wal;
      try {
        wal = await openIn(fs);
      } catch (error) {
        const code = (error as { code?: unknown }).code;
        if (code !== 'WAL_CORRUPTION' || rec.lsn >= log.hint) {
          found({ failedRecoveries: 1 });
          problems.push(`bit ${bit} at ${at}: open failed: ${describeError(error)}`);
        }
        continue;
      }
      try {
        const got = await genuine(wal, log.records);
        if (typeof got === 'string') problems.push(`bit ${bit} at ${at}: ${got}`);
        else if (rec.lsn < log.hint)
          problems.push(`bit ${bit} at ${at}: opened despite damage below the hint`);
        else if (got.length !== k || wal.tail !== rec.lsn) {
          found({ lost: Math.max(0, k - got.length) });
          problems.push(
            `bit ${bit} at ${at}: recovered ${got.length} records to ${wal.tail}, expected ${k} to ${rec.lsn}`,
          );
        }
      } finally {
        await wal.close();
      }
    }
    figures.cases += 150;
    finish(problems, 'segment-file flip');
  });

  it('every bit of the meta file: WAL_CORRUPTION', async () => {
    const problems: string[] = [];
    const meta = log.files.get(`${DIR}/meta`)!;
    for (let bit = 0; bit < meta.length * 8; bit++) {
      const files = new Map(log.files);
      const damaged = meta.slice();
      damaged[bit >> 3] = damaged[bit >> 3]! ^ (1 << (bit & 7));
      files.set(`${DIR}/meta`, damaged);
      const outcome = await openIn(
        new CrashFs({ sectorSize: SECTOR, image: { files, dirs: log.dirs } }),
      ).then(
        async (wal) => {
          await wal.close();
          return 'opened';
        },
        (error: unknown) => String((error as { code?: unknown }).code),
      );
      if (outcome !== 'WAL_CORRUPTION') problems.push(`meta bit ${bit}: ${outcome}`);
    }
    figures.cases += meta.length * 8;
    finish(problems, 'meta-file flip');
  });

  it('every bit of the head file, segment 0 gone: WAL_CORRUPTION, never a truncation', async () => {
    const cut = await buildLog((records) => records.find((rec) => rec.lsn >= SEGMENT)!.lsn);
    assert.ok(!cut.files.has(segmentPath(0)));
    const head = cut.files.get(`${DIR}/head`)!;
    assert.equal(head.length, 12);
    const problems: string[] = [];
    for (let bit = 0; bit < 96; bit++) {
      const files = new Map(cut.files);
      const damaged = head.slice();
      damaged[bit >> 3] = damaged[bit >> 3]! ^ (1 << (bit & 7));
      files.set(`${DIR}/head`, damaged);
      const fs = new CrashFs({ sectorSize: SECTOR, image: { files, dirs: cut.dirs } });
      const outcome = await openIn(fs).then(
        async (wal) => {
          await wal.close();
          return 'opened';
        },
        (error: unknown) => String((error as { code?: unknown }).code),
      );
      if (outcome !== 'WAL_CORRUPTION') problems.push(`head bit ${bit}: ${outcome}`);
      // Nothing was changed by the failed open: the segments are all still there.
      const after = fs.snapshot();
      for (const [path, bytes] of cut.files) {
        if (
          path.endsWith('.wal') &&
          !equalBytes(after.files.get(path) ?? new Uint8Array(0), bytes)
        ) {
          problems.push(`head bit ${bit}: ${path} changed by the failed open`);
        }
      }
    }
    figures.cases += 96;
    finish(problems, 'head-file flip');
  });

  it('every bit of the head file, segment 0 present: WAL_CORRUPTION or genuine records only', async () => {
    const within = await buildLog((records) => records[2]!.lsn);
    const head = within.files.get(`${DIR}/head`)!;
    const problems: string[] = [];
    for (let bit = 0; bit < 96; bit++) {
      const files = new Map(within.files);
      const damaged = head.slice();
      damaged[bit >> 3] = damaged[bit >> 3]! ^ (1 << (bit & 7));
      files.set(`${DIR}/head`, damaged);
      const all: Rec[] = [];
      // Records truncated away may come back (head 0); they are still genuine.
      const full = await buildLogRecords();
      all.push(...full);
      let wal: Wal;
      try {
        wal = await openIn(
          new CrashFs({ sectorSize: SECTOR, image: { files, dirs: within.dirs } }),
        );
      } catch (error) {
        const code = (error as { code?: unknown }).code;
        if (code !== 'WAL_CORRUPTION') {
          found({ failedRecoveries: 1 });
          problems.push(`head bit ${bit}: ${describeError(error)}`);
        }
        continue;
      }
      try {
        const got = await genuine(wal, all);
        if (typeof got === 'string') problems.push(`head bit ${bit}: ${got}`);
        else if (got.at(-1)?.lsn !== within.records.at(-1)!.lsn) {
          const present = new Set(got.map((rec) => rec.lsn));
          found({ lost: within.records.filter((rec) => !present.has(rec.lsn)).length });
          problems.push(`head bit ${bit}: the log lost its last records`);
        } else if (wal.head !== within.head) {
          headResurrections++;
        }
      } finally {
        await wal.close();
      }
    }
    figures.cases += 96;
    if (headResurrections > 0) {
      console.log(
        `  bit flips: ${headResurrections} of 96 head-file flips (segment 0 present) reopened at head 0, bringing back truncated records`,
      );
    }
    finish(problems, 'head-file flip (segment 0 present)');
  });
});

let headResurrections = 0;
let cachedRecords: Rec[] | undefined;

/** The records a `buildLog()` appends (before any truncation). */
async function buildLogRecords(): Promise<Rec[]> {
  cachedRecords ??= [...(await buildLog()).records];
  return cachedRecords;
}
