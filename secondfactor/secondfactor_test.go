package secondfactor

import (
	"context"
	"encoding/base32"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/convex-auth/caddy-convex-auth/internal/keystoragetest"
)

// rfcSecret is RFC 6238 Appendix B's SHA-1 seed, "12345678901234567890".
var rfcSecret = base32.StdEncoding.EncodeToString([]byte("12345678901234567890"))

// TestCheckCodeRFC6238 checks codes against RFC 6238 Appendix B's SHA-1
// vectors (their last 6 digits), with the skew of one step each way, the
// replay rule (a step at or before the last accepted one is refused) and
// malformed input.
func TestCheckCodeRFC6238(t *testing.T) {
	vectors := []struct {
		unix int64
		code string // the vector's 8-digit value, last 6 digits
	}{
		{59, "287082"}, {1111111109, "081804"}, {1111111111, "050471"},
		{1234567890, "005924"}, {2000000000, "279037"},
	}
	for _, v := range vectors {
		now := time.Unix(v.unix, 0)
		step, err := CheckCode(rfcSecret, v.code, now, 0)
		if err != nil || step != Step(now) {
			t.Errorf("t=%d code %s: step %d, %v; want step %d", v.unix, v.code, step, err, Step(now))
		}
		if _, err := CheckCode(rfcSecret, v.code, now, Step(now)); !errors.Is(err, ErrReplayed) {
			t.Errorf("t=%d: the same step again = %v; want ErrReplayed", v.unix, err)
		}
		if _, err := CheckCode(rfcSecret, v.code, now, Step(now)+1); !errors.Is(err, ErrReplayed) {
			t.Errorf("t=%d: a step after it accepted = %v; want ErrReplayed", v.unix, err)
		}
		// One step of skew either way, not two.
		for d, ok := range map[time.Duration]bool{-Period: true, Period: true, -2 * Period: false, 2 * Period: false} {
			if v.unix < 120 && d < 0 {
				continue // before 1970 + a step or two
			}
			_, err := CheckCode(rfcSecret, v.code, now.Add(d), 0)
			if (err == nil) != ok {
				t.Errorf("t=%d checked %v away: %v; want accepted %v", v.unix, d, err, ok)
			}
		}
		// Typed with spaces.
		if _, err := CheckCode(rfcSecret, v.code[:3]+" "+v.code[3:], now, 0); err != nil {
			t.Errorf("t=%d: a code with a space: %v", v.unix, err)
		}
	}
	now := time.Unix(59, 0)
	for _, bad := range []string{"", "28708", "2870822", "287083", "abcdef", "28708２"} {
		if _, err := CheckCode(rfcSecret, bad, now, 0); !errors.Is(err, ErrCode) {
			t.Errorf("code %q = %v; want ErrCode", bad, err)
		}
	}
	if _, err := CheckCode("not base32!", "287082", now, 0); err == nil || errors.Is(err, ErrCode) {
		t.Errorf("a broken secret = %v; want an error that is not ErrCode", err)
	}
}

func TestEnrolment(t *testing.T) {
	e, err := NewEnrolment("app.example.com", "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if !ValidSecret(e.Secret) {
		t.Fatalf("secret %q is not valid", e.Secret)
	}
	u, err := url.Parse(e.URI)
	if err != nil || u.Scheme != "otpauth" || u.Host != "totp" || u.Query().Get("secret") != e.Secret ||
		u.Query().Get("issuer") != "app.example.com" || !strings.Contains(u.Path, "ada@example.com") {
		t.Fatalf("URI %q", e.URI)
	}
	// The page shown again after a wrong first code holds the same URI,
	// also for a site name an app would show with "+" if it were
	// form-encoded.
	for _, issuer := range []string{"app.example.com", "My Site"} {
		e, err := NewEnrolment(issuer, "ada@example.com")
		if err != nil {
			t.Fatal(err)
		}
		if again := EnrolmentFor(issuer, "ada@example.com", e.Secret); again != e {
			t.Fatalf("EnrolmentFor = %+v; want %+v", again, e)
		}
		if strings.Contains(e.URI, "+") {
			t.Fatalf("URI %q: a space is %%20 for authenticator apps", e.URI)
		}
	}
	other, _ := NewEnrolment("app.example.com", "ada@example.com")
	if other.Secret == e.Secret {
		t.Fatal("two enrolments share a secret")
	}
	for _, bad := range []string{"", "short", strings.Repeat("1", 32)} {
		if ValidSecret(bad) {
			t.Errorf("ValidSecret(%q)", bad)
		}
	}
	svg, err := QRCodeSVG(e.URI)
	if err != nil || !strings.HasPrefix(string(svg), "<svg ") || !strings.Contains(string(svg), `<path fill="#000" d="M`) || strings.Contains(string(svg), "<script") {
		t.Fatalf("QR code SVG: %v %.80s", err, svg)
	}
}

