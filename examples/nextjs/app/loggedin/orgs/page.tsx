import { headers } from "next/headers";
import { fetchQuery } from "convex/nextjs";
import { api } from "@/convex/_generated/api";
import { OrgSwitcher } from "@/lib/OrgSwitcher";

// The user's organizations and the active one, as the token carries them
// (convex/auth.ts's claims query), with a switcher: no sign-in again.
export default async function OrgsPage() {
  const token = (await headers()).get("x-convex-token") ?? undefined;
  const me = await fetchQuery(api.auth.whoami, {}, { token });
  return (
    <main>
      <h1>Organizations</h1>
      <p id="active-org" data-org={me?.org ?? ""}>
        {me?.org ? `Active: ${me.org}` : "No active organization."}
      </p>
      <OrgSwitcher orgs={me?.orgs ?? []} active={me?.org ?? null} />
    </main>
  );
}
