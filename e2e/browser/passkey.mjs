// Drives headless Chromium through passkeys with CDP's virtual
// authenticators (WebAuthn.addVirtualAuthenticator: ctap2, internal
// transport, resident keys, user verification): sign up with a password,
// add a passkey on the account page, sign out, sign in with the passkey
// alone (/auth/session names the method, the token's amr the kind of key);
// an assertion whose UV bit is cleared (setResponseOverrideBits isBadUV) is
// refused by the gateway (user_verification required); a backup-eligible
// authenticator in a second browser (an account of its own) gives swk;
// removing that passkey ends its use. Every page but those that use passkeys runs no script.
//
// Usage: node passkey.mjs <gateway origin> <out dir>
// Env: CHROMIUM_BIN; UPDATE_DOC_SCREENSHOTS=<dir> also writes the docs'
// screenshots there.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [origin, outDir] = process.argv.slice(2);
if (!origin || !outDir) {
  console.error("usage: node passkey.mjs <gateway origin> <out dir>");
  process.exit(2);
}
mkdirSync(outDir, { recursive: true });
const docDir = process.env.UPDATE_DOC_SCREENSHOTS || "";

const email = `pk.${Date.now()}@example.com`;
const password = "correct horse battery staple";
const step = (msg) => console.log(`step: ${msg}`);
function expect(cond, msg) {
  if (!cond) throw new Error(msg);
}
async function shot(page, name, selector) {
  const target = selector ? page.locator(selector) : page;
  const opts = selector ? {} : { fullPage: true };
  await target.screenshot({ path: join(outDir, name), ...opts });
  if (docDir) await target.screenshot({ path: join(docDir, name), ...opts });
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_BIN || "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const viewport = { width: 1000, height: 900 };
let current;
let failed = false;

// device opens a browser context with a virtual platform authenticator.
async function device(extra) {
  const ctx = await browser.newContext({ viewport });
  // A busy machine is slow, never wrong: generous bounds, no timing.
  ctx.setDefaultTimeout(120_000);
  const page = await ctx.newPage();
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("WebAuthn.enable");
  const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: {
      protocol: "ctap2", transport: "internal", hasResidentKey: true,
      hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true, ...extra,
    },
  });
  return { page, cdp, authenticatorId };
}

async function json(page, path) {
  return page.evaluate(async (p) => {
    const r = await fetch(p, { credentials: "same-origin" });
    return { status: r.status, body: await r.json().catch(() => null) };
  }, path);
}

function claims(token) {
  return JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString());
}

async function signOut(page) {
  await page.goto(`${origin}/loggedin`);
  await Promise.all([page.waitForURL((u) => u.pathname === "/"), page.click("#signout button")]);
}

// passkeySignIn opens the sign-in page and returns where the browser ends
// up. The page asks for a passkey in the email field's autofill
// (conditional mediation), which the virtual authenticator answers at
// once; with button, it presses "Sign in with a passkey" instead (the
// page after a refused passkey offers no autofill).
async function passkeySignIn(page, button) {
  if (!button) await page.goto(`${origin}/auth/signin?redirectTo=/loggedin`);
  // From the page of a refusal (button), the URL already says error: only
  // a new page counts.
  const start = page.url();
  const done = page.waitForURL((u) => u.pathname === "/loggedin" || (u.searchParams.get("error") === "passkey" && u.href !== start));
  if (button) {
    expect((await page.locator("#passkey-form").getAttribute("data-conditional")) === null, "the page after a refusal offers autofill");
    await page.click("#passkey-form button");
  }
  await done;
  return new URL(page.url());
}

async function addPasskey(page, name) {
  await page.goto(`${origin}/auth/account#factors`);
  const csp = (await page.context().request.get(`${origin}/auth/account`)).headers()["content-security-policy"];
  expect(csp.includes("script-src 'self'") && !csp.includes("unsafe-inline'; script") && !/script-src[^;]*unsafe/.test(csp),
    `the account page's policy: ${csp}`);
  await page.fill("#passkey-name", name);
  await Promise.all([
    page.waitForURL((u) => u.searchParams.get("notice") === "passkey_added"),
    page.click("#add-passkey button[type=submit]"),
  ]);
  const listed = await page.locator("#passkeys li[data-passkey-id]").allTextContents();
  expect(listed.some((t) => t.includes(name)), `the account page does not list ${name}: ${listed}`);
}

