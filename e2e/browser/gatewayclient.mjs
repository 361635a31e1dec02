// Drives headless Chromium through a page that uses the browser package
// (clients/js, bundled from clients/js/test/browser/fixture.tsx) behind the
// gateway: sign in with the package's signIn(), see useGatewayAuth report
// the user and Convex's client fetch a token; sign out with the package's
// signOut() in a second tab and see the first tab notice without a focus;
// end the session with the site admin API and see the tab notice on its
// next focus.
//
// Usage: node gatewayclient.mjs <gateway origin> <out dir>
// Env: CHROMIUM_BIN (default /usr/bin/chromium), CONVEX_AUTH_ADMIN_SECRET.
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [origin, outDir] = process.argv.slice(2);
const adminSecret = process.env.CONVEX_AUTH_ADMIN_SECRET;
if (!origin || !outDir || !adminSecret) {
  console.error("usage: CONVEX_AUTH_ADMIN_SECRET=… node gatewayclient.mjs <gateway origin> <out dir>");
  process.exit(2);
}
mkdirSync(outDir, { recursive: true });

// Generous: the suite must pass on a busy machine. The figures are printed.
// Bounds only: a starved machine runs pages and timers late.
const NOTICE_TIMEOUT_MS = 120_000;
const email = `ada.${Date.now()}@example.com`;
const password = "correct horse battery staple";
const started = Date.now();
const step = (msg) => console.log(`step (${((Date.now() - started) / 1000).toFixed(1)} s): ${msg}`);
function expect(cond, msg) {
  if (!cond) throw new Error(msg);
}

const profile = mkdtempSync(join(tmpdir(), "convex-auth-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM_BIN || "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  viewport: { width: 1280, height: 800 },
});

// Every /auth/token answer the pages got, with the token's claims.
const tokens = [];
context.on("response", async (res) => {
  const url = new URL(res.url());
  if (url.pathname !== "/auth/token") return;
  const entry = { status: res.status(), page: res.frame().page() };
  tokens.push(entry);
  if (res.status() === 200) {
    const { token } = await res.json();
    entry.claims = JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString("utf8"));
  }
});

const state = (page) =>
  page.locator("#state").evaluate((el) => ({ ...el.dataset }));

async function waitForState(page, authenticated, what) {
  await page.waitForFunction(
    (want) => {
      const el = document.getElementById("state");
      return el?.dataset.loading === "false" && el.dataset.authenticated === want;
    },
    String(authenticated),
    { timeout: NOTICE_TIMEOUT_MS },
  ).catch((e) => {
    throw new Error(`${what}: the page did not report authenticated=${authenticated} within ${NOTICE_TIMEOUT_MS} ms (${e.message})`);
  });
  return state(page);
}

async function signInWithPassword(page, { signUp }) {
  await Promise.all([page.waitForURL((u) => u.pathname === "/auth/signin"), page.click("#signin")]);
  const url = new URL(page.url());
  expect(url.searchParams.get("redirectTo") === "/app", `signIn() lost the page to come back to: ${page.url()}`);
  if (signUp) {
    await page.click("#signup-link");
    await page.waitForURL((u) => u.searchParams.get("mode") === "signup");
  }
  await page.fill("#email", email);
  await page.fill("#password", password);
  await Promise.all([page.waitForURL((u) => u.pathname === "/app"), page.click("#password-form button[type=submit]")]);
}

