package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/convex-auth/caddy-convex-auth/internal/redistest"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// TestSignOutDuringClusterFailover: against the built binary on a Redis
// Cluster, a sign-out while the session's master is gone is never a 503
// that leaves the session valid. The browser's cookie is cleared and the
// answer says what happened; the session is ended at once (204) or kept
// for the store (202), never served again where it was signed out, and
// ended on every instance once the store answers: after a failover, and
// when the shard stays down until after the gateway that kept the
// sign-out has restarted.
func TestSignOutDuringClusterFailover(t *testing.T) {
	// AOF, so that a node restarted with Restart keeps its sessions.
	c := redistest.StartClusterWithReplicas(t, 3, 1, "--appendonly", "yes", "--appendfsync", "always")
	const prefix = "fo:"
	storage := t.TempDir()
	appPort := freePort(t)
	redisBlock := "cluster\n\t\t\taddrs " + strings.Join(c.Addrs(), " ")
	ports := []int{freePort(t), freePort(t)}
	urls := []string{fmt.Sprintf("http://127.0.0.1:%d", ports[0]), fmt.Sprintf("http://127.0.0.1:%d", ports[1])}
	start := func(i int) *caddyProcess {
		return startCaddy(t, sharedStoreGateway(storage, ports[i], redisBlock, prefix, appPort, i == 0), t.TempDir(), urls[i]+"/.well-known/jwks.json")
	}
	a, b := start(0), start(1)
	l := newScaleLoad(t, urls)
	signIn := func(at int, user string) *http.Cookie {
		t.Helper()
		resp, _, err := l.do("POST", fmt.Sprintf("%s/signin?user=%s", urls[at], user), nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, ck := range resp.Cookies() {
			if strings.Contains(ck.Name, "convex_session") && ck.Value != "" {
				// Cached on both instances, as sessions in use are.
				for i := range urls {
					if !l.page(i, ck) {
						t.Fatalf("instance %d does not serve %s's new session", i, user)
					}
				}
				return ck
			}
		}
		t.Fatalf("sign-in of %s: %d", user, resp.StatusCode)
		return nil
	}
	// A session's keys live on the master of its user tag (the cookie's
	// first part).
	masterOf := func(ck *http.Cookie) *redistest.Server {
		ref, ok := session.RefOf(ck.Value)
		if !ok {
			t.Fatalf("cookie %q is no session token", ck.Name)
		}
		return c.MasterFor("{" + ref.UserTag + "}")
	}

	// Two users whose sessions share a master, and one elsewhere.
	var x, y, z string
	var m *redistest.Server
	seen := map[*redistest.Server]string{}
	cookies := map[string]*http.Cookie{}
	for i := 0; x == "" || z == ""; i++ {
		user := fmt.Sprintf("fo_user_%d", i)
		ck := signIn(0, user)
		cookies[user] = ck
		mu := masterOf(ck)
		switch other, ok := seen[mu]; {
		case x == "" && ok:
			x, y, m = other, user, mu
		case x != "" && mu != m:
			z = user
		default:
			seen[mu] = user
		}
	}
	x1, y1 := cookies[x], cookies[y]
	x2 := signIn(1, x) // x's second device
	unrelated := cookies[z]

	// The master dies; sign out while it is being replaced.
	failedOver := make(chan *redistest.Server, 1)
	go func() { failedOver <- c.KillMaster(m) }()
	for deadline := time.Now().Add(eventually); dialable(m.Addr); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the master was not killed")
		}
	}
	single := signOutAt(t, l, 0, y1, false, false)
	everywhere := signOutAt(t, l, 0, x1, true, true)
	t.Logf("during the failover: sign-out answered %d (204: done, 202: kept), sign-out everywhere %d (303: done, 200: kept, with a page)", single, everywhere)
	for _, ck := range []*http.Cookie{x1, y1} {
		if served, _ := l.pageStatus(0, ck); served {
			t.Fatal("the instance that signed a session out served it again")
		}
	}
	promoted := <-failedOver
	if t.Failed() {
		t.FailNow()
	}

	// Once the store answers, the sessions are ended everywhere: the other
	// instance drops its cached copies when the revocation is applied.
	for i := range urls {
		for name, ck := range map[string]*http.Cookie{"signed out": y1, "signed out everywhere": x1, "the other device's": x2} {
			if !l.eventuallyPage(i, ck, false) {
				t.Fatalf("instance %d still serves the %s session %v after the failover", i, name, eventually)
			}
		}
		if !l.eventuallyPage(i, unrelated, true) {
			t.Fatalf("instance %d lost another user's session", i)
		}
	}

	// The shard goes down with no replica left; a sign-out now is kept,
	// the gateway that kept it stops, the shard comes back, and the
	// gateway started again applies it. The other instance is stopped
	// first: it shares the storage and would apply it too.
	x3 := signIn(0, x)
	b.Stop(t)
	promoted.Stop()
	for deadline := time.Now().Add(eventually); dialable(promoted.Addr); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the shard's master did not stop")
		}
	}
	if status := signOutAt(t, l, 0, x3, false, false); status != http.StatusAccepted {
		t.Fatalf("sign-out with the shard down: %d; want 202, kept for the store", status)
	}
	a.Stop(t)
	ref, _ := session.RefOf(x3.Value)
	kept := keptRevocations(t, storage)
	if record, ok := kept[ref.SessionID]; !ok || strings.Contains(record, x3.Value) {
		t.Fatalf("Caddy's storage does not keep the sign-out (or keeps the cookie's token): %q", kept)
	}
	promoted.Restart()
	c.WaitHealthy()
	rdb := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: c.Addrs()})
	t.Cleanup(func() { _ = rdb.Close() })
	key := prefix + "{" + ref.UserTag + "}:s:" + ref.SessionID
	if !eventuallyTrue(func() bool { n, err := rdb.Exists(context.Background(), key).Result(); return err == nil && n == 1 }) {
		t.Fatal("the session was not in Redis after the shard came back: the test would prove nothing")
	}
	a = start(0)
	if !eventuallyTrue(func() bool { n, err := rdb.Exists(context.Background(), key).Result(); return err == nil && n == 0 }) {
		t.Fatalf("the restarted gateway did not end the kept sign-out's session within %v:\n%s", eventually, a.Log())
	}
	if served, _ := l.pageStatus(0, x3); served {
		t.Fatal("the restarted gateway serves a session whose sign-out it applied")
	}
	if !strings.Contains(a.Log(), "applied a sign-out kept while the session store could not be reached") {
		t.Errorf("the restarted gateway did not log the kept sign-out it applied")
	}
	if !eventuallyTrue(func() bool { _, ok := keptRevocations(t, storage)[ref.SessionID]; return !ok }) {
		t.Errorf("Caddy's storage still keeps the sign-out after it was applied")
	}
}

