/**
 * `pnpm docs:api [--check]`: writes the API reference of the public packages
 * into docs/api/ (ignored by git), or with `--check` only checks it. Exits with
 * status 1 when an export is undocumented or a link is broken.
 */
import { apiDocsCommand } from './api-docs.js';
import { publicPackages, REPOSITORY_ROOT } from './workspace.js';

process.exitCode = await apiDocsCommand(process.argv.slice(2), publicPackages(), REPOSITORY_ROOT);
