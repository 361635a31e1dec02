package session

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/convex-auth/caddy-convex-auth/passwordhash"
)

// ErrImportConflict wraps an import refused because another user holds
// what it would take: the verified email, or one of the accounts.
var ErrImportConflict = errors.New("session: import conflict")

// ImportedUser is a user carried over from another system, under the ID
// that system gave it, so that the tokens' sub stays the ID the app's data
// references.
type ImportedUser struct {
	ID string
	// CreatedAt is kept for a new user; zero means now.
	CreatedAt time.Time
	Profile   Profile
	// Accounts are bound to ID (their UserID is ignored). A Secret is a
	// password hash, tagged with its scheme (passwordhash.Tag).
	Accounts []Account
}

// ImportResult says what ImportUser did, or in a dry run would do.
type ImportResult string

// Import results.
const (
	ImportCreated   ImportResult = "created"
	ImportUpdated   ImportResult = "updated"
	ImportUnchanged ImportResult = "unchanged"
)

// ImportOptions tune one ImportUser call.
type ImportOptions struct {
	// DryRun reports the result and the conflicts without writing.
	DryRun bool
	// Events asks a store that sends events (events.Store) to announce a
	// created or updated user as imported. The stores themselves ignore
	// it.
	Events bool
}

// UserImporter imports users. Both stores implement it; it is an interface
// of its own so that UserStore stays what every store must offer.
type UserImporter interface {
	// ImportUser creates the user under its own ID, or brings the user of
	// that ID in line with in:
	//
	//   - the profile is replaced (a ban and the creation time are kept);
	//   - accounts missing are bound; a bound account's secret is replaced
	//     only while it is itself an imported hash, so a password the user
	//     changed or that was rehashed at the gateway stays;
	//   - an account the user has under its previous email, of a provider
	//     in brings under the new one, is unbound (an email change moves the
	//     password); other accounts the user has are kept.
	//
	// Running it again with the same input changes nothing. It writes
	// nothing when in is invalid (ErrInvalidUser) or conflicts
	// (ErrImportConflict: another user holds the verified email or an
	// account).
	ImportUser(ctx context.Context, in ImportedUser, opts ImportOptions) (ImportResult, error)
}

var (
	_ UserImporter = (*MemoryStore)(nil)
	_ UserImporter = (*RedisStore)(nil)
)

// importBackend is what importUser needs of a store: the UserStore and
// AccountSecretSetter operations, and insertUser, which stores a new user
// record under its own ID unless one exists (false, nil).
type importBackend interface {
	UserStore
	AccountSecretSetter
	insertUser(ctx context.Context, u *User) (bool, error)
}

// maxImportAttempts bounds retries when the user is created meanwhile.
const maxImportAttempts = 3

// ImportUser implements UserImporter.
func (m *MemoryStore) ImportUser(ctx context.Context, in ImportedUser, opts ImportOptions) (ImportResult, error) {
	return importUser(ctx, m, in, opts.DryRun, m.opts.now)
}

// ImportUser implements UserImporter. Each step is one key, as every
// user operation's; a run cut short is completed by running it again.
func (s *RedisStore) ImportUser(ctx context.Context, in ImportedUser, opts ImportOptions) (ImportResult, error) {
	return importUser(ctx, s, in, opts.DryRun, s.opts.now)
}

// validate checks in and returns it with its email normalised and its
// accounts bound to its ID.
func (in ImportedUser) validate() (ImportedUser, error) {
	if in.ID == "" || len(in.ID) > MaxUserIDBytes {
		return in, fmt.Errorf("%w: an imported user needs an ID of 1 to %d bytes", ErrInvalidUser, MaxUserIDBytes)
	}
	in.Profile.Email = NormalizeEmail(in.Profile.Email)
	if err := validateProfile(in.Profile); err != nil {
		return in, err
	}
	accounts := make([]Account, len(in.Accounts))
	seen := make(map[[2]string]bool, len(in.Accounts))
	for i, a := range in.Accounts {
		a.UserID = in.ID
		if err := a.validate(); err != nil {
			return in, err
		}
		k := [2]string{a.Provider, a.ProviderAccountID}
		if seen[k] {
			return in, fmt.Errorf("%w: the %s account %q is listed twice", ErrInvalidUser, a.Provider, a.ProviderAccountID)
		}
		seen[k] = true
		accounts[i] = a
	}
	in.Accounts = accounts
	return in, nil
}

// importPlan is what an import writes.
type importPlan struct {
	result  ImportResult
	user    *User     // the record to create (result created) or update
	bind    []Account // accounts to bind
	secrets []Account // bound accounts whose secret is replaced
	unbind  []Account // the user's accounts of its previous email
}

