import { convexTest } from "convex-test";
import { afterEach, beforeEach, expect, test, vi } from "vitest";
import { internal } from "./_generated/api";
import schema from "./schema";
import { modules } from "./test.setup";

const ADMIN_SECRET = "admin-secret-of-at-least-32-bytes-0123456789";

beforeEach(() => {
  vi.stubEnv("CONVEX_AUTH_GATEWAY_URL", "https://app.example.com/");
  vi.stubEnv("CONVEX_AUTH_ADMIN_SECRET", ADMIN_SECRET);
});
afterEach(() => {
  vi.unstubAllEnvs();
  vi.unstubAllGlobals();
});

function stubGateway(status: number, body: unknown) {
  const fetch = vi.fn(async (_url: string, _init?: RequestInit) =>
    new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } }),
  );
  vi.stubGlobal("fetch", fetch);
  return fetch;
}

test("signOutEverywhere calls DELETE <gateway>/auth/admin/users/{id}/sessions with the Bearer secret and returns the answer", async () => {
  const fetch = stubGateway(200, { ended: 2 });
  const t = convexTest(schema, modules);
  expect(await t.action(internal.admin.signOutEverywhere, { userId: "u_01JDZ8Y3K7" })).toEqual({ ended: 2 });
  expect(fetch).toHaveBeenCalledTimes(1);
  const [url, init] = fetch.mock.calls[0];
  expect(url).toBe("https://app.example.com/auth/admin/users/u_01JDZ8Y3K7/sessions");
  expect(init?.method).toBe("DELETE");
  expect(new Headers(init?.headers).get("authorization")).toBe(`Bearer ${ADMIN_SECRET}`);
});

test("signOutEverywhere escapes the user ID into one path segment", async () => {
  const fetch = stubGateway(200, { ended: 0 });
  const t = convexTest(schema, modules);
  await t.action(internal.admin.signOutEverywhere, { userId: "../../x?y" });
  expect(fetch.mock.calls[0][0]).toBe("https://app.example.com/auth/admin/users/..%2F..%2Fx%3Fy/sessions");
});

test("signOutEverywhere throws the gateway's error message, never the secret", async () => {
  stubGateway(401, { error: "unauthorized", message: "the admin API secret is missing or wrong" });
  const t = convexTest(schema, modules);
  const err = await t.action(internal.admin.signOutEverywhere, { userId: "u_1" }).catch((e: Error) => e);
  expect(err).toBeInstanceOf(Error);
  expect((err as Error).message).toContain("answered 401");
  expect((err as Error).message).toContain("the admin API secret is missing or wrong");
  expect((err as Error).message).not.toContain(ADMIN_SECRET);
});

test("signOutEverywhere without its env vars throws before calling anything", async () => {
  vi.stubEnv("CONVEX_AUTH_ADMIN_SECRET", "");
  const fetch = stubGateway(200, { ended: 0 });
  const t = convexTest(schema, modules);
  await expect(t.action(internal.admin.signOutEverywhere, { userId: "u_1" })).rejects.toThrow(/CONVEX_AUTH_ADMIN_SECRET/);
  expect(fetch).not.toHaveBeenCalled();
});
