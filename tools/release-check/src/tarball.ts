import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { run } from './process.js';
import type { PublicPackage } from './workspace.js';

/** A packed package: its tarball and the folder it was unpacked into. */
export interface Packed {
  /** The package it came from. */
  source: PublicPackage;
  /** Absolute path of the `.tgz`. */
  tarball: string;
  /** Absolute path of the unpacked `package/` folder (what an install puts in node_modules). */
  contents: string;
}

/** The file name npm and pnpm give a package's tarball: `@wal/core` 1.2.0 → `wal-core-1.2.0.tgz`. */
export function tarballName(name: string, version: string): string {
  return `${name.replace(/^@/, '').replace('/', '-')}-${version}.tgz`;
}

/**
 * Packs every given package with `pnpm pack` (which rewrites `workspace:` and
 * `catalog:` ranges into real versions, as a publish does) into `dest`, and
 * unpacks each tarball beside it. Rejects when a pack or an unpack fails.
 */
export async function packAll(
  root: string,
  packages: readonly PublicPackage[],
  dest: string,
): Promise<Packed[]> {
  const filters = packages.flatMap((p) => ['--filter', p.name]);
  await run(join(root, 'pnpm'), [...filters, '--recursive', 'pack', '--pack-destination', dest], {
    cwd: root,
  });
  const packed: Packed[] = [];
  for (const source of packages) {
    const tarball = join(dest, tarballName(source.name, source.manifest.version));
    const unpacked = join(dest, tarballName(source.name, source.manifest.version).slice(0, -4));
    mkdirSync(unpacked);
    await run('tar', ['-xzf', tarball, '-C', unpacked], { cwd: dest });
    packed.push({ source, tarball, contents: join(unpacked, 'package') });
  }
  return packed;
}
