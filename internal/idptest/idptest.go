// Package idptest runs identity providers on loopback that answer as the
// real ones document: Sign in with Apple (form_post, a signed client
// secret, the user field once), Microsoft Entra ID (tenant paths, the
// token's issuer per tenant), GitLab, Discord, Slack, GitHub (its OAuth
// app endpoints and membership API) and a generic OAuth 2.0 server. The
// sign-in tests of provider, signin and e2e drive them; a test sets who
// signs in next.
package idptest

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
)

// Kinds of provider a Server plays.
const (
	Apple   = "apple"
	Entra   = "microsoft"
	GitLab  = "gitlab"
	Discord = "discord"
	Slack   = "slack"
	GitHub  = "github"
	OAuth2  = "oauth2"
)

// AppleIssuer is the issuer Apple's ID tokens name, whatever serves them.
const AppleIssuer = "https://appleid.apple.com"

// User is who signs in at the provider.
type User struct {
	// Subject is the provider's account ID: sub, Discord's and GitHub's
	// id, Entra's oid.
	Subject string
	Email   string
	// EmailVerified is the token's email_verified as sent: true, false,
	// "true", or nil to leave it out (Entra's work accounts).
	EmailVerified any
	Name          string
	Picture       string
	// Claims are more ID-token claims (Entra's tid, xms_edov; GitLab's
	// groups_direct; anything a test needs), sent as given.
	Claims map[string]any
	// Userinfo are claims only user info answers (GitLab's groups).
	Userinfo map[string]any
	// FirstName and LastName are what Apple sends in the user field, at
	// the user's first authorization of the app only.
	FirstName, LastName string
	// Orgs are GitHub organisation memberships by login: "active",
	// "pending", or a status code GitHub answers instead ("403").
	Orgs map[string]string
	// Teams are GitHub team memberships by "org/slug", as Orgs.
	Teams map[string]string
}

// Server is one provider on loopback.
type Server struct {
	Kind         string
	URL          string
	ClientID     string
	ClientSecret string
	// AppleTeamID, AppleKeyID and AppleKey check Apple's client secrets.
	AppleTeamID, AppleKeyID string
	AppleKey                *ecdsa.PublicKey

	srv     *httptest.Server
	signKey *rsa.PrivateKey
	keyID   string

	mu         sync.Mutex
	user       User
	codes      map[string]grant
	tokens     map[string]User // access token → user
	authorized map[string]bool // Apple: users who authorized the app before
	// issuerOverride, if set, is the iss of the next ID tokens instead of
	// the documented one (a token the gateway must refuse).
	issuerOverride string
	// tokenForms are the token requests' forms.
	tokenForms []url.Values
}

type grant struct {
	user        User
	redirectURI string
	challenge   string
	nonce       string
	expires     time.Time
}

