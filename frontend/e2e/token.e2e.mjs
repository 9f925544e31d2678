// The chart against a worker that requires an API token (STOCKAPP_API_TOKEN), in real headless
// Chromium: the page asks for the token, a wrong one is refused, the right one shows the chart
// and opens the live WebSockets with tickets. Usage:
//   STOCKAPP_URL=http://127.0.0.1:6066 STOCKAPP_TOKEN=... STOCKAPP_ARTIFACTS=../artifacts node e2e/token.e2e.mjs
// Exits non-zero with a reason on the first failed check.
import { check, launch, screenshot, url } from "./common.mjs";

const token = process.env.STOCKAPP_TOKEN ?? "";

async function liveClients() {
  const response = await fetch(`${url}/metrics`, { headers: { Authorization: `Bearer ${token}` } });
  const text = await response.text();
  const line = text.split("\n").find((l) => l.startsWith("stockapp_websocket_clients "));
  return line ? Number(line.split(" ")[1]) : NaN;
}

const browser = await launch();
const errors = [];
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  // The 401s the page meets before it has the token are expected; other errors are not.
  page.on("console", (m) => m.type() === "error" && !m.text().includes("401") && errors.push(m.text()));
  page.on("pageerror", (e) => errors.push(String(e)));
  const response = await page.goto(url);
  const policy = response.headers()["content-security-policy"] ?? "";
  check(policy.includes("default-src 'self'") && policy.includes("frame-ancestors 'none'"), "the page is sent with its content security policy");
  check(response.headers()["x-frame-options"] === "DENY", "the page may not be framed");

  await page.getByTestId("token-form").waitFor({ timeout: 30_000 });
  check(true, "the page asks for the token");
  await page.getByTestId("token").fill("not-the-token");
  await page.getByTestId("token-submit").click();
  await page.waitForFunction(() => document.querySelector("[data-testid=token-form]")?.textContent?.includes("not accepted"), null, {
    timeout: 30_000,
  });
  check(true, "a wrong token is refused");

  const before = await liveClients();
  await page.getByTestId("token").fill(token);
  await page.getByTestId("token-submit").click();
  await page.waitForFunction(() => Number(document.querySelector("[data-testid=chart]")?.dataset.bars) > 0, null, { timeout: 30_000 });
  check(true, "with the token the chart shows candles from the API");
  const deadline = Date.now() + 20_000;
  // Two sockets: the chart's and the feed of every symbol's signals, each with its own ticket.
  while ((await liveClients()) < before + 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
  check((await liveClients()) >= before + 2, "the live WebSockets (chart, signals) opened with tickets");

  await screenshot(page, "chart-token.png");
  check(errors.length === 0, `no console errors${errors.length ? `: ${errors.join(" | ")}` : ""}`);
} finally {
  await browser.close();
}
