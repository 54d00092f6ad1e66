// The run report in a real browser: Debian's headless Chromium, driven by
// npm:playwright-core (no browser download: it is pointed at
// /usr/bin/chromium, or KDENO_CHROMIUM). The page must load with no console
// errors and no network requests (only the file:// page itself), and every
// chart must render the series and points counted from the report's data.
// Screenshots go to tests/artifacts/ (git-ignored).
//
// Chromium is required: `apt-get install -y chromium` (.ci/run installs
// it). KDENO_SKIP_BROWSER=1 skips this test explicitly.
import assert from "node:assert/strict";
import { join } from "node:path";
import { evaluation } from "../../mod.ts";
import {
  binaryReport,
  type ExpectedChart,
  expectedCharts,
  HOSTILE,
  threeClassReport,
} from "./_report_data.ts";

type Playwright = typeof import("npm:playwright-core@1.65.1");
type BrowserContext = Awaited<
  ReturnType<Playwright["chromium"]["launchPersistentContext"]>
>;

const CHROMIUM = Deno.env.get("KDENO_CHROMIUM") ?? "/usr/bin/chromium";
const SKIP = Deno.env.get("KDENO_SKIP_BROWSER") === "1";
const ARTIFACTS = new URL("../artifacts/", import.meta.url).pathname;
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-default-apps",
  "--disable-sync",
  "--no-first-run",
  "--metrics-recording-only",
  "--disable-extensions",
];

/** What the page shows, measured in the browser. */
interface Seen {
  title: string;
  scripts: number;
  bold: number;
  text: string;
  charts: {
    id: string;
    label: string;
    width: number;
    height: number;
    series: {
      name: string;
      circles: number;
      visible: number;
      polyline: number;
      declared: number;
    }[];
  }[];
  matrices: { name: string; cells: number[] }[];
}

// run in the page: count the rendered elements; a circle counts as visible
// when it has a non-empty box inside its chart's box
const MEASURE = `(() => {
  const inside = (r, b) => r.width > 0 && r.height > 0 && r.left >= b.left - 1 &&
    r.right <= b.right + 1 && r.top >= b.top - 1 && r.bottom <= b.bottom + 1;
  return {
    title: document.title,
    scripts: document.scripts.length,
    bold: document.querySelectorAll("b").length,
    text: document.body.innerText,
    charts: [...document.querySelectorAll("svg[data-chart]")].map((svg) => {
      const box = svg.getBoundingClientRect();
      return {
        id: svg.dataset.chart,
        label: svg.getAttribute("aria-label"),
        width: box.width,
        height: box.height,
        series: [...svg.querySelectorAll("g[data-series]")].map((g) => {
          const circles = [...g.querySelectorAll("circle")];
          const line = g.querySelector("polyline");
          return {
            name: g.dataset.series,
            circles: circles.length,
            visible: circles.filter((c) => inside(c.getBoundingClientRect(), box)).length,
            polyline: line ? line.points.numberOfItems : 0,
            declared: Number(g.dataset.points),
          };
        }),
      };
    }),
    matrices: [...document.querySelectorAll("table[data-confusion]")].map((t) => ({
      name: t.dataset.confusion,
      cells: [...t.querySelectorAll("td[data-count]")].map((td) => Number(td.firstChild.textContent)),
    })),
  };
})()`;

async function openReport(
  context: BrowserContext,
  dir: string,
  name: string,
  data: evaluation.ReportData,
): Promise<Seen> {
  const file = join(dir, `${name}.html`);
  await evaluation.writeReport(file, data);
  const url = new URL(`file://${file}`).href;
  const page = await context.newPage();
  const problems: string[] = [];
  const requests: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") {
      problems.push(`console ${m.type()}: ${m.text()}`);
    }
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("request", (r) => requests.push(r.url()));
  page.on("requestfailed", (r) => {
    if (r.url() !== url) requests.push(`${r.url()} (failed)`);
  });
  const response = await page.goto(url, { waitUntil: "load" });
  assert.ok(response === null || response.ok(), `loading ${url}`);
  // anything late (fonts, lazy images) would show up here
  await page.waitForTimeout(300);
  const seen = await page.evaluate(MEASURE) as Seen;
  await Deno.mkdir(ARTIFACTS, { recursive: true });
  const png = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: png, fullPage: true });
  await page.close();
  assert.deepEqual(
    { consoleErrors: problems, requests: requests.filter((r) => r !== url) },
    { consoleErrors: [], requests: [] },
    `${name}: console errors, or network requests besides the page itself`,
  );
  const head = (await Deno.readFile(png)).subarray(0, 8);
  assert.deepEqual([...head], [137, 80, 78, 71, 13, 10, 26, 10], "a PNG");
  return seen;
}