// Start runs a provider of kind for a client with the given ID and
// secret. Close it with Close (Start registers nothing with a test).
func Start(kind, clientID, clientSecret string) *Server {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	s := &Server{Kind: kind, ClientID: clientID, ClientSecret: clientSecret, signKey: key, keyID: "idptest-" + kind,
		codes: map[string]grant{}, tokens: map[string]User{}, authorized: map[string]bool{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// SignInAs makes u the user of the next authorizations.
func (s *Server) SignInAs(u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.user = u
}

// SetIssuer makes the next ID tokens name iss as their issuer ("": the
// documented one again).
func (s *Server) SetIssuer(iss string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.issuerOverride = iss
}

// TokenForms are the forms of the token requests so far.
func (s *Server) TokenForms() []url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.tokenForms)
}

// Endpoints of each kind, under URL.
func (s *Server) paths() (authorize, token string) {
	switch s.Kind {
	case Apple:
		return "/auth/authorize", "/auth/token"
	case GitLab:
		return "/oauth/authorize", "/oauth/token"
	case Discord:
		return "/oauth2/authorize", "/api/oauth2/token"
	case Slack:
		return "/openid/connect/authorize", "/api/openid.connect.token"
	case GitHub:
		return "/login/oauth/authorize", "/login/oauth/access_token"
	}
	return "/authorize", "/token"
}

// AuthURL and TokenURL are the kind's endpoints (Entra's under tenant).
func (s *Server) AuthURL() string  { a, _ := s.paths(); return s.URL + a }
func (s *Server) TokenURL() string { _, t := s.paths(); return s.URL + t }

// JWKSURL is where the ID tokens' keys are.
func (s *Server) JWKSURL() string { return s.URL + "/keys" }

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	authorize, token := s.paths()
	path := r.URL.Path
	if s.Kind == Entra {
		// /{tenant}/oauth2/v2.0/authorize, /{tenant}/oauth2/v2.0/token,
		// /{tenant}/discovery/v2.0/keys; any tenant signs in anyone, so
		// the client's own tenant checks are what is tested.
		_, rest, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
		switch "/" + rest {
		case "/oauth2/v2.0/authorize":
			path = authorize
		case "/oauth2/v2.0/token":
			path = token
		case "/discovery/v2.0/keys":
			path = "/keys"
		}
	}
	switch {
	case path == authorize:
		s.serveAuthorize(w, r)
	case path == token && r.Method == http.MethodPost:
		s.serveToken(w, r)
	case path == "/keys" || path == "/auth/keys" || path == "/oauth/discovery/keys" || path == "/openid/connect/keys":
		s.serveKeys(w)
	case path == "/.well-known/openid-configuration" && (s.Kind == GitLab || s.Kind == Slack):
		s.serveDiscovery(w)
	case path == "/oauth/userinfo" || path == "/api/openid.connect.userInfo" || path == "/userinfo":
		s.serveUserinfo(w, r)
	case s.Kind == Discord && path == "/api/users/@me":
		s.serveDiscordUser(w, r)
	case s.Kind == GitHub:
		s.serveGitHubAPI(w, r)
	default:
		http.NotFound(w, r)
	}
}

// serveAuthorize signs the current user in at once and answers the
// client: a redirect with code and state, or (Apple's form_post) a page
// that posts them.
func (s *Server) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	redirect := q.Get("redirect_uri")
	if q.Get("client_id") != s.ClientID || redirect == "" || q.Get("response_type") != "code" {
		http.Error(w, "invalid_request: client_id, redirect_uri or response_type", http.StatusBadRequest)
		return
	}
	scopes := strings.Fields(q.Get("scope"))
	mode := q.Get("response_mode")
	if s.Kind == Apple && (slices.Contains(scopes, "name") || slices.Contains(scopes, "email")) && mode != "form_post" {
		// Apple: "response_mode must be form_post when name or email
		// scope is requested."
		http.Error(w, "invalid_request: response_mode must be form_post when name or email scope is requested", http.StatusBadRequest)
		return
	}
	challenge := q.Get("code_challenge")
	if challenge != "" && q.Get("code_challenge_method") != "S256" {
		http.Error(w, "invalid_request: code_challenge_method", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	u := s.user
	code := randomString()
	s.codes[code] = grant{user: u, redirectURI: redirect, challenge: challenge, nonce: q.Get("nonce"), expires: time.Now().Add(time.Minute)}
	firstTime := !s.authorized[u.Subject]
	s.authorized[u.Subject] = true
	s.mu.Unlock()

	answer := url.Values{"code": {code}}
	if st := q.Get("state"); st != "" {
		answer.Set("state", st)
	}
	if s.Kind == Apple && firstTime && slices.Contains(scopes, "name") {
		// The user field: only at the first authorization, never signed.
		user, _ := json.Marshal(map[string]any{"name": map[string]string{"firstName": u.FirstName, "lastName": u.LastName}, "email": u.Email})
		answer.Set("user", string(user))
	}
	if mode == "form_post" {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = formPostPage.Execute(w, map[string]any{"Action": redirect, "Fields": answer})
		return
	}
	target, err := url.Parse(redirect)
	if err != nil {
		http.Error(w, "invalid_request: redirect_uri", http.StatusBadRequest)
		return
	}
	rq := target.Query()
	for k, v := range answer {
		rq[k] = v
	}
	target.RawQuery = rq.Encode()
	http.Redirect(w, r, target.String(), http.StatusFound)
}

// formPostPage is the OAuth 2.0 Form Post Response Mode page: the browser
// posts the answer to the client from the provider's site.
var formPostPage = template.Must(template.New("").Parse(`<!doctype html>
<html><head><title>Submit This Form</title></head>
<body onload="document.forms[0].submit()">
<form method="post" action="{{.Action}}">
{{range $k, $vs := .Fields}}{{range $vs}}<input type="hidden" name="{{$k}}" value="{{.}}">
{{end}}{{end}}<noscript><button type="submit">Continue</button></noscript>
</form></body></html>`))

func tokenError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code})
}

