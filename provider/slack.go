package provider

import (
	"fmt"
	"regexp"

	"golang.org/x/oauth2"
)

// SlackIssuer is Sign in with Slack's OpenID Connect issuer.
const SlackIssuer = "https://slack.com"

// Claims of Slack's ID token.
const (
	slackTeamClaim  = "https://slack.com/team_id"
	slackImageClaim = "https://slack.com/user_image_192"
)

var slackTeamPattern = regexp.MustCompile(`^[TE][A-Z0-9]{2,}$`)

// SlackConfig configures Sign in with Slack (provider slack), Slack's
// OpenID Connect provider.
type SlackConfig struct {
	Common
	// Team is a workspace ID (T…): Slack signs the user in to it without
	// asking which, and the gateway admits only its members. Default: any
	// workspace.
	Team string `json:"team,omitempty"`
	// Issuer overrides Slack's issuer, where discovery is read. Default:
	// https://slack.com.
	Issuer string `json:"issuer,omitempty"`
}

// Validate checks the configuration without building anything.
func (c SlackConfig) Validate() error {
	if c.Team != "" && !slackTeamPattern.MatchString(c.Team) {
		return fmt.Errorf("team %q is not a Slack workspace ID (T followed by letters and digits)", c.Team)
	}
	return c.validate(KindSlack, c.Team != "", [2]string{"issuer", c.Issuer})
}

// NewSlack is Sign in with Slack. A failed exchange comes back as 200 with
// {"ok": false}, which reads as a token response without a token.
func NewSlack(c SlackConfig) (OAuth, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("provider %s: %w", c.name(KindSlack), err)
	}
	c.fill(KindSlack, "Slack")
	if c.Issuer == "" {
		c.Issuer = SlackIssuer
	}
	q := oidcQuirks{identity: slackIdentity}
	if c.Team != "" {
		team := c.Team
		q.authParams = []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("team", team)}
		q.admit = func(claims map[string]any) error {
			if got := str(claims[slackTeamClaim]); got != team {
				return &Refusal{Rule: RuleWorkspace, Detail: "workspace " + got + " is not " + team}
			}
			return nil
		}
	}
	return newOIDC(OIDCConfig{Common: c.Common, Issuer: c.Issuer}, KindSlack, q), nil
}

// slackIdentity reads the standard claims; Slack's picture is its
// user_image claim.
func slackIdentity(claims map[string]any, _ Callback) (Identity, error) {
	id := standardIdentity(claims)
	if id.Picture == "" {
		id.Picture = str(claims[slackImageClaim])
	}
	return id, nil
}
