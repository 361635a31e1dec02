package signin

import "slices"

// RFC 8176's method references the gateway writes: a password, a
// device-bound key (a passkey the device keeps), a synced key (a backup
// eligible passkey), an authenticator app's code, two factors, and a
// user's presence only (a passkey that did not verify its user).
const (
	AMRPassword    = "pwd"
	AMRHardwareKey = "hwk"
	AMRSoftwareKey = "swk"
	AMROTP         = "otp"
	AMRMFA         = "mfa"
	AMRUser        = "user"
)

// DefaultAMR is what a session's token says of how the user signed in
// (its amr) when the session records no methods of its own
// (session.Session.AMR): a password sign-in is "pwd". The others carry
// none: RFC 8176 has no value for a code or link sent by mail ("otp" is
// for HOTP and TOTP), and how a provider authenticated its user is the
// provider's to say.
func DefaultAMR(provider string) []string {
	if provider == ProviderPassword {
		return []string{AMRPassword}
	}
	return nil
}

// firstFactorAMR is what a first factor says of how the user signed in:
// amr when the method named it, else the provider's own ("pwd" for a
// password; nothing for a provider or a mailed link or code).
func firstFactorAMR(provider string, amr []string) []string {
	if len(amr) > 0 {
		return amr
	}
	return DefaultAMR(provider)
}

// combineAMR adds second's methods and mfa to first's, each once.
func combineAMR(first []string, second ...string) []string {
	out := slices.Clone(first)
	for _, v := range append(second, AMRMFA) {
		if v != AMRUser && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}
