// Package importer reads the users of another authentication system from
// its export (Convex Auth 0.0.x and 2.x, Better Auth, Auth.js on Convex)
// into users the gateway imports under their original IDs: emails and
// their verification, names and pictures, OAuth accounts under the
// gateway's provider names, and password hashes tagged with their scheme
// (passwordhash). Each row it cannot carry over is reported with its file
// and line, and its user is left out whole. No Caddy import.
package importer

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"github.com/convex-auth/caddy-convex-auth/passwordhash"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// Source is the system an export comes from.
type Source string

// Sources.
const (
	// ConvexAuth is @convex-dev/auth: 0.0.x (users and authAccounts
	// tables) and 2.x (its components' tables), from `npx convex export`.
	ConvexAuth Source = "convex-auth"
	// BetterAuth is Better Auth's user and account tables: the export of
	// an app on @convex-dev/better-auth, or user and account files.
	BetterAuth Source = "better-auth"
	// AuthJS is Auth.js's users and accounts tables (its Convex adapter's,
	// or files with its field names).
	AuthJS Source = "authjs"
)

// Sources lists the sources in the order the CLI shows them.
var Sources = []Source{ConvexAuth, BetterAuth, AuthJS}

// Gateway provider names an import gives meaning to.
const (
	providerPassword = "password"
	providerEmail    = "email"
)

// Options say how to read an export.
type Options struct {
	Source Source
	// Map renames the source's providers to the gateway's ("github" →
	// "github"); a provider mapped to "" is left out. A provider not in Map
	// keeps its name.
	Map map[string]string
	// SubFrom names the user field whose value becomes the user's ID, the
	// token's sub. Default: the row's own ID (_id in a Convex export, else
	// id).
	SubFrom string
	// UsersTable is the app's users table (Convex Auth, Auth.js). Default:
	// users.
	UsersTable string
}

// Validate reports options that cannot work.
func (o Options) Validate() error {
	if !slices.Contains(Sources, o.Source) {
		return fmt.Errorf("unknown source %q: use one of %s", o.Source, sourceNames())
	}
	for from, to := range o.Map {
		if from == "" {
			return errors.New("a --map entry has no source provider: use --map <theirs>=<gateway's>")
		}
		if len(to) > session.MaxProviderBytes {
			return fmt.Errorf("--map %s=%s: a provider name is at most %d bytes", from, to, session.MaxProviderBytes)
		}
	}
	if strings.ContainsAny(o.UsersTable, "/\\") {
		return fmt.Errorf("--users-table %q is a table name, not a path", o.UsersTable)
	}
	return nil
}

