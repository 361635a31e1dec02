package caddymodule

import (
	"fmt"
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("convex_auth", parseCaddyfile)
	// After the other auth directives and before handle, respond and
	// reverse_proxy, so it guards whatever serves the site.
	httpcaddyfile.RegisterDirectiveOrder("convex_auth", httpcaddyfile.After, "forward_auth")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var handler Handler
	err := handler.UnmarshalCaddyfile(h.Dispenser)
	return &handler, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	convex_auth [<matcher>] {
//	    issuer          <url>
//	    application_id  <id>
//	    realm           <name>
//	    signing_key     file <path> | env <VARIABLE>
//	    algorithm       RS256|EdDSA|ES256
//	    key_rotation    <duration>
//	    key_publish_lead <duration>
//	    token_ttl       <duration>
//	    token_reuse     <duration>
//	    token_reuse_margin <duration>
//	    subject         user|user_session
//	    redis           <url>
//	    redis [<url>] {
//	        url                      <url>
//	        addrs                    <host:port...>
//	        master_name              <name>
//	        cluster
//	        username                 <username>
//	        password                 <password>
//	        sentinel_username        <username>
//	        sentinel_password        <password>
//	        db                       <number>
//	        tls
//	        tls_ca_file              <file>
//	        tls_server_name          <name>
//	        tls_insecure_skip_verify
//	        key_prefix               <prefix>
//	        dial_timeout             <duration>
//	        read_timeout             <duration>
//	        write_timeout            <duration>
//	        pool_size                <number>
//	        cache_size               <number>|-1
//	        cache_ttl                <duration>
//	        wait_replicas            <number>
//	        wait_timeout             <duration>
//	    }
//	    cookie {
//	        name      <name>
//	        domain    <domain>
//	        path      <path>
//	        same_site lax|strict|none
//	        forward_to_upstream
//	    }
//	    session_ttl     <duration>
//	    idle_ttl        <duration>
//	    max_sessions_per_user <n>
//	    protect         <path...> [{           # see protect_caddyfile.go; once per path
//	        allow   <criterion> <value...>
//	        deny    <criterion> <value...>
//	        max_age <duration>
//	        mfa
//	    }]
//	    claims {
//	        convex_url <url>
//	        query      <module:function>
//	        ttl        <duration>
//	        max_stale  <duration>
//	        timeout    <duration>
//	        context    <key...>
//	    }
//	    token_claims    <claim...>|none
//	    sign_in_url     <path or url>
//	    after_sign_out  <path or url>
//	    inject header   <name>
//	    inject cookie   <name>|better-auth|convex-auth|convex-auth-2
//	    trust_upstream_sign_in [<path...>]
//	    provider        <type> [<name>] { ... }  # see signin_caddyfile.go and provider_*.go
//	    after_sign_in   <path or url>
//	    link_by_email
//	    redirect_origins <origin...>
//	    sign_in_template <file>
//	    events {                     # see events.go
//	        url    <url>
//	        secret <whsec_...>
//	        ...
//	    }
//	    admin_api {
//	        secret <secret>  # at least 32 bytes, e.g. {env.CONVEX_AUTH_ADMIN_SECRET}
//	    }
//	}
//
// Unknown and repeated subdirectives are errors.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	seen := make(map[string]bool)
	once := func(name string) error {
		if seen[name] {
			return d.Errf("%s is set more than once: keep one", name)
		}
		seen[name] = true
		return nil
	}
	for d.NextBlock(0) {
		sub := d.Val()
		key := sub
		if sub == "protect" {
			key = fmt.Sprint("protect #", len(h.Protect)) // compileProtect checks paths
		}
		if sub == "inject" {
			if !d.NextArg() {
				return d.Errf("inject needs `header <name>` or `cookie <name>`")
			}
			key = "inject " + d.Val()
			d.Prev()
		}
		if sub == "provider" {
			key = fmt.Sprint("provider #", len(h.signInOptions().Providers)) // unmarshalProvider checks names
		}
		if err := once(key); err != nil {
			return err
		}
		var err error
		switch sub {
		case "issuer":
			err = oneArg(d, &h.Issuer)
		case "application_id":
			err = oneArg(d, &h.ApplicationID)
		case "realm":
			err = oneArg(d, &h.Realm)
		case "algorithm":
			err = oneArg(d, &h.Algorithm)
		case "subject":
			err = oneArg(d, &h.Subject)
		case "sign_in_url":
			err = oneArg(d, &h.SignInURL)
		case "after_sign_out":
			err = oneArg(d, &h.AfterSignOut)
		case "token_ttl":
			err = durationArg(d, &h.TokenTTL)
		case "token_reuse":
			err = durationArg(d, &h.TokenReuse)
		case "token_reuse_margin":
			err = durationArg(d, &h.TokenReuseMargin)
		case "key_rotation":
			err = durationArg(d, &h.KeyRotation)
		case "key_publish_lead":
			err = durationArg(d, &h.KeyPublishLead)
		case "session_ttl":
			err = durationArg(d, &h.SessionTTL)
		case "idle_ttl":
			err = durationArg(d, &h.IdleTTL)
		case "max_sessions_per_user":
			err = intArg(d, &h.MaxSessionsPerUser)
		case "signing_key":
			err = h.unmarshalSigningKey(d)
		case "protect":
			err = h.unmarshalProtect(d)
		case "claims":
			err = h.unmarshalClaims(d)
		case "token_claims":
			err = h.unmarshalTokenClaims(d)
		case "inject":
			err = h.unmarshalInject(d)
		case "trust_upstream_sign_in":
			h.TrustUpstreamSignIn = true
			h.UpstreamSignInPaths = d.RemainingArgs()
			for _, p := range h.UpstreamSignInPaths {
				if !strings.HasPrefix(p, "/") {
					return d.Errf("trust_upstream_sign_in takes path patterns starting with /, e.g. trust_upstream_sign_in /api/auth/*; got %q", p)
				}
			}
		case "redis":
			h.Redis = new(RedisConfig)
			err = h.Redis.unmarshalCaddyfile(d)
		case "cookie":
			h.Cookie = new(CookieConfig)
			err = h.Cookie.unmarshalCaddyfile(d)
		case "events":
			h.Events = new(EventsConfig)
			err = h.Events.unmarshalCaddyfile(d)
		case "provider":
			err = h.unmarshalProvider(d)
		case "email":
			err = h.unmarshalMail(d)
		case "limits":
			o := h.signInOptions()
			o.Limits = new(LimitsConfig)
			err = o.Limits.unmarshalCaddyfile(d)
		case "second_factor":
			o := h.signInOptions()
			o.SecondFactor = new(SecondFactorOptions)
			err = o.SecondFactor.unmarshalCaddyfile(d)
		case "admin_api":
			h.AdminAPI = new(AdminAPIConfig)
			err = h.AdminAPI.unmarshalCaddyfile(d)
		case "after_sign_in", "link_by_email", "redirect_origins", "sign_in_template":
			err = h.unmarshalSignInOption(d)
		default:
			return d.Errf("unknown subdirective %q in convex_auth", sub)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (h *Handler) unmarshalSigningKey(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	if len(args) != 2 {
		return d.Errf("signing_key needs `file <path>` or `env <VARIABLE>`")
	}
	switch args[0] {
	case "file":
		h.SigningKey = &SigningKeySource{From: "file", Path: args[1]}
	case "env":
		h.SigningKey = &SigningKeySource{From: "env", Env: args[1]}
	default:
		return d.Errf("signing_key source %q is unknown: use file or env", args[0])
	}
	return nil
}

func (h *Handler) unmarshalInject(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	if len(args) != 2 {
		return d.Errf("inject needs `header <name>` or `cookie <name>`")
	}
	switch args[0] {
	case "header":
		h.InjectHeader = args[1]
	case "cookie":
		h.InjectCookie = args[1]
	default:
		return d.Errf("inject %q is unknown: use header or cookie", args[0])
	}
	return nil
}

func (c *RedisConfig) unmarshalCaddyfile(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		c.URL = d.Val()
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	urlAsArg := c.URL != ""
	seen := make(map[string]bool)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		sub := d.Val()
		if seen[sub] {
			return d.Errf("redis %s is set more than once: keep one", sub)
		}
		seen[sub] = true
		var err error
		switch sub {
		case "url":
			if urlAsArg {
				return d.Errf("redis url is given twice: keep one")
			}
			err = oneArg(d, &c.URL)
		case "addrs":
			c.Addrs = d.RemainingArgs()
			if len(c.Addrs) == 0 {
				return d.Errf("redis addrs needs at least one host:port")
			}
		case "master_name":
			err = oneArg(d, &c.MasterName)
		case "cluster":
			err = flagArg(d, &c.Cluster)
		case "username":
			err = oneArg(d, &c.Username)
		case "password":
			err = oneArg(d, &c.Password)
		case "sentinel_username":
			err = oneArg(d, &c.SentinelUsername)
		case "sentinel_password":
			err = oneArg(d, &c.SentinelPassword)
		case "db":
			err = intArg(d, &c.DB)
		case "tls":
			err = flagArg(d, &c.TLS)
		case "tls_ca_file":
			err = oneArg(d, &c.TLSCAFile)
		case "tls_server_name":
			err = oneArg(d, &c.TLSServerName)
		case "tls_insecure_skip_verify":
			err = flagArg(d, &c.TLSInsecureSkipVerify)
		case "key_prefix":
			err = oneArg(d, &c.KeyPrefix)
		case "dial_timeout":
			err = durationArg(d, &c.DialTimeout)
		case "read_timeout":
			err = durationArg(d, &c.ReadTimeout)
		case "write_timeout":
			err = durationArg(d, &c.WriteTimeout)
		case "pool_size":
			err = intArg(d, &c.PoolSize)
		case "cache_size":
			err = cacheSizeArg(d, &c.CacheSize)
		case "cache_ttl":
			err = durationArg(d, &c.CacheTTL)
		case "wait_replicas":
			err = intArg(d, &c.WaitReplicas)
		case "wait_timeout":
			err = durationArg(d, &c.WaitTimeout)
		default:
			return d.Errf("unknown redis option %q", sub)
		}
		if err != nil {
			return err
		}
	}
	if c.URL == "" && len(c.Addrs) == 0 {
		return d.Errf("redis needs a URL (redis://host:6379/0) or addrs")
	}
	return nil
}

func (c *CookieConfig) unmarshalCaddyfile(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.Errf("cookie takes a block: cookie { name <name> ... }")
	}
	seen := make(map[string]bool)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		sub := d.Val()
		if seen[sub] {
			return d.Errf("cookie %s is set more than once: keep one", sub)
		}
		seen[sub] = true
		var err error
		switch sub {
		case "name":
			err = oneArg(d, &c.Name)
		case "domain":
			err = oneArg(d, &c.Domain)
		case "path":
			err = oneArg(d, &c.Path)
		case "same_site":
			err = oneArg(d, &c.SameSite)
		case "forward_to_upstream":
			err = flagArg(d, &c.ForwardToUpstream)
		default:
			return d.Errf("unknown cookie option %q", sub)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Interface guards
var _ caddyfile.Unmarshaler = (*Handler)(nil)
