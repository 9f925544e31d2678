// End-to-end check of the chart's market sessions in real headless Chromium, against a worker
// on the XNYS calendar with STOCKAPP_SESSION_HOURS=extended whose data holds a past trading
// day of candles in pre-market, regular and after-hours (STOCKAPP_E2E_SYMBOL, and
// STOCKAPP_E2E_COMPARE, a second such symbol). Checks the extended-hours shading and toggle, the
// time zone (the axis's dates at the zone's day changes; a daily candle dated by its trading
// day, also from a browser in Honolulu), the log and percentage scales, the comparison overlay,
// the legend's session, the rule form and the layout (no sideways scroll). Usage:
//   STOCKAPP_URL=... STOCKAPP_ARTIFACTS=../artifacts STOCKAPP_E2E_SYMBOL=XA STOCKAPP_E2E_COMPARE=XB node e2e/sessions.e2e.mjs
// Exits non-zero with a reason on the first failed check.
import { check, launch, screenshot, url } from "./common.mjs";

const symbol = process.env.STOCKAPP_E2E_SYMBOL ?? "AAPL";
const other = process.env.STOCKAPP_E2E_COMPARE ?? "MSFT";
const SESSIONS = ["pre-market", "regular", "after-hours"];
// A label of the time axis's day (month, year) tick marks: a date, never a time.
const DATE_TICK = /^(\d{1,2} [A-Z][a-z]{2}|[A-Z][a-z]{2}|\d{4})$/;

/** An instant (epoch seconds) in a zone, formatted here in Node: "2026-12-04 15:05", and the
 * axis's day label "4 Dec". */
