package importer

import (
	"fmt"
	"io/fs"
)

// readAuthJS reads Auth.js's users and accounts tables: its Convex
// adapter's (users, accounts in the app's export), or files of the tables
// with Auth.js's field names. Auth.js stores no passwords.
func readAuthJS(fsys fs.FS, b *builder) error {
	found, err := b.readUsers(fsys, ".", b.opts.UsersTable, "", b.authJSUser)
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("there is no %s table: give the export of the app's deployment (the Convex adapter's users and accounts tables), a directory with %s.json and accounts.json (or .jsonl), or name the users table with --users-table", b.opts.UsersTable, b.opts.UsersTable)
	}
	ok, err := b.eachRow(fsys, ".", "accounts", b.authJSAccount)
	if err == nil && !ok {
		err = fmt.Errorf("there is no accounts table beside %s", b.usersAt)
	}
	return err
}

func (b *builder) authJSUser(r row, e *entry) error {
	name, err1 := r.str("name")
	email, err2 := r.str("email")
	image, err3 := r.str("image")
	verified, err4 := r.time("emailVerified")
	if err := firstErr(err1, err2, err3, err4); err != nil {
		return err
	}
	b.setProfile(e, name, image)
	b.setEmail(e, r.pos, email, !verified.IsZero())
	return nil
}

// authJSAccount reads an accounts row: type oauth, oidc or email (an
// email provider's account, keyed by the address: map it to the gateway's
// email provider); webauthn is not carried over.
func (b *builder) authJSAccount(r row) {
	e, f := b.ownedRow(r, "type", "provider", "providerAccountId")
	if e == nil {
		return
	}
	typ, provider, accountID := f[0], f[1], f[2]
	switch typ {
	case "oauth", "oidc", "email", "":
	case "webauthn":
		b.note("passkeys (users add them again)")
		return
	default:
		b.note(fmt.Sprintf("accounts of type %q", typ))
		return
	}
	if provider == "" {
		b.problem(e, r.pos, "the account has no provider")
		return
	}
	b.account(e, r.pos, provider, accountID, "", "")
}
