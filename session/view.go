package session

// View is how a session is shown to its user (/auth/sessions) and to the
// site's backend (the admin API): no token, nothing that signs anyone in.
// Times are Unix milliseconds, as /auth/session has them.
type View struct {
	ID         string `json:"id"`
	Current    bool   `json:"current"`
	CreatedAt  int64  `json:"createdAt"`
	LastUsedAt int64  `json:"lastUsedAt"`
	UserAgent  string `json:"userAgent"`
	Provider   string `json:"provider"`
}

// NewView shows s; current says whether it is the session of the request
// asking.
func NewView(s *Session, current bool) View {
	return View{
		ID:         s.ID,
		Current:    current,
		CreatedAt:  s.CreatedAt.UnixMilli(),
		LastUsedAt: s.LastUsedAt.UnixMilli(),
		UserAgent:  s.UserAgent,
		Provider:   s.Provider,
	}
}
