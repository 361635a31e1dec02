package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/convex-auth/caddy-convex-auth/issuer"
)

// The peer: oauth2-proxy, the auth proxy the gateway should replace, run
// with Redis sessions and signed in through OIDC against a provider the
// bench serves itself, so that the load carries a real session cookie.
const (
	peerVersion      = "v7.8.1" // pinned by bench/oauth2proxy/go.mod
	peerModuleDir    = "bench/oauth2proxy"
	peerPackage      = "github.com/oauth2-proxy/oauth2-proxy/v7"
	peerBuildTimeout = 10 * time.Minute
	peerClientID     = "bench"
	peerClientSecret = "bench-secret"
	peerCookieName   = "_oauth2_proxy"
	peerUserEmail    = "ada@example.com"
)

// buildPeer builds oauth2-proxy from its own module into dir and returns the
// binary's path, or an error saying why it could not.
func buildPeer(ctx context.Context, o options, dir string) (string, error) {
	if o.peerBin != "" {
		return filepath.Abs(o.peerBin)
	}
	modDir, err := filepath.Abs(peerModuleDir)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(modDir, "go.mod")); err != nil {
		return "", fmt.Errorf("no %s/go.mod here (run the bench from the repository root): %w", peerModuleDir, err)
	}
	ctx, cancel := context.WithTimeout(ctx, peerBuildTimeout)
	defer cancel()
	bin := filepath.Join(dir, "oauth2-proxy")
	cmd := exec.CommandContext(ctx, "go", "build", "-C", modDir, "-o", bin, peerPackage)
	out, err := cmd.CombinedOutput()
	if err != nil {
		const keep = 2000
		if len(out) > keep {
			out = out[len(out)-keep:]
		}
		return "", fmt.Errorf("go build %s@%s: %w\n%s", peerPackage, peerVersion, err, out)
	}
	return bin, nil
}

// oidcProvider is the smallest OIDC provider oauth2-proxy signs in with:
// discovery, JWKS, an authorization endpoint that approves at once, and a
// token endpoint whose id_token the gateway's own issuer package signs.
type oidcProvider struct {
	srv *http.Server
	iss *issuer.Issuer
}

func startOIDCProvider(addr string) (*oidcProvider, error) {
	base := "http://" + addr
	key, err := issuer.GenerateKey(issuer.RS256)
	if err != nil {
		return nil, err
	}
	iss, err := issuer.New(issuer.Config{Issuer: base, Audience: peerClientID, TokenTTL: time.Hour}, key)
	if err != nil {
		return nil, err
	}
	p := &oidcProvider{iss: iss}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{
			"issuer":                                base,
			"authorization_endpoint":                base + "/authorize",
			"token_endpoint":                        base + "/token",
			"jwks_uri":                              base + iss.JWKSPath(),
			"userinfo_endpoint":                     base + "/userinfo",
			"response_types_supported":              []string{"code"},
			"subject_types_supported":               []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256"},
		})
	})
	mux.HandleFunc(iss.JWKSPath(), iss.ServeJWKS)
	mux.HandleFunc("/authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		to, err := url.Parse(q.Get("redirect_uri"))
		if err != nil || to.Host == "" {
			http.Error(w, "bad redirect_uri", http.StatusBadRequest)
			return
		}
		back := to.Query()
		back.Set("code", "bench-code")
		back.Set("state", q.Get("state"))
		to.RawQuery = back.Encode()
		http.Redirect(w, r, to.String(), http.StatusFound)
	})
	mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		idToken, _, _, err := iss.Mint(issuer.Claims{UserID: "user_ada", Email: peerUserEmail, EmailVerified: true, Name: "Ada"})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		writeJSON(w, map[string]any{"access_token": "bench-access-token", "token_type": "Bearer", "expires_in": 3600, "id_token": idToken})
	})
	mux.HandleFunc("/userinfo", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"sub": "user_ada", "email": peerUserEmail, "email_verified": true})
	})
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	p.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = p.srv.Serve(l) }()
	return p, nil
}

func (p *oidcProvider) stop() { _ = p.srv.Close() }

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// startPeer runs oauth2-proxy on addr in front of the bench upstream, with
// Redis sessions (database 2, apart from the gateway's).
func startPeer(o options, e *env, bin string) (*proc, error) {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	base := "http://" + e.peerAddr
	return startProc("oauth2-proxy", filepath.Join(e.dir, "oauth2-proxy.log"), o.cpusCaddy, nil, bin,
		"--http-address="+e.peerAddr,
		"--provider=oidc",
		"--oidc-issuer-url=http://"+e.oidcAddr,
		"--client-id="+peerClientID,
		"--client-secret="+peerClientSecret,
		"--redirect-url="+base+"/oauth2/callback",
		"--cookie-secret="+base64.RawURLEncoding.EncodeToString(secret)[:32],
		"--cookie-secure=false",
		"--email-domain=*",
		"--upstream=http://"+e.upstreamAddr+"/",
		"--session-store-type=redis",
		"--redis-connection-url=redis://"+e.redisAddr+"/2",
		"--skip-provider-button=true",
		"--set-xauthrequest=true",
		// Caddy logs no requests in the bench either.
		"--request-logging=false",
		"--auth-logging=false",
		"--silence-ping-logging=true",
	)
}

// peerSignIn signs in through oauth2-proxy's OIDC flow and returns its
// session cookie as name=value.
func peerSignIn(ctx context.Context, peerAddr string) (string, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return "", err
	}
	c := &http.Client{Jar: jar, Timeout: 20 * time.Second}
	base := "http://" + peerAddr
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/oauth2/start?rd=%2F", nil)
	if err != nil {
		return "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", fmt.Errorf("oauth2-proxy sign-in: %w", err)
	}
	resp.Body.Close()
	u, _ := url.Parse(base)
	for _, ck := range jar.Cookies(u) {
		if ck.Name == peerCookieName {
			return ck.Name + "=" + ck.Value, nil
		}
	}
	return "", fmt.Errorf("oauth2-proxy sign-in ended with status %d and no %s cookie (see its log)", resp.StatusCode, peerCookieName)
}

// checkPeerCookie makes sure the cookie passes oauth2-proxy's auth check.
func checkPeerCookie(ctx context.Context, addr, cookie string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/oauth2/auth", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Cookie", cookie)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusOK {
		return errors.New("oauth2-proxy answered /oauth2/auth with " + strconv.Itoa(resp.StatusCode) + " for the signed-in cookie")
	}
	return nil
}
