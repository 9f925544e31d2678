// What the end-to-end scripts share: where to look, the browser, checks and the screenshot.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

export const url = process.env.STOCKAPP_URL ?? "http://127.0.0.1:6066";
const artifacts = process.env.STOCKAPP_ARTIFACTS ?? "../artifacts";
const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";

export function check(ok, message) {
  if (!ok) throw new Error(`check failed: ${message}`);
  console.log(`ok: ${message}`);
}

/** Debian's Chromium, headless (no browser download). */
export function launch() {
  return chromium.launch({ executablePath, args: ["--no-sandbox"] });
}

export async function screenshot(page, name) {
  mkdirSync(artifacts, { recursive: true });
  const shot = join(artifacts, name);
  await page.screenshot({ path: shot });
  console.log(`screenshot: ${shot}`);
}
