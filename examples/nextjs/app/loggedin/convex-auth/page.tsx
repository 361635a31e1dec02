import { fetchQuery } from "convex/nextjs";
// @convex-dev/auth 0.0.95, installed under the alias convex-auth-0 beside
// 2.x (package.json): an app on 0.0.x imports "@convex-dev/auth/nextjs/server".
import { convexAuthNextjsToken } from "convex-auth-0/nextjs/server";
import { api } from "@/convex/_generated/api";
import { Identity } from "@/lib/Identity";
import { RequestFacts } from "@/lib/RequestFacts";

// Server code written for Convex Auth 0.0.x (@convex-dev/auth), unchanged, behind a
// gateway site with `inject cookie convex-auth`: convexAuthNextjsToken()
// reads the token from the cookie the gateway injected. There is no Convex
// Auth server and no Convex Auth middleware: the gateway signs users in.
export default async function ConvexAuthPage() {
  const me = await fetchQuery(api.users.me, {}, { token: await convexAuthNextjsToken() });
  return (
    <main>
      <h1>Convex Auth&apos;s server helper</h1>
      <Identity me={me} source="convexAuthNextjsToken" />
      <RequestFacts />
    </main>
  );
}
