import { defineSchema, defineTable } from "convex/server";
import { v } from "convex/values";

export default defineSchema({
  // The app's copy of the gateway's users, kept by the gateway's events
  // (gatewayEvents.ts). gatewayId is the gateway's user ID: the `sub` of
  // the tokens it mints, so ctx.auth.getUserIdentity().subject finds the row.
  users: defineTable({
    gatewayId: v.string(),
    email: v.optional(v.string()),
    emailVerified: v.optional(v.boolean()),
    name: v.optional(v.string()),
    picture: v.optional(v.string()),
    anonymous: v.optional(v.boolean()),
    banned: v.boolean(),
    // The app's own data about the user, which the gateway's claims query
    // (auth.ts) turns into claims: the role, and the organizations the
    // user belongs to. Events leave them as they are.
    role: v.optional(v.union(v.literal("admin"), v.literal("member"))),
    orgs: v.optional(v.array(v.string())),
    // The timestamp (Unix ms) of the last event applied to the row.
    updatedAt: v.number(),
  }).index("by_gatewayId", ["gatewayId"]),

  // One row per applied event, by webhook-id: delivery is at least once, so
  // a redelivered event is found here and applied only once.
  gatewayEvents: defineTable({
    webhookId: v.string(),
    type: v.string(),
    receivedAt: v.number(),
  })
    .index("by_webhookId", ["webhookId"])
    .index("by_receivedAt", ["receivedAt"]),
});
