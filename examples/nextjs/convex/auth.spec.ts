import { convexTest } from "convex-test";
import { afterEach, beforeEach, describe, expect, test, vi } from "vitest";
import { api, internal } from "./_generated/api";
import schema from "./schema";
import { modules } from "./test.setup";

const ADMIN_SECRET = "admin-secret-of-at-least-32-bytes-0123456789";
const ADA = "u_ada";

beforeEach(() => {
  vi.stubEnv("CONVEX_AUTH_GATEWAY_URL", "https://app.example.com/");
  vi.stubEnv("CONVEX_AUTH_ADMIN_SECRET", ADMIN_SECRET);
});
afterEach(() => {
  vi.unstubAllEnvs();
  vi.unstubAllGlobals();
  vi.useRealTimers();
});

function stubGateway(status = 200, body: unknown = { refreshed: true }) {
  const fetch = vi.fn(async (_url: string, _init?: RequestInit) =>
    new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } }),
  );
  vi.stubGlobal("fetch", fetch);
  return fetch;
}

// Runs an internal mutation that schedules the refresh, and the refresh
// (against the stubbed gateway) before the test ends.
async function change(t: ReturnType<typeof convexTest>, run: () => Promise<unknown>) {
  vi.useFakeTimers();
  await run();
  await t.finishAllScheduledFunctions(vi.runAllTimers);
  vi.useRealTimers();
}

// The gateway calls the query as the user: the identity Convex derives
// from the token it minted for the call.
const asAda = (t: ReturnType<typeof convexTest>) => t.withIdentity({ subject: ADA, issuer: "https://app.example.com" });

describe("claims", () => {
  test("a user without a row is a member of no organization", async () => {
    const t = convexTest(schema, modules);
    expect(await asAda(t).query(api.auth.claims, { context: {} })).toEqual({ role: "member", orgs: [] });
  });

  test("the role and organizations come from the users row", async () => {
    stubGateway();
    const t = convexTest(schema, modules);
    await change(t, () => t.mutation(internal.auth.setRole, { userId: ADA, role: "admin" }));
    await change(t, () => t.mutation(internal.auth.setOrgs, { userId: ADA, orgs: ["o1", "o2"] }));
    expect(await asAda(t).query(api.auth.claims, { context: {} })).toEqual({ role: "admin", orgs: ["o1", "o2"] });
  });

  test("an organization the user belongs to becomes the active one; another is refused with null", async () => {
    stubGateway();
    const t = convexTest(schema, modules);
    await change(t, () => t.mutation(internal.auth.setOrgs, { userId: ADA, orgs: ["o1", "o2"] }));
    expect(await asAda(t).query(api.auth.claims, { context: { org: "o2" } })).toEqual({ role: "member", orgs: ["o1", "o2"], org: "o2" });
    expect(await asAda(t).query(api.auth.claims, { context: { org: "o9" } })).toBeNull();
  });

  test("signed out: null", async () => {
    const t = convexTest(schema, modules);
    expect(await t.query(api.auth.claims, { context: {} })).toBeNull();
  });

  test("arguments are checked: context is required and holds org only", async () => {
    const t = convexTest(schema, modules);
    await expect(asAda(t).query(api.auth.claims, {} as any)).rejects.toThrow(/context/);
    await expect(asAda(t).query(api.auth.claims, { context: { team: "t1" } } as any)).rejects.toThrow(/team/);
  });

  test("no name the gateway refuses", async () => {
    stubGateway();
    const t = convexTest(schema, modules);
    await change(t, () => t.mutation(internal.auth.setOrgs, { userId: ADA, orgs: ["o1"] }));
    const reserved = ["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "sid", "auth_time", "amr", "acr", "azp", "nonce", "name", "email", "email_verified", "picture"];
    const value = await asAda(t).query(api.auth.claims, { context: { org: "o1" } });
    for (const name of Object.keys(value ?? {})) {
      expect(reserved).not.toContain(name);
    }
  });
});

describe("setRole", () => {
  test("asks the gateway to refresh the user's claims, from an action", async () => {
    vi.useFakeTimers();
    const fetch = stubGateway();
    const t = convexTest(schema, modules);
    await t.mutation(internal.auth.setRole, { userId: ADA, role: "admin" });
    expect(fetch).not.toHaveBeenCalled(); // not from the mutation
    await t.finishAllScheduledFunctions(vi.runAllTimers);
    expect(fetch).toHaveBeenCalledTimes(1);
    const [url, init] = fetch.mock.calls[0];
    expect(url).toBe(`https://app.example.com/auth/admin/users/${ADA}/claims/refresh`);
    expect(init?.method).toBe("POST");
    expect(new Headers(init?.headers).get("authorization")).toBe(`Bearer ${ADMIN_SECRET}`);
  });
});

describe("refreshClaims", () => {
  test("escapes the user ID into one path segment", async () => {
    const fetch = stubGateway();
    const t = convexTest(schema, modules);
    await t.action(internal.auth.refreshClaims, { userId: "../x?y" });
    expect(fetch.mock.calls[0][0]).toBe("https://app.example.com/auth/admin/users/..%2Fx%3Fy/claims/refresh");
  });

  test("throws the gateway's message, never the secret", async () => {
    stubGateway(401, { error: "unauthorized", message: "the admin API secret is missing or wrong" });
    const t = convexTest(schema, modules);
    const err = await t.action(internal.auth.refreshClaims, { userId: ADA }).catch((e: Error) => e);
    expect((err as Error).message).toContain("answered 401");
    expect((err as Error).message).toContain("the admin API secret is missing or wrong");
    expect((err as Error).message).not.toContain(ADMIN_SECRET);
  });

  test("without its env vars throws before calling anything", async () => {
    vi.stubEnv("CONVEX_AUTH_GATEWAY_URL", "");
    const fetch = stubGateway();
    const t = convexTest(schema, modules);
    await expect(t.action(internal.auth.refreshClaims, { userId: ADA })).rejects.toThrow(/CONVEX_AUTH_GATEWAY_URL/);
    expect(fetch).not.toHaveBeenCalled();
  });
});

describe("whoami", () => {
  test("reads the claims the gateway put in the token", async () => {
    const t = convexTest(schema, modules);
    const me = await t.withIdentity({ subject: ADA, role: "admin", org: "o1", orgs: ["o1"] }).query(api.auth.whoami, {});
    expect(me).toEqual({ subject: ADA, role: "admin", org: "o1", orgs: ["o1"] });
    expect(await t.query(api.auth.whoami, {})).toBeNull();
  });
});
