/**
 * The child of kill.test.ts: opens the store in a real directory, then writes
 * from several concurrent writers until it is killed (small buffers, so
 * flushes and compactions run all along), printing one line per
 * acknowledged write after it resolved:
 *
 *   O                 the store is open (recovery done)
 *   A <key>           the put of <key> (value: expectedValue(key)) is acknowledged
 *   X <key>           a delete of <key> is about to be issued
 *   D <key>           the delete of <key> is acknowledged
 *   Y <start> <end>   a range deletion of [<start>, <end>) is about to be issued
 *   R <start> <end>   that range deletion is acknowledged
 *   E <code> <text>   an unexpected error (the parent fails)
 *
 * Usage: node kill-child.js <dir> <run> <seed>. Writes to a pipe are
 * synchronous on Linux, so a printed line was sent before the kill.
 */
import { Lsm } from '../src/index.js';
import { expectedValue, KILL_OPTIONS } from './kill-shared.js';

const [dir, run, seedArg] = process.argv.slice(2);
if (dir === undefined || run === undefined || seedArg === undefined) {
  process.stderr.write('usage: kill-child <dir> <run> <seed>\n');
  process.exit(2);
}
let seed = Number(seedArg) >>> 0 || 1;
const random = (): number => {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 2 ** 32;
};
// A child that outlives a vanished parent stops on its own.
setTimeout(() => process.exit(0), 30_000).unref();

function fail(error: unknown): never {
  const code = (error as { code?: unknown } | null)?.code;
  process.stdout.write(`E ${String(code)} ${String(error).replace(/\n/g, ' ')}\n`);
  process.exit(3);
}

const encoder = new TextEncoder();

async function writer(db: Lsm, id: number): Promise<void> {
  for (let n = 0; ; n++) {
    const key = `r${run}-w${id}-${String(n).padStart(6, '0')}`;
    const sync = random() < 0.5;
    await db.put(encoder.encode(key), expectedValue(key), { sync });
    process.stdout.write(`A ${key}\n`);
    if (random() < 0.2) {
      process.stdout.write(`X ${key}\n`);
      await db.del(encoder.encode(key), { sync: random() < 0.5 });
      process.stdout.write(`D ${key}\n`);
    }
    if (n >= 4 && random() < 0.05) {
      // The writer's last few keys (only its own: the prefix is its own).
      const start = `r${run}-w${id}-${String(n - 4).padStart(6, '0')}`;
      const end = `r${run}-w${id}-${String(n).padStart(6, '0')}`;
      process.stdout.write(`Y ${start} ${end}\n`);
      await db.delRange(encoder.encode(start), encoder.encode(end), { sync: random() < 0.5 });
      process.stdout.write(`R ${start} ${end}\n`);
    }
  }
}

async function main(): Promise<void> {
  const db = await Lsm.open(dir!, KILL_OPTIONS);
  process.stdout.write('O\n');
  const writers = 2 + Math.floor(random() * 4);
  await Promise.all(Array.from({ length: writers }, (_, id) => writer(db, id)));
}

main().catch(fail);
