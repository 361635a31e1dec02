import { readFileSync } from "node:fs";
import { convexTest } from "convex-test";
import { expect, test, vi } from "vitest";
import { internal } from "./_generated/api";
import schema from "./schema";
import { modules } from "./test.setup";

// Events the built gateway sent, replayed byte for byte through the HTTP
// action. e2e/convex_events_test.go runs a gateway whose events go to a
// recorder, signs a user up and out, and runs this suite with
// CONVEX_AUTH_EVENTS_RECORDING naming the recording:
//   { "secret": "whsec_…", "expect": { "email", "name" },
//     "requests": [{ "headers": { "webhook-id", … }, "body": "…" }, …] }
// in the order they arrived. Standard Webhooks receivers refuse timestamps
// more than 5 minutes old, so the recording is replayed at once.
type Recording = {
  secret: string;
  expect: { email: string; name?: string };
  requests: { headers: Record<string, string>; body: string }[];
  // The gateway itself, for signOutEverywhere: its origin, its admin_api
  // secret, and the signed-up user, who still has a session there.
  gateway: string;
  adminSecret: string;
  userId: string;
};

const file = process.env.CONVEX_AUTH_EVENTS_RECORDING;

test.skipIf(!file)("the gateway's recorded events verify, keep the users row and apply once (set by e2e/convex_events_test.go)", async () => {
  const recording: Recording = JSON.parse(readFileSync(file!, "utf8"));
  vi.stubEnv("CONVEX_AUTH_EVENTS_SECRET", recording.secret);
  try {
    const t = convexTest(schema, modules);
    const types: string[] = [];
    const replay = async () => {
      const results = [];
      for (const { headers, body } of recording.requests) {
        const res = await t.fetch("/gateway-events", { method: "POST", headers, body });
        expect(res.status, `${headers["webhook-id"]}: ${await res.clone().text()}`).toBe(200);
        results.push(((await res.json()) as { result: string }).result);
      }
      return results;
    };

    const first = await replay();
    for (const { body } of recording.requests) types.push(JSON.parse(body).type);
    expect(types).toContain("user.created");
    expect(types).toContain("session.created");
    expect(types).toContain("session.revoked");
    // A webhook-id the gateway sent twice (a retry) is applied once.
    const ids = recording.requests.map((r) => r.headers["webhook-id"]);
    const expected = ids.map((id, i) => (ids.indexOf(id) < i ? "duplicate" : types[i].startsWith("user.") ? "applied" : "ignored"));
    expect(first).toEqual(expected);

    const users = await t.run((ctx) => ctx.db.query("users").collect());
    expect(users).toHaveLength(1);
    expect(users[0]).toMatchObject({ ...recording.expect, banned: false });
    const events = await t.run((ctx) => ctx.db.query("gatewayEvents").collect());
    expect(events.map((e) => e.webhookId).sort()).toEqual([...new Set(ids)].sort());

    // The whole recording again, as a receiver that was down would get it:
    // every event is a duplicate and nothing changes.
    expect(new Set(await replay())).toEqual(new Set(["duplicate"]));
    expect(await t.run((ctx) => ctx.db.query("users").collect())).toEqual(users);
  } finally {
    vi.unstubAllEnvs();
  }
});

test.skipIf(!file)("signOutEverywhere ends the user's sessions through the running gateway's site admin API (set by e2e/convex_events_test.go)", async () => {
  const recording: Recording = JSON.parse(readFileSync(file!, "utf8"));
  vi.stubEnv("CONVEX_AUTH_GATEWAY_URL", recording.gateway);
  vi.stubEnv("CONVEX_AUTH_ADMIN_SECRET", recording.adminSecret);
  try {
    const t = convexTest(schema, modules);
    // A real fetch: the e2e test checks afterwards that the session is gone.
    expect(await t.action(internal.admin.signOutEverywhere, { userId: recording.userId })).toEqual({ ended: 1 });
    expect(await t.action(internal.admin.signOutEverywhere, { userId: recording.userId })).toEqual({ ended: 0 });
    vi.stubEnv("CONVEX_AUTH_ADMIN_SECRET", recording.adminSecret + "-wrong");
    await expect(t.action(internal.admin.signOutEverywhere, { userId: recording.userId })).rejects.toThrow(/401/);
  } finally {
    vi.unstubAllEnvs();
  }
});
