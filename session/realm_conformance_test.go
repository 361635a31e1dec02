package session

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/convex-auth/caddy-convex-auth/internal/redistest"
)

// realmBackend returns a store of realm on one backend shared by every call
// in a test: two calls with one realm are the deliberate sharing (or the
// same store), calls with two realms are two sites.
type realmBackend func(t *testing.T, realm string, opts Options) Store

var realmCounter atomic.Int64

// uniqueRealms names two realms no other test uses, so default prefixes on a
// shared server do not meet.
func uniqueRealms() (a, b string) {
	n := realmCounter.Add(1)
	return fmt.Sprintf("https://a%d.example convex", n), fmt.Sprintf("https://b%d.example convex", n)
}

// runRealmConformance checks that a record of one realm is no record in
// another, whatever the backend shares, and that one realm is shared.
func runRealmConformance(t *testing.T, backend realmBackend) {
	ctx := context.Background()
	setup := func(t *testing.T) (a, b, a2 Store, clock *fakeClock) {
		clock = newFakeClock()
		opts := Options{SessionTTL: confSessionTTL, IdleTTL: confIdleTTL, TouchInterval: confTouchInterval, Now: clock.Now}
		ra, rb := uniqueRealms()
		return backend(t, ra, opts), backend(t, rb, opts), backend(t, ra, opts), clock
	}
	notFound := func(t *testing.T, what string, err error) {
		t.Helper()
		if !errors.Is(err, ErrNotFound) || IsUnavailable(err) {
			t.Fatalf("%s in another realm: %v; want ErrNotFound, never unavailable", what, err)
		}
	}

	t.Run("a device is known only in its realm", func(t *testing.T) {
		a, b, a2, _ := setup(t)
		tok, err := NewDeviceToken()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.(Devices).RememberDevice(ctx, "user|shared", tok, time.Hour); err != nil {
			t.Fatal(err)
		}
		if ok, err := b.(Devices).KnownDevice(ctx, "user|shared", tok); err != nil || ok {
			t.Fatalf("KnownDevice in another realm = %v, %v; want false", ok, err)
		}
		if err := b.(Devices).ForgetDevices(ctx, "user|shared"); err != nil {
			t.Fatal(err)
		}
		if ok, err := a2.(Devices).KnownDevice(ctx, "user|shared", tok); err != nil || !ok {
			t.Fatalf("KnownDevice in its own realm after another realm forgot = %v, %v; want true", ok, err)
		}
	})

	t.Run("a session is found only in its realm", func(t *testing.T) {
		a, b, a2, clock := setup(t)
		tok, sess, err := a.Create(ctx, NewSession{UserID: "user|shared", Provider: "github", Profile: testProfile()})
		if err != nil {
			t.Fatal(err)
		}
		clock.Advance(2 * confTouchInterval)
		_, err = b.Lookup(ctx, tok)
		notFound(t, "Lookup", err)
		notFound(t, "DeleteByID", b.DeleteByID(ctx, "user|shared", sess.ID))
		if n, err := b.DeleteUser(ctx, "user|shared", ""); err != nil || n != 0 {
			t.Fatalf("DeleteUser in another realm = %d, %v; want 0, nil", n, err)
		}
		if l, err := b.List(ctx, "user|shared"); err != nil || len(l) != 0 {
			t.Fatalf("List in another realm = %d sessions, %v; want none", len(l), err)
		}
		if err := b.Delete(ctx, tok); err != nil {
			t.Fatalf("Delete in another realm: %v", err)
		}
		got, err := a2.Lookup(ctx, tok)
		if err != nil {
			t.Fatalf("the session is gone from its own realm after another realm's calls: %v", err)
		}
		if got.ID != sess.ID || got.UserID != "user|shared" {
			t.Fatalf("own realm found %+v; want session %s", got, sess.ID)
		}
		if l, err := a2.List(ctx, "user|shared"); err != nil || len(l) != 1 {
			t.Fatalf("List in its own realm = %d sessions, %v; want 1", len(l), err)
		}
		// The same user ID in the other realm is another person.
		tokB, _, err := b.Create(ctx, NewSession{UserID: "user|shared"})
		if err != nil {
			t.Fatal(err)
		}
		if n, err := a.DeleteUser(ctx, "user|shared", ""); err != nil || n != 1 {
			t.Fatalf("DeleteUser in realm A = %d, %v; want its one session", n, err)
		}
		if _, err := b.Lookup(ctx, tokB); err != nil {
			t.Fatalf("realm A's revoke-all ended realm B's session: %v", err)
		}
	})

	t.Run("users, accounts, single-use values and counters stay in their realm", func(t *testing.T) {
		sa, sb, sa2, _ := setup(t)
		a, b, a2 := sa.(UserStore), sb.(UserStore), sa2.(UserStore)
		profile := Profile{Email: "ada@example.com", EmailVerified: true, Name: "Ada"}
		ua, err := a.CreateUser(ctx, NewUser{Profile: profile})
		if err != nil {
			t.Fatal(err)
		}
		_, err = b.GetUser(ctx, ua.ID)
		notFound(t, "GetUser", err)
		_, err = b.UserByEmail(ctx, "ada@example.com")
		notFound(t, "UserByEmail", err)
		if err := b.UpdateUser(ctx, &User{ID: ua.ID, Profile: Profile{Name: "Mallory"}}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("UpdateUser in another realm: %v; want ErrNotFound", err)
		}
		ub, err := b.CreateUser(ctx, NewUser{Profile: profile})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := b.UserByEmail(ctx, "ada@example.com"); err != nil || got.ID != ub.ID {
			t.Fatalf("realm B's UserByEmail = %v, %v; want its own user %s", got, err, ub.ID)
		}
		if got, err := a2.UserByEmail(ctx, "ada@example.com"); err != nil || got.ID != ua.ID || got.Profile.Name != "Ada" {
			t.Fatalf("realm A's UserByEmail = %+v, %v; want its own user %s, unchanged", got, err, ua.ID)
		}

		if err := a.CreateAccount(ctx, Account{Provider: "github", ProviderAccountID: "42", UserID: ua.ID}); err != nil {
			t.Fatal(err)
		}
		_, err = b.GetAccount(ctx, "github", "42")
		notFound(t, "GetAccount", err)
		if err := b.CreateAccount(ctx, Account{Provider: "github", ProviderAccountID: "42", UserID: ub.ID}); err != nil {
			t.Fatalf("realm B cannot bind an account realm A holds: %v", err)
		}
		if acct, err := a2.GetAccount(ctx, "github", "42"); err != nil || acct.UserID != ua.ID {
			t.Fatalf("realm A's account = %+v, %v; want bound to %s", acct, err, ua.ID)
		}

		// Another realm neither lists, unbinds nor purges realm A's.
		if l, err := b.AccountsOf(ctx, ua.ID); err != nil || len(l) != 0 {
			t.Fatalf("realm B's AccountsOf(realm A's user) = %v, %v; want none", l, err)
		}
		if l, err := b.AccountsOf(ctx, ub.ID); err != nil || len(l) != 1 || l[0].UserID != ub.ID {
			t.Fatalf("realm B's AccountsOf(its user) = %v, %v; want its one account", l, err)
		}
		notFound(t, "PurgeUser", b.PurgeUser(ctx, ua.ID))
		notFound(t, "TouchUser", b.TouchUser(ctx, ua.ID, time.Minute))
		if err := b.DeleteAccount(ctx, "github", "42"); err != nil {
			t.Fatalf("realm B's DeleteAccount of its own account: %v", err)
		}
		if acct, err := a2.GetAccount(ctx, "github", "42"); err != nil || acct.UserID != ua.ID {
			t.Fatalf("realm B's DeleteAccount reached realm A's account: %+v, %v", acct, err)
		}
		if l, err := a2.AccountsOf(ctx, ua.ID); err != nil || len(l) != 1 {
			t.Fatalf("realm A's AccountsOf = %v, %v; want its one account", l, err)
		}
		if err := b.PurgeUser(ctx, ub.ID); err != nil {
			t.Fatal(err)
		}
		if u, err := a2.UserByEmail(ctx, "ada@example.com"); err != nil || u.ID != ua.ID {
			t.Fatalf("realm B's purge reached realm A's user: %v, %v", u, err)
		}

		if err := a.PutOnce(ctx, "link-secret", []byte("for-a"), time.Minute); err != nil {
			t.Fatal(err)
		}
		_, err = b.PeekOnce(ctx, "link-secret")
		notFound(t, "PeekOnce", err)
		_, err = b.TakeOnce(ctx, "link-secret")
		notFound(t, "TakeOnce", err)
		if v, err := a2.TakeOnce(ctx, "link-secret"); err != nil || string(v) != "for-a" {
			t.Fatalf("realm A's TakeOnce = %q, %v; want its value", v, err)
		}

		for range 2 {
			if _, err := a.RateHit(ctx, "ip:192.0.2.1", 1, time.Minute); err != nil {
				t.Fatal(err)
			}
		}
		if ok, err := b.RateHit(ctx, "ip:192.0.2.1", 1, time.Minute); err != nil || !ok {
			t.Fatalf("realm B's first hit = %v, %v; want allowed: realm A's counter leaked", ok, err)
		}
		if ok, err := a2.RateHit(ctx, "ip:192.0.2.1", 1, time.Minute); err != nil || ok {
			t.Fatalf("realm A's third hit = %v, %v; want refused", ok, err)
		}

		one := Rate{Events: 1, Per: time.Minute}
		if ok, _, err := a.(Limiter).Allow(ctx, "oauth_start:192.0.2.1", one); err != nil || !ok {
			t.Fatalf("realm A's first start = %v, %v; want allowed", ok, err)
		}
		if ok, _, err := b.(Limiter).Allow(ctx, "oauth_start:192.0.2.1", one); err != nil || !ok {
			t.Fatalf("realm B's first start = %v, %v; want allowed: realm A's limiter leaked", ok, err)
		}
		if ok, _, err := a2.(Limiter).Allow(ctx, "oauth_start:192.0.2.1", one); err != nil || ok {
			t.Fatalf("realm A's second start = %v, %v; want refused: one realm shares its limits", ok, err)
		}
	})
}

