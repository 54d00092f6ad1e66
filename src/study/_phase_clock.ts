/**
 * Where a study's wall time goes: a clock that each phase (teacher
 * training, the students, evaluation) is charged to, and loaders wrapped
 * so that the time spent waiting for each batch (decoding, resizing and
 * augmenting on the main thread, or waiting for the Workers) is charged to
 * the phase's data time.
 *
 * @module
 */

import type { Loader } from "../data/batch.ts";
import type { PhaseSeconds } from "./distillation.ts";

/** Charges wall time and batch waits to the phase that is running. */
export class PhaseClock {
  readonly #phases = new Map<string, PhaseSeconds>();
  #current: string | null = null;
  #since = 0;

  /**
   * Starts charging to `name` (ending the phase that ran).
   *
   * @param name The phase.
   */
  start(name: string): void {
    this.stop();
    this.#current = name;
    this.#since = performance.now();
    if (!this.#phases.has(name)) {
      this.#phases.set(name, { seconds: 0, dataSeconds: 0 });
    }
  }

  /** Ends the running phase. */
  stop(): void {
    if (this.#current === null) return;
    this.#phases.get(this.#current)!.seconds +=
      (performance.now() - this.#since) / 1000;
    this.#current = null;
  }

  /**
   * Charges a batch wait to the running phase (to none when none runs).
   *
   * @param ms Milliseconds waited.
   */
  addData(ms: number): void {
    if (this.#current === null) return;
    this.#phases.get(this.#current)!.dataSeconds += ms / 1000;
  }

  /**
   * The phases so far, in the order they first ran.
   *
   * @returns Seconds by phase.
   */
  phases(): Record<string, PhaseSeconds> {
    return Object.fromEntries(
      [...this.#phases].map(([k, v]) => [k, { ...v }]),
    );
  }

  /**
   * `loader` with every wait for a batch charged to this clock. Everything
   * else (its length, its other members) is the loader's own.
   *
   * @param loader The loader to watch.
   * @returns The same loader, watched.
   */
  watch<L extends Loader>(loader: L): L;
  watch<L extends Loader>(loader: L | null): L | null;
  watch<L extends Loader>(loader: L | null): L | null {
    if (!loader) return loader;
    // deno-lint-ignore no-this-alias
    const clock = this;
    return new Proxy(loader, {
      get(target, prop) {
        if (prop === Symbol.asyncIterator) {
          return () => {
            const it = target[Symbol.asyncIterator]();
            const timed: AsyncIterator<unknown> = {
              async next() {
                const t0 = performance.now();
                try {
                  return await it.next();
                } finally {
                  clock.addData(performance.now() - t0);
                }
              },
            };
            if (it.return) timed.return = (v?: unknown) => it.return!(v);
            if (it.throw) timed.throw = (e?: unknown) => it.throw!(e);
            return timed;
          };
        }
        const v = Reflect.get(target, prop, target);
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
  }
}
