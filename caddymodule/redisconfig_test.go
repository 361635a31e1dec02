package caddymodule

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/convex-auth/caddy-convex-auth/internal/redistest"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// TestRedisConfigParity: every session.RedisConfig field is in the module's
// RedisConfig under the same name, with a JSON key, its own doc comment
// naming its default, a Caddyfile subdirective of the same name, and a
// mapping into session.RedisConfig.
func TestRedisConfigParity(t *testing.T) {
	st := reflect.TypeFor[session.RedisConfig]()
	ct := reflect.TypeFor[RedisConfig]()
	docs := redisConfigDocs(t)
	var filled RedisConfig
	fv := reflect.ValueOf(&filled).Elem()
	itoa := strconv.Itoa
	var caddyfileLines []string
	for i := range st.NumField() {
		sf := st.Field(i)
		cf, ok := ct.FieldByName(sf.Name)
		if !ok {
			t.Errorf("session.RedisConfig.%s has no field in caddymodule.RedisConfig", sf.Name)
			continue
		}
		key, _, _ := strings.Cut(cf.Tag.Get("json"), ",")
		if key == "" {
			t.Errorf("RedisConfig.%s has no JSON key", cf.Name)
			continue
		}
		if doc := docs[cf.Name]; !strings.Contains(doc, "Default") {
			t.Errorf("RedisConfig.%s needs its own doc comment naming its default; got %q", cf.Name, doc)
		}
		// A distinct non-zero value per field, set directly and as a
		// Caddyfile line.
		v := fv.FieldByIndex(cf.Index)
		switch {
		case cf.Type == reflect.TypeFor[caddy.Duration]():
			v.SetInt(int64(time.Duration(i+1) * time.Second))
			caddyfileLines = append(caddyfileLines, key+" "+itoa(i+1)+"s")
		case cf.Type.Kind() == reflect.String:
			v.SetString("v" + itoa(i))
			caddyfileLines = append(caddyfileLines, key+" v"+itoa(i))
		case cf.Type.Kind() == reflect.Bool:
			v.SetBool(true)
			caddyfileLines = append(caddyfileLines, key)
		case cf.Type.Kind() == reflect.Int:
			v.SetInt(int64(i + 1))
			caddyfileLines = append(caddyfileLines, key+" "+itoa(i+1))
		case cf.Type == reflect.TypeFor[[]string]():
			v.Set(reflect.ValueOf([]string{"h" + itoa(i) + ":1"}))
			caddyfileLines = append(caddyfileLines, key+" h"+itoa(i)+":1")
		default:
			t.Errorf("RedisConfig.%s: no test value for %v", cf.Name, cf.Type)
		}
	}
	if ct.NumField() != st.NumField() {
		t.Errorf("caddymodule.RedisConfig has %d fields, session.RedisConfig %d: keep them one for one", ct.NumField(), st.NumField())
	}

	// Mapping: each session field gets its module field's value.
	mapped := reflect.ValueOf(filled.toSession())
	for i := range st.NumField() {
		sf := st.Field(i)
		got := mapped.Field(i)
		want := fv.FieldByName(sf.Name)
		if !want.IsValid() {
			continue
		}
		if want.Type() == reflect.TypeFor[caddy.Duration]() {
			want = reflect.ValueOf(time.Duration(want.Int()))
		}
		if !reflect.DeepEqual(got.Interface(), want.Interface()) {
			t.Errorf("session.RedisConfig.%s = %v after mapping; want %v", sf.Name, got, want)
		}
	}

	// Caddyfile: every field has a subdirective named as its JSON key.
	input := "redis {\n" + strings.Join(caddyfileLines, "\n") + "\n}"
	d := caddyfile.NewTestDispenser(input)
	d.Next()
	var parsed RedisConfig
	if err := parsed.unmarshalCaddyfile(d); err != nil {
		t.Fatalf("parsing every redis option:\n%s\n%v", input, err)
	}
	if !reflect.DeepEqual(parsed, filled) {
		t.Errorf("Caddyfile with every option:\n%s\nparsed as %+v\nwant %+v", input, parsed, filled)
	}
}

// redisConfigDocs reads the doc comment of each RedisConfig field from
// store.go.
func redisConfigDocs(t *testing.T) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "store.go", nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]string{}
	ast.Inspect(f, func(n ast.Node) bool {
		ts, ok := n.(*ast.TypeSpec)
		if !ok || ts.Name.Name != "RedisConfig" {
			return true
		}
		for _, field := range ts.Type.(*ast.StructType).Fields.List {
			if len(field.Names) != 1 {
				for _, name := range field.Names {
					docs[name.Name] = "" // shares one comment
				}
				continue
			}
			docs[field.Names[0].Name] = field.Doc.Text()
		}
		return false
	})
	return docs
}

func TestWarnEvictionPolicy(t *testing.T) {
	srv := redistest.StartServer(t, "--maxmemory-policy", "allkeys-lru")
	st, err := session.NewRedisStore(session.RedisConfig{URL: srv.URL()}, session.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	core, logs := observer.New(zap.DebugLevel)
	warnEvictionPolicy(st, zap.New(core))
	warned := logs.FilterLevelExact(zap.WarnLevel).FilterField(zap.String("maxmemory_policy", "allkeys-lru")).All()
	if len(warned) != 1 || !strings.Contains(warned[0].Message, "noeviction") {
		t.Fatalf("allkeys-lru: logs %v; want one warning naming the policy and the fix", logs.All())
	}
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer admin.Close()
	if err := admin.ConfigSet(context.Background(), "maxmemory-policy", "volatile-lru").Err(); err != nil {
		t.Fatal(err)
	}
	core, logs = observer.New(zap.DebugLevel)
	warnEvictionPolicy(st, zap.New(core))
	if n := logs.Len(); n != 0 {
		t.Fatalf("volatile-lru: logs %v; want none", logs.All())
	}
}
