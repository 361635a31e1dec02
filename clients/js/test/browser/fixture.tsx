// The page of the Chromium test (e2e/gateway_client_test.go drives it with
// e2e/browser/gatewayclient.mjs): the package's provider around a Convex
// client, and what useGatewayAuth says, in data attributes the test reads.
// There is no Convex deployment behind it: window.CONVEX_URL names a port
// nothing listens on, so Convex's client asks the package for a token and
// then waits for a backend that never answers.
import { ConvexReactClient } from "convex/react";
import { useEffect, useState } from "react";
import { createRoot } from "react-dom/client";
import { ConvexProviderWithGateway, signIn, useGatewayAuth } from "../../src/index.js";

declare global {
  interface Window {
    CONVEX_URL: string;
    /** Date.now() when the page last saw the gateway say signed in / signed out. */
    signedInAt?: number;
    signedOutAt?: number;
    /** focus and visibilitychange events the page got. */
    focusEvents: number;
  }
}

window.focusEvents = 0;
window.addEventListener("focus", () => window.focusEvents++);
document.addEventListener("visibilitychange", () => window.focusEvents++);

const convex = new ConvexReactClient(window.CONVEX_URL, { unsavedChangesWarning: false });

function State() {
  const { isLoading, isAuthenticated, user, session, error, signOut, fetchAccessToken } = useGatewayAuth();
  const [outcome, setOutcome] = useState("");
  useEffect(() => {
    if (isLoading) return;
    if (isAuthenticated) window.signedInAt = Date.now();
    else window.signedOutAt = Date.now();
  }, [isLoading, isAuthenticated]);
  return (
    <main>
      <p
        id="state"
        data-loading={String(isLoading)}
        data-authenticated={String(isAuthenticated)}
        data-user-id={user?.id ?? ""}
        data-email={user?.email ?? ""}
        data-email-verified={String(user?.emailVerified ?? "")}
        data-session-id={session?.id ?? ""}
        data-provider={session?.provider ?? ""}
        data-error={error?.code ?? ""}
      >
        {isLoading ? "checking" : isAuthenticated ? `signed in as ${user?.email}` : "signed out"}
      </p>
      <button id="signin" onClick={() => signIn()}>Sign in</button>
      <button id="signout" onClick={() => signOut().then(() => setOutcome("signed out"), (e: Error) => setOutcome(`sign-out failed: ${e.message}`))}>
        Sign out
      </button>
      <button id="token" onClick={() => fetchAccessToken({ forceRefreshToken: true }).then((t) => setOutcome(t ? `token ${t}` : "no token"))}>
        Token
      </button>
      <p id="outcome">{outcome}</p>
    </main>
  );
}

createRoot(document.getElementById("root")!).render(
  <ConvexProviderWithGateway client={convex}>
    <State />
  </ConvexProviderWithGateway>,
);
