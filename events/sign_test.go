package events

import (
	"errors"
	"regexp"
	"testing"
	"time"
)

func TestParseSecret(t *testing.T) {
	for _, bad := range []string{"", "secret", "whsec_", "whsec_not base64!", "whsec_c2hvcnQ="} {
		if _, err := ParseSecret(bad); !errors.Is(err, ErrBadSecret) {
			t.Errorf("ParseSecret(%q) = %v, want ErrBadSecret", bad, err)
		}
	}
	if _, err := ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"); err != nil {
		t.Errorf("a svix-style secret was refused: %v", err)
	}
}

// The Standard Webhooks spec's own example: the secret, ID, timestamp and
// body below sign to this value.
func TestSignSpecExample(t *testing.T) {
	sec, err := ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	got := sec.Sign("msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("signature %s, want %s", got, want)
	}
}

func TestNewID(t *testing.T) {
	re := regexp.MustCompile(`^evt_[0-9A-HJKMNP-TV-Z]{26}$`)
	now := time.Now()
	a, b := NewID(now), NewID(now.Add(time.Millisecond))
	if !re.MatchString(a) || !re.MatchString(b) || a == b {
		t.Fatalf("IDs %q, %q", a, b)
	}
	if a[:14] >= b[:14] {
		t.Fatalf("IDs do not sort by time: %q then %q", a, b)
	}
}
