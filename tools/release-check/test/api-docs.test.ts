// The API reference: `pnpm docs:api` builds it from the doc comments of every
// public package and fails on an undocumented export or a broken link.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { apiDocsCommand } from '../src/api-docs.js';
import { publicPackages, readManifest } from '../src/workspace.js';

const FIXTURE = fileURLToPath(new URL('../../test-fixtures/api-docs/', import.meta.url));

describe('API reference', function () {
  this.timeout(180_000);
  let root: string;
  let log: typeof console.log;
  const printed: string[] = [];

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'wal-api-'));
    log = console.log;
    console.log = (...args: unknown[]) => printed.push(args.join(' '));
  });
  afterEach(() => {
    console.log = log;
    rmSync(root, { recursive: true, force: true });
  });

  it('documents every export of the public packages, with no broken link', async () => {
    assert.equal(await apiDocsCommand(['--check'], publicPackages(), root), 0, printed.join('\n'));
    assert.match(printed.at(-1) ?? '', /@wal\/core\b.*: checked, 0 problem\(s\)$/);
    assert.ok(!existsSync(join(root, 'docs')), '--check wrote files');
  });

  it('fails on an undocumented export and on a link to nothing (and writes the HTML)', async () => {
    const fixture = {
      name: 'api-docs-fixture',
      dir: FIXTURE,
      path: 'test-fixtures/api-docs',
      manifest: readManifest(FIXTURE),
    };
    assert.equal(await apiDocsCommand([], [fixture], root), 1);
    assert.match(printed.at(-1) ?? '', /: written to .*, 2 problem\(s\)$/);
    assert.ok(existsSync(join(root, 'docs', 'api', 'index.html')), 'no HTML written');
  });
});
