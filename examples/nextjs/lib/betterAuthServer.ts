import { convexBetterAuthNextJs } from "@convex-dev/better-auth/nextjs";
import { ConvexError } from "convex/values";

// @convex-dev/better-auth's server helpers behind a gateway site with
// `inject cookie better-auth`. The app runs no Better Auth server: the
// gateway signs users in and injects the token into the cookie jwtCache
// reads. See docs/server-helpers.md.
//
// fetchAuthQuery calls Convex at NEXT_PUBLIC_CONVEX_URL (convexUrl is not
// used by the Next.js helpers of 0.12.5). convexSiteUrl is where a helper
// fetches a token when it has none: behind the gateway nothing answers there.

/**
 * The setups the example's page can use (?setup=):
 * - "gateway", the one to use: jwtCache on, and every error rethrown as it
 *   is, since no refetch can bring a better token than the gateway's.
 * - "labs": jwtCache with the isAuthError of Convex + Better Auth's docs; an
 *   ordinary error makes the helper fetch a token from convexSiteUrl and
 *   run the call again without one.
 * - "default": no jwtCache; the helper always fetches its token from
 *   convexSiteUrl and never reads the cookie.
 */
export type Setup = "gateway" | "labs" | "default";

// Convex + Better Auth's documented isAuthError (labs.convex.dev/better-auth,
// JWT caching).
const labsIsAuthError = (error: unknown) => {
  const message = (error instanceof ConvexError && error.data) || (error instanceof Error && error.message) || "";
  return /auth/i.test(message);
};

function create(setup: Setup) {
  const urls = {
    convexUrl: process.env.NEXT_PUBLIC_CONVEX_URL!,
    convexSiteUrl: process.env.NEXT_PUBLIC_CONVEX_SITE_URL!,
  };
  switch (setup) {
    case "gateway":
      return convexBetterAuthNextJs({ ...urls, jwtCache: { enabled: true, isAuthError: () => true } });
    case "labs":
      return convexBetterAuthNextJs({ ...urls, jwtCache: { enabled: true, isAuthError: labsIsAuthError } });
    case "default":
      return convexBetterAuthNextJs(urls);
  }
}

const helpers = new Map<Setup, ReturnType<typeof create>>();

// Created on first use, not at import: convexBetterAuthNextJs throws when
// convexSiteUrl is unset, and `next build` imports the page without it.
export function betterAuthHelpers(setup: Setup) {
  let h = helpers.get(setup);
  if (!h) {
    h = create(setup);
    helpers.set(setup, h);
  }
  return h;
}
