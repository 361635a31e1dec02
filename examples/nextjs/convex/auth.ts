import { v } from "convex/values";
import { internal } from "./_generated/api";
import { internalAction, internalMutation, query, type MutationCtx, type QueryCtx } from "./_generated/server";
import { gatewayAdmin } from "./gatewayAdmin";

// The gateway's authorization (docs/authorization.md). The gateway calls
// `claims` as the signed-in user, with a token it mints for that call
// alone, and puts what it returns into every token of the session:
//
//   claims {
//     convex_url {env.CONVEX_URL}
//     query      auth:claims
//     context    org
//   }
//   protect /loggedin/admin* {
//     allow claim role admin
//   }
//
// Server code and Convex functions then read the role from the token
// (identity.role) without asking the database, and the gateway refuses
// /loggedin/admin to non-admins before any page renders.

/** Roles a user can have; a user without one is a member. */
export const roles = v.union(v.literal("admin"), v.literal("member"));

async function userBySubject(ctx: { db: QueryCtx["db"] }, subject: string) {
  return await ctx.db
    .query("users")
    .withIndex("by_gatewayId", (q) => q.eq("gatewayId", subject))
    .unique();
}

/**
 * The claims of the calling user's session: their role, the organizations
 * they belong to and, when the session has one, the active organization.
 *
 * `context` is the session's stored context (POST /auth/session/context):
 * `{}` until the user picks an organization. Returning null refuses it:
 * the gateway answers 403 to the switch and the session stays as it was.
 * Names the gateway or OIDC sets (sub, email, name, …) are refused; keep
 * claims small, they travel in every token.
 */
export const claims = query({
  args: { context: v.object({ org: v.optional(v.string()) }) },
  handler: async (ctx, { context }) => {
    const identity = await ctx.auth.getUserIdentity();
    if (identity === null) {
      return null;
    }
    const user = await userBySubject(ctx, identity.subject);
    const role = user?.role ?? "member";
    const orgs = user?.orgs ?? [];
    if (context.org === undefined) {
      return { role, orgs };
    }
    if (!orgs.includes(context.org)) {
      return null;
    }
    return { role, orgs, org: context.org };
  },
});

/**
 * Sets a user's role and tells the gateway, so that every instance drops
 * the user's claims and cached tokens and asks `claims` again on the
 * user's next request. Internal: run it from the dashboard, `npx convex
 * run auth:setRole`, or your own admin functions.
 *
 * A token minted before the change stays valid at Convex until it expires
 * (the gateway's token_ttl, 5 minutes by default).
 */
export const setRole = internalMutation({
  args: { userId: v.string(), role: roles },
  handler: async (ctx, { userId, role }) => {
    await upsertUser(ctx, userId, { role });
    await ctx.scheduler.runAfter(0, internal.auth.refreshClaims, { userId });
  },
});

/** Sets the organizations a user belongs to, and tells the gateway. */
export const setOrgs = internalMutation({
  args: { userId: v.string(), orgs: v.array(v.string()) },
  handler: async (ctx, { userId, orgs }) => {
    await upsertUser(ctx, userId, { orgs });
    await ctx.scheduler.runAfter(0, internal.auth.refreshClaims, { userId });
  },
});

async function upsertUser(ctx: MutationCtx, gatewayId: string, fields: { role?: "admin" | "member"; orgs?: string[] }) {
  const row = await userBySubject(ctx, gatewayId);
  if (row) {
    await ctx.db.patch(row._id, fields);
  } else {
    // The user's user.created event may not have arrived yet: it fills in
    // the profile when it does, and keeps these.
    await ctx.db.insert("users", { gatewayId, banned: false, updatedAt: 0, ...fields });
  }
}

/**
 * Asks the gateway to drop a user's claims everywhere (POST
 * /auth/admin/users/{id}/claims/refresh on the site admin API). Needs
 * CONVEX_AUTH_GATEWAY_URL and CONVEX_AUTH_ADMIN_SECRET on the deployment,
 * as admin.ts's signOutEverywhere.
 */
export const refreshClaims = internalAction({
  args: { userId: v.string() },
  handler: async (_ctx, { userId }): Promise<{ refreshed: boolean }> => {
    await gatewayAdmin("POST", userId, "/claims/refresh");
    return { refreshed: true };
  },
});

/**
 * The calling user as the token says: the claims the gateway put in it.
 * A page or function can trust them as it trusts the token's subject.
 */
export const whoami = query({
  args: {},
  handler: async (ctx) => {
    const identity = await ctx.auth.getUserIdentity();
    if (identity === null) {
      return null;
    }
    return {
      subject: identity.subject,
      role: (identity.role as string | undefined) ?? null,
      org: (identity.org as string | undefined) ?? null,
      orgs: (identity.orgs as string[] | undefined) ?? [],
    };
  },
});
