import { headers } from "next/headers";
import { fetchQuery } from "convex/nextjs";
import { api } from "@/convex/_generated/api";

// Only admins reach this page: the gateway's rule `protect /loggedin/admin*
// { allow claim role admin }` reads the role the app's claims query
// (convex/auth.ts) put into the token, and answers everyone else 403
// before this code runs. The page needs no check of its own.
export default async function AdminPage() {
  const token = (await headers()).get("x-convex-token") ?? undefined;
  const me = await fetchQuery(api.auth.whoami, {}, { token });
  return (
    <main>
      <h1>Admin</h1>
      <p id="admin" data-subject={me?.subject} data-role={me?.role ?? ""}>
        Signed in as {me?.subject}, role {me?.role}: the token said so, and the gateway let the request through.
      </p>
      <p>
        <a href="/loggedin/orgs">Organizations</a>
      </p>
    </main>
  );
}
