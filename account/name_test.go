package account

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/convex-auth/caddy-convex-auth/signin"
)

func TestCheckName(t *testing.T) {
	for typed, want := range map[string][2]string{
		"  Ada Lovelace ":                    {"Ada Lovelace", ""},
		"":                                   {"", ""},
		"Zoë 👩‍💻 Ōkubo":                      {"Zoë 👩‍💻 Ōkubo", ""},
		strings.Repeat("é", MaxNameLength):   {strings.Repeat("é", MaxNameLength), ""},
		strings.Repeat("é", MaxNameLength+1): {"", "name_long"},
		"Ada\nLovelace":                      {"", "name_invalid"},
		"Ada\x00":                            {"", "name_invalid"},
		"Ada\u2028Lovelace":                  {"", "name_invalid"},
		"evil\u202egnp.exe":                  {"", "name_invalid"},
		"\u2067Ada":                          {"", "name_invalid"},
		"\xff\xfeAda":                        {"", "name_invalid"},
	} {
		name, problem := CheckName(typed)
		if name != want[0] || problem != want[1] {
			t.Errorf("CheckName(%q) = %q, %q; want %q, %q", typed, name, problem, want[0], want[1])
		}
	}
}

// The name set on the account page is the user's, and every live session
// of the user carries it at once (so the next token does); a bad name is
// refused and changes nothing.
func TestAccountNameEdit(t *testing.T) {
	eachStore(t, func(t *testing.T, mk storeMaker) {
		ae := newAccountEnv(t, mk, nil)
		ctx := context.Background()
		b, other := newBrowser(t), newBrowser(t)
		me := ae.signUp(b, "ada@example.com", "correct horse")
		ae.signInPassword(other, "ada@example.com", "correct horse")
		stranger := ae.signUp(newBrowser(t), "bob@example.com", "battery staple")
		if page := ae.page(b); !strings.Contains(page, `action="/auth/account/name"`) || !strings.Contains(page, `maxlength="100"`) {
			t.Fatalf("the account page has no name form:\n%s", page)
		}

		resp, body := b.Post(ae.origin+signin.PathAccount+"/name", url.Values{"name": {"  Ada King 👩‍💻 "}})
		expectRedirect(t, resp, body, "notice", "name_saved")
		if u, err := ae.store.GetUser(ctx, me.UserID); err != nil || u.Profile.Name != "Ada King 👩‍💻" {
			t.Fatalf("the user record: %+v, %v", u, err)
		}
		for _, br := range []*browser{b, other} {
			if w := ae.who(br); w.Name != "Ada King 👩‍💻" || w.SessionID == "" {
				t.Fatalf("a session of the user carries %q; want the new name", w.Name)
			}
		}
		if w, _ := ae.store.List(ctx, stranger.UserID); len(w) != 1 || w[0].Profile.Name != "" {
			t.Fatal("another user's session changed")
		}
		if _, page := b.Get(location(t, resp)); !strings.Contains(page, `value="Ada King 👩‍💻"`) || !strings.Contains(page, notices["name_saved"]) {
			t.Fatal("the page after saving does not show the name, or does not say it was saved")
		}

		for _, bad := range []struct{ name, code string }{
			{strings.Repeat("x", MaxNameLength+1), "name_long"},
			{"Ada\r\nBcc: x", "name_invalid"},
		} {
			resp, body := b.Post(ae.origin+signin.PathAccount+"/name", url.Values{"name": {bad.name}})
			backSays(t, b, signin.PathAccount, resp, body, bad.code)
			resp, body = b.Fetch(ae.origin+signin.PathAccount+"/name", url.Values{"name": {bad.name}})
			pageSays(t, resp, body, http.StatusBadRequest, bad.code)
		}
		resp, body = b.CrossSite(ae.origin+signin.PathAccount+"/name", url.Values{"name": {"Mallory"}})
		pageSays(t, resp, body, http.StatusForbidden, "cross_site")
		if w := ae.who(other); w.Name != "Ada King 👩‍💻" {
			t.Fatalf("a refused name reached the sessions: %q", w.Name)
		}
		// Emptied: no name.
		resp, body = b.Post(ae.origin+signin.PathAccount+"/name", url.Values{"name": {""}})
		expectRedirect(t, resp, body, "notice", "name_saved")
		if w := ae.who(other); w.Name != "" {
			t.Fatalf("after clearing the name a session carries %q", w.Name)
		}
	})
}

// The account page leads back to the app: after_sign_in, named by its host
// when it is on another allowed origin.
func TestAccountPageLinksBackToTheApp(t *testing.T) {
	ae := newAccountEnv(t, nil, nil) // after_sign_in /home
	b := newBrowser(t)
	ae.signUp(b, "ada@example.com", "correct horse")
	host := strings.TrimPrefix(ae.origin, "http://")
	page := ae.page(b)
	if !strings.Contains(page, `<a href="/home" id="back-to-app">&larr; Back to `+host+`</a>`) {
		t.Fatalf("no way back to the app:\n%s", page)
	}
	if !strings.Contains(page, `<link rel="icon" type="image/svg+xml" href="data:image/svg&#43;xml;base64,`) {
		t.Fatal("the account page does not link the gateway's icon")
	}
	other := newAccountEnv(t, nil, func(c *signin.Config) {
		c.Redirects, _ = signin.NewRedirectPolicy("https://docs.example.com/start", []string{"https://docs.example.com"})
	})
	ob := newBrowser(t)
	other.signUp(ob, "ada@example.com", "correct horse")
	if page := other.page(ob); !strings.Contains(page, `<a href="https://docs.example.com/start" id="back-to-app">&larr; Back to docs.example.com</a>`) {
		t.Fatalf("no way back to the app on its own origin:\n%s", page)
	}
	// The delete page leads back to the account.
	if _, page := b.Get(ae.origin + signin.PathAccount + "/delete"); !strings.Contains(page, `href="/auth/account" id="back-to-account"`) {
		t.Fatal("the delete page has no way back to the account")
	}
}

// The change-password form's page, where a refused change from the
// account page returns: signed in only.
func TestChangePasswordPage(t *testing.T) {
	ae := newAccountEnv(t, nil, nil)
	resp, _ := newBrowser(t).Get(ae.origin + signin.PathChangePassword)
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(location(t, resp), ae.origin+signin.PathSignIn) {
		t.Fatalf("signed out: %d; want sent to sign in", resp.StatusCode)
	}
	b := newBrowser(t)
	ae.signUp(b, "ada@example.com", "correct horse")
	resp, page := b.Get(ae.origin + signin.PathChangePassword + "?error=current_password")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "<h1>Change password</h1>") || !ae.pageShows(page, "current_password") {
		t.Fatalf("the change-password page: %d\n%s", resp.StatusCode, page)
	}
}
