// Checks a running convex_auth gateway the way the Convex backend checks an
// auth provider, with jose and openid-client as verifiers written by someone
// else than the gateway's author:
//
//   OIDC form ({ domain, applicationID }): discovery at
//   iss + "/.well-known/openid-configuration", its issuer equal to iss byte
//   for byte, the JWKS from jwks_uri served as application/json, alg RS256 or
//   EdDSA, kid present and matching exactly one key, aud one string equal to
//   the application ID, iss/sub/iat/exp present, exp in the future with no
//   clock skew allowed, typ absent or "JWT".
//
//   customJwt form (convex-config --static): the same token checks against
//   the JWKS decoded from the data: URI, alg RS256 or ES256.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";

import * as jose from "jose";
import * as oidc from "openid-client";

import { SIGNED_IN_USER, caddyBin, loadAuthConfig, runCaddy, signIn, startGateway } from "./gateway.mjs";

const OIDC_ALGORITHMS = ["RS256", "EdDSA"];
const CUSTOM_JWT_ALGORITHMS = ["RS256", "ES256"];

// tokensOf returns the tokens a signed-in browser and its app get: the one
// injected into the request forwarded upstream, and the one /auth/token
// answers (the browser client's fetchAccessToken).
async function tokensOf(gateway) {
  const cookie = await signIn(gateway);
  const page = await fetch(`${gateway.origin}/loggedin`, { headers: { cookie } });
  assert.equal(page.status, 200);
  const injected = await page.text();
  const res = await fetch(`${gateway.origin}/auth/token`, { headers: { cookie, "sec-fetch-site": "same-origin" } });
  assert.equal(res.status, 200);
  const { token } = await res.json();
  return { injected, "/auth/token": token };
}

// assertConvexAccepts checks what Convex checks of any token, given the key set
// and what the provider entry says.
async function assertConvexAccepts(token, keySet, { issuer, applicationID, algorithms, keys }) {
  const header = jose.decodeProtectedHeader(token);
  assert.ok(algorithms.includes(header.alg), `alg ${header.alg} is not one of ${algorithms}`);
  assert.ok(header.typ === undefined || header.typ === "JWT", `typ ${header.typ} must be absent or JWT`);
  assert.equal(typeof header.kid, "string", "kid is missing");
  assert.equal(keys.filter((k) => k.kid === header.kid).length, 1, "kid must match exactly one key");

  const { payload } = await jose.jwtVerify(token, keySet, {
    issuer,
    audience: applicationID,
    algorithms,
    clockTolerance: 0,
    requiredClaims: ["iss", "sub", "iat", "exp"],
  });
  assert.equal(payload.iss, issuer, "iss must equal the issuer byte for byte");
  assert.equal(typeof payload.aud, "string", "aud must be one string, not a list");
  assert.equal(payload.aud, applicationID);
  assert.ok(payload.exp > Math.floor(Date.now() / 1000), "exp must be in the future without skew");
  assert.ok(payload.iat <= payload.exp);
  assert.equal(payload.sub, SIGNED_IN_USER.sub);
  assert.equal(payload.email, SIGNED_IN_USER.email);
  return payload;
}

// checkOIDC runs the OIDC provider form's checks against a running gateway.
async function checkOIDC(t, gateway, applicationID = "convex") {
  const iss = gateway.issuer;

  // The auth.config.ts the generator prints names this issuer, byte for byte.
  const printed = await gateway.convexConfig();
  assert.ok(printed.ok, printed.stderr);
  const config = await loadAuthConfig(printed.stdout);
  assert.deepEqual(config.providers, [{ domain: iss, applicationID }]);

  const discoveryURL = iss + "/.well-known/openid-configuration";
  const res = await fetch(discoveryURL);
  assert.equal(res.status, 200, `GET ${discoveryURL}`);
  const discovery = await res.json();
  assert.equal(discovery.issuer, iss, "discovery issuer must equal iss byte for byte");

  // openid-client, independently: discovery of this issuer succeeds.
  const client = await oidc.discovery(new URL(iss), applicationID, undefined, undefined, {
    execute: [oidc.allowInsecureRequests], // the tests run on plain http loopback
  });
  assert.equal(client.serverMetadata().jwks_uri, discovery.jwks_uri);

  const jwksRes = await fetch(discovery.jwks_uri);
  assert.equal(jwksRes.status, 200);
  assert.match(jwksRes.headers.get("content-type"), /^application\/json\b/);
  const jwks = await jwksRes.json();
  for (const k of jwks.keys) {
    assert.ok(!("d" in k), "the JWKS holds a private key");
  }
  const keySet = jose.createRemoteJWKSet(new URL(discovery.jwks_uri));

  for (const [source, token] of Object.entries(await tokensOf(gateway))) {
    await t.test(`the ${source} token passes Convex's OIDC checks`, async () => {
      await assertConvexAccepts(token, keySet, { issuer: iss, applicationID, algorithms: OIDC_ALGORITHMS, keys: jwks.keys });
    });
  }
}

