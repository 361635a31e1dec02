package session

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// A stored session is one compact string, so each costs one small Redis key:
//
//	offset 0      format version '2'
//	offset 1..13  last use, unix milliseconds, 13 zero-padded decimal digits
//	offset 14..26 absolute expiry, same format
//	offset 27..   user ID, created (uvarint ms), provider, a flags byte,
//	              email, name, picture, then the User-Agent only when it is
//	              not empty or more follows, then the authentication time
//	              (uvarint ms) and its methods (space-separated) only when
//	              they are not the creation's: each string is a uvarint
//	              length and its bytes. Flags: bit 0 email verified, bits
//	              1-7 the code of a well-known picture URL prefix left out
//	              of the picture.
//	last 16 bytes the realm's tag (RealmTag)
//
// The two times come first in fixed-width text because the lookup script
// reads them and rewrites last use in place (SETRANGE keeps the key's TTL);
// the user ID follows because the delete scripts check it; the realm's tag
// ends the record, where the scripts find it by its fixed length. Version
// '1' records (before realms) are foreign to every realm. Fields added
// later are left out when they hold what a record without them means, so
// most records stay byte for byte the earlier format. The session ID
// is not stored: it is in the key. The picture prefix codes keep a typical
// session under 400 bytes of Redis memory.
const (
	recordVersion     = '2'
	recordTimeDigits  = 13
	recordLastUseAt   = 1
	recordExpiresAt   = recordLastUseAt + recordTimeDigits
	recordHeaderBytes = recordExpiresAt + recordTimeDigits
	maxRecordMillis   = 9_999_999_999_999 // 13 digits: year 2286

	flagEmailVerified = 1
	pictureCodeShift  = 1
)

// picturePrefixes are left out of stored picture URLs; a URL's code is its
// index + 1 (0: no prefix). Stored data depends on these: only append.
var picturePrefixes = []string{
	"https://avatars.githubusercontent.com/u/",
	"https://lh3.googleusercontent.com/a/",
	"https://lh3.googleusercontent.com/",
	"https://secure.gravatar.com/avatar/",
	"https://www.gravatar.com/avatar/",
	"https://cdn.discordapp.com/avatars/",
	"https://",
}

// splitPicture returns the code of the first known prefix of url and the rest.
func splitPicture(url string) (code byte, rest string) {
	for i, p := range picturePrefixes {
		if strings.HasPrefix(url, p) {
			return byte(i + 1), url[len(p):]
		}
	}
	return 0, url
}

var errCorruptRecord = fmt.Errorf("%w: stored session is corrupt", ErrNotFound)

// encodeRecord serializes s (its ID excluded) as a record of the realm
// whose tag is realmTag.
func encodeRecord(s *Session, realmTag string) ([]byte, error) {
	last, exp, created, authTime := s.LastUsedAt.UnixMilli(), s.ExpiresAt.UnixMilli(), s.CreatedAt.UnixMilli(), s.AuthTime.UnixMilli()
	if s.AuthTime.IsZero() {
		authTime = created
	}
	for _, ms := range []int64{last, exp, created, authTime} {
		if ms < 0 || ms > maxRecordMillis {
			return nil, errors.New("session: time out of range (before 1970 or after 2286): check the clock")
		}
	}
	amr := strings.Join(s.AMR, " ")
	n := recordHeaderBytes + 2*binary.MaxVarintLen64 + 1 +
		7*binary.MaxVarintLen32 + len(s.UserID) + len(s.Provider) +
		len(s.Profile.Email) + len(s.Profile.Name) + len(s.Profile.Picture) + len(s.UserAgent) + len(amr) + len(realmTag)
	b := make([]byte, 0, n)
	b = append(b, recordVersion)
	b = appendMillis(b, last)
	b = appendMillis(b, exp)
	b = appendString(b, s.UserID)
	b = binary.AppendUvarint(b, uint64(created))
	b = appendString(b, s.Provider)
	code, picture := splitPicture(s.Profile.Picture)
	flags := code << pictureCodeShift
	if s.Profile.EmailVerified {
		flags |= flagEmailVerified
	}
	b = append(b, flags)
	b = appendString(b, s.Profile.Email)
	b = appendString(b, s.Profile.Name)
	b = appendString(b, picture)
	// Left out when empty (and nothing follows), so such a record is byte
	// for byte the format written before User-Agents were kept; likewise
	// the authentication of a session never reauthenticated.
	reauthenticated := authTime != created || amr != ""
	if s.UserAgent != "" || reauthenticated {
		b = appendString(b, s.UserAgent)
	}
	if reauthenticated {
		b = binary.AppendUvarint(b, uint64(authTime))
		b = appendString(b, amr)
	}
	b = append(b, realmTag...)
	return b, nil
}

