import { convexTest } from "convex-test";
import { Webhook } from "standardwebhooks";
import { afterEach, beforeEach, describe, expect, test, vi } from "vitest";
import { api, internal } from "./_generated/api";
import schema from "./schema";
import { modules } from "./test.setup";

// Signed as the gateway signs (docs/events.md): Standard Webhooks headers
// made with the npm standardwebhooks package and the deployment's secret.
const SECRET = "whsec_" + Buffer.from("convex-auth events test secret, 32 bytes!").toString("base64");
const OTHER_SECRET = "whsec_" + Buffer.from("a secret the deployment does not have").toString("base64");

type Event = { type: string; timestamp: number; realm?: string; data: Record<string, unknown> };

function signed(webhookId: string, event: Event | string, { secret = SECRET, at = new Date() } = {}) {
  const body = typeof event === "string" ? event : JSON.stringify({ realm: "http://localhost:8080|convex", ...event });
  return {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "webhook-id": webhookId,
      "webhook-timestamp": String(Math.floor(at.getTime() / 1000)),
      "webhook-signature": new Webhook(secret).sign(webhookId, at, body),
    },
    body,
  };
}

// The wire format's events for one user (fixtures).
const T0 = Date.parse("2026-11-27T12:00:00Z");
const ada = { id: "u_01JDZ8Y3K7Q2M4N6P8R0S2T4V6", email: "ada@example.com", emailVerified: true, name: "Ada Lovelace", picture: "https://example.com/ada.png", createdAt: T0 };
const created: Event = { type: "user.created", timestamp: T0, data: { user: ada } };
const renamed: Event = { type: "user.updated", timestamp: T0 + 1000, data: { user: { id: ada.id, email: ada.email, emailVerified: true, name: "Ada King", createdAt: T0 } } };
const banned: Event = { type: "user.banned", timestamp: T0 + 2000, data: { user: { id: ada.id }, banned: true } };
const unbanned: Event = { type: "user.banned", timestamp: T0 + 3000, data: { user: { id: ada.id }, banned: false } };
const deleted: Event = { type: "user.deleted", timestamp: T0 + 4000, data: { user: { id: ada.id } } };
const sessionCreated: Event = { type: "session.created", timestamp: T0 + 500, data: { session: { id: "s_1", userId: ada.id, provider: "github", createdAt: T0 + 500 } } };

function setup() {
  const t = convexTest(schema, modules);
  const post = (init: ReturnType<typeof signed>) => t.fetch("/gateway-events", init);
  const userRow = () => t.run((ctx) => ctx.db.query("users").withIndex("by_gatewayId", (q) => q.eq("gatewayId", ada.id)).unique());
  const counts = () =>
    t.run(async (ctx) => ({
      users: (await ctx.db.query("users").collect()).length,
      events: (await ctx.db.query("gatewayEvents").collect()).length,
    }));
  return { t, post, userRow, counts };
}

beforeEach(() => {
  vi.stubEnv("CONVEX_AUTH_EVENTS_SECRET", SECRET);
});
afterEach(() => {
  vi.unstubAllEnvs();
});

