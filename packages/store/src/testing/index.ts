/**
 * Test utilities of @wal/store, for our backends and for users testing theirs:
 * the Store conformance suite and the simulated file systems.
 *
 * @packageDocumentation
 */

// The Store conformance suite.
export { ConformanceError, type SuiteOptions, suite } from './suite.js';
