import { setupConvexAuthNextjs } from "@convex-dev/auth/ssr/nextjs";
import { makeFunctionReference } from "convex/server";

// @convex-dev/auth 2.x's Next.js server helpers behind a gateway site with
// `inject cookie convex-auth-2`: convexAuthNextjsAccessToken() reads the
// gateway's token from that cookie. The app runs no Convex Auth backend,
// so its proxy (refreshSession) and isAuthenticatedNextjs (isAuthenticated)
// have nothing to call; setup only needs their references. See
// docs/server-helpers.md.
type Config = Parameters<typeof setupConvexAuthNextjs>[0];

function create() {
  return setupConvexAuthNextjs({
    convexUrl: process.env.NEXT_PUBLIC_CONVEX_URL!,
    refreshSession: makeFunctionReference<"mutation">("auth:refreshSession") as Config["refreshSession"],
    isAuthenticated: makeFunctionReference<"query">("auth:isAuthenticated") as Config["isAuthenticated"],
  });
}

let helpers: ReturnType<typeof create> | undefined;

// Created on first use, not at import: next build imports the page without
// NEXT_PUBLIC_CONVEX_URL, and the setup creates a client for it.
export function convexAuth2() {
  helpers ??= create();
  return helpers;
}
