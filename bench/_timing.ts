/**
 * The timing loop the side-by-side benchmarks share (and their PyTorch
 * scripts mirror in bench/_torch_common.py): `warmup` untimed calls, then
 * calls until both `minTime` seconds and `minIters` calls have passed.
 *
 * @module
 */

/**
 * Seconds per call of `fn`.
 *
 * @param fn The work.
 * @param minTime Seconds to time at least.
 * @param minIters Calls to time at least.
 * @param warmup Untimed calls first.
 * @returns Mean seconds per timed call.
 */
export function timeit(
  fn: () => void,
  minTime: number,
  minIters = 2,
  warmup = 1,
): number {
  for (let i = 0; i < warmup; i++) fn();
  let n = 0;
  const t0 = performance.now();
  while (true) {
    fn();
    n++;
    const el = (performance.now() - t0) / 1000;
    if (n >= minIters && el >= minTime) return el / n;
  }
}
