package signin

import (
	"encoding/base64"
	"html"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestControlBordersContrast reads the shared stylesheet: the border of
// every control (inputs and buttons, in each state the sheet styles) must
// stand 3:1 against the backgrounds controls sit on (WCAG 2.2, 1.4.11
// non-text contrast), in the light and the dark scheme.
func TestControlBordersContrast(t *testing.T) {
	_, css, _ := strings.Cut(styleTemplateText, `{{define "style"}}`)
	css, _, _ = strings.Cut(css, "{{end}}")
	dark := strings.Index(css, "@media (prefers-color-scheme: dark)")
	if dark < 0 {
		t.Fatal("the stylesheet has no dark scheme")
	}
	light := cssVars(t, css[:dark])
	darkVars := cssVars(t, css[dark:])
	schemes := map[string]map[string]string{"light": light, "dark": merged(light, darkVars)}

	rule := regexp.MustCompile(`(?m)^\s*([^{}@]+?)\s*\{([^{}]*)\}`)
	decl := regexp.MustCompile(`border(?:-color)?\s*:\s*([^;]+)`)
	checked := 0
	for _, m := range rule.FindAllStringSubmatch(css, -1) {
		selector, body := m[1], m[2]
		if !strings.Contains(selector, "input") && !strings.Contains(selector, ".btn") {
			continue
		}
		for _, d := range decl.FindAllStringSubmatch(body, -1) {
			ref := regexp.MustCompile(`var\((--[a-z-]+)\)`).FindStringSubmatch(d[1])
			if ref == nil {
				t.Fatalf("%s: border %q names no colour variable", selector, d[1])
			}
			for scheme, vars := range schemes {
				border := colour(t, vars[ref[1]])
				for _, bg := range []string{"--bg", "--card", "--field"} {
					if r := contrast(border, colour(t, vars[bg])); r < 3 {
						t.Errorf("%s (%s): border %s on %s %s is %.2f:1; want at least 3:1",
							selector, scheme, vars[ref[1]], bg, vars[bg], r)
					}
				}
				checked++
			}
			t.Logf("%s: border %s", selector, d[1])
		}
	}
	if checked < 6 {
		t.Fatalf("checked %d control borders; the stylesheet's controls were not found", checked)
	}
	// The numbers this rests on: WCAG's own examples.
	if r := contrast(colour(t, "#767676"), colour(t, "#fff")); math.Abs(r-4.54) > 0.01 {
		t.Fatalf("contrast(#767676, white) = %.3f; want 4.54", r)
	}
	if r := contrast(colour(t, "#dcdfe4"), colour(t, "#fff")); r >= 3 {
		t.Fatalf("the old input border is %.2f:1 on white; the check would not have caught it", r)
	}
}

// cssVars reads the custom properties (--name: #hex) of a :root block.
func cssVars(t *testing.T, css string) map[string]string {
	vars := map[string]string{}
	for _, m := range regexp.MustCompile(`(--[a-z-]+)\s*:\s*(#[0-9a-fA-F]{3,6})\b`).FindAllStringSubmatch(css, -1) {
		vars[m[1]] = m[2]
	}
	if len(vars) == 0 {
		t.Fatal("no colour variables found")
	}
	return vars
}

func merged(base, over map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		out[k] = v
	}
	return out
}

// colour parses #rgb or #rrggbb.
func colour(t *testing.T, hex string) [3]float64 {
	t.Helper()
	h := strings.TrimPrefix(hex, "#")
	if len(h) == 3 {
		h = string([]byte{h[0], h[0], h[1], h[1], h[2], h[2]})
	}
	if len(h) != 6 {
		t.Fatalf("colour %q is not #rgb or #rrggbb", hex)
	}
	var c [3]float64
	for i := range c {
		v, err := strconv.ParseUint(h[2*i:2*i+2], 16, 8)
		if err != nil {
			t.Fatalf("colour %q: %v", hex, err)
		}
		c[i] = float64(v) / 255
	}
	return c
}

// contrast is WCAG's contrast ratio of two sRGB colours.
func contrast(a, b [3]float64) float64 {
	la, lb := luminance(a), luminance(b)
	return (math.Max(la, lb) + 0.05) / (math.Min(la, lb) + 0.05)
}

func luminance(c [3]float64) float64 {
	lin := func(v float64) float64 {
		if v <= 0.04045 {
			return v / 12.92
		}
		return math.Pow((v+0.055)/1.055, 2.4)
	}
	return 0.2126*lin(c[0]) + 0.7152*lin(c[1]) + 0.0722*lin(c[2])
}

// Every page links the icon, as a data: URI its Content-Security-Policy
// allows, so no page makes the browser ask the app for /favicon.ico.
func TestPagesLinkTheFavicon(t *testing.T) {
	e := newPasswordEnv(t)
	resp, page := newBrowser(t).Get(e.origin + PathSignIn)
	link := regexp.MustCompile(`<link rel="icon" type="image/svg\+xml" href="([^"]+)">`).FindStringSubmatch(page)
	if resp.StatusCode != http.StatusOK || link == nil || html.UnescapeString(link[1]) != FaviconURL {
		t.Fatalf("the sign-in page does not link the icon:\n%s", page)
	}
	svg, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(FaviconURL, "data:image/svg+xml;base64,"))
	if err != nil || !strings.HasPrefix(string(svg), "<svg ") {
		t.Fatalf("the icon is not a base64 SVG: %v", err)
	}
	csp := resp.Header.Get("Content-Security-Policy")
	img := regexp.MustCompile(`img-src ([^;]+)`).FindStringSubmatch(csp)
	if img == nil || !strings.Contains(" "+img[1]+" ", " data: ") {
		t.Fatalf("Content-Security-Policy %q does not allow data: images", csp)
	}
}
