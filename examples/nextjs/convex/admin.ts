import { v } from "convex/values";
import { internalAction } from "./_generated/server";

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
    const gateway = process.env.CONVEX_AUTH_GATEWAY_URL;
    const secret = process.env.CONVEX_AUTH_ADMIN_SECRET;
    if (!gateway || !secret) {
      throw new Error(
        "CONVEX_AUTH_GATEWAY_URL and CONVEX_AUTH_ADMIN_SECRET must both be set on the deployment: the gateway's origin and its admin_api secret",
      );
    }
    const url = `${gateway.replace(/\/+$/, "")}/auth/admin/users/${encodeURIComponent(userId)}/sessions`;
    const res = await fetch(url, { method: "DELETE", headers: { Authorization: `Bearer ${secret}` } });
    const text = await res.text();
    let body: any;
    try {
      body = JSON.parse(text);
    } catch {
      throw new Error(`the gateway's admin API answered ${res.status} with a body that is not JSON: is CONVEX_AUTH_GATEWAY_URL the gateway's origin?`);
    }
    if (!res.ok) {
      // The gateway's errors are {"error","message"}; they never echo the secret.
      throw new Error(`the gateway's admin API answered ${res.status} for user ${userId}: ${body?.message ?? body?.error ?? text}`);
    }
    return body;
  },
});
