package control

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/convex-auth/caddy-convex-auth/importer"
	"github.com/convex-auth/caddy-convex-auth/session"
)

// Import limits.
const (
	// MaxImportBytes bounds the ZIP one import request sends.
	MaxImportBytes = 256 << 20
	// MaxProblemsListed bounds the problems a report lists; it counts
	// the rest.
	MaxProblemsListed = 1000
	// importWorkers import users side by side.
	importWorkers = 8
)

// ImportRequest is one import: how to read the export, and whether to
// write.
type ImportRequest struct {
	Options importer.Options
	// DryRun reports what the import would do and writes nothing.
	DryRun bool
	// Events announces each user created or updated with user.created or
	// user.updated marked imported (the realm must send events).
	Events bool
}

// ImportReport is what an import did, or in a dry run would do.
type ImportReport struct {
	Source importer.Source `json:"source"`
	DryRun bool            `json:"dryRun"`
	// Read counts the users read whole from the export.
	Read      int `json:"read"`
	Created   int `json:"created"`
	Updated   int `json:"updated"`
	Unchanged int `json:"unchanged"`
	// Accounts counts the accounts of the users read, by gateway provider.
	Accounts map[string]int `json:"accounts"`
	// Problems are the rows not imported, with their file and line; a
	// user with one is left out whole. Conflicts with the store's users
	// are here too.
	Problems          []importer.Problem `json:"problems"`
	ProblemsNotListed int                `json:"problemsNotListed,omitempty"`
	// Notes say what the import leaves out by design.
	Notes []string `json:"notes"`
}

// Import reads the export in fsys and imports its users into the realm,
// several at a time, each within timeout. An error means nothing useful
// could be done (an unusable export, the store failing); users imported
// before the store failed stay, and running the import again completes it.
func Import(ctx context.Context, realm Realm, fsys fs.FS, req ImportRequest, timeout time.Duration) (*ImportReport, error) {
	im, ok := realm.Users.(session.UserImporter)
	if !ok {
		return nil, fmt.Errorf("realm %q's store cannot import users", realm.Name)
	}
	res, err := importer.Read(fsys, req.Options)
	if err != nil {
		return nil, &apiError{http.StatusBadRequest, "bad_export", err.Error()}
	}
	rep := &ImportReport{Source: req.Options.Source, DryRun: req.DryRun, Read: len(res.Users), Accounts: res.Accounts, Notes: res.Notes}
	if rep.Notes == nil {
		rep.Notes = []string{}
	}
	problems := res.Problems

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu      sync.Mutex
		failure error
		wg      sync.WaitGroup
	)
	work := make(chan importer.User)
	for range importWorkers {
		wg.Go(func() {
			for u := range work {
				uctx, ucancel := context.WithTimeout(ctx, timeout)
				result, err := im.ImportUser(uctx, u.ImportedUser, session.ImportOptions{DryRun: req.DryRun, Events: req.Events})
				ucancel()
				mu.Lock()
				switch {
				case err == nil:
					switch result {
					case session.ImportCreated:
						rep.Created++
					case session.ImportUpdated:
						rep.Updated++
					default:
						rep.Unchanged++
					}
				case errors.Is(err, session.ErrImportConflict), errors.Is(err, session.ErrInvalidUser):
					problems = append(problems, importer.Problem{Pos: u.Pos, UserID: u.ID, Message: importMessage(err)})
				default:
					if failure == nil {
						failure = err
						cancel()
					}
				}
				mu.Unlock()
			}
		})
	}
	for _, u := range res.Users {
		select {
		case work <- u:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(work)
	wg.Wait()
	if failure == nil && ctx.Err() != nil {
		failure = ctx.Err()
	}
	if failure != nil {
		return nil, &ImportAbortedError{Done: rep.Created + rep.Updated + rep.Unchanged + len(problems) - len(res.Problems), Of: rep.Read, Err: failure}
	}
	if len(problems) > MaxProblemsListed {
		rep.ProblemsNotListed = len(problems) - MaxProblemsListed
		problems = problems[:MaxProblemsListed]
	}
	rep.Problems = problems
	if rep.Problems == nil {
		rep.Problems = []importer.Problem{}
	}
	return rep, nil
}

// ImportAbortedError is an import stopped by the store (unavailable) or
// the caller (canceled) after Done of Of users.
type ImportAbortedError struct {
	Done, Of int
	Err      error
}

func (e *ImportAbortedError) Error() string {
	return fmt.Sprintf("the import stopped after %d of %d users: %v", e.Done, e.Of, e.Err)
}

func (e *ImportAbortedError) Unwrap() error { return e.Err }

// importMessage is a store's refusal as the report says it.
func importMessage(err error) string {
	msg := err.Error()
	for _, prefix := range []string{session.ErrImportConflict.Error() + ": ", session.ErrInvalidUser.Error() + ": "} {
		if len(msg) > len(prefix) && msg[:len(prefix)] == prefix {
			return msg[len(prefix):]
		}
	}
	return msg
}

// importRequest reads POST /users/import: the options from the query, the
// export as a ZIP body.
func importRequest(r *http.Request) (ImportRequest, fs.FS, *apiError) {
	q := r.URL.Query()
	var req ImportRequest
	req.Options.Source = importer.Source(q.Get("from"))
	req.Options.SubFrom = q.Get("sub_from")
	req.Options.UsersTable = q.Get("users_table")
	m, err := importer.ParseMap(q["map"])
	if err != nil {
		return req, nil, errorf(http.StatusBadRequest, "bad_import", "%s", err.Error())
	}
	req.Options.Map = m
	for name, dst := range map[string]*bool{"dry_run": &req.DryRun, "events": &req.Events} {
		if v := q.Get(name); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return req, nil, errorf(http.StatusBadRequest, "bad_import", "%s=%q: use true or false", name, v)
			}
			*dst = b
		}
	}
	if err := req.Options.Validate(); err != nil {
		return req, nil, errorf(http.StatusBadRequest, "bad_import", "%s (?from=)", err.Error())
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxImportBytes+1))
	if err != nil {
		return req, nil, errorf(http.StatusBadRequest, "bad_import", "reading the export: %v", err)
	}
	if len(body) > MaxImportBytes {
		return req, nil, errorf(http.StatusRequestEntityTooLarge, "export_too_large", "the export is over %d MiB: send only its auth tables (caddy convex-auth users import does), or import in parts", MaxImportBytes>>20)
	}
	zr, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
	if err != nil {
		return req, nil, errorf(http.StatusBadRequest, "bad_import", "the body is not a ZIP: send the export (a snapshot ZIP of npx convex export, or a ZIP of the table files) with Content-Type: application/zip")
	}
	return req, zr, nil
}