context.setDefaultTimeout(120_000);
const first = context.pages()[0] ?? (await context.newPage());
let current = first;
let failed = false;
try {
  step("open the app signed out");
  await first.goto(`${origin}/app`);
  let s = await waitForState(first, false, "signed out at first");
  expect(s.userId === "", `a signed-out page shows user ${s.userId}`);

  step("sign in with the package's signIn(): the gateway's page, sign up, back on /app");
  await signInWithPassword(first, { signUp: true });
  s = await waitForState(first, true, "after signing in");
  expect(s.email === email, `useGatewayAuth's user has email ${s.email}, want ${email}`);
  expect(/^[A-Za-z0-9_-]{22}$/.test(s.userId), `user ID ${s.userId}`);
  expect(s.provider === "password", `session provider ${s.provider}`);
  expect(s.sessionId !== "", "no session ID");
  const userId = s.userId;

  step("Convex's client asked the package for a token, and got the user's");
  const deadline = Date.now() + NOTICE_TIMEOUT_MS;
  while (!tokens.some((t) => t.page === first && t.status === 200) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
  }
  const minted = tokens.filter((t) => t.page === first && t.status === 200);
  expect(minted.length >= 1, "Convex's client never fetched a token through the package");
  expect(minted[0].claims.sub === userId, `the token's sub ${minted[0].claims.sub} is not the user ${userId}`);
  console.log(`tokens fetched by Convex's client after sign-in: ${minted.length}`);

  step("the hook's fetchAccessToken mints a fresh one");
  await first.click("#token");
  await first.waitForFunction(() => document.getElementById("outcome")?.textContent?.startsWith("token "));
  const pageToken = (await first.locator("#outcome").textContent()).slice("token ".length);
  const claims = JSON.parse(Buffer.from(pageToken.split(".")[1], "base64url").toString("utf8"));
  expect(claims.sub === userId && claims.sid === s.sessionId, `fetchAccessToken's token is for ${claims.sub}/${claims.sid}`);

  step("a second tab, signed in through the same cookie");
  const second = await context.newPage();
  current = second;
  await second.goto(`${origin}/app`);
  await waitForState(second, true, "second tab");

  step("signOut() in the second tab; the first tab notices without a focus");
  const focusBefore = await first.evaluate(() => window.focusEvents);
  const clickedAt = await second.evaluate(() => Date.now());
  await second.click("#signout");
  await waitForState(second, false, "the tab that signed out");
  current = first;
  await waitForState(first, false, "the other tab");
  const signedOutAt = await first.evaluate(() => window.signedOutAt);
  const focusAfter = await first.evaluate(() => window.focusEvents);
  expect(focusAfter === focusBefore, `the first tab got ${focusAfter - focusBefore} focus events: it must notice through the channel`);
  console.log(`cross-tab sign-out noticed in ${signedOutAt - clickedAt} ms (click in the second tab to the first tab's state)`);

  step("sign in again in the first tab");
  await signInWithPassword(first, { signUp: false });
  s = await waitForState(first, true, "signed in again");
  expect(s.userId === userId, `signed in again as ${s.userId}`);

  step("end the user's sessions with the site admin API; the tab notices on its next focus");
  const res = await fetch(`${origin}/auth/admin/users/${encodeURIComponent(userId)}/sessions`, {
    method: "DELETE",
    headers: { authorization: `Bearer ${adminSecret}` },
  });
  const body = await res.json();
  expect(res.status === 200 && body.ended >= 1, `the admin API answered ${res.status} ${JSON.stringify(body)}`);
  // Until then the page has no reason to ask: it still says signed in.
  await new Promise((r) => setTimeout(r, 300));
  s = await state(first);
  expect(s.authenticated === "true", "the page noticed the revocation before any focus: the test cannot tell focus did it");
  // The second tab is brought to the front, then the first: the first gets
  // focus back as a user's click on its tab would give it.
  await second.bringToFront();
  const focusedAt = await first.evaluate(() => Date.now());
  await first.bringToFront();
  if ((await first.evaluate(() => window.focusEvents)) === focusAfter) {
    // Headless Chromium does not always move window focus between pages:
    // fire the event the browser fires.
    console.log("bringToFront fired no focus event in headless Chromium: dispatching window focus");
    await first.evaluate(() => window.dispatchEvent(new Event("focus")));
  }
  await waitForState(first, false, "after focus");
  const noticedAt = await first.evaluate(() => window.signedOutAt);
  console.log(`admin revocation noticed ${noticedAt - focusedAt} ms after the focus`);
  await first.screenshot({ path: join(outDir, "gatewayclient.png") });
} catch (e) {
  failed = true;
  console.error(`FAIL: ${e.stack}`);
  await current.screenshot({ path: join(outDir, "failure.png") }).catch(() => {});
} finally {
  step("done");
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
