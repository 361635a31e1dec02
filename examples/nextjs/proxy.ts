// @convex-dev/auth 0.0.95 (the alias convex-auth-0, see package.json).
import { convexAuthNextjsMiddleware } from "convex-auth-0/nextjs/server";

// Convex Auth's Next.js middleware, on one path only, to show what it does
// behind the gateway (docs/server-helpers.md): with the injected token and
// no Convex Auth refresh token in the request, it clears the token before
// the page runs. Apps behind the gateway drop this middleware; the gateway
// protects paths itself.
export const proxy = convexAuthNextjsMiddleware();

export const config = { matcher: ["/loggedin/convex-auth/with-middleware"] };
