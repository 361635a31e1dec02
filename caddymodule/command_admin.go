package caddymodule

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
)

// AdminClient talks to the operator API on a running Caddy's admin
// endpoint, as `caddy reload` does.
type AdminClient struct {
	// Address is the admin endpoint: host:port or unix/<path>.
	Address string
	// Realm names the realm (its name or issuer); "" when Caddy serves one.
	Realm string
}

// Do sends method to the operator API path (under /convex-auth) with query
// and writes the indented JSON answer to w.
func (c AdminClient) Do(w io.Writer, method, path string, query url.Values) error {
	_, err := c.Send(w, method, path, query, nil, "")
	return err
}

// Send is Do with a request body of contentType; it also returns the
// answer as it came.
func (c AdminClient) Send(w io.Writer, method, path string, query url.Values, body io.Reader, contentType string) ([]byte, error) {
	if query == nil {
		query = url.Values{}
	}
	if c.Realm != "" {
		query.Set("realm", c.Realm)
	}
	uri := adminPrefix + path
	if len(query) > 0 {
		uri += "?" + query.Encode()
	}
	var hdr http.Header
	if contentType != "" {
		hdr = http.Header{"Content-Type": {contentType}}
	}
	resp, err := caddycmd.AdminAPIRequest(c.Address, method, uri, hdr, body)
	if err != nil {
		return nil, fmt.Errorf("the admin endpoint at %s: %w", c.Address, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, fmt.Errorf("reading the admin endpoint's answer: %w", err)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, raw, "", "  "); err != nil {
		return nil, fmt.Errorf("the admin endpoint did not answer JSON (is admin.api.convex_auth built into this Caddy?): %w", err)
	}
	out.WriteByte('\n')
	_, err = w.Write(out.Bytes())
	return raw, err
}

// adminFlags are the flags every users/sessions subcommand takes.
func adminFlags(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.String("address", "", "the admin endpoint's address (default: the config's admin listen address, else localhost:2019)")
	fs.StringP("config", "c", "", "Caddy config file to read the admin address from")
	fs.StringP("adapter", "a", "", "name of the config adapter")
	fs.String("realm", "", "the realm (name or issuer) when Caddy serves several")
}

// adminClient resolves the admin address the way `caddy reload` does.
func adminClient(fl caddycmd.Flags) (AdminClient, error) {
	addr, err := caddycmd.DetermineAdminAPIAddress(fl.String("address"), nil, fl.String("config"), fl.String("adapter"))
	if err != nil {
		return AdminClient{}, fmt.Errorf("finding the admin endpoint: %w", err)
	}
	return AdminClient{Address: addr, Realm: fl.String("realm")}, nil
}

// adminSubcommand is one `users` or `sessions` subcommand.
func adminSubcommand(use, short string, args cobra.PositionalArgs, run func(c AdminClient, fl caddycmd.Flags, args []string) error) *cobra.Command {
	cmd := &cobra.Command{Use: use, Short: short, Args: args}
	adminFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return runCommand(func(fl caddycmd.Flags) error {
			c, err := adminClient(fl)
			if err != nil {
				return err
			}
			return run(c, fl, args)
		})(cmd, args)
	}
	return cmd
}

func usersCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "users find|get|ban|unban|delete|refresh-claims|import",
		Short: "Finds, bans, unbans, deletes and imports users and refreshes their claims through Caddy's admin endpoint",
		Long: `
Talks to the operator API (admin.api.convex_auth) on a running Caddy's admin
endpoint, as caddy reload does: --address, else the admin address of
--config, else localhost:2019. See docs/admin-api.md.
`,
	}
	user := func(args []string) string { return "/users/" + url.PathEscape(args[0]) }
	find := adminSubcommand("find --email <address>", "Finds the user with a verified email", cobra.NoArgs,
		func(c AdminClient, fl caddycmd.Flags, _ []string) error {
			email := fl.String("email")
			if email == "" {
				return fmt.Errorf("give the address with --email")
			}
			return c.Do(os.Stdout, http.MethodGet, "/users", url.Values{"email": {email}})
		})
	find.Flags().String("email", "", "the user's verified email address")
	cmd.AddCommand(find,
		adminSubcommand("get <userId>", "Shows the user, its accounts and whether it is banned", cobra.ExactArgs(1),
			func(c AdminClient, _ caddycmd.Flags, args []string) error {
				return c.Do(os.Stdout, http.MethodGet, user(args), nil)
			}),
		adminSubcommand("ban <userId>", "Bans the user: ends every session at once and refuses its sign-ins", cobra.ExactArgs(1),
			func(c AdminClient, _ caddycmd.Flags, args []string) error {
				return c.Do(os.Stdout, http.MethodPost, user(args)+"/ban", nil)
			}),
		adminSubcommand("unban <userId>", "Lets a banned user sign in again", cobra.ExactArgs(1),
			func(c AdminClient, _ caddycmd.Flags, args []string) error {
				return c.Do(os.Stdout, http.MethodDelete, user(args)+"/ban", nil)
			}),
		adminSubcommand("delete <userId>", "Deletes the user, its accounts and its sessions", cobra.ExactArgs(1),
			func(c AdminClient, _ caddycmd.Flags, args []string) error {
				return c.Do(os.Stdout, http.MethodDelete, user(args), nil)
			}),
		adminSubcommand("refresh-claims <userId>", "Makes every instance ask the app's claims query again for the user", cobra.ExactArgs(1),
			func(c AdminClient, _ caddycmd.Flags, args []string) error {
				return c.Do(os.Stdout, http.MethodPost, user(args)+"/claims/refresh", nil)
			}),
		importCommand(),
	)
	return cmd
}

func sessionsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sessions list|revoke",
		Short: "Lists and ends a user's sessions through Caddy's admin endpoint",
		Long: `
Talks to the operator API (admin.api.convex_auth) on a running Caddy's admin
endpoint, as caddy reload does: --address, else the admin address of
--config, else localhost:2019. See docs/admin-api.md.
`,
	}
	revoke := adminSubcommand("revoke <userId> [<sessionId>] [--except <sessionId>]",
		"Ends one of the user's sessions, or all of them (but --except)", cobra.RangeArgs(1, 2),
		func(c AdminClient, fl caddycmd.Flags, args []string) error {
			path := "/users/" + url.PathEscape(args[0]) + "/sessions"
			if len(args) == 2 {
				if fl.String("except") != "" {
					return fmt.Errorf("--except goes with ending all sessions: leave out the session ID")
				}
				return c.Do(os.Stdout, http.MethodDelete, path+"/"+url.PathEscape(args[1]), nil)
			}
			var q url.Values
			if except := fl.String("except"); except != "" {
				q = url.Values{"except": {except}}
			}
			return c.Do(os.Stdout, http.MethodDelete, path, q)
		})
	revoke.Flags().String("except", "", "a session ID to keep")
	cmd.AddCommand(
		adminSubcommand("list <userId>", "Lists the user's live sessions", cobra.ExactArgs(1),
			func(c AdminClient, _ caddycmd.Flags, args []string) error {
				return c.Do(os.Stdout, http.MethodGet, "/users/"+url.PathEscape(args[0])+"/sessions", nil)
			}),
		revoke,
	)
	return cmd
}
