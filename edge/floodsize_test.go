//go:build !race

package edge

// floodTestCookies is how many random cookies TestRandomCookieFloodStaysBounded sends.
const floodTestCookies = 100_000
