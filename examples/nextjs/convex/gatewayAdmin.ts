// The gateway's site admin API (docs/admin-api.md), as this deployment's
// actions call it: CONVEX_AUTH_GATEWAY_URL is the site's origin (e.g.
// https://app.example.com) and CONVEX_AUTH_ADMIN_SECRET the gateway's
// admin_api secret. Errors carry the gateway's message, never the secret.

/** Calls <gateway>/auth/admin/users/<userId><path> and returns its JSON answer. */
export async function gatewayAdmin(method: "POST" | "DELETE", userId: string, path: string): Promise<any> {
  const gateway = process.env.CONVEX_AUTH_GATEWAY_URL;
  const secret = process.env.CONVEX_AUTH_ADMIN_SECRET;
  if (!gateway || !secret) {
    throw new Error(
      "CONVEX_AUTH_GATEWAY_URL and CONVEX_AUTH_ADMIN_SECRET must both be set on the deployment: the gateway's origin and its admin_api secret",
    );
  }
  const url = `${gateway.replace(/\/+$/, "")}/auth/admin/users/${encodeURIComponent(userId)}${path}`;
  const res = await fetch(url, { method, headers: { Authorization: `Bearer ${secret}` } });
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
}
