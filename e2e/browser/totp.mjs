// Drives headless Chromium through an authenticator app (TOTP) with codes
// computed here per RFC 6238 (checked against its Appendix B vector
// first): sign up with a password, set the app up on the account page
// (QR code, first code, backup codes shown once), sign out; a password
// sign-in is then challenged with no session before the code; a wrong
// code is refused; the right one signs in with amr pwd, otp, mfa; the same
// code in another browser (its step is spent) is refused; a backup code
// works once. "Remember this browser" skips the challenge in that browser
// only (the next browser is challenged). The challenge page runs no
// script.
//
// Usage: node totp.mjs <gateway origin> <out dir>
// Env: CHROMIUM_BIN; UPDATE_DOC_SCREENSHOTS=<dir> also writes the docs'
// screenshots there.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { base32, nowStep, totpAt } from "./rfc6238.mjs";

const [origin, outDir] = process.argv.slice(2);
if (!origin || !outDir) {
  console.error("usage: node totp.mjs <gateway origin> <out dir>");
  process.exit(2);
}
mkdirSync(outDir, { recursive: true });
const docDir = process.env.UPDATE_DOC_SCREENSHOTS || "";

const email = `totp.${Date.now()}@example.com`;
const password = "correct horse battery staple";
const step = (msg) => console.log(`step: ${msg}`);
function expect(cond, msg) {
  if (!cond) throw new Error(msg);
}
async function shot(page, name) {
  await page.screenshot({ path: join(outDir, name), fullPage: true });
  if (docDir) await page.screenshot({ path: join(docDir, name), fullPage: true });
}


const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_BIN || "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const viewport = { width: 900, height: 900 };
let current;
let failed = false;

async function context() {
  const ctx = await browser.newContext({ viewport });
  // A busy machine is slow, never wrong: generous bounds, no timing.
  ctx.setDefaultTimeout(120_000);
  const page = await ctx.newPage();
  current = page;
  return page;
}
// json reads a gateway endpoint with the page's cookies (the gateway's
// pages allow no fetch).
async function json(page, path) {
  const r = await page.context().request.get(`${origin}${path}`, { headers: { "Sec-Fetch-Site": "same-origin" } });
  return { status: r.status(), body: await r.json().catch(() => null) };
}
function claims(token) {
  return JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString());
}
// challenged signs in with the password and checks the browser is at the
// challenge with no session.
async function challenged(page) {
  await page.goto(`${origin}/auth/signin?redirectTo=/loggedin`);
  await page.fill("#email", email);
  await page.fill("#password", password);
  await Promise.all([page.waitForURL((u) => u.pathname === "/auth/challenge"), page.click("#password-form button[type=submit]")]);
  const cookies = await page.context().cookies();
  expect(!cookies.some((c) => /^(__Host-)?convex_session/.test(c.name)), `a session cookie before the second factor: ${cookies.map((c) => c.name)}`);
  expect((await json(page, "/auth/session")).status === 401, "signed in before the second factor");
  const res = await page.context().request.get(`${origin}/auth/challenge`);
  const csp = res.headers()["content-security-policy"] || "";
  expect(res.status() === 200 && !csp.includes("script-src"), `the challenge page's policy: ${csp}`);
}
async function submitCode(page, code) {
  await page.fill("#code", code);
  await Promise.all([page.waitForLoadState("load"), page.waitForURL(() => true), page.click("#code-form button[type=submit]")]);
  return new URL(page.url());
}

try {
  const a = await context();
  step("sign up, then set up the authenticator app on the account page");
  await a.goto(`${origin}/auth/signin?mode=signup&redirectTo=/loggedin`);
  await a.fill("#email", email);
  await a.fill("#password", password);
  await Promise.all([a.waitForURL((u) => u.pathname === "/loggedin"), a.click("#password-form button[type=submit]")]);
  await a.goto(`${origin}/auth/account#factors`);
  await Promise.all([a.waitForURL((u) => u.pathname === "/auth/account/totp"), a.click("#enrol-totp")]);
  expect(await a.locator(".qr svg path").count() === 1, "no QR code");
  const csp = (await a.context().request.get(`${origin}/auth/account/totp`)).headers()["content-security-policy"];
  expect(!csp.includes("script-src"), `the enrolment page allows a script: ${csp}`);
  await a.locator("details summary").click();
  await shot(a, "totp-enrol.png");
  const secret = (await a.locator("#totp-secret").textContent()).trim();
  const key = base32(secret);
  expect((await a.locator("#totp-uri").textContent()).includes(`secret=${secret}`), "the URI does not hold the key");
  await a.fill("#code", totpAt(key, nowStep()));
  await Promise.all([a.waitForSelector("#backup-codes"), a.click("#totp-form button[type=submit]")]);
  const codes = (await a.locator("#backup-codes code").allTextContents()).map((c) => c.trim());
  expect(codes.length === 10, `${codes.length} backup codes`);
  await a.goto(`${origin}/loggedin`);
  await Promise.all([a.waitForURL((u) => u.pathname === "/"), a.click("#signout button")]);

  step("a password sign-in is challenged: no session before the code");
  await challenged(a);
  await shot(a, "challenge.png");

  step("a wrong code is refused");
  let at = await submitCode(a, "000000");
  expect(at.pathname === "/auth/challenge" && (await a.locator("#error").count()) === 1, `a wrong code: ${at}`);
  expect((await json(a, "/auth/session")).status === 401, "a wrong code signed in");

  step("the right code, with remember this browser, signs in: amr pwd, otp, mfa");
  const good = totpAt(key, nowStep() + 1);
  await a.check("#remember");
  at = await submitCode(a, good);
  expect(at.pathname === "/loggedin", `the right code: ${at}`);
  const amr = claims((await json(a, "/auth/token")).body.token).amr || [];
  console.log(`amr: ${JSON.stringify(amr)}`);
  expect(["pwd", "otp", "mfa"].every((v) => amr.includes(v)), `amr ${JSON.stringify(amr)}`);

  step("the remembered browser signs in again without the challenge");
  await Promise.all([a.waitForURL((u) => u.pathname === "/"), a.click("#signout button")]);
  await a.goto(`${origin}/auth/signin?redirectTo=/loggedin`);
  await a.fill("#email", email);
  await a.fill("#password", password);
  await Promise.all([a.waitForURL((u) => u.pathname === "/loggedin" || u.pathname === "/auth/challenge"), a.click("#password-form button[type=submit]")]);
  expect(new URL(a.url()).pathname === "/loggedin", `the remembered browser was challenged: ${a.url()}`);

  step("the same code in another browser is refused (its step is spent)");
  const b = await context();
  await challenged(b);
  at = await submitCode(b, good);
  expect(at.pathname === "/auth/challenge" && (await json(b, "/auth/session")).status === 401, `a replayed code: ${at}`);

  step("a backup code works once");
  at = await submitCode(b, codes[0]);
  expect(at.pathname === "/loggedin", `a backup code: ${at}`);
  const c = await context();
  await challenged(c);
  at = await submitCode(c, codes[0]);
  expect(at.pathname === "/auth/challenge" && (await json(c, "/auth/session")).status === 401, `a used backup code: ${at}`);
  console.log(JSON.stringify({ ok: true, email, amr }));
} catch (err) {
  failed = true;
  console.error(`FAILED: ${err.message}`);
  if (current) await current.screenshot({ path: join(outDir, "totp-failure.png"), fullPage: true }).catch(() => {});
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
