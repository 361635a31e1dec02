package control_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/convex-auth/caddy-convex-auth/control"
	"github.com/convex-auth/caddy-convex-auth/session"
)

const scryptHash = "0ecef5c22db5ab382cfc774d545aa27e:878a941cecdde68e64fba82460437979da1649c1052009da34c6fb1f6db4d083be2b06096cb8a81bf31527bfcfe6391418a747afdeff1cec1cf13a17df192615"

// convexAuthExport is a ZIP of a Convex Auth 0.0.x export: two users with
// passwords, one with a duplicate email, and a malformed line.
func convexAuthExport(t *testing.T, extra ...string) []byte {
	t.Helper()
	files := map[string]string{
		"users/documents.jsonl": strings.Join(append([]string{
			`{"_creationTime":1733000000000.0,"_id":"jd7f3k2m9x8q1w5e4r6t0y2u3i9o8p7a","email":"ada@example.com","emailVerificationTime":1.0,"name":"Ada"}`,
			`{"_creationTime":1733000000000.0,"_id":"jd7bbbbbbbbbbbbbbbbbbbbbbbbbbbbb","email":"grace@example.com"}`,
			`{"_id": broken`,
		}, extra...), "\n") + "\n",
		"authAccounts/documents.jsonl": strings.Join([]string{
			`{"_id":"a1","userId":"jd7f3k2m9x8q1w5e4r6t0y2u3i9o8p7a","provider":"password","providerAccountId":"ada@example.com","secret":"` + scryptHash + `"}`,
			`{"_id":"a2","userId":"jd7bbbbbbbbbbbbbbbbbbbbbbbbbbbbb","provider":"github","providerAccountId":"583231"}`,
		}, "\n") + "\n",
		"_storage/kg2abc.png": "\x89PNG",
	}
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
	return buf.Bytes()
}

type importFixture struct {
	t    *testing.T
	s    store
	h    http.Handler
	logs *observer.ObservedLogs
}

func newImportFixture(t *testing.T, b backend, enabled bool) *importFixture {
	core, logs := observer.New(zap.InfoLevel)
	f := &importFixture{t: t, s: b.open(t, "test-realm"), logs: logs}
	realm := realmOf("test-realm", "https://app.example.com", f.s)
	h, err := control.NewHandler(control.Config{
		Prefix: "/convex-auth",
		Realms: func() []control.Realm { return []control.Realm{realm} },
		Logger: zap.New(core),
		Import: enabled,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.h = h
	return f
}

func (f *importFixture) post(query string, body []byte) (int, map[string]any) {
	f.t.Helper()
	req := httptest.NewRequest("POST", "http://localhost:2019/convex-auth/users/import?"+query, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/zip")
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	var out map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		f.t.Fatalf("not JSON: %d %q", rec.Code, rec.Body.String())
	}
	return rec.Code, out
}

func counts(rep map[string]any) [4]float64 {
	return [4]float64{rep["read"].(float64), rep["created"].(float64), rep["updated"].(float64), rep["unchanged"].(float64)}
}

func problems(rep map[string]any) []map[string]any {
	var out []map[string]any
	for _, p := range rep["problems"].([]any) {
		out = append(out, p.(map[string]any))
	}
	return out
}

func TestImportRoute(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			f := newImportFixture(t, b, true)
			zipped := convexAuthExport(t)

			// A dry run reports and writes nothing.
			code, rep := f.post("from=convex-auth&dry_run=true", zipped)
			if code != 200 || counts(rep) != [4]float64{2, 2, 0, 0} || rep["dryRun"] != true {
				t.Fatalf("dry run = %d %v", code, rep)
			}
			if _, err := f.s.GetUser(ctx, "jd7f3k2m9x8q1w5e4r6t0y2u3i9o8p7a"); !errors.Is(err, session.ErrNotFound) {
				t.Fatalf("a dry run wrote a user: %v", err)
			}
			ps := problems(rep)
			if len(ps) != 1 || ps[0]["file"] != "users/documents.jsonl" || ps[0]["line"] != float64(3) {
				t.Fatalf("problems %v; want the malformed line 3", ps)
			}

			code, rep = f.post("from=convex-auth", zipped)
			if code != 200 || counts(rep) != [4]float64{2, 2, 0, 0} || rep["accounts"].(map[string]any)["password"] != float64(1) {
				t.Fatalf("import = %d %v", code, rep)
			}
			u, err := f.s.GetUser(ctx, "jd7f3k2m9x8q1w5e4r6t0y2u3i9o8p7a")
			if err != nil || u.Profile.Email != "ada@example.com" || !u.Profile.EmailVerified {
				t.Fatalf("imported user %+v, %v", u, err)
			}
			if a, err := f.s.GetAccount(ctx, "password", "ada@example.com"); err != nil || !strings.HasPrefix(a.Secret, "{scrypt-nfkc}") {
				t.Fatalf("password account %+v, %v", a, err)
			}
			if strings.Contains(mustJSON(rep), scryptHash) {
				t.Fatal("the report shows a password hash")
			}

			// Again: nothing changes. With a renamed user, one updates.
			if code, rep = f.post("from=convex-auth", zipped); code != 200 || counts(rep) != [4]float64{2, 0, 0, 2} {
				t.Fatalf("re-import = %d %v", code, rep)
			}
			if code, rep = f.post("from=convex-auth", convexAuthExportRenamed(t)); code != 200 || counts(rep) != [4]float64{2, 0, 1, 1} {
				t.Fatalf("changed import = %d %v", code, rep)
			}

			// A new row whose email a gateway user holds verified is a
			// problem at its line; the rest is imported.
			holder, err := f.s.CreateUser(ctx, session.NewUser{Profile: session.Profile{Email: "taken@example.com", EmailVerified: true}})
			if err != nil {
				t.Fatal(err)
			}
			withConflict := convexAuthExport(t, `{"_id":"jd7ddddddddddddddddddddddddddddd","email":"taken@example.com","emailVerificationTime":1.0}`)
			code, rep = f.post("from=convex-auth", withConflict)
			ps = problems(rep)
			if code != 200 || len(ps) != 2 || ps[1]["line"] != float64(4) || !strings.Contains(ps[1]["message"].(string), holder.ID) {
				t.Fatalf("conflict = %d %v", code, rep)
			}
			if _, err := f.s.GetUser(ctx, "jd7ddddddddddddddddddddddddddddd"); !errors.Is(err, session.ErrNotFound) {
				t.Fatalf("the conflicting user was written: %v", err)
			}
			if len(f.logs.FilterMessage("users imported").All()) != 5 {
				t.Fatalf("audit lines: %v", f.logs.All())
			}
		})
	}
}

