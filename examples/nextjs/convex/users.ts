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