// serveImport answers POST /users/import with the import's report. The
// import has no overall deadline (an export can hold millions of users):
// each user's store calls have the handler's timeout, and a client that
// goes away stops it.
func (h *Handler) serveImport(w http.ResponseWriter, r *http.Request, realm Realm, c call) (call, int, error) {
	req, fsys, aerr := importRequest(r)
	if aerr != nil {
		return c, aerr.status, aerr
	}
	rep, err := Import(r.Context(), realm, fsys, req, h.cfg.Timeout)
	var aborted *ImportAbortedError
	switch {
	case errors.As(err, &aborted) && session.IsUnavailable(err):
		h.cfg.Logger.Warn("admin api: an import stopped: the store failed", zap.Int("done", aborted.Done), zap.Int("of", aborted.Of), zap.Error(err))
		ae := errorf(http.StatusServiceUnavailable, "store_unavailable", "the session store cannot be reached: the import stopped after %d of %d users; run it again (it repeats safely)", aborted.Done, aborted.Of)
		return c, ae.status, ae
	case err != nil:
		ae := h.storeError(err, c.op)
		return c, ae.status, ae
	}
	h.cfg.Logger.Info("users imported", zap.String("realm", realm.Name), zap.String("source", string(rep.Source)), zap.Bool("dry_run", rep.DryRun),
		zap.Int("read", rep.Read), zap.Int("created", rep.Created), zap.Int("updated", rep.Updated), zap.Int("unchanged", rep.Unchanged),
		zap.Int("problems", len(rep.Problems)+rep.ProblemsNotListed))
	writeJSON(w, http.StatusOK, rep)
	return c, http.StatusOK, nil
}
