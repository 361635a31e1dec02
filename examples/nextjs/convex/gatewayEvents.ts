import { v } from "convex/values";
import { Webhook, WebhookVerificationError } from "standardwebhooks";
import { internal } from "./_generated/api";
import { httpAction, internalMutation } from "./_generated/server";

// The gateway's events (docs/events.md), received at POST /gateway-events
// (http.ts). Each request is signed per Standard Webhooks with the secret
// in CONVEX_AUTH_EVENTS_SECRET (whsec_…). Delivery is at least once, so the
// event is applied in one mutation together with its webhook-id, and a
// redelivered webhook-id changes nothing.
//
// user.created / user.updated upsert the users row, user.deleted deletes it,
// user.banned sets its banned flag. session.* events are acknowledged and
// recorded for dedupe only: this example keeps no sessions (an app that
// moves a replaced guest's data would read session.created's
// replacedUserId here). Unknown types are acknowledged too, so that a newer
// gateway does not retry them for a day.

/** How long a webhook-id is remembered: longer than the gateway retries (24 h by default). */
export const DEDUPE_RETENTION_MS = 48 * 60 * 60 * 1000;

const userFields = v.object({
  id: v.string(),
  email: v.optional(v.string()),
  emailVerified: v.optional(v.boolean()),
  name: v.optional(v.string()),
  picture: v.optional(v.string()),
  anonymous: v.optional(v.boolean()),
});

type GatewayEvent = {
  type: string;
  timestamp: number;
  user?: typeof userFields.type;
  banned?: boolean;
};

export const receive = httpAction(async (ctx, request) => {
  const secret = process.env.CONVEX_AUTH_EVENTS_SECRET;
  if (!secret) {
    // 500, not 401: the gateway retries, and the events arrive once the
    // variable is set.
    return json(500, {
      error: "events_secret_unset",
      message: "CONVEX_AUTH_EVENTS_SECRET is not set on this deployment: set it to the gateway's events secret (npx convex env set CONVEX_AUTH_EVENTS_SECRET whsec_…)",
    });
  }
  let webhook: Webhook;
  try {
    webhook = new Webhook(secret);
  } catch {
    return json(500, {
      error: "events_secret_invalid",
      message: "CONVEX_AUTH_EVENTS_SECRET is not a whsec_<base64> secret: set it to the gateway's events secret",
    });
  }

  const webhookId = request.headers.get("webhook-id") ?? "";
  const body = await request.text();
  let payload: unknown;
  try {
    payload = webhook.verify(body, {
      "webhook-id": webhookId,
      "webhook-timestamp": request.headers.get("webhook-timestamp") ?? "",
      "webhook-signature": request.headers.get("webhook-signature") ?? "",
    });
  } catch (e) {
    if (e instanceof WebhookVerificationError) {
      return json(401, {
        error: "bad_signature",
        message: "the webhook signature does not verify with CONVEX_AUTH_EVENTS_SECRET, or its webhook-timestamp is more than 5 minutes away: check that the gateway's events secret is this deployment's",
      });
    }
    return json(400, { error: "bad_body", message: "the signed body is not JSON" });
  }

  const event = parseEvent(payload);
  if (typeof event === "string") {
    return json(400, { error: "bad_event", message: event });
  }
  const result = await ctx.runMutation(internal.gatewayEvents.apply, { webhookId, ...event });
  return json(200, { result });
});

export const apply = internalMutation({
  args: {
    webhookId: v.string(),
    type: v.string(),
    timestamp: v.number(),
    user: v.optional(userFields),
    banned: v.optional(v.boolean()),
  },
  returns: v.union(v.literal("applied"), v.literal("duplicate"), v.literal("ignored")),
  handler: async (ctx, { webhookId, type, timestamp, user, banned }) => {
    const seen = await ctx.db
      .query("gatewayEvents")
      .withIndex("by_webhookId", (q) => q.eq("webhookId", webhookId))
      .unique();
    if (seen !== null) return "duplicate";
    await ctx.db.insert("gatewayEvents", { webhookId, type, receivedAt: Date.now() });

    if (!type.startsWith("user.") || user === undefined) return "ignored";
    const row = await ctx.db
      .query("users")
      .withIndex("by_gatewayId", (q) => q.eq("gatewayId", user.id))
      .unique();
    switch (type) {
      case "user.created":
      case "user.updated": {
        const { id, ...profile } = user;
        const next = {
          gatewayId: id,
          ...profile,
          banned: row?.banned ?? false,
          // The app's own fields (auth.ts) are not the gateway's to change.
          ...(row?.role !== undefined ? { role: row.role } : {}),
          ...(row?.orgs !== undefined ? { orgs: row.orgs } : {}),
          updatedAt: timestamp,
        };
        if (row === null) {
          await ctx.db.insert("users", next);
        } else if (row.updatedAt <= timestamp) {
          // A replace, not a patch: the gateway omits empty fields, so a
          // field missing from the event is one the user no longer has.
          await ctx.db.replace(row._id, next);
        }
        return "applied";
      }
      case "user.deleted":
        if (row !== null) await ctx.db.delete(row._id);
        return "applied";
      case "user.banned":
        if (banned === undefined) return "ignored";
        if (row === null) {
          await ctx.db.insert("users", { gatewayId: user.id, banned, updatedAt: timestamp });
        } else if (row.updatedAt <= timestamp) {
          await ctx.db.patch(row._id, { banned, updatedAt: timestamp });
        }
        return "applied";
      default:
        return "ignored";
    }
  },
});

/** Forgets webhook-ids older than DEDUPE_RETENTION_MS, a batch at a time (crons.ts). */
export const prune = internalMutation({
  args: {},
  returns: v.number(),
  handler: async (ctx) => {
    const old = await ctx.db
      .query("gatewayEvents")
      .withIndex("by_receivedAt", (q) => q.lt("receivedAt", Date.now() - DEDUPE_RETENTION_MS))
      .take(500);
    for (const row of old) await ctx.db.delete(row._id);
    if (old.length === 500) await ctx.scheduler.runAfter(0, internal.gatewayEvents.prune, {});
    return old.length;
  },
});

// parseEvent keeps the fields this app uses, so that fields a newer gateway
// adds do not fail the mutation's argument validation. It returns what is
// wrong as a string.
function parseEvent(payload: unknown): GatewayEvent | string {
  if (!isObject(payload)) return "the event is not a JSON object";
  const { type, timestamp, data } = payload;
  if (typeof type !== "string" || typeof timestamp !== "number" || !isObject(data)) {
    return "the event needs a string type, a number timestamp and a data object";
  }
  const event: GatewayEvent = { type, timestamp };
  if (!type.startsWith("user.")) return event;
  const u = data.user;
  if (!isObject(u) || typeof u.id !== "string" || u.id === "") {
    return `${type} needs data.user.id`;
  }
  event.user = { id: u.id };
  for (const key of ["email", "name", "picture"] as const) {
    if (typeof u[key] === "string") event.user[key] = u[key];
  }
  if (type === "user.created" || type === "user.updated") {
    // The gateway omits false: the row says it.
    event.user.emailVerified = u.emailVerified === true;
    event.user.anonymous = u.anonymous === true;
  }
  if (type === "user.banned") {
    if (typeof data.banned !== "boolean") return "user.banned needs data.banned true or false";
    event.banned = data.banned;
  }
  return event;
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
}
