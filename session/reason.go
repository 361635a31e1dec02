package session

import "context"

// Reasons a session ends, as the session.revoked event names them. A
// caller that ends sessions puts one in the context (WithRevokeReason) so
// that a Store wrapper sending events can say why.
const (
	ReasonSignOut        = "sign-out"
	ReasonAdmin          = "admin"
	ReasonReset          = "reset"
	ReasonBan            = "ban"
	ReasonPasswordChange = "password-change"
	ReasonUserDeleted    = "user-deleted"
	// ReasonExpiredNoticed: a lookup found the session past its expiry.
	ReasonExpiredNoticed = "expired-noticed"
	// ReasonLimit: a new session of the user ended its least recently
	// used one, at Options.MaxSessionsPerUser.
	ReasonLimit = "limit"
	// ReasonEmailVerified: the user proved its address for the first
	// time (a verification link), which ends what was set up before.
	ReasonEmailVerified = "email-verified"
)

type revokeReasonKey struct{}

// WithRevokeReason returns ctx carrying why the sessions a call ends end.
func WithRevokeReason(ctx context.Context, reason string) context.Context {
	return context.WithValue(ctx, revokeReasonKey{}, reason)
}

// RevokeReason is the reason ctx carries, or "" when none was given.
func RevokeReason(ctx context.Context) string {
	r, _ := ctx.Value(revokeReasonKey{}).(string)
	return r
}
