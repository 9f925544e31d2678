// End-to-end check of the chart in real headless Chromium (Debian's, no browser download),
// against a running worker with a source publishing. Usage:
//   STOCKAPP_URL=http://127.0.0.1:6066 STOCKAPP_ARTIFACTS=../artifacts node e2e/chart.e2e.mjs
// Exits non-zero with a reason on the first failed check.
import { readFileSync } from "node:fs";
import { check, launch, screenshot, url } from "./common.mjs";

const browser = await launch();
const errors = [];
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(url);

  const chart = page.getByTestId("chart");
  await page.waitForFunction(() => Number(document.querySelector("[data-testid=chart]")?.dataset.bars) > 0, null, { timeout: 30_000 });
  const bars = Number(await chart.getAttribute("data-bars"));
  check(bars > 0, `the chart shows ${bars} candles from the API`);
  check((await page.locator("canvas").count()) > 0, "the chart draws on a canvas");

  // The forming candle moves with new ticks (pushed over the WebSocket, no reload).
  const before = `${await chart.getAttribute("data-last-time")}/${await chart.getAttribute("data-last-close")}/${await chart.getAttribute("data-last-volume")}`;
  await page.waitForFunction(
    (prev) => {
      const d = document.querySelector("[data-testid=chart]")?.dataset;
      return d && `${d.lastTime}/${d.lastClose}/${d.lastVolume}` !== prev;
    },
    before,
    { timeout: 30_000 },
  );
  check(true, "the forming candle changed after new ticks");

  // Interval switch.
  await page.getByTestId("interval-5m").click();
  await page.waitForFunction(() => {
    const d = document.querySelector("[data-testid=chart]")?.dataset;
    return d && Number(d.bars) > 0 && Number(d.lastTime) % 300 === 0;
  }, null, { timeout: 30_000 });
  check(await page.getByTestId("interval-5m").evaluate((b) => b.classList.contains("active")), "switching to 5m shows 5-minute candles");

  // RSI toggle: its pane goes away and comes back.
  const rsi = page.getByTestId("toggle-rsi_14"); // toggles are named by the indicator keys of /api/meta
  const panes = async () => Number(await chart.getAttribute("data-panes"));
  const withRsi = await rsi.isChecked();
  const panesBefore = await panes();
  await rsi.click();
  check((await panes()) === panesBefore + (withRsi ? -1 : 1), "toggling RSI removes/adds its pane");
  await rsi.click();
  check((await panes()) === panesBefore, "toggling RSI back restores it");

  // The legend shows O/H/L/C/V.
  const legend = await page.getByTestId("legend").innerText();
  check(/O .* H .* L .* C .*V /s.test(legend), "the legend shows O/H/L/C/V");

  // Symbol search: type, pick the first match with Enter (STOCKAPP_E2E_SYMBOL, if given).
  const wanted = process.env.STOCKAPP_E2E_SYMBOL;
  if (wanted) {
    await page.getByTestId("symbol-search").fill(wanted);
    await page.getByTestId("symbol-search").press("Enter");
    await page.waitForFunction(
      (s) => document.querySelector("[data-testid=symbol]")?.textContent === s && Number(document.querySelector("[data-testid=chart]")?.dataset.bars) > 0,
      wanted,
      { timeout: 30_000 },
    );
    check(true, `searching for ${wanted} shows its ${await chart.getAttribute("data-bars")} candles`);
  }

  // The address follows the chart: a link to it opens the same symbol and interval.
  const shown = new URL(page.url()).searchParams;
  check(shown.get("interval") === "5m", `the address names the interval (${page.url()})`);
  const symbolNow = await page.getByTestId("symbol").textContent();
  check(shown.get("symbol") === symbolNow, "the address names the symbol");

  // CSV of what the chart shows: a row per candle, a column per shown indicator output.
  const [file] = await Promise.all([page.waitForEvent("download"), page.getByTestId("csv").click()]);
  const lines = readFileSync(await file.path(), "utf8").trim().split("\n");
  check(file.suggestedFilename() === `${symbolNow}-5m.csv`, `the CSV is named ${file.suggestedFilename()}`);
  check(lines[0].startsWith("time,open,high,low,close,volume,closed,") && lines[0].includes("bb_upper"), `the CSV header: ${lines[0]}`);
  const rows = lines.length - 1;
  const barsNow = Number(await chart.getAttribute("data-bars"));
  check(Math.abs(rows - barsNow) <= 1, `the CSV has a row per candle (${rows}, the chart ${barsNow})`);
  check(/^\d{4}-\d\d-\d\dT\d\d:\d\d:00\.000Z,[\d.]+,/.test(lines[1]), `a CSV row: ${lines[1]}`);
  await screenshot(page, "chart.png");

  // A deep link in a new page opens that chart.
  const linked = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  linked.on("pageerror", (e) => errors.push(String(e)));
  await linked.goto(`${url}/?symbol=${encodeURIComponent(symbolNow)}&interval=1m`);
  await linked.waitForFunction(
    (s) => document.querySelector("[data-testid=symbol]")?.textContent === s && Number(document.querySelector("[data-testid=chart]")?.dataset.bars) > 0,
    symbolNow,
    { timeout: 30_000 },
  );
  check(await linked.getByTestId("interval-1m").evaluate((b) => b.classList.contains("active")), `the link /?symbol=${symbolNow}&interval=1m opens that chart`);
  await screenshot(linked, "deep-link.png");
  check(errors.length === 0, `no console errors${errors.length ? `: ${errors.join(" | ")}` : ""}`);
} finally {
  await browser.close();
}
