import { fetchQuery } from "convex/nextjs";
import { api } from "@/convex/_generated/api";
import { convexAuth2 } from "@/lib/convexAuth2Server";
import { Identity } from "@/lib/Identity";
import { RequestFacts } from "@/lib/RequestFacts";

// Server code written for Convex Auth 2.x (@convex-dev/auth/ssr/nextjs),
// behind a gateway site that injects its __convexAuthJWT cookie
// (`inject cookie convex-auth-2`):
// convexAuthNextjsAccessToken() reads the gateway's token. There is no
// Convex Auth backend and no Convex Auth proxy: the gateway signs users in.
export default async function ConvexAuth2Page() {
  const token = await convexAuth2().convexAuthNextjsAccessToken();
  const me = await fetchQuery(api.users.me, {}, { token: token ?? undefined });
  return (
    <main>
      <h1>Convex Auth 2&apos;s server helper</h1>
      <Identity me={me} source="convexAuthNextjsAccessToken" />
      <RequestFacts />
    </main>
  );
}
