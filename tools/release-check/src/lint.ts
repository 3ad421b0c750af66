import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { publint } from 'publint';
import { formatMessage } from 'publint/utils';
import { run } from './process.js';
import type { Packed } from './tarball.js';
import { isLibrary, type Manifest, type PublicPackage } from './workspace.js';

const ATTW = fileURLToPath(new URL('../../node_modules/.bin/attw', import.meta.url));

/** Dependency fields whose ranges a publish must have rewritten. */
const DEPENDENCY_FIELDS = [
  'dependencies',
  'peerDependencies',
  'optionalDependencies',
  'devDependencies',
] as const;

/** Ranges in a packed package.json that only a workspace understands (`workspace:*`, `catalog:`). */
export function workspaceRanges(manifest: Manifest): string[] {
  const found: string[] = [];
  for (const field of DEPENDENCY_FIELDS) {
    const ranges = (manifest as unknown as Record<string, Record<string, string> | undefined>)[
      field
    ];
    for (const [name, range] of Object.entries(ranges ?? {})) {
      if (/^(workspace|catalog):/.test(range)) found.push(`${field}.${name}: ${range}`);
    }
  }
  return found;
}

/** Entries of `files` that match nothing in the packed contents. */
export function missingFiles(packed: Packed): string[] {
  return (packed.source.manifest.files ?? []).filter(
    (entry) => !existsSync(join(packed.contents, entry)),
  );
}

/**
 * Relative links in the packed README.md (`[text](target)`) that a reader of
 * the installed package cannot follow: a target must be a file or folder
 * inside the package, or `../<name>` for a sibling public package `<scope>/<name>`
 * that sits at the same relative place in the repository (an install puts it
 * beside this one in node_modules/<scope>/).
 */
export function unreachableLinks(packed: Packed, packages: readonly PublicPackage[]): string[] {
  const readme = readFileSync(join(packed.contents, 'README.md'), 'utf8');
  const siblings = packages
    .filter((p) => dirname(p.dir) === dirname(packed.source.dir))
    .filter((p) => p.name.endsWith(`/${basename(p.dir)}`))
    .map((p) => `..${sep}${basename(p.dir)}`);
  const unreachable: string[] = [];
  for (const [, target = ''] of readme.matchAll(/\]\(([^)\s]+)\)/g)) {
    const path = target.split('#')[0] ?? '';
    if (path === '' || /^[a-z]+:/i.test(path)) continue;
    const inside = resolve(packed.contents, path);
    const rel = relative(packed.contents, inside);
    const reachable = rel.startsWith('..') ? siblings.includes(rel) : existsSync(inside);
    if (!reachable) unreachable.push(target);
  }
  return unreachable;
}

/** publint's errors and warnings on the unpacked tarball (suggestions are left out), as text. */
export async function publintProblems(packed: Packed): Promise<string[]> {
  const { messages, pkg } = await publint({ pkgDir: packed.contents, pack: false, strict: true });
  return messages
    .filter((m) => m.type !== 'suggestion')
    .map((m) => `${m.type}: ${formatMessage(m, pkg, { color: false }) ?? m.code}`);
}

/**
 * Runs Are the Types Wrong on the tarball of a package that has something to
 * import, under the `node16` profile (Node's ESM and CJS resolution and
 * bundlers; the `node10` resolution, which ignores `exports`, is not
 * supported). `cjs-resolves-to-esm` is not a problem here: the packages are ES
 * modules, and CommonJS loads them through `require()` of ES modules (Node ≥
 * 20.19, which `engines` asks for; TypeScript accepts it under module
 * nodenext), which the registry round trip tests. A library without types is a
 * problem too (attw itself lets it pass). Resolves with attw's report when it
 * finds a problem, or `undefined`; a command-only package is skipped.
 */
export async function typesProblems(packed: Packed): Promise<string | undefined> {
  if (!isLibrary(packed.source.manifest)) return undefined;
  const args = [packed.tarball, '--profile', 'node16', '--ignore-rules', 'cjs-resolves-to-esm'];
  try {
    const { stdout } = await run(ATTW, [...args, '--format', 'ascii', '--no-color'], {
      cwd: dirname(packed.tarball),
    });
    // attw passes a package without types; a library of ours must have them.
    return stdout.includes('does not contain types') ? stdout : undefined;
  } catch (error) {
    return (error as Error).message;
  }
}