try {
  const a = await device({});
  current = a.page;

  step("A signs up with a password and adds a passkey");
  await a.page.goto(`${origin}/auth/signin?mode=signup&redirectTo=/loggedin`);
  await a.page.fill("#email", email);
  await a.page.fill("#password", password);
  await Promise.all([a.page.waitForURL((u) => u.pathname === "/loggedin"), a.page.click("#password-form button[type=submit]")]);
  await addPasskey(a.page, "Laptop");
  await shot(a.page, "passkey-added.png", "#factors");

  step("A signs out and signs in with the passkey alone, from the autofill");
  await signOut(a.page);
  const signinCSP = (await a.page.context().request.get(`${origin}/auth/signin`)).headers()["content-security-policy"];
  expect(/script-src 'self'; connect-src 'self'/.test(signinCSP), `the sign-in page's policy: ${signinCSP}`);
  let at = await passkeySignIn(a.page);
  expect(at.pathname === "/loggedin", `the passkey did not sign in: ${at}`);
  const s = await json(a.page, "/auth/session");
  expect(s.status === 200 && s.body.session.provider === "passkey", `/auth/session: ${JSON.stringify(s)}`);
  const t = await json(a.page, "/auth/token");
  const amrA = claims(t.body.token).amr || [];
  console.log(`amr (device-bound passkey): ${JSON.stringify(amrA)}`);
  expect(amrA.includes("hwk") && !amrA.includes("swk") && amrA.includes("mfa"), `amr of a device-bound passkey: ${JSON.stringify(amrA)}`);

  step("an assertion without user verification is refused by the gateway");
  await signOut(a.page);
  await a.cdp.send("WebAuthn.setResponseOverrideBits", { authenticatorId: a.authenticatorId, isBadUV: true });
  at = await passkeySignIn(a.page);
  expect(at.pathname === "/auth/signin" && at.searchParams.get("error") === "passkey", `a UV-less assertion: ${at}`);
  expect((await json(a.page, "/auth/session")).status === 401, "a UV-less assertion made a session");
  await a.cdp.send("WebAuthn.setResponseOverrideBits", { authenticatorId: a.authenticatorId, isBadUV: false });

  step("with UV again, the button signs A in");
  at = await passkeySignIn(a.page, true);
  expect(at.pathname === "/loggedin", `the passkey button did not sign in: ${at}`);
  await signOut(a.page);

  step("B, a backup-eligible (synced) authenticator, adds a passkey and signs in with it: swk");
  const b = await device({ defaultBackupEligibility: true, defaultBackupState: true });
  current = b.page;
  await b.page.goto(`${origin}/auth/signin`);
  expect((await b.page.locator("#email").getAttribute("autocomplete")) === "username webauthn", "the email field offers no passkey autofill");
  await shot(b.page, "signin-passkey.png");
  // B's own account: A's now asks a password sign-in for A's passkey.
  await b.page.goto(`${origin}/auth/signin?mode=signup&redirectTo=/loggedin`);
  await b.page.fill("#email", `b.${email}`);
  await b.page.fill("#password", password);
  await Promise.all([b.page.waitForURL((u) => u.pathname === "/loggedin"), b.page.click("#password-form button[type=submit]")]);
  await addPasskey(b.page, "Phone");
  expect(await b.page.locator("#passkeys li:has-text('Phone') .badge").count() === 1, "the synced passkey is not marked synced");
  await signOut(b.page);
  at = await passkeySignIn(b.page);
  expect(at.pathname === "/loggedin", `B's passkey did not sign in: ${at}`);
  const amrB = claims((await json(b.page, "/auth/token")).body.token).amr || [];
  console.log(`amr (synced passkey): ${JSON.stringify(amrB)}`);
  expect(amrB.includes("swk") && !amrB.includes("hwk"), `amr of a synced passkey: ${JSON.stringify(amrB)}`);

  step("B removes its passkey (a passkey sign-in is recent); it no longer signs in");
  await b.page.goto(`${origin}/auth/account#factors`);
  await Promise.all([
    b.page.waitForURL((u) => u.searchParams.get("notice") === "passkey_removed"),
    b.page.locator("#passkeys li:has-text('Phone') button").click(),
  ]);
  await signOut(b.page);
  at = await passkeySignIn(b.page);
  expect(at.pathname === "/auth/signin" && at.searchParams.get("error") === "passkey", `a removed passkey: ${at}`);

  step("pages that use no passkey run no script");
  for (const path of ["/auth/signin?mode=signup", "/auth/signin?error=state"]) {
    const res = await a.page.context().request.get(`${origin}${path}`, { maxRedirects: 0 });
    const csp = res.headers()["content-security-policy"] || "";
    if (path.includes("error=state")) {
      expect(csp.includes("script-src 'self'"), `the sign-in page with an error lost its script: ${csp}`);
      continue;
    }
    expect(csp.startsWith("default-src 'none'") && !csp.includes("script-src"), `${path} allows a script: ${csp}`);
  }
  console.log(JSON.stringify({ ok: true, email, amrA, amrB }));
} catch (err) {
  failed = true;
  console.error(`FAILED: ${err.message}`);
  if (current) await current.screenshot({ path: join(outDir, "passkey-failure.png"), fullPage: true }).catch(() => {});
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
