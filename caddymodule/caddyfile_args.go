package caddymodule

import (
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// The value parsers of the Caddyfile options.

// cacheSizeArg reads a cache size: a positive number, or -1 for no cache.
func cacheSizeArg(d *caddyfile.Dispenser, dst *int) error {
	name := d.Val()
	var s string
	if err := oneArg(d, &s); err != nil {
		return err
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < -1 || v == 0 {
		return d.Errf("%s %q is not a positive number or -1 (no cache)", name, s)
	}
	*dst = v
	return nil
}

func oneArg(d *caddyfile.Dispenser, dst *string) error {
	name := d.Val()
	if !d.NextArg() {
		return d.Errf("%s needs a value", name)
	}
	*dst = d.Val()
	if d.NextArg() {
		return d.Errf("%s takes one value, got more", name)
	}
	return nil
}

func flagArg(d *caddyfile.Dispenser, dst *bool) error {
	if d.NextArg() {
		return d.Errf("%s takes no value", d.Val())
	}
	*dst = true
	return nil
}

func durationArg(d *caddyfile.Dispenser, dst *caddy.Duration) error {
	name := d.Val()
	var s string
	if err := oneArg(d, &s); err != nil {
		return err
	}
	v, err := caddy.ParseDuration(s)
	if err != nil {
		return d.Errf("%s %q is not a duration: use e.g. 5m or 720h", name, s)
	}
	if v <= 0 {
		return d.Errf("%s must be positive, got %s", name, s)
	}
	*dst = caddy.Duration(v)
	return nil
}

func positiveIntArg(d *caddyfile.Dispenser, dst *int) error {
	name := d.Val()
	if err := intArg(d, dst); err != nil {
		return err
	}
	if *dst < 1 {
		return d.Errf("%s must be at least 1", name)
	}
	return nil
}

func intArg(d *caddyfile.Dispenser, dst *int) error {
	name := d.Val()
	var s string
	if err := oneArg(d, &s); err != nil {
		return err
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 0 {
		return d.Errf("%s %q is not a non-negative number", name, s)
	}
	*dst = v
	return nil
}
