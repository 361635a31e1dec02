"use client";

import { ConvexProviderWithGateway } from "@convex-auth/gateway-client";
import { ConvexReactClient } from "convex/react";
import { type ReactNode, useState } from "react";

/**
 * The browser's Convex client, authenticated by the gateway: the session
 * lives in the gateway's HttpOnly cookie, and @convex-auth/gateway-client
 * fetches Convex tokens for it from /auth/token.
 */
export function ConvexClientProvider({ convexUrl, children }: { convexUrl: string; children: ReactNode }) {
  const [convex] = useState(() => new ConvexReactClient(convexUrl));
  return <ConvexProviderWithGateway client={convex}>{children}</ConvexProviderWithGateway>;
}
