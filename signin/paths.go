package signin

// The paths of the sign-in pages, and of the account pages they link to.
const (
	PathSignIn     = "/auth/signin"
	signInPrefix   = PathSignIn + "/"
	callbackPrefix = "/auth/callback/"
	// PathVerify and PathVerifyResend are email verification's;
	// PathForgotPassword and PathResetPassword the password reset's.
	PathVerify         = "/auth/verify"
	PathVerifyResend   = "/auth/verify/resend"
	PathForgotPassword = "/auth/password/forgot"
	PathResetPassword  = "/auth/password/reset"
	// PathAccount is the account page (package account), where a link
	// flow returns; PathChangePassword is where its change-password form
	// posts (fields current, password, confirm), whose refusals the
	// sign-in page shows.
	PathAccount        = "/auth/account"
	PathChangePassword = "/auth/password/change"
	// PathPasskeyOptions gives a passkey sign-in's options (passkey.js
	// fetches them); the answer posts to /auth/signin/passkey.
	PathPasskeyOptions = signInPrefix + ProviderPasskey + "/options"
)
