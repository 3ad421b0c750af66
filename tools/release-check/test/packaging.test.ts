// Packaging lint: every public package, packed with pnpm as a publish packs it,
// must carry its licence and metadata, README links a reader of the installed
// package can follow, and pass publint and Are the Types Wrong.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  missingFiles,
  publintProblems,
  typesProblems,
  unreachableLinks,
  workspaceRanges,
} from '../src/lint.js';
import { run } from '../src/process.js';
import { type Packed, packAll, tarballName } from '../src/tarball.js';
import {
  binaries,
  isLibrary,
  publicPackages,
  REPOSITORY_ROOT,
  readManifest,
} from '../src/workspace.js';

const packages = publicPackages();
const rootLicense = readFileSync(join(REPOSITORY_ROOT, 'LICENSE'), 'utf8');

describe('packaging lint', function () {
  this.timeout(120_000);
  let dest: string;
  const packed = new Map<string, Packed>();

  before(async () => {
    dest = mkdtempSync(join(tmpdir(), 'wal-pack-'));
    for (const p of await packAll(REPOSITORY_ROOT, packages, dest)) packed.set(p.source.name, p);
  });
  after(() => rmSync(dest, { recursive: true, force: true }));

  it('finds the public packages from the workspace, not from a list', () => {
    const names = packages.map((p) => p.name);
    for (const name of ['@wal/errors', '@wal/store', '@wal/core', '@wal/cli']) {
      assert.ok(names.includes(name), `${name} missing from ${names.join(', ')}`);
    }
    for (const name of ['@wal/bench', '@wal/examples', '@wal/release-check', 'wal-monorepo']) {
      assert.ok(!names.includes(name), `${name} is private and must not be published`);
    }
  });

  it('names tarballs as npm does', () => {
    assert.equal(tarballName('@wal/core', '1.2.3-rc.0'), 'wal-core-1.2.3-rc.0.tgz');
  });

  it("installs from the tarballs with npm outside the workspace (the READMEs' way to try it now)", async () => {
    const app = join(dest, 'consumer');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), '{ "name": "wal-tarballs", "private": true }\n');
    const tarballs = [...packed.values()].map((p) => p.tarball);
    await run('npm', ['install', '--no-audit', '--no-fund', ...tarballs], { cwd: app });
    // Every library loads (through require(), the stricter way) and every command is linked.
    const libraries = packages.filter((p) => isLibrary(p.manifest)).map((p) => p.name);
    await run('node', ['-e', `for (const n of ${JSON.stringify(libraries)}) require(n);`], {
      cwd: app,
    });
    const commands = packages.flatMap((p) => Object.keys(binaries(p.manifest)));
    for (const command of commands) {
      assert.ok(existsSync(join(app, 'node_modules', '.bin', command)), command);
    }
  });

  for (const { name } of packages) {
    describe(name, () => {
      const get = () => packed.get(name)!;

      it('declares its licence, Node engines and files', () => {
        const manifest = readManifest(get().contents);
        assert.equal(manifest.license, 'MIT');
        assert.match(manifest.engines?.node ?? '', /^>=\s*20\.19/);
        assert.ok(
          (manifest.files ?? []).length > 0,
          'no "files": the tarball would take everything',
        );
        assert.deepEqual(missingFiles(get()), [], '"files" entries that match nothing');
      });

      it('ships the repository LICENSE, README and changelog', () => {
        assert.equal(
          readFileSync(join(get().contents, 'LICENSE'), 'utf8'),
          rootLicense,
          'the LICENSE in the tarball differs from the repository root LICENSE',
        );
        assert.match(readFileSync(join(get().contents, 'README.md'), 'utf8'), /^# /);
        assert.match(readFileSync(join(get().contents, 'CHANGELOG.md'), 'utf8'), /^# @wal\//);
      });

      it('has only real version ranges in its packed package.json', () => {
        assert.deepEqual(workspaceRanges(readManifest(get().contents)), []);
      });

      it('has README links that a reader of the installed package can follow', () => {
        assert.deepEqual(unreachableLinks(get(), packages), []);
      });

      it('is clean under publint (warnings are errors)', async () => {
        assert.deepEqual(await publintProblems(get()), []);
      });

      it('is clean under Are the Types Wrong (node16 profile)', async () => {
        const report = await typesProblems(get());
        assert.equal(report, undefined, report);
      });
    });
  }
});
