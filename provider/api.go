package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"golang.org/x/oauth2"
)

// maxAPIResponseBytes bounds what is read from a provider's API.
const maxAPIResponseBytes = 1 << 20

// apiStatus is an API answer other than 200 OK.
type apiStatus struct {
	api  string
	url  string
	code int
	text string
}

func (e *apiStatus) Error() string { return e.api + " " + e.url + " answered " + e.text }

// getJSON reads the JSON at u into v with tok's Authorization and the
// header pairs given; an answer other than 200 is an *apiStatus. api
// names the API in errors.
func getJSON(ctx context.Context, hc *http.Client, tok *oauth2.Token, api, u string, v any, header ...string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	tok.SetAuthHeader(req)
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", api, u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAPIResponseBytes))
	if err != nil {
		return fmt.Errorf("%s %s: %w", api, u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return &apiStatus{api: api, url: u, code: resp.StatusCode, text: resp.Status}
	}
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("%s %s: %w", api, u, err)
	}
	return nil
}
