/**
 * Writing to stdout: backpressure, a closed pipe, and the record formats of
 * `dump` and `tail`.
 */
import type { WalRecord } from '@wal/core';
import { errorCode } from '@wal/errors';
import { CliError, describeError } from './errors.js';

export type RecordFormat = 'hex' | 'utf8' | 'json';

export const RECORD_FORMATS: readonly RecordFormat[] = ['hex', 'utf8', 'json'];

/**
 * Output that waits for the stream to drain, and goes quiet once the reader
 * is gone. Any other failure of the stream (no space left on the device) is
 * kept and rejects the pending write, the next one, or {@link Output.flush}.
 */
export class Output {
  #closed = false;
  #error: Error | undefined;

  constructor(readonly stream: NodeJS.WritableStream = process.stdout) {
    stream.on('error', (error: Error) => this.#failed(error));
  }

  #failed(error: Error): void {
    // The reader went away (`wal dump | head`): stop writing, not an error.
    if (errorCode(error) === 'EPIPE') this.#closed = true;
    else this.#error ??= error;
  }

  /** The kept failure, as the one line `run()` prints. */
  #check(): void {
    if (this.#error !== undefined) {
      throw new CliError(`cannot write the output: ${describeError(this.#error).message}`);
    }
  }

  /** True once the reader closed the pipe. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Writes `text`, resolving once the stream can take more. Rejects with a
   * `CliError` once the stream failed (other than a closed pipe).
   */
  async write(text: string): Promise<void> {
    this.#check();
    if (this.#closed) return;
    if (!this.stream.write(text)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          this.stream.off('drain', done);
          this.stream.off('error', done);
          resolve();
        };
        this.stream.on('drain', done);
        this.stream.on('error', done);
      });
    }
    this.#check();
  }

  async line(text: string): Promise<void> {
    await this.write(`${text}\n`);
  }

  /**
   * Resolves once everything written so far has reached the stream's
   * destination; rejects with a `CliError` if the stream failed.
   */
  async flush(): Promise<void> {
    if (!this.#closed && this.#error === undefined) {
      await new Promise<void>((resolve) => {
        this.stream.write('', (error?: Error | null) => {
          if (error) this.#failed(error);
          resolve();
        });
      });
    }
    this.#check();
  }
}

const decoder = new TextDecoder('utf-8');

/** Escapes a string to one line: backslash, control characters as `\n`, `\t`, `\xNN`. */
function escapeLine(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: escaping control characters is the point
  return text.replace(/[\\\x00-\x1f\x7f]/g, (char) => {
    switch (char) {
      case '\\':
        return '\\\\';
      case '\n':
        return '\\n';
      case '\r':
        return '\\r';
      case '\t':
        return '\\t';
      default:
        return `\\x${char.charCodeAt(0).toString(16).padStart(2, '0')}`;
    }
  });
}

/** One line for `record` in `format` (see the README for each). */
export function formatRecord(record: WalRecord, format: RecordFormat): string {
  const { lsn, payload } = record;
  if (format === 'json') {
    return JSON.stringify({
      lsn,
      length: payload.length,
      payload: Buffer.from(payload.buffer, payload.byteOffset, payload.length).toString('base64'),
    });
  }
  const text =
    format === 'hex'
      ? Buffer.from(payload.buffer, payload.byteOffset, payload.length).toString('hex')
      : escapeLine(decoder.decode(payload));
  return `${lsn}\t${payload.length}\t${text}`;
}
