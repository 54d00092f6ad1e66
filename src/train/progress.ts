/**
 * A progress display for training phases: on a terminal, one line redrawn
 * in place and fitted to the terminal's width (label, percent, bar, batches
 * done / total, img/s or it/s, ETA, running loss and accuracy while they
 * fit); when output is not a terminal (a log file, CI), a few plain lines
 * instead. `formatProgress` draws the line.
 *
 * @module
 */

// distributed: under mpirun only rank 0 shows progress
import { isMainRank } from "../distributed/collectives.ts";

/** How progress is shown. */
export type ProgressMode = "auto" | "bar" | "lines" | "none";

/** Running figures shown next to the bar. */
export interface ProgressFigures {
  /** Running mean loss. */
  loss?: number;
  /** Running accuracy. */
  acc?: number;
  /**
   * Images (samples) in the batch just done. When given, the rate is shown
   * in img/s rather than it/s (batches per second).
   */
  items?: number;
}

/** What `formatProgress` draws: one phase at one moment. */
export interface ProgressState {
  /** The phase, e.g. `"train"`; shown once. */
  label: string;
  /** Batches done. */
  done: number;
  /** Batches in the phase. */
  total: number;
  /** Seconds since the phase started. */
  elapsed: number;
  /** Images done so far; when above 0 the rate is in img/s, else it/s. */
  items?: number;
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

function rateText(n: number, unit: string): string {
  const digits = n >= 100 ? 0 : n >= 10 ? 1 : 2;
  return `${n.toFixed(digits)} ${unit}`;
}

/**
 * Formats one progress line, fitted to `width` columns: the label once, a
 * bar when there is room for one of at least 10 cells, `done/total`, the
 * rate (img/s when `items` is known, else it/s), the ETA, then the running
 * loss and accuracy while they fit. What does not fit is dropped in this
 * order: accuracy, loss, the bar, the percentage; then a long label is
 * shortened and a line still too long is cut. The line
 * is at most `width - 1` characters, so that the cursor never reaches the
 * last column and a terminal never wraps it.
 *
 * @param state The phase's figures.
 * @param options `width` in columns (default 80); `bar: false` for the
 * plain lines written to logs, which also show the elapsed time.
 * @returns The line, without a line break.
 */
export function formatProgress(
  state: ProgressState,
  options: { width?: number; bar?: boolean } = {},
): string {
  const { label, done, total, elapsed } = state;
  const max = Math.max(1, Math.floor(options.width ?? 80) - 1);
  const items = state.items ?? 0;
  const perSecond = elapsed > 0 ? (items > 0 ? items : done) / elapsed : 0;
  const batchRate = elapsed > 0 ? done / elapsed : 0;
  const eta = batchRate > 0 ? (total - done) / batchRate : Infinity;
  const rate = rateText(perSecond, items > 0 ? "img/s" : "it/s");
  const figures = [
    ...(state.loss !== undefined ? [`loss ${state.loss.toFixed(4)}`] : []),
    ...(state.acc !== undefined ? [`acc ${state.acc.toFixed(4)}`] : []),
  ];
  const count = `${done}/${total}`;
  if (options.bar === false) {
    const line = [
      label,
      count,
      rate,
      `elapsed ${clock(elapsed)}`,
      `ETA ${clock(eta)}`,
      ...figures,
    ].join(" ");
    return line.length > max ? line.slice(0, max) : line;
  }
  const pct = `${
    String(Math.floor((100 * done) / Math.max(1, total))).padStart(3)
  }%`;
  for (let keep = figures.length; keep >= 0; keep--) {
    const tail = [count, rate, `ETA ${clock(eta)}`, ...figures.slice(0, keep)]
      .join(" ");
    const cells = Math.min(
      30,
      max - (label.length + pct.length + tail.length + 5),
    );
    if (cells >= 10) {
      const filled = Math.min(
        cells,
        Math.round((cells * done) / Math.max(1, total)),
      );
      const bar = "#".repeat(filled) + ".".repeat(cells - filled);
      return `${label} ${pct} [${bar}] ${tail}`;
    }
  }
  for (let keep = figures.length; keep >= 0; keep--) {
    const line = [
      label,
      pct.trim(),
      count,
      rate,
      `ETA ${clock(eta)}`,
      ...figures.slice(0, keep),
    ].join(" ");
    if (line.length <= max) return line;
  }
  // then the percentage, then a long label gives way; then the line is cut
  const core = [count, rate, `ETA ${clock(eta)}`].join(" ");
  if (label.length + 1 + core.length <= max) return `${label} ${core}`;
  const room = max - core.length - 1;
  const short = room >= 2 ? label.slice(0, room - 1) + "…" : label;
  return `${short} ${core}`.slice(0, max);
}

/** The terminal's width in columns, or 80 when it is not known. */
export function terminalWidth(): number {
  try {
    const { columns } = Deno.consoleSize();
    return columns > 0 ? columns : 80;
  } catch {
    return 80;
  }
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
  #items = 0;

  /**
   * Starts a phase's display.
   *
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
    // distributed: under mpirun only rank 0 shows progress
    const mode = isMainRank() ? options.mode ?? "auto" : "none";
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

  /**
   * The time since the phase started.
   *
   * @returns Seconds since the phase started.
   */
  elapsed(): number {
    return (performance.now() - this.#start) / 1000;
  }

  /**
   * The mean rate so far.
   *
   * @returns Batches per second so far.
   */
  rate(): number {
    const e = this.elapsed();
    return e > 0 ? this.#done / e : 0;
  }

  #state(): ProgressState {
    const { loss, acc } = this.#figures;
    return {
      label: this.label,
      done: this.#done,
      total: this.total,
      elapsed: this.elapsed(),
      items: this.#items,
      loss,
      acc,
    };
  }

  #text(): string {
    return formatProgress(this.#state(), { bar: false, width: Infinity });
  }

  /**
   * Records one more batch.
   *
   * @param figures The running loss and accuracy, and the images in the
   * batch (for a rate in img/s).
   */
  tick(figures: ProgressFigures = {}): void {
    this.#done++;
    this.#figures = figures;
    this.#items += figures.items ?? 0;
    if (this.mode === "bar") {
      const now = performance.now();
      if (now - this.#lastDraw < 100 && this.#done < this.total) return;
      this.#lastDraw = now;
      const line = formatProgress(this.#state(), { width: terminalWidth() });
      writeErr(`\r\x1b[2K${line}`);
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
