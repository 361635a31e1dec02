package e2e

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/convex-auth/caddy-convex-auth/internal/redistest"
)

// incumbentsDir is the Node package whose real hashing packages make the
// imported hashes (lucia, better-auth, password-hash-wasm).
const incumbentsDir = "incumbents"

// incumbentHashes runs incumbents/hashes.mjs: one hash of each password by
// the package of its source (convex-auth-0, convex-auth-2, better-auth).
func incumbentHashes(t *testing.T, passwords map[string]string) map[string]string {
	t.Helper()
	node, err := exec.LookPath("node")
	needTool(t, "node", "install Node.js 20 or later", err == nil)
	_, err = os.Stat(filepath.Join(incumbentsDir, "node_modules", "lucia"))
	needTool(t, "e2e/incumbents' packages", "run npm ci in e2e/incumbents (make test does)", err == nil)
	var args []string
	for source, pw := range passwords {
		args = append(args, source+"="+pw)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, append([]string{"hashes.mjs"}, args...)...)
	cmd.Dir = incumbentsDir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node hashes.mjs: %v", err)
	}
	hashes := make(map[string]string)
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var h struct{ Source, Hash string }
		if err := json.Unmarshal([]byte(line), &h); err != nil {
			t.Fatalf("hashes.mjs printed %q", line)
		}
		hashes[h.Source] = h.Hash
	}
	if len(hashes) != len(passwords) {
		t.Fatalf("hashes for %v; want %d sources", hashes, len(passwords))
	}
	return hashes
}

func jsonl(rows ...string) string { return strings.Join(rows, "\n") + "\n" }

func writeZip(t *testing.T, path string, files map[string]string) {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, body := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write([]byte(body))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// importReport is the part of the operator API's report the test reads.
type importReport struct {
	Read, Created, Updated, Unchanged int
	Problems                          []struct {
		File    string
		Line    int
		UserID  string
		Message string
	}
}

func runImport(t *testing.T, admin string, wantOK bool, args ...string) importReport {
	t.Helper()
	stdout, stderr, ok := runCaddyCLI(t, isolatedEnv(t.TempDir()), append([]string{"convex-auth", "users", "import", "--address", admin}, args...)...)
	if ok != wantOK {
		t.Fatalf("users import %v: ok=%v, want %v\n%s\n%s", args, ok, wantOK, stdout, stderr)
	}
	var rep importReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("users import %v printed no report: %v\n%s\n%s", args, err, stdout, stderr)
	}
	return rep
}

