import assert from "node:assert/strict";
import {
  formatProgress,
  Progress,
  type ProgressState,
  terminalWidth,
} from "../../src/train/progress.ts";

const mid: ProgressState = {
  label: "train",
  done: 21,
  total: 32,
  elapsed: 7,
  items: 21 * 32,
  loss: 0.41234,
  acc: 0.8125,
};

for (const width of [40, 80, 120]) {
  Deno.test(`formatProgress: at ${width} columns the line fits, names its phase once and shows rate and ETA`, () => {
    for (
      const state of [
        mid,
        { ...mid, items: undefined },
        { ...mid, label: "transfer" },
        { ...mid, done: 0, elapsed: 0 },
        { ...mid, done: 32, total: 32 },
      ]
    ) {
      const line = formatProgress(state, { width });
      assert.ok(line.length < width, `${line.length} ≥ ${width}: ${line}`);
      assert.equal(line.split(state.label).length - 1, 1, line);
      assert.ok(line.startsWith(`${state.label} `), line);
      assert.match(line, / \d+(\.\d+)? (img|it)\/s /, line);
      assert.match(line, / ETA (\d\d:\d\d|--:--)/, line);
      assert.ok(!line.includes("\n"), line);
    }
  });
}

Deno.test("formatProgress: rate is img/s from the images done, ETA from the batches left", () => {
  const line = formatProgress(mid, { width: 120 });
  // 672 images in 7 s; 11 batches left at 3 batches/s
  assert.match(line, /^train {2}65% \[#+\.+\] 21\/32 96\.0 img\/s ETA 00:04 /);
  assert.match(line, /loss 0\.4123 acc 0\.8125$/);
  assert.match(
    formatProgress({ ...mid, items: undefined }, { width: 120 }),
    / 21\/32 3\.00 it\/s ETA 00:04 /,
  );
});

Deno.test("formatProgress: a narrow terminal drops the figures, then the bar, before cutting", () => {
  const wide = formatProgress(mid, { width: 120 });
  const at40 = formatProgress(mid, { width: 40 });
  assert.match(wide, /\[#+\.+\]/);
  assert.match(wide, /acc 0\.8125/);
  assert.doesNotMatch(at40, /acc/);
  assert.match(at40, /^train 65% 21\/32 /);
  const long = formatProgress({ ...mid, label: "a-very-long-phase-name" }, {
    width: 40,
  });
  assert.ok(long.length < 40, long);
  assert.match(long, /^a-very-lo\S*… 21\/32 96\.0 img\/s ETA 00:04$/);
  const tiny = formatProgress(mid, { width: 12 });
  assert.equal(tiny.length, 11);
});

Deno.test("formatProgress: plain lines for logs have no bar and show the elapsed time", () => {
  const line = formatProgress(mid, { bar: false, width: Infinity });
  assert.equal(
    line,
    "train 21/32 96.0 img/s elapsed 00:07 ETA 00:04 loss 0.4123 acc 0.8125",
  );
});

Deno.test("terminalWidth: a positive number of columns (80 when not a terminal)", () => {
  const w = terminalWidth();
  assert.ok(Number.isInteger(w) && w > 0, String(w));
  if (
    !Deno.stdout.isTerminal() && !Deno.stderr.isTerminal() &&
    !Deno.stdin.isTerminal()
  ) {
    assert.equal(w, 80);
  }
});

Deno.test("Progress: lines mode writes plain lines with the label once", () => {
  const lines: string[] = [];
  const p = new Progress("val", 3, {
    mode: "lines",
    write: (l) => lines.push(l),
  });
  for (let i = 0; i < 3; i++) p.tick({ loss: 0.5, acc: 0.75, items: 8 });
  p.done();
  assert.equal(p.completed, 3);
  for (const l of lines) {
    assert.equal(l.split("val").length - 1, 1, l);
    assert.doesNotMatch(l, /\[/);
  }
});
