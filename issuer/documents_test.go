package issuer

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

// TestDiscoveryAsConvexFetchesIt follows what Convex does with a token: take
// iss, fetch <iss without trailing slash>/.well-known/openid-configuration,
// compare its issuer with iss, fetch jwks_uri, verify the token.
func TestDiscoveryAsConvexFetchesIt(t *testing.T) {
	for _, issuerPath := range []string{"", "/", "/tenant", "/tenant/a/"} {
		t.Run("path="+issuerPath, func(t *testing.T) {
			var iss *Issuer
			mux := http.NewServeMux()
			srv := httptest.NewServer(mux)
			defer srv.Close()
			issuerURL := srv.URL + issuerPath
			iss = newTestIssuer(t, Config{Issuer: issuerURL}, testKey(t, ES256))
			mux.HandleFunc(iss.DiscoveryPath(), iss.ServeDiscovery)
			mux.HandleFunc(iss.JWKSPath(), iss.ServeJWKS)

			token, _, _, err := iss.Mint(Claims{UserID: "u1", SessionID: "s1"})
			if err != nil {
				t.Fatal(err)
			}
			tokIss := decodeSegment(t, token, 1)["iss"].(string)

			resp := get(t, strings.TrimSuffix(tokIss, "/")+"/.well-known/openid-configuration")
			assertDocumentHeaders(t, resp)
			var doc map[string]any
			if err := json.Unmarshal(readBody(t, resp), &doc); err != nil {
				t.Fatalf("discovery is not JSON: %v", err)
			}
			if doc["issuer"] != tokIss || doc["issuer"] != issuerURL {
				t.Fatalf("discovery issuer %q, token iss %q, configured %q: must be equal byte for byte", doc["issuer"], tokIss, issuerURL)
			}
			wantJWKSURI := strings.TrimSuffix(issuerURL, "/") + "/.well-known/jwks.json"
			if doc["jwks_uri"] != wantJWKSURI {
				t.Fatalf("jwks_uri %q, want %q", doc["jwks_uri"], wantJWKSURI)
			}
			for field, want := range map[string]string{
				"id_token_signing_alg_values_supported": `["ES256"]`,
				"subject_types_supported":               `["public"]`,
				"response_types_supported":              `["id_token"]`,
			} {
				got, _ := json.Marshal(doc[field])
				if string(got) != want {
					t.Fatalf("%s = %s, want %s", field, got, want)
				}
			}

			resp = get(t, doc["jwks_uri"].(string))
			assertDocumentHeaders(t, resp)
			set, err := jwk.Parse(readBody(t, resp))
			if err != nil {
				t.Fatalf("JWKS does not parse: %v", err)
			}
			if _, err := jwt.Parse([]byte(token), jwt.WithKeySet(set), jwt.WithValidate(true),
				jwt.WithIssuer(doc["issuer"].(string)), jwt.WithAudience("convex")); err != nil {
				t.Fatalf("token does not verify against the served JWKS: %v", err)
			}
		})
	}
}

func TestServeDocumentsMethods(t *testing.T) {
	iss := newTestIssuer(t, Config{}, testKey(t, EdDSA))
	for _, tc := range []struct {
		name  string
		serve http.HandlerFunc
		body  []byte
	}{
		{"jwks", iss.ServeJWKS, iss.JWKS()},
		{"discovery", iss.ServeDiscovery, iss.Discovery()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			tc.serve(rec, httptest.NewRequest(http.MethodGet, "/", nil))
			if rec.Code != http.StatusOK || rec.Body.String() != string(tc.body) {
				t.Fatalf("GET: %d %q", rec.Code, rec.Body.String())
			}
			assertDocumentHeaders(t, rec.Result())

			rec = httptest.NewRecorder()
			tc.serve(rec, httptest.NewRequest(http.MethodHead, "/", nil))
			if rec.Code != http.StatusOK || rec.Body.Len() != 0 {
				t.Fatalf("HEAD: %d with %d body bytes, want 200 and none", rec.Code, rec.Body.Len())
			}
			assertDocumentHeaders(t, rec.Result())
			if got := rec.Header().Get("Content-Length"); got != strconv.Itoa(len(tc.body)) {
				t.Fatalf("HEAD Content-Length %q, want %d", got, len(tc.body))
			}

			for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodOptions} {
				rec = httptest.NewRecorder()
				tc.serve(rec, httptest.NewRequest(method, "/", nil))
				if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
					t.Fatalf("%s: %d Allow %q, want 405 with Allow: GET, HEAD", method, rec.Code, rec.Header().Get("Allow"))
				}
			}
		})
	}
}

func TestNoPrivateMembersPublished(t *testing.T) {
	for _, alg := range []Algorithm{RS256, EdDSA, ES256} {
		t.Run(string(alg), func(t *testing.T) {
			iss := newTestIssuer(t, Config{}, testKey(t, alg))
			assertPublicOnly(t, iss.JWKS())
			rec := httptest.NewRecorder()
			iss.ServeJWKS(rec, httptest.NewRequest(http.MethodGet, "/.well-known/jwks.json", nil))
			assertPublicOnly(t, rec.Body.Bytes())
		})
	}
}

func get(t *testing.T, url string) *http.Response {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	return resp
}

func readBody(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

func assertDocumentHeaders(t *testing.T, resp *http.Response) {
	t.Helper()
	if got := resp.Header.Get("Content-Type"); got != "application/json" {
		t.Fatalf("Content-Type %q, want application/json", got)
	}
	if got := resp.Header.Get("Cache-Control"); got != "public, max-age=15, stale-while-revalidate=15, stale-if-error=86400" {
		t.Fatalf("Cache-Control %q", got)
	}
}
