// Builds the example once (next build), runs it behind the built gateway
// (CONVEX_AUTH_CADDY_BIN) with the example's own Caddyfile, and checks each
// protected page over several transports: plain http on localhost, plain
// http on other loopback names, and HTTPS with Caddy's internal CA.
//
// The pages call Convex through the real helpers: fetchQuery with the
// injected header (/loggedin), @convex-dev/better-auth's fetchAuthQuery
// (/loggedin/better-auth, `inject cookie better-auth`), @convex-dev/auth
// 0.0.x's convexAuthNextjsToken (/loggedin/convex-auth, `inject cookie
// convex-auth`) and 2.x's convexAuthNextjsAccessToken
// (/loggedin/convex-auth-2, `inject cookie convex-auth-2`). In Chromium,
// on one transport, the browser's Convex client (ConvexProviderWithGateway
// of clients/js) runs useQuery with the gateway's token. With no Convex
// deployment here, NEXT_PUBLIC_CONVEX_URL points at a stand-in
// (standin/convex.mjs) that checks each bearer token the way Convex does,
// against the auth.config.ts that `caddy convex-auth convex-config` prints
// for the run's Caddyfile, over HTTP and over the WebSocket sync protocol.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { execFile, spawn } from "node:child_process";
import dns from "node:dns";
import { existsSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import * as jose from "jose";
import { startConvexStandIn, WIRE_FORMAT_VERSION } from "../standin/convex.mjs";

const execFileP = promisify(execFile);
const exampleDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const nextBin = path.join(exampleDir, "node_modules", ".bin", "next");

// Bounds only: a starved machine starts Next.js and Caddy slowly.
const READY_TIMEOUT_MS = 180_000;
const STOP_TIMEOUT_MS = 10_000;

// Every cookie name @convex-dev/better-auth's getToken reads (better-auth's
// getSessionCookie with cookieName convex_jwt and the default prefix): the
// first one present wins, in this order.
const BETTER_AUTH_READS = [
  "__Secure-better-auth.convex_jwt",
  "better-auth.convex_jwt",
  "__Secure-better-auth-convex_jwt",
  "better-auth-convex_jwt",
];
// Every cookie name @convex-dev/auth 0.0.x's convexAuthNextjsToken reads:
// one of the two, by the Host header (nextjs/server/cookies.js,
// server/utils.js). 2.x's convexAuthNextjsAccessToken reads the first on
// every host (ssr/nextjs/index.js, ssr/cookies.js).
const CONVEX_AUTH_READS = ["__convexAuthJWT", "__Host-__convexAuthJWT"];
const convexAuthNameFor = (hostHeader) =>
  /(localhost|127\.0\.0\.1):\d+/.test(hostHeader) ? "__convexAuthJWT" : "__Host-__convexAuthJWT";

// The runs. Names other than localhost resolve to loopback in this test
// only (testLookup); Caddy listens on every interface.
const TRANSPORTS = [
  { name: "http://localhost", scheme: "http", host: "localhost" },
  // A *.localhost name: Convex Auth's rule matches "localhost:<port>"
  // anywhere in the Host header, so this is local to it too.
  { name: "http://app.localhost", scheme: "http", host: "app.localhost" },
  // The IPv6 loopback: local to the gateway, not to Convex Auth's rule.
  { name: "http://[::1]", scheme: "http", host: "[::1]", needsIPv6: true },
  // A real-looking name over HTTPS: __Secure- and __Host- names.
  { name: "https://app.example.test (tls internal)", scheme: "https", host: "app.example.test" },
];
const LOOPBACK_NAMES = new Set(["app.localhost", "app.example.test"]);

function testLookup(hostname, options, callback) {
  if (!LOOPBACK_NAMES.has(hostname)) return dns.lookup(hostname, options, callback);
  if (options.all) return callback(null, [{ address: "127.0.0.1", family: 4 }]);
  return callback(null, "127.0.0.1", 4);
}

// CAs the test trusts for HTTPS: Caddy's internal root, once it exists.
const trustedCAs = [];

// request is one HTTP(S) exchange with the test's name resolution and CAs,
// without following redirects.
function request(url, { method = "GET", headers = {}, body } = {}) {
  const u = new URL(url);
  const mod = u.protocol === "https:" ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.request(
      u,
      { method, headers, agent: false, lookup: testLookup, ca: trustedCAs.length ? trustedCAs : undefined },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () =>
          resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString("utf8") }),
        );
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

