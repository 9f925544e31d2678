// End-to-end check of the watchlist in real headless Chromium, against a running worker with a
// live source (STOCKAPP_E2E_LIVE, a symbol receiving ticks) and replayed symbols. Usage:
//   STOCKAPP_URL=... STOCKAPP_E2E_LIVE=LIVE STOCKAPP_E2E_SYMBOL=WB node e2e/watchlist.e2e.mjs
import { check, launch, screenshot, url } from "./common.mjs";

const live = process.env.STOCKAPP_E2E_LIVE ?? "AAPL";
const other = process.env.STOCKAPP_E2E_SYMBOL ?? "MSFT";
const browser = await launch();
const errors = [];
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  await page.goto(url);
  const rows = page.getByTestId("watch-row");
  await page.waitForFunction(() => document.querySelectorAll("[data-testid=watch-row]").length >= 2, null, { timeout: 30_000 });
  const symbols = await rows.evaluateAll((all) => all.map((r) => r.dataset.symbol));
  check(symbols.includes(live) && symbols.includes(other), `the watchlist lists every symbol (${symbols.join(", ")})`);

  // Live: the live symbol's last price moves without a reload.
  const row = (s) => page.locator(`[data-testid=watch-row][data-symbol="${s}"]`);
  const before = await row(live).getAttribute("data-last");
  await page.waitForFunction(
    ([s, prev]) => document.querySelector(`[data-testid=watch-row][data-symbol="${s}"]`)?.getAttribute("data-last") !== prev,
    [live, before],
    { timeout: 30_000 },
  );
  check(true, `${live}'s last price updates live (${before} -> ${await row(live).getAttribute("data-last")})`);

  // The day: a change since the session open and a sparkline.
  await page.waitForFunction((s) => document.querySelector(`[data-testid=watch-row][data-symbol="${s}"]`)?.getAttribute("data-change") !== "", other, {
    timeout: 30_000,
  });
  const path = await row(other).locator("svg path").getAttribute("d");
  check(/^M[\d.]+,[\d.]+( L[\d.]+,[\d.]+)+$/.test(path ?? ""), `${other} has a change since the open and a sparkline of the day`);

  // Sortable: by change, largest first; by symbol again.
  await page.getByTestId("sort-change").click();
  const changes = (await rows.evaluateAll((all) => all.map((r) => r.dataset.change))).filter((c) => c !== "").map(Number);
  check(changes.length >= 2 && changes.every((c, i) => i === 0 || changes[i - 1] >= c), `sorted by change, largest first (${changes.map((c) => c.toFixed(2)).join(", ")})`);
  await page.getByTestId("sort-symbol").click();
  const names = await rows.evaluateAll((all) => all.map((r) => r.dataset.symbol));
  check(names.join() === [...names].sort().join(), "sorted by symbol again");
  await screenshot(page, "watchlist.png");

  // A click opens that symbol's chart.
  await row(other).click();
  await page.waitForFunction((s) => document.querySelector("[data-testid=symbol]")?.textContent === s, other, { timeout: 10_000 });
  check(new URL(page.url()).searchParams.get("symbol") === other, `a click opens ${other}'s chart`);
  check(errors.length === 0, `no console errors${errors.length ? `: ${errors.join(" | ")}` : ""}`);
} finally {
  await browser.close();
}
