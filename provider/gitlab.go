package provider

import (
	"fmt"
	"strings"
)

// GitLabURL is GitLab.com, the default instance.
const GitLabURL = "https://gitlab.com"

// GitLabConfig configures GitLab (provider gitlab): GitLab.com, or a
// self-managed instance by its base URL, through the instance's OpenID
// Connect provider.
type GitLabConfig struct {
	Common
	// BaseURL is the instance's root, also its OIDC issuer, e.g.
	// https://gitlab.example.com. Default: https://gitlab.com.
	BaseURL string `json:"base_url,omitempty"`
	// Groups: allowed_groups (group paths, e.g. acme/platform; a member
	// of a subgroup is in its ancestors too) and groups_claim (default
	// groups, read from user info; groups_direct is in the ID token).
	Groups
}

// Validate checks the configuration without building anything.
func (c GitLabConfig) Validate() error {
	if err := c.Groups.validate(); err != nil {
		return err
	}
	return c.Common.validate(KindGitLab, len(c.AllowedGroups) > 0, [2]string{"base_url", c.BaseURL})
}

// NewGitLab is GitLab's OpenID Connect provider, found by discovery at
// the instance. Its ID token carries the email and whether GitLab
// verified it; the name, avatar and groups come from user info.
func NewGitLab(c GitLabConfig) (OAuth, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("provider %s: %w", c.name(KindGitLab), err)
	}
	c.fill(KindGitLab, "GitLab")
	if c.BaseURL == "" {
		c.BaseURL = GitLabURL
	}
	return newOIDC(OIDCConfig{Common: c.Common, Issuer: strings.TrimSuffix(c.BaseURL, "/"), Groups: c.Groups}, KindGitLab, oidcQuirks{}), nil
}
