// Drives headless Chromium through the gateway's sign-in, as a user would:
// open /loggedin, get sent to the sign-in page, sign up with a password,
// land back on /loggedin seeing the upstream page with the user's identity,
// sign out, and find /loggedin redirecting again. Screenshots of the sign-in
// page (desktop and phone widths) go to OUT_DIR.
//
// Usage: node signin.mjs <gateway origin> <out dir>
// Env: CHROMIUM_BIN (default /usr/bin/chromium).
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [origin, outDir] = process.argv.slice(2);
if (!origin || !outDir) {
  console.error("usage: node signin.mjs <gateway origin> <out dir>");
  process.exit(2);
}
mkdirSync(outDir, { recursive: true });

const email = `ada.${Date.now()}@example.com`;
const password = "correct horse battery staple";
const profile = mkdtempSync(join(tmpdir(), "convex-auth-chromium-"));
const step = (msg) => console.log(`step: ${msg}`);

function expect(cond, msg) {
  if (!cond) throw new Error(msg);
}

const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM_BIN || "/usr/bin/chromium",
  headless: true,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
  viewport: { width: 1280, height: 800 },
});
// Playwright's 30 s per action is a bound only; a starved machine renders slowly.
context.setDefaultTimeout(120_000);
const page = context.pages()[0] ?? (await context.newPage());
let failed = false;
try {
  step("open /loggedin signed out");
  await page.goto(`${origin}/loggedin`);
  let url = new URL(page.url());
  expect(url.pathname === "/auth/signin", `expected the sign-in page, got ${page.url()}`);
  expect(url.searchParams.get("redirectTo") === "/loggedin", `redirectTo lost: ${page.url()}`);
  expect((await page.locator("h1").textContent()).trim() === "Sign in", "the page has no Sign in heading");

  step("screenshots of the sign-in page");
  await page.screenshot({ path: join(outDir, "signin-desktop.png"), fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: join(outDir, "signin-phone.png"), fullPage: true });
  // Nothing may overflow a phone's width.
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow <= 0, `the page is ${overflow}px wider than a phone screen`);
  await page.setViewportSize({ width: 1280, height: 800 });

  step("sign up with a password");
  await page.click("#signup-link");
  await page.waitForURL((u) => u.pathname === "/auth/signin" && u.searchParams.get("mode") === "signup");
  await page.screenshot({ path: join(outDir, "signup-desktop.png"), fullPage: true });
  await page.fill("#email", email);
  await page.fill("#password", password);
  await Promise.all([page.waitForURL((u) => u.pathname === "/loggedin"), page.click("#password-form button[type=submit]")]);

  step("the upstream page shows the user");
  const who = (await page.locator("#who").textContent()).trim();
  expect(who === email, `the upstream page shows ${JSON.stringify(who)}, want ${email}`);
  const sub = (await page.locator("#sub").textContent()).trim();
  expect(/^[A-Za-z0-9_-]{22}$/.test(sub), `the token's sub ${JSON.stringify(sub)} is not a user ID`);
  await page.screenshot({ path: join(outDir, "loggedin.png"), fullPage: true });

  step("sign out");
  await Promise.all([page.waitForURL((u) => u.pathname === "/"), page.click("#signout button")]);

  step("/loggedin redirects again");
  await page.goto(`${origin}/loggedin`);
  url = new URL(page.url());
  expect(url.pathname === "/auth/signin", `after sign-out /loggedin went to ${page.url()}`);

  step("sign in again with the password");
  await page.fill("#email", email);
  await page.fill("#password", password);
  await Promise.all([page.waitForURL((u) => u.pathname === "/loggedin"), page.click("#password-form button[type=submit]")]);
  const again = (await page.locator("#sub").textContent()).trim();
  expect(again === sub, `signed in again as ${again}, want the same user ${sub}`);
  console.log(JSON.stringify({ ok: true, email, sub, screenshots: outDir }));
} catch (err) {
  failed = true;
  console.error(`FAILED: ${err.message}`);
  await page.screenshot({ path: join(outDir, "failure.png"), fullPage: true }).catch(() => {});
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
