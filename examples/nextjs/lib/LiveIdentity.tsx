"use client";

import { useGatewayAuth } from "@convex-auth/gateway-client";
import { useConvexAuth, useQuery } from "convex/react";
import { useRouter } from "next/navigation";
import { api } from "@/convex/_generated/api";

/**
 * The signed-in user in the browser: who the gateway says it is
 * (useGatewayAuth), and, behind that, what Convex says live over its
 * WebSocket (useQuery). It notices a sign-out in another tab at once, and
 * one on a gateway page or by the app's backend when the tab gets focus.
 */
export function LiveIdentity() {
  const { isLoading, isAuthenticated, user } = useGatewayAuth();
  if (isLoading) {
    return (
      <section id="live" data-state="loading">
        Checking the session…
      </section>
    );
  }
  if (!isAuthenticated || !user) {
    return (
      <section id="live" data-state="signed-out">
        <p>In the browser: signed out.</p>
      </section>
    );
  }
  return <SignedIn gatewayName={user.name ?? user.id} />;
}

function SignedIn({ gatewayName }: { gatewayName: string }) {
  const { signOut } = useGatewayAuth();
  const router = useRouter();
  // Convex's view: its client runs the query with the gateway's token, and
  // says authenticated once the deployment accepted that token.
  const me = useQuery(api.users.me);
  const convex = useConvexAuth();
  return (
    <section id="live" data-state="signed-in" data-convex-authenticated={String(convex.isAuthenticated)}>
      <h2>In the browser</h2>
      <dl>
        <dt>the gateway says</dt>
        <dd id="live-gateway-name">{gatewayName}</dd>
        <dt>useQuery(api.users.me)</dt>
        <dd id="live-convex-subject">{me === undefined ? "loading…" : (me?.subject ?? "signed out")}</dd>
        <dd id="live-convex-name">{me?.name ?? ""}</dd>
      </dl>
      <button
        id="live-signout"
        type="button"
        onClick={async () => {
          // Ends the session and tells the other tabs; then the server
          // components render again, without the user.
          await signOut();
          router.refresh();
        }}
      >
        Sign out (from the browser)
      </button>
    </section>
  );
}
