package main

import (
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// The Convex stand-in of the claims scenarios: it answers the gateway's
// claims query with the same small object for every session, as an app's
// query that reads a role and memberships would. It runs in the bench
// process: with one call per session per ttl it does next to nothing
// while a scenario is measured.

const benchClaimsReply = `{"status":"success","value":{"role":"member","orgs":["org_1","org_2"]},"logLines":[]}`

type claimsStandIn struct {
	srv   *http.Server
	calls atomic.Int64
}

func startClaimsStandIn(addr string) (*claimsStandIn, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &claimsStandIn{}
	c.srv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.Method != http.MethodPost || r.URL.Path != "/api/query" {
			http.NotFound(w, r)
			return
		}
		c.calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, benchClaimsReply)
	})}
	go func() { _ = c.srv.Serve(l) }()
	return c, nil
}

func (c *claimsStandIn) stop() { _ = c.srv.Close() }

// claimsOptions make a gateway site read claims on every protected
// request: the claims block, and a protect rule whose allow and deny read
// a claim and the email.
func claimsOptions(convexAddr string) string {
	return `claims {
			convex_url http://` + convexAddr + `
			query auth:claims
		}
		protect /loggedin* {
			allow claim role admin member
			deny email blocked@example.com
		}`
}
