package redistest

import "testing"

func TestScriptCalls(t *testing.T) {
	info := "# Commandstats\r\n" +
		"cmdstat_evalsha:calls=40,usec=900,usec_per_call=22.50,rejected_calls=0,failed_calls=0\r\n" +
		"cmdstat_get:calls=7,usec=10,usec_per_call=1.43,rejected_calls=0,failed_calls=0\r\n" +
		"cmdstat_eval:calls=2,usec=80,usec_per_call=40.00,rejected_calls=0,failed_calls=0\r\n"
	if n, err := ScriptCalls(info); err != nil || n != 42 {
		t.Fatalf("ScriptCalls = %d, %v; want 42", n, err)
	}
	if n, err := ScriptCalls("# Commandstats\r\n"); err != nil || n != 0 {
		t.Fatalf("no scripts yet: %d, %v; want 0", n, err)
	}
	if _, err := ScriptCalls("cmdstat_eval:calls=x,usec=1\r\n"); err == nil {
		t.Fatal("a malformed count was accepted")
	}
}

func TestCommandCalls(t *testing.T) {
	info := "# Commandstats\r\n" +
		"cmdstat_setrange:calls=5,usec=9,usec_per_call=1.80,rejected_calls=0,failed_calls=0\r\n" +
		"cmdstat_set:calls=3,usec=9,usec_per_call=3.00,rejected_calls=0,failed_calls=0\r\n" +
		"cmdstat_pexpire:calls=4,usec=4,usec_per_call=1.00,rejected_calls=0,failed_calls=0\r\n"
	if n, err := CommandCalls(info, "setrange"); err != nil || n != 5 {
		t.Fatalf("CommandCalls(setrange) = %d, %v; want 5 (not set's 3)", n, err)
	}
	if n, err := CommandCalls(info, "set", "pexpire"); err != nil || n != 7 {
		t.Fatalf("CommandCalls(set, pexpire) = %d, %v; want 7", n, err)
	}
}
