// Drives headless Chromium through the second factor after every kind of
// first factor: an OIDC sign-in at an OpenID Provider on loopback (its
// own login form), an emailed link, and a guest signing in to an account.
// Each user sets up an authenticator app on the account page (codes
// computed here per RFC 6238); each first factor then lands on the
// challenge with no session of the account (the guest stays the guest),
// and a backup code finishes it. The challenge page runs no script.
//
// Usage: node methods.mjs <gateway origin> <mailbox URL> <IdP user> <IdP password> <out dir>
// Env: CHROMIUM_BIN.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { base32, nowStep, totpAt } from "./rfc6238.mjs";

const [origin, mailbox, idpUser, idpPassword, outDir] = process.argv.slice(2);
if (!origin || !mailbox || !idpUser || !idpPassword || !outDir) {
  console.error("usage: node methods.mjs <gateway origin> <mailbox URL> <IdP user> <IdP password> <out dir>");
  process.exit(2);
}
mkdirSync(outDir, { recursive: true });

const linkEmail = `link.${Date.now()}@example.com`;
const step = (msg) => console.log(`step: ${msg}`);
function expect(cond, msg) {
  if (!cond) throw new Error(msg);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_BIN || "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
let current;
let failed = false;
let mails = 0;

async function context() {
  const ctx = await browser.newContext({ viewport: { width: 900, height: 900 } });
  // A busy machine is slow, never wrong: generous bounds, no timing.
  ctx.setDefaultTimeout(120_000);
  current = await ctx.newPage();
  return current;
}
async function who(page) {
  const r = await page.context().request.get(`${origin}/auth/session`, { headers: { "Sec-Fetch-Site": "same-origin" } });
  return r.status() === 200 ? (await r.json()).user.id : "";
}
// back waits for the browser to come back to the gateway from elsewhere
// (the IdP), past its callback.
const atGateway = (u) => u.origin === origin && !u.pathname.startsWith("/auth/callback/");

async function idpSignIn(page) {
  await page.goto(`${origin}/auth/signin`);
  await Promise.all([page.waitForURL((u) => u.origin !== origin), page.click("a[data-provider=idp]")]);
  await page.fill("#username", idpUser);
  await page.fill("#password", idpPassword);
  await Promise.all([page.waitForURL(atGateway), page.click("button[type=submit]")]);
}
async function emailLink(page) {
  await page.goto(`${origin}/auth/signin`);
  await page.fill("#link-email", linkEmail);
  await Promise.all([page.waitForLoadState("load"), page.click("#email-form button[type=submit]")]);
  const r = await fetch(`${mailbox}?after=${mails}&has=${encodeURIComponent("/auth/callback/email?token=")}`);
  expect(r.ok, `no sign-in mail: ${r.status}`);
  const m = await r.json();
  mails = m.count;
  const link = m.text.match(/https?:\/\/\S+\/auth\/callback\/email\?token=[A-Za-z0-9_-]+/)[0];
  await page.goto(link);
  await Promise.all([page.waitForURL((u) => u.pathname !== "/auth/callback/email"), page.click("main form button[type=submit]")]);
}
// enrol sets up the authenticator app (the session is new) and returns
// the backup codes shown.
async function enrol(page) {
  await page.goto(`${origin}/auth/account/totp`);
  const key = base32((await page.locator("#totp-secret").textContent()).trim());
  await page.fill("#code", totpAt(key, nowStep()));
  await Promise.all([page.waitForSelector("#backup-codes"), page.click("#totp-form button[type=submit]")]);
  return (await page.locator("#backup-codes code").allTextContents()).map((c) => c.trim());
}
// challenged checks that the browser is at the challenge and is still who
// it was (nobody, or a guest), and that the page runs no script.
async function challenged(page, what, was = "") {
  const at = new URL(page.url());
  expect(at.pathname === "/auth/challenge", `${what} was not challenged: ${at}`);
  expect((await who(page)) === was, `${what} is signed in before the second factor`);
  const res = await page.context().request.get(`${origin}/auth/challenge`);
  const csp = res.headers()["content-security-policy"] || "";
  expect(res.status() === 200 && csp.startsWith("default-src 'none'") && !csp.includes("script-src"), `the challenge page's policy: ${csp}`);
}
async function pass(page, code, userID, what) {
  await page.fill("#code", code);
  await Promise.all([page.waitForURL((u) => u.pathname !== "/auth/challenge"), page.click("#code-form button[type=submit]")]);
  expect((await who(page)) === userID, `${what}: not signed in as the account after the code (${page.url()})`);
}

try {
  step("an OIDC account sets up the app; an OIDC sign-in in another browser is challenged");
  let page = await context();
  await idpSignIn(page);
  const idpID = await who(page);
  expect(idpID !== "", "the first OIDC sign-in started no session");
  const idpCodes = await enrol(page);
  page = await context();
  await idpSignIn(page);
  await challenged(page, "an OIDC sign-in");
  await pass(page, idpCodes[0], idpID, "an OIDC sign-in");

  step("a guest signs in to that account: challenged, the guest stays until the code");
  page = await context();
  await page.goto(`${origin}/auth/signin`);
  await Promise.all([page.waitForURL((u) => u.pathname !== "/auth/signin"), page.click("#guest-form button[type=submit]")]);
  const guestID = await who(page);
  expect(guestID !== "" && guestID !== idpID, `the guest: ${guestID}`);
  await idpSignIn(page);
  await challenged(page, "a guest's OIDC sign-in", guestID);
  await pass(page, idpCodes[1], idpID, "a guest's OIDC sign-in");

  step("an email-link account sets up the app; a link in another browser is challenged");
  page = await context();
  await emailLink(page);
  const linkID = await who(page);
  expect(linkID !== "", "the first link sign-in started no session");
  const linkCodes = await enrol(page);
  page = await context();
  await emailLink(page);
  await challenged(page, "an email link");
  await pass(page, linkCodes[0], linkID, "an email link");
  console.log(JSON.stringify({ ok: true }));
} catch (err) {
  failed = true;
  console.error(`FAILED: ${err.message}`);
  if (current) await current.screenshot({ path: join(outDir, "methods-failure.png"), fullPage: true }).catch(() => {});
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
