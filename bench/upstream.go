package main

import (
	"bufio"
	"bytes"
	"hash/maphash"
	"net"
	"strconv"
	"sync"
)

// The bench upstream: a minimal HTTP/1.1 keep-alive server that answers
// every request with a fixed 200, so that it costs next to nothing and the
// gateway's share of the CPU shows. It runs as its own process (the bench
// binary started with -role upstream) so that it can be pinned like the
// other servers.
//
// It also counts the distinct tokens the gateway injected: each distinct
// X-Convex-Token value is one mint. GET /__bench/tokens answers with the
// count since the previous call.

const (
	upstreamBody       = "ok"
	tokenHeaderPrefix  = "x-convex-token:"
	benchTokensPath    = "/__bench/tokens"
	upstreamReadBuffer = 16 << 10
)

var upstreamResponse = []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
	strconv.Itoa(len(upstreamBody)) + "\r\n\r\n" + upstreamBody)

type tokenCounter struct {
	seed maphash.Seed
	mu   sync.Mutex
	seen map[uint64]struct{}
}

func (t *tokenCounter) add(token []byte) {
	h := maphash.Bytes(t.seed, token)
	t.mu.Lock()
	t.seen[h] = struct{}{}
	t.mu.Unlock()
}

func (t *tokenCounter) takeCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(t.seen)
	t.seen = make(map[uint64]struct{})
	return n
}

func runUpstream(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	tokens := &tokenCounter{seed: maphash.MakeSeed(), seen: make(map[uint64]struct{})}
	for {
		c, err := l.Accept()
		if err != nil {
			return err
		}
		go serveUpstreamConn(c, tokens)
	}
}

func serveUpstreamConn(c net.Conn, tokens *tokenCounter) {
	defer c.Close()
	rd := bufio.NewReaderSize(c, upstreamReadBuffer)
	for {
		line, err := rd.ReadSlice('\n')
		if err != nil {
			return
		}
		statsRequest := bytes.Contains(line, []byte(benchTokensPath))
		// Headers: only the injected token matters. Requests have no body.
		for {
			line, err = rd.ReadSlice('\n')
			if err != nil {
				return
			}
			if len(line) <= 2 {
				break
			}
			if len(line) > len(tokenHeaderPrefix) && bytes.EqualFold(line[:len(tokenHeaderPrefix)], []byte(tokenHeaderPrefix)) {
				tokens.add(bytes.TrimSpace(line[len(tokenHeaderPrefix):]))
			}
		}
		if statsRequest {
			body := strconv.Itoa(tokens.takeCount())
			_, err = c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body))
		} else {
			_, err = c.Write(upstreamResponse)
		}
		if err != nil {
			return
		}
	}
}
