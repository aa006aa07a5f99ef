// Opens the page at argv[2] in headless Chromium (Debian's, at
// ROSTER_TEST_CHROMIUM or /usr/bin/chromium; playwright-core never
// downloads one), waits for the page's script to finish calling roster,
// and prints what it found as one JSON line. Exits 1 if the page failed.
import { chromium } from "playwright-core";

const url = process.argv[2];
if (!url) {
  console.error("usage: node run.mjs <page url>");
  process.exit(2);
}
const executablePath = process.env.ROSTER_TEST_CHROMIUM || "/usr/bin/chromium";
const browser = await chromium.launch({ executablePath, headless: true });
try {
  const page = await browser.newPage();
  page.on("console", (message) => console.error(`page console: ${message.text()}`));
  page.on("pageerror", (error) => console.error(`page error: ${error.message}`));
  await page.goto(url);
  const handle = await page.waitForFunction(() => window.rosterOutcome, null, {
    timeout: 30_000,
  });
  const outcome = await handle.jsonValue();
  if (process.env.ROSTER_TEST_SCREENSHOT) {
    await page.screenshot({ path: process.env.ROSTER_TEST_SCREENSHOT, fullPage: true });
  }
  console.log(JSON.stringify(outcome));
  process.exitCode = outcome.error ? 1 : 0;
} finally {
  await browser.close();
}