// memoryRealms pools in-process stores per realm within a test, as the
// gateway pools them per realm.
func memoryRealms() realmBackend {
	type key struct {
		t     *testing.T
		realm string
	}
	pool := map[key]*MemoryStore{}
	return func(t *testing.T, realm string, opts Options) Store {
		k := key{t, realm}
		if m := pool[k]; m != nil {
			return m
		}
		opts.Realm = realm
		m := NewMemoryStore(opts)
		t.Cleanup(func() { _ = m.Close() })
		pool[k] = m
		return m
	}
}

func TestMemoryRealmConformance(t *testing.T) {
	runRealmConformance(t, memoryRealms())
}

// redisRealms builds stores on one server: with prefix "" each realm has
// its default prefix; with a prefix, realms share every key name and only
// the records tell them apart.
func redisRealms(addr, prefix string, cacheSize int) realmBackend {
	return func(t *testing.T, realm string, opts Options) Store {
		opts.Realm = realm
		return newTestRedisStore(t, addr, false, prefix, cacheSize, opts)
	}
}

func TestRedisRealmConformance(t *testing.T) {
	srv := redistest.StartServer(t)
	t.Run("default prefix", func(t *testing.T) { runRealmConformance(t, redisRealms(srv.Addr, "", 0)) })
	t.Run("shared prefix", func(t *testing.T) { runRealmConformance(t, redisRealms(srv.Addr, uniquePrefix(), -1)) })
	t.Run("shared prefix, cache", func(t *testing.T) { runRealmConformance(t, redisRealms(srv.Addr, uniquePrefix(), 0)) })
}

