package session

import (
	"testing"
	"time"
)

func TestOptionsDefaults(t *testing.T) {
	o := Options{}.withDefaults()
	if o.SessionTTL != DefaultSessionTTL || o.IdleTTL != DefaultIdleTTL || o.TouchInterval != DefaultTouchInterval || o.Now == nil {
		t.Fatalf("defaults %+v", o)
	}
	if err := (Options{}).Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestOptionsValidate(t *testing.T) {
	bad := []Options{
		{SessionTTL: -time.Second},
		{IdleTTL: time.Minute, TouchInterval: time.Minute},
		{IdleTTL: time.Microsecond},
	}
	for _, o := range bad {
		if err := o.Validate(); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
	// A store built without Validate still gets a touch interval it can use.
	if o := (Options{IdleTTL: time.Minute, TouchInterval: time.Hour}).withDefaults(); o.TouchInterval >= o.IdleTTL {
		t.Fatalf("touch interval %v not below idle TTL %v", o.TouchInterval, o.IdleTTL)
	}
}