function wall(t, timeZone) {
  const f = new Intl.DateTimeFormat("en-GB", { timeZone, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  const p = Object.fromEntries(f.formatToParts(t * 1000).map((x) => [x.type, x.value]));
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}`;
}
function dayLabel(t, timeZone) {
  const p = Object.fromEntries(new Intl.DateTimeFormat("en-GB", { timeZone, day: "numeric", month: "short" }).formatToParts(t * 1000).map((x) => [x.type, x.value]));
  return `${p.day} ${p.month}`;
}
const dateTicks = async (page) => ((await page.getByTestId("chart").getAttribute("data-date-ticks")) ?? "").split(",").filter(Boolean);
/** Waits until the axis drew a date tick (data-date-ticks) with that label. */
const waitForDateTick = (page, label) =>
  page.waitForFunction((l) => (document.querySelector("[data-testid=chart]")?.dataset.dateTicks ?? "").split(",").includes(l), label, { timeout: 10_000 });

const browser = await launch();
const errors = [];
try {
  const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
  page.on("pageerror", (e) => errors.push(String(e)));
  // The unknown symbol compared on purpose is a 404.
  page.on("console", (m) => m.type() === "error" && !m.text().includes("status of 404") && errors.push(m.text()));
  // 5-minute candles: the whole extended day (192 of them) fits the view, so the screenshots
  // show the shaded pre-market and after-hours on either side of the regular session.
  await page.goto(`${url}/?symbol=${encodeURIComponent(symbol)}&interval=5m&tz=exchange`);
  const chart = page.getByTestId("chart");
  const data = () => chart.evaluate((el) => ({ ...el.dataset }));
  await page.waitForFunction(() => Number(document.querySelector("[data-testid=chart]")?.dataset.bars) > 0, null, { timeout: 30_000 });

  const noSideScroll = () => page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
  let [scrollWidth, innerWidth] = await noSideScroll();
  check(scrollWidth <= innerWidth, `the page does not scroll sideways at 1600x1000 (${scrollWidth} <= ${innerWidth})`);
  const calendar = await page.getByTestId("calendar").innerText();
  check(calendar.includes("XNYS"), `the calendar badge names the exchange: ${calendar}`);

  // Extended hours on: pre/post candles drawn on a shaded band.
  const toggle = page.getByTestId("toggle-extended");
  await toggle.waitFor({ timeout: 10_000 });
  if (!(await toggle.isChecked())) await toggle.click();
  await page.waitForFunction(() => Number(document.querySelector("[data-testid=chart]")?.dataset.extendedBars) > 0, null, { timeout: 10_000 });
  const withExtended = await data();
  check(Number(withExtended.extendedBars) > 0, `with extended hours, ${withExtended.extendedBars} of ${withExtended.bars} candles are pre/post, shaded`);
  const legendSession = await page.getByTestId("legend-session").innerText();
  check(SESSIONS.includes(legendSession), `the legend names the last candle's session: ${legendSession}`);
  await screenshot(page, "sessions-extended.png");

  // Off: they are left out (checked in one look: scrolling back may load older candles later).
  await toggle.click();
  await page.waitForFunction(
    (before) => {
      const d = document.querySelector("[data-testid=chart]")?.dataset;
      return d && Number(d.extendedBars) === 0 && Number(d.bars) > 0 && Number(d.bars) < before;
    },
    Number(withExtended.bars),
    { timeout: 10_000 },
  );
  const regularOnly = await data();
  check(true, `extended hours off: ${regularOnly.bars} regular candles, none shaded (was ${withExtended.bars})`);
  check((await page.getByTestId("legend-session").innerText()) === "regular", "the legend's last candle is a regular one");
  await screenshot(page, "sessions-regular.png");
  await toggle.click();
  await page.waitForFunction(() => Number(document.querySelector("[data-testid=chart]")?.dataset.extendedBars) > 0, null, { timeout: 10_000 });
  check(true, "extended hours on again");

  // Time zone: the exchange's, then UTC; the data (UTC epoch seconds) stays as it is.
  const zone = page.getByTestId("timezone");
  const exchangeZone = (await data()).timezone;
  check(exchangeZone === "America/New_York", `the exchange's time zone is in force: ${exchangeZone}`);
  const lastTime = (await data()).lastTime;
  const legendTime = await page.getByTestId("legend-time").innerText();
  // The axis's day marks are New York's days (lightweight-charts alone marks each UTC day, at
  // 19:00 or 09:30 New York): every one is labelled with a date.
  await page.waitForTimeout(300);
  const nyTicks = await dateTicks(page);
  check(nyTicks.every((l) => DATE_TICK.test(l)), `in New York the axis's day marks are dates: [${nyTicks.join(", ")}]`);
  await zone.selectOption("utc");
  await page.waitForFunction(() => document.querySelector("[data-testid=chart]")?.dataset.timezone === "UTC", null, { timeout: 10_000 });
  const utcTime = await page.getByTestId("legend-time").innerText();
  check(utcTime !== legendTime && utcTime.endsWith("UTC"), `the legend's time follows the zone: ${legendTime} -> ${utcTime}`);
  const expected = new Date(Number((await data()).lastTime) * 1000).toISOString().slice(0, 16).replace("T", " ");
  check(utcTime.startsWith(expected), `in UTC the legend shows the last candle's start (${expected})`);
  check(new URL(page.url()).searchParams.get("tz") === "utc", `the address names the time zone (${page.url()})`);
  check(lastTime !== "" && Number(lastTime) % 60 === 0, "data-last-time stays in UTC epoch seconds");
  // The last candle's UTC day begins inside the data (00:00 UTC is 19:00 New York): its date.
  const utcDay = dayLabel(Number(lastTime), "UTC");
  await waitForDateTick(page, utcDay);
  const utcTicks = await dateTicks(page);
  check(utcTicks.every((l) => DATE_TICK.test(l)), `in UTC the axis marks the day change with its date ${utcDay}: [${utcTicks.join(", ")}]`);
  await zone.selectOption("exchange");

  // Price scale.
  const scale = page.getByTestId("price-scale");
  for (const mode of ["log", "percent", "normal"]) {
    await scale.selectOption(mode);
    await page.waitForFunction((m) => document.querySelector("[data-testid=chart]")?.dataset.priceScale === m, mode, { timeout: 10_000 });
    check(true, `the price scale is ${mode}`);
  }

  // Compare: an unknown symbol is an error in place, a known one a percentage line.
  const compare = page.getByTestId("compare");
  await compare.fill("ZZZZQ");
  await compare.press("Enter");
  await page.getByTestId("compare-error").waitFor({ timeout: 10_000 });
  check((await data()).compare === "", `an unknown symbol is not compared: ${await page.getByTestId("compare-error").innerText()}`);
  await compare.fill(other);
  await compare.press("Enter");
  await page.waitForFunction(
    (s) => {
      const d = document.querySelector("[data-testid=chart]")?.dataset;
      return d && d.compare === s && Number(d.comparePoints) > 0;
    },
    other,
    { timeout: 30_000 },
  );
  const compared = await data();
  check(compared.priceScale === "percent", `comparing ${other}: ${compared.comparePoints} points, the scale in percent`);
  check((await page.getByTestId("compare-error").count()) === 0, "the earlier error is gone");
  await screenshot(page, "sessions-compare.png");
  await page.getByTestId("compare-clear").click();
  await page.waitForFunction(() => document.querySelector("[data-testid=chart]")?.dataset.compare === "", null, { timeout: 10_000 });
  check((await data()).priceScale === "normal" && (await data()).comparePoints === "0", "clearing the comparison restores the chosen scale");

  // The legend names the hovered candle's session.
  const box = await chart.boundingBox();
  await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.4);
  await page.waitForTimeout(200);
  const hovered = await page.getByTestId("legend-session").innerText();
  check(SESSIONS.includes(hovered), `the legend names the hovered candle's session: ${hovered}`);
  await page.mouse.move(box.x + box.width + 50, box.y - 50);

  // The rule form: a rule made with it, the advanced view in step, then deleted.
  await page.getByTestId("tab-rules").click();
  await page.getByTestId("rule-form").waitFor({ timeout: 10_000 });
  await page.getByTestId("rule-field-kind").selectOption("enters_above");
  await page.getByTestId("rule-field-series").selectOption("close");
  await page.getByTestId("rule-field-level").fill("100");
  await page.getByTestId("rule-field-interval").selectOption("1m");
  await page.getByTestId("rule-field-symbols").fill(symbol.toLowerCase());
  await page.getByTestId("rule-field-name").fill("e2e_session");
  await page.getByTestId("rule-advanced-toggle").click();
  const json = JSON.parse(await page.getByTestId("rule-json").inputValue());
  const rule = { name: "e2e_session", kind: "enters_above", series: "close", level: 100, interval: "1m", symbols: [symbol] };
  check(JSON.stringify(json) === JSON.stringify(rule), `the advanced view shows the form's rule: ${JSON.stringify(json)}`);
  await page.getByTestId("rule-create").click();
  await page.waitForSelector("[data-testid=rule-row][data-rule=e2e_session]", { timeout: 30_000 });
  check((await page.getByTestId("rule-error").count()) === 0, "the rule made with the form is created and listed");
  await page.getByTestId("rule-delete-e2e_session").click();
  await page.waitForFunction(() => !document.querySelector("[data-testid=rule-row][data-rule=e2e_session]"), null, { timeout: 30_000 });
  check(true, "and deleted");
  // JSON the form cannot show (symbols as a string) is named, not dropped silently.
  await page.getByTestId("rule-json").fill(JSON.stringify({ name: "e2e_enter", kind: "breakout_up", lookback: 20, interval: "1m", symbols: symbol }));
  await page.getByTestId("rule-form-warning").waitFor({ timeout: 10_000 });
  check((await page.getByTestId("rule-form-warning").innerText()).includes("symbols"), "typed JSON the form cannot show is named in a warning");
  // Enter in a field submits the form.
  await page.getByTestId("rule-field-symbols").fill(symbol);
  await page.getByTestId("rule-field-name").press("Enter");
  await page.waitForSelector("[data-testid=rule-row][data-rule=e2e_enter]", { timeout: 30_000 });
  check((await page.getByTestId("rule-error").count()) === 0, "Enter in the form's name creates the rule");
  await page.getByTestId("rule-delete-e2e_enter").click();
  await page.waitForFunction(() => !document.querySelector("[data-testid=rule-row][data-rule=e2e_enter]"), null, { timeout: 30_000 });

  [scrollWidth, innerWidth] = await noSideScroll();
  check(scrollWidth <= innerWidth, `with the rules tab open, no sideways scroll (${scrollWidth} <= ${innerWidth})`);
  await page.setViewportSize({ width: 1400, height: 900 });
  await page.waitForTimeout(300);
  [scrollWidth, innerWidth] = await noSideScroll();
  check(scrollWidth <= innerWidth, `nor at 1400x900 (${scrollWidth} <= ${innerWidth})`);

  // A browser in Honolulu (UTC-10) with its own zone chosen: the day there begins at 05:00 New
  // York, inside the day charted, and the 1d candle's start (04:00 New York with extended
  // hours, 09:30 without) can be the day before there. The data stays UTC.
  const context = await browser.newContext({ viewport: { width: 1600, height: 1000 }, timezoneId: "Pacific/Honolulu" });
  try {
    const away = await context.newPage();
    away.on("pageerror", (e) => errors.push(String(e)));
    away.on("console", (m) => m.type() === "error" && errors.push(m.text()));
    await away.goto(`${url}/?symbol=${encodeURIComponent(symbol)}&interval=5m&tz=local`);
    await away.waitForFunction(() => Number(document.querySelector("[data-testid=chart]")?.dataset.bars) > 0, null, { timeout: 30_000 });
    const awayData = () => away.getByTestId("chart").evaluate((el) => ({ ...el.dataset }));
    const toggleAway = away.getByTestId("toggle-extended");
    await toggleAway.waitFor({ timeout: 10_000 });
    if (!(await toggleAway.isChecked())) await toggleAway.click();
    await away.waitForFunction(() => Number(document.querySelector("[data-testid=chart]")?.dataset.extendedBars) > 0, null, { timeout: 10_000 });
    const intraday = await awayData();
    check(intraday.timezone === "Pacific/Honolulu", `the browser's zone is in force: ${intraday.timezone}`);
    const last5m = Number(intraday.lastTime);
    const legend5m = await away.getByTestId("legend-time").innerText();
    check(legend5m.startsWith(wall(last5m, "Pacific/Honolulu")), `the legend shows the last candle in Honolulu (${legend5m}); data-last-time stays UTC (${last5m})`);
    const hnlDay = dayLabel(last5m, "Pacific/Honolulu");
    await waitForDateTick(away, hnlDay);
    const hnlTicks = await dateTicks(away);
    check(hnlTicks.every((l) => DATE_TICK.test(l)), `the axis marks Honolulu's day change with its date ${hnlDay}: [${hnlTicks.join(", ")}]`);

    const daily = away.getByTestId("interval-1d");
    if ((await daily.count()) === 0) console.log("skipped: no 1d interval on this worker");
    else {
      await daily.click();
      await away.waitForFunction(
        (before) => {
          const d = document.querySelector("[data-testid=chart]")?.dataset;
          return d && Number(d.bars) > 0 && d.lastTime !== before;
        },
        String(last5m),
        { timeout: 30_000 },
      );
      const day = await awayData();
      const start = Number(day.lastTime);
      const tradingDay = wall(start, "America/New_York").slice(0, 10);
      const there = wall(start, "Pacific/Honolulu").slice(0, 10);
      const legendDay = await away.getByTestId("legend-time").innerText();
      check(legendDay === tradingDay, `the 1d candle starting ${new Date(start * 1000).toISOString()} reads ${legendDay}, its trading day (in Honolulu that instant is ${there})`);
      check(Number.isInteger(start) && day.timezone === "Pacific/Honolulu", "its data-last-time stays UTC epoch seconds, the zone in force Honolulu's");
    }
  } finally {
    await context.close();
  }
  check(errors.length === 0, `no console errors${errors.length ? `: ${errors.join(" | ")}` : ""}`);
} finally {
  await browser.close();
}
