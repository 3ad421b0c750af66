// The release checks' own failure paths: a failing command, a registry that
// refuses its user, and lints that must report a broken package.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { copyRepository } from '../src/copy.js';
import {
  missingFiles,
  publintProblems,
  typesProblems,
  unreachableLinks,
  workspaceRanges,
} from '../src/lint.js';
import { run } from '../src/process.js';
import { startRegistry } from '../src/registry.js';
import type { Packed } from '../src/tarball.js';
import { binaries, type Manifest } from '../src/workspace.js';

describe('release-check internals', function () {
  this.timeout(60_000);
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'wal-units-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('run rejects with the output of a command that fails or is killed', async () => {
    await assert.rejects(run('sh', ['-c', 'echo out; echo err >&2; exit 3'], { cwd: dir }), {
      message: /ended with exit status 3\nout\nerr\n$/,
    });
    await assert.rejects(run('sh', ['-c', 'kill -9 $$'], { cwd: dir }), {
      message: /ended with signal SIGKILL/,
    });
    await assert.rejects(run(join(dir, 'missing'), [], { cwd: dir }), { code: 'ENOENT' });
  });

  it('the registry stops and reports when it cannot create its user', async () => {
    // A user of that name already exists with another password.
    writeFileSync(
      join(dir, 'htpasswd'),
      'release-check:{SHA}AAAAAAAAAAAAAAAAAAAAAAAAAAA=:autocreated\n',
    );
    await assert.rejects(
      startRegistry({ dir, upstream: 'http://127.0.0.1:9/', scope: '@wal' }),
      /the registry refused to create a user/,
    );
  });

  it('the lints report a package whose types and links are broken', async () => {
    const contents = join(dir, 'package');
    mkdirSync(contents);
    const manifest: Manifest = {
      name: '@wal/broken',
      version: '1.0.0',
      license: 'MIT',
      // Types that say CommonJS for an ES module: attw's "masquerading as CJS".
      exports: { '.': { types: './index.d.cts', default: './index.js' } },
    };
    // A `main` that names no file: publint's error.
    const written = { ...manifest, type: 'module', main: './gone.js' };
    writeFileSync(join(contents, 'package.json'), JSON.stringify(written));
    writeFileSync(join(contents, 'index.d.cts'), 'export declare const x: number;\n');
    writeFileSync(join(contents, 'index.js'), 'export const x = 1;\n');
    writeFileSync(
      join(contents, 'README.md'),
      '# broken\n[a](../../docs/A.md) [b](../core) [c](#c)\n',
    );
    await run('tar', ['-czf', 'broken.tgz', 'package'], { cwd: dir });
    const packed: Packed = {
      source: {
        name: manifest.name,
        dir: join(dir, 'packages', 'broken'),
        path: 'packages/broken',
        manifest,
      },
      tarball: join(dir, 'broken.tgz'),
      contents,
    };
    const sibling = { ...packed.source, name: '@wal/core', dir: join(dir, 'packages', 'core') };
    assert.deepEqual(unreachableLinks(packed, [packed.source, sibling]), ['../../docs/A.md']);
    assert.match((await publintProblems(packed)).join('\n'), /gone\.js/);
    assert.match((await typesProblems(packed)) ?? '', /Masquerading as CJS/);

    // A library without any types: attw itself passes it, the lint does not.
    rmSync(join(contents, 'index.d.cts'));
    writeFileSync(
      join(contents, 'package.json'),
      JSON.stringify({ ...written, exports: './index.js' }),
    );
    await run('tar', ['-czf', 'broken.tgz', 'package'], { cwd: dir });
    assert.match((await typesProblems(packed)) ?? '', /does not contain types/);
  });

  it('finds the ranges only a workspace understands, and files entries that match nothing', () => {
    const manifest: Manifest = {
      name: '@wal/x',
      version: '1.0.0',
      dependencies: { '@wal/core': 'workspace:*', commander: '14.0.3' },
      peerDependencies: { 'fast-check': 'catalog:' },
    };
    assert.deepEqual(workspaceRanges(manifest), [
      'dependencies.@wal/core: workspace:*',
      'peerDependencies.fast-check: catalog:',
    ]);
    const source = { name: '@wal/x', dir, path: 'x', manifest };
    const packed: Packed = { source, tarball: join(dir, 'x.tgz'), contents: dir };
    assert.deepEqual(missingFiles(packed), []);
    writeFileSync(join(dir, 'README.md'), '# x\n');
    const withFiles = { ...manifest, files: ['README.md', 'CHANGELOG.md'] };
    assert.deepEqual(missingFiles({ ...packed, source: { ...source, manifest: withFiles } }), [
      'CHANGELOG.md',
    ]);
  });

  it('copies tracked and new files of a git work tree, not ignored, deleted or linked ones', async () => {
    const repo = join(dir, 'repo');
    mkdirSync(repo);
    const git = (...args: string[]) => run('git', args, { cwd: repo });
    await git('init', '-q');
    writeFileSync(join(repo, '.gitignore'), 'ignored.txt\n');
    writeFileSync(join(repo, 'kept.txt'), 'kept\n');
    writeFileSync(join(repo, 'deleted.txt'), 'deleted\n');
    await git('add', '.');
    writeFileSync(join(repo, 'new.txt'), 'new\n');
    writeFileSync(join(repo, 'ignored.txt'), 'ignored\n');
    rmSync(join(repo, 'deleted.txt'));
    symlinkSync('kept.txt', join(repo, 'link.txt'));
    const dest = join(dir, 'copy');
    assert.equal(copyRepository(repo, dest), 3);
    for (const name of ['.gitignore', 'kept.txt', 'new.txt'])
      assert.ok(existsSync(join(dest, name)));
    for (const name of ['deleted.txt', 'ignored.txt', 'link.txt']) {
      assert.ok(!existsSync(join(dest, name)), name);
    }
  });

  it('names the commands a package installs', () => {
    const base = { name: '@wal/cli', version: '1.0.0' };
    assert.deepEqual(binaries({ ...base, bin: './main.js' }), { cli: './main.js' });
    assert.deepEqual(binaries({ ...base, bin: { wal: './main.js' } }), { wal: './main.js' });
    assert.deepEqual(binaries(base), {});
  });
});
