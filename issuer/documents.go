package issuer

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
)

// DocumentCacheControl is the Cache-Control of the JWKS and discovery
// documents, as in the Convex guides: short enough that a new key is seen
// quickly, with a long stale-if-error so a gateway outage does not stop
// Convex from verifying tokens it already has keys for.
const DocumentCacheControl = "public, max-age=15, stale-while-revalidate=15, stale-if-error=86400"

// discoveryDocument is the OpenID discovery document Convex fetches. Convex
// checks that "issuer" equals the token's "iss" byte for byte.
type discoveryDocument struct {
	Issuer                           string   `json:"issuer"`
	JWKSURI                          string   `json:"jwks_uri"`
	IDTokenSigningAlgValuesSupported []string `json:"id_token_signing_alg_values_supported"`
	SubjectTypesSupported            []string `json:"subject_types_supported"`
	ResponseTypesSupported           []string `json:"response_types_supported"`
}

// renderJWKS writes {"keys":[…]} from the public JWKs prepared when each key was made.
func renderJWKS(keys []*Key) []byte {
	var buf bytes.Buffer
	buf.WriteString(`{"keys":[`)
	for n, k := range keys {
		if n > 0 {
			buf.WriteByte(',')
		}
		buf.Write(k.publicJSON)
	}
	buf.WriteString("]}")
	return buf.Bytes()
}

func (i *Issuer) renderDiscovery(keys []*Key) []byte {
	algs := make([]string, 0, len(keys))
	for _, k := range keys {
		if !containsString(algs, string(k.alg)) {
			algs = append(algs, string(k.alg))
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep the issuer readable as configured
	// Cannot fail: the document holds only strings.
	_ = enc.Encode(discoveryDocument{
		Issuer:                           i.cfg.Issuer,
		JWKSURI:                          i.jwksURI,
		IDTokenSigningAlgValuesSupported: algs,
		SubjectTypesSupported:            []string{"public"},
		ResponseTypesSupported:           []string{"id_token"},
	})
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// JWKS returns the current JWK set, {"keys":[…]}, with public members only.
// The caller must not modify the returned bytes.
func (i *Issuer) JWKS() []byte { return i.current().jwks }

// Discovery returns the current OpenID discovery document.
// The caller must not modify the returned bytes.
func (i *Issuer) Discovery() []byte { return i.current().discovery }

// ServeJWKS serves JWKS() to GET and HEAD requests.
func (i *Issuer) ServeJWKS(w http.ResponseWriter, r *http.Request) {
	serveDocument(w, r, i.JWKS())
}

// ServeDiscovery serves Discovery() to GET and HEAD requests.
func (i *Issuer) ServeDiscovery(w http.ResponseWriter, r *http.Request) {
	serveDocument(w, r, i.Discovery())
}

func serveDocument(w http.ResponseWriter, r *http.Request, body []byte) {
	h := w.Header()
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed: use GET or HEAD", http.StatusMethodNotAllowed)
		return
	}
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", DocumentCacheControl)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}
