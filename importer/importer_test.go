package importer

import (
	"archive/zip"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/convex-auth/caddy-convex-auth/passwordhash"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// Hashes of the shapes the sources write (real ones are in
// passwordhash/testdata and e2e/import_test.go).
const (
	scryptHash = "0ecef5c22db5ab382cfc774d545aa27e:878a941cecdde68e64fba82460437979da1649c1052009da34c6fb1f6db4d083be2b06096cb8a81bf31527bfcfe6391418a747afdeff1cec1cf13a17df192615"
	argonHash  = "$argon2id$v=19$m=16384,t=3,p=1$HoS12Whixy0rgBaL+Ax5zg$/kuZofurj0WwHA76X57jIqCjncVRLTf47w+7BHpnUAk"
	bcryptHash = "$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"
)

func lines(rows ...string) *fstest.MapFile {
	return &fstest.MapFile{Data: []byte(strings.Join(rows, "\n") + "\n")}
}

func read(t *testing.T, fsys fstest.MapFS, opts Options) *Result {
	t.Helper()
	res, err := Read(fsys, opts)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func userByID(t *testing.T, res *Result, id string) User {
	t.Helper()
	for _, u := range res.Users {
		if u.ID == id {
			return u
		}
	}
	t.Fatalf("user %s not read; users %+v, problems %+v", id, res.Users, res.Problems)
	return User{}
}

func tagged(t *testing.T, scheme, hash string) string {
	t.Helper()
	s, err := passwordhash.Tag(scheme, hash)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConvexAuth0(t *testing.T) {
	fsys := fstest.MapFS{
		"README.md":               {Data: []byte("# Welcome to your Convex snapshot export!")},
		"_tables/documents.jsonl": lines(`{"name":"users","id":10001}`),
		"users/documents.jsonl": lines(
			`{"_creationTime":1733000000000.5,"_id":"jd7f3k2m9x8q1w5e4r6t0y2u3i9o8p7a","email":"Ada@Example.com","emailVerificationTime":1733000001000.0,"name":"Ada","image":"https://example.com/ada.png"}`,
			`{"_creationTime":1733000002000.0,"_id":"jd7bbbbbbbbbbbbbbbbbbbbbbbbbbbbb","email":"grace@example.com"}`,
			`{"_creationTime":1733000003000.0,"_id":"jd7ccccccccccccccccccccccccccccc","isAnonymous":true}`,
		),
		"authAccounts/documents.jsonl": lines(
			`{"_creationTime":1733000000000.0,"_id":"a1","userId":"jd7f3k2m9x8q1w5e4r6t0y2u3i9o8p7a","provider":"password","providerAccountId":"Ada@Example.com","secret":"`+scryptHash+`"}`,
			`{"_creationTime":1733000000000.0,"_id":"a2","userId":"jd7f3k2m9x8q1w5e4r6t0y2u3i9o8p7a","provider":"github","providerAccountId":"583231"}`,
			`{"_creationTime":1733000000000.0,"_id":"a3","userId":"jd7bbbbbbbbbbbbbbbbbbbbbbbbbbbbb","provider":"resend","providerAccountId":"grace@example.com","emailVerified":"grace@example.com"}`,
			`{"_creationTime":1733000000000.0,"_id":"a4","userId":"jd7ccccccccccccccccccccccccccccc","provider":"anonymous","providerAccountId":"jd7ccccccccccccccccccccccccccccc"}`,
		),
		"authSessions/documents.jsonl": lines(`{"_id":"s1","userId":"jd7f3k2m9x8q1w5e4r6t0y2u3i9o8p7a","expirationTime":1.0}`),
	}
	res := read(t, fsys, Options{Source: ConvexAuth, Map: map[string]string{"resend": "email"}})
	if len(res.Problems) != 0 || len(res.Users) != 2 {
		t.Fatalf("users %+v problems %+v; want two users, no problem", res.Users, res.Problems)
	}
	ada := userByID(t, res, "jd7f3k2m9x8q1w5e4r6t0y2u3i9o8p7a")
	want := session.Profile{Email: "ada@example.com", EmailVerified: true, Name: "Ada", Picture: "https://example.com/ada.png"}
	if ada.Profile != want || !ada.CreatedAt.Equal(time.UnixMilli(1733000000000)) || ada.Pos != (Pos{"users/documents.jsonl", 1}) {
		t.Fatalf("ada %+v", ada)
	}
	if len(ada.Accounts) != 2 || ada.Accounts[1] != (session.Account{Provider: "password", ProviderAccountID: "ada@example.com", Secret: tagged(t, passwordhash.ScryptNFKC, scryptHash)}) ||
		ada.Accounts[0] != (session.Account{Provider: "github", ProviderAccountID: "583231"}) {
		t.Fatalf("ada's accounts %+v", ada.Accounts)
	}
	// The email account verified grace's address; resend is the gateway's email.
	grace := userByID(t, res, "jd7bbbbbbbbbbbbbbbbbbbbbbbbbbbbb")
	if !grace.Profile.EmailVerified || len(grace.Accounts) != 1 || grace.Accounts[0].Provider != "email" {
		t.Fatalf("grace %+v", grace)
	}
	if res.Accounts["password"] != 1 || res.Accounts["github"] != 1 || res.Accounts["email"] != 1 {
		t.Fatalf("account counts %v", res.Accounts)
	}
	if len(res.Notes) != 1 || !strings.Contains(res.Notes[0], "1 anonymous users") {
		t.Fatalf("notes %q", res.Notes)
	}
}

func TestConvexAuth2Components(t *testing.T) {
	const alice, bob, guest = "k571nb8m4jcvvvz7x5qj8hqd9n7g8e3a", "k572bbbbbbbbbbbbbbbbbbbbbbbbbbbb", "k573cccccccccccccccccccccccccccc"
	fsys := fstest.MapFS{
		"users/documents.jsonl": lines(
			`{"_creationTime":1763000000000.0,"_id":"`+alice+`","name":"Alice"}`,
			`{"_creationTime":1763000000000.0,"_id":"`+bob+`","name":"Bob"}`,
			`{"_creationTime":1763000000000.0,"_id":"`+guest+`"}`,
		),
		"_components/auth/sessions/documents.jsonl":            lines(`{"_id":"s1","userId":"` + alice + `","component":"authPassword"}`),
		"_components/authEmail/verifiedEmails/documents.jsonl": lines(`{"_id":"e1","email":"Alice@Example.com","normalizedEmail":"alice@example.com","userId":"`+alice+`","isPrimary":true}`, `{"_id":"e2","email":"alice@work.example","normalizedEmail":"alice@work.example","userId":"`+alice+`","isPrimary":false}`),
		"_components/authPassword/passwords/documents.jsonl":   lines(`{"_id":"p1","userId":"` + alice + `","passwordHashPHC":"` + argonHash + `"}`),
		"_components/authGithub/accounts/documents.jsonl":      lines(`{"_id":"g1","providerAccountId":"583231","userId":"` + bob + `"}`),
		"_components/authAcme/accounts/documents.jsonl":        lines(`{"_id":"o1","providerAccountId":"acme|42","userId":"` + bob + `"}`),
		"_components/authAnonymous/accounts/documents.jsonl":   lines(`{"_id":"n1","userId":"` + guest + `"}`),
		"_components/authPasskey/passkeys/documents.jsonl":     lines(`{"_id":"k1","userId":"` + bob + `","credentialId":{"$bytes":"AAAA"},"publicKey":{"$bytes":"AAAA"},"counter":0}`),
	}
	res := read(t, fsys, Options{Source: ConvexAuth, Map: map[string]string{"acme": "oidc-acme"}})
	if len(res.Problems) != 0 || len(res.Users) != 2 {
		t.Fatalf("users %+v problems %+v", res.Users, res.Problems)
	}
	a := userByID(t, res, alice)
	if a.Profile != (session.Profile{Email: "alice@example.com", EmailVerified: true, Name: "Alice"}) ||
		len(a.Accounts) != 1 || a.Accounts[0] != (session.Account{Provider: "password", ProviderAccountID: "alice@example.com", Secret: tagged(t, passwordhash.Argon2idNFC, argonHash)}) {
		t.Fatalf("alice %+v", a)
	}
	b := userByID(t, res, bob)
	if len(b.Accounts) != 2 || b.Accounts[0].Provider != "github" || b.Accounts[1] != (session.Account{Provider: "oidc-acme", ProviderAccountID: "acme|42"}) {
		t.Fatalf("bob's accounts %+v", b.Accounts)
	}
	notes := strings.Join(res.Notes, "\n")
	for _, want := range []string{"1 anonymous users", "1 passkeys", "1 secondary emails"} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes %q; want %q", notes, want)
		}
	}
}

func TestBetterAuthConvexComponentWithSubFrom(t *testing.T) {
	fsys := fstest.MapFS{
		"users/documents.jsonl": lines(`{"_id":"jd7app00000000000000000000000001","name":"app's own row"}`),
		"_components/betterAuth/user/documents.jsonl": lines(
			`{"_creationTime":1.0,"_id":"kx7ba000000000000000000000000001","name":"Ann","email":"ann@example.com","emailVerified":true,"image":null,"createdAt":1750000000000,"updatedAt":1750000000000,"userId":"jd7app00000000000000000000000001"}`,
			`{"_creationTime":1.0,"_id":"kx7ba000000000000000000000000002","name":"Ben","email":"ben@example.com","emailVerified":false,"createdAt":1750000000000,"updatedAt":1750000000000}`,
		),
		"_components/betterAuth/account/documents.jsonl": lines(
			`{"_id":"ac1","accountId":"kx7ba000000000000000000000000001","providerId":"credential","userId":"kx7ba000000000000000000000000001","password":"`+scryptHash+`","createdAt":1,"updatedAt":1}`,
			`{"_id":"ac2","accountId":"98765","providerId":"github","userId":"kx7ba000000000000000000000000001","accessToken":"gho_x","createdAt":1,"updatedAt":1}`,
		),
	}
	res := read(t, fsys, Options{Source: BetterAuth})
	if len(res.Users) != 2 || len(res.Problems) != 0 {
		t.Fatalf("users %+v problems %+v", res.Users, res.Problems)
	}
	ann := userByID(t, res, "kx7ba000000000000000000000000001")
	if !ann.CreatedAt.Equal(time.UnixMilli(1750000000000)) || len(ann.Accounts) != 2 ||
		ann.Accounts[1] != (session.Account{Provider: "password", ProviderAccountID: "ann@example.com", Secret: tagged(t, passwordhash.ScryptNFKC, scryptHash)}) {
		t.Fatalf("ann %+v", ann)
	}

	// --sub-from userId: the app's ID is the sub; a user without one is
	// reported at its line.
	res = read(t, fsys, Options{Source: BetterAuth, SubFrom: "userId"})
	if len(res.Users) != 1 || res.Users[0].ID != "jd7app00000000000000000000000001" || len(res.Users[0].Accounts) != 2 {
		t.Fatalf("with --sub-from: users %+v", res.Users)
	}
	if len(res.Problems) != 1 {
		t.Fatalf("problems %+v; want one", res.Problems)
	}
	if p := problemAt(t, res, "_components/betterAuth/user/documents.jsonl", 2); !strings.Contains(p.Message, "has no userId") {
		t.Fatalf("problem %+v", p)
	}
}

func problemAt(t *testing.T, res *Result, file string, line int) Problem {
	t.Helper()
	for _, p := range res.Problems {
		if p.File == file && p.Line == line {
			return p
		}
	}
	t.Fatalf("no problem at %s:%d; problems %+v", file, line, res.Problems)
	return Problem{}
}

func TestBetterAuthFiles(t *testing.T) {
	fsys := fstest.MapFS{
		"user.json": {Data: []byte(`[
  {
    "id": "hN3kq8vYzB2mT5xW9pL4rC7dF1gJ6sA0",
    "name": "Cleo",
    "email": "cleo@example.com",
    "emailVerified": true,
    "createdAt": "2025-06-01T10:00:00.000Z"
  },
  {
    "id": "Zq8vYzB2mT5xW9pL4rC7dF1gJ6sA0hN3",
    "name": "Dee",
    "email": "dee@example.com",
    "emailVerified": true
  }
]`)},
		"account.jsonl": lines(
			`{"id":"x1","accountId":"hN3kq8vYzB2mT5xW9pL4rC7dF1gJ6sA0","providerId":"credential","userId":"hN3kq8vYzB2mT5xW9pL4rC7dF1gJ6sA0","password":"`+scryptHash+`"}`,
			`{"id":"x2","accountId":"Zq8vYzB2mT5xW9pL4rC7dF1gJ6sA0hN3","providerId":"credential","userId":"Zq8vYzB2mT5xW9pL4rC7dF1gJ6sA0hN3","password":"`+bcryptHash+`"}`,
		),
	}
	res := read(t, fsys, Options{Source: BetterAuth})
	cleo := userByID(t, res, "hN3kq8vYzB2mT5xW9pL4rC7dF1gJ6sA0")
	if cleo.Pos != (Pos{"user.json", 2}) || !cleo.CreatedAt.Equal(time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC)) || len(cleo.Accounts) != 1 {
		t.Fatalf("cleo %+v", cleo)
	}
	// A bcrypt hash (Better Auth with its own hasher) is an unknown scheme:
	// reported at its line, and Dee is left out whole.
	p := problemAt(t, res, "account.jsonl", 2)
	if p.UserID != "Zq8vYzB2mT5xW9pL4rC7dF1gJ6sA0hN3" || !strings.Contains(p.Message, "scheme") || !strings.Contains(p.Message, "bcrypt") || strings.Contains(p.Message, bcryptHash) {
		t.Fatalf("problem %+v", p)
	}
	if len(res.Users) != 1 {
		t.Fatalf("users %+v; want Dee left out", res.Users)
	}
}

