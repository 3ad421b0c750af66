/** `wal info <path>`: what a log is and holds. */
import { APPLICATION_KEY, FORMAT_KEY } from '@wal/core';
import { diagnose } from '../diagnose.js';
import { EXIT } from '../errors.js';
import { describeLock, lockStatus } from '../lock.js';
import { diskUsage, segmentSizeOf } from '../open.js';
import { Progress } from '../progress.js';
import {
  damageJson,
  describeDamage,
  describeHardDamage,
  describePendingCut,
  describeZeroTail,
  type Io,
  type LogOptions,
  pendingCutJson,
  readingOf,
  tearCutBytes,
  withStore,
} from './shared.js';

export interface InfoOptions extends LogOptions {
  readonly json?: boolean;
}

export async function info(path: string, options: InfoOptions, io: Io): Promise<number> {
  return withStore(path, options, async (target, store) => {
    const meta = await store.readMeta();
    const lock = await lockStatus(target.lockFile);
    const progress = new Progress(io.err, store.head, store.length, 'scanning');
    const diagnosis = await diagnose(store, readingOf(options), (offset, length) =>
      progress.update(offset + length),
    ).finally(() => progress.done());
    const { report, damage } = diagnosis;
    const usage = await diskUsage(target, store);
    const format = typeof meta[FORMAT_KEY] === 'number' ? meta[FORMAT_KEY] : null;
    const recorded = meta[APPLICATION_KEY];
    const application = typeof recorded === 'string' ? recorded : null;
    const tear = damage === undefined ? report.tear : undefined;
    const data = {
      path,
      layout: target.layout,
      format,
      application,
      segmentSize: segmentSizeOf(store) ?? null,
      maxRecordSize: diagnosis.maxRecordSize,
      head: report.head,
      tail: report.end,
      records: diagnosis.records,
      segments: usage.segments ?? null,
      bytes: report.storeLength - report.head,
      diskBytes: usage.bytes,
      durableHint: diagnosis.durableHint,
      status: diagnosis.status,
      zeroTail: report.zeroTail,
      tear:
        tear === undefined
          ? null
          : { ...damageJson(target, store, tear), cutBytes: tearCutBytes(diagnosis) },
      damage: damage === undefined ? null : damageJson(target, store, damage),
      pendingCut: pendingCutJson(diagnosis),
      skipped: report.skipped.length,
      lock: {
        locked: lock.locked,
        pid: lock.pid ?? null,
        host: lock.host ?? null,
        holder: lock.holder ?? null,
      },
    };
    if (options.json === true) {
      await io.out.line(JSON.stringify(data));
    } else {
      let state = 'clean';
      if (damage !== undefined) {
        state = `DAMAGED: ${describeHardDamage(target, store, damage, diagnosis)} (see wal verify)`;
      } else if (diagnosis.pendingCut !== undefined) {
        state = `${tear === undefined ? 'clean' : 'torn tail'}; ${describePendingCut(diagnosis)}`;
      } else if (tear !== undefined) {
        state = `torn tail: ${describeDamage(target, store, tear)}; recovery cuts ${tearCutBytes(diagnosis)} bytes`;
      } else if (report.zeroTail > 0) {
        state = `clean; ${describeZeroTail(report)}: recovery cuts them`;
      }
      if (report.skipped.length > 0) {
        state += `; ${report.skipped.length} damaged record(s) stepped over (--skip)`;
      }
      const rows: Array<[string, string]> = [
        ['path', path],
        ['layout', target.layout],
        ['format', format === null ? 'none (no metadata: a wal-db 1.x log)' : String(format)],
        ['application', application === null ? '-' : JSON.stringify(application)],
        ['segment size', data.segmentSize === null ? '-' : String(data.segmentSize)],
        ['max record size', String(data.maxRecordSize)],
        ['head', String(data.head)],
        ['tail', String(data.tail)],
        ['records', String(data.records)],
        ['segments', data.segments === null ? '- (single file)' : String(data.segments)],
        ['bytes', `${data.bytes} (on disk ${data.diskBytes})`],
        ['durable hint', String(data.durableHint)],
        ['state', state],
        ['lock', describeLock(lock)],
      ];
      for (const [name, value] of rows) await io.out.line(`${name.padEnd(16)}${value}`);
    }
    if (damage === undefined) return EXIT.ok;
    io.err.write(`wal: ${path}: the log is damaged below its durable hint (run wal verify)\n`);
    return EXIT.damaged;
  });
}
