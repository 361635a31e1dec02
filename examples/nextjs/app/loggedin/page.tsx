import { headers } from "next/headers";
import { fetchQuery } from "convex/nextjs";
import { api } from "@/convex/_generated/api";
import { verifyLikeConvex } from "@/lib/verifyLikeConvex";

// A server component under a path the gateway protects: every request that
// reaches it carries the signed-in user's Convex token, injected by the
// gateway. No auth library, no middleware.
export default async function LoggedIn() {
  const token = (await headers()).get("x-convex-token") ?? undefined;

  const me = process.env.NEXT_PUBLIC_CONVEX_URL
    ? await fetchQuery(api.users.me, {}, { token })
    : await verifyLikeConvex(token); // no deployment: the stand-in checks the token
  const verifiedBy = process.env.NEXT_PUBLIC_CONVEX_URL ? "convex" : "gateway-jwks";

  if (!me) {
    return (
      <main>
        <p>Not signed in.</p>
      </main>
    );
  }
  return (
    <main>
      <h1>Signed in</h1>
      <dl id="identity" data-verified-by={verifiedBy}>
        <dt>name</dt>
        <dd id="name">{me.name}</dd>
        <dt>email</dt>
        <dd id="email">{me.email}</dd>
        <dt>subject</dt>
        <dd id="subject">{me.subject}</dd>
        <dt>tokenIdentifier</dt>
        <dd id="tokenIdentifier">{me.tokenIdentifier}</dd>
      </dl>
      <form method="post" action="/auth/signout">
        <button type="submit">Sign out</button>
      </form>
    </main>
  );
}
