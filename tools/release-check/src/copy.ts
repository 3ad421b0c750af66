import { execFileSync } from 'node:child_process';
import { cpSync, lstatSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * Copies the repository's files into `dest` as a fresh clone would have them,
 * plus files not yet committed (but not ignored ones: no node_modules, dist or
 * .tools). Symbolic links are left out. Returns how many files it copied.
 * Throws when `root` is not a git work tree.
 */
export function copyRepository(root: string, dest: string): number {
  const listed = execFileSync(
    'git',
    ['ls-files', '-z', '--cached', '--others', '--exclude-standard'],
    {
      cwd: root,
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    },
  );
  let copied = 0;
  for (const path of listed.split('\0')) {
    if (path === '') continue;
    const stat = lstatSync(join(root, path), { throwIfNoEntry: false });
    if (stat === undefined || !stat.isFile()) continue; // deleted, or a symbolic link
    mkdirSync(dirname(join(dest, path)), { recursive: true });
    cpSync(join(root, path), join(dest, path));
    copied++;
  }
  return copied;
}
