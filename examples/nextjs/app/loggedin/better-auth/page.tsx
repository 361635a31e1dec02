import type { UserIdentity } from "convex/server";
import { api } from "@/convex/_generated/api";
import { betterAuthHelpers, type Setup } from "@/lib/betterAuthServer";
import { Identity } from "@/lib/Identity";
import { RequestFacts } from "@/lib/RequestFacts";

const setups: Setup[] = ["gateway", "labs", "default"];

// Server code written for Better Auth (@convex-dev/better-auth), behind a
// gateway site with `inject cookie better-auth`: fetchAuthQuery reads the
// gateway's token from the cookie its jwtCache reads. ?setup= picks the
// helper configuration (lib/betterAuthServer.ts); ?query=failing runs a
// query that throws an ordinary error.
export default async function BetterAuthPage({
  searchParams,
}: {
  searchParams: Promise<{ setup?: string; query?: string }>;
}) {
  const params = await searchParams;
  const setup = setups.find((s) => s === params.setup) ?? "gateway";
  const { fetchAuthQuery } = betterAuthHelpers(setup);

  let me: UserIdentity | null = null;
  let error: string | null = null;
  try {
    if (params.query === "failing") {
      await fetchAuthQuery(api.users.failing, {});
    } else {
      me = await fetchAuthQuery(api.users.me, {});
    }
  } catch (e) {
    // What the app's code gets from fetchAuthQuery.
    error = e instanceof Error ? e.message : String(e);
  }
  return (
    <main>
      <h1>Better Auth&apos;s server helper ({setup})</h1>
      {error !== null ? (
        <p id="error" data-setup={setup}>
          {error}
        </p>
      ) : (
        <Identity me={me} source={`fetchAuthQuery:${setup}`} />
      )}
      <RequestFacts />
    </main>
  );
}
