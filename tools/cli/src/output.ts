/**
 * Writing to stdout: backpressure, a closed pipe, and the record formats of
 * `dump` and `tail`.
 */
import type { WalRecord } from '@wal/core';
import { errorCode } from '@wal/errors';

export type RecordFormat = 'hex' | 'utf8' | 'json';

export const RECORD_FORMATS: readonly RecordFormat[] = ['hex', 'utf8', 'json'];

/** Output that waits for the stream to drain, and goes quiet once the reader is gone. */
export class Output {
  #closed = false;

  constructor(readonly stream: NodeJS.WritableStream = process.stdout) {
    stream.on('error', (error: Error) => {
      // The reader went away (`wal dump | head`): stop writing, not an error.
      if (errorCode(error) === 'EPIPE') this.#closed = true;
      else throw error;
    });
  }

  /** True once the reader closed the pipe. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Writes `text`, resolving once the stream can take more. */
  async write(text: string): Promise<void> {
    if (this.#closed) return;
    if (this.stream.write(text)) return;
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

  async line(text: string): Promise<void> {
    await this.write(`${text}\n`);
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
