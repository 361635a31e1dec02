// Load with an external verifier across key rotations, driven by the Go e2e
// test TestKeyRotationUnderLoad (e2e/rotation_test.go), which starts the
// gateways and reads the summary this prints.
//
// Workers fetch tokens from /auth/token of each gateway in turn, with the
// given session cookies, and every token is verified at once by one jose
// verifier per gateway JWKS, each caching the JWKS the way its
// Cache-Control (max-age=15) allows: createRemoteJWKSet with cacheMaxAge
// 15 s, and jose's own refetch of an unknown kid after its cooldown. A
// sample of tokens is verified again shortly before it expires, as an app
// holding a token would, so retired keys must stay published long enough.
//
// Usage: node rotation-load.mjs '<json>' with
//   { tokenURLs: [...], jwksURLs: [...], issuer, audience, cookies: [...],
//     durationMs, workers, lateVerifyBeforeExpiryMs }
// Prints one JSON line: { verified, lateVerified, failures, kids, requests,
// requestErrors, retries, samples }.
import * as jose from "jose";

const JWKS_CACHE_MAX_AGE_MS = 15_000; // the documents' max-age
const MAX_FAILURE_SAMPLES = 10;

const cfg = JSON.parse(process.argv[2]);
const verifiers = cfg.jwksURLs.map((u) => ({
  url: u,
  keySet: jose.createRemoteJWKSet(new URL(u), { cacheMaxAge: JWKS_CACHE_MAX_AGE_MS }),
}));

const stats = {
  requests: 0,
  requestErrors: 0,
  retries: 0,
  verified: 0,
  lateVerified: 0,
  failures: 0,
  kids: [],
  samples: [],
};
const kids = new Set();
const late = []; // { token, at, kid }

function fail(what) {
  stats.failures++;
  if (stats.samples.length < MAX_FAILURE_SAMPLES) stats.samples.push(what);
}

async function verifyAll(token, kind) {
  for (const v of verifiers) {
    try {
      await jose.jwtVerify(token, v.keySet, {
        issuer: cfg.issuer,
        audience: cfg.audience,
        // What Convex's OIDC form accepts; the generated key is EdDSA.
        algorithms: ["RS256", "EdDSA"],
      });
      if (kind === "late") stats.lateVerified++;
      else stats.verified++;
    } catch (err) {
      let kid = "?";
      try {
        kid = jose.decodeProtectedHeader(token).kid;
      } catch {}
      fail(`${kind} verification against ${v.url} failed for kid ${kid} at ${new Date().toISOString()}: ${err.code ?? ""} ${err.message}`);
    }
  }
}

// fetchRetrying sends a GET again when the connection failed before an
// answer came, as Go's net/http and browsers do for idempotent requests: a
// reload closes the old server's idle keep-alive connections, and undici
// (Node's fetch) may pick one of them. A gateway's pool holds at most one
// connection per worker, so of workers + 1 tries one is on a new one.
async function fetchRetrying(url, init) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fetch(url, init);
    } catch (err) {
      if (!(err instanceof TypeError) || attempt >= cfg.workers) throw err;
      stats.retries++;
    }
  }
}

const deadline = Date.now() + cfg.durationMs;
let turn = 0;

async function worker(n) {
  while (Date.now() < deadline) {
    const i = turn++;
    const url = cfg.tokenURLs[i % cfg.tokenURLs.length];
    const cookie = cfg.cookies[(i + n) % cfg.cookies.length];
    stats.requests++;
    let token, expiresAt;
    try {
      const res = await fetchRetrying(url, { headers: { cookie, "sec-fetch-site": "same-origin" } });
      if (res.status !== 200) {
        stats.requestErrors++;
        fail(`GET ${url} answered ${res.status}: ${await res.text()}`);
        continue;
      }
      ({ token, expiresAt } = await res.json());
    } catch (err) {
      stats.requestErrors++;
      fail(`GET ${url} at ${new Date().toISOString()}: ${err.message} (${err.cause?.code ?? err.cause?.message ?? ""})`);
      continue;
    }
    const kid = jose.decodeProtectedHeader(token).kid;
    if (!kids.has(kid)) {
      kids.add(kid);
      stats.kids.push({ kid, firstSeen: new Date().toISOString() });
    }
    await verifyAll(token, "fresh");
    // Keep one token per kid and second for verifying again near its expiry.
    const exp = typeof expiresAt === "number" ? expiresAt : jose.decodeJwt(token).exp * 1000;
    const at = exp - cfg.lateVerifyBeforeExpiryMs;
    if (at > Date.now() && !late.some((l) => l.kid === kid && Math.abs(l.at - at) < 1000)) {
      late.push({ token, at, kid });
    }
  }
}

async function lateVerifier() {
  while (Date.now() < deadline || late.length > 0) {
    const now = Date.now();
    for (let j = late.length - 1; j >= 0; j--) {
      if (late[j].at <= now) {
        const [l] = late.splice(j, 1);
        await verifyAll(l.token, "late");
      }
    }
    // Tokens due after the load ends are checked too, so the run lasts at
    // most one token lifetime longer; the caller sizes durationMs for it.
    await new Promise((r) => setTimeout(r, 250));
  }
}

await Promise.all([...Array.from({ length: cfg.workers }, (_, n) => worker(n)), lateVerifier()]);
process.stdout.write(JSON.stringify(stats) + "\n");
