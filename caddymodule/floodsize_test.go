//go:build !race

package caddymodule

// floodTestCookies is how many random cookies TestRandomCookieFloodStaysBounded sends.
const floodTestCookies = 100_000
