package caddymodule

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/convex-auth/caddy-convex-auth/importer"
)

// importCommand is `users import`: it reads the export, keeps the tables
// an import reads, and sends them to the operator API, which imports.
func importCommand() *cobra.Command {
	cmd := adminSubcommand("import --from convex-auth|better-auth|authjs <path>",
		"Imports the users of Convex Auth, Better Auth or Auth.js under their IDs, with their passwords", cobra.ExactArgs(1),
		func(c AdminClient, fl caddycmd.Flags, args []string) error {
			return runImport(c, fl, args[0])
		})
	cmd.Long = `
Imports users from an export: <path> is a snapshot ZIP of npx convex export,
that ZIP unpacked, the directory npx convex export --path wrote it into (the
newest snapshot_*.zip), or a directory of table files (Better Auth: user.json
and account.json, or .jsonl). Users keep their IDs (the token's sub), emails,
names, pictures, OAuth accounts and password hashes, which are verified in
their own scheme at the next sign-in and then rehashed to argon2id.

Each row that is not imported is reported with its file and line, and its
user is left out whole; the command then exits with status 1. Running it
again is safe: unchanged users stay as they are, changed rows update.
See docs/migrate.md.
`
	fs := cmd.Flags()
	fs.String("from", "", "the system the export comes from: convex-auth, better-auth or authjs")
	fs.Bool("dry-run", false, "report what the import would do, and write nothing")
	fs.StringArray("map", nil, "rename a provider: <theirs>=<gateway's> (repeatable; <theirs>= leaves it out)")
	fs.String("sub-from", "", "the user field that becomes the user ID, the token's sub (default: the row's ID)")
	fs.String("users-table", "", "the app's users table (default: users)")
	fs.Bool("events", false, "send user.created (or user.updated) marked imported for each user written")
	return cmd
}

func runImport(c AdminClient, fl caddycmd.Flags, path string) error {
	maps, err := fl.GetStringArray("map")
	if err != nil {
		return err
	}
	mapping, err := importer.ParseMap(maps)
	if err != nil {
		return err
	}
	opts := importer.Options{Source: importer.Source(fl.String("from")), Map: mapping, SubFrom: fl.String("sub-from"), UsersTable: fl.String("users-table")}
	if err := opts.Validate(); err != nil {
		return fmt.Errorf("%w (--from)", err)
	}
	fsys, from, closeExport, err := importer.Open(path)
	if err != nil {
		return err
	}
	defer closeExport()
	var body bytes.Buffer
	if err := importer.Pack(fsys, opts.UsersTable, &body); err != nil {
		return fmt.Errorf("%s: %w", from, err)
	}
	if body.Len() > 0 && from != path {
		fmt.Fprintf(os.Stderr, "reading %s\n", from)
	}
	q := url.Values{"from": {string(opts.Source)}}
	for _, m := range maps {
		q.Add("map", m)
	}
	for name, v := range map[string]string{"sub_from": opts.SubFrom, "users_table": opts.UsersTable} {
		if v != "" {
			q.Set(name, v)
		}
	}
	for flag, name := range map[string]string{"dry-run": "dry_run", "events": "events"} {
		if fl.Bool(flag) {
			q.Set(name, strconv.FormatBool(true))
		}
	}
	raw, err := c.Send(os.Stdout, http.MethodPost, "/users/import", q, &body, "application/zip")
	if err != nil {
		return err
	}
	var rep struct {
		Problems          []json.RawMessage `json:"problems"`
		ProblemsNotListed int               `json:"problemsNotListed"`
	}
	if err := json.Unmarshal(raw, &rep); err != nil {
		return fmt.Errorf("the admin endpoint's answer is not an import report: %w", err)
	}
	if n := len(rep.Problems) + rep.ProblemsNotListed; n > 0 {
		return fmt.Errorf("%d rows were not imported: see problems (file and line) above; fix them in the source and run the import again", n)
	}
	return nil
}