func TestRedisDefaultPrefixNamesTheRealm(t *testing.T) {
	srv := redistest.StartServer(t)
	realm, other := uniqueRealms()
	s := newTestRedisStore(t, srv.Addr, false, "", -1, Options{Realm: realm})
	if _, _, err := s.Create(context.Background(), NewSession{UserID: "u"}); err != nil {
		t.Fatal(err)
	}
	want := DefaultKeyPrefix + RealmTag(realm) + ":"
	if len(want) > maxKeyPrefixBytes {
		t.Fatalf("default prefix %q is over the %d-byte key_prefix limit", want, maxKeyPrefixBytes)
	}
	keys := newTestClient(t, srv.Addr, false).Keys(context.Background(), DefaultKeyPrefix+"*").Val()
	if len(keys) != 2 {
		t.Fatalf("keys %v; want a session and its index", keys)
	}
	for _, k := range keys {
		if k[:len(want)] != want {
			t.Fatalf("key %q does not start with the realm's prefix %q", k, want)
		}
	}
	if DefaultKeyPrefixFor(other) == want {
		t.Fatal("two realms have one default prefix")
	}
}

// A session stored before realms (format version '1', no tag) belongs to no
// realm: not found, never an error.
func TestRedisRecordWithoutRealmIsForeign(t *testing.T) {
	srv := redistest.StartServer(t)
	s := newTestRedisStore(t, srv.Addr, false, uniquePrefix(), -1, Options{Realm: "r"})
	ctx := context.Background()
	tok, sess, key, inspect := storedSession(t, s, srv.Addr)
	raw := inspect.Get(ctx, key).Val()
	legacy := "1" + raw[1:len(raw)-realmTagLen]
	if err := inspect.Set(ctx, key, legacy, time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lookup(ctx, tok); !errors.Is(err, ErrNotFound) || IsUnavailable(err) {
		t.Fatalf("pre-realm record: %v; want ErrNotFound", err)
	}
	if err := s.DeleteByID(ctx, "u", sess.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("DeleteByID of a pre-realm record: %v; want ErrNotFound", err)
	}
	if inspect.Get(ctx, key).Val() != legacy {
		t.Fatal("a lookup or delete in a realm changed a record of none")
	}
}