func TestAuthJS(t *testing.T) {
	fsys := fstest.MapFS{
		"users/documents.jsonl": lines(
			`{"_creationTime":1700000000000.0,"_id":"j571aaaaaaaaaaaaaaaaaaaaaaaaaaaa","email":"eve@example.com","emailVerified":1700000000500,"name":"Eve","image":"https://avatars.githubusercontent.com/u/1"}`,
			`{"_creationTime":1700000000000.0,"_id":"j572aaaaaaaaaaaaaaaaaaaaaaaaaaaa","email":"fay@example.com"}`,
		),
		"accounts/documents.jsonl": lines(
			`{"_id":"c1","userId":"j571aaaaaaaaaaaaaaaaaaaaaaaaaaaa","type":"oauth","provider":"github","providerAccountId":"1","access_token":"gho_x"}`,
			`{"_id":"c2","userId":"j571aaaaaaaaaaaaaaaaaaaaaaaaaaaa","type":"oidc","provider":"google","providerAccountId":"1076"}`,
			`{"_id":"c3","userId":"j572aaaaaaaaaaaaaaaaaaaaaaaaaaaa","type":"email","provider":"resend","providerAccountId":"Fay@example.com"}`,
			`{"_id":"c4","userId":"j572aaaaaaaaaaaaaaaaaaaaaaaaaaaa","type":"webauthn","provider":"passkey","providerAccountId":"cred"}`,
		),
	}
	res := read(t, fsys, Options{Source: AuthJS, Map: map[string]string{"resend": "email", "google": "oidc"}})
	if len(res.Users) != 2 || len(res.Problems) != 0 {
		t.Fatalf("users %+v problems %+v", res.Users, res.Problems)
	}
	eve := userByID(t, res, "j571aaaaaaaaaaaaaaaaaaaaaaaaaaaa")
	if !eve.Profile.EmailVerified || len(eve.Accounts) != 2 || eve.Accounts[1] != (session.Account{Provider: "oidc", ProviderAccountID: "1076"}) {
		t.Fatalf("eve %+v", eve)
	}
	fay := userByID(t, res, "j572aaaaaaaaaaaaaaaaaaaaaaaaaaaa")
	if fay.Profile.EmailVerified || len(fay.Accounts) != 1 || fay.Accounts[0] != (session.Account{Provider: "email", ProviderAccountID: "fay@example.com"}) {
		t.Fatalf("fay %+v", fay)
	}
	if !strings.Contains(strings.Join(res.Notes, "\n"), "1 passkeys") {
		t.Fatalf("notes %q", res.Notes)
	}
}

