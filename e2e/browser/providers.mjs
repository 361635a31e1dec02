// The sign-in page with every provider type on, and Sign in with Apple in
// a real browser: Apple answers with a form POST from its own site, which
// Chromium sends without the gateway's SameSite=Lax flow cookie; the
// gateway moves the answer to a GET of its callback, where the cookie
// comes along, and signs the user in. Then, signed out, the page marks
// Apple as last used; screenshots of that page at 1280 and 390 px, light
// and dark, go to OUT_DIR.
//
// Usage: node providers.mjs <gateway origin> <provider (Apple) origin> <out dir>
// Env: CHROMIUM_BIN (default /usr/bin/chromium).
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [origin, appleOrigin, outDir] = process.argv.slice(2);
if (!origin || !appleOrigin || !outDir) {
  console.error("usage: node providers.mjs <gateway origin> <provider origin> <out dir>");
  process.exit(2);
}
mkdirSync(outDir, { recursive: true });

const profile = mkdtempSync(join(tmpdir(), "convex-auth-chromium-"));
const step = (msg) => console.log(`step: ${msg}`);
function expect(cond, msg) {
  if (!cond) throw new Error(msg);
}

const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM_BIN || "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  viewport: { width: 1280, height: 800 },
  timeout: 60_000,
});
context.setDefaultTimeout(30_000);
const page = context.pages()[0] ?? (await context.newPage());

// Every request the browser makes, with the cookies it sent.
const requests = [];
page.on("request", async (req) => {
  const entry = { method: req.method(), url: req.url(), cookie: "" };
  requests.push(entry);
  try {
    entry.cookie = (await req.allHeaders()).cookie ?? "";
  } catch {}
});

const providers = ["github", "google", "apple", "microsoft", "gitlab", "discord", "slack", "okta", "acme"];

async function screenshots(suffix) {
  for (const scheme of ["light", "dark"]) {
    await page.emulateMedia({ colorScheme: scheme });
    for (const [name, width, height] of [["desktop", 1280, 900], ["phone", 390, 844]]) {
      await page.setViewportSize({ width, height });
      await page.screenshot({ path: join(outDir, `signin-providers${suffix}-${name}-${scheme}.png`), fullPage: true });
      if (name === "phone") {
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        expect(overflow <= 0, `the page is ${overflow}px wider than a ${width}px screen`);
      }
    }
  }
  await page.emulateMedia({ colorScheme: "light" });
  await page.setViewportSize({ width: 1280, height: 800 });
}

let failed = false;
try {
  step("the sign-in page: a button per provider, nothing loaded from elsewhere");
  await page.goto(`${origin}/loggedin`);
  expect(new URL(page.url()).pathname === "/auth/signin", `expected the sign-in page, got ${page.url()}`);
  for (const name of providers) {
    const button = page.locator(`a[data-provider="${name}"]`);
    expect((await button.count()) === 1, `no button for ${name}`);
    expect((await button.locator("svg").count()) === 1, `the ${name} button has no inline mark`);
  }
  expect((await page.locator("[data-last-used]").count()) === 0, "a new browser's page marks a provider as last used");
  const elsewhere = requests.filter((r) => !r.url.startsWith(origin));
  expect(elsewhere.length === 0, `the page loaded ${elsewhere.map((r) => r.url).join(", ")}`);

  step("Sign in with Apple: a cross-site form post");
  requests.length = 0;
  await Promise.all([
    page.waitForURL((u) => u.pathname === "/loggedin", { timeout: 30_000 }),
    page.click('a[data-provider="apple"]'),
  ]);
  const who = (await page.locator("#who").textContent()).trim();
  expect(who === "ada@example.com", `the upstream page shows ${JSON.stringify(who)}, want ada@example.com`);
  const callback = `${origin}/auth/callback/apple`;
  const post = requests.find((r) => r.method === "POST" && r.url === callback);
  const get = requests.find((r) => r.method === "GET" && r.url === callback);
  expect(post, `the browser did not post to ${callback}: ${requests.map((r) => r.method + " " + r.url).join(", ")}`);
  expect(requests.some((r) => r.url.startsWith(appleOrigin)), "the flow did not go through the provider");
  // SameSite=Lax at work: the cross-site POST carries no flow cookie...
  expect(!post.cookie.includes("convex_auth_flow"), `the cross-site POST carried the flow cookie: ${post.cookie}`);
  // ...and the GET it is moved to carries it, with the relayed answer.
  expect(get && get.cookie.includes("convex_auth_flow") && get.cookie.includes("convex_auth_callback"),
    `the GET callback lacked the flow or relay cookie: ${get && get.cookie}`);
  expect(!requests.some((r) => r.url.startsWith(callback + "?")), "the code appeared in a callback URL");

  step("signed out, the page marks Apple as last used");
  await Promise.all([page.waitForURL((u) => u.pathname === "/"), page.click("#signout button")]);
  await page.goto(`${origin}/auth/signin`);
  const marked = page.locator("[data-last-used]");
  expect((await marked.count()) === 1 && (await marked.getAttribute("data-provider")) === "apple", "Apple is not marked as last used");
  expect((await page.evaluate(() => document.cookie)).length === 0, "a script can read the gateway's cookies");
  await screenshots("");
  console.log(JSON.stringify({ ok: true, screenshots: outDir }));
} catch (err) {
  failed = true;
  console.error(`FAILED: ${err.message}`);
  await page.screenshot({ path: join(outDir, "providers-failure.png"), fullPage: true }).catch(() => {});
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
