/**
 * Commit dependencies across power losses (CrashFs). A commit is visible as
 * soon as its record is appended, before it is durable; transfers on six
 * hot accounts therefore read balances written by pending transfers, and
 * read-only audits read pending balances too. Before every fdatasync, the
 * states a power loss could leave are reopened and checked: the bank check
 * (bank.ts: total unchanged, every acknowledged transfer there, none in
 * part), and no acknowledged transaction — transfer or audit — read from a
 * transfer the crash lost; every acknowledged audit saw the initial total.
 * The test also shows that the case arises: in some crash states a
 * transaction had read from a lost transfer (it was not acknowledged).
 */
import assert from 'node:assert/strict';
import { CrashFs, type CrashState } from '@wal/store/testing';
import { TxnStore } from '../../src/index.js';
import {
  ACCOUNTS,
  audit,
  bankCounts,
  checkBank,
  createAccounts,
  INITIAL,
  steppingFs,
  tagSurvived,
  transfer,
} from './bank.js';

const DIR = '/bank';
const OPTIONS = { checkpoint: { logBytes: 4000 } };
const LOG = { segmentSize: 4096 };
const CLIENTS = 4;
const AUDITORS = 2;
const TRANSFERS = 24;

/** A transaction of the run: what it read (tags of transfers), and whether it was acknowledged. */
interface Read {
  readonly what: string;
  tags: Array<string | undefined>;
  acked: boolean;
}

interface Moment {
  readonly acked: readonly number[];
  readonly begun: readonly number[];
  /** The reads acknowledged by then, with the tags they read. */
  readonly ackedReads: ReadonlyArray<Readonly<Read>>;
  /** The reads in flight then (tags known once they ended). */
  readonly inFlight: ReadonlyArray<Readonly<Read>>;
  readonly state: CrashState;
}

describe('crash: commit dependencies across power losses (CrashFs)', () => {
  it('acknowledges no transaction that read from a commit the crash lost', async function () {
    this.timeout(240_000);
    const crash = new CrashFs();
    const acked = new Array<number>(CLIENTS).fill(0);
    const begun = new Array<number>(CLIENTS).fill(0);
    const reads: Read[] = [];
    const moments: Moment[] = [];
    let step = 0;
    const fs = steppingFs(crash, (method) => {
      if (method !== 'fdatasync') return;
      step++;
      const ackedReads = reads.filter((r) => r.acked).map((r) => ({ ...r }));
      const inFlight = reads.filter((r) => !r.acked);
      for (const state of crash.crashStates({ seed: step, limit: 2 }))
        moments.push({ acked: [...acked], begun: [...begun], ackedReads, inFlight, state });
    });
    const store = await TxnStore.open(DIR, { ...OPTIONS, log: { ...LOG, fs } });
    await createAccounts(store);
    const clients = Array.from({ length: CLIENTS }, async (_, client) => {
      for (let i = 1; i <= TRANSFERS; i++) {
        begun[client] = i;
        const read: Read = { what: `transfer ${client}/${i}`, tags: [], acked: false };
        reads.push(read);
        read.tags = await transfer(store, client, i);
        read.acked = true;
        acked[client] = i;
      }
    });
    const auditors = Array.from({ length: AUDITORS }, async (_, a) => {
      for (let i = 1; i <= TRANSFERS; i++) {
        const read: Read = { what: `audit ${a}/${i}`, tags: [], acked: false };
        reads.push(read);
        const { total, tags } = await audit(store);
        assert.equal(total, ACCOUNTS * INITIAL, 'an audit saw a wrong total');
        read.tags = tags;
        read.acked = true;
      }
    });
    await Promise.all([...clients, ...auditors]);
    await store.close();

    let lostReads = 0;
    for (const [m, moment] of moments.entries()) {
      const where = `power loss before fdatasync ${m}, ${moment.state.description}`;
      const reopened = await TxnStore.open(DIR, {
        ...OPTIONS,
        log: { ...LOG, fs: moment.state.fs() },
      });
      try {
        await checkBank(reopened, moment, where);
        const counts = await bankCounts(reopened, CLIENTS);
        for (const read of moment.ackedReads) {
          for (const tag of read.tags)
            assert.ok(
              tagSurvived(tag, counts),
              `${where}: ${read.what} was acknowledged, but it read from transfer ${tag}, which is lost`,
            );
        }
        for (const read of moment.inFlight)
          if (read.tags.some((tag) => !tagSurvived(tag, counts))) lostReads++;
      } finally {
        await reopened.close();
      }
    }
    console.log(
      `      ${moments.length} crash states checked; ${lostReads} times a transaction in flight had read from a transfer the crash lost`,
    );
    assert.ok(moments.length > 30, `${moments.length} crash states`);
    assert.ok(
      lostReads > 0,
      'no transaction ever read from a lost transfer: the test shows nothing',
    );
  });
});
