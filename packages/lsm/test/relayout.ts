/**
 * Rewrites a table with its data blocks placed elsewhere in the file: the
 * same blocks, a new index naming where they now are, a new footer, every
 * CRC valid. What a table with a hostile (or wrongly written) index looks
 * like when the checksums cannot tell.
 */
import assert from 'node:assert/strict';
import { crc32c } from '@wal/core';
import { BLOCK_TRAILER_SIZE, BlockBuilder, decodeBlock, writeBlock } from '../src/block.js';
import { getU32, getU64, Output, putU32, putU64, Reader, TRAILER_SIZE } from '../src/coding.js';
import { FOOTER_SIZE, TABLE_VERSION, TABLE_VERSION_RANGES } from '../src/table.js';

/** Bytes of a version-2 table's range-deletion handle, before the 48-byte footer. */
const RANGE_HANDLE = 12;

/** A data block of a table: its bytes (contents ‖ trailer) and its index key. */
export interface RawBlock {
  readonly raw: Uint8Array;
  readonly key: Uint8Array;
}

/** Where the data blocks go: the bytes before the filter block, and each block's handle in them. */
export interface Placement {
  readonly data: Uint8Array;
  readonly handles: readonly { readonly offset: number; readonly size: number }[];
  /** Index keys, when not the blocks' own. */
  readonly keys?: readonly Uint8Array[];
  /** Contents of the index block, when not the one built from the handles and keys. */
  readonly index?: Uint8Array;
  /** Contents of the range-deletion block (version 2), when not the table's own. */
  readonly ranges?: Uint8Array;
}

/** The data blocks of `table` (as `buildTable` makes it, either version), in index order. */
export function dataBlocks(table: Uint8Array): RawBlock[] {
  const footer = table.subarray(table.length - FOOTER_SIZE);
  assert.ok([TABLE_VERSION, TABLE_VERSION_RANGES].includes(getU32(footer, 32)));
  const indexOffset = getU64(footer, 0);
  const index = decodeBlock(
    table.subarray(indexOffset, indexOffset + getU32(footer, 8)),
    TRAILER_SIZE,
  );
  return index.keys.map((key, i) => {
    const handle = index.values[i]!;
    const reader = new Reader(handle, 0, handle.length);
    const offset = reader.varint('offset');
    const size = reader.varint('size');
    return { raw: table.slice(offset, offset + size + BLOCK_TRAILER_SIZE), key: key.slice() };
  });
}

/** The data blocks end to end, as a table writer lays them out. */
export function endToEnd(blocks: readonly RawBlock[]): Placement {
  const out = new Output();
  const handles = blocks.map(({ raw }) => {
    const offset = out.length;
    out.bytes(raw);
    return { offset, size: raw.length - BLOCK_TRAILER_SIZE };
  });
  return { data: out.view().slice(), handles };
}

/**
 * `table` with its data blocks placed as `placement` says, its filter (and,
 * in version 2, its range-deletion block after it), a new index and footer.
 */
export function relayout(table: Uint8Array, place: (blocks: RawBlock[]) => Placement): Uint8Array {
  const blocks = dataBlocks(table);
  const footer = table.subarray(table.length - FOOTER_SIZE);
  const ranged = getU32(footer, 32) === TABLE_VERSION_RANGES;
  const filterAt = getU64(footer, 12);
  const filterSize = getU32(footer, 20);
  const placement = place(blocks);
  const { data, handles, keys = blocks.map((b) => b.key) } = placement;
  const out = new Output();
  out.bytes(data);
  const filterOffset = out.length;
  out.bytes(table.subarray(filterAt, filterAt + filterSize + BLOCK_TRAILER_SIZE));
  const rangeHandle = table.length - FOOTER_SIZE - RANGE_HANDLE;
  const rangeAt = ranged ? getU64(table, rangeHandle) : 0;
  let rangeSize = ranged ? getU32(table, rangeHandle + 8) : 0;
  const rangeOffset = out.length;
  if (ranged && placement.ranges !== undefined) {
    writeBlock(out, placement.ranges);
    rangeSize = placement.ranges.length;
  } else if (ranged) {
    out.bytes(table.subarray(rangeAt, rangeAt + rangeSize + BLOCK_TRAILER_SIZE));
  }
  const index = new BlockBuilder(1);
  for (const [i, { offset, size }] of handles.entries()) {
    const handle = new Output(16);
    handle.varint(offset);
    handle.varint(size);
    const key = keys[i]!;
    index.add(key, handle.view(), key.length, 0, handle.length);
  }
  const indexOffset = out.length;
  const contents = placement.index ?? index.finish();
  writeBlock(out, contents);
  const footerStart = out.length;
  if (ranged) {
    const head = out.reserve(RANGE_HANDLE);
    putU64(head, out.length, rangeOffset);
    putU32(head, out.length + 8, rangeSize);
    out.length += RANGE_HANDLE;
  }
  const at = out.length;
  const tail = out.reserve(FOOTER_SIZE);
  tail.set(footer, at);
  putU64(tail, at, indexOffset);
  putU32(tail, at + 8, contents.length);
  putU64(tail, at + 12, filterOffset);
  putU32(tail, at + 20, filterSize);
  putU32(tail, at + 36, crc32c(tail.subarray(footerStart, at + 36)));
  out.length += FOOTER_SIZE;
  return out.view().slice();
}
