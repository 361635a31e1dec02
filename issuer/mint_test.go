package issuer

import (
	"encoding/base64"
	"encoding/json"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestMintVerifiesWithJWKS(t *testing.T) {
	for _, alg := range []Algorithm{RS256, EdDSA, ES256} {
		t.Run(string(alg), func(t *testing.T) {
			clock := newFakeClock()
			k := testKey(t, alg)
			iss := newTestIssuer(t, Config{Issuer: "https://app.example.com/", Now: clock.Now}, k)

			token, iat, exp, err := iss.Mint(Claims{UserID: "user-1", SessionID: "sess-1"})
			if err != nil {
				t.Fatal(err)
			}
			if !iat.Equal(clock.Now()) || !exp.Equal(clock.Now().Add(DefaultTokenTTL)) {
				t.Fatalf("iat %s exp %s, want %s and %s", iat, exp, clock.Now(), clock.Now().Add(DefaultTokenTTL))
			}

			tok := verifyToken(t, iss, token, clock.Now())
			tokIss, _ := tok.Issuer()
			tokSub, _ := tok.Subject()
			if tokIss != "https://app.example.com/" || tokSub != "user-1" {
				t.Fatalf("iss %q sub %q", tokIss, tokSub)
			}
			tokIat, _ := tok.IssuedAt()
			tokExp, _ := tok.Expiration()
			if !tokIat.Equal(iat) || !tokExp.Equal(exp) {
				t.Fatalf("token iat %s exp %s, Mint returned %s %s", tokIat, tokExp, iat, exp)
			}

			header := decodeSegment(t, token, 0)
			if header["typ"] != "JWT" || header["kid"] != k.ID() || header["alg"] != string(alg) || len(header) != 3 {
				t.Fatalf("header %v, want exactly alg %s, kid %s, typ JWT", header, alg, k.ID())
			}

			payload := decodeSegment(t, token, 1)
			if aud, ok := payload["aud"].(string); !ok || aud != "convex" {
				t.Fatalf("aud is %#v, want the JSON string \"convex\"", payload["aud"])
			}
			if payload["sid"] != "sess-1" {
				t.Fatalf("sid %v, want sess-1", payload["sid"])
			}
			// Integer seconds: encoding/json decodes numbers as float64.
			if payload["iat"] != float64(clock.Now().Unix()) || payload["exp"] != float64(clock.Now().Add(5*time.Minute).Unix()) {
				t.Fatalf("iat %v exp %v", payload["iat"], payload["exp"])
			}
			if raw := strings.Split(token, ".")[1]; strings.Contains(raw, "=") {
				t.Fatalf("payload segment has padding")
			}

			// A token from another issuer string or for another audience does not pass.
			other := newTestIssuer(t, Config{Issuer: "https://app.example.com", Audience: "other", Now: clock.Now}, k)
			otherToken, _, _, err := other.Mint(Claims{UserID: "user-1"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := parseWithIssuer(iss, otherToken, clock.Now()); err == nil {
				t.Fatalf("token with a different iss/aud verified")
			}
		})
	}
}

func TestMintClaims(t *testing.T) {
	clock := newFakeClock()
	k := testKey(t, EdDSA)
	userIss := newTestIssuer(t, Config{Now: clock.Now}, k)
	sessionIss := newTestIssuer(t, Config{Now: clock.Now, Subject: SubjectUserSession, Audience: "my-app", TokenTTL: time.Minute}, k)

	tests := []struct {
		name    string
		iss     *Issuer
		claims  Claims
		want    map[string]any // exact payload, minus iss/iat/exp
		wantErr string
	}{
		{
			name:   "user subject, no profile",
			iss:    userIss,
			claims: Claims{UserID: "u1", SessionID: "s1"},
			want:   map[string]any{"sub": "u1", "sid": "s1", "aud": "convex"},
		},
		{
			name:   "no session ID: sid omitted",
			iss:    userIss,
			claims: Claims{UserID: "u1"},
			want:   map[string]any{"sub": "u1", "aud": "convex"},
		},
		{
			name:   "full profile",
			iss:    userIss,
			claims: Claims{UserID: "u1", SessionID: "s1", Email: "ada@example.com", EmailVerified: true, Name: "Ada", Picture: "https://example.com/a.png"},
			want: map[string]any{"sub": "u1", "sid": "s1", "aud": "convex",
				"email": "ada@example.com", "email_verified": true, "name": "Ada", "picture": "https://example.com/a.png"},
		},
		{
			name:   "unverified email is said so",
			iss:    userIss,
			claims: Claims{UserID: "u1", SessionID: "s1", Email: "ada@example.com"},
			want:   map[string]any{"sub": "u1", "sid": "s1", "aud": "convex", "email": "ada@example.com", "email_verified": false},
		},
		{
			name:   "email_verified without email is omitted",
			iss:    userIss,
			claims: Claims{UserID: "u1", SessionID: "s1", EmailVerified: true, Name: "Ada"},
			want:   map[string]any{"sub": "u1", "sid": "s1", "aud": "convex", "name": "Ada"},
		},
		{
			name:   "authentication time and methods",
			iss:    userIss,
			claims: Claims{UserID: "u1", SessionID: "s1", AuthTime: time.Unix(1_700_000_000, 900_000_000), AMR: []string{"pwd", "otp"}},
			want:   map[string]any{"sub": "u1", "sid": "s1", "aud": "convex", "auth_time": float64(1_700_000_000), "amr": []any{"pwd", "otp"}},
		},
		{
			name:   "user_session subject",
			iss:    sessionIss,
			claims: Claims{UserID: "u1", SessionID: "s1"},
			want:   map[string]any{"sub": "u1;s1", "sid": "s1", "aud": "my-app"},
		},
		{name: "no user ID", iss: userIss, claims: Claims{SessionID: "s1"}, wantErr: "without a user ID"},
		{name: "user_session without session ID", iss: sessionIss, claims: Claims{UserID: "u1"}, wantErr: "without a session ID"},
		{name: "user_session with separator in user ID", iss: sessionIss, claims: Claims{UserID: "u;1", SessionID: "s1"}, wantErr: `user ID contains ";"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			token, _, _, err := tc.iss.Mint(tc.claims)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			payload := decodeSegment(t, token, 1)
			if payload["iss"] != testIssuer {
				t.Fatalf("iss %v", payload["iss"])
			}
			ttl := tc.iss.Config().TokenTTL
			if payload["exp"].(float64)-payload["iat"].(float64) != ttl.Seconds() {
				t.Fatalf("exp-iat = %v, want %v", payload["exp"].(float64)-payload["iat"].(float64), ttl.Seconds())
			}
			delete(payload, "iss")
			delete(payload, "iat")
			delete(payload, "exp")
			if len(payload) != len(tc.want) {
				t.Fatalf("payload %v, want %v", payload, tc.want)
			}
			for name, want := range tc.want {
				if !reflect.DeepEqual(payload[name], want) {
					t.Fatalf("claim %s = %#v, want %#v (payload %v)", name, payload[name], want, payload)
				}
			}
			verifyToken(t, tc.iss, token, clock.Now())
		})
	}
}

func TestMintIssuerByteForByte(t *testing.T) {
	// Whatever the configured string, iss carries it unchanged, even characters
	// encoding/json would escape as HTML.
	for _, issuer := range []string{"https://APP.example.com", "https://app.example.com/a&b/", "http://localhost:3000"} {
		iss := newTestIssuer(t, Config{Issuer: issuer}, testKey(t, EdDSA))
		token, _, _, err := iss.Mint(Claims{UserID: "u"})
		if err != nil {
			t.Fatal(err)
		}
		if got := decodeSegment(t, token, 1)["iss"]; got != issuer {
			t.Fatalf("iss %q, want %q", got, issuer)
		}
	}
}

func TestMintConcurrentWithRotation(t *testing.T) {
	const minters, mintsEach = 4, 100
	clock := newFakeClock()
	keys := []*Key{testKey(t, EdDSA), testKey(t, ES256), testKey(t, RS256)}
	iss := newTestIssuer(t, Config{Now: clock.Now}, keys[0])

	tokens := make(chan string, minters*mintsEach)
	var minting sync.WaitGroup
	for range minters {
		minting.Add(1)
		go func() {
			defer minting.Done()
			for range mintsEach {
				token, _, _, err := iss.Mint(Claims{UserID: "u", SessionID: "s"})
				if err != nil {
					t.Error(err)
					return
				}
				tokens <- token
			}
		}()
	}
	mintingDone := make(chan struct{})
	go func() {
		minting.Wait()
		close(mintingDone)
	}()
	rotations := 0
rotating:
	for {
		select {
		case <-mintingDone:
			break rotating
		default:
		}
		// Publish the next key, then promote it; the clock stands still, so
		// every former key stays published.
		cur, next := keys[rotations%len(keys)], keys[(rotations+1)%len(keys)]
		if err := iss.SetKeys(cur, next, nil); err != nil {
			t.Fatal(err)
		}
		_ = iss.JWKS()
		var retired []RetiredKey
		for _, k := range keys {
			if k != next {
				retired = append(retired, RetiredKey{Key: k, RetiredAt: clock.Now()})
			}
		}
		if err := iss.SetKeys(next, nil, retired); err != nil {
			t.Fatal(err)
		}
		rotations++
	}
	close(tokens)
	if rotations == 0 {
		t.Fatalf("no rotation happened while minting")
	}

	// Every token verifies against the current JWKS: the clock did not move,
	// so every retired key is still published.
	kids := map[string]bool{}
	for token := range tokens {
		verifyToken(t, iss, token, clock.Now())
		kids[decodeSegment(t, token, 0)["kid"].(string)] = true
	}
	t.Logf("%d rotations; tokens signed by %d distinct keys", rotations, len(kids))
}

// TestMintPayloadIsJSONMarshal: the pooled encoder writes the claims exactly
// as json.Marshal does, escapes and invalid UTF-8 included.
func TestMintPayloadIsJSONMarshal(t *testing.T) {
	iss := newTestIssuer(t, Config{}, testKey(t, EdDSA))
	for _, c := range []Claims{
		{UserID: "u1"},
		{UserID: "u\"2\\", Email: "<a&b>@example.com", Name: "Zoë \u2028 \x01", Picture: "https://x.example/?a=1&b=2"},
		{UserID: "u3", Email: "e@example.com", EmailVerified: true, Name: "bad \xff utf-8"},
	} {
		token, iat, exp, err := iss.Mint(c)
		if err != nil {
			t.Fatal(err)
		}
		payload, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[1])
		if err != nil {
			t.Fatal(err)
		}
		want := tokenClaims{Issuer: iss.cfg.Issuer, Subject: c.UserID, Audience: iss.cfg.Audience, IssuedAt: iat.Unix(), ExpiresAt: exp.Unix(),
			Email: c.Email, Name: c.Name, Picture: c.Picture}
		if c.Email != "" {
			want.EmailVerified = &c.EmailVerified
		}
		wantJSON, err := json.Marshal(&want)
		if err != nil {
			t.Fatal(err)
		}
		if string(payload) != string(wantJSON) {
			t.Errorf("payload\n%s\nwant\n%s", payload, wantJSON)
		}
	}
}

// TestMintKeepsIncumbentUserIDs: the IDs users keep from an import (a
// Convex document ID, Better Auth's 32 characters, a UUID, an app's own
// ID) go into sub as they are, in both subject formats.
func TestMintKeepsIncumbentUserIDs(t *testing.T) {
	clock := newFakeClock()
	k := testKey(t, EdDSA)
	userIss := newTestIssuer(t, Config{Now: clock.Now}, k)
	sessionIss := newTestIssuer(t, Config{Now: clock.Now, Subject: SubjectUserSession}, k)
	for _, id := range []string{"jd7f3k2m9x8q1w5e4r6t0y2u3i9o8p7a", "kX9vB2nQ7mLp4RtY8wZc3HdF6gJs1AeU", "0f8fad5b-d9cb-469f-a165-70867728950e", "user_2NNEqL2nrIRdJ194ndJqAHwEfxC"} {
		for iss, want := range map[*Issuer]string{userIss: id, sessionIss: id + ";s1"} {
			tok, _, _, err := iss.Mint(Claims{UserID: id, SessionID: "s1"})
			if err != nil {
				t.Fatalf("Mint(%s): %v", id, err)
			}
			if got, _ := verifyToken(t, iss, tok, clock.Now()).Subject(); got != want {
				t.Errorf("sub %q; want %q", got, want)
			}
		}
	}
}
