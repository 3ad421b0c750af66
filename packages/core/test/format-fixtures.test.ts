// Logs written by an earlier release open with the same records at the same
// LSNs (docs/FORMAT.md §5.4): the fixtures in test/fixtures/format-v1 were
// written once by `test/fixtures/generate.ts` and are never regenerated, so
// a change to the bytes this release reads or writes fails here. A log of a
// later format version is refused with WAL_UNSUPPORTED_FORMAT, byte for
// byte untouched.
import assert from 'node:assert/strict';
import { cp, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { UnsupportedFormatError } from '@wal/errors';
import { treeSnapshot } from '@wal/store/testing';
import { FORMAT_VERSION, SUPPORTED_FORMATS, Wal, type WalOptions } from '../src/index.js';
import type { FixtureManifest } from './fixtures/generate.js';
import { fixturePayload } from './fixtures/payloads.js';
import { isCode } from './helpers.js';

/** The package root (this file runs from dist/test). */
const PACKAGE = fileURLToPath(new URL('../../', import.meta.url));
const V1 = join(PACKAGE, 'test', 'fixtures', 'format-v1');

/** Every file under `root` with its bytes (hex), sorted by path: what a byte compare compares. */
export async function contents(root: string): Promise<string[]> {
  const out: string[] = [];
  const visit = async (path: string): Promise<void> => {
    if ((await stat(path)).isDirectory()) {
      out.push(`${relative(root, path)}/`);
      for (const name of await readdir(path)) await visit(join(path, name));
    } else {
      out.push(`${relative(root, path)} ${(await readFile(path)).toString('hex')}`);
    }
  };
  await visit(root);
  return out.sort();
}

async function manifests(): Promise<Record<'segmented' | 'single', FixtureManifest>> {
  return JSON.parse(await readFile(join(V1, 'manifest.json'), 'utf8'));
}

/** Asserts that `wal` holds exactly the manifest's records, by iteration and by `read`. */
async function assertHolds(wal: Wal, manifest: FixtureManifest): Promise<void> {
  assert.equal(wal.head, manifest.head);
  assert.equal(wal.tail, manifest.tail);
  const found = [];
  for await (const record of wal.iterate()) {
    found.push({ lsn: record.lsn, payload: Buffer.from(record.payload).toString('hex') });
  }
  assert.deepEqual(found, manifest.records);
  for (const { lsn, payload } of manifest.records) {
    assert.equal(Buffer.from(await wal.read(lsn)).toString('hex'), payload);
  }
  assert.equal(wal.recovery.truncated, false);
  assert.equal(wal.recovery.tornBytes, 0);
}

const FIXTURES = [
  { name: 'segmented', path: 'segmented', options: { layout: 'segmented' } },
  { name: 'single', path: 'single.wal', options: { layout: 'file' } },
] as const satisfies ReadonlyArray<{ name: string; path: string; options: WalOptions }>;

describe('format fixtures (FORMAT.md §5.4)', () => {
  let parent: string;

  beforeEach(async () => {
    parent = await mkdtemp(join(tmpdir(), 'wal-format-fixtures-'));
  });

  afterEach(async () => {
    await rm(parent, { recursive: true, force: true });
  });

  it('this release writes and reads format version 1', () => {
    assert.equal(FORMAT_VERSION, 1);
    assert.deepEqual(SUPPORTED_FORMATS, [1]);
  });

  it('the manifests hold the generator’s payloads, from a head past a truncateBefore', async () => {
    const all = await manifests();
    for (const manifest of Object.values(all)) {
      assert.ok(manifest.head > 0, 'a truncateBefore ran');
      const first = 40 - manifest.records.length;
      manifest.records.forEach((record, i) => {
        assert.equal(record.payload, Buffer.from(fixturePayload(first + i)).toString('hex'));
      });
    }
    assert.ok(all.segmented.head > all.segmented.segmentSize!, 'segment 0 was deleted');
    const names = await readdir(join(V1, 'segmented'));
    assert.ok(!names.includes('00000000000000000000.wal') && names.includes('head'));
  });

  for (const fixture of FIXTURES) {
    describe(`a ${fixture.name} log of version 1`, () => {
      it('opens read-only in place with the same records and LSNs, changing nothing', async () => {
        const manifest = (await manifests())[fixture.name];
        const path = join(V1, fixture.path);
        const before = await treeSnapshot(V1);
        const wal = await Wal.open(path, { ...fixture.options, readOnly: true });
        await assertHolds(wal, manifest);
        await wal.close();
        assert.deepEqual(await treeSnapshot(V1), before);
      });

      it('opens writable with the same records and LSNs, goes on at its tail, and reopens', async () => {
        const manifest = (await manifests())[fixture.name];
        const path = join(parent, fixture.path);
        await cp(join(V1, fixture.path), path, { recursive: true });
        if (fixture.name === 'single') await cp(join(V1, `${fixture.path}.meta`), `${path}.meta`);
        const before = await contents(parent);
        const wal = await Wal.open(path, fixture.options);
        await assertHolds(wal, manifest);
        await wal.close();
        assert.deepEqual(await contents(parent), before, 'a clean open and close rewrote nothing');
        const again = await Wal.open(path, fixture.options);
        const lsn = await again.append(fixturePayload(40), { wait: 'durable' });
        assert.equal(lsn, manifest.tail);
        await again.close();
        const last = await Wal.open(path, { ...fixture.options, readOnly: true });
        assert.deepEqual(await last.read(lsn), fixturePayload(40));
        assert.equal(last.head, manifest.head);
        await last.close();
      });
    });
  }

  for (const [layout, name] of [
    ['segmented', 'future'],
    ['file', 'future.wal'],
  ] as const) {
    for (const readOnly of [false, true]) {
      it(`refuses a ${layout} log of format version 2 (${readOnly ? 'read-only' : 'writable'}) with WAL_UNSUPPORTED_FORMAT, bytes untouched`, async () => {
        const path = join(parent, name);
        await cp(join(V1, name), path, { recursive: true });
        if (layout === 'file') await cp(join(V1, `${name}.meta`), `${path}.meta`);
        const before = await contents(parent);
        await assert.rejects(
          Wal.open(path, { layout, readOnly }),
          (error: UnsupportedFormatError) => {
            isCode('WAL_UNSUPPORTED_FORMAT')(error);
            assert.equal(error.found, 2);
            assert.deepEqual(error.supported, [1]);
            return true;
          },
        );
        assert.deepEqual(await contents(parent), before);
        // Not locked afterwards: the refusal released everything.
        await assert.rejects(Wal.open(path, { layout }), isCode('WAL_UNSUPPORTED_FORMAT'));
      });
    }
  }

  it('a wal.format that is not a positive integer is damage, not a version', async () => {
    const { MemoryStore } = await import('@wal/store');
    for (const value of [0, 1.5, '1', true]) {
      const store = new MemoryStore();
      await store.updateMeta({ 'wal.format': value });
      await assert.rejects(Wal.open(store), isCode('WAL_CORRUPTION'));
    }
  });
});
