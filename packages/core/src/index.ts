/**
 * @wal/core — not implemented yet; this entry point exists so the workspace
 * builds and the package name is reserved. See the repository README.
 *
 * @packageDocumentation
 */
export {};