func importUser(ctx context.Context, st importBackend, in ImportedUser, dryRun bool, now func() time.Time) (ImportResult, error) {
	in, err := in.validate()
	if err != nil {
		return "", err
	}
	for range maxImportAttempts {
		plan, err := planImport(ctx, st, in, now)
		if err != nil || dryRun || plan.result == ImportUnchanged {
			return plan.result, err
		}
		if plan.result == ImportCreated {
			ok, err := st.insertUser(ctx, plan.user)
			if err != nil {
				return "", err
			}
			if !ok {
				continue // created meanwhile: plan again
			}
		} else if plan.user != nil {
			if err := st.UpdateUser(ctx, plan.user); err != nil {
				return "", err
			}
		}
		return plan.result, applyAccounts(ctx, st, plan)
	}
	return "", unavailable("import user", errors.New("the user kept changing during the import; run it again"))
}

// planImport reads what the store holds of in and decides what to write;
// a conflict fails it before anything is written.
func planImport(ctx context.Context, st importBackend, in ImportedUser, now func() time.Time) (importPlan, error) {
	plan := importPlan{result: ImportUnchanged}
	cur, err := st.GetUser(ctx, in.ID)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return plan, err
	}
	if in.Profile.Email != "" && in.Profile.EmailVerified {
		holder, err := st.UserByEmail(ctx, in.Profile.Email)
		switch {
		case err == nil && holder.ID != in.ID:
			return plan, fmt.Errorf("%w: %s is the verified email of another user (%s)", ErrImportConflict, in.Profile.Email, holder.ID)
		case err != nil && !errors.Is(err, ErrNotFound):
			return plan, err
		}
	}
	var own []Account
	if cur != nil {
		if own, err = st.AccountsOf(ctx, in.ID); err != nil {
			return plan, err
		}
	}
	providers := make(map[string]bool)
	for _, a := range in.Accounts {
		providers[a.Provider] = true
		bound, err := st.GetAccount(ctx, a.Provider, a.ProviderAccountID)
		switch {
		case errors.Is(err, ErrNotFound):
			plan.bind = append(plan.bind, a)
		case err != nil:
			return plan, err
		case bound.UserID != in.ID:
			return plan, fmt.Errorf("%w: the %s account %q belongs to another user (%s)", ErrImportConflict, a.Provider, a.ProviderAccountID, bound.UserID)
		case a.Secret != bound.Secret && replaceableSecret(bound.Secret):
			plan.secrets = append(plan.secrets, a)
		}
	}
	if cur != nil && cur.Profile.Email != "" && cur.Profile.Email != in.Profile.Email {
		for _, a := range own {
			if providers[a.Provider] && a.ProviderAccountID == cur.Profile.Email {
				plan.unbind = append(plan.unbind, a)
			}
		}
	}
	switch {
	case cur == nil:
		created := in.CreatedAt
		if created.IsZero() {
			created = now()
		}
		plan.result = ImportCreated
		plan.user = &User{ID: in.ID, CreatedAt: created.UTC().Truncate(time.Millisecond), Profile: in.Profile}
	case cur.Profile != in.Profile || cur.Anonymous:
		plan.result = ImportUpdated
		plan.user = &User{ID: in.ID, Profile: in.Profile}
	case len(plan.bind)+len(plan.secrets)+len(plan.unbind) > 0:
		plan.result = ImportUpdated
	}
	return plan, nil
}

// replaceableSecret reports whether a bound account's secret may be
// replaced by an import: none, or one an import wrote and no sign-in has
// rehashed yet. What the gateway wrote is newer than any export.
func replaceableSecret(secret string) bool {
	return secret == "" || passwordhash.Imported(secret)
}

func applyAccounts(ctx context.Context, st importBackend, plan importPlan) error {
	for _, a := range plan.bind {
		err := st.CreateAccount(ctx, a)
		if errors.Is(err, ErrAccountExists) {
			return fmt.Errorf("%w: the %s account %q was bound to a user meanwhile; run the import again", ErrImportConflict, a.Provider, a.ProviderAccountID)
		}
		if err != nil {
			return err
		}
	}
	for _, a := range plan.secrets {
		if err := st.SetAccountSecret(ctx, a.Provider, a.ProviderAccountID, a.UserID, a.Secret); err != nil {
			return err
		}
	}
	for _, a := range plan.unbind {
		if err := st.DeleteAccount(ctx, a.Provider, a.ProviderAccountID); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	return nil
}
