// The browser side: Convex's client authenticated by the gateway, and the
// gateway's sign-in and sign-out. Server code imports
// "@convex-auth/gateway-client/next" or "@convex-auth/gateway-client/server".
export { ConvexProviderWithGateway, useGatewayAuth, type ConvexProviderWithGatewayProps, type GatewayAuth } from "./react.js";
export { GatewayAuthClient, signOut, DEFAULT_TOKEN_REUSE_MS, type GatewayAuthOptions, type SignOutOptions } from "./client.js";
export { signIn, signInUrl, fetchSession, fetchToken, type GatewayToken } from "./endpoints.js";
export { GatewayError, type GatewayAuthState, type GatewaySession, type GatewaySessionInfo, type GatewayUser } from "./types.js";
