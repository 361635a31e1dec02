// How a Convex deployment checks a bearer token from an OIDC provider
// (auth.config.ts's { domain, applicationID }), for the stand-ins: the
// provider whose domain equals iss and applicationID equals aud, discovery
// at <domain>/.well-known/openid-configuration with issuer equal to
// domain, the JWKS at its jwks_uri, alg RS256 or EdDSA, kid matching one
// key, exp in the future with no skew. It returns what
// ctx.auth.getUserIdentity() returns: the OIDC standard claims under
// UserIdentity's names, and every other claim as it is (custom claims).
import * as jose from "jose";

const OIDC_ALGORITHMS = ["RS256", "EdDSA"];

// The OIDC standard claims Convex maps onto UserIdentity, by claim name.
const STANDARD = {
  name: "name",
  given_name: "givenName",
  family_name: "familyName",
  nickname: "nickname",
  preferred_username: "preferredUsername",
  profile: "profileUrl",
  picture: "pictureUrl",
  website: "website",
  email: "email",
  email_verified: "emailVerified",
  gender: "gender",
  birthdate: "birthday",
  zoneinfo: "timezone",
  locale: "language",
  phone_number: "phoneNumber",
  phone_number_verified: "phoneNumberVerified",
  address: "address",
  updated_at: "updatedAt",
};
// Claims of the token itself, not of the user.
const TOKEN_CLAIMS = new Set(["iss", "sub", "aud", "exp", "iat", "nbf", "jti"]);

/** An error Convex answers 401 with: { code, message }. */
export function authError(code, message) {
  return Object.assign(new Error(message), { convexCode: code });
}

/**
 * identityOf returns the identity of an Authorization header's bearer
 * token, null without one, or throws an authError for a token Convex
 * refuses.
 * @param {string | undefined} authorization
 * @param {{domain: string, applicationID: string}[]} providers
 * @param {(url: string) => Promise<any>} getJSON
 */
export async function identityOf(authorization, providers, getJSON) {
  if (!authorization) return null;
  const m = /^Bearer (.+)$/.exec(authorization);
  if (!m) throw authError("InvalidAuthHeader", "the Authorization header is not Bearer <token>");
  const token = m[1];
  let claims;
  try {
    claims = jose.decodeJwt(token);
  } catch {
    throw authError("InvalidAuthHeader", "Could not parse as id token");
  }
  const provider = providers.find((p) => p.domain === claims.iss && p.applicationID === claims.aud);
  if (!provider) throw authError("NoAuthProvider", "No auth provider found matching the given token");
  const discovery = await getJSON(provider.domain + "/.well-known/openid-configuration");
  if (discovery.issuer !== provider.domain) {
    throw authError("InvalidAuthHeader", `discovery issuer ${discovery.issuer} is not ${provider.domain}`);
  }
  const jwks = await getJSON(discovery.jwks_uri);
  const { kid } = jose.decodeProtectedHeader(token);
  if (typeof kid !== "string" || jwks.keys.filter((k) => k.kid === kid).length !== 1) {
    throw authError("InvalidAuthHeader", "the token's kid matches no single key of the JWKS");
  }
  let payload;
  try {
    ({ payload } = await jose.jwtVerify(token, jose.createLocalJWKSet(jwks), {
      issuer: provider.domain,
      audience: provider.applicationID,
      algorithms: OIDC_ALGORITHMS,
      clockTolerance: 0,
      requiredClaims: ["iss", "sub", "iat", "exp"],
    }));
  } catch (e) {
    throw authError(
      "InvalidAuthHeader",
      `Could not verify OIDC token claim. Check that the token signature is valid and the token hasn't expired. (${e.code})`,
    );
  }
  const identity = { tokenIdentifier: `${payload.iss}|${payload.sub}`, subject: payload.sub, issuer: payload.iss };
  for (const [claim, value] of Object.entries(payload)) {
    if (TOKEN_CLAIMS.has(claim) || value === undefined) continue;
    identity[STANDARD[claim] ?? claim] = value;
  }
  return identity;
}

/** The bearer token of a request, or null. */
export function bearerOf(req) {
  return /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1] ?? null;
}
