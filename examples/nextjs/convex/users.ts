import { query } from "./_generated/server";

/**
 * The signed-in user as Convex sees them: the identity Convex derives from
 * the gateway's token, after checking it against the gateway's JWKS.
 */
export const me = query({
  args: {},
  handler: async (ctx) => {
    return await ctx.auth.getUserIdentity();
  },
});

/**
 * A query that fails with an ordinary error (not an auth error) for a
 * signed-in user, as app queries do. The example's test runs it through
 * fetchAuthQuery to show what a helper's retry does with such an error.
 */
export const failing = query({
  args: {},
  handler: async (ctx) => {
    if ((await ctx.auth.getUserIdentity()) === null) {
      throw new Error("not signed in");
    }
    throw new Error("the report is not ready yet");
  },
});

/**
 * The signed-in user's row of the users table, which the gateway's events
 * keep (gatewayEvents.ts): the token's subject is the gateway's user ID.
 * null when signed out or before the user's user.created has arrived.
 */
export const current = query({
  args: {},
  handler: async (ctx) => {
    const identity = await ctx.auth.getUserIdentity();
    if (identity === null) return null;
    return await ctx.db
      .query("users")
      .withIndex("by_gatewayId", (q) => q.eq("gatewayId", identity.subject))
      .unique();
  },
});