// tokenSub signs in with a password and returns the user ID of the session
// and the sub of the token /auth/token mints for it; status is the
// sign-in's when it is not a redirect.
func passwordSub(t *testing.T, base, email, password string) (status int, userID, sub string) {
	t.Helper()
	resp, body := postForm(t, base+"/auth/signin/password", url.Values{"intent": {"signin"}, "email": {email}, "password": {password}},
		map[string]string{"Origin": base})
	if resp.StatusCode != http.StatusSeeOther {
		return resp.StatusCode, "", body
	}
	c := sessionCookie(t, resp)
	userID, _ = whoAmI(t, base, c)
	_, tok := request(t, "GET", base+"/auth/token", withCookie(c))
	var out struct{ Token string }
	if err := json.Unmarshal([]byte(tok), &out); err != nil || strings.Count(out.Token, ".") != 2 {
		t.Fatalf("/auth/token: %s", tok)
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.Split(out.Token, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct{ Sub string }
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, userID, claims.Sub
}

// storedSecrets are the password hashes the gateway's Redis holds.
func storedSecrets(t *testing.T, rc *redis.Client) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	for _, k := range rc.Keys(ctx, "*acct:*").Val() {
		var a struct {
			P string `json:"p"`
			S string `json:"s"`
		}
		if err := json.Unmarshal([]byte(rc.Get(ctx, k).Val()), &a); err == nil && a.P == "password" {
			out = append(out, a.S)
		}
	}
	return out
}

// TestImportPasswordsCarryOver imports users whose password hashes the
// real packages made (lucia's Scrypt as Convex Auth 0.0.x uses it, Convex
// Auth 2.x's argon2id, better-auth's hashPassword) from export-shaped
// files, through `caddy convex-auth users import` against the built
// binary; they sign in with their original passwords, their tokens carry
// the original IDs, the stored hashes become argon2id, and a wrong
// password is refused. Bad rows are reported with file and line and
// written nowhere.
func TestImportPasswordsCarryOver(t *testing.T) {
	caddyBin(t)
	const (
		pw0 = "correct horse battery staple"
		pw2 = "Café ﬁ ① déjà vu" // 2.x hashes its NFC form
		pwB = "Tr0ub4dor&3 ünïcode"
	)
	hashes := incumbentHashes(t, map[string]string{"convex-auth-0": pw0, "convex-auth-2": pw2, "better-auth": pwB})

	srv := redistest.StartServer(t)
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = rc.Close() })
	port, adminPort := freePort(t), freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	admin := fmt.Sprintf("127.0.0.1:%d", adminPort)
	startCaddy(t, fmt.Sprintf(`{
	admin %s
}
%s {
	convex_auth {
		issuer %s
		redis %s
		provider password
	}
	respond "app"
}
`, admin, base, base, srv.URL()), t.TempDir(), base+"/.well-known/jwks.json")

	dir := t.TempDir()
	const (
		ada   = "jd7f3k2m9x8q1w5e4r6t0y2u3i9o8p7a" // Convex Auth 0.0.x
		bob   = "k571nb8m4jcvvvz7x5qj8hqd9n7g8e3a" // Convex Auth 2.x
		cleoA = "jd7app00000000000000000000000001" // Better Auth, the app's users._id (--sub-from userId)
	)
	// Convex Auth 0.0.x: a snapshot ZIP as npx convex export writes it,
	// with bad rows: a malformed line, a bcrypt secret, a duplicate email.
	zip0 := filepath.Join(dir, "snapshot_1733000000000000000.zip")
	writeZip(t, zip0, map[string]string{
		"README.md":               "# Welcome to your Convex snapshot export!\n",
		"_tables/documents.jsonl": jsonl(`{"name":"users","id":10001}`, `{"name":"authAccounts","id":10002}`),
		"users/documents.jsonl": jsonl(
			`{"_creationTime":1733000000000.5,"_id":"`+ada+`","email":"ada@example.com","emailVerificationTime":1733000001000.0,"name":"Ada"}`,
			`{"_id": "jd7broken`,
			`{"_creationTime":1733000000000.0,"_id":"jd7bcrypt000000000000000000000000","email":"bcrypt@example.com"}`,
			`{"_creationTime":1733000000000.0,"_id":"jd7dup1000000000000000000000000000","email":"dup@example.com"}`,
			`{"_creationTime":1733000000000.0,"_id":"jd7dup2000000000000000000000000000","email":"DUP@example.com"}`,
		),
		"users/generated_schema.jsonl": jsonl(`"uniform"`),
		"authAccounts/documents.jsonl": jsonl(
			`{"_creationTime":1733000000000.0,"_id":"a1","userId":"`+ada+`","provider":"password","providerAccountId":"ada@example.com","secret":"`+hashes["convex-auth-0"]+`"}`,
			`{"_creationTime":1733000000000.0,"_id":"a2","userId":"jd7bcrypt000000000000000000000000","provider":"password","providerAccountId":"bcrypt@example.com","secret":"$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"}`,
		),
		"_storage/documents.jsonl": jsonl(`{"_id":"kg2f","size":4}`),
		"_storage/kg2f.png":        "\x89PNG",
	})
	// Convex Auth 2.x: the component tables, in a ZIP.
	zip2 := filepath.Join(dir, "v2.zip")
	writeZip(t, zip2, map[string]string{
		"users/documents.jsonl":                                jsonl(`{"_creationTime":1763000000000.0,"_id":"` + bob + `","name":"Bob"}`),
		"_components/auth/sessions/documents.jsonl":            jsonl(`{"_id":"s1","userId":"` + bob + `","component":"authPassword"}`),
		"_components/authEmail/verifiedEmails/documents.jsonl": jsonl(`{"_id":"e1","email":"Bob@Example.com","normalizedEmail":"bob@example.com","userId":"` + bob + `","isPrimary":true}`),
		"_components/authPassword/passwords/documents.jsonl":   jsonl(`{"_id":"p1","userId":"` + bob + `","passwordHashPHC":"` + hashes["convex-auth-2"] + `"}`),
	})
	// Better Auth on @convex-dev/better-auth: the export unpacked, the
	// app's own user ID in user.userId.
	dirB := filepath.Join(dir, "better-auth-export")
	writeTree(t, dirB, map[string]string{
		"users/documents.jsonl": jsonl(`{"_id":"` + cleoA + `","name":"Cleo"}`),
		"_components/betterAuth/user/documents.jsonl": jsonl(
			`{"_creationTime":1750000000000.0,"_id":"kx7ba000000000000000000000000001","name":"Cleo","email":"cleo@example.com","emailVerified":true,"createdAt":1750000000000,"updatedAt":1750000000000,"userId":"` + cleoA + `"}`),
		"_components/betterAuth/account/documents.jsonl": jsonl(
			`{"_id":"ac1","accountId":"kx7ba000000000000000000000000001","providerId":"credential","userId":"kx7ba000000000000000000000000001","password":"`+hashes["better-auth"]+`","createdAt":1,"updatedAt":1}`,
			`{"_id":"ac2","accountId":"583231","providerId":"github","userId":"kx7ba000000000000000000000000001","createdAt":1,"updatedAt":1}`),
	})

	// The bad rows fail the command, each at its file and line; the good
	// user is imported. The export directory's newest snapshot is read.
	rep := runImport(t, admin, false, "--from", "convex-auth", dir)
	if rep.Read != 1 || rep.Created != 1 {
		t.Fatalf("Convex Auth 0.0.x import: %+v", rep)
	}
	want := map[string]string{"users/documents.jsonl:2": "not a JSON object", "authAccounts/documents.jsonl:2": "bcrypt",
		"users/documents.jsonl:4": "email dup@example.com", "users/documents.jsonl:5": "email dup@example.com"}
	for _, p := range rep.Problems {
		where := fmt.Sprintf("%s:%d", p.File, p.Line)
		if !strings.Contains(p.Message, want[where]) || want[where] == "" {
			t.Errorf("problem at %s: %q; want one saying %q", where, p.Message, want[where])
		}
		delete(want, where)
	}
	if len(want) != 0 {
		t.Errorf("problems not reported: %v", want)
	}
	for _, id := range []string{"jd7bcrypt000000000000000000000000", "jd7dup1000000000000000000000000000", "jd7dup2000000000000000000000000000"} {
		if code, _ := adminCall(t, admin, "GET", "/users/"+id); code != http.StatusNotFound {
			t.Errorf("user %s of a bad row was written: %d", id, code)
		}
	}

	// A dry run writes nothing; the import then creates, and again changes
	// nothing.
	if rep := runImport(t, admin, true, "--from", "convex-auth", "--dry-run", zip2); rep.Created != 1 {
		t.Fatalf("dry run: %+v", rep)
	}
	if code, _ := adminCall(t, admin, "GET", "/users/"+bob); code != http.StatusNotFound {
		t.Fatalf("the dry run wrote %s: %d", bob, code)
	}
	if rep := runImport(t, admin, true, "--from", "convex-auth", zip2); rep.Created != 1 {
		t.Fatalf("Convex Auth 2.x import: %+v", rep)
	}
	if rep := runImport(t, admin, true, "--from", "convex-auth", zip2); rep.Unchanged != 1 || rep.Created+rep.Updated != 0 {
		t.Fatalf("Convex Auth 2.x import again: %+v", rep)
	}
	if rep := runImport(t, admin, true, "--from", "better-auth", "--sub-from", "userId", dirB); rep.Created != 1 {
		t.Fatalf("Better Auth import: %+v", rep)
	}
	// The operator API finds the imported user by its original ID.
	code, detail := adminCall(t, admin, "GET", "/users/"+cleoA)
	if accts, _ := detail["accounts"].([]any); code != http.StatusOK || len(accts) != 2 || detail["user"].(map[string]any)["email"] != "cleo@example.com" {
		t.Fatalf("GET /users/%s = %d %v", cleoA, code, detail)
	}
	for _, s := range storedSecrets(t, rc) {
		if !strings.HasPrefix(s, "{") {
			t.Fatalf("an imported hash is stored untagged: %.20q", s)
		}
	}

	for _, u := range []struct {
		id, email, password, typed string
	}{
		{ada, "ada@example.com", pw0, pw0},
		// Typed decomposed: 2.x's NFC makes it the same password.
		{bob, "bob@example.com", pw2, strings.ReplaceAll(pw2, "é", "e\u0301")},
		{cleoA, "cleo@example.com", pwB, pwB},
	} {
		if status, _, _ := passwordSub(t, base, u.email, u.password+"x"); status != http.StatusUnauthorized {
			t.Fatalf("%s: a wrong password got %d; want 401", u.email, status)
		}
		status, userID, sub := passwordSub(t, base, u.email, u.typed)
		if status != http.StatusSeeOther || userID != u.id || sub != u.id {
			t.Fatalf("%s: sign-in %d as %q with sub %q; want the original ID %s", u.email, status, userID, sub, u.id)
		}
		if status, _, _ := passwordSub(t, base, u.email, u.password+"x"); status != http.StatusUnauthorized {
			t.Fatalf("%s: after the rehash a wrong password got %d; want 401", u.email, status)
		}
	}
	secrets := storedSecrets(t, rc)
	if len(secrets) != 3 {
		t.Fatalf("%d password accounts; want 3", len(secrets))
	}
	for _, s := range secrets {
		// The gateway's argon2id of the password in the form the source
		// normalized it to (NFKC for scrypt, NFC for Convex Auth 2.x).
		if !strings.HasPrefix(s, "{nfkc}$argon2id$v=19$m=19456,t=2,p=1$") && !strings.HasPrefix(s, "{nfc}$argon2id$v=19$m=19456,t=2,p=1$") {
			t.Fatalf("after sign-in a stored hash is %.40q; want the gateway's argon2id", s)
		}
	}
	// The rehashed passwords still work; a re-import leaves them.
	if rep := runImport(t, admin, true, "--from", "convex-auth", zip2); rep.Unchanged != 1 {
		t.Fatalf("re-import after the rehash: %+v", rep)
	}
	// Both spellings of Bob's password still work after its rehash.
	for _, typed := range []string{pw2, strings.ReplaceAll(pw2, "é", "e\u0301")} {
		if status, userID, _ := passwordSub(t, base, "bob@example.com", typed); status != http.StatusSeeOther || userID != bob {
			t.Fatalf("bob after the rehash and a re-import: %d %s", status, userID)
		}
	}
}
