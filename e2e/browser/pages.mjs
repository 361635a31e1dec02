// Drives headless Chromium through the gateway's pages, as users would:
// a wrong password comes back to the sign-in page with the error and the
// typed email, and reloading it posts nothing (the browser's posts are
// counted); a script's post still gets 401; the account page leads back to
// the app; a new name reaches the next token of both of the user's
// sessions; "Delete account" only asks, and the second page deletes; and
// none of the gateway's pages asks the app for /favicon.ico, while a page
// of the app without an icon does (so the check can fail). Screenshots of
// the error and of the delete page go to OUT_DIR.
//
// Usage: node pages.mjs <gateway origin> <app URL> <out dir>
// Env: CHROMIUM_BIN (default /usr/bin/chromium).
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [origin, appURL, outDir] = process.argv.slice(2);
if (!origin || !appURL || !outDir) {
  console.error("usage: node pages.mjs <gateway origin> <app URL> <out dir>");
  process.exit(2);
}
mkdirSync(outDir, { recursive: true });

const email = `ada.${Date.now()}@example.com`;
const password = "correct horse battery staple";
const wrong = "wrong horse battery staple";
const name = "Ada King, Gräfin Lovelace";
const step = (msg) => console.log(`step: ${msg}`);
function expect(cond, msg) {
  if (!cond) throw new Error(msg);
}
// The app counts the requests for /favicon.ico it gets.
const favicons = async () => (await (await fetch(`${appURL}/favicons`)).json()).count;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_BIN || "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const viewport = { width: 1280, height: 900 };
const open = async () => (await browser.newContext({ viewport })).newPage();
const a = await open();
const b = await open();
// Every POST each browser sends to the password form.
const posts = new Map();
for (const page of [a, b]) {
  posts.set(page, 0);
  page.on("request", (r) => {
    if (r.method() === "POST" && new URL(r.url()).pathname === "/auth/signin/password") posts.set(page, posts.get(page) + 1);
  });
}
let current = a;
let failed = false;

try {
  step("A signs up");
  await a.goto(`${origin}/auth/signin?mode=signup`);
  await a.fill("#email", email);
  await a.fill("#password", password);
  await Promise.all([a.waitForURL((u) => u.pathname === "/loggedin"), a.click("#password-form button[type=submit]")]);

  step("B types a wrong password: back on the sign-in page with the error and the email");
  current = b;
  await b.goto(`${origin}/loggedin`);
  await b.fill("#email", email);
  await b.fill("#password", wrong);
  await Promise.all([
    b.waitForURL((u) => u.pathname === "/auth/signin" && u.searchParams.get("error") === "credentials"),
    b.click("#password-form button[type=submit]"),
  ]);
  const url = b.url();
  for (const secret of [email, encodeURIComponent(email), wrong, encodeURIComponent(wrong)]) {
    expect(!url.includes(secret), `the URL holds what was typed: ${url}`);
  }
  const shown = async () => {
    expect((await b.locator("#error").textContent()).includes("incorrect"), "no error on the page");
    expect((await b.inputValue("#email")) === email, "the typed email is not kept");
    expect((await b.inputValue("#password")) === "", "the password is kept");
  };
  await shown();
  expect(posts.get(b) === 1, `B posted the form ${posts.get(b)} times, want 1`);
  await b.screenshot({ path: join(outDir, "signin-error.png"), fullPage: true });

  step("reloading shows the error again and posts nothing");
  await b.reload();
  expect(b.url() === url, `the reload went to ${b.url()}`);
  await shown();
  expect(posts.get(b) === 1, `after the reload B posted the form ${posts.get(b)} times, want 1`);

  step("a script's post (from a page of the app) still gets 401");
  await b.goto(`${origin}/app`);
  const res = await b.evaluate(async ([email, wrong]) => {
    const r = await fetch("/auth/signin/password", { method: "POST", body: new URLSearchParams({ intent: "signin", email, password: wrong }) });
    return { status: r.status, redirected: r.redirected, type: r.headers.get("content-type") };
  }, [email, wrong]);
  expect(res.status === 401 && !res.redirected, `a script's wrong password got ${JSON.stringify(res)}, want 401`);

  step("B signs in");
  await b.goto(`${origin}/loggedin`);
  await b.fill("#email", email);
  await b.fill("#password", password);
  await Promise.all([b.waitForURL((u) => u.pathname === "/loggedin"), b.click("#password-form button[type=submit]")]);

  step("the account page leads back to the app");
  current = a;
  await a.goto(`${origin}/auth/account`);
  expect((await a.getAttribute("#back-to-app", "href")) === "/loggedin", "the way back is not after_sign_in");
  await Promise.all([a.waitForURL((u) => u.pathname === "/loggedin"), a.click("#back-to-app")]);

  step("A names itself; the next token of both sessions carries the name");
  await a.goto(`${origin}/auth/account`);
  await a.fill("#name", name);
  await Promise.all([
    a.waitForURL((u) => u.pathname === "/auth/account" && u.searchParams.get("notice") === "name_saved"),
    a.click("#name-form button[type=submit]"),
  ]);
  expect((await a.inputValue("#name")) === name, "the account page does not show the new name");
  for (const page of [a, b]) {
    current = page;
    await page.goto(`${origin}/loggedin`);
    const got = (await page.locator("#name").textContent()).trim();
    expect(got === name, `the app's token names ${JSON.stringify(got)}, want ${JSON.stringify(name)}`);
  }

  step("Delete account asks on a page of its own, and deletes nothing yet");
  current = a;
  await a.goto(`${origin}/auth/account`);
  await Promise.all([a.waitForURL((u) => u.pathname === "/auth/account/delete"), a.click("#delete-account")]);
  expect((await a.locator("h1").textContent()).trim() === "Delete your account?", "no confirmation page");
  const removed = await a.locator("#removed").textContent();
  expect(removed.includes(email) && removed.includes("Password") && removed.includes("2 sessions"), `the page does not say what goes: ${removed}`);
  await a.screenshot({ path: join(outDir, "account-delete.png"), fullPage: true });
  current = b;
  await b.goto(`${origin}/loggedin`);
  expect(new URL(b.url()).pathname === "/loggedin", "the account is gone before the second click");

  step("the second page's button deletes");
  current = a;
  await Promise.all([a.waitForURL((u) => u.pathname === "/auth/account/delete"), a.click("#confirm-delete")]);
  expect((await a.locator("h1").textContent()).trim() === "Account deleted", "no Account deleted page");
  current = b;
  await b.goto(`${origin}/loggedin`);
  expect(new URL(b.url()).pathname === "/auth/signin", `B is still signed in: ${b.url()}`);

  step("none of the gateway's pages asked the app for /favicon.ico");
  await b.waitForTimeout(1000); // a late icon request would be in by now
  expect((await favicons()) === 0, `the app got ${await favicons()} requests for /favicon.ico from the gateway's pages`);

  step("a page of the app that links no icon does (the check can fail)");
  current = await open();
  await current.goto(`${origin}/plain`);
  const until = Date.now() + 15000;
  while ((await favicons()) === 0) {
    expect(Date.now() < until, "Chromium never asked for /favicon.ico: the check above proves nothing");
    await current.waitForTimeout(100);
  }
  console.log(JSON.stringify({ ok: true, email, posts: posts.get(b), fetch: res, screenshots: outDir }));
} catch (err) {
  failed = true;
  console.error(`FAILED: ${err.message}`);
  await current.screenshot({ path: join(outDir, "pages-failure.png"), fullPage: true }).catch(() => {});
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
