// End-to-end check of rules and signals in real headless Chromium, against a running worker.
// The caller feeds the stream: once this prints READY (a rule `e2e_up` on STOCKAPP_E2E_SYMBOL
// created through the editor), it produces ticks whose closes cross 500 upwards. Usage:
//   STOCKAPP_URL=... STOCKAPP_E2E_SYMBOL=WD STOCKAPP_E2E_SERIES=sma_10,rsi_14 node e2e/signals.e2e.mjs
import { check, launch, screenshot, url } from "./common.mjs";

const symbol = process.env.STOCKAPP_E2E_SYMBOL ?? "AAPL";
const browser = await launch();
const errors = [];
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => m.type() === "error" && !m.text().includes("status of 400") && errors.push(m.text()));
  await page.goto(`${url}/?symbol=${symbol}&interval=1m`);
  await page.waitForFunction(() => Number(document.querySelector("[data-testid=chart]")?.dataset.bars) > 0, null, { timeout: 30_000 });

  // The rule editor: a bad rule (typed in the advanced view, its JSON) shows the server's
  // reason, naming the field.
  await page.getByTestId("tab-rules").click();
  await page.waitForSelector("[data-testid=rule-row][data-rule=breakout_20_up]", { timeout: 30_000 });
  check(true, "the rules tab lists the built-in rules");
  await page.getByTestId("rule-advanced-toggle").click();
  // The series a rule may name, and the example in the editor, follow the server's indicators
  // (STOCKAPP_E2E_SERIES: some of the worker's configured outputs).
  const series = (await page.getByTestId("rule-series").innerText()).replace(/^Series: /, "").split(", ");
  const wanted = (process.env.STOCKAPP_E2E_SERIES ?? "close").split(",");
  check(wanted.every((s) => series.includes(s)), `the editor lists the configured series (${series.join(", ")})`);
  const editor = page.getByTestId("rule-json");
  const example = JSON.parse(await editor.inputValue());
  check([example.left, example.right, example.series].filter(Boolean).every((s) => series.includes(s)), `the example names configured series: ${JSON.stringify(example)}`);
  await editor.fill(JSON.stringify({ name: "e2e_up", kind: "crosses_above", left: "close", right: "sma_21", interval: "1m" }));
  await page.getByTestId("rule-create").click();
  const error = page.getByTestId("rule-error");
  await error.waitFor({ timeout: 30_000 });
  check((await error.innerText()).startsWith("right: 'sma_21' is not a series"), `a bad rule shows its error: ${await error.innerText()}`);
  await editor.fill("{not json");
  await page.getByTestId("rule-create").click();
  await page.waitForFunction(() => document.querySelector("[data-testid=rule-error]")?.textContent?.startsWith("not JSON"), null, { timeout: 10_000 });
  check(true, "text that is not JSON is refused before it is sent");
  await screenshot(page, "rule-error.png");

  // The good one with the form; the advanced view follows it.
  const rule = { name: "e2e_up", kind: "crosses_above", left: "close", right: 500, interval: "1m", symbols: [symbol] };
  await page.getByTestId("rule-field-kind").selectOption("crosses_above");
  await page.getByTestId("rule-field-left").selectOption("close");
  await page.getByTestId("rule-field-right").selectOption("#level");
  await page.getByTestId("rule-field-level").fill("500");
  await page.getByTestId("rule-field-interval").selectOption("1m");
  await page.getByTestId("rule-field-symbols").fill(symbol);
  await page.getByTestId("rule-field-name").fill("e2e_up");
  check(JSON.stringify(JSON.parse(await editor.inputValue())) === JSON.stringify(rule), `the form writes the rule: ${await editor.inputValue()}`);
  await page.getByTestId("rule-create").click();
  await page.waitForSelector("[data-testid=rule-row][data-rule=e2e_up]", { timeout: 30_000 });
  check((await page.getByTestId("rule-error").count()) === 0, "a valid rule is created and listed");

  await page.getByTestId("tab-signals").click();
  console.log("READY");

  // The crafted stream fires the rule: a marker at its candle (pushed on the chart's feed) and
  // a row in the signals panel (pushed on the feed of every symbol's signals).
  await page.waitForFunction(() => (document.querySelector("[data-testid=chart]")?.dataset.markers ?? "").split(",").includes("e2e_up"), null, {
    timeout: 60_000,
  });
  check(true, "a marker appears on the chart where the rule fired");
  const row = page.locator(`[data-testid=signal-row][data-rule=e2e_up][data-symbol=${symbol}]`);
  await row.first().waitFor({ timeout: 30_000 });
  check(true, "the signals panel lists the signal live");
  await page.getByTestId("signals-filter").fill("e2e");
  const rules = await page.locator("[data-testid=signal-row]").evaluateAll((rows) => rows.map((r) => r.dataset.rule));
  check(rules.length > 0 && rules.every((r) => r.includes("e2e")), `the filter keeps the matching signals (${rules.join(", ")})`);
  await screenshot(page, "signals.png");

  // The watchlist names the symbol's latest signal.
  await page.getByTestId("tab-watchlist").click();
  await page.waitForFunction((s) => document.querySelector(`[data-testid=watch-row][data-symbol="${s}"] .sig`)?.textContent === "e2e_up", symbol, {
    timeout: 10_000,
  });
  check(true, `the watchlist shows ${symbol}'s latest signal`);

  // Deleting it through the editor.
  await page.getByTestId("tab-rules").click();
  await page.getByTestId("rule-delete-e2e_up").click();
  await page.waitForFunction(() => !document.querySelector("[data-testid=rule-row][data-rule=e2e_up]"), null, { timeout: 30_000 });
  check(true, "a user rule is deleted from the editor");
  check(errors.length === 0, `no console errors${errors.length ? `: ${errors.join(" | ")}` : ""}`);
} finally {
  await browser.close();
}
