package edge

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/convex-auth/caddy-convex-auth/internal/tracing"
	"github.com/convex-auth/caddy-convex-auth/mail"
	"github.com/convex-auth/caddy-convex-auth/provider"
	"github.com/convex-auth/caddy-convex-auth/session"
	"github.com/convex-auth/caddy-convex-auth/signin"
)

// The gateway's spans, children of Caddy's HTTP span when the site has
// Caddy's `tracing` directive (docs/operations.md#tracing). Attributes
// hold fixed words, provider names and key IDs: never a cookie, token,
// code, email address or secret.
const (
	spanSessionLookup = "convex_auth.session.lookup"
	spanTokenMint     = "convex_auth.token.mint"
	spanOAuthExchange = "convex_auth.oauth.exchange"
	spanMailSend      = "convex_auth.mail.send"

	// attrCacheHit: the session came from the instance's local cache.
	attrCacheHit = "convex_auth.session.cache_hit"
	// attrLookupResult: found, not_found (no such session, or it ended)
	// or store_error.
	attrLookupResult = "convex_auth.session.result"
	// attrTokenKeyID and attrTokenAlgorithm name the signing key (its kid
	// is published in the JWKS).
	attrTokenKeyID     = "convex_auth.token.kid"
	attrTokenAlgorithm = "convex_auth.token.alg"
	// attrProvider is the configured provider's name.
	attrProvider = "convex_auth.provider"
)

// endLookupSpan records a session lookup's outcome and ends its span.
func endLookupSpan(span tracing.Span, info *session.LookupInfo, err error) {
	result := "found"
	switch {
	case errors.Is(err, session.ErrNotFound):
		result = "not_found"
	case err != nil:
		result = "store_error"
		span.Fail("session store unreachable")
	}
	span.SetAttributes(attribute.Bool(attrCacheHit, info.CacheHit), attribute.String(attrLookupResult, result))
	span.End()
}

// traceSignIn gives the sign-in service providers and a mailer that trace
// the code exchange and each mail sent. It copies what it changes: cfg is
// the caller's.
func traceSignIn(cfg signin.Config) signin.Config {
	if len(cfg.OAuth) > 0 {
		providers := make([]provider.OAuth, len(cfg.OAuth))
		for i, p := range cfg.OAuth {
			providers[i] = tracedProvider{p}
		}
		cfg.OAuth = providers
	}
	if cfg.Mail != nil && cfg.Mail.Mailer != nil {
		m := *cfg.Mail
		m.Mailer = tracedMailer{m.Mailer}
		cfg.Mail = &m
	}
	if cfg.Email != nil && cfg.Email.Mailer != nil {
		e := *cfg.Email
		e.Mailer = tracedMailer{e.Mailer}
		cfg.Email = &e
	}
	return cfg
}

// tracedProvider traces Identity: the code exchange and the calls that
// find who signed in.
type tracedProvider struct{ provider.OAuth }

func (p tracedProvider) Identity(ctx context.Context, f provider.Flow, cb provider.Callback) (provider.Identity, error) {
	ctx, span := tracing.Start(ctx, spanOAuthExchange, trace.SpanKindClient)
	defer span.End()
	if span.Recording() {
		span.SetAttributes(attribute.String(attrProvider, p.Info().Name))
	}
	id, err := p.OAuth.Identity(ctx, f, cb)
	if err != nil {
		span.Fail("the provider's answer did not check out")
	}
	return id, err
}

// tracedMailer traces each mail sent.
type tracedMailer struct{ mail.Mailer }

func (m tracedMailer) Send(ctx context.Context, msg mail.Message) error {
	ctx, span := tracing.Start(ctx, spanMailSend, trace.SpanKindClient)
	defer span.End()
	err := m.Mailer.Send(ctx, msg)
	if err != nil {
		span.Fail("the mail could not be sent")
	}
	return err
}
