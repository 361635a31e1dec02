// Builds the example (next build), runs it behind the built gateway
// (CONVEX_AUTH_CADDY_BIN) with the example's own Caddyfile, signs in, and
// checks that the server-rendered /loggedin page shows the identity obtained
// from the injected token, verified against the gateway's JWKS.
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import http from "node:http";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const execFileP = promisify(execFile);
const exampleDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const nextBin = path.join(exampleDir, "node_modules", ".bin", "next");

const READY_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 10_000;

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

// start runs a long-lived process, stopped when the test ends, and waits
// until readyURL answers 200.
async function start(t, name, cmd, args, env, readyURL) {
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
      const res = await fetch(readyURL, { redirect: "manual" });
      if (res.status === 200) return { log: () => log };
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${name} not ready at ${readyURL}:\n${log}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

// navigate sends a request as a browser navigation (fetch would add its own
// Sec-Fetch-Mode: cors) and returns the status and Location.
function navigate(url) {
  return new Promise((resolve, reject) => {
    http
      .get(url, { headers: { "sec-fetch-mode": "navigate", accept: "text/html" } }, (res) => {
        res.resume();
        resolve({ status: res.statusCode, location: res.headers.location });
      })
      .on("error", reject);
  });
}

test("the committed convex/auth.config.ts is what the generator prints for the Caddyfile", async (t) => {
  const bin = caddyBin(t);
  if (!bin) return;
  const env = { ...process.env };
  delete env.GATEWAY_PORT;
  const { stdout } = await execFileP(bin, ["convex-auth", "convex-config", "--config", "Caddyfile"], { cwd: exampleDir, env });
  const committed = await readFile(path.join(exampleDir, "convex", "auth.config.ts"), "utf8");
  assert.equal(committed, stdout, "regenerate it: caddy convex-auth convex-config --config Caddyfile > convex/auth.config.ts");
});

test("next build, then /loggedin behind the gateway renders the token's identity", async (t) => {
  const bin = caddyBin(t);
  if (!bin) return;

  const buildStarted = Date.now();
  await execFileP(nextBin, ["build"], {
    cwd: exampleDir,
    env: { ...process.env, NEXT_TELEMETRY_DISABLED: "1" },
    maxBuffer: 16 << 20,
  });
  t.diagnostic(`next build took ${((Date.now() - buildStarted) / 1000).toFixed(1)} s`);

  const [gatewayPort, nextPort, signInPort] = [await freePort(), await freePort(), await freePort()];
  const home = await mkdtemp(path.join(os.tmpdir(), "convex-auth-nextjs-"));
  t.after(() => rm(home, { recursive: true, force: true }));
  const gateway = `http://localhost:${gatewayPort}`;
  const env = {
    ...process.env,
    HOME: home,
    XDG_DATA_HOME: path.join(home, "data"),
    XDG_CONFIG_HOME: path.join(home, "config"),
    GATEWAY_PORT: String(gatewayPort),
    NEXT_PORT: String(nextPort),
    DEMO_SIGNIN_PORT: String(signInPort),
    NEXT_TELEMETRY_DISABLED: "1",
    // The stand-in verifier's issuer: the gateway on its test port.
    CONVEX_AUTH_ISSUER: gateway,
  };
  delete env.NEXT_PUBLIC_CONVEX_URL; // no deployment here: the stand-in verifies

  await start(t, "caddy", bin, ["run", "--config", "Caddyfile", "--adapter", "caddyfile"], env, `${gateway}/.well-known/jwks.json`);
  await start(t, "next start", nextBin, ["start", "--port", String(nextPort), "--hostname", "127.0.0.1"], env, `http://127.0.0.1:${nextPort}/`);

  // Signed out: a browser is sent to the home page to sign in.
  const nav = await navigate(`${gateway}/loggedin`);
  assert.equal(nav.status, 302);
  assert.equal(nav.location, "/?redirectTo=%2Floggedin");

  // Signed out: a fetch gets 401.
  let res = await fetch(`${gateway}/loggedin`);
  assert.equal(res.status, 401);

  // The demo sign-in hands Ada to the gateway, which sets the session cookie.
  res = await fetch(`${gateway}/demo/signin/ada`, { redirect: "manual" });
  assert.equal(res.status, 303);
  const cookie = res.headers
    .getSetCookie()
    .map((line) => line.split(";", 1)[0])
    .find((pair) => /convex_session=./.test(pair));
  assert.ok(cookie, `no session cookie in ${res.headers.getSetCookie()}`);

  // A forged token header from the browser never reaches the app.
  res = await fetch(`${gateway}/loggedin`, { headers: { cookie, "x-convex-token": "forged.token.value" } });
  assert.equal(res.status, 200);
  const html = await res.text();
  assert.match(html, /data-verified-by="gateway-jwks"/);
  assert.match(html, /<dd id="name">Ada Lovelace<\/dd>/);
  assert.match(html, /<dd id="email">ada@example.com<\/dd>/);
  assert.match(html, /<dd id="subject">user_ada<\/dd>/);
  assert.ok(html.includes(`<dd id="tokenIdentifier">${gateway}|user_ada</dd>`), "tokenIdentifier is iss|sub");

  // The browser client's token endpoint answers for the same session.
  res = await fetch(`${gateway}/auth/token`, { headers: { cookie, "sec-fetch-site": "same-origin" } });
  assert.equal(res.status, 200);
  const { token, expiresAt } = await res.json();
  assert.equal(typeof token, "string");
  assert.ok(expiresAt > Date.now());
});
