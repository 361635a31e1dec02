// STAND-IN FOR THE CONVEX BACKEND. The example's test has no Convex
// deployment, so /loggedin calls this instead of fetchQuery when
// NEXT_PUBLIC_CONVEX_URL is unset. It checks the token the way Convex checks
// an OIDC provider's token (discovery at the issuer, the JWKS it names, iss,
// aud, exp without skew) and returns what ctx.auth.getUserIdentity() would.
import { createRemoteJWKSet, jwtVerify } from "jose";
import type { UserIdentity } from "convex/server";
import authConfig from "@/convex/auth.config";

const provider = authConfig.providers[0] as { domain: string; applicationID: string };

// CONVEX_AUTH_ISSUER lets the test run the gateway on another port than the
// one auth.config.ts names.
const issuer = process.env.CONVEX_AUTH_ISSUER ?? provider.domain;

let keySet: ReturnType<typeof createRemoteJWKSet> | undefined;

async function gatewayKeys() {
  if (!keySet) {
    const res = await fetch(issuer + "/.well-known/openid-configuration", { cache: "no-store" });
    if (!res.ok) throw new Error(`discovery at ${issuer} answered ${res.status}`);
    const discovery = (await res.json()) as { issuer: string; jwks_uri: string };
    if (discovery.issuer !== issuer) throw new Error(`discovery issuer ${discovery.issuer} is not ${issuer}`);
    keySet = createRemoteJWKSet(new URL(discovery.jwks_uri));
  }
  return keySet;
}

export async function verifyLikeConvex(token: string | undefined): Promise<UserIdentity | null> {
  if (!token) return null;
  const { payload } = await jwtVerify(token, await gatewayKeys(), {
    issuer,
    audience: provider.applicationID,
    algorithms: ["RS256", "EdDSA"],
    clockTolerance: 0,
  });
  return {
    tokenIdentifier: `${payload.iss}|${payload.sub}`,
    subject: payload.sub!,
    issuer: payload.iss!,
    email: payload.email as string | undefined,
    emailVerified: payload.email_verified as boolean | undefined,
    name: payload.name as string | undefined,
    pictureUrl: payload.picture as string | undefined,
  };
}
