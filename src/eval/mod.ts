/**
 * `evaluation` (the folder is `eval/`): classification metrics and
 * `evaluate`, statistics for comparing runs (confidence intervals,
 * McNemar's test), a model's cost (parameters, MACs, size, latency), and
 * the HTML run report with `metrics.jsonl`.
 *
 * @module
 */

export * from "./metrics.ts";
export * from "./stats.ts";
export * from "./cost.ts";
export * from "./report.ts";
