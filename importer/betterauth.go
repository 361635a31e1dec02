package importer

import (
	"fmt"
	"io/fs"
	"maps"
	"path"
	"strings"

	"github.com/convex-auth/caddy-convex-auth/passwordhash"
)

// Better Auth's credential provider: its account's password is the hash.
const credentialProvider = "credential"

// readBetterAuth reads Better Auth's user and account tables: from an
// export of an app on @convex-dev/better-auth (a component's tables, _id
// as the ID) or from files of the tables (user.json and account.json
// arrays, or .jsonl), with Better Auth's field names.
func readBetterAuth(fsys fs.FS, b *builder) error {
	dir, err := betterAuthDir(fsys)
	if err != nil {
		return err
	}
	if _, ok := b.opts.Map[credentialProvider]; !ok {
		b.opts.Map = maps.Clone(b.opts.Map)
		if b.opts.Map == nil {
			b.opts.Map = make(map[string]string)
		}
		b.opts.Map[credentialProvider] = providerPassword
	}
	if _, err := b.readUsers(fsys, dir, "user", "", b.betterAuthUser); err != nil {
		return err
	}
	_, err = b.eachRow(fsys, dir, "account", b.betterAuthAccount)
	return err
}

// betterAuthDir finds the one directory holding both tables: the root, or
// a component of a Convex export.
func betterAuthDir(fsys fs.FS) (string, error) {
	var found []string
	for _, dir := range append([]string{"."}, componentDirs(fsys)...) {
		if tableFile(fsys, dir, "user") != "" && tableFile(fsys, dir, "account") != "" {
			found = append(found, dir)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("found no Better Auth user and account tables: give the export of an app on @convex-dev/better-auth (its %s/betterAuth/user and account), or a directory with user.json and account.json (or .jsonl)", componentsDir)
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("found Better Auth tables in %s: give the directory of one", strings.Join(found, " and "))
}

func componentDirs(fsys fs.FS) []string {
	var dirs []string
	for _, m := range mounts(fsys) {
		dirs = append(dirs, path.Join(componentsDir, m))
	}
	return dirs
}

func (b *builder) betterAuthUser(r row, e *entry) error {
	name, err1 := r.str("name")
	email, err2 := r.str("email")
	verified, err3 := r.boolean("emailVerified")
	image, err4 := r.str("image")
	anonymous, err5 := r.boolean("isAnonymous")
	created, err6 := r.time("createdAt")
	if err := firstErr(err1, err2, err3, err4, err5, err6); err != nil {
		return err
	}
	if !created.IsZero() {
		e.user.CreatedAt = created
	}
	e.anonymous = anonymous
	b.setProfile(e, name, image)
	b.setEmail(e, r.pos, email, verified)
	return nil
}

// betterAuthAccount reads an account row: providerId and accountId (the
// provider's user ID), or the credential account whose password is a
// @better-auth/utils scrypt hash and whose accountId is the user's ID.
func (b *builder) betterAuthAccount(r row) {
	e, f := b.ownedRow(r, "providerId", "accountId", "password")
	if e == nil {
		return
	}
	provider, accountID, password := f[0], f[1], f[2]
	if provider == "" {
		b.problem(e, r.pos, "the account has no providerId")
		return
	}
	if provider != credentialProvider {
		b.account(e, r.pos, provider, accountID, "", "")
		return
	}
	if e.user.Profile.Email == "" {
		b.problem(e, r.pos, "the credential account's user has no email: the gateway signs in by email and password")
		return
	}
	b.account(e, r.pos, provider, e.user.Profile.Email, password, passwordhash.ScryptNFKC)
}