func TestBadRowsAreReportedAndLeftOut(t *testing.T) {
	fsys := fstest.MapFS{
		"users/documents.jsonl": lines(
			`{"_id":"u1aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","email":"same@example.com","emailVerificationTime":1.0}`,
			`{"_id":"u2aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","email":"SAME@example.com"}`,
			`{"_id": "u3 truncated`,
			`{"_id":"u4|sid","email":"pipe@example.com"}`,
			`{"_id":"u5aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","email":"fine@example.com","name":42}`,
			`{"_id":"u6aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","email":"ok@example.com"}`,
			`["not","an","object"]`,
		),
		"authAccounts/documents.jsonl": lines(
			`{"_id":"a1","userId":"u6aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","provider":"password","providerAccountId":"ok@example.com","secret":"`+scryptHash+`"}`,
			`{"_id":"a2","userId":"nobody","provider":"github","providerAccountId":"9"}`,
			`{"_id":"a3","userId":"u6aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","provider":"custom-credentials","providerAccountId":"x","secret":"`+scryptHash+`"}`,
		),
	}
	res := read(t, fsys, Options{Source: ConvexAuth})
	if len(res.Users) != 0 {
		t.Fatalf("users %+v; want none: each has a bad row", res.Users)
	}
	for _, c := range []struct {
		line int
		file string
		want string
	}{
		{1, "users/documents.jsonl", "email same@example.com is also the one of the user at users/documents.jsonl:2"},
		{2, "users/documents.jsonl", "email same@example.com is also the one of the user at users/documents.jsonl:1"},
		{3, "users/documents.jsonl", "not a JSON object"},
		{4, "users/documents.jsonl", "cannot carry"},
		{5, "users/documents.jsonl", "name is not a string"},
		{7, "users/documents.jsonl", "not a JSON object"},
		{2, "authAccounts/documents.jsonl", "its user nobody is not in users/documents.jsonl"},
		{3, "authAccounts/documents.jsonl", "--map custom-credentials=password"},
	} {
		if p := problemAt(t, res, c.file, c.line); !strings.Contains(p.Message, c.want) {
			t.Errorf("%s:%d: %q; want %q", c.file, c.line, p.Message, c.want)
		}
	}
	// One problem per bad row (the dedupe adds one per user).
	if len(res.Problems) != 8 {
		t.Errorf("%d problems: %+v", len(res.Problems), res.Problems)
	}
}

