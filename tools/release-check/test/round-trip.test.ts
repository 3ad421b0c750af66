// The registry round trip: publish every public package from a copy of the
// repository to a private registry the way a release does, install them with
// npm into a project outside the workspace, and use them from an ES module, from
// CommonJS, from TypeScript (strict; nodenext and bundler resolution) and
// through the `wal` command. Each step is one test; a step after a failed one
// fails saying so.
import assert from 'node:assert/strict';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { copyRepository } from '../src/copy.js';
import { workspaceRanges } from '../src/lint.js';
import { run } from '../src/process.js';
import { type Registry, startRegistry } from '../src/registry.js';
import { type Manifest, publicPackages, REPOSITORY_ROOT, readManifest } from '../src/workspace.js';

const CONSUMER = fileURLToPath(new URL('../../consumer/', import.meta.url));
const SNAPSHOT = 'release-check';
const packages = publicPackages();

describe('registry round trip', function () {
  this.timeout(150_000);
  let work: string;
  let registry: Registry | undefined;
  let copy: string | undefined;
  let version: string | undefined;
  let published = false;
  let app: string | undefined;
  const pnpm = join(REPOSITORY_ROOT, 'pnpm');
  const need = <T>(value: T | undefined | false): T => {
    if (value === undefined || value === false) throw new Error('not run: an earlier step failed');
    return value;
  };
  const node = async (args: string[]) => (await run('node', args, { cwd: need(app) })).stdout;
  const inCopy = (path: string) => join(need(copy), relative(REPOSITORY_ROOT, path));

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'wal-release-'));
    const upstream = (await run('npm', ['config', 'get', 'registry'], { cwd: work })).stdout.trim();
    registry = await startRegistry({ dir: join(work, 'registry'), upstream, scope: '@wal' });
  });
  after(async () => {
    await registry?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it('copies the repository and installs its workspace offline', async () => {
    const dest = join(work, 'repository');
    assert.ok(copyRepository(REPOSITORY_ROOT, dest) > 0);
    // The repository's own store, wherever the copy is: everything is in it.
    const store = (await run(pnpm, ['store', 'path'], { cwd: REPOSITORY_ROOT })).stdout.trim();
    const install = ['install', '--offline', '--frozen-lockfile', '--ignore-scripts'];
    await run(pnpm, [...install, '--store-dir', store], { cwd: dest });
    copy = dest;
  });

  it('builds the public packages from source in the copy', async () => {
    const tsc = join(need(copy), 'node_modules', '.bin', 'tsc');
    await run(tsc, ['-b', ...packages.map((p) => inCopy(p.dir))], { cwd: need(copy) });
    for (const p of packages) assert.ok(existsSync(join(inCopy(p.dir), 'dist', 'src')), p.name);
  });

  it('versions every public package with changesets (a snapshot) and writes its changelog', async () => {
    const root = need(copy);
    const bumps = packages.map((p) => `"${p.name}": patch`).join('\n');
    writeFileSync(
      join(root, '.changeset', `${SNAPSHOT}.md`),
      `---\n${bumps}\n---\n\nRegistry round trip.\n`,
    );
    await run(
      join(root, 'node_modules', '.bin', 'changeset'),
      ['version', '--snapshot', SNAPSHOT],
      {
        cwd: root,
      },
    );
    const versions = new Set(packages.map((p) => readManifest(inCopy(p.dir)).version));
    assert.equal(versions.size, 1, `one snapshot version for all, got ${[...versions].join(', ')}`);
    const [only] = versions;
    assert.match(only ?? '', new RegExp(`^0\\.0\\.0-${SNAPSHOT}-\\d{14}$`));
    for (const p of packages) {
      const changelog = readFileSync(join(inCopy(p.dir), 'CHANGELOG.md'), 'utf8');
      assert.ok(changelog.startsWith(`# ${p.name}\n`), `${p.name}: changelog heading`);
      assert.ok(changelog.includes(`\n## ${only}\n`), `${p.name}: no entry for ${only}`);
    }
    version = only;
  });

  it('publishes every public package with pnpm publish, with real version ranges', async () => {
    const root = need(copy);
    const { url, token } = need(registry);
    const host = url.replace(/^http:/, '');
    writeFileSync(join(root, '.npmrc'), `registry=${url}\n${host}:_authToken=${token}\n`);
    // The registry on the command line and in the environment as well as in the
    // .npmrc: pnpm hands its scripts an environment whose npm settings would
    // otherwise win over the project's .npmrc and send the packages elsewhere.
    const publish = ['--recursive', 'publish', '--registry', url, '--no-git-checks'];
    await run(pnpm, [...publish, '--tag', SNAPSHOT], {
      cwd: root,
      env: { npm_config_registry: url },
    });
    for (const p of packages) {
      const response = await fetch(new URL(p.name.replace('/', '%2f'), url));
      assert.equal(response.status, 200, `${p.name} is not on the registry`);
      const document = (await response.json()) as { versions: Record<string, Manifest> };
      const manifest = document.versions[need(version)];
      assert.ok(manifest !== undefined, `${p.name}@${version} is not on the registry`);
      assert.deepEqual(workspaceRanges(manifest), [], p.name);
    }
    published = true;
  });

  it('installs every public package with npm into a project outside the workspace', async () => {
    need(published);
    const dir = join(work, 'consumer');
    assert.ok(relative(REPOSITORY_ROOT, dir).startsWith('..'), 'the consumer must be outside');
    mkdirSync(dir);
    cpSync(CONSUMER, dir, { recursive: true });
    writeFileSync(
      join(dir, 'package.json'),
      `${JSON.stringify({ name: 'wal-consumer', private: true, type: 'module' }, null, 2)}\n`,
    );
    const toolVersion = (name: string) =>
      readManifest(join(REPOSITORY_ROOT, 'node_modules', name)).version;
    const wanted = [
      ...packages.map((p) => `${p.name}@${need(version)}`),
      `typescript@${toolVersion('typescript')}`,
      `@types/node@${toolVersion('@types/node')}`,
    ];
    const flags = ['--registry', need(registry).url, '--no-audit', '--no-fund'];
    await run('npm', ['install', ...flags, ...wanted], { cwd: dir });
    const license = readFileSync(join(REPOSITORY_ROOT, 'LICENSE'), 'utf8');
    for (const p of packages) {
      const installed = join(dir, 'node_modules', p.name);
      assert.equal(readManifest(installed).version, version, p.name);
      assert.equal(readFileSync(join(installed, 'LICENSE'), 'utf8'), license, `${p.name} LICENSE`);
    }
    app = dir;
  });

  const expected = { read: ['one', 'two', 'three'], errors: true };

  it('ES module import: opens a log, appends durably, reopens and reads back', async () => {
    const result = JSON.parse(await node(['smoke.mjs', 'log-esm']));
    assert.deepEqual(result, { ...expected, store: 'function' });
  });

  it('CommonJS require: the same through require() of the packages', async () => {
    const result = JSON.parse(await node(['smoke.cjs', 'log-cjs']));
    assert.deepEqual(result, { ...expected, store: 'function' });
  });

  it('TypeScript, strict, moduleResolution nodenext: type-checks (ESM and CJS) and runs', async () => {
    const tsc = join(need(app), 'node_modules', '.bin', 'tsc');
    await run(tsc, ['-p', 'tsconfig.nodenext.json'], { cwd: need(app) });
    assert.deepEqual(JSON.parse(await node(['out/smoke.js', 'log-ts'])), {
      ...expected,
      store: 'object',
    });
    assert.deepEqual(JSON.parse(await node(['out/smoke-require.cjs', 'log-cts'])), {
      read: ['one'],
    });
  });

  it('TypeScript, strict, moduleResolution bundler: type-checks', async () => {
    const tsc = join(need(app), 'node_modules', '.bin', 'tsc');
    await run(tsc, ['-p', 'tsconfig.bundler.json'], { cwd: need(app) });
  });

  it('the installed `wal` command runs: wal --help', async () => {
    const { stdout } = await run('npx', ['--no', '--', 'wal', '--help'], { cwd: need(app) });
    assert.match(stdout, /^Usage: wal /);
    assert.match(stdout, /\bverify\b/);
  });

  it('the installed `wal` command verifies the log the ES module consumer wrote', async () => {
    const { stdout } = await run('npx', ['--no', '--', 'wal', 'verify', 'log-esm'], {
      cwd: need(app),
    });
    assert.match(stdout, /OK: 3 record\(s\)/);
  });
});
