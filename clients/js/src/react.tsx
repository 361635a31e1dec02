"use client";

import { ConvexProviderWithAuth } from "convex/react";
import { createContext, type ReactNode, useContext, useEffect, useMemo, useState, useSyncExternalStore } from "react";
import { GatewayAuthClient, type GatewayAuthOptions, type SignOutOptions } from "./client.js";
import { signIn } from "./endpoints.js";
import type { GatewayAuthState } from "./types.js";

// What ConvexProviderWithAuth needs of its client: the type Convex's own
// providers take, without naming ConvexReactClient's internals.
type ConvexAuthClient = Parameters<typeof ConvexProviderWithAuth>[0]["client"];

const GatewayAuthContext = createContext<GatewayAuthClient | null>(null);

export interface ConvexProviderWithGatewayProps extends GatewayAuthOptions {
  /** The app's `ConvexReactClient`. */
  client: ConvexAuthClient;
  /**
   * The {@link GatewayAuthClient} to use, e.g. one shared with code outside
   * React. Default: one created for this provider.
   */
  gatewayAuth?: GatewayAuthClient;
  children?: ReactNode;
}

/**
 * Convex's `ConvexProviderWithAuth`, authenticated by the gateway: the
 * session lives in the gateway's HttpOnly cookie, `GET /auth/session` says
 * who is signed in and `GET /auth/token` mints Convex tokens for it.
 * Components below it use `useQuery`, `useConvexAuth` and
 * {@link useGatewayAuth}.
 */
export function ConvexProviderWithGateway({ client, gatewayAuth, children, ...options }: ConvexProviderWithGatewayProps) {
  const [own] = useState(() => gatewayAuth ?? new GatewayAuthClient(options));
  const auth = gatewayAuth ?? own;
  useEffect(() => auth.start(), [auth]);
  return (
    <GatewayAuthContext.Provider value={auth}>
      <ConvexProviderWithAuth client={client} useAuth={useAuthForConvex}>
        {children}
      </ConvexProviderWithAuth>
    </GatewayAuthContext.Provider>
  );
}

function useGatewayAuthClient(): GatewayAuthClient {
  const auth = useContext(GatewayAuthContext);
  if (!auth) throw new Error("useGatewayAuth must be called inside <ConvexProviderWithGateway>");
  return auth;
}

function useGatewayState(auth: GatewayAuthClient): GatewayAuthState {
  return useSyncExternalStore(auth.subscribe, auth.getState, auth.getServerState);
}

// The useAuth hook ConvexProviderWithAuth calls. Convex calls setAuth again
// whenever fetchAccessToken changes, so it changes only with the session:
// another user signing in in another tab hands Convex a token of theirs at
// the next check instead of at the next refresh.
function useAuthForConvex() {
  const auth = useGatewayAuthClient();
  const { isLoading, isAuthenticated, session } = useGatewayState(auth);
  const sessionId = session?.id;
  const fetchAccessToken = useMemo(
    () => (args: { forceRefreshToken: boolean }) => auth.fetchAccessToken(args),
    // sessionId is the reason for a new function, not an input to it.
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [auth, sessionId],
  );
  return useMemo(() => ({ isLoading, isAuthenticated, fetchAccessToken }), [isLoading, isAuthenticated, fetchAccessToken]);
}

/** What {@link useGatewayAuth} returns. */
export interface GatewayAuth extends GatewayAuthState {
  /** A Convex token for the session (see {@link GatewayAuthClient.fetchAccessToken}). */
  fetchAccessToken: GatewayAuthClient["fetchAccessToken"];
  /** Asks the gateway again who is signed in. */
  refresh: () => Promise<GatewayAuthState>;
  /** Sends the browser to the gateway's sign-in. */
  signIn: (provider?: string, redirectTo?: string) => void;
  /** Ends the session at the gateway and tells the other tabs. */
  signOut: (options?: Omit<SignOutOptions, "tabChannel">) => Promise<void>;
}

/**
 * The gateway session as the gateway last said: `isLoading` until the
 * first answer, then `isAuthenticated` and the typed `user` and `session`.
 * This is the gateway's view; `useConvexAuth()` is Convex's, which also
 * waits for the Convex deployment to accept the token.
 */
export function useGatewayAuth(): GatewayAuth {
  const auth = useGatewayAuthClient();
  const state = useGatewayState(auth);
  return useMemo(
    () => ({ ...state, fetchAccessToken: auth.fetchAccessToken, refresh: auth.refresh, signIn, signOut: auth.signOut }),
    [state, auth],
  );
}
