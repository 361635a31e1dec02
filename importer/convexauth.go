package importer

import (
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/convex-auth/caddy-convex-auth/passwordhash"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// componentsDir is where a Convex export keeps each component's tables:
// _components/<mount>/<table>/documents.jsonl.
const componentsDir = "_components"

// mounts lists the components at the export's top level.
func mounts(fsys fs.FS) []string {
	ents, err := fs.ReadDir(fsys, componentsDir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out
}

// readUsers reads the users table at dir with fill, and returns whether
// there was one.
func (b *builder) readUsers(fsys fs.FS, dir, name, idField string, fill func(r row, e *entry) error) (bool, error) {
	b.usersAt = tableFile(fsys, dir, name)
	return b.eachRow(fsys, dir, name, func(r row) {
		b.addUser(r, idField, func(e *entry) error { return fill(r, e) })
	})
}

// eachRow reads a table if it is there and calls fn with each row.
func (b *builder) eachRow(fsys fs.FS, dir, name string, fn func(r row)) (bool, error) {
	file := tableFile(fsys, dir, name)
	if file == "" {
		return false, nil
	}
	t, err := readTable(fsys, file)
	if err != nil {
		return false, err
	}
	b.badRows(t)
	for _, r := range t.rows {
		fn(r)
	}
	return true, nil
}

// readConvexAuth reads Convex Auth: the app's users table, then the
// accounts of 0.0.x (authAccounts) and of 2.x (its method components),
// whichever the export holds.
func readConvexAuth(fsys fs.FS, b *builder) error {
	found, err := b.readUsers(fsys, ".", b.opts.UsersTable, "_id", b.convexAuthUser)
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("there is no %s/documents.jsonl: give the export of the app's deployment (npx convex export --path <dir>, then the snapshot ZIP or its unpacked directory), or name the users table with --users-table", b.opts.UsersTable)
	}
	v0, err := b.eachRow(fsys, ".", "authAccounts", b.convexAuthAccount)
	if err != nil {
		return err
	}
	v2, err := b.readConvexAuthComponents(fsys)
	if err != nil {
		return err
	}
	if !v0 && !v2 {
		return fmt.Errorf("the export has %s but neither Convex Auth 0.0.x's authAccounts table nor a Convex Auth 2.x component (%s/<mount>/passwords, verifiedEmails or accounts)", b.usersAt, componentsDir)
	}
	return nil
}

// convexAuthUser reads a users row: 0.0.x's authTables fields, which
// apps on 2.x usually keep.
func (b *builder) convexAuthUser(r row, e *entry) error {
	anonymous, err := r.boolean("isAnonymous")
	if err != nil {
		return err
	}
	e.anonymous = anonymous
	email, err := r.str("email")
	if err != nil {
		return err
	}
	name, err := r.str("name")
	if err != nil {
		return err
	}
	image, err := r.str("image")
	if err != nil {
		return err
	}
	b.setProfile(e, name, image)
	b.setEmail(e, r.pos, email, r.has("emailVerificationTime"))
	return nil
}

// convexAuthAccount reads an authAccounts row of 0.0.x: provider,
// providerAccountId, secret (a lucia Scrypt hash for the Password
// provider), emailVerified (the address the provider verified).
func (b *builder) convexAuthAccount(r row) {
	e, f := b.ownedRow(r, "provider", "providerAccountId", "secret", "emailVerified")
	if e == nil {
		return
	}
	provider, accountID, secret, verified := f[0], f[1], f[2], f[3]
	if provider == "" {
		b.problem(e, r.pos, "the account has no provider")
		return
	}
	if provider == "anonymous" {
		return
	}
	if verified != "" {
		e.verifiedEmails = append(e.verifiedEmails, strings.ToLower(strings.TrimSpace(verified)))
	}
	b.account(e, r.pos, provider, accountID, secret, passwordhash.ScryptNFKC)
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// readConvexAuthComponents reads the tables of Convex Auth 2.x's method
// components, found by their tables whatever their mount names:
//
//   - passwords (authPassword): userId, passwordHashPHC (argon2id of the
//     NFC form);
//   - verifiedEmails (authEmail): email, userId, isPrimary;
//   - accounts with providerAccountId (authGithub, authGoogle, authApple,
//     authOauth mounts): the provider is the mount's name without "auth"
//     (authGithub: github);
//   - passkeys, totpSecrets, usernames: not carried over (noted).
//
// Emails come first, as a password account is keyed by its user's email.
func (b *builder) readConvexAuthComponents(fsys fs.FS) (bool, error) {
	found := false
	ms := mounts(fsys)
	for _, m := range ms {
		dir := path.Join(componentsDir, m)
		ok, err := b.eachRow(fsys, dir, "verifiedEmails", b.verifiedEmail)
		if err != nil {
			return false, err
		}
		found = found || ok
	}
	for _, m := range ms {
		dir := path.Join(componentsDir, m)
		ok, err := b.eachRow(fsys, dir, "passwords", b.componentPassword)
		if err != nil {
			return false, err
		}
		found = found || ok
		ok, err = b.eachRow(fsys, dir, "accounts", func(r row) { b.componentAccount(r, providerOfMount(m)) })
		if err != nil {
			return false, err
		}
		found = found || ok
		for table, what := range map[string]string{"passkeys": "passkeys (users add them again)", "totpSecrets": "TOTP authenticators (users enroll again)", "usernames": "usernames (the gateway signs in by email)"} {
			if _, err := b.eachRow(fsys, dir, table, func(row) { b.note(what) }); err != nil {
				return false, err
			}
		}
	}
	return found, nil
}

// providerOfMount names a 2.x OAuth component's provider: authGithub is
// github, authAcme acme; another name is used as it is.
func providerOfMount(mount string) string {
	rest, ok := strings.CutPrefix(mount, "auth")
	if !ok || rest == "" {
		return mount
	}
	r, n := utf8.DecodeRuneInString(rest)
	return string(unicode.ToLower(r)) + rest[n:]
}

func (b *builder) verifiedEmail(r row) {
	e, f := b.ownedRow(r, "email")
	if e == nil {
		return
	}
	primary, err := r.boolean("isPrimary")
	if err != nil {
		b.problem(e, r.pos, "%v", err)
		return
	}
	email := f[0]
	if !primary {
		b.note("secondary emails (the gateway keeps one email per user: the primary)")
		return
	}
	e.user.Profile.Email, e.user.Profile.EmailVerified = "", false // the component's primary email wins
	b.setEmail(e, r.pos, email, true)
}

func (b *builder) componentPassword(r row) {
	e, f := b.ownedRow(r, "passwordHashPHC")
	if e == nil {
		return
	}
	hash := f[0]
	if e.user.Profile.Email == "" {
		b.note("passwords of users without an email (the gateway signs in by email and password)")
		return
	}
	if slices.ContainsFunc(e.user.Accounts, func(a session.Account) bool { return a.Provider == providerPassword }) {
		b.problem(e, r.pos, "the user has a second password")
		return
	}
	b.account(e, r.pos, providerPassword, e.user.Profile.Email, hash, passwordhash.Argon2idNFC)
}

func (b *builder) componentAccount(r row, provider string) {
	e, f := b.ownedRow(r, "providerAccountId")
	switch {
	case e == nil:
	case !r.has("providerAccountId"):
		e.anonymous = true // authAnonymous's accounts: userId alone
	default:
		b.account(e, r.pos, provider, f[0], "", "")
	}
}
