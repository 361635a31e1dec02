package mail

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	texttemplate "text/template"
)

// Kinds of mail: each is a pair of templates, <kind>.txt and <kind>.html.
const (
	SignInLink = "signin_link" // a magic link and its code
	SignInCode = "signin_code" // a code only (provider email { mode code })
	Verify     = "verify"      // email verification after a password sign-up
	Reset      = "reset"       // password reset
	// AccountChanged tells the user how they sign in changed (Changes).
	AccountChanged = "account_changed"
	// SignUpExists tells the owner of an address that someone tried to
	// sign up with it (verify_email required), and how to sign in.
	SignUpExists = "signup_exists"
	// NewDevice tells the user of a sign-in from a browser the account
	// had not seen (Device).
	NewDevice = "new_device"
)

var kinds = []string{SignInLink, SignInCode, Verify, Reset, AccountChanged, SignUpExists, NewDevice}

//go:embed templates
var builtin embed.FS

// Data is what the mail templates get.
type Data struct {
	// Kind is one of the kinds above.
	Kind string
	// SiteName names the site (email { site_name }); Site is its host.
	SiteName string
	Site     string
	// Email is the recipient.
	Email string
	// Link is the magic, verification or reset link; the sign-in page
	// for signup_exists; empty for signin_code.
	Link string
	// Code is the code to type on the page.
	Code string
	// Expires says in words how long the link and code work.
	Expires string
	// Changes are what changed (account_changed).
	Changes []Change
	// Device describes the browser of a new_device sign-in (its
	// User-Agent).
	Device string
	// AccountLink is the account page; ResetLink the page that mails a
	// password reset (account_changed, new_device, signup_exists).
	AccountLink, ResetLink string
}

// Change is one change of account_changed: Kind is method-added or
// method-removed (with Method, the method's name for people),
// password-changed, password-reset, email-verified, factor-added or
// factor-removed (with Method), or backup-codes-replaced
// (session.UserChange's kinds).
type Change struct {
	Kind   string
	Method string
}

// Templates are the parsed templates of every kind.
type Templates struct {
	text map[string]*texttemplate.Template
	html map[string]*htmltemplate.Template
}

var funcs = map[string]any{
	// dict builds a map for a sub-template: dict "Link" .Link "Label" "Sign in".
	"dict": func(kv ...any) (map[string]any, error) {
		if len(kv)%2 != 0 {
			return nil, errors.New("dict needs key and value pairs")
		}
		m := make(map[string]any, len(kv)/2)
		for i := 0; i < len(kv); i += 2 {
			k, ok := kv[i].(string)
			if !ok {
				return nil, errors.New("dict keys must be strings")
			}
			m[k] = kv[i+1]
		}
		return m, nil
	},
}

// ParseTemplates reads the built-in templates, each replaced by a file of
// the same name in dir when there is one ("": built-in only), and checks
// that every kind renders.
func ParseTemplates(dir string) (*Templates, error) {
	read := func(name string) (string, error) {
		if dir != "" {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err == nil {
				return string(b), nil
			}
			if !errors.Is(err, fs.ErrNotExist) {
				return "", fmt.Errorf("mail templates: %w", err)
			}
		}
		b, err := builtin.ReadFile("templates/" + name)
		return string(b), err
	}
	if dir != "" {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("mail templates %s is not a readable directory", dir)
		}
	}
	layout, err := read("layout.html")
	if err != nil {
		return nil, err
	}
	t := &Templates{text: map[string]*texttemplate.Template{}, html: map[string]*htmltemplate.Template{}}
	sample := Data{SiteName: "Example", Site: "example.com", Email: "ada@example.com", Link: "https://example.com/x", Code: "12345678", Expires: "15 minutes",
		Changes: []Change{{Kind: "method-added", Method: "GitHub"}, {Kind: "method-removed", Method: "Password"}, {Kind: "password-changed"}, {Kind: "password-reset"}, {Kind: "email-verified"}, {Kind: "factor-added", Method: "A passkey"}, {Kind: "factor-removed", Method: "The authenticator app"}, {Kind: "backup-codes-replaced"}},
		Device:  "Mozilla/5.0", AccountLink: "https://example.com/auth/account", ResetLink: "https://example.com/auth/password/forgot"}
	for _, kind := range kinds {
		txt, err := read(kind + ".txt")
		if err != nil {
			return nil, err
		}
		tt, err := texttemplate.New(kind).Funcs(funcs).Parse(txt)
		if err != nil {
			return nil, fmt.Errorf("mail template %s.txt: %w", kind, err)
		}
		html, err := read(kind + ".html")
		if err != nil {
			return nil, err
		}
		ht, err := htmltemplate.New(kind).Funcs(funcs).Parse(layout)
		if err == nil {
			ht, err = ht.Parse(html)
		}
		if err != nil {
			return nil, fmt.Errorf("mail template %s.html: %w", kind, err)
		}
		t.text[kind], t.html[kind] = tt, ht
		sample.Kind = kind
		if _, err := t.Render(sample); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// Render builds the mail of d.Kind.
func (t *Templates) Render(d Data) (Message, error) {
	var subject, text, html bytes.Buffer
	tt, ht := t.text[d.Kind], t.html[d.Kind]
	if tt == nil || ht == nil {
		return Message{}, fmt.Errorf("no mail template of kind %q", d.Kind)
	}
	if tt.Lookup("subject") == nil {
		return Message{}, fmt.Errorf("mail template %s.txt defines no \"subject\" template", d.Kind)
	}
	if err := tt.ExecuteTemplate(&subject, "subject", d); err != nil {
		return Message{}, fmt.Errorf("mail template %s.txt: %w", d.Kind, err)
	}
	if err := tt.Execute(&text, d); err != nil {
		return Message{}, fmt.Errorf("mail template %s.txt: %w", d.Kind, err)
	}
	if err := ht.Execute(&html, d); err != nil {
		return Message{}, fmt.Errorf("mail template %s.html: %w", d.Kind, err)
	}
	s := strings.Join(strings.Fields(subject.String()), " ")
	if s == "" {
		return Message{}, fmt.Errorf("mail template %s.txt renders an empty subject", d.Kind)
	}
	return Message{To: d.Email, Subject: s, Text: text.String(), HTML: html.String()}, nil
}
