package signin

// AMRPassword is RFC 8176's method reference of a password.
const AMRPassword = "pwd"

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