func sourceNames() string {
	names := make([]string, len(Sources))
	for i, s := range Sources {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

// ParseMap reads --map entries: "theirs=gateway's", or "theirs=" to leave
// a provider out.
func ParseMap(entries []string) (map[string]string, error) {
	m := make(map[string]string, len(entries))
	for _, e := range entries {
		from, to, ok := strings.Cut(e, "=")
		from, to = strings.TrimSpace(from), strings.TrimSpace(to)
		if !ok || from == "" {
			return nil, fmt.Errorf("--map %q: write <their provider>=<gateway provider>, e.g. github=github (or resend= to leave one out)", e)
		}
		if prev, dup := m[from]; dup && prev != to {
			return nil, fmt.Errorf("--map maps %q twice", from)
		}
		m[from] = to
	}
	return m, nil
}

// User is one user to import and where its row is.
type User struct {
	session.ImportedUser
	Pos Pos
}

// Problem is a row that is not imported, and why. Its user, if it has
// one, is left out whole: nothing of it is written.
type Problem struct {
	Pos
	UserID  string `json:"userId,omitempty"`
	Message string `json:"message"`
}

// Result is what Read found.
type Result struct {
	Users    []User
	Problems []Problem
	// Notes say what an import leaves out by design (anonymous users,
	// passkeys, providers mapped to nothing…), with counts.
	Notes []string
	// Accounts counts the accounts of Users by gateway provider.
	Accounts map[string]int
}

// Read reads the users of the export in fsys (its root is the export's:
// a snapshot ZIP, the ZIP unpacked, or a directory of table files). An
// error means the export as a whole is unusable: no users table, say.
func Read(fsys fs.FS, opts Options) (*Result, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.UsersTable == "" {
		opts.UsersTable = "users"
	}
	b := newBuilder(opts)
	var err error
	switch opts.Source {
	case ConvexAuth:
		err = readConvexAuth(fsys, b)
	case BetterAuth:
		err = readBetterAuth(fsys, b)
	case AuthJS:
		err = readAuthJS(fsys, b)
	}
	if err != nil {
		return nil, err
	}
	return b.result(), nil
}

// entry is one user being read.
type entry struct {
	pos  Pos
	id   string // the row's own ID, which the source's other tables use
	user session.ImportedUser
	bad  bool
	// anonymous marks a guest of the source: left out unless it has an
	// email or an account.
	anonymous bool
	// verifiedEmails are addresses an account row says were verified.
	verifiedEmails []string
}

type builder struct {
	opts     Options
	usersAt  string // the users table's file, for messages
	byID     map[string]*entry
	entries  []*entry
	problems []Problem
	notes    map[string]int
}

func newBuilder(opts Options) *builder {
	return &builder{opts: opts, byID: make(map[string]*entry), notes: make(map[string]int)}
}

// problem reports a row; its user (nil: none known) is left out.
func (b *builder) problem(e *entry, pos Pos, format string, args ...any) {
	p := Problem{Pos: pos, Message: fmt.Sprintf(format, args...)}
	if e != nil {
		p.UserID = e.user.ID
		e.bad = true
	}
	b.problems = append(b.problems, p)
}

// note counts something left out by design.
func (b *builder) note(text string) { b.notes[text]++ }

// badRows reports the rows a table could not read.
func (b *builder) badRows(t *table) {
	b.problems = append(b.problems, t.bad...)
}

// addUser reads a user row's ID (idField; "": _id if the row has one,
// else id) and the ID the gateway keeps
// (SubFrom, else the same), then lets fill read the rest.
func (b *builder) addUser(r row, idField string, fill func(e *entry) error) {
	if idField == "" {
		idField = "id"
		if r.has("_id") {
			idField = "_id" // a Convex export
		}
	}
	id, err := r.str(idField)
	if err != nil || id == "" {
		b.problem(nil, r.pos, "the user row has no %s", idField)
		return
	}
	e := &entry{pos: r.pos, id: id}
	sub := id
	if b.opts.SubFrom != "" {
		if sub, err = r.str(b.opts.SubFrom); err != nil || sub == "" {
			b.problem(nil, r.pos, "user %s has no %s to be its ID (--sub-from %s): give it one, or import without --sub-from", id, b.opts.SubFrom, b.opts.SubFrom)
			return
		}
	}
	e.user.ID = sub
	if prev, dup := b.byID[id]; dup {
		b.problem(e, r.pos, "user %s is also at line %d", id, prev.pos.Line)
		b.problem(prev, prev.pos, "user %s is also at line %d", id, r.pos.Line)
		return
	}
	b.byID[id] = e
	b.entries = append(b.entries, e)
	if err := checkID(sub); err != nil {
		b.problem(e, r.pos, "%v", err)
		return
	}
	if created, err := r.time("_creationTime"); err == nil {
		e.user.CreatedAt = created
	}
	if err := fill(e); err != nil {
		b.problem(e, r.pos, "%v", err)
	}
}

// checkID accepts the IDs a token's sub may carry through every subject
// format and app helper: 1 to 256 visible ASCII characters, without ';'
// (the user_session separator) or '|' (Convex Auth 0.0.x's).
func checkID(id string) error {
	if len(id) > session.MaxUserIDBytes {
		return fmt.Errorf("the user ID is %d bytes, the limit is %d", len(id), session.MaxUserIDBytes)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c > '~' || c == ';' || c == '|' {
			return fmt.Errorf("the user ID %q has a character a token's sub cannot carry (space, control, non-ASCII, ';' or '|')", id)
		}
	}
	return nil
}

// owner finds the user a row of another table names; an unknown one is
// that row's problem.
func (b *builder) owner(r row, field string) *entry {
	id, err := r.str(field)
	if err != nil || id == "" {
		b.problem(nil, r.pos, "the row has no %s", field)
		return nil
	}
	e := b.byID[id]
	if e == nil {
		b.problem(nil, r.pos, "its user %s is not in %s", id, b.usersAt)
	}
	return e
}

// ownedRow finds the user a row names in its userId and reads the row's
// string fields; nil when the row was reported or its user is left out.
func (b *builder) ownedRow(r row, fields ...string) (*entry, []string) {
	e := b.owner(r, "userId")
	if e == nil || e.bad {
		return nil, nil
	}
	vals := make([]string, len(fields))
	for i, f := range fields {
		v, err := r.str(f)
		if err != nil {
			b.problem(e, r.pos, "%v", err)
			return nil, nil
		}
		vals[i] = v
	}
	return e, vals
}

// setEmail sets the user's email, unless it has another one already.
func (b *builder) setEmail(e *entry, pos Pos, email string, verified bool) {
	email = session.NormalizeEmail(email)
	if email == "" {
		return
	}
	if !validEmail(email) {
		b.problem(e, pos, "%q is not an email address", truncate(email, 80))
		return
	}
	p := &e.user.Profile
	switch p.Email {
	case "":
		p.Email, p.EmailVerified = email, verified
	case email:
		p.EmailVerified = p.EmailVerified || verified
	}
}

func validEmail(email string) bool {
	at := strings.LastIndexByte(email, '@')
	return len(email) <= session.MaxEmailBytes && at > 0 && at < len(email)-1 &&
		!strings.ContainsFunc(email, func(r rune) bool { return r <= ' ' || r == 0x7f || r == ',' || r == ';' || r == '<' || r == '>' })
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// setProfile sets a name and a picture; one over the store's limit is left
// out with a note rather than failing the user.
func (b *builder) setProfile(e *entry, name, picture string) {
	if len(name) > session.MaxNameBytes {
		b.note(fmt.Sprintf("names over %d bytes (left out; the user is imported)", session.MaxNameBytes))
		name = ""
	}
	if len(picture) > session.MaxPictureBytes {
		b.note(fmt.Sprintf("pictures over %d bytes (left out; the user is imported)", session.MaxPictureBytes))
		picture = ""
	}
	e.user.Profile.Name, e.user.Profile.Picture = name, picture
}

// provider maps a source provider to the gateway's; "" leaves it out.
func (b *builder) provider(theirs string) string {
	if to, ok := b.opts.Map[theirs]; ok {
		if to == "" {
			b.note(fmt.Sprintf("%s accounts (--map %s=)", theirs, theirs))
		}
		return to
	}
	return theirs
}

// account adds an account of the user. secret, when set, is a password
// hash in scheme; only a password account may hold one.
func (b *builder) account(e *entry, pos Pos, theirs, accountID, secret, scheme string) {
	provider := b.provider(theirs)
	switch {
	case provider == "":
		return
	case accountID == "":
		b.problem(e, pos, "the %s account has no account ID", theirs)
		return
	case len(provider) > session.MaxProviderBytes:
		b.problem(e, pos, "the provider name %q is over %d bytes: map it to the gateway's with --map", truncate(provider, 80), session.MaxProviderBytes)
		return
	case len(accountID) > session.MaxProviderAccountIDBytes:
		b.problem(e, pos, "the %s account ID is %d bytes, the limit is %d", theirs, len(accountID), session.MaxProviderAccountIDBytes)
		return
	}
	if provider == providerPassword || provider == providerEmail {
		accountID = session.NormalizeEmail(accountID)
		if !validEmail(accountID) {
			b.problem(e, pos, "the %s account's ID %q is not an email address: the gateway's %s accounts are keyed by email", theirs, truncate(accountID, 80), provider)
			return
		}
	}
	a := session.Account{Provider: provider, ProviderAccountID: accountID}
	if secret != "" {
		if provider != providerPassword {
			b.problem(e, pos, "the %s account holds a password hash: map it to the gateway's password provider (--map %s=password), or leave it out (--map %s=)", theirs, theirs, theirs)
			return
		}
		tagged, err := passwordhash.Tag(scheme, secret)
		if err != nil {
			b.problem(e, pos, "the password hash is in a scheme the gateway does not verify: %v", strings.TrimPrefix(err.Error(), "passwordhash: "))
			return
		}
		a.Secret = tagged
	} else if provider == providerPassword {
		b.note("password accounts without a hash (left out; the user is imported)")
		return
	}
	for _, have := range e.user.Accounts {
		if have.Provider == a.Provider && have.ProviderAccountID == a.ProviderAccountID {
			b.problem(e, pos, "the user has the %s account %q twice", provider, accountID)
			return
		}
	}
	e.user.Accounts = append(e.user.Accounts, a)
}

// result checks what was read as a whole and returns the users that may be
// imported: no two users share an ID, an email or an account.
func (b *builder) result() *Result {
	kept := b.entries[:0]
	for _, e := range b.entries {
		b.finishEmail(e)
		if e.anonymous && e.user.Profile.Email == "" && len(e.user.Accounts) == 0 {
			b.note("anonymous users (nobody can sign in as them again)")
			continue
		}
		kept = append(kept, e)
	}
	b.entries = kept
	b.unique(func(e *entry) []string { return []string{e.user.ID} }, "user ID %s")
	b.unique(func(e *entry) []string {
		if e.user.Profile.Email == "" {
			return nil
		}
		return []string{e.user.Profile.Email}
	}, "email %s")
	b.unique(func(e *entry) []string {
		keys := make([]string, len(e.user.Accounts))
		for i, a := range e.user.Accounts {
			keys[i] = a.Provider + " account " + fmt.Sprintf("%q", a.ProviderAccountID)
		}
		return keys
	}, "%s")
	res := &Result{Accounts: make(map[string]int)}
	for _, e := range b.entries {
		if e.bad {
			continue
		}
		slices.SortFunc(e.user.Accounts, func(x, y session.Account) int {
			if c := strings.Compare(x.Provider, y.Provider); c != 0 {
				return c
			}
			return strings.Compare(x.ProviderAccountID, y.ProviderAccountID)
		})
		res.Users = append(res.Users, User{ImportedUser: e.user, Pos: e.pos})
		for _, a := range e.user.Accounts {
			res.Accounts[a.Provider]++
		}
	}
	slices.SortStableFunc(b.problems, func(x, y Problem) int {
		if c := strings.Compare(x.File, y.File); c != 0 {
			return c
		}
		return x.Line - y.Line
	})
	res.Problems = b.problems
	for text, n := range b.notes {
		res.Notes = append(res.Notes, fmt.Sprintf("left out: %d %s", n, text))
	}
	slices.Sort(res.Notes)
	return res
}

// finishEmail marks the email verified when an account row verified it,
// and checks that the password account is keyed by the user's email.
func (b *builder) finishEmail(e *entry) {
	p := &e.user.Profile
	if p.Email != "" && slices.Contains(e.verifiedEmails, p.Email) {
		p.EmailVerified = true
	}
	for _, a := range e.user.Accounts {
		if a.Provider != providerPassword && a.Provider != providerEmail {
			continue
		}
		if p.Email == "" {
			p.Email = a.ProviderAccountID
		}
	}
}

// unique reports every user that shares a key (keys returns a user's) with
// another one, naming the other rows.
func (b *builder) unique(keys func(e *entry) []string, what string) {
	holders := make(map[string][]*entry)
	for _, e := range b.entries {
		for _, k := range keys(e) {
			holders[k] = append(holders[k], e)
		}
	}
	for _, e := range b.entries {
		for _, k := range keys(e) {
			hs := holders[k]
			if len(hs) < 2 {
				continue
			}
			var others []string
			for _, o := range hs {
				if o != e {
					others = append(others, o.pos.String())
				}
			}
			b.problem(e, e.pos, what+" is also the one of the user at %s: resolve the duplicate in the source and import again", k, strings.Join(others, ", "))
		}
	}
}
