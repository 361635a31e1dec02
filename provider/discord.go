package provider

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"golang.org/x/oauth2"
)

// Discord's endpoints.
const (
	DiscordAuthURL  = "https://discord.com/oauth2/authorize"
	DiscordTokenURL = "https://discord.com/api/oauth2/token"
	DiscordAPIURL   = "https://discord.com/api"
	discordCDN      = "https://cdn.discordapp.com"
)

// DiscordConfig configures Discord (provider discord).
type DiscordConfig struct {
	Common
	// APIURL is Discord's API root. Default: https://discord.com/api.
	APIURL string `json:"api_url,omitempty"`
}

// Validate checks the configuration without building anything.
func (c DiscordConfig) Validate() error {
	return c.validate(KindDiscord, false, [2]string{"api_url", c.APIURL})
}

type discordProvider struct{ c DiscordConfig }

// NewDiscord is Discord's OAuth 2.0 flow (state, PKCE) and the user from
// /users/@me. Discord lets an account keep an email it never verified:
// its verified field says whether it did.
func NewDiscord(c DiscordConfig) (OAuth, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("provider %s: %w", c.name(KindDiscord), err)
	}
	c.fill(KindDiscord, "Discord")
	if c.APIURL == "" {
		c.APIURL = DiscordAPIURL
	}
	c.APIURL = strings.TrimSuffix(c.APIURL, "/")
	return &discordProvider{c: c}, nil
}

func (d *discordProvider) Info() Info { return d.c.Info(KindDiscord) }

func (d *discordProvider) config(redirectURI string) *oauth2.Config {
	return d.c.oauth2Config(oauth2.Endpoint{AuthURL: DiscordAuthURL, TokenURL: DiscordTokenURL}, []string{"identify", "email"}, redirectURI)
}

func (d *discordProvider) AuthCodeURL(ctx context.Context, f Flow) (string, error) {
	return d.config(f.RedirectURI).AuthCodeURL(f.State, oauth2.S256ChallengeOption(f.Verifier)), nil
}

func (d *discordProvider) Identity(ctx context.Context, f Flow, cb Callback) (Identity, error) {
	ctx = d.c.clientContext(ctx)
	tok, err := d.config(f.RedirectURI).Exchange(ctx, cb.Code, oauth2.VerifierOption(f.Verifier))
	if err != nil {
		return Identity{}, fmt.Errorf("exchanging the code: %w", err)
	}
	var user struct {
		ID         string  `json:"id"`
		Username   string  `json:"username"`
		GlobalName *string `json:"global_name"`
		Avatar     *string `json:"avatar"`
		Email      *string `json:"email"`
		Verified   bool    `json:"verified"`
	}
	if err := getJSON(ctx, d.c.HTTPClient, tok, "Discord API", d.c.APIURL+"/users/@me", &user); err != nil {
		return Identity{}, err
	}
	if user.ID == "" {
		return Identity{}, errors.New("Discord's /users/@me answer has no id")
	}
	id := Identity{Subject: user.ID, Name: user.Username}
	if user.GlobalName != nil && *user.GlobalName != "" {
		id.Name = *user.GlobalName
	}
	if user.Email != nil {
		id.Email, id.EmailVerified = *user.Email, user.Verified
	}
	if user.Avatar != nil && *user.Avatar != "" {
		id.Picture = discordCDN + "/avatars/" + url.PathEscape(user.ID) + "/" + url.PathEscape(*user.Avatar) + ".png"
	}
	return id, nil
}
