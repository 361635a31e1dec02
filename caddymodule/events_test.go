package caddymodule

import (
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

const testEventsSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func TestEventsCaddyfile(t *testing.T) {
	var h Handler
	err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(`convex_auth {
		issuer https://app.example.com
		events {
			url https://x.convex.site/gateway-events
			secret {env.CONVEX_AUTH_EVENTS_SECRET}
			initial_backoff 100ms
			max_backoff 1s
			max_age 1h
			claim_idle 5s
			max_len 500
		}
	}`))
	if err != nil {
		t.Fatal(err)
	}
	want := EventsConfig{URL: "https://x.convex.site/gateway-events", Secret: "{env.CONVEX_AUTH_EVENTS_SECRET}",
		InitialBackoff: caddy.Duration(100 * time.Millisecond), MaxBackoff: caddy.Duration(time.Second),
		MaxAge: caddy.Duration(time.Hour), ClaimIdle: caddy.Duration(5 * time.Second), MaxLen: 500}
	if h.Events == nil || *h.Events != want {
		t.Fatalf("events %+v, want %+v", h.Events, want)
	}
}

func TestEventsCaddyfileErrors(t *testing.T) {
	for _, tt := range []struct{ name, input, wantErr string }{
		{"unknown option", "convex_auth {\nevents {\nurl https://a\nretries 3\n}\n}", `unknown events option "retries"`},
		{"repeated option", "convex_auth {\nevents {\nurl https://a\nurl https://b\n}\n}", "events url is set more than once"},
		{"inline", "convex_auth {\nevents https://a\n}", "events takes a block"},
		{"repeated block", "convex_auth {\nevents {\nurl https://a\n}\nevents {\nurl https://b\n}\n}", "events is set more than once"},
		{"bad duration", "convex_auth {\nevents {\nmax_age soon\n}\n}", `max_age "soon" is not a duration`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var h Handler
			err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tt.input))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestEventsValidateNamesOption(t *testing.T) {
	t.Setenv("TEST_EVENTS_SECRET", testEventsSecret)
	ev := func(c EventsConfig) Handler { return Handler{Issuer: "https://a.example", Events: &c} }
	good := EventsConfig{URL: "https://x.convex.site/e", Secret: "{env.TEST_EVENTS_SECRET}"}
	for _, tt := range []struct {
		name    string
		h       Handler
		wantErr string
	}{
		{"no url", ev(EventsConfig{Secret: testEventsSecret}), "events url"},
		{"relative url", ev(EventsConfig{URL: "/gateway-events", Secret: testEventsSecret}), "events url"},
		{"other scheme", ev(EventsConfig{URL: "ftp://x/e", Secret: testEventsSecret}), "events url"},
		{"no secret", ev(EventsConfig{URL: good.URL}), "events secret is empty"},
		{"unset env secret", ev(EventsConfig{URL: good.URL, Secret: "{env.TEST_EVENTS_UNSET}"}), "events secret is empty"},
		{"not whsec", ev(EventsConfig{URL: good.URL, Secret: "hunter2hunter2hunter2hunter2hunter2"}), "events secret"},
		{"short secret", ev(EventsConfig{URL: good.URL, Secret: "whsec_c2hvcnQ="}), "events secret"},
		{"backoffs", ev(EventsConfig{URL: good.URL, Secret: good.Secret, InitialBackoff: caddy.Duration(time.Minute), MaxBackoff: caddy.Duration(time.Second)}), "events initial_backoff"},
		{"claim_idle", ev(EventsConfig{URL: good.URL, Secret: good.Secret, ClaimIdle: caddy.Duration(time.Millisecond)}), "events claim_idle"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.h.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "MfKQ9r8") {
				t.Fatalf("the error shows the secret: %v", err)
			}
		})
	}
	if h := ev(good); h.Validate() != nil {
		t.Fatalf("good events config refused: %v", h.Validate())
	}
}