describe("POST /gateway-events", () => {
  test("user.created, updated, banned, unbanned and deleted keep the users row", async () => {
    const { post, userRow } = setup();

    let res = await post(signed("evt_01", created));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ result: "applied" });
    expect(await userRow()).toMatchObject({
      gatewayId: ada.id,
      email: "ada@example.com",
      emailVerified: true,
      name: "Ada Lovelace",
      picture: "https://example.com/ada.png",
      anonymous: false,
      banned: false,
      updatedAt: T0,
    });

    // An update carries the whole profile: a field it omits is gone.
    expect((await post(signed("evt_02", renamed))).status).toBe(200);
    const row = await userRow();
    expect(row).toMatchObject({ name: "Ada King", banned: false, updatedAt: T0 + 1000 });
    expect(row).not.toHaveProperty("picture");

    expect((await post(signed("evt_03", banned))).status).toBe(200);
    expect(await userRow()).toMatchObject({ name: "Ada King", banned: true });

    expect((await post(signed("evt_04", unbanned))).status).toBe(200);
    expect(await userRow()).toMatchObject({ banned: false });

    expect((await post(signed("evt_05", deleted))).status).toBe(200);
    expect(await userRow()).toBeNull();
  });

  test("the signed-in user finds their row by the token's subject", async () => {
    const { t, post } = setup();
    expect(await t.withIdentity({ subject: ada.id }).query(api.users.current, {})).toBeNull();
    expect((await post(signed("evt_01", created))).status).toBe(200);
    expect(await t.withIdentity({ subject: ada.id }).query(api.users.current, {})).toMatchObject({ email: "ada@example.com" });
    expect(await t.query(api.users.current, {})).toBeNull();
  });

  test("a redelivered webhook-id, signed afresh, is applied once", async () => {
    const { post, userRow, counts } = setup();
    expect((await post(signed("evt_01", created))).status).toBe(200);
    expect((await post(signed("evt_02", renamed))).status).toBe(200);

    // The gateway retries with the same webhook-id and a new timestamp.
    const res = await post(signed("evt_01", created, { at: new Date(Date.now() + 60_000) }));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ result: "duplicate" });
    expect(await userRow()).toMatchObject({ name: "Ada King" });
    expect(await counts()).toEqual({ users: 1, events: 2 });

    // A deleted user is not brought back by a redelivered creation.
    expect((await post(signed("evt_05", deleted))).status).toBe(200);
    expect((await post(signed("evt_01", created))).status).toBe(200);
    expect(await userRow()).toBeNull();
  });

  test("a stale update does not overwrite a newer one", async () => {
    const { post, userRow } = setup();
    expect((await post(signed("evt_02", renamed))).status).toBe(200);
    expect((await post(signed("evt_01", created))).status).toBe(200);
    expect(await userRow()).toMatchObject({ name: "Ada King", updatedAt: T0 + 1000 });
  });

  test("a ban for a user the app has not seen yet makes a row", async () => {
    const { post, userRow } = setup();
    expect((await post(signed("evt_03", banned))).status).toBe(200);
    expect(await userRow()).toMatchObject({ gatewayId: ada.id, banned: true });
    // The profile arrives with the user's next update; the ban stays.
    const later: Event = { ...renamed, timestamp: banned.timestamp + 1000 };
    expect((await post(signed("evt_06", later))).status).toBe(200);
    expect(await userRow()).toMatchObject({ email: "ada@example.com", name: "Ada King", banned: true });
  });

  test("session events are acknowledged and recorded for dedupe, and change no user", async () => {
    const { post, counts } = setup();
    const res = await post(signed("evt_10", sessionCreated));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ result: "ignored" });
    const revoked: Event = { type: "session.revoked", timestamp: T0 + 600, data: { session: { id: "s_1", userId: ada.id }, reason: "sign-out" } };
    expect((await post(signed("evt_11", revoked))).status).toBe(200);
    expect(await counts()).toEqual({ users: 0, events: 2 });
  });

  const refused: [string, () => ReturnType<typeof signed>][] = [
    ["signed with another secret", () => signed("evt_01", created, { secret: OTHER_SECRET })],
    ["with a body changed after signing", () => ({ ...signed("evt_01", created), body: JSON.stringify({ ...created, data: { user: { ...ada, email: "mallory@example.com" } } }) })],
    ["with a webhook-id changed after signing", () => {
      const r = signed("evt_01", created);
      return { ...r, headers: { ...r.headers, "webhook-id": "evt_99" } };
    }],
    ["signed more than 5 minutes ago", () => signed("evt_01", created, { at: new Date(Date.now() - 6 * 60_000) })],
    ["without a signature", () => {
      const r = signed("evt_01", created);
      const { "webhook-signature": _, ...headers } = r.headers;
      return { ...r, headers: headers as typeof r.headers };
    }],
  ];
  for (const [name, request] of refused) {
    test(`a request ${name} gets 401 and changes nothing`, async () => {
      const { post, counts } = setup();
      const res = await post(request());
      expect(res.status).toBe(401);
      expect(await res.json()).toMatchObject({ error: "bad_signature" });
      expect(await counts()).toEqual({ users: 0, events: 0 });
    });
  }

  test("a signed body that is not an event gets 400 and changes nothing", async () => {
    const { post, counts } = setup();
    let res = await post(signed("evt_01", "not json"));
    expect(res.status).toBe(400);
    res = await post(signed("evt_02", { type: "user.created", timestamp: T0, data: { user: { email: "no-id@example.com" } } }));
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: "bad_event", message: "user.created needs data.user.id" });
    expect(await counts()).toEqual({ users: 0, events: 0 });
  });

  test("without CONVEX_AUTH_EVENTS_SECRET the events are refused with 500, so the gateway retries them", async () => {
    vi.stubEnv("CONVEX_AUTH_EVENTS_SECRET", "");
    const { post, counts } = setup();
    const res = await post(signed("evt_01", created));
    expect(res.status).toBe(500);
    expect(await res.json()).toMatchObject({ error: "events_secret_unset" });
    expect(await counts()).toEqual({ users: 0, events: 0 });
  });
});

test("prune forgets webhook-ids older than 48 hours", async () => {
  const { t, counts } = setup();
  const now = Date.now();
  await t.run(async (ctx) => {
    await ctx.db.insert("gatewayEvents", { webhookId: "evt_old", type: "user.created", receivedAt: now - 49 * 3600_000 });
    await ctx.db.insert("gatewayEvents", { webhookId: "evt_new", type: "user.created", receivedAt: now - 47 * 3600_000 });
  });
  expect(await t.mutation(internal.gatewayEvents.prune, {})).toBe(1);
  expect(await counts()).toEqual({ users: 0, events: 1 });
});

describe("the app's own fields", () => {
  test("user.updated keeps the role and organizations auth.ts set", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => new Response("{}")));
    vi.stubEnv("CONVEX_AUTH_GATEWAY_URL", "https://app.example.com");
    vi.stubEnv("CONVEX_AUTH_ADMIN_SECRET", "admin-secret-of-at-least-32-bytes-0123456789");
    const { t, post, userRow } = setup();
    await post(signed("msg_created", created));
    vi.useFakeTimers();
    await t.mutation(internal.auth.setRole, { userId: ada.id, role: "admin" });
    await t.mutation(internal.auth.setOrgs, { userId: ada.id, orgs: ["o1"] });
    await t.finishAllScheduledFunctions(vi.runAllTimers);
    vi.useRealTimers();
    await post(signed("msg_renamed", renamed));
    const row = await userRow();
    expect(row?.name).toBe("Ada King");
    expect(row?.role).toBe("admin");
    expect(row?.orgs).toEqual(["o1"]);
    vi.unstubAllGlobals();
  });
});
