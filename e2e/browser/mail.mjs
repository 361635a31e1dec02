// Drives headless Chromium through the account lifecycle against the built
// gateway with a real SMTP sink: sign up, verify the email by the mailed
// link and see email_verified in the token, a second browser signs in,
// forgot password → reset, the second browser is signed out, the old
// password fails and the new one works. Screenshots of the sign-in page
// (with "Forgot password?") and the reset page go to OUT_DIR.
//
// Usage: node mail.mjs <gateway origin> <mailbox URL> <out dir>
// The mailbox answers GET <mailbox URL>?after=<n>&has=<text> with the first
// mail after
// the n-th: {"count": n+1, "text": "..."}.
// Env: CHROMIUM_BIN (default /usr/bin/chromium).
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [origin, mailbox, outDir] = process.argv.slice(2);
if (!origin || !mailbox || !outDir) {
  console.error("usage: node mail.mjs <gateway origin> <mailbox URL> <out dir>");
  process.exit(2);
}
mkdirSync(outDir, { recursive: true });

const email = `grace.${Date.now()}@example.com`;
const oldPassword = "correct horse battery staple";
const newPassword = "tr0ub4dor and 3 more words";
const step = (msg) => console.log(`step: ${msg}`);
function expect(cond, msg) {
  if (!cond) throw new Error(msg);
}

let seen = 0;
// nextMail waits for the next mail with a link to path (notices, sent
// after the answer, may come between) and returns its link.
async function nextMail(path) {
  const res = await fetch(`${mailbox}?after=${seen}&has=${encodeURIComponent(path + "?token=")}`);
  expect(res.ok, `the mailbox answered ${res.status}`);
  const m = await res.json();
  seen = m.count;
  const link = m.text.match(new RegExp(`https?://\\S+${path}\\?token=[A-Za-z0-9_-]+`));
  expect(link, `no ${path} link in the mail:\n${m.text}`);
  return link[0];
}

// tokenClaims asks /auth/token for a fresh token and decodes its claims.
async function tokenClaims(page) {
  const token = await page.evaluate(async () => {
    const res = await fetch("/auth/token", { credentials: "same-origin" });
    return res.ok ? (await res.json()).token : null;
  });
  expect(token, "/auth/token gave no token");
  return JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString());
}

async function signIn(page, password) {
  await page.goto(`${origin}/auth/signin?redirectTo=/loggedin`);
  await page.fill("#email", email);
  await page.fill("#password", password);
  await page.click("#password-form button[type=submit]");
  await page.waitForLoadState();
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_BIN || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});
const first = await browser.newContext({ viewport: { width: 1280, height: 800 } });
const second = await browser.newContext({ viewport: { width: 1280, height: 800 } });
const page = await first.newPage();
const other = await second.newPage();
// Playwright's 30 s per action is a bound only; a starved machine renders slowly.
for (const p of [page, other]) p.setDefaultTimeout(120_000);
let failed = false;
try {
  step("sign up");
  await page.goto(`${origin}/auth/signin?mode=signup&redirectTo=/loggedin`);
  await page.fill("#email", email);
  await page.fill("#password", oldPassword);
  await Promise.all([page.waitForURL((u) => u.pathname === "/loggedin"), page.click("#password-form button[type=submit]")]);
  expect((await page.locator("#verified").textContent()).trim() === "false", "a new sign-up's token says email_verified");
  const sub = (await page.locator("#sub").textContent()).trim();

  step("verify the email by the mailed link");
  const verify = await nextMail("/auth/verify");
  await page.goto(verify);
  expect((await page.locator("h1").textContent()).trim() === "Verify your email", "no verification page");
  expect((await page.locator("#code").count()) === 0, "the browser that signed up was asked for the code");
  await Promise.all([page.waitForURL((u) => u.pathname === "/loggedin"), page.click("#verify-form button[type=submit]")]);
  expect((await page.locator("#verified").textContent()).trim() === "true", "the upstream's token still says email_verified false");
  let claims = await tokenClaims(page);
  expect(claims.email_verified === true && claims.sub === sub, `/auth/token: ${JSON.stringify(claims)}`);

  step("a second browser signs in; the sign-in page offers Forgot password?");
  await other.goto(`${origin}/auth/signin?redirectTo=/loggedin`);
  expect(await other.locator("#forgot-link").isVisible(), "no Forgot password? link");
  await other.screenshot({ path: join(outDir, "signin-forgot-password.png"), fullPage: true });
  await signIn(other, oldPassword);
  expect(new URL(other.url()).pathname === "/loggedin", `the second sign-in went to ${other.url()}`);

  step("forgot password, then reset");
  await page.goto(`${origin}/auth/signin?redirectTo=/loggedin`);
  // Signed in: the sign-in page sends the browser on; open the forgot page directly.
  await page.goto(`${origin}/auth/password/forgot?redirectTo=/loggedin`);
  await page.fill("#email", email);
  await page.click("#forgot-form button[type=submit]");
  await page.waitForLoadState();
  expect((await page.locator("#notice").textContent()).includes(email), "no check-your-email answer");
  const reset = await nextMail("/auth/password/reset");
  await page.goto(reset);
  expect((await page.locator("h1").textContent()).trim() === "Choose a new password", "no reset page");
  await page.screenshot({ path: join(outDir, "reset-password.png"), fullPage: true });
  await page.fill("#password", newPassword);
  await page.fill("#confirm", newPassword + "!");
  await page.click("#reset-form button[type=submit]");
  await page.waitForLoadState();
  expect((await page.locator("#error").textContent()).includes("not the same"), "a mismatched confirmation was not refused");
  await page.fill("#password", newPassword);
  await page.fill("#confirm", newPassword);
  await Promise.all([page.waitForURL((u) => u.pathname === "/loggedin"), page.click("#reset-form button[type=submit]")]);
  expect((await page.locator("#sub").textContent()).trim() === sub, "the reset signed in another user");

  step("the second browser is signed out");
  await other.goto(`${origin}/loggedin`);
  expect(new URL(other.url()).pathname === "/auth/signin", `the second browser still reaches ${other.url()}`);

  step("the old password fails, the new one works");
  await signIn(other, oldPassword);
  expect(new URL(other.url()).pathname !== "/loggedin", "the old password signed in");
  expect((await other.locator("#error").textContent()).includes("incorrect"), "no error for the old password");
  await signIn(other, newPassword);
  expect(new URL(other.url()).pathname === "/loggedin", `the new password went to ${other.url()}`);
  claims = await tokenClaims(other);
  expect(claims.sub === sub && claims.email_verified === true, `after the reset: ${JSON.stringify(claims)}`);
  console.log(JSON.stringify({ ok: true, email, sub, screenshots: outDir }));
} catch (err) {
  failed = true;
  console.error(`FAILED: ${err.message}`);
  await page.screenshot({ path: join(outDir, "mail-failure.png"), fullPage: true }).catch(() => {});
  await other.screenshot({ path: join(outDir, "mail-failure-other.png"), fullPage: true }).catch(() => {});
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
