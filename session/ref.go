package session

// Ref names a session without its cookie token: the token's user tag and
// the session ID, both one-way hashes. A revocation that has to wait for the
// store to answer is kept as a Ref, so that what is kept signs nobody in.
type Ref struct {
	UserTag   string `json:"user_tag"`
	SessionID string `json:"session_id"`
}

// RefOf returns the Ref of token, or false for a token of the wrong shape
// (no session can exist for it).
func RefOf(token string) (Ref, bool) {
	p, err := parseToken(token)
	if err != nil {
		return Ref{}, false
	}
	return Ref{UserTag: p.userTag, SessionID: p.sessionID}, true
}

// Valid reports whether r has the shape of a Ref that RefOf returns.
func (r Ref) Valid() bool {
	return validB64(r.UserTag, userTagBytes) && validSessionID(r.SessionID)
}

func (r Ref) parsed() parsedToken {
	return parsedToken{userTag: r.UserTag, sessionID: r.SessionID}
}
