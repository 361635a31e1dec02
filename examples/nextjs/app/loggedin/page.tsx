import { headers } from "next/headers";
import { fetchQuery } from "convex/nextjs";
import { api } from "@/convex/_generated/api";
import { Identity } from "@/lib/Identity";
import { RequestFacts } from "@/lib/RequestFacts";

// A server component under a path the gateway protects: every request that
// reaches it carries the signed-in user's Convex token, injected by the
// gateway. No auth library, no middleware.
export default async function LoggedIn() {
  const token = (await headers()).get("x-convex-token") ?? undefined;
  const me = await fetchQuery(api.users.me, {}, { token });
  return (
    <main>
      <h1>Signed in</h1>
      <Identity me={me} source="x-convex-token" />
      <form method="post" action="/auth/signout">
        <button type="submit">Sign out</button>
      </form>
      <RequestFacts />
    </main>
  );
}
