// Drives headless Chromium through the account page and guests, as users
// would: sign up with a password in one browser, sign in from a second, see
// both sessions on the account page, sign the second one out from there and
// find it signed out; then continue as a guest in a third browser, sign up,
// and keep the same user ID (the token's sub). Screenshots of the account
// page and of the sign-in page with its guest button go to OUT_DIR.
//
// Usage: node account.mjs <gateway origin> <out dir>
// Env: CHROMIUM_BIN (default /usr/bin/chromium).
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [origin, outDir] = process.argv.slice(2);
if (!origin || !outDir) {
  console.error("usage: node account.mjs <gateway origin> <out dir>");
  process.exit(2);
}
mkdirSync(outDir, { recursive: true });

const email = `ada.${Date.now()}@example.com`;
const password = "correct horse battery staple";
const step = (msg) => console.log(`step: ${msg}`);
function expect(cond, msg) {
  if (!cond) throw new Error(msg);
}

// Two "devices": the User-Agents the account page names.
const laptop = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
const desktop = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:132.0) Gecko/20100101 Firefox/132.0";

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_BIN || "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const viewport = { width: 1280, height: 900 };
const a = await (await browser.newContext({ userAgent: laptop, viewport })).newPage();
const b = await (await browser.newContext({ userAgent: desktop, viewport })).newPage();
const c = await (await browser.newContext({ viewport })).newPage();
// Playwright's 30 s per action is a bound only; a starved machine renders slowly.
for (const p of [a, b, c]) p.setDefaultTimeout(120_000);
let current = a;
let failed = false;

async function sub(page) {
  await page.goto(`${origin}/loggedin`);
  expect(new URL(page.url()).pathname === "/loggedin", `not signed in: /loggedin went to ${page.url()}`);
  return (await page.locator("#sub").textContent()).trim();
}

try {
  step("browser A signs up with a password");
  await a.goto(`${origin}/auth/signin?mode=signup&redirectTo=/loggedin`);
  await a.fill("#email", email);
  await a.fill("#password", password);
  await Promise.all([a.waitForURL((u) => u.pathname === "/loggedin"), a.click("#password-form button[type=submit]")]);
  const subA = await sub(a);

  step("browser B signs in with the same password");
  current = b;
  await b.goto(`${origin}/loggedin`);
  expect(new URL(b.url()).pathname === "/auth/signin", `B was not sent to sign in: ${b.url()}`);
  await b.fill("#email", email);
  await b.fill("#password", password);
  await Promise.all([b.waitForURL((u) => u.pathname === "/loggedin"), b.click("#password-form button[type=submit]")]);
  expect((await sub(b)) === subA, "B is another user");

  step("A's account page lists both sessions");
  current = a;
  await a.goto(`${origin}/auth/account`);
  expect((await a.locator("h1").textContent()).trim() === "Your account", "no account page");
  const rows = a.locator("#sessions li[data-session]");
  expect((await rows.count()) === 2, `the account page lists ${await rows.count()} sessions, want 2`);
  const mine = a.locator("#sessions li[data-current]");
  expect((await mine.textContent()).includes("Chrome on macOS"), "this device is not named Chrome on macOS");
  const other = a.locator("#sessions li[data-session]:not([data-current])");
  expect((await other.textContent()).includes("Firefox on Windows"), "the other session is not named Firefox on Windows");
  expect((await a.locator("#email").textContent()).includes(email), "the profile does not show the email");
  await a.screenshot({ path: join(outDir, "account-desktop.png"), fullPage: true });
  await a.setViewportSize({ width: 390, height: 844 });
  const overflow = await a.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow <= 0, `the account page is ${overflow}px wider than a phone screen`);
  await a.screenshot({ path: join(outDir, "account-phone.png"), fullPage: true });
  await a.setViewportSize(viewport);

  step("A signs B's session out");
  await Promise.all([
    a.waitForURL((u) => u.pathname === "/auth/account" && u.searchParams.get("notice") === "signed_out"),
    other.locator("button").click(),
  ]);
  expect((await a.locator("#sessions li[data-session]").count()) === 1, "B's session is still listed");
  expect((await a.locator("#notice").textContent()).includes("signed out"), "no confirmation");

  step("B is signed out");
  current = b;
  await b.goto(`${origin}/loggedin`);
  expect(new URL(b.url()).pathname === "/auth/signin", `B is still signed in: ${b.url()}`);
  current = a;
  expect((await sub(a)) === subA, "A lost its session");

  step("browser C continues as a guest");
  current = c;
  await c.goto(`${origin}/loggedin`);
  expect(new URL(c.url()).pathname === "/auth/signin", `C was not sent to sign in: ${c.url()}`);
  expect(await c.locator("#guest-form button").isVisible(), "no Continue as guest button");
  await c.screenshot({ path: join(outDir, "signin-guest.png"), fullPage: true });
  await Promise.all([c.waitForURL((u) => u.pathname === "/loggedin"), c.click("#guest-form button")]);
  const guest = await sub(c);
  expect(/^[A-Za-z0-9_-]{22}$/.test(guest) && guest !== subA, `the guest's sub ${JSON.stringify(guest)}`);
  expect((await c.locator("#who").textContent()).trim() === "", "a guest has an email");

  step("the guest signs up and keeps its sub");
  await c.goto(`${origin}/auth/account`);
  await Promise.all([c.waitForURL((u) => u.pathname === "/auth/signin"), c.click("#guest-signup")]);
  const guestEmail = `guest.${Date.now()}@example.com`;
  await c.fill("#email", guestEmail);
  await c.fill("#password", password);
  await Promise.all([c.waitForURL((u) => u.pathname === "/"), c.click("#password-form button[type=submit]")]);
  expect((await sub(c)) === guest, "the signed-up guest has another sub");
  expect((await c.locator("#who").textContent()).trim() === guestEmail, "the signed-up guest's token has no email");
  console.log(JSON.stringify({ ok: true, email, sub: subA, guest, screenshots: outDir }));
} catch (err) {
  failed = true;
  console.error(`FAILED: ${err.message}`);
  await current.screenshot({ path: join(outDir, "account-failure.png"), fullPage: true }).catch(() => {});
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
