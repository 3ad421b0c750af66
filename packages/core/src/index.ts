/**
 * @wal/core — the log. So far: the format primitives of docs/FORMAT.md (the
 * CRC-32C and the record frame). The log itself (`Wal`) is being written.
 *
 * @packageDocumentation
 */
export { crc32c } from './crc32c.js';
export { encodeFrame, HEADER_SIZE, MAX_FRAME_LENGTH } from './frame.js';
