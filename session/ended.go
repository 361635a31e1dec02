package session

// EndedError is the ErrNotFound of a lookup that found the session itself
// and saw it had ended (absolute or idle expiry): the store could tell a
// known session ended, which the events package reports. A session whose
// record the backend dropped (Redis TTL) is plain ErrNotFound.
type EndedError struct {
	Session *Session
}

func (e *EndedError) Error() string { return ErrNotFound.Error() + ": session ended" }

// Unwrap makes errors.Is(err, ErrNotFound) hold.
func (e *EndedError) Unwrap() error { return ErrNotFound }