function checkCharts(seen: Seen, expected: ExpectedChart[], name: string) {
  assert.equal(
    seen.charts.length,
    expected.length,
    `${name}: charts ${seen.charts.map((c) => c.label).join(" | ")}`,
  );
  for (const e of expected) {
    const chart = seen.charts.find((c) => c.label === e.label);
    assert.ok(chart, `${name}: chart "${e.label}" is missing`);
    assert.ok(chart.width > 100 && chart.height > 100, `${e.label} is drawn`);
    const got = chart.series.map((s) =>
      [s.name.replace(/ \(AUC [\d.]+\)$/, ""), s.circles] as [string, number]
    ).sort();
    assert.deepEqual(got, e.series, `${name}: series of "${e.label}"`);
    for (const s of chart.series) {
      assert.equal(s.visible, s.circles, `${e.label} / ${s.name}: visible`);
      assert.equal(s.polyline, s.circles, `${e.label} / ${s.name}: line`);
      assert.equal(
        s.declared,
        s.circles,
        `${e.label} / ${s.name}: data-points`,
      );
    }
  }
}

Deno.test({
  name:
    "report.html in headless Chromium: no console errors, no requests, every series and point drawn",
  ignore: SKIP,
  async fn() {
    try {
      await Deno.stat(CHROMIUM);
    } catch {
      throw new Error(
        `Chromium is not at ${CHROMIUM}: this test opens the report in a real browser. Install it with \`apt-get install -y chromium\` (.ci/run does), point KDENO_CHROMIUM at another binary, or set KDENO_SKIP_BROWSER=1 to skip this test`,
      );
    }
    const { chromium }: Playwright = await import("npm:playwright-core@1.65.1");
    const dir = await Deno.makeTempDir({ prefix: "kdeno-report-" });
    const profile = await Deno.makeTempDir({ prefix: "kdeno-chromium-" });
    let context: BrowserContext | undefined;
    try {
      context = await chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        headless: true,
        args: FLAGS,
        viewport: { width: 1200, height: 900 },
        timeout: 60_000,
      });
      // nothing may leave the machine: any request but file:// is aborted
      // (and still counted by openReport)
      await context.route(
        (u: URL) => u.protocol !== "file:",
        (r) => r.abort(),
      );

      const binary = binaryReport();
      const seen = await openReport(context, dir, "report", binary);
      checkCharts(seen, expectedCharts(binary), "2 classes");
      assert.ok(seen.charts.some((c) => c.id === "roc"));
      // the HTML names are text, not markup
      assert.equal(seen.scripts, 0);
      assert.equal(seen.bold, 0);
      assert.equal(seen.title, `Report ${HOSTILE}`);
      assert.ok(seen.text.includes(HOSTILE));
      // a confusion matrix per model, summed over its runs
      assert.deepEqual(
        seen.matrices.map((m) => m.name),
        binary.models.map((m) => m.name),
      );
      for (const [i, m] of binary.models.entries()) {
        const sum = [0, 0, 0, 0];
        for (const r of m.runs) {
          r.test!.confusion.flat().forEach((v, k) => sum[k] += v);
        }
        assert.deepEqual(seen.matrices[i].cells, sum, m.name);
      }
      for (
        const s of ["McNemar p", "84.6 ± 3.2", "kdeno version", "0.1.0", "cpu"]
      ) {
        assert.ok(seen.text.includes(s), `the page shows "${s}"`);
      }

      const three = threeClassReport();
      const seen3 = await openReport(context, dir, "report-3class", three);
      checkCharts(seen3, expectedCharts(three), "3 classes");
      assert.ok(!seen3.charts.some((c) => c.id === "roc"));
      assert.deepEqual(seen3.matrices.map((m) => m.cells.length), [9, 9]);
    } finally {
      await context?.close().catch(() => {});
      await Deno.remove(profile, { recursive: true }).catch(() => {});
      await Deno.remove(dir, { recursive: true });
    }
  },
});
