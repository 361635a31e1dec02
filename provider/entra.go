package provider

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Microsoft Entra ID's cloud and its special tenants.
const (
	// EntraAuthority is the global cloud's sign-in host.
	EntraAuthority = "https://login.microsoftonline.com"
	// EntraCommon admits work, school and personal Microsoft accounts;
	// EntraOrganizations work and school ones; EntraConsumers personal
	// ones.
	EntraCommon        = "common"
	EntraOrganizations = "organizations"
	EntraConsumers     = "consumers"
	// EntraConsumersTenant is the tenant ID of every personal Microsoft
	// account.
	EntraConsumersTenant = "9188040d-6c67-4c5b-b112-36a304b66dad"
)

var guidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// EntraConfig configures Microsoft Entra ID (provider microsoft): work and
// school accounts, and personal Microsoft accounts, through the v2.0
// endpoints.
type EntraConfig struct {
	Common
	// Tenant is who may sign in: common (any work, school or personal
	// account), organizations (work and school), consumers (personal), or
	// one tenant's ID (a GUID). Default: common.
	Tenant string `json:"tenant,omitempty"`
	// AllowedTenants admit only accounts of these tenants (tenant IDs,
	// GUIDs; 9188040d-6c67-4c5b-b112-36a304b66dad is personal accounts).
	// Default: none, the tenant option alone decides.
	AllowedTenants []string `json:"allowed_tenants,omitempty"`
	// Authority is the cloud's sign-in host, for the national clouds
	// (https://login.microsoftonline.us,
	// https://login.chinacloudapi.cn). Default:
	// https://login.microsoftonline.com.
	Authority string `json:"authority,omitempty"`
	// Groups: allowed_groups and groups_claim (group object IDs, once the
	// app registration emits the groups claim).
	Groups
}

// Validate checks the configuration without building anything.
func (c EntraConfig) Validate() error {
	switch t := c.Tenant; {
	case t == "", t == EntraCommon, t == EntraOrganizations, t == EntraConsumers, guidPattern.MatchString(t):
	default:
		return fmt.Errorf("tenant %q is not common, organizations, consumers or a tenant ID (a GUID, from the Entra admin center's overview)", t)
	}
	for _, t := range c.AllowedTenants {
		if !guidPattern.MatchString(t) {
			return fmt.Errorf("allowed_tenants: %q is not a tenant ID (a lower-case GUID)", t)
		}
	}
	if err := c.Groups.validate(); err != nil {
		return err
	}
	return c.Common.validate(KindMicrosoft, c.ownRules(), [2]string{"authority", c.Authority})
}

func (c EntraConfig) ownRules() bool { return len(c.AllowedTenants) > 0 || len(c.AllowedGroups) > 0 }

// NewEntra is Microsoft Entra ID. The ID token's issuer is checked
// against https://login.microsoftonline.com/{tid}/v2.0 with the token's
// own tid (the multi-tenant endpoints sign for the user's tenant), the
// tenant against the tenant option and allowed_tenants; the account is
// oid within tid; the email counts as verified only where the token says
// so (email_verified, xms_edov, or verified_primary_email holding it),
// never by itself: Entra lets a tenant set any email on its users.
func NewEntra(c EntraConfig) (OAuth, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("provider %s: %w", c.name(KindMicrosoft), err)
	}
	c.fill(KindMicrosoft, "Microsoft")
	if c.Tenant == "" {
		c.Tenant = EntraCommon
	}
	if c.Authority == "" {
		c.Authority = EntraAuthority
	}
	c.Authority = strings.TrimSuffix(c.Authority, "/")
	base := c.Authority + "/" + c.Tenant
	oc := OIDCConfig{Common: c.Common, Issuer: base + "/v2.0", JWKSURL: base + "/discovery/v2.0/keys", Groups: c.Groups}
	if oc.AuthURL == "" {
		oc.AuthURL = base + "/oauth2/v2.0/authorize"
	}
	if oc.TokenURL == "" {
		oc.TokenURL = base + "/oauth2/v2.0/token"
	}
	e := entra{c: c}
	q := oidcQuirks{checkIssuer: e.checkIssuer, identity: entraIdentity}
	if len(c.AllowedTenants) > 0 {
		q.admit = e.admit
	}
	return newOIDC(oc, KindMicrosoft, q), nil
}

type entra struct{ c EntraConfig }

// checkIssuer checks the verified token's issuer: exactly the cloud's
// v2.0 issuer of the token's own tenant, a tenant the tenant option
// admits. go-oidc's exact check is off for Entra; this replaces it.
func (e entra) checkIssuer(claims map[string]any) error {
	tid := str(claims["tid"])
	if !guidPattern.MatchString(tid) {
		return errors.New("the ID token has no tenant ID (tid)")
	}
	if iss, want := str(claims["iss"]), e.c.Authority+"/"+tid+"/v2.0"; iss != want {
		return fmt.Errorf("the ID token's issuer %q is not %q, its tenant's", iss, want)
	}
	switch t := e.c.Tenant; t {
	case EntraCommon:
	case EntraOrganizations:
		if tid == EntraConsumersTenant {
			return errors.New("a personal account's token came back for tenant organizations")
		}
	case EntraConsumers:
		if tid != EntraConsumersTenant {
			return errors.New("a work or school account's token came back for tenant consumers")
		}
	default:
		if tid != t {
			return fmt.Errorf("the ID token is of tenant %s, not of the configured %s", tid, t)
		}
	}
	if str(claims["oid"]) == "" {
		return errors.New("the ID token has no object ID (oid): keep the profile scope")
	}
	return nil
}

// admit applies allowed_tenants.
func (e entra) admit(claims map[string]any) error {
	if !slices.Contains(e.c.AllowedTenants, str(claims["tid"])) {
		return &Refusal{Rule: RuleTenant, Detail: "tenant " + str(claims["tid"]) + " is not in allowed_tenants"}
	}
	return nil
}

// entraIdentity: the account is oid within tid (sub is per app, and an
// email or UPN is the tenant's to set); the email is verified only where
// the token says so.
func entraIdentity(claims map[string]any, _ Callback) (Identity, error) {
	email := str(claims[claimEmail])
	id := Identity{
		Subject: str(claims["tid"]) + "/" + str(claims["oid"]),
		Email:   email,
		Name:    str(claims[claimName]),
	}
	id.EmailVerified = email != "" && (isTrue(claims[claimEmailVerified]) || isTrue(claims["xms_edov"]) ||
		slices.ContainsFunc(stringList(claims["verified_primary_email"]), func(v string) bool { return strings.EqualFold(v, email) }))
	return id, nil
}