// decodeDataURI returns the bytes of a base64 data: URI, whatever its media type.
function decodeDataURI(uri) {
  const m = /^data:([^,]*?);base64,(.*)$/s.exec(uri);
  assert.ok(m, `jwks ${uri.slice(0, 40)}… is not a base64 data: URI`);
  return Buffer.from(m[2], "base64");
}

// checkStatic runs the customJwt form's checks with the printed config.
async function checkStatic(t, gateway, wantAlgorithm) {
  const printed = await gateway.convexConfig("--static");
  assert.ok(printed.ok, printed.stderr);
  const { providers } = await loadAuthConfig(printed.stdout);
  assert.equal(providers.length, 1);
  const p = providers[0];
  assert.equal(p.type, "customJwt");
  assert.equal(p.issuer, gateway.issuer);
  assert.equal(p.algorithm, wantAlgorithm);
  assert.ok(CUSTOM_JWT_ALGORITHMS.includes(p.algorithm), `customJwt accepts ${CUSTOM_JWT_ALGORITHMS}, not ${p.algorithm}`);
  const jwks = JSON.parse(decodeDataURI(p.jwks).toString("utf8"));
  const keySet = jose.createLocalJWKSet(jwks);

  for (const [source, token] of Object.entries(await tokensOf(gateway))) {
    await t.test(`the ${source} token passes Convex's customJwt checks`, async () => {
      assert.equal(jose.decodeProtectedHeader(token).alg, p.algorithm);
      await assertConvexAccepts(token, keySet, {
        issuer: p.issuer,
        applicationID: p.applicationID,
        algorithms: [p.algorithm],
        keys: jwks.keys,
      });
    });
  }
}

test("EdDSA, generated key (the default): the OIDC form; --static says to set algorithm ES256", async (t) => {
  const bin = caddyBin(t);
  if (!bin) return;
  const gateway = await startGateway(t, bin);
  await t.test("OIDC form", (t) => checkOIDC(t, gateway));
  await t.test("the tokens are EdDSA", async () => {
    for (const token of Object.values(await tokensOf(gateway))) {
      assert.equal(jose.decodeProtectedHeader(token).alg, "EdDSA");
    }
  });
  await t.test("customJwt form refused with what to change", async () => {
    const printed = await gateway.convexConfig("--static");
    assert.equal(printed.ok, false);
    assert.equal(printed.stdout, "");
    assert.match(printed.stderr, /generated EdDSA key/);
    assert.match(printed.stderr, /set `algorithm ES256`/);
    assert.match(printed.stderr, /drop --static/);
  });
});

test("RS256, generated key: the OIDC form and the --static customJwt form", async (t) => {
  const bin = caddyBin(t);
  if (!bin) return;
  const gateway = await startGateway(t, bin, { extra: "algorithm RS256" });
  await t.test("OIDC form", (t) => checkOIDC(t, gateway));
  await t.test("customJwt form", (t) => checkStatic(t, gateway, "RS256"));
});

test("ES256, generated key (as in Caddyfile.example): the --static customJwt form", async (t) => {
  const bin = caddyBin(t);
  if (!bin) return;
  const gateway = await startGateway(t, bin, { extra: "algorithm ES256" });
  await checkStatic(t, gateway, "ES256");
});

test("generated key, issuer with a path and another application ID: the OIDC form", async (t) => {
  const bin = caddyBin(t);
  if (!bin) return;
  const gateway = await startGateway(t, bin, { issuerPath: "/tenant", applicationID: "my-app" });
  await checkOIDC(t, gateway, "my-app");
});

test("ES256, key from keygen: the --static customJwt form; the OIDC form is refused", async (t) => {
  const bin = caddyBin(t);
  if (!bin) return;
  const dir = await mkdtemp(path.join(os.tmpdir(), "convex-auth-key-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const keyPath = path.join(dir, "convex.pem");
  await runCaddy(bin, ["convex-auth", "keygen", "--alg", "ES256", "--out", keyPath]);
  const gateway = await startGateway(t, bin, { extra: `signing_key file ${keyPath}` });

  await t.test("customJwt form", (t) => checkStatic(t, gateway, "ES256"));
  await t.test("OIDC form refused with what to change", async () => {
    const printed = await gateway.convexConfig();
    assert.equal(printed.ok, false);
    assert.equal(printed.stdout, "");
    assert.match(printed.stderr, /signs with ES256/);
    assert.match(printed.stderr, /--static/);
  });
});
