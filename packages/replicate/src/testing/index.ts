/**
 * Test support for @wal/replicate: a real JetStream cluster of `nats-server`
 * processes on loopback, for this package's tests and for users' own.
 *
 * @packageDocumentation
 */
export { type ClusterOptions, NatsCluster, requireNatsServer } from './cluster.js';
