package session

import "context"

// LookupInfo is what a Lookup reports to a caller that asks for it with
// WithLookupInfo (the request path's trace span).
type LookupInfo struct {
	// CacheHit is set when the session came from the instance's local
	// cache, without a store round trip. The in-process store has no
	// cache and never sets it.
	CacheHit bool
}

type lookupInfoKey struct{}

// WithLookupInfo makes the Lookups made with ctx fill in info.
func WithLookupInfo(ctx context.Context, info *LookupInfo) context.Context {
	return context.WithValue(ctx, lookupInfoKey{}, info)
}

// lookupInfo is the caller's LookupInfo, or nil.
func lookupInfo(ctx context.Context) *LookupInfo {
	info, _ := ctx.Value(lookupInfoKey{}).(*LookupInfo)
	return info
}
