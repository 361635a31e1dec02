"use client";

import { ConvexProviderWithAuth, ConvexReactClient } from "convex/react";
import { type ReactNode, useCallback, useEffect, useMemo, useRef, useState } from "react";

const convexUrl = process.env.NEXT_PUBLIC_CONVEX_URL;
const convex = convexUrl ? new ConvexReactClient(convexUrl) : null;

// A token fetched this recently is handed out again when Convex does not
// force a refresh (a reconnect, React's double mount). Convex's client
// schedules its next refresh at exp - iat - 10 s after it gets a token, so an
// older token would be refreshed only after it expired: keep this under 10 s.
const TOKEN_REUSE_MS = 5_000;

/**
 * The browser's Convex client, authenticated by the gateway: the session
 * lives in the gateway's HttpOnly cookie, and GET /auth/token mints a JWT for
 * it. Without NEXT_PUBLIC_CONVEX_URL the children render without a Convex
 * client.
 */
export function ConvexClientProvider({ children }: { children: ReactNode }) {
  if (!convex) return <>{children}</>;
  return (
    <ConvexProviderWithAuth client={convex} useAuth={useGatewayAuth}>
      {children}
    </ConvexProviderWithAuth>
  );
}

type CachedToken = { token: string; fetchedAt: number };

function useGatewayAuth() {
  const [state, setState] = useState({ isLoading: true, isAuthenticated: false });
  const cached = useRef<CachedToken | null>(null);

  useEffect(() => {
    let live = true;
    fetch("/auth/session", { cache: "no-store" }).then(
      (res) => live && setState({ isLoading: false, isAuthenticated: res.ok }),
      () => live && setState({ isLoading: false, isAuthenticated: false }),
    );
    return () => {
      live = false;
    };
  }, []);

  const fetchAccessToken = useCallback(async ({ forceRefreshToken }: { forceRefreshToken: boolean }) => {
    const c = cached.current;
    // forceRefreshToken: the token is due for refresh or Convex rejected it.
    if (!forceRefreshToken && c && Date.now() - c.fetchedAt < TOKEN_REUSE_MS) {
      return c.token;
    }
    // The gateway mints a fresh token on every call.
    const res = await fetch("/auth/token", { cache: "no-store" });
    if (!res.ok) {
      cached.current = null;
      return null;
    }
    const { token } = (await res.json()) as { token: string; expiresAt: number };
    cached.current = { token, fetchedAt: Date.now() };
    return token;
  }, []);

  return useMemo(() => ({ ...state, fetchAccessToken }), [state, fetchAccessToken]);
}