func TestUnusableExports(t *testing.T) {
	for name, c := range map[string]struct {
		fsys fstest.MapFS
		opts Options
		want string
	}{
		"no users table":         {fstest.MapFS{"authAccounts/documents.jsonl": lines(`{}`)}, Options{Source: ConvexAuth}, "no users/documents.jsonl"},
		"users but no auth":      {fstest.MapFS{"users/documents.jsonl": lines(`{"_id":"x"}`)}, Options{Source: ConvexAuth}, "neither Convex Auth 0.0.x's authAccounts"},
		"no better auth":         {fstest.MapFS{"users/documents.jsonl": lines(`{"_id":"x"}`)}, Options{Source: BetterAuth}, "no Better Auth user and account tables"},
		"unknown source":         {fstest.MapFS{}, Options{Source: "clerk"}, "unknown source"},
		"authjs without account": {fstest.MapFS{"users.json": {Data: []byte(`[]`)}}, Options{Source: AuthJS}, "no accounts table"},
	} {
		if _, err := Read(c.fsys, c.opts); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want %q", name, err, c.want)
		}
	}
}

func TestParseMap(t *testing.T) {
	m, err := ParseMap([]string{"github=github", " resend = email ", "anonymous="})
	if err != nil || m["github"] != "github" || m["resend"] != "email" || m["anonymous"] != "" || len(m) != 3 {
		t.Fatalf("ParseMap = %v, %v", m, err)
	}
	for _, bad := range [][]string{{"github"}, {"=github"}, {"a=b", "a=c"}} {
		if _, err := ParseMap(bad); err == nil {
			t.Errorf("ParseMap(%q) accepted", bad)
		}
	}
}

