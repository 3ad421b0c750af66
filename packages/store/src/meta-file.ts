/**
 * The on-disk encoding of a store's metadata map, shared by the file
 * backends. Internal to @wal/store; the layout is documented in the README.
 *
 * ```
 * offset size
 *      0    4  magic "WALM"
 *      4    4  version, u32 LE (1)
 *      8    4  body length in bytes, u32 LE
 *     12    4  CRC-32C (Castagnoli), u32 LE, of bytes 0..12 followed by the body
 *     16    n  body: UTF-8 JSON object whose values are strings, finite numbers or booleans
 * ```
 */
import { crc32c } from '@node-rs/crc32';
import { CorruptionError } from '@wal/errors';
import { MAX_META_BYTES, type MetaValue, STORE_META_PREFIX, type StoreMeta } from './store.js';
import { setMetaKey } from './store-base.js';

const MAGIC = 0x4d4c4157; // "WALM" read as u32 LE
const VERSION = 1;
const HEADER = 16;
/** The store's own keys ride in the same map; allow them room beyond the caller's limit. */
const MAX_BODY = MAX_META_BYTES + 4096;
/** Largest metadata file {@link decodeMeta} accepts, in bytes: a larger one is damaged. */
export const MAX_META_FILE_SIZE = HEADER + MAX_BODY;

/** Encodes `meta` as a metadata file. */
export function encodeMeta(meta: StoreMeta): Uint8Array {
  const body = Buffer.from(JSON.stringify(meta), 'utf8');
  const out = Buffer.alloc(HEADER + body.length);
  out.writeUInt32LE(MAGIC, 0);
  out.writeUInt32LE(VERSION, 4);
  out.writeUInt32LE(body.length, 8);
  body.copy(out, HEADER);
  out.writeUInt32LE(checksum(out), 12);
  return out;
}

function checksum(file: Buffer): number {
  return crc32c(file.subarray(HEADER), crc32c(file.subarray(0, 12)));
}

/** Decodes a metadata file; `CorruptionError` (`WAL_CORRUPTION`) naming `path` when damaged. */
export function decodeMeta(bytes: Uint8Array, path: string): StoreMeta {
  const file = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const damaged = (why: string) => new CorruptionError(`metadata file ${path} is damaged: ${why}`);
  if (file.length < HEADER) throw damaged(`${file.length} bytes, shorter than its header`);
  if (file.readUInt32LE(0) !== MAGIC) throw damaged('bad magic');
  const version = file.readUInt32LE(4);
  if (version !== VERSION) throw damaged(`unknown version ${version}`);
  const length = file.readUInt32LE(8);
  if (length > MAX_BODY || HEADER + length !== file.length) {
    throw damaged(`body length ${length} does not match the file size ${file.length}`);
  }
  if (file.readUInt32LE(12) !== checksum(file)) throw damaged('checksum mismatch');
  let value: unknown;
  try {
    value = JSON.parse(file.toString('utf8', HEADER));
  } catch {
    throw damaged('body is not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw damaged('body is not an object');
  }
  const meta: Record<string, MetaValue> = {};
  for (const [key, item] of Object.entries(value)) {
    if (typeof item !== 'string' && typeof item !== 'number' && typeof item !== 'boolean') {
      throw damaged(`value of ${key} is not a scalar`);
    }
    setMetaKey(meta, key, item);
  }
  return Object.freeze(meta);
}

/** Splits a decoded map into the store's keys and the caller's. */
export function splitMeta(meta: StoreMeta): { own: StoreMeta; user: StoreMeta } {
  const own: Record<string, MetaValue> = {};
  const user: Record<string, MetaValue> = {};
  for (const [key, value] of Object.entries(meta)) {
    setMetaKey(key.startsWith(STORE_META_PREFIX) ? own : user, key, value);
  }
  return { own, user };
}
