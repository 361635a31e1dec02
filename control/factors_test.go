package control_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/convex-auth/caddy-convex-auth/control"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// TestFactorsListAndReset: the API lists a user's second factors (never a
// secret, a key or a code) and resets them, which is announced; an unknown
// user is 404.
func TestFactorsListAndReset(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			f := newFixture(t, b, testSecret)
			ctx := context.Background()
			u := f.user("ada@example.com")
			now := time.Now()
			if err := f.s.SetTOTP(ctx, u.ID, session.TOTP{Secret: "sealed-secret-never-shown", CreatedAt: now}); err != nil {
				t.Fatal(err)
			}
			if err := f.s.SetBackupCodes(ctx, u.ID, []string{"hash-a", "hash-b"}); err != nil {
				t.Fatal(err)
			}
			if err := f.s.AddPasskey(ctx, u.ID, session.Passkey{ID: "cred1", Name: "Laptop", Credential: []byte("public-key-blob"), BackupEligible: true, CreatedAt: now}); err != nil {
				t.Fatal(err)
			}
			status, body := f.call(http.MethodGet, "/auth/admin/users/"+u.ID+"/factors")
			raw := mustJSON(body)
			if status != http.StatusOK || body["backupCodes"] != float64(2) || body["totp"] == nil ||
				!strings.Contains(raw, `"name":"Laptop"`) || !strings.Contains(raw, `"synced":true`) {
				t.Fatalf("list: %d %s", status, raw)
			}
			for _, secret := range []string{"sealed-secret-never-shown", "hash-a", "public-key-blob", "cHVibGlj"} {
				if strings.Contains(raw, secret) {
					t.Fatalf("the list shows %q", secret)
				}
			}
			if status, _ := f.call(http.MethodGet, "/auth/admin/users/nobody/factors"); status != http.StatusNotFound {
				t.Fatalf("an unknown user: %d", status)
			}
			if status, _ := f.call(http.MethodPost, "/auth/admin/users/"+u.ID+"/factors"); status != http.StatusMethodNotAllowed {
				t.Fatalf("POST: %d", status)
			}
			status, body = f.call(http.MethodDelete, "/auth/admin/users/"+u.ID+"/factors")
			if status != http.StatusOK || body["reset"] != true {
				t.Fatalf("reset: %d %v", status, body)
			}
			got, _ := f.s.Factors(ctx, u.ID)
			if got.Any() || got.BackupCodes != 0 {
				t.Fatalf("after the reset: %+v", got)
			}
			if len(f.changes) != 1 || f.changes[0].Op != control.OpResetFactors || f.changes[0].UserID != u.ID {
				t.Fatalf("changes: %+v", f.changes)
			}
		})
	}
}