func appendMillis(b []byte, ms int64) []byte {
	var digits [recordTimeDigits]byte
	s := strconv.AppendInt(digits[:0], ms, 10)
	for range recordTimeDigits - len(s) {
		b = append(b, '0')
	}
	return append(b, s...)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decodeRecord parses a stored session of the realm whose tag is realmTag.
// A record of another realm or of none is errForeignRecord; anything else
// unexpected is errCorruptRecord. Callers treat both as not found.
func decodeRecord(id string, b []byte, realmTag string) (*Session, error) {
	if len(b) < recordHeaderBytes+len(realmTag) {
		return nil, errCorruptRecord
	}
	if b[0] != recordVersion || string(b[len(b)-len(realmTag):]) != realmTag {
		return nil, errForeignRecord
	}
	b = b[:len(b)-len(realmTag)]
	last, err1 := strconv.ParseInt(string(b[recordLastUseAt:recordExpiresAt]), 10, 64)
	exp, err2 := strconv.ParseInt(string(b[recordExpiresAt:recordHeaderBytes]), 10, 64)
	if err1 != nil || err2 != nil {
		return nil, errCorruptRecord
	}
	d := decoder{b: b[recordHeaderBytes:]}
	s := &Session{
		ID:         id,
		LastUsedAt: time.UnixMilli(last).UTC(),
		ExpiresAt:  time.UnixMilli(exp).UTC(),
	}
	s.UserID = d.string()
	created := d.uvarint()
	s.CreatedAt = time.UnixMilli(int64(created)).UTC()
	s.Provider = d.string()
	flags := d.byte()
	s.Profile.EmailVerified = flags&flagEmailVerified != 0
	s.Profile.Email = d.string()
	s.Profile.Name = d.string()
	s.Profile.Picture = d.string()
	if len(d.b) > 0 && !d.bad {
		s.UserAgent = d.string()
	}
	s.AuthTime = s.CreatedAt
	if len(d.b) > 0 && !d.bad {
		authTime := d.uvarint()
		if authTime > maxRecordMillis {
			d.bad = true
		}
		s.AuthTime = time.UnixMilli(int64(authTime)).UTC()
		if amr := d.string(); amr != "" {
			s.AMR = strings.Fields(amr)
		}
	}
	code := int(flags >> pictureCodeShift)
	if code > len(picturePrefixes) {
		d.bad = true
	} else if code > 0 {
		s.Profile.Picture = picturePrefixes[code-1] + s.Profile.Picture
	}
	if d.bad || len(d.b) != 0 || created > maxRecordMillis || s.UserID == "" {
		return nil, errCorruptRecord
	}
	return s, nil
}

// decoder reads the record body; after the first error it returns zero values.
type decoder struct {
	b   []byte
	bad bool
}

func (d *decoder) uvarint() uint64 {
	if d.bad {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.bad = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if d.bad || len(d.b) == 0 {
		d.bad = true
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.bad || n > uint64(len(d.b)) {
		d.bad = true
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}
