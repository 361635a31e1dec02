package session

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func sampleSession(picture string) *Session {
	now := time.UnixMilli(1_700_000_000_123).UTC()
	return &Session{
		ID:         "AAAAAAAAAAAAAAAAAAAAAA",
		UserID:     "ユーザー|" + strings.Repeat("x", 200), // a 2-byte length
		Provider:   "oidc:corp",
		CreatedAt:  now,
		ExpiresAt:  now.Add(720 * time.Hour),
		LastUsedAt: now.Add(time.Minute),
		Profile:    Profile{Email: "a@b.example", EmailVerified: true, Name: "Ada \x00 Lovelace", Picture: picture},
		AuthTime:   now,
	}
}

func TestRecordRoundTrip(t *testing.T) {
	pictures := append([]string{"", "http://plain.example/p.png", "https://avatars.githubusercontent.com/u/"}, picturePrefixes...)
	for _, p := range picturePrefixes {
		pictures = append(pictures, p+"rest?x=1")
	}
	for _, pic := range pictures {
		want := sampleSession(pic)
		rec, err := encodeRecord(want, testRealmTag)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeRecord(want.ID, rec, testRealmTag)
		if err != nil {
			t.Fatalf("picture %q: %v", pic, err)
		}
		assertSession(t, "decode", got, want)
	}
}

func TestRecordPrefixCodesShrinkPictures(t *testing.T) {
	rec, err := encodeRecord(sampleSession("https://avatars.githubusercontent.com/u/123?v=4"), testRealmTag)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(rec), "githubusercontent") {
		t.Fatal("the GitHub avatar prefix is stored in full")
	}
}

func TestRecordCorruptInputs(t *testing.T) {
	rec, err := encodeRecord(sampleSession("https://example.com/p"), testRealmTag)
	if err != nil {
		t.Fatal(err)
	}
	bad := [][]byte{nil, []byte("3" + string(rec[1:])), append(append([]byte{}, rec...), 0)}
	for i := range rec { // every truncation
		bad = append(bad, rec[:i])
	}
	notDigits := append([]byte{}, rec...)
	notDigits[5] = 'x'
	bad = append(bad, notDigits)
	for _, b := range bad {
		if _, err := decodeRecord("id", b, testRealmTag); !errors.Is(err, ErrNotFound) {
			t.Fatalf("decoding %q: %v; want a not-found corrupt-record error", b, err)
		}
	}
	// An unknown picture prefix code.
	s := sampleSession("")
	rec, _ = encodeRecord(s, testRealmTag)
	i := recordHeaderBytes + 2 + len(s.UserID) + 6 + 1 + len(s.Provider) // flags byte
	rec[i] = 0x7f << pictureCodeShift
	if _, err := decodeRecord("id", rec, testRealmTag); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown picture code: %v; want corrupt", err)
	}
}

// testRealmTag is the realm of the records these tests encode.
var testRealmTag = RealmTag("https://app.example.com convex")

func TestRecordOfAnotherRealmOrNoneIsForeign(t *testing.T) {
	want := sampleSession("https://example.com/p")
	rec, err := encodeRecord(want, testRealmTag)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(rec), testRealmTag) {
		t.Fatal("the record does not end with its realm's tag")
	}
	other := RealmTag("https://other.example.com convex")
	if _, err := decodeRecord(want.ID, rec, other); !errors.Is(err, errForeignRecord) || !errors.Is(err, ErrNotFound) {
		t.Fatalf("decoding in another realm: %v; want a not-found foreign-record error", err)
	}
	// A record written before realms: version '1', no tag.
	legacy := append([]byte{'1'}, rec[1:len(rec)-len(testRealmTag)]...)
	if _, err := decodeRecord(want.ID, legacy, testRealmTag); !errors.Is(err, ErrNotFound) {
		t.Fatalf("decoding a record without a realm: %v; want not found", err)
	}
	// The tag alone decides, not where the record was found.
	forged := append([]byte{'2'}, rec[1:len(rec)-len(testRealmTag)]...)
	forged = append(forged, other...)
	if _, err := decodeRecord(want.ID, forged, testRealmTag); !errors.Is(err, errForeignRecord) {
		t.Fatalf("decoding another realm's tag: %v; want foreign", err)
	}
}

func TestRecordRejectsTimesOutOfRange(t *testing.T) {
	s := sampleSession("")
	s.ExpiresAt = time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := encodeRecord(s, testRealmTag); err == nil {
		t.Fatal("a time past 2286 was encoded")
	}
}

func TestParseToken(t *testing.T) {
	tok, p, err := newToken("user")
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseToken(tok)
	if err != nil || got != p {
		t.Fatalf("parseToken = %+v, %v; want %+v", got, err, p)
	}
	if p.userTag != userTag("user") || !validSessionID(p.sessionID) {
		t.Fatalf("derived %+v", p)
	}
	if validSessionID(tok) || validSessionID("") || validSessionID(strings.Repeat("!", sessionIDLen)) {
		t.Fatal("validSessionID accepts junk")
	}
}

func FuzzDecodeRecord(f *testing.F) {
	rec, _ := encodeRecord(sampleSession("https://example.com/p"), testRealmTag)
	f.Add(rec)
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := decodeRecord("id", b, testRealmTag)
		if err == nil && s.UserID == "" {
			t.Fatal("decoded a session without a user")
		}
	})
}

