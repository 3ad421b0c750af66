/**
 * Writing a table file as it is built (docs/LSM-FORMAT.md §10 step 1, §11
 * step 1): created exclusively, blocks written as they fill (at most
 * {@link WRITE_CHUNK} bytes of finished blocks held), then the rest,
 * fdatasync, close. A writer that fails or is abandoned leaves a file no
 * manifest edit names: an orphan, deleted at the next open (§9).
 */
import { isWalError } from '@wal/errors';
import { type Fs, type FsFile, writeAll } from '@wal/store';
import { ioError } from './files.js';
import type { RangeTombstone } from './range-delete.js';
import { TableBuilder, type TableLayout, type TableSummary } from './table.js';

/** Finished blocks held before they are written out, in bytes. */
export const WRITE_CHUNK = 64 * 1024;

const noop = (): void => {};

/** A table file being written. */
export class TableWriter {
  readonly #fs: Fs;
  readonly #file: FsFile;
  readonly #builder: TableBuilder;
  #written = 0;
  #closed = false;

  private constructor(
    fs: Fs,
    file: FsFile,
    readonly path: string,
    layout: TableLayout,
  ) {
    this.#fs = fs;
    this.#file = file;
    this.#builder = new TableBuilder(layout);
  }

  /** Creates the file exclusively. Rejects with `WAL_IO`/`WAL_NO_SPACE`. */
  static async create(fs: Fs, path: string, layout: TableLayout): Promise<TableWriter> {
    try {
      return new TableWriter(fs, await fs.open(path, 'createExclusive'), path, layout);
    } catch (error) {
      throw ioError(error, `creating table ${path}`);
    }
  }

  /**
   * Adds an entry (in internal-key order): internal key `key[0, keyLength)`,
   * value `value[valueStart, valueEnd)`, both copied (the caller may reuse
   * its buffers once this returns). Once finished blocks reach
   * {@link WRITE_CHUNK} bytes, writes them out and returns the write's
   * promise (await it before adding more); else returns `undefined`, with no
   * promise to wait for. On rejection the file is closed.
   */
  add(...entry: Parameters<TableBuilder['add']>): Promise<void> | undefined {
    this.#builder.add(...entry);
    return this.#builder.pending >= WRITE_CHUNK ? this.#write(this.#builder.take()) : undefined;
  }

  /**
   * Finishes the table with `ranges`, writes the rest, fdatasyncs and closes
   * the file; resolves with its size and summary. Rejects with
   * `WAL_IO`/`WAL_NO_SPACE` (the file closed).
   */
  async finish(
    ranges: readonly RangeTombstone[],
  ): Promise<{ size: number; summary: TableSummary }> {
    const { rest, size, summary } = this.#builder.finish(ranges);
    await this.#write(rest);
    try {
      await this.#fs.fdatasync(this.#file);
    } catch (error) {
      await this.abandon();
      throw ioError(error, `fdatasync of table ${this.path}`);
    }
    this.#closed = true;
    try {
      await this.#fs.close(this.#file);
    } catch (error) {
      throw ioError(error, `closing table ${this.path}`);
    }
    return { size, summary };
  }

  /** Closes the file, ignoring errors; it stays an orphan. Idempotent. */
  async abandon(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#fs.close(this.#file).catch(noop);
  }

  async #write(bytes: Uint8Array): Promise<void> {
    try {
      await writeAll(this.#fs, this.#file, bytes, this.#written);
      this.#written += bytes.length;
    } catch (error) {
      await this.abandon();
      throw isWalError(error) ? error : ioError(error, `writing table ${this.path}`);
    }
  }
}
