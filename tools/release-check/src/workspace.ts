import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The fields of a package.json that the release checks read. */
export interface Manifest {
  name: string;
  version: string;
  private?: boolean;
  license?: string;
  engines?: Record<string, string>;
  files?: string[];
  exports?: unknown;
  types?: string;
  bin?: string | Record<string, string>;
  scripts?: Record<string, string>;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

/** A workspace package that a release publishes. */
export interface PublicPackage {
  /** Its npm name, e.g. `@wal/core`. */
  name: string;
  /** Absolute path of its folder. */
  dir: string;
  /** Its folder relative to the repository root, with `/` separators. */
  path: string;
  /** Its package.json as committed. */
  manifest: Manifest;
}

/** The repository this package belongs to (two folders above tools/release-check). */
export const REPOSITORY_ROOT = fileURLToPath(new URL('../../../../', import.meta.url));

/** Reads a package.json. Throws when it is missing or is not JSON. */
export function readManifest(dir: string): Manifest {
  return JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Manifest;
}

/**
 * Every package of the workspace that is not `private`, in the order pnpm
 * lists them. The list comes from pnpm itself (pnpm-workspace.yaml's globs and
 * each package.json's `private` flag), so a package added later is covered
 * without touching the checks. Throws when pnpm cannot list the workspace.
 */
export function publicPackages(root: string = REPOSITORY_ROOT): PublicPackage[] {
  const listed = JSON.parse(
    execFileSync(join(root, 'pnpm'), ['ls', '--recursive', '--json', '--depth', '-1'], {
      cwd: root,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    }),
  ) as { name: string; path: string; private?: boolean }[];
  return listed
    .filter((entry) => entry.private !== true)
    .map((entry) => ({
      name: entry.name,
      dir: entry.path,
      path: relative(root, entry.path).split('\\').join('/'),
      manifest: readManifest(entry.path),
    }));
}

/** Whether a package has something to import (an `exports` map or `types`), not only a command. */
export function isLibrary(manifest: Manifest): boolean {
  return manifest.exports !== undefined || manifest.types !== undefined;
}

/** The commands a package installs, by name (a string `bin` is named after the package). */
export function binaries(manifest: Manifest): Record<string, string> {
  const { bin } = manifest;
  if (typeof bin !== 'string') return bin ?? {};
  return { [manifest.name.replace(/^@[^/]+\//, '')]: bin };
}
