package issuer

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"
)

// staticJWKSDataURIPrefix is the data: URI form Convex's custom JWT
// documentation gives for an inline JWKS.
const staticJWKSDataURIPrefix = "data:text/plain;charset=utf-8;base64,"

// ConvexProvider is one entry of the providers in Convex's auth.config.ts.
type ConvexProvider struct {
	// Issuer is the "iss" claim: the OIDC form's domain, the customJwt form's issuer.
	Issuer string
	// ApplicationID is the "aud" claim.
	ApplicationID string
	// Algorithm is what the issuer signs with; "" when it could not be told.
	Algorithm Algorithm
	// Keys are embedded in the static (customJwt) form: the signing key and
	// the next one during a rotation.
	Keys []*Key
}

// CheckForm refuses an algorithm that Convex's chosen form does not accept:
// the OIDC form takes RS256 and EdDSA, the static customJwt form RS256 and ES256.
func (p ConvexProvider) CheckForm(static bool) error {
	switch {
	case static && p.Algorithm == EdDSA:
		return fmt.Errorf("issuer %s signs with EdDSA, which Convex's customJwt form does not accept (RS256 and ES256 only): drop --static to use the OIDC form, or sign with an RS256 or ES256 key (caddy convex-auth keygen --alg ES256)", p.Issuer)
	case !static && p.Algorithm == ES256:
		return fmt.Errorf("issuer %s signs with ES256, which Convex's OIDC form does not accept (RS256 and EdDSA only): run with --static for the customJwt form, or sign with an RS256 or EdDSA key (caddy convex-auth keygen --alg RS256)", p.Issuer)
	}
	return nil
}

// UnreachableFromCloud reports whether Convex's cloud cannot fetch the
// discovery document of issuer iss: its host is localhost, a *.localhost
// name, a name without a dot, or a loopback, private or link-local address.
func UnreachableFromCloud(iss string) bool {
	u, err := url.Parse(iss)
	if err != nil {
		return false
	}
	host := strings.ToLower(u.Hostname())
	if addr, err := netip.ParseAddr(host); err == nil {
		return addr.IsLoopback() || addr.IsPrivate() || addr.IsLinkLocalUnicast() || addr.IsUnspecified()
	}
	return host == "localhost" || strings.HasSuffix(host, ".localhost") || !strings.Contains(host, ".")
}

// unreachableIssuers lists the providers' issuers Convex's cloud cannot fetch.
func unreachableIssuers(providers []ConvexProvider) []string {
	var out []string
	for _, p := range providers {
		if UnreachableFromCloud(p.Issuer) && !slices.Contains(out, p.Issuer) {
			out = append(out, p.Issuer)
		}
	}
	return out
}

// AuthConfig renders convex/auth.config.ts: the OIDC form, or with static
// the customJwt form with each provider's public keys embedded. configName
// names the gateway's config in the header comment. It refuses an algorithm
// the chosen form does not accept.
func AuthConfig(providers []ConvexProvider, configName string, static bool) (string, error) {
	for _, p := range providers {
		if err := p.CheckForm(static); err != nil {
			return "", err
		}
	}
	// Sorted, so the file does not change with Caddy's route order.
	providers = slices.Clone(providers)
	slices.SortFunc(providers, func(a, b ConvexProvider) int {
		return strings.Compare(a.Issuer+"\x00"+a.ApplicationID, b.Issuer+"\x00"+b.ApplicationID)
	})
	// Strings are JSON-encoded, which is valid TypeScript.
	q := func(s string) string {
		b, _ := json.Marshal(s)
		return string(b)
	}
	var b strings.Builder
	if static {
		fmt.Fprintf(&b, "// convex/auth.config.ts, printed by `caddy convex-auth convex-config --static`\n")
		fmt.Fprintf(&b, "// for the convex_auth gateway configured in %s. The gateway's public key\n", configName)
		b.WriteString("// is embedded (a customJwt provider with a data: URI JWKS), so Convex never\n")
		b.WriteString("// calls the gateway. Print it again and deploy after the key changes.\n")
	} else {
		fmt.Fprintf(&b, "// convex/auth.config.ts, printed by `caddy convex-auth convex-config`\n")
		fmt.Fprintf(&b, "// for the convex_auth gateway configured in %s. Convex fetches\n", configName)
		b.WriteString("// <domain>/.well-known/openid-configuration and the JWKS it names, and\n")
		b.WriteString("// accepts tokens whose iss equals domain and whose aud equals applicationID.\n")
		if local := unreachableIssuers(providers); len(local) > 0 {
			b.WriteString("//\n// Convex's cloud cannot reach these, names only this machine or network knows:\n")
			for _, iss := range local {
				fmt.Fprintf(&b, "//   %s\n", iss)
			}
			b.WriteString("// Against a cloud deployment, print the customJwt form instead,\n")
			b.WriteString("// which carries the public key (with a generated key, first set\n")
			b.WriteString("// `algorithm ES256` in each convex_auth block and start Caddy once):\n")
			fmt.Fprintf(&b, "//   caddy convex-auth convex-config --static --config %s > convex/auth.config.ts\n", configName)
			b.WriteString("// then deploy it (npx convex dev), or serve the gateway at a public origin.\n")
		}
	}
	b.WriteString("import type { AuthConfig } from \"convex/server\";\n\nexport default {\n  providers: [\n")
	for _, p := range providers {
		b.WriteString("    {\n")
		if static {
			b.WriteString("      type: \"customJwt\",\n")
			fmt.Fprintf(&b, "      issuer: %s,\n", q(p.Issuer))
			fmt.Fprintf(&b, "      jwks: %s,\n", q(staticJWKSDataURIPrefix+base64.StdEncoding.EncodeToString(PublicJWKS(p.Keys...))))
			fmt.Fprintf(&b, "      algorithm: %s,\n", q(string(p.Algorithm)))
		} else {
			fmt.Fprintf(&b, "      domain: %s,\n", q(p.Issuer))
		}
		fmt.Fprintf(&b, "      applicationID: %s,\n", q(p.ApplicationID))
		b.WriteString("    },\n")
	}
	b.WriteString("  ],\n} satisfies AuthConfig;\n")
	return b.String(), nil
}