func TestBackupCodes(t *testing.T) {
	codes, hashes := NewBackupCodes("user-1")
	if len(codes) != BackupCodeCount || len(hashes) != BackupCodeCount {
		t.Fatalf("%d codes, %d hashes", len(codes), len(hashes))
	}
	seen := map[string]bool{}
	for i, c := range codes {
		if len(c) != 14 || c[4] != '-' || c[9] != '-' || seen[c] {
			t.Fatalf("code %q: want xxxx-xxxx-xxxx, all different", c)
		}
		seen[c] = true
		if strings.Contains(hashes[i], strings.ReplaceAll(c, "-", "")) {
			t.Fatal("a hash holds its code")
		}
		h, ok := HashBackupCode("user-1", c)
		if !ok || h != hashes[i] {
			t.Fatalf("HashBackupCode(%q) does not give its stored hash", c)
		}
		typed := strings.ToUpper(strings.ReplaceAll(c, "-", " "))
		if h, ok := HashBackupCode("user-1", typed); !ok || h != hashes[i] {
			t.Fatalf("typed %q: not the same code", typed)
		}
		if h, _ := HashBackupCode("user-2", c); h == hashes[i] {
			t.Fatal("another user's hash of the code is the same")
		}
		if !LooksLikeBackupCode(c) || LooksLikeBackupCode("123 456") {
			t.Fatal("LooksLikeBackupCode")
		}
	}
	// Misread letters count as their digits.
	if a, _ := HashBackupCode("u", "1111-0000-aaaa"); a != mustHash(t, "u", "iIlL-oOoO-AAAA") {
		t.Fatal("i, l and o are not read as 1 and 0")
	}
	for _, bad := range []string{"", "abcd", "abcd-efgh-jkm!", "abcd-efgh-jkmn-p", "uuuu-uuuu-uuuu"} {
		if _, ok := HashBackupCode("u", bad); ok {
			t.Errorf("HashBackupCode(%q) accepted", bad)
		}
	}
}

func mustHash(t *testing.T, user, code string) string {
	t.Helper()
	h, ok := HashBackupCode(user, code)
	if !ok {
		t.Fatalf("%q is no code", code)
	}
	return h
}

// TestSecretKeys: a secret opens for its user and realm only; after a
// rotation, one sealed under the older key still opens and is reported
// stale until it is sealed again; without the key it was sealed under it
// does not open.
func TestSecretKeys(t *testing.T) {
	ctx := context.Background()
	st := new(keystoragetest.Storage)
	const name = "convex_auth/site/factor_keys.json"
	keys, err := LoadOrCreateStoredKeys(ctx, st, name, time.Now())
	if err != nil || len(keys) != 1 {
		t.Fatalf("first load: %d keys, %v", len(keys), err)
	}
	again, err := LoadOrCreateStoredKeys(ctx, st, name, time.Now())
	if err != nil || len(again) != 1 || string(again[0]) != string(keys[0]) {
		t.Fatal("a second start made another key")
	}
	old, err := NewSecretKeys("realm", keys...)
	if err != nil {
		t.Fatal(err)
	}
	sealed := old.Seal("user-1", rfcSecret)
	if strings.Contains(sealed, rfcSecret) {
		t.Fatal("the sealed secret holds the secret")
	}
	if got, stale, err := old.Open(ctx, "user-1", sealed); err != nil || stale || got != rfcSecret {
		t.Fatalf("Open = %q, %v, %v", got, stale, err)
	}
	if _, _, err := old.Open(ctx, "user-2", sealed); !errors.Is(err, ErrSecretSealed) {
		t.Fatalf("another user's secret opened: %v", err)
	}
	otherRealm, _ := NewSecretKeys("other", keys...)
	if _, _, err := otherRealm.Open(ctx, "user-1", sealed); !errors.Is(err, ErrSecretSealed) {
		t.Fatalf("another realm's secret opened: %v", err)
	}

	rotated, err := RotateStoredKeys(ctx, st, name, time.Now())
	if err != nil || len(rotated) != 2 || string(rotated[1]) != string(keys[0]) {
		t.Fatalf("rotate: %d keys, %v", len(rotated), err)
	}
	cur, _ := NewSecretKeys("realm", rotated...)
	got, stale, err := cur.Open(ctx, "user-1", sealed)
	if err != nil || !stale || got != rfcSecret {
		t.Fatalf("after rotation: %q, stale %v, %v; want the secret, stale", got, stale, err)
	}
	resealed := cur.Seal("user-1", got)
	if _, stale, err := cur.Open(ctx, "user-1", resealed); err != nil || stale {
		t.Fatalf("resealed: stale %v, %v", stale, err)
	}
	retired, err := RetireStoredKeys(ctx, st, name)
	if err != nil || len(retired) != 1 || string(retired[0]) != string(rotated[0]) {
		t.Fatalf("retire: %d keys, %v", len(retired), err)
	}
	only, _ := NewSecretKeys("realm", retired...)
	if _, _, err := only.Open(ctx, "user-1", sealed); !errors.Is(err, ErrSecretSealed) {
		t.Fatalf("a secret under a retired key opened: %v", err)
	}
	if _, _, err := only.Open(ctx, "user-1", resealed); err != nil {
		t.Fatal(err)
	}

	for _, text := range []string{"", "short", strings.Repeat("A", 44)} {
		if _, err := ParseKey(text); err == nil && len(text) != 44 {
			t.Errorf("ParseKey(%q) accepted", text)
		}
	}
	if k, err := ParseKey("  " + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" + "\n"); err != nil || len(k) != KeySize {
		t.Fatalf("ParseKey of openssl's output: %v", err)
	}
	t.Setenv("FACTOR_KEY_TEST", "not a key")
	if _, err := (KeySource{From: "env", Env: "FACTOR_KEY_TEST"}).Read(); err == nil || !strings.Contains(err.Error(), "env FACTOR_KEY_TEST") {
		t.Fatalf("a bad key from the environment: %v", err)
	}
}