// signOutAt signs c out on instance i, as a fetch or as a form posted from
// a page (form), and checks what every sign-out must do whatever the store
// does: clear the cookie and answer 204/303 (done) or 202/200 (kept, with
// words saying so). It returns the status.
func signOutAt(t *testing.T, l *scaleLoad, i int, c *http.Cookie, all, form bool) int {
	t.Helper()
	body := ""
	if all {
		body = url.Values{"all": {"1"}}.Encode()
	}
	req, err := http.NewRequest("POST", l.urls[i]+"/auth/signout", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Cookie", c.Name+"="+c.Value)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	if form {
		req.Header.Set("Sec-Fetch-Mode", "navigate")
	}
	resp, page := send(t, req, nil)
	cleared := false
	for _, ck := range resp.Cookies() {
		cleared = cleared || (ck.Name == c.Name && ck.MaxAge < 0)
	}
	want := "other devices will be signed out as soon as the store answers"
	if !all {
		want = "will complete it as soon as the store answers"
	}
	switch {
	case !cleared:
		t.Errorf("sign-out answered %d without clearing the cookie", resp.StatusCode)
	case resp.StatusCode == http.StatusNoContent && !form, resp.StatusCode == http.StatusSeeOther && form:
	case resp.StatusCode == http.StatusAccepted && !form, resp.StatusCode == http.StatusOK && form:
		if !strings.Contains(page, "signed out in this browser") || !strings.Contains(page, want) {
			t.Errorf("a kept sign-out answered %d without saying so: %s", resp.StatusCode, page)
		}
	default:
		t.Errorf("sign-out answered %d: %s", resp.StatusCode, page)
	}
	return resp.StatusCode
}

// keptRevocations reads the sign-outs kept in the file_system storage at
// dir, by session ID.
func keptRevocations(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(filepath.Join(dir, "convex_auth", "revocations"), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if os.IsNotExist(err) {
			return nil // applied meanwhile
		}
		out[strings.TrimSuffix(d.Name(), ".json")] = string(b)
		return err
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return out
}

func dialable(addr string) bool {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		conn.Close()
	}
	return err == nil
}

// eventuallyTrue polls cond for at most eventually.
func eventuallyTrue(cond func() bool) bool {
	for deadline := time.Now().Add(eventually); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return false
}
