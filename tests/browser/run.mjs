// The browser test's driver (tests/api/browser.rs runs it with node):
//
//   node run.mjs bundle        prints page.ts, bundled with roster's
//                              TypeScript client (clients/typescript), as
//                              one browser script (esbuild)
//   node run.mjs open <url>    opens the page in headless Chromium (Debian's,
//                              at ROSTER_TEST_CHROMIUM or /usr/bin/chromium;
//                              playwright-core never downloads one), waits
//                              for its script to finish calling roster, and
//                              prints what it found as one JSON line; exits
//                              1 if the page failed
import { fileURLToPath } from "node:url";

import * as esbuild from "esbuild";
import { chromium } from "playwright-core";

const [command, url] = process.argv.slice(2);
if (command === "bundle") {
  const result = await esbuild.build({
    entryPoints: [fileURLToPath(new URL("page.ts", import.meta.url))],
    bundle: true,
    format: "esm",
    target: "es2022",
    write: false,
    logLevel: "warning",
  });
  process.stdout.write(result.outputFiles[0].text);
} else if (command === "open" && url) {
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
} else {
  console.error("usage: node run.mjs bundle | node run.mjs open <page url>");
  process.exitCode = 2;
}
