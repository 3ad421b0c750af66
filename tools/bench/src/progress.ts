/**
 * A one-line progress bar on stderr, drawn only when stderr is a terminal.
 * Work is weighed in estimated seconds, so the bar and the time left follow
 * the expected duration rather than the number of steps.
 */
export class Progress {
  readonly #total: number;
  readonly #tty: boolean;
  readonly #started = Date.now();
  #done = 0;
  #label = '';
  #timer: NodeJS.Timeout | undefined;

  constructor(totalWeight: number) {
    this.#total = Math.max(totalWeight, 1e-9);
    this.#tty = process.stderr.isTTY === true;
    if (this.#tty) {
      this.#timer = setInterval(() => this.#draw(), 250);
      this.#timer.unref();
    }
  }

  /** Starts a step called `label`. */
  step(label: string): void {
    this.#label = label;
    this.#draw();
  }

  /** Marks `weight` of the work done. */
  advance(weight: number): void {
    this.#done += weight;
    this.#draw();
  }

  /** Prints a line above the bar (or alone, without a terminal). */
  log(line: string): void {
    if (this.#tty) process.stderr.write('\r\x1b[2K');
    process.stderr.write(`${line}\n`);
    this.#draw();
  }

  finish(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    if (this.#tty) process.stderr.write('\r\x1b[2K');
  }

  #draw(): void {
    if (!this.#tty) return;
    const fraction = Math.min(1, this.#done / this.#total);
    const width = 28;
    const filled = Math.round(fraction * width);
    const elapsed = (Date.now() - this.#started) / 1000;
    const left = fraction > 0.02 ? (elapsed / fraction) * (1 - fraction) : Number.NaN;
    const eta = Number.isFinite(left) ? ` ~${formatSeconds(left)} left` : '';
    const bar = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(fraction * 100).toFixed(0).padStart(3)}% ${formatSeconds(elapsed)}${eta}  ${this.#label}`;
    const columns = process.stderr.columns || 100;
    process.stderr.write(`\r\x1b[2K${bar.slice(0, Math.max(10, columns - 1))}`);
  }
}

function formatSeconds(seconds: number): string {
  const s = Math.round(seconds);
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}
