package edge

import (
	"encoding/json"
	"net/http"

	"github.com/convex-auth/caddy-convex-auth/signin"
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeJSONError answers with {"error": code, "message": message}.
func writeJSONError(w http.ResponseWriter, status int, code, message string) {
	if status == http.StatusUnauthorized || status == http.StatusServiceUnavailable || status == http.StatusForbidden {
		w.Header().Set("Cache-Control", "no-store")
	}
	writeJSON(w, status, struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}{code, message})
}

// bannedPage tells a browser whose sign-in the app asserted that the user is
// banned. It links the gateway pages' icon, so it asks the app for no
// /favicon.ico.
var bannedPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" type="image/svg+xml" href="` + signin.FaviconURL + `">
<title>Sign-in refused</title></head>
<body><main><h1>Sign-in refused</h1>
<p>This account is banned from signing in to this site. Contact the site's owner if you think this is a mistake.</p>
</main></body></html>
`

func writeBannedPage(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusForbidden)
	_, _ = w.Write([]byte(bannedPage))
}