async function getJSON(url) {
  const res = await request(url);
  if (res.status !== 200) throw new Error(`GET ${url} answered ${res.status}`);
  return JSON.parse(res.text);
}

const sha256 = (value) => createHash("sha256").update(value).digest("hex");

function caddyBin(t) {
  const bin = process.env.CONVEX_AUTH_CADDY_BIN;
  if (!bin) {
    if (process.env.CI) throw new Error("CONVEX_AUTH_CADDY_BIN is not set; CI must run this test: run make test");
    t.skip("CONVEX_AUTH_CADDY_BIN is not set: run make test (or make caddy and set it)");
  }
  return bin;
}

async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function canListenIPv6() {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.on("error", () => resolve(false));
    srv.listen(0, "::1", () => srv.close(() => resolve(true)));
  });
}

// start runs a long-lived process, stopped when t ends, and waits until
// ready() resolves true.
async function start(t, name, cmd, args, env, ready) {
  const proc = spawn(cmd, args, { cwd: exampleDir, env, stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  proc.stdout.on("data", (b) => (log += b));
  proc.stderr.on("data", (b) => (log += b));
  let exited = false;
  const exit = new Promise((resolve) => proc.on("exit", () => resolve((exited = true))));
  t.after(async () => {
    if (!exited) {
      proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), STOP_TIMEOUT_MS);
      await exit;
      clearTimeout(timer);
    }
  });
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (exited) throw new Error(`${name} exited before it was ready:\n${log}`);
    try {
      if (await ready()) return { log: () => log };
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${name} not ready:\n${log}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const answers200 = (url) => async () => (await request(url)).status === 200;

// navigate sends a request as a browser navigation and returns the status
// and Location.
async function navigate(url) {
  const res = await request(url, { headers: { "sec-fetch-mode": "navigate", accept: "text/html" } });
  return { status: res.status, location: res.headers.location };
}

// signIn posts the demo sign-in form, as the home page's button does, and
// returns the gateway's session cookie.
async function signIn(origin) {
  const res = await request(`${origin}/demo/signin/ada`, {
    method: "POST",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      "content-length": "0",
      origin,
      "sec-fetch-site": "same-origin",
      "sec-fetch-mode": "navigate",
    },
  });
  assert.equal(res.status, 303, `sign-in at ${origin}: ${res.status} ${res.text}`);
  const cookie = (res.headers["set-cookie"] ?? [])
    .map((line) => line.split(";", 1)[0])
    .find((pair) => /convex_session(_[\w-]+)?=./.test(pair));
  assert.ok(cookie, `no session cookie in ${res.headers["set-cookie"]}`);
  return cookie;
}

// page reads what the example's pages render.
function page(html) {
  const text = (id) => {
    const m = new RegExp(`<(?:dd|p) id="${id}"[^>]*>([\\s\\S]*?)</(?:dd|p)>`).exec(html);
    return m ? m[1].replace(/<!-- -->/g, "") : null;
  };
  const cookies = new Map();
  for (const m of html.matchAll(/<li data-cookie="([^"]+)" data-sha256="([0-9a-f]+)"/g)) cookies.set(m[1], m[2]);
  return {
    name: text("name"),
    email: text("email"),
    subject: text("subject"),
    tokenIdentifier: text("tokenIdentifier"),
    signedOut: text("signed-out") !== null,
    source: /id="(?:identity|signed-out)" data-source="([^"]+)"/.exec(html)?.[1] ?? null,
    error: text("error"),
    cookies,
    headerSha: /id="token-header" data-sha256="([0-9a-f]*)"/.exec(html)?.[1] ?? null,
  };
}

