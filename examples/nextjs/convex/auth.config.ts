// convex/auth.config.ts, printed by `caddy convex-auth convex-config`
// for the convex_auth gateway configured in Caddyfile. Convex fetches
// <domain>/.well-known/openid-configuration and the JWKS it names, and
// accepts tokens whose iss equals domain and whose aud equals applicationID.
//
// Convex's cloud cannot reach these, names only this machine or network knows:
//   http://localhost:8080
//   http://localhost:8083
//   http://localhost:8084
//   http://localhost:8085
// Against a cloud deployment, print the customJwt form instead,
// which carries the public key (with a generated key, first set
// `algorithm ES256` in each convex_auth block and start Caddy once):
//   caddy convex-auth convex-config --static --config Caddyfile > convex/auth.config.ts
// then deploy it (npx convex dev), or serve the gateway at a public origin.
import type { AuthConfig } from "convex/server";

export default {
  providers: [
    {
      domain: "http://localhost:8080",
      applicationID: "convex",
    },
    {
      domain: "http://localhost:8083",
      applicationID: "convex",
    },
    {
      domain: "http://localhost:8084",
      applicationID: "convex",
    },
    {
      domain: "http://localhost:8085",
      applicationID: "convex",
    },
  ],
} satisfies AuthConfig;