// serveToken redeems a code: once, with the redirect URI and PKCE
// verifier of its authorization, for a client that authenticates as the
// kind documents.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		tokenError(w, http.StatusBadRequest, "invalid_request")
		return
	}
	s.mu.Lock()
	s.tokenForms = append(s.tokenForms, r.PostForm)
	g, ok := s.codes[r.PostForm.Get("code")]
	delete(s.codes, r.PostForm.Get("code"))
	s.mu.Unlock()
	fail := func(code string) {
		if s.Kind == Slack {
			// Slack's Web API: 200 with ok false.
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"ok": false, "error": code})
			return
		}
		tokenError(w, http.StatusBadRequest, code)
	}
	if !s.clientAuthenticated(r) {
		fail("invalid_client")
		return
	}
	if r.PostForm.Get("grant_type") != "authorization_code" || !ok || time.Now().After(g.expires) ||
		r.PostForm.Get("redirect_uri") != g.redirectURI {
		fail("invalid_grant")
		return
	}
	if g.challenge != "" {
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		if base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge {
			fail("invalid_grant")
			return
		}
	}
	access := randomString()
	s.mu.Lock()
	s.tokens[access] = g.user
	s.mu.Unlock()
	answer := map[string]any{"access_token": access, "token_type": "Bearer", "expires_in": 3600}
	if s.Kind != Discord && s.Kind != GitHub && s.Kind != OAuth2 {
		idToken, err := s.idToken(g)
		if err != nil {
			fail("server_error")
			return
		}
		answer["id_token"] = idToken
	}
	if s.Kind == Slack {
		answer["ok"] = true
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(answer)
}

