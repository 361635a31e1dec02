package account

import (
	"errors"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/session"
)

// MaxNameLength bounds a display name set on the account page, in
// characters (at most 4 bytes each, within session.MaxNameBytes).
const MaxNameLength = 100

// CheckName trims a typed display name and checks it: valid UTF-8, at
// most MaxNameLength characters, no control characters, line or paragraph
// separators, nor the invisible marks that reorder text (bidirectional
// embeddings, overrides and isolates). It returns the name and "", or the
// page's error code. An empty name removes it.
func CheckName(typed string) (string, string) {
	if !utf8.ValidString(typed) {
		return "", "name_invalid"
	}
	name := strings.TrimSpace(typed)
	if utf8.RuneCountInString(name) > MaxNameLength || len(name) > session.MaxNameBytes {
		return "", "name_long"
	}
	for _, c := range name {
		if unicode.IsControl(c) || unicode.In(c, unicode.Zl, unicode.Zp) ||
			'\u202a' <= c && c <= '\u202e' || '\u2066' <= c && c <= '\u2069' {
			return "", "name_invalid"
		}
	}
	return name, ""
}

// serveName sets the user's display name (field name): the user record
// (user.updated, when events are on) and every live session of the user,
// so that the next token of each carries it.
func (p *Pages) serveName(w http.ResponseWriter, r *http.Request) {
	sess, ok := p.readForm(w, r)
	if !ok {
		return
	}
	name, problem := CheckName(r.PostForm.Get("name"))
	if problem != "" {
		p.fail(w, r, http.StatusBadRequest, problem)
		return
	}
	ctx, cancel := storeCtx(r)
	defer cancel()
	user, err := p.cfg.Users.GetUser(ctx, sess.UserID)
	if errors.Is(err, session.ErrNotFound) {
		p.fail(w, r, http.StatusNotFound, "app_managed")
		return
	}
	if err == nil && user.Profile.Name != name {
		user.Profile.Name = name
		err = p.cfg.Users.UpdateUser(ctx, user)
	}
	if err != nil {
		p.logger.Warn("the name could not be saved", zap.Error(err))
		p.fail(w, r, http.StatusServiceUnavailable, "unavailable")
		return
	}
	// Sessions carry the profile into tokens. Set even when the record
	// already had the name: a retry after this step failed must reach them.
	n, err := p.cfg.Sessions.SetProfile(ctx, user.ID, user.Profile)
	if err != nil {
		p.logger.Warn("the new name could not reach the user's sessions", zap.String("user_id", user.ID), zap.Error(err))
		p.fail(w, r, http.StatusServiceUnavailable, "unavailable")
		return
	}
	p.logger.Info("name changed", zap.String("user_id", user.ID), zap.Int("sessions", n))
	back(w, r, "notice", "name_saved")
}