// A token a browser might send itself: right issuer and audience, no
// signature. It must never reach the app.
const forgedToken = (iss) =>
  new jose.UnsecuredJWT({ sub: "user_mallory", name: "Mallory" })
    .setIssuer(iss)
    .setAudience("convex")
    .setIssuedAt()
    .setExpirationTime("1h")
    .encode();

// caddyfileFor is the example's Caddyfile with the run's scheme and host in
// every site address and issuer (all of them are http://localhost:…), and
// for HTTPS Caddy's internal CA without touching the system trust store.
function caddyfileFor(source, { scheme, host }) {
  const uses = source.split("\n").filter((l) => !/^\s*#/.test(l) && l.includes("http://localhost:")).length;
  assert.equal(uses, 8, "the example's Caddyfile has 4 gateway sites, each with its issuer");
  let out = source.replaceAll("http://localhost:", `${scheme}://${host}:`);
  if (scheme === "https") {
    out = out.replace("{\n\tadmin off\n}", "{\n\tadmin off\n\tskip_install_trust\n\tauto_https disable_redirects\n}");
    out = out.replace(/^(https:\/\/\S+ \{)$/gm, "$1\n\ttls internal");
    assert.equal(out.split("\ttls internal\n").length - 1, 4, "tls internal in each gateway site");
    assert.ok(out.includes("skip_install_trust"));
  }
  return out;
}

// providersOf parses the auth.config.ts that convex-config printed.
function providersOf(authConfig) {
  const providers = [...authConfig.matchAll(/domain: "([^"]+)",\s*applicationID: "([^"]+)"/g)].map((m) => ({
    domain: m[1],
    applicationID: m[2],
  }));
  assert.ok(providers.length > 0, `no providers in\n${authConfig}`);
  return providers;
}

test("the committed convex/auth.config.ts is what the generator prints for the Caddyfile", async (t) => {
  const bin = caddyBin(t);
  if (!bin) return;
  const env = { ...process.env };
  for (const k of ["GATEWAY_PORT", "BETTER_AUTH_PORT", "CONVEX_AUTH_PORT", "CONVEX_AUTH_2_PORT"]) delete env[k];
  const { stdout } = await execFileP(bin, ["convex-auth", "convex-config", "--config", "Caddyfile"], { cwd: exampleDir, env });
  const committed = await readFile(path.join(exampleDir, "convex", "auth.config.ts"), "utf8");
  assert.equal(committed, stdout, "regenerate it: caddy convex-auth convex-config --config Caddyfile > convex/auth.config.ts");
});

test("the Convex stand-in speaks the wire format of the installed convex package", async () => {
  const { version } = JSON.parse(await readFile(path.join(exampleDir, "node_modules", "convex", "package.json"), "utf8"));
  const pinned = JSON.parse(await readFile(path.join(exampleDir, "package.json"), "utf8")).dependencies.convex;
  assert.equal(pinned, WIRE_FORMAT_VERSION, "package.json pins convex at the version standin/convex.mjs speaks");
  assert.equal(version, WIRE_FORMAT_VERSION, "reread node_modules/convex/dist/esm/browser/http_client.js and update standin/convex.mjs");
});

test("every page behind the gateway, with the real server helpers, over each transport", async (t) => {
  const bin = caddyBin(t);
  if (!bin) return;

  const buildEnv = { ...process.env, NEXT_TELEMETRY_DISABLED: "1" };
  // Read at run time, not inlined by the build.
  delete buildEnv.NEXT_PUBLIC_CONVEX_URL;
  delete buildEnv.NEXT_PUBLIC_CONVEX_SITE_URL;
  // REUSE_NEXT_BUILD=1 skips the build when one exists (for iterating on
  // this test; never in CI).
  if (process.env.REUSE_NEXT_BUILD === "1" && !process.env.CI && existsSync(path.join(exampleDir, ".next", "BUILD_ID"))) {
    t.diagnostic("reusing the existing .next build (REUSE_NEXT_BUILD=1)");
  } else {
    const buildStarted = Date.now();
    await execFileP(nextBin, ["build"], { cwd: exampleDir, env: buildEnv, maxBuffer: 16 << 20 });
    t.diagnostic(`next build took ${((Date.now() - buildStarted) / 1000).toFixed(1)} s`);
  }

  const home = await mkdtemp(path.join(os.tmpdir(), "convex-auth-nextjs-"));
  t.after(() => rm(home, { recursive: true, force: true }));

  let providers = [];
  const convex = await startConvexStandIn({ providers: () => providers, getJSON });
  t.after(() => convex.close());

  const nextPort = await freePort();
  const env = {
    ...buildEnv,
    HOME: home,
    // Caddy's storage (keys, the internal CA) stays in the test's directory.
    XDG_DATA_HOME: path.join(home, "data"),
    XDG_CONFIG_HOME: path.join(home, "config"),
    NEXT_PORT: String(nextPort),
    // Convex's URL (fetchQuery) and its site URL (where Better Auth's helper
    // fetches tokens): the stand-in serves both.
    NEXT_PUBLIC_CONVEX_URL: convex.url,
    NEXT_PUBLIC_CONVEX_SITE_URL: convex.url,
  };
  const next = await start(
    t,
    "next start",
    nextBin,
    ["start", "--port", String(nextPort), "--hostname", "127.0.0.1"],
    env,
    answers200(`http://127.0.0.1:${nextPort}/`),
  );

  const source = await readFile(path.join(exampleDir, "Caddyfile"), "utf8");
  const ipv6 = await canListenIPv6();

  for (const transport of TRANSPORTS) {
    await t.test(transport.name, async (t) => {
      if (transport.needsIPv6 && !ipv6) {
        t.skip("this machine has no IPv6 loopback");
        return;
      }
      const ports = {
        GATEWAY_PORT: await freePort(),
        BETTER_AUTH_PORT: await freePort(),
        CONVEX_AUTH_PORT: await freePort(),
        CONVEX_AUTH_2_PORT: await freePort(),
        DEMO_SIGNIN_PORT: await freePort(),
      };
      const runEnv = { ...env, ...Object.fromEntries(Object.entries(ports).map(([k, v]) => [k, String(v)])) };
      const dir = path.join(home, transport.host.replace(/[^a-z0-9.]/g, "_"));
      await mkdir(dir, { recursive: true });
      const caddyfile = path.join(dir, "Caddyfile");
      await writeFile(caddyfile, caddyfileFor(source, transport));

      const origin = (port) => `${transport.scheme}://${transport.host}:${port}`;
      const main = origin(ports.GATEWAY_PORT);
      const betterAuth = origin(ports.BETTER_AUTH_PORT);
      const convexAuth = origin(ports.CONVEX_AUTH_PORT);
      const convexAuth2 = origin(ports.CONVEX_AUTH_2_PORT);

      // Convex trusts what convex-config prints for this Caddyfile.
      const { stdout: authConfig } = await execFileP(bin, ["convex-auth", "convex-config", "--config", caddyfile, "--adapter", "caddyfile"], { cwd: exampleDir, env: runEnv });
      providers = providersOf(authConfig);
      assert.deepEqual(
        providers.map((p) => p.domain).sort(),
        [main, betterAuth, convexAuth, convexAuth2].sort(),
        "auth.config.ts names each site's issuer",
      );

      const rootCA = path.join(runEnv.XDG_DATA_HOME, "caddy", "pki", "authorities", "local", "root.crt");
      await start(t, "caddy", bin, ["run", "--config", caddyfile, "--adapter", "caddyfile"], runEnv, async () => {
        if (transport.scheme === "https") {
          if (!existsSync(rootCA)) return false;
          // The test trusts Caddy's internal root in Node only.
          if (trustedCAs.length === 0) trustedCAs.push(await readFile(rootCA));
        }
        for (const o of [main, betterAuth, convexAuth, convexAuth2]) {
          if ((await request(`${o}/.well-known/jwks.json`)).status !== 200) return false;
        }
        return true;
      });

      // calls made to the stand-in while fn runs.
      const callsDuring = async (fn) => {
        const from = convex.calls.length;
        const result = await fn();
        return { result, calls: convex.calls.slice(from) };
      };
      const assertAda = (p, iss, source) => {
        assert.equal(p.source, source);
        assert.equal(p.name, "Ada Lovelace");
        assert.equal(p.email, "ada@example.com");
        assert.equal(p.subject, "user_ada");
        assert.equal(p.tokenIdentifier, `${iss}|user_ada`);
      };

      await t.test("x-convex-token: fetchQuery with the injected header", async () => {
        const nav = await navigate(`${main}/loggedin`);
        assert.equal(nav.status, 302);
        assert.equal(nav.location, "/?redirectTo=%2Floggedin");
        assert.equal((await request(`${main}/loggedin`)).status, 401, "a signed-out fetch gets 401");

        const cookie = await signIn(main);
        const forged = forgedToken(main);
        const { result: res, calls } = await callsDuring(() =>
          request(`${main}/loggedin`, { headers: { cookie, "x-convex-token": forged } }),
        );
        assert.equal(res.status, 200, `${res.status}; next start's log ends:\n${next.log().slice(-3000)}`);
        const p = page(res.text);
        assertAda(p, main, "x-convex-token");
        assert.equal(calls.length, 1);
        assert.equal(calls[0].fn, "users:me");
        assertAccepted(calls[0], main);
        assert.equal(sha256(calls[0].bearer), p.headerSha, "Convex got the token the gateway injected");

        // The browser client's token endpoint answers for the same session.
        const tok = await request(`${main}/auth/token`, { headers: { cookie, "sec-fetch-site": "same-origin" } });
        assert.equal(tok.status, 200);
        const { token, expiresAt } = JSON.parse(tok.text);
        assert.equal(typeof token, "string");
        assert.ok(expiresAt > Date.now());
      });

      await t.test("inject cookie better-auth: fetchAuthQuery of @convex-dev/better-auth", async (t) => {
        const nav = await navigate(`${betterAuth}/loggedin/better-auth`);
        assert.equal(nav.status, 302, "a signed-out browser is redirected by the gateway");
        assert.equal(nav.location, "/?redirectTo=%2Floggedin%2Fbetter-auth");

        const session = await signIn(betterAuth);
        // A copy of every name the helper reads, sent by the client.
        const forged = forgedToken(betterAuth);
        const cookie = [session, ...BETTER_AUTH_READS.map((n) => `${n}=${forged}`)].join("; ");
        const get = (query) => callsDuring(() => request(`${betterAuth}/loggedin/better-auth${query}`, { headers: { cookie } }));

        // jwtCache on, isAuthError () => true: the gateway's token, no
        // token fetch.
        let { result: res, calls } = await get("");
        assert.equal(res.status, 200, `${res.status}; next start's log ends:\n${next.log().slice(-3000)}`);
        let p = page(res.text);
        assertAda(p, betterAuth, "fetchAuthQuery:gateway");
        assert.deepEqual(calls.map((c) => `${c.method} ${c.path}`), ["POST /api/query"], "one query, no token fetch");
        assertAccepted(calls[0], betterAuth);
        const injected = BETTER_AUTH_READS.filter((n) => p.cookies.has(n));
        assert.equal(injected.length, 1, `one token cookie reaches the app, not ${injected}`);
        const expected = transport.scheme === "https" || !/^(localhost|app\.localhost|\[::1\])$/.test(transport.host)
          ? "__Secure-better-auth.convex_jwt"
          : "better-auth.convex_jwt";
        assert.equal(injected[0], expected);
        assert.equal(sha256(calls[0].bearer), p.cookies.get(injected[0]), `the helper sent the token of ${injected[0]}`);
        assert.notEqual(p.cookies.get(injected[0]), sha256(forged), "the client's copy was stripped");
        if (p.headerSha) assert.equal(p.headerSha, p.cookies.get(injected[0]), "header and cookie carry one token");
        t.diagnostic(`token cookie: ${injected[0]}`);

        // An ordinary error from the query reaches the app as it is.
        ({ result: res, calls } = await get("?query=failing"));
        assert.equal(res.status, 200, `${res.status}; next start's log ends:\n${next.log().slice(-3000)}`);
        p = page(res.text);
        assert.match(p.error, /Uncaught Error: the report is not ready yet$/);
        assert.deepEqual(calls.map((c) => `${c.fn ?? c.path}:${c.bearer ? "token" : "none"}`), ["users:failing:token"]);
        t.diagnostic(`gateway setup, failing query: the app gets "${p.error.replace(/\n/g, " ")}"`);

        // The isAuthError of Convex + Better Auth's docs: the ordinary
        // error makes the helper fetch a token from convexSiteUrl, with the
        // request's cookies, then run the query again without a token.
        ({ result: res, calls } = await get("?setup=labs&query=failing"));
        assert.equal(res.status, 200, `${res.status}; next start's log ends:\n${next.log().slice(-3000)}`);
        p = page(res.text);
        assert.deepEqual(
          calls.map((c) => `${c.method} ${c.fn ?? c.path}:${c.bearer ? "token" : "none"}`),
          ["POST users:failing:token", "GET /api/auth/convex/token:none", "POST users:failing:none"],
        );
        assertAccepted(calls[0], betterAuth);
        assert.ok(calls[1].cookieNames.includes(injected[0]), "the token fetch carries the request's cookies");
        assert.match(p.error, /Uncaught Error: not signed in$/, "the real error is replaced by the retry's");
        t.diagnostic(`labs isAuthError, failing query: the app gets "${p.error.replace(/\n/g, " ")}" instead of the query's own error`);

        // Without jwtCache the helper never reads the cookie.
        ({ result: res, calls } = await get("?setup=default"));
        assert.equal(res.status, 200, `${res.status}; next start's log ends:\n${next.log().slice(-3000)}`);
        p = page(res.text);
        assert.deepEqual(
          calls.map((c) => `${c.method} ${c.fn ?? c.path}:${c.bearer ? "token" : "none"}`),
          ["GET /api/auth/convex/token:none", "POST users:me:none"],
        );
        assert.ok(p.signedOut, "without jwtCache the signed-in user is signed out to Convex");
        t.diagnostic("no jwtCache: token fetch from convexSiteUrl (404), then the query without a token: the page shows the user signed out");
      });

      await t.test("inject cookie convex-auth: convexAuthNextjsToken of @convex-dev/auth", async (t) => {
        const nav = await navigate(`${convexAuth}/loggedin/convex-auth`);
        assert.equal(nav.status, 302, "a signed-out browser is redirected by the gateway");
        assert.equal(nav.location, "/?redirectTo=%2Floggedin%2Fconvex-auth");

        const session = await signIn(convexAuth);
        const forged = forgedToken(convexAuth);
        const cookie = [session, ...CONVEX_AUTH_READS.map((n) => `${n}=${forged}`)].join("; ");
        let { result: res, calls } = await callsDuring(() =>
          request(`${convexAuth}/loggedin/convex-auth`, { headers: { cookie } }),
        );
        assert.equal(res.status, 200, `${res.status}; next start's log ends:\n${next.log().slice(-3000)}`);
        let p = page(res.text);
        assertAda(p, convexAuth, "convexAuthNextjsToken");
        assert.equal(calls.length, 1);
        assertAccepted(calls[0], convexAuth);
        const injected = CONVEX_AUTH_READS.filter((n) => p.cookies.has(n));
        assert.deepEqual(injected, [convexAuthNameFor(new URL(convexAuth).host)], "the name the helper reads for this Host");
        assert.equal(sha256(calls[0].bearer), p.cookies.get(injected[0]), `the helper sent the token of ${injected[0]}`);
        assert.notEqual(p.cookies.get(injected[0]), sha256(forged), "the client's copy was stripped");
        t.diagnostic(`Host ${new URL(convexAuth).host}: token cookie ${injected[0]}`);

        // Convex Auth's middleware (proxy.ts) finds the token without its
        // refresh token and clears it before the page runs.
        ({ result: res, calls } = await callsDuring(() =>
          request(`${convexAuth}/loggedin/convex-auth/with-middleware`, { headers: { cookie } }),
        ));
        assert.equal(res.status, 200, `${res.status}; next start's log ends:\n${next.log().slice(-3000)}`);
        p = page(res.text);
        assert.ok(p.signedOut, "behind Convex Auth's middleware the page has no token");
        assert.deepEqual(calls.map((c) => `${c.fn}:${c.bearer ? "token" : "none"}`), ["users:me:none"]);
        const cleared = (res.headers["set-cookie"] ?? []).map((l) => l.split("=", 1)[0]);
        t.diagnostic(`with convexAuthNextjsMiddleware: the page is signed out; the response clears ${cleared.join(", ")}`);

        // 2.x's reader behind the 0.0.x preset: it reads __convexAuthJWT
        // only, which the preset uses only where 0.0.x's localhost rule
        // holds. Hence the convex-auth-2 preset for 2.x (below).
        ({ result: res, calls } = await callsDuring(() =>
          request(`${convexAuth}/loggedin/convex-auth-2`, { headers: { cookie: session } }),
        ));
        assert.equal(res.status, 200, `${res.status}; next start's log ends:\n${next.log().slice(-3000)}`);
        p = page(res.text);
        if (injected[0] === "__convexAuthJWT") {
          assertAda(p, convexAuth, "convexAuthNextjsAccessToken");
        } else {
          assert.ok(p.signedOut, `2.x's reader does not read ${injected[0]}`);
          assert.deepEqual(calls.map((c) => `${c.fn}:${c.bearer ? "token" : "none"}`), ["users:me:none"]);
        }
        t.diagnostic(`@convex-dev/auth 2.x behind the convex-auth preset on ${new URL(convexAuth).host}: ${p.signedOut ? "signed out" : "signed in"}`);
      });

      await t.test("inject cookie convex-auth-2: convexAuthNextjsAccessToken of @convex-dev/auth 2.x", async (t) => {
        const nav = await navigate(`${convexAuth2}/loggedin/convex-auth-2`);
        assert.equal(nav.status, 302, "a signed-out browser is redirected by the gateway");
        assert.equal(nav.location, "/?redirectTo=%2Floggedin%2Fconvex-auth-2");

        const session = await signIn(convexAuth2);
        const forged = forgedToken(convexAuth2);
        const cookie = [session, ...CONVEX_AUTH_READS.map((n) => `${n}=${forged}`)].join("; ");
        const { result: res, calls } = await callsDuring(() =>
          request(`${convexAuth2}/loggedin/convex-auth-2`, { headers: { cookie } }),
        );
        assert.equal(res.status, 200, `${res.status}; next start's log ends:\n${next.log().slice(-3000)}`);
        const p = page(res.text);
        assertAda(p, convexAuth2, "convexAuthNextjsAccessToken");
        assert.equal(calls.length, 1);
        assertAccepted(calls[0], convexAuth2);
        const injected = CONVEX_AUTH_READS.filter((n) => p.cookies.has(n));
        assert.deepEqual(injected, ["__convexAuthJWT"], "the one name 2.x reads, on every host");
        assert.equal(sha256(calls[0].bearer), p.cookies.get("__convexAuthJWT"), "the helper sent the injected token");
        assert.notEqual(p.cookies.get("__convexAuthJWT"), sha256(forged), "the client's copy was stripped");
        t.diagnostic(`Host ${new URL(convexAuth2).host}: token cookie __convexAuthJWT`);
      });

      if (transport.host === "localhost") {
        await t.test("in Chromium: useQuery behind the package's signed-in state", (t) => browserCheck(t, { main, convex }));
      }
    });
  }
});

// browserCheck signs Ada in on the main site in headless Chromium and
// checks the browser side: useGatewayAuth (clients/js) reports her, the
// browser's Convex client authenticates over the stand-in's WebSocket with
// the gateway's token, and useQuery(api.users.me) shows her; the package's
// signOut() then signs the page out, server side too.
async function browserCheck(t, { main, convex }) {
  const executablePath = process.env.CHROMIUM_BIN || "/usr/bin/chromium";
  if (!existsSync(executablePath)) {
    if (process.env.CI) throw new Error(`${executablePath} is missing; CI must run the browser check: apt-get install chromium`);
    t.skip(`${executablePath} is missing: apt-get install chromium, or set CHROMIUM_BIN`);
    return;
  }
  const { chromium } = await import("playwright-core");
  const browser = await chromium.launch({
    executablePath,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  t.after(() => browser.close());
  const page = await browser.newPage();
  const browserLog = [];
  page.on("console", (m) => browserLog.push(`${m.type()}: ${m.text()}`));
  const live = (state, extra = "") => page.waitForSelector(`#live[data-state="${state}"]${extra}`, { timeout: 30_000 }).catch((e) => {
    throw new Error(`${e.message}\nbrowser console:\n${browserLog.join("\n")}`);
  });

  await page.goto(`${main}/`);
  await live("signed-out");

  const from = convex.calls.length;
  await Promise.all([page.waitForURL((u) => u.pathname === "/loggedin"), page.click('form[action="/demo/signin/ada"] button')]);
  // Convex's own isAuthenticated: the stand-in accepted the token.
  await live("signed-in", '[data-convex-authenticated="true"]');
  await page.waitForFunction(() => document.getElementById("live-convex-subject")?.textContent === "user_ada", null, { timeout: 30_000 });
  assert.equal(await page.textContent("#live-gateway-name"), "Ada Lovelace");
  assert.equal(await page.textContent("#live-convex-name"), "Ada Lovelace");

  const sync = convex.calls.slice(from).filter((c) => c.method === "WS");
  const auths = sync.filter((c) => c.authenticate === "User");
  assert.ok(auths.length >= 1, `the browser's client sent no token over the WebSocket: ${JSON.stringify(sync)}`);
  for (const a of auths) assertAccepted(a, main);
  assert.ok(sync.some((c) => c.fn === "users:me" && c.identity?.subject === "user_ada"), "useQuery ran as Ada");
  assert.deepEqual(sync.filter((c) => c.error), [], "the stand-in understood every message");
  t.diagnostic(`over the WebSocket: ${auths.length} token(s) accepted; messages seen: ${sync.map((c) => c.authenticate ? `Authenticate ${c.authenticate}` : c.fn).join(", ")}`);

  // The package's signOut(): the session ends, Convex's client drops the
  // token, and router.refresh() finds /loggedin protected again.
  const before = convex.calls.length;
  await page.click("#live-signout");
  await page.waitForURL((u) => u.pathname === "/", { timeout: 30_000 });
  await live("signed-out");
  assert.ok(
    convex.calls.slice(before).some((c) => c.method === "WS" && c.authenticate === "None"),
    "Convex's client told the deployment it has no token any more",
  );
  const session = await page.evaluate(() => fetch("/auth/session").then((r) => r.status));
  assert.equal(session, 401, "the gateway ended the session");
}

// assertAccepted checks that Convex took the bearer token as Ada's from the
// gateway whose issuer is iss.
function assertAccepted(call, iss) {
  assert.ok(call.bearer, "the helper sent no token");
  assert.equal(call.refused, undefined, `the stand-in refused the token: ${call.refused}`);
  assert.equal(call.identity?.subject, "user_ada");
  assert.equal(call.identity?.issuer, iss);
}
