// The functions stand-in (standin/functions.mjs): the example's real
// Convex functions behind Convex's HTTP API, with tokens checked as Convex
// checks them. Tokens here are signed by a key of the test's, published
// as a gateway publishes its JWKS.
import assert from "node:assert/strict";
import http from "node:http";
import { after, before, test } from "node:test";
import * as jose from "jose";
import { startFunctionsStandIn } from "../standin/functions.mjs";

const ISSUER = "https://app.example.test";
const ADMIN_KEY = "standin-admin-key";
let standIn, key, jwks, otherKey, gateway, refreshes;

before(async () => {
  let publicKey;
  ({ privateKey: key, publicKey } = await jose.generateKeyPair("EdDSA", { crv: "Ed25519" }));
  ({ privateKey: otherKey } = await jose.generateKeyPair("EdDSA", { crv: "Ed25519" }));
  const pub = await jose.exportJWK(publicKey);
  jwks = { keys: [{ ...pub, kid: "k1", alg: "EdDSA", use: "sig" }] };
  const documents = {
    [`${ISSUER}/.well-known/openid-configuration`]: { issuer: ISSUER, jwks_uri: `${ISSUER}/.well-known/jwks.json` },
    [`${ISSUER}/.well-known/jwks.json`]: jwks,
  };
  // The gateway's site admin API, as refreshClaims calls it.
  refreshes = [];
  gateway = http.createServer((req, res) => {
    refreshes.push({ method: req.method, url: req.url, authorization: req.headers.authorization });
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ refreshed: true }));
  });
  await new Promise((resolve) => gateway.listen(0, "127.0.0.1", resolve));
  process.env.CONVEX_AUTH_GATEWAY_URL = `http://127.0.0.1:${gateway.address().port}`;
  process.env.CONVEX_AUTH_ADMIN_SECRET = "the-site-admin-secret";
  standIn = await startFunctionsStandIn({
    providers: () => [{ domain: ISSUER, applicationID: "convex" }],
    getJSON: async (url) => documents[url] ?? Promise.reject(new Error(`no ${url}`)),
    adminKey: ADMIN_KEY,
  });
});

after(async () => {
  await standIn?.close();
  await new Promise((resolve) => gateway?.close(resolve));
});

async function token(claims, { signWith = key, aud = "convex", exp = "5m" } = {}) {
  return new jose.SignJWT(claims)
    .setProtectedHeader({ alg: "EdDSA", kid: "k1", typ: "JWT" })
    .setIssuer(ISSUER)
    .setAudience(aud)
    .setIssuedAt()
    .setExpirationTime(exp)
    .sign(signWith);
}

async function call(kind, fnPath, args, authorization) {
  const res = await fetch(`${standIn.url}/api/${kind}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(authorization ? { authorization } : {}) },
    body: JSON.stringify({ path: fnPath, args, format: "json" }),
  });
  return { status: res.status, body: await res.json() };
}

test("the claims query answers for the token's user, from the users table", async () => {
  const bearer = `Bearer ${await token({ sub: "u_grace", sid: "s1" })}`;
  let r = await call("query", "auth:claims", { context: {} }, bearer);
  assert.deepEqual(r, { status: 200, body: { status: "success", value: { role: "member", orgs: [] }, logLines: [] } });

  // The deployment's admin runs the internal mutations; the mutation's
  // scheduled action asks the gateway to refresh the user's claims.
  const admin = `Convex ${ADMIN_KEY}`;
  assert.equal((await call("mutation", "auth:setRole", { userId: "u_grace", role: "admin" }, admin)).body.status, "success");
  assert.equal((await call("mutation", "auth:setOrgs", { userId: "u_grace", orgs: ["o1"] }, admin)).body.status, "success");
  r = await call("query", "auth:claims", { context: { org: "o1" } }, bearer);
  assert.deepEqual(r.body.value, { role: "admin", orgs: ["o1"], org: "o1" });
  r = await call("query", "auth:claims", { context: { org: "o2" } }, bearer);
  assert.deepEqual(r.body, { status: "success", value: null, logLines: [] });

  for (let i = 0; i < 100 && refreshes.length < 2; i++) await new Promise((resolve) => setTimeout(resolve, 20));
  assert.deepEqual(refreshes.map((c) => `${c.method} ${c.url} ${c.authorization}`), [
    "POST /auth/admin/users/u_grace/claims/refresh Bearer the-site-admin-secret",
    "POST /auth/admin/users/u_grace/claims/refresh Bearer the-site-admin-secret",
  ]);
});

test("a token's custom claims reach the functions as Convex passes them", async () => {
  const r = await call("query", "auth:whoami", {}, `Bearer ${await token({ sub: "u_ada", role: "admin", orgs: ["o1"], org: "o1" })}`);
  assert.deepEqual(r.body.value, { subject: "u_ada", role: "admin", org: "o1", orgs: ["o1"] });
});

test("tokens Convex refuses get 401 with its code", async () => {
  const cases = [
    ["Bearer not-a-jwt", "InvalidAuthHeader"],
    [`Bearer ${await token({ sub: "u" }, { aud: "other-app" })}`, "NoAuthProvider"],
    [`Bearer ${await token({ sub: "u" }, { signWith: otherKey })}`, "InvalidAuthHeader"],
    [`Bearer ${await token({ sub: "u" }, { exp: "-1m" })}`, "InvalidAuthHeader"],
  ];
  for (const [authorization, code] of cases) {
    const r = await call("query", "auth:claims", { context: {} }, authorization);
    assert.equal(r.status, 401, authorization);
    assert.equal(r.body.code, code);
  }
});

test("internal functions are not public; arguments are checked; a throw is status error", async () => {
  const bearer = `Bearer ${await token({ sub: "u_ada" })}`;
  assert.equal((await call("mutation", "auth:setRole", { userId: "u_ada", role: "admin" }, bearer)).status, 404);
  assert.equal((await call("query", "auth:nothing", {}, bearer)).status, 404);
  assert.equal((await call("mutation", "auth:claims", { context: {} }, bearer)).status, 404, "a query called as a mutation");
  const r = await call("query", "auth:claims", {}, bearer);
  assert.equal(r.status, 200);
  assert.equal(r.body.status, "error");
  assert.match(r.body.errorMessage, /context/);
  const bad = await fetch(`${standIn.url}/api/query`, { method: "POST", body: JSON.stringify({ path: "auth:claims", args: [{}], format: "convex_encoded_json" }) });
  assert.equal(bad.status, 400);
});
