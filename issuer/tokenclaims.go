package issuer

import (
	"fmt"
	"slices"
	"strings"
)

// Profile claims a token can carry (Config.ProfileClaims).
const (
	ClaimEmail         = "email"
	ClaimEmailVerified = "email_verified"
	ClaimName          = "name"
	ClaimPicture       = "picture"
	// NoProfileClaims, alone, leaves every profile claim out.
	NoProfileClaims = "none"
)

// ProfileClaimNames are the profile claims, all in a token by default.
var ProfileClaimNames = []string{ClaimEmail, ClaimEmailVerified, ClaimName, ClaimPicture}

// profileSet says which profile claims a token carries.
type profileSet uint8

const (
	profileEmail profileSet = 1 << iota
	profileEmailVerified
	profileName
	profilePicture
	profileAll = profileEmail | profileEmailVerified | profileName | profilePicture
)

// ParseProfileClaims checks a token_claims list: profile claim names, or
// "none" alone. Empty means all of them.
func ParseProfileClaims(names []string) (profileSet, error) {
	if len(names) == 0 {
		return profileAll, nil
	}
	if len(names) == 1 && names[0] == NoProfileClaims {
		return 0, nil
	}
	var set profileSet
	for _, n := range names {
		i := slices.Index(ProfileClaimNames, n)
		if i < 0 {
			return 0, fmt.Errorf("token_claims %q is not a profile claim: use %s, or none alone", n, strings.Join(ProfileClaimNames, ", "))
		}
		bit := profileSet(1) << i
		if set&bit != 0 {
			return 0, fmt.Errorf("token_claims lists %s twice", n)
		}
		set |= bit
	}
	return set, nil
}

// applyProfile leaves out of c what the set does not carry.
func (s profileSet) applyProfile(c *tokenClaims) {
	if s == profileAll {
		return
	}
	if s&profileEmail == 0 {
		c.Email = ""
	}
	if s&profileEmailVerified == 0 {
		c.EmailVerified = nil
	}
	if s&profileName == 0 {
		c.Name = ""
	}
	if s&profilePicture == 0 {
		c.Picture = ""
	}
}
