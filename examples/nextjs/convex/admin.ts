import { v } from "convex/values";
import { internalAction } from "./_generated/server";
import { gatewayAdmin } from "./gatewayAdmin";

/**
 * Ends every session of a gateway user, on every gateway instance, through
 * the gateway's site admin API (`admin_api { secret … }`, docs/admin-api.md).
 * Internal: call it from your own mutations and actions, e.g.
 * `ctx.scheduler.runAfter(0, internal.admin.signOutEverywhere, { userId })`.
 *
 * Needs CONVEX_AUTH_GATEWAY_URL (the site's origin, e.g.
 * https://app.example.com) and CONVEX_AUTH_ADMIN_SECRET (the gateway's
 * admin_api secret) on the deployment. Returns the gateway's answer,
 * `{ ended: <number of sessions ended> }`.
 */
export const signOutEverywhere = internalAction({
  args: { userId: v.string() },
  handler: async (_ctx, { userId }): Promise<{ ended: number }> => {
    return await gatewayAdmin("DELETE", userId, "/sessions");
  },
});