// convexAuthExportRenamed is convexAuthExport with Ada renamed.
func convexAuthExportRenamed(t *testing.T) []byte {
	t.Helper()
	orig := convexAuthExport(t)
	zr, err := zip.NewReader(bytes.NewReader(orig), int64(len(orig)))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, zf := range zr.File {
		rc, _ := zf.Open()
		var body bytes.Buffer
		_, _ = body.ReadFrom(rc)
		rc.Close()
		w, _ := zw.Create(zf.Name)
		_, _ = w.Write(bytes.Replace(body.Bytes(), []byte(`"name":"Ada"`), []byte(`"name":"Ada Lovelace"`), 1))
	}
	_ = zw.Close()
	return buf.Bytes()
}

func TestImportRefusals(t *testing.T) {
	b := backends(t)[0]
	f := newImportFixture(t, b, true)
	for name, c := range map[string]struct {
		query string
		body  []byte
		code  int
		want  string
	}{
		"unknown source":   {"from=clerk", convexAuthExport(t), 400, "unknown source"},
		"no source":        {"", convexAuthExport(t), 400, "unknown source"},
		"bad map":          {"from=convex-auth&map=github", convexAuthExport(t), 400, "--map"},
		"bad dry_run":      {"from=convex-auth&dry_run=maybe", convexAuthExport(t), 400, "dry_run"},
		"not a zip":        {"from=convex-auth", []byte(`{"users":[]}`), 400, "not a ZIP"},
		"no users table":   {"from=better-auth", convexAuthExport(t), 400, "no Better Auth user and account tables"},
		"users table path": {"from=convex-auth&users_table=../x", convexAuthExport(t), 400, "table name"},
	} {
		code, rep := f.post(c.query, c.body)
		if code != c.code || !strings.Contains(rep["message"].(string), c.want) {
			t.Errorf("%s: %d %v; want %d %q", name, code, rep, c.code, c.want)
		}
	}

	// The site admin API (Import off) has no import route.
	site := newImportFixture(t, b, false)
	if code, rep := site.post("from=convex-auth", convexAuthExport(t)); code != http.StatusMethodNotAllowed {
		t.Fatalf("import on a handler without Import = %d %v", code, rep)
	}

	// A store that fails stops the import with 503.
	down := newImportFixture(t, b, true)
	_ = down.s.Close()
	if code, rep := down.post("from=convex-auth", convexAuthExport(t)); code != http.StatusServiceUnavailable || !strings.Contains(rep["message"].(string), "run it again") {
		t.Fatalf("store down = %d %v", code, rep)
	}
}
