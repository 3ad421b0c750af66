/**
 * Looking at a directory tree on the real file system, for tests: a snapshot
 * that proves an operation changed nothing (every entry's path, type, size,
 * modification and change times in nanoseconds and, for files, bytes), and the
 * permission bits of what an operation created, under a chosen umask.
 */
import { lstat, readdir, readFile, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';

/**
 * One line per entry under `root`, `root` itself included, sorted. Two
 * snapshots are equal only if no entry was created, removed, renamed,
 * written, truncated or had its directory listing changed (a file created
 * and deleted again still moves its directory's times). Reads only.
 */
export async function treeSnapshot(root: string): Promise<string[]> {
  const out: string[] = [];
  const visit = async (path: string): Promise<void> => {
    const info = await lstat(path, { bigint: true });
    const times = `mtime ${info.mtimeNs} ctime ${info.ctimeNs}`;
    if (info.isDirectory()) {
      const names = (await readdir(path)).sort();
      out.push(`${path}/ ${times} [${names.join(', ')}]`);
      for (const name of names) await visit(join(path, name));
    } else if (info.isFile()) {
      out.push(`${path} ${info.size} bytes ${times} ${(await readFile(path)).toString('hex')}`);
    } else {
      out.push(`${path} (other) ${times}`);
    }
  };
  await visit(root);
  return out.sort();
}

/**
 * `st_mode & 0o777` of `root` and of every entry under it, keyed by the path
 * relative to `root` (`''` for `root` itself). Follows links. Reads only;
 * rejects with the file system's error (e.g. `ENOENT`) when `root` is missing.
 */
export async function permissionsUnder(root: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const visit = async (path: string): Promise<void> => {
    const info = await stat(path);
    out.set(relative(root, path), info.mode & 0o777);
    if (info.isDirectory()) for (const name of await readdir(path)) await visit(join(path, name));
  };
  await visit(root);
  return out;
}

/**
 * Runs `work` with the process's umask set to `mask` and restores the previous
 * umask when it settles, whether it resolves or rejects; resolves or rejects
 * as `work` does. The umask is process-wide: do not run other file-creating
 * work concurrently.
 */
export async function withUmask<T>(mask: number, work: () => Promise<T>): Promise<T> {
  const old = process.umask(mask);
  try {
    return await work();
  } finally {
    process.umask(old);
  }
}
