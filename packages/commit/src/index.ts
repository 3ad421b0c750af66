/**
 * The contiguous-written watermark and gathering group commit of @wal,
 * fail-stop on a failed sync. See {@link GroupCommit}.
 *
 * @packageDocumentation
 */

export {
  type FlushReport,
  GroupCommit,
  type GroupCommitOptions,
  type SyncToOptions,
} from './group-commit.js';
