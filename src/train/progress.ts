/**
 * A progress display for training phases: on a terminal, one bar redrawn in
 * place (batches done / total, it/s, ETA, running loss and accuracy); when
 * output is not a terminal (a log file, CI), a few plain lines instead.
 *
 * @module
 */

/** How progress is shown. */
export type ProgressMode = "auto" | "bar" | "lines" | "none";

/** Running figures shown next to the bar. */
export interface ProgressFigures {
  /** Running mean loss. */
  loss?: number;
  /** Running accuracy. */
  acc?: number;
}

function clock(seconds: number): string {
  if (!Number.isFinite(seconds)) return "--:--";
  const s = Math.max(0, Math.round(seconds));
  const m = Math.floor(s / 60);
  const h = Math.floor(m / 60);
  const mm = String(m % 60).padStart(2, "0");
  const ss = String(s % 60).padStart(2, "0");
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

/**
 * One phase's progress.
 *
 * @example Plain lines, as when output is not a terminal
 * ```ts
 * import { train } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * const lines: string[] = [];
 * const p = new train.Progress("train", 4, {
 *   mode: "lines",
 *   write: (l) => lines.push(l),
 * });
 * for (let i = 0; i < 4; i++) p.tick({ loss: 0.5, acc: 0.75 });
 * p.done();
 * assert.deepEqual(lines, []); // short phases print nothing more
 * assert.equal(p.completed, 4);
 * ```
 */
export class Progress {
  /** The phase name. */
  readonly label: string;
  /** Batches in the phase. */
  readonly total: number;
  /** The resolved mode. */
  readonly mode: "bar" | "lines" | "none";
  #done = 0;
  #start = performance.now();
  #lastDraw = performance.now();
  #nextLine: number;
  #write: (s: string) => void;
  #figures: ProgressFigures = {};

  /**
   * @param label The phase, e.g. `"train"`.
   * @param total Batches in the phase.
   * @param options `mode` (default `"auto"`: a bar on a terminal, lines
   * otherwise) and `write` (for lines; the bar goes to stderr).
   */
  constructor(
    label: string,
    total: number,
    options: { mode?: ProgressMode; write?: (line: string) => void } = {},
  ) {
    this.label = label;
    this.total = total;
    const mode = options.mode ?? "auto";
    this.mode = mode === "auto" ? (isTerminal() ? "bar" : "lines") : mode;
    this.#write = options.write ?? ((l) => console.log(l));
    this.#nextLine = this.#lineStep();
  }

  #lineStep(): number {
    return Math.max(1, Math.ceil(this.total / 4));
  }

  /** Batches done so far. */
  get completed(): number {
    return this.#done;
  }

  /** @returns Seconds since the phase started. */
  elapsed(): number {
    return (performance.now() - this.#start) / 1000;
  }

  /** @returns Batches per second so far. */
  rate(): number {
    const e = this.elapsed();
    return e > 0 ? this.#done / e : 0;
  }

  #text(): string {
    const rate = this.rate();
    const eta = rate > 0 ? (this.total - this.#done) / rate : Infinity;
    const f = this.#figures;
    const figs = (f.loss !== undefined ? ` loss ${f.loss.toFixed(4)}` : "") +
      (f.acc !== undefined ? ` acc ${f.acc.toFixed(4)}` : "");
    return `${this.label} ${this.#done}/${this.total} ${
      rate.toFixed(2)
    } it/s elapsed ${clock(this.elapsed())} ETA ${clock(eta)}${figs}`;
  }

  /**
   * Records one more batch.
   *
   * @param figures The running loss and accuracy.
   */
  tick(figures: ProgressFigures = {}): void {
    this.#done++;
    this.#figures = figures;
    if (this.mode === "bar") {
      const now = performance.now();
      if (now - this.#lastDraw < 100 && this.#done < this.total) return;
      this.#lastDraw = now;
      const width = 24;
      const filled = Math.round(
        (width * this.#done) / Math.max(1, this.total),
      );
      const bar = "#".repeat(filled) + ".".repeat(width - filled);
      writeErr(`\r\x1b[2K${this.label} [${bar}] ${this.#text()}`);
    } else if (this.mode === "lines" && this.#done >= this.#nextLine) {
      // a quarter done, and at least 5 s since the last line
      this.#nextLine += this.#lineStep();
      const now = performance.now();
      if (this.#done < this.total && now - this.#lastDraw >= 5000) {
        this.#lastDraw = now;
        this.#write(this.#text());
      }
    }
  }

  /** Ends the phase: clears the bar, or writes a final line (phases over 5 s). */
  done(): void {
    if (this.mode === "bar") writeErr("\r\x1b[2K");
    else if (this.mode === "lines" && this.elapsed() >= 5) {
      this.#write(this.#text());
    }
  }
}

function isTerminal(): boolean {
  try {
    return Deno.stderr.isTerminal();
  } catch {
    return false;
  }
}

const encoder = new TextEncoder();

function writeErr(s: string): void {
  try {
    Deno.stderr.writeSync(encoder.encode(s));
  } catch {
    // stderr closed: nothing to show
  }
}
