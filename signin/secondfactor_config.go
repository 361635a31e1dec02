package signin

import (
	"fmt"
	"time"

	"github.com/convex-auth/caddy-convex-auth/secondfactor"
)

// Second-factor modes.
const (
	// SecondFactorOff offers no second factor: none is enrolled, and a
	// protect block's mfa refuses with a page.
	SecondFactorOff = "off"
	// SecondFactorOptional lets users enrol one from the account page;
	// once a user has one, every sign-in asks for it.
	SecondFactorOptional = "optional"
	// SecondFactorRequired makes a user without one enrol at the next
	// sign-in, before any session exists.
	SecondFactorRequired = "required"
)

// MaxRememberDevice bounds remember_device.
const MaxRememberDevice = 30 * 24 * time.Hour

// SecondFactorConfig is the second factor's policy.
type SecondFactorConfig struct {
	// Mode is off, optional or required. Default: optional.
	Mode string
	// Keys seal TOTP secrets at rest (secondfactor.SecretKeys). Required
	// unless Mode is off.
	Keys *secondfactor.SecretKeys
	// RememberDevice lets a browser skip the challenge for this long after
	// a challenge passed in it ("Remember this browser", through the
	// device cookie); a password reset, removing a factor and "sign out
	// everywhere" end it. At most 30 days. Default: 0, never skipped.
	RememberDevice time.Duration
}

// Validate checks the options that are set.
func (c SecondFactorConfig) Validate() error {
	switch c.Mode {
	case "", SecondFactorOff, SecondFactorOptional, SecondFactorRequired:
	default:
		return fmt.Errorf("second_factor %q is unknown: use off, optional or required", c.Mode)
	}
	if c.RememberDevice < 0 || c.RememberDevice > MaxRememberDevice {
		return fmt.Errorf("remember_device %s is out of range: use 0 (off) to %s", c.RememberDevice, MaxRememberDevice)
	}
	if c.RememberDevice > 0 && c.Mode == SecondFactorOff {
		return fmt.Errorf("remember_device needs a second factor: second_factor is off")
	}
	return nil
}

func (c *SecondFactorConfig) fill() error {
	if err := c.Validate(); err != nil {
		return err
	}
	if c.Mode == "" {
		c.Mode = SecondFactorOptional
	}
	if c.Mode != SecondFactorOff && c.Keys == nil {
		return fmt.Errorf("second_factor %s needs the factor key that seals TOTP secrets", c.Mode)
	}
	return nil
}
