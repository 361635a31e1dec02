package edge

import (
	"encoding/json"
	"net/http"
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
