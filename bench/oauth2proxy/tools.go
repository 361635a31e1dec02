//go:build tools

// Package oauth2proxy pins oauth2-proxy, the peer the load benchmark
// measures the gateway against, in a module of its own so that the
// project's go.mod does not carry it. The bench builds it with
//
//	go build -C bench/oauth2proxy -o <dir>/oauth2-proxy github.com/oauth2-proxy/oauth2-proxy/v7
package oauth2proxy

import _ "github.com/oauth2-proxy/oauth2-proxy/v7"