func TestRecordKeepsTheUserAgent(t *testing.T) {
	want := sampleSession("https://example.com/p")
	want.UserAgent = "Mozilla/5.0 (X11; Linux x86_64) Firefox/132.0"
	rec, err := encodeRecord(want, testRealmTag)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeRecord(want.ID, rec, testRealmTag)
	if err != nil {
		t.Fatal(err)
	}
	assertSession(t, "decode with a User-Agent", got, want)
	// Bytes after the User-Agent are corrupt, not a further field.
	junk := append(append([]byte{}, rec[:len(rec)-len(testRealmTag)]...), 'x')
	junk = append(junk, testRealmTag...)
	if _, err := decodeRecord(want.ID, junk, testRealmTag); !errors.Is(err, errCorruptRecord) {
		t.Fatalf("trailing byte after the User-Agent: %v; want corrupt", err)
	}
}

// TestRecordOfTodaysFormatDecodes builds a record as the store wrote it
// before User-Agents were kept, byte by byte from the documented layout.
func TestRecordOfTodaysFormatDecodes(t *testing.T) {
	var rec []byte
	rec = append(rec, '2')
	rec = append(rec, "1700000060123"...) // last use
	rec = append(rec, "1702592000123"...) // absolute expiry
	rec = append(rec, 6)
	rec = append(rec, "user|1"...)
	rec = append(rec, 0xfb, 0xd0, 0x95, 0xff, 0xbc, 0x31) // created, uvarint ms
	rec = append(rec, 6)
	rec = append(rec, "github"...)
	rec = append(rec, 1|7<<pictureCodeShift) // verified, "https://"
	rec = append(rec, 11)
	rec = append(rec, "a@b.example"...)
	rec = append(rec, 3)
	rec = append(rec, "Ada"...)
	rec = append(rec, 7)
	rec = append(rec, "x.png/p"...)
	rec = append(rec, testRealmTag...)
	got, err := decodeRecord("id", rec, testRealmTag)
	if err != nil {
		t.Fatal(err)
	}
	if got.UserID != "user|1" || got.Provider != "github" || got.UserAgent != "" ||
		got.Profile != (Profile{Email: "a@b.example", EmailVerified: true, Name: "Ada", Picture: "https://x.png/p"}) ||
		got.CreatedAt.UnixMilli() != 1_700_000_000_123 || got.LastUsedAt.UnixMilli() != 1_700_000_060_123 ||
		!got.AuthTime.Equal(got.CreatedAt) || got.AMR != nil {
		t.Fatalf("decoded %+v", got)
	}
	// And a session without a User-Agent is still written that way.
	again, err := encodeRecord(got, testRealmTag)
	if err != nil || string(again) != string(rec) {
		t.Fatalf("re-encoded %q, %v; want the same bytes %q", again, err, rec)
	}
}

// TestRecordKeepsTheAuthentication: a reauthenticated session's time and
// methods round-trip, with and without a User-Agent; a session never
// reauthenticated is written without them (the earlier format).
func TestRecordKeepsTheAuthentication(t *testing.T) {
	for _, ua := range []string{"", "Mozilla/5.0"} {
		for _, amr := range [][]string{nil, {"pwd"}, {"pwd", "otp"}} {
			want := sampleSession("")
			want.UserAgent = ua
			want.AuthTime, want.AMR = want.CreatedAt.Add(90*time.Minute), amr
			rec, err := encodeRecord(want, testRealmTag)
			if err != nil {
				t.Fatal(err)
			}
			got, err := decodeRecord(want.ID, rec, testRealmTag)
			if err != nil {
				t.Fatalf("UA %q, methods %v: %v", ua, amr, err)
			}
			assertSession(t, "decode a reauthenticated session", got, want)
		}
	}
	plain := sampleSession("")
	withAuth := *plain
	withAuth.AuthTime = time.Time{} // zero: the creation
	a, _ := encodeRecord(plain, testRealmTag)
	b, _ := encodeRecord(&withAuth, testRealmTag)
	if string(a) != string(b) {
		t.Fatal("a session authenticated at its creation is not written in the earlier format")
	}
	late := *plain
	late.AuthTime = time.UnixMilli(maxRecordMillis + 1)
	if _, err := encodeRecord(&late, testRealmTag); err == nil {
		t.Fatal("an authentication time past 2286 was encoded")
	}
}

func TestCapUserAgent(t *testing.T) {
	long := strings.Repeat("a", MaxUserAgentBytes-1) + "é and more"
	got := CapUserAgent(long)
	if len(got) != MaxUserAgentBytes-1 || !strings.HasSuffix(got, "a") {
		t.Fatalf("cut to %d bytes ending %q; want %d bytes, cut before the 2-byte character", len(got), got[len(got)-3:], MaxUserAgentBytes-1)
	}
	if got := CapUserAgent(" Mozilla/5.0\r\n\x00(X11)\xff "); got != "Mozilla/5.0(X11)" {
		t.Fatalf("CapUserAgent = %q; want control characters and invalid UTF-8 dropped", got)
	}
	if got := CapUserAgent(strings.Repeat("x", 1000)); len(got) != MaxUserAgentBytes {
		t.Fatalf("ASCII cut to %d bytes; want %d", len(got), MaxUserAgentBytes)
	}
}
