// convex/auth.config.ts, printed by `caddy convex-auth convex-config`
// for the convex_auth gateway configured in Caddyfile. Convex fetches
// <domain>/.well-known/openid-configuration and the JWKS it names, and
// accepts tokens whose iss equals domain and whose aud equals applicationID.
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
