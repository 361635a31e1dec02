// convex/auth.config.ts, printed by `caddy convex-auth convex-config --static`
// for the convex_auth gateway configured in Caddyfile. The gateway's public key
// is embedded (a customJwt provider with a data: URI JWKS), so Convex never
// calls the gateway. Print it again and deploy after the key changes.
import type { AuthConfig } from "convex/server";

export default {
  providers: [
    {
      type: "customJwt",
      issuer: "https://app.example.com/tenant",
      jwks: "data:text/plain;charset=utf-8;base64,eyJrZXlzIjpbeyJhbGciOiJFUzI1NiIsImNydiI6IlAtMjU2Iiwia2lkIjoiSjVmU2Z1Y2VVN0o2a2RKREdGUnRnWTBIdlB6MEQwQTgzYVQtU1ViRmttayIsImt0eSI6IkVDIiwidXNlIjoic2lnIiwieCI6InNVUW5qSUx3MWp5TF9pNHhSZVdKYUFnQ05XYWRLV3FLbHY3OWVVazhOTmMiLCJ5IjoiX3R4RVFmVlVIV3RzQkk4a3RRSmRKZkxwNmNKU2ZDNTE1T1RuMGhURzhvTSJ9LHsiYWxnIjoiUlMyNTYiLCJlIjoiQVFBQiIsImtpZCI6InF3bDhSbjJ2amVDMmcyNTZRZlQ0N3NBNGZ0T3BQX3NYTHl1YjI2X3hHbjAiLCJrdHkiOiJSU0EiLCJuIjoibUllaWZnQ25KWWRVRk4wRVJ4cDAycVRERkhOLU5FTnJISDl0N09wc1Z3RFM1c1NGMHItWXdiNHJrYWp1dEZKQy03cE9nOE53dnY5MVBEQTI3N2xFT1dCVVluV1FZeDV2alVPeDRaYmFxckdRLW0wTGRGQVZhQVRLcHBRS3ozU20zVm9hNEpWYVRPX3ZLRUo0WU00SmdrUzFaX09FZDh6NEx1TnBKYWFYOWtFMFhDei1IYmREV1UwRWNjN3FPVlg5M0RKbm1veWdoUTdtb1RwMTV0aEtTWVd2dHcyOGFwNEFfQzNiRGNSZmtlVDRZZWYzOHZwZVVvcV9fRVRZS2h3akdlem8tVTV1OXFlSjhqMlotYkxETU5URnVDNjNoUldvUU45NF9FZ2VCQk9XVTJwbVc4c1RBVlp5N0NpMDY3S0ZLWFh3OXFhZm5mRnRUNzVqSW8zVWFRIiwidXNlIjoic2lnIn1dfQ==",
      algorithm: "ES256",
      applicationID: "convex",
    },
    {
      type: "customJwt",
      issuer: "https://other.example.com",
      jwks: "data:text/plain;charset=utf-8;base64,eyJrZXlzIjpbeyJhbGciOiJSUzI1NiIsImUiOiJBUUFCIiwia2lkIjoicXdsOFJuMnZqZUMyZzI1NlFmVDQ3c0E0ZnRPcFBfc1hMeXViMjZfeEduMCIsImt0eSI6IlJTQSIsIm4iOiJtSWVpZmdDbkpZZFVGTjBFUnhwMDJxVERGSE4tTkVOckhIOXQ3T3BzVndEUzVzU0Ywci1Zd2I0cmthanV0RkpDLTdwT2c4Tnd2djkxUERBMjc3bEVPV0JVWW5XUVl4NXZqVU94NFpiYXFyR1EtbTBMZEZBVmFBVEtwcFFLejNTbTNWb2E0SlZhVE9fdktFSjRZTTRKZ2tTMVpfT0VkOHo0THVOcEphYVg5a0UwWEN6LUhiZERXVTBFY2M3cU9WWDkzREpubW95Z2hRN21vVHAxNXRoS1NZV3Z0dzI4YXA0QV9DM2JEY1Jma2VUNFllZjM4dnBlVW9xX19FVFlLaHdqR2V6by1VNXU5cWVKOGoyWi1iTERNTlRGdUM2M2hSV29RTjk0X0VnZUJCT1dVMnBtVzhzVEFWWnk3Q2kwNjdLRktYWHc5cWFmbmZGdFQ3NWpJbzNVYVEiLCJ1c2UiOiJzaWcifV19",
      algorithm: "RS256",
      applicationID: "app",
    },
  ],
} satisfies AuthConfig;
