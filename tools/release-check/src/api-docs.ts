import { join } from 'node:path';
import { Application, LogLevel, type TypeDocOptions } from 'typedoc';
import { isLibrary, type PublicPackage } from './workspace.js';

/** What {@link buildApiReference} found. */
export interface ApiReferenceResult {
  /** Errors and warnings typedoc reported (undocumented or unexported symbols, broken links, …). */
  problems: number;
  /** The packages it covered, by name. */
  packages: string[];
}

/**
 * Builds the API reference of every public package that has something to
 * import (a command-only package has no API) from its doc comments, with
 * typedoc and TypeScript 5.9's JavaScript API. Every export must be documented
 * and exported from an entry point, and every `{@link}` must resolve: each
 * miss is reported on the console and counted in `problems`. Writes HTML into
 * `out` unless it is `undefined` (a check only). A package may add options of
 * its own in a typedoc.json beside its package.json. Rejects when typedoc cannot
 * start or convert at all.
 */
export async function buildApiReference(
  packages: readonly PublicPackage[],
  out: string | undefined,
): Promise<ApiReferenceResult> {
  const libraries = packages.filter((p) => isLibrary(p.manifest));
  const validation = {
    notExported: true,
    invalidLink: true,
    notDocumented: true,
    rewrittenLink: true,
  };
  const options: TypeDocOptions = {
    name: '@wal',
    entryPointStrategy: 'packages',
    entryPoints: libraries.map((p) => p.dir),
    readme: 'none',
    validation,
    packageOptions: {
      validation,
      readme: 'none',
      // Exported symbols and their public methods must be documented;
      // properties and accessors (an error's `name`) are left to judgement.
      requiredToBeDocumented: [
        'Enum',
        'EnumMember',
        'Variable',
        'Function',
        'Class',
        'Interface',
        'Method',
        'TypeAlias',
      ],
      // Backends' protected hooks are not part of what users call.
      excludeProtected: true,
      // `tsc -b` type-checks the sources already; typedoc only reads them.
      skipErrorChecking: true,
      excludePrivate: true,
      excludeInternal: true,
      // No links into a hosted repository: the reference stands alone.
      disableSources: true,
    },
    disableSources: true,
    logLevel: 'Warn',
    ...(out === undefined ? { emit: 'none' } : { out }),
  };
  const app = await Application.bootstrapWithPlugins(options);
  app.logger.level = LogLevel.Warn;
  const project = await app.convert();
  if (project === undefined) throw new Error('typedoc could not convert the packages (see above)');
  app.validate(project);
  if (out !== undefined) await app.generateDocs(project, out);
  return {
    problems: app.logger.errorCount + app.logger.warningCount,
    packages: libraries.map((p) => p.name),
  };
}

/**
 * The `docs:api` command over `packages`: with `--check` in `args`, checks the
 * reference only; otherwise also writes it as HTML into `docs/api/` under
 * `root`. Resolves with the exit status: 0 when typedoc found no problem, 1
 * otherwise.
 */
export async function apiDocsCommand(
  args: readonly string[],
  packages: readonly PublicPackage[],
  root: string,
): Promise<number> {
  const out = args.includes('--check') ? undefined : join(root, 'docs', 'api');
  const result = await buildApiReference(packages, out);
  const what = out === undefined ? 'checked' : `written to ${out}`;
  console.log(
    `API reference of ${result.packages.join(', ')}: ${what}, ${result.problems} problem(s)`,
  );
  return result.problems === 0 ? 0 : 1;
}