// clientAuthenticated checks the client's credentials: Apple's is an
// ES256 JWT from the team for the Services ID, in the form; the others
// take the secret in the form or by HTTP Basic.
func (s *Server) clientAuthenticated(r *http.Request) bool {
	id, secret, basic := r.BasicAuth()
	if !basic {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id != s.ClientID {
		return false
	}
	if s.Kind != Apple {
		return secret == s.ClientSecret
	}
	return !basic && s.appleSecretValid(secret)
}

// appleSecretValid checks a client secret as Apple does: signed ES256 by
// the key, kid its ID, iss the team, sub the client, aud Apple, not
// expired, living at most six months.
func (s *Server) appleSecretValid(secret string) bool {
	msg, err := jws.Parse([]byte(secret))
	if err != nil || len(msg.Signatures()) != 1 {
		return false
	}
	h := msg.Signatures()[0].ProtectedHeaders()
	if kid, _ := h.KeyID(); kid != s.AppleKeyID {
		return false
	}
	payload, err := jws.Verify([]byte(secret), jws.WithKey(jwa.ES256(), s.AppleKey))
	if err != nil {
		return false
	}
	var c struct {
		Iss string `json:"iss"`
		Sub string `json:"sub"`
		Aud string `json:"aud"`
		Iat int64  `json:"iat"`
		Exp int64  `json:"exp"`
	}
	if json.Unmarshal(payload, &c) != nil {
		return false
	}
	now := time.Now().Unix()
	return c.Iss == s.AppleTeamID && c.Sub == s.ClientID && c.Aud == AppleIssuer &&
		c.Exp > now && c.Iat <= now+60 && c.Exp-c.Iat <= 15777000
}

// Issuer is the ID tokens' issuer: Apple's own name, Entra's of the
// user's tenant, the server's URL otherwise.
func (s *Server) issuer(u User) string {
	switch s.Kind {
	case Apple:
		return AppleIssuer
	case Entra:
		return s.URL + "/" + fmt.Sprint(u.Claims["tid"]) + "/v2.0"
	}
	return s.URL
}

func (s *Server) idToken(g grant) (string, error) {
	u := g.user
	now := time.Now()
	claims := map[string]any{"aud": s.ClientID, "iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(), "auth_time": now.Unix()}
	s.mu.Lock()
	claims["iss"] = s.issuer(u)
	if s.issuerOverride != "" {
		claims["iss"] = s.issuerOverride
	}
	s.mu.Unlock()
	switch s.Kind {
	case Entra:
		claims["sub"] = "pairwise-" + u.Subject // per app; oid is the account
		claims["oid"] = u.Subject
		claims["ver"] = "2.0"
	case Slack:
		claims["sub"] = u.Subject
		claims["https://slack.com/user_id"] = u.Subject
	default:
		claims["sub"] = u.Subject
	}
	if g.nonce != "" {
		claims["nonce"] = g.nonce
	}
	if s.Kind == Apple {
		claims["nonce_supported"] = true
	}
	if u.Email != "" {
		claims["email"] = u.Email
	}
	if u.EmailVerified != nil {
		claims["email_verified"] = u.EmailVerified
	}
	// GitLab's ID token carries no name or picture: user info does.
	if s.Kind != GitLab && s.Kind != Apple {
		if u.Name != "" {
			claims["name"] = u.Name
		}
		if u.Picture != "" {
			claims["picture"] = u.Picture
		}
	}
	for k, v := range u.Claims {
		claims[k] = v
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	hdrs := jws.NewHeaders()
	_ = hdrs.Set(jws.KeyIDKey, s.keyID)
	_ = hdrs.Set(jws.TypeKey, "JWT")
	signed, err := jws.Sign(payload, jws.WithKey(jwa.RS256(), s.signKey, jws.WithProtectedHeaders(hdrs)))
	return string(signed), err
}

func (s *Server) serveKeys(w http.ResponseWriter) {
	key, err := jwk.PublicKeyOf(&s.signKey.PublicKey)
	if err == nil {
		_ = key.Set(jwk.KeyIDKey, s.keyID)
		_ = key.Set(jwk.AlgorithmKey, jwa.RS256())
		_ = key.Set(jwk.KeyUsageKey, "sig")
	}
	set := jwk.NewSet()
	_ = set.AddKey(key)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(set)
}

func (s *Server) serveDiscovery(w http.ResponseWriter) {
	authorize, token := s.paths()
	doc := map[string]any{
		"issuer": s.URL, "authorization_endpoint": s.URL + authorize, "token_endpoint": s.URL + token,
		"response_types_supported": []string{"code"}, "subject_types_supported": []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
	}
	switch s.Kind {
	case GitLab:
		doc["userinfo_endpoint"] = s.URL + "/oauth/userinfo"
		doc["jwks_uri"] = s.URL + "/oauth/discovery/keys"
	case Slack:
		doc["userinfo_endpoint"] = s.URL + "/api/openid.connect.userInfo"
		doc["jwks_uri"] = s.URL + "/openid/connect/keys"
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(doc)
}

// bearer is the user of the request's access token.
func (s *Server) bearer(r *http.Request) (User, bool) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	defer s.mu.Unlock()
	u, found := s.tokens[tok]
	return u, ok && found
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// serveUserinfo answers the OIDC kinds' user info, and the generic
// server's own shape: {"data": {"user": {...}}}.
func (s *Server) serveUserinfo(w http.ResponseWriter, r *http.Request) {
	u, ok := s.bearer(r)
	if !ok {
		http.Error(w, `{"error":"invalid_token"}`, http.StatusUnauthorized)
		return
	}
	if s.Kind == OAuth2 {
		user := map[string]any{"id": json.Number(u.Subject), "mail": u.Email, "display_name": u.Name, "avatar": map[string]any{"url": u.Picture}}
		if u.EmailVerified != nil {
			user["mail_confirmed"] = u.EmailVerified
		}
		writeJSON(w, map[string]any{"data": map[string]any{"user": user}})
		return
	}
	info := map[string]any{"sub": u.Subject, "name": u.Name, "picture": u.Picture}
	if u.Email != "" {
		info["email"] = u.Email
	}
	if u.EmailVerified != nil {
		info["email_verified"] = u.EmailVerified
	}
	if s.Kind == Slack {
		info["ok"] = true
	}
	for k, v := range u.Userinfo {
		info[k] = v
	}
	writeJSON(w, info)
}

// serveDiscordUser is Discord's /users/@me.
func (s *Server) serveDiscordUser(w http.ResponseWriter, r *http.Request) {
	u, ok := s.bearer(r)
	if !ok {
		http.Error(w, `{"message": "401: Unauthorized", "code": 0}`, http.StatusUnauthorized)
		return
	}
	var email any
	if u.Email != "" {
		email = u.Email
	}
	writeJSON(w, map[string]any{"id": u.Subject, "username": strings.ToLower(strings.ReplaceAll(u.Name, " ", "")),
		"global_name": u.Name, "avatar": "a_1269e74af4df7417b13759eae50c83dc", "email": email, "verified": u.EmailVerified == true})
}

// serveGitHubAPI is GitHub's REST API: the user, the emails, and the
// organisation and team memberships (read:org).
func (s *Server) serveGitHubAPI(w http.ResponseWriter, r *http.Request) {
	u, ok := s.bearer(r)
	if !ok {
		http.Error(w, `{"message":"Bad credentials"}`, http.StatusUnauthorized)
		return
	}
	login := strings.ToLower(strings.ReplaceAll(u.Name, " ", "-"))
	membership := func(state string) {
		switch state {
		case "active", "pending":
			writeJSON(w, map[string]any{"state": state, "role": "member"})
		case "403":
			w.WriteHeader(http.StatusForbidden)
			writeJSON(w, map[string]any{"message": "Although you appear to have the correct authorization credentials, the organization has enabled OAuth App access restrictions, meaning that data access to third-parties is limited."})
		default:
			w.WriteHeader(http.StatusNotFound)
			writeJSON(w, map[string]any{"message": "Not Found"})
		}
	}
	switch p := r.URL.Path; {
	case p == "/user":
		writeJSON(w, map[string]any{"id": json.Number(u.Subject), "login": login, "name": u.Name, "email": nil, "avatar_url": u.Picture})
	case p == "/user/emails":
		writeJSON(w, []map[string]any{{"email": u.Email, "primary": true, "verified": u.EmailVerified == true}})
	case strings.HasPrefix(p, "/user/memberships/orgs/"):
		membership(u.Orgs[strings.TrimPrefix(p, "/user/memberships/orgs/")])
	case strings.HasPrefix(p, "/orgs/"):
		// /orgs/{org}/teams/{slug}/memberships/{login}
		parts := strings.Split(strings.TrimPrefix(p, "/orgs/"), "/")
		if len(parts) != 5 || parts[1] != "teams" || parts[3] != "memberships" || parts[4] != login {
			membership("")
			return
		}
		membership(u.Teams[parts[0]+"/"+parts[2]])
	default:
		http.NotFound(w, r)
	}
}

func randomString() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
