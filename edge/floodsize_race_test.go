//go:build race

package edge

// floodTestCookies is smaller under the race detector, which makes each
// request many times slower.
const floodTestCookies = 20_000
