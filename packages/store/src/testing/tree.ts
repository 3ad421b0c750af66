/**
 * A snapshot of a directory tree on the real file system, for tests that
 * prove an operation changed nothing: every entry's path, type, size,
 * modification and change times (nanoseconds) and, for files, bytes.
 */
import { lstat, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

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
