import { getGatewayToken } from "@convex-auth/gateway-client/next";
import { fetchQuery } from "convex/nextjs";
import { api } from "@/convex/_generated/api";
import { Identity } from "@/lib/Identity";
import { LiveIdentity } from "@/lib/LiveIdentity";
import { RequestFacts } from "@/lib/RequestFacts";

// A server component under a path the gateway protects: every request that
// reaches it carries the signed-in user's Convex token, injected by the
// gateway. No auth library, no middleware.
export default async function LoggedIn() {
  // The x-convex-token header the gateway injected.
  const me = await fetchQuery(api.users.me, {}, { token: await getGatewayToken() });
  return (
    <main>
      <h1>Signed in</h1>
      <Identity me={me} source="x-convex-token" />
      <form method="post" action="/auth/signout">
        <button type="submit">Sign out</button>
      </form>
      <LiveIdentity />
      <RequestFacts />
    </main>
  );
}
