/**
 * @wal/replicate — ships a @wal/core log to a NATS JetStream stream: a
 * `replicated` durability level (durable locally and stored by a quorum of
 * the stream's replicas) and restore from the stream alone. See the package
 * README for the guarantees and docs/DURABILITY.md for what survives what.
 *
 * @packageDocumentation
 */

export {
  Follower,
  type FollowerLag,
  type FollowerOptions,
  type FollowerStats,
} from './follower.js';
export {
  COUNT_HEADER,
  CRC_HEADER,
  EPOCH_HEADER,
  FENCE_HEADER,
  LENGTH_HEADER,
  LSN_HEADER,
  PART_HEADER,
} from './message.js';
export { Replicator, type ReplicatorOptions, type ReplicatorStats } from './replicator.js';
export { type RestoreOptions, type RestoreReport, restore } from './restore.js';
export type { StreamTarget } from './stream.js';
