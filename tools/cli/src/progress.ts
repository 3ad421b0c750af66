/**
 * A one-line progress bar for scans, drawn on a terminal only.
 */

/** What the bar writes to: a stream with a column count, like `process.stderr`. */
export interface ProgressStream {
  readonly isTTY?: boolean;
  readonly columns?: number;
  write(text: string): boolean;
}

/** Below this many bytes a scan is quick: no bar. */
export const PROGRESS_THRESHOLD = 8 * 1024 * 1024;

export class Progress {
  #last = 0;
  #drawn = false;

  /**
   * @param stream where to draw (nothing is drawn unless it is a TTY)
   * @param start first byte of the scan
   * @param end one past its last byte
   * @param label text before the bar
   * @param now the clock, for redraw throttling
   */
  constructor(
    readonly stream: ProgressStream,
    readonly start: number,
    readonly end: number,
    readonly label: string,
    readonly now: () => number = Date.now,
  ) {}

  /** True when the bar will be drawn at all. */
  get enabled(): boolean {
    return this.stream.isTTY === true && this.end - this.start >= PROGRESS_THRESHOLD;
  }

  /** Records that the scan reached `position`; redraws at most ten times a second. */
  update(position: number): void {
    if (!this.enabled) return;
    const time = this.now();
    if (this.#drawn && time - this.#last < 100) return;
    this.#last = time;
    this.#drawn = true;
    this.stream.write(`\r${this.render(position)}`);
  }

  /** The bar's text for `position`. */
  render(position: number): string {
    const total = this.end - this.start;
    const done = Math.min(Math.max(position - this.start, 0), total);
    const fraction = total === 0 ? 1 : done / total;
    const width = Math.max(10, Math.min(40, (this.stream.columns ?? 80) - this.label.length - 20));
    const filled = Math.round(fraction * width);
    const percent = (fraction * 100).toFixed(0).padStart(3);
    return `${this.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${percent}%`;
  }

  /** Erases the bar, if drawn. */
  done(): void {
    if (!this.#drawn) return;
    this.stream.write('\r\x1b[2K');
    this.#drawn = false;
  }
}