// TestOpenAndPack: a directory `npx convex export --path` wrote into opens
// its newest snapshot; Pack keeps only the tables an import reads, and
// Read gives the same users from the packed ZIP.
func TestOpenAndPack(t *testing.T) {
	dir := t.TempDir()
	writeZip := func(name string, files map[string]string) {
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		for n, body := range files {
			w, _ := zw.Create(n)
			_, _ = w.Write([]byte(body))
		}
		_ = zw.Close()
		if err := os.WriteFile(filepath.Join(dir, name), buf.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	user := func(id string) string { return fmt.Sprintf(`{"_id":%q,"email":"%s@example.com"}`+"\n", id, id) }
	writeZip("snapshot_1733000000000000000.zip", map[string]string{"users/documents.jsonl": user("old"), "authAccounts/documents.jsonl": ""})
	writeZip("snapshot_1733999999999999999.zip", map[string]string{
		"README.md":                                          "x",
		"users/documents.jsonl":                              user("new"),
		"authAccounts/documents.jsonl":                       `{"_id":"a","userId":"new","provider":"github","providerAccountId":"1"}` + "\n",
		"messages/documents.jsonl":                           `{"_id":"m"}` + "\n",
		"_storage/documents.jsonl":                           `{"_id":"f"}` + "\n",
		"_storage/kg2abc.png":                                "\x89PNG",
		"_components/authPassword/passwords/documents.jsonl": "",
		"_components/authPassword/_components/rateLimiter/rateLimits/documents.jsonl": "",
	})
	fsys, from, closeFn, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	if filepath.Base(from) != "snapshot_1733999999999999999.zip" {
		t.Fatalf("opened %s; want the newest snapshot", from)
	}
	var packed bytes.Buffer
	if err := Pack(fsys, "", &packed); err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(packed.Bytes()), int64(packed.Len()))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
	}
	if got := strings.Join(names, " "); got != "_components/authPassword/passwords/documents.jsonl authAccounts/documents.jsonl users/documents.jsonl" {
		t.Fatalf("packed %s", got)
	}
	res, err := Read(zr, Options{Source: ConvexAuth})
	if err != nil || len(res.Users) != 1 || res.Users[0].ID != "new" || len(res.Users[0].Accounts) != 1 {
		t.Fatalf("Read(packed) = %+v, %v", res, err)
	}
	// An unpacked export opens as the directory.
	unpacked := t.TempDir()
	if err := os.MkdirAll(filepath.Join(unpacked, "users"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(unpacked, "users", "documents.jsonl"), []byte(user("u")), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, from, _, err := Open(unpacked); err != nil || from != unpacked {
		t.Fatalf("Open(unpacked) = %s, %v", from, err)
	}
}
