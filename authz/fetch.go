package authz

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// Defaults of the claims query.
const (
	DefaultQueryTimeout = 2 * time.Second
	// maxQueryReplyBytes bounds what is read of Convex's reply: the value
	// is at most MaxClaimsBytes, and the reply adds its log lines.
	maxQueryReplyBytes = 1 << 20
	// convexUDFFailed is the status older Convex backends answer a
	// function's error with (newer ones answer 200).
	convexUDFFailed = 560
)

// Errors of a query call. Each means "no claims from this call"; they
// differ in what the log says.
var (
	// ErrQueryFailed: the function threw, or Convex refused to run it
	// ({"status":"error"}).
	ErrQueryFailed = errors.New("the claims query failed")
	// ErrQueryTransport: Convex could not be reached, answered another
	// status, something that is not its reply, or too late.
	ErrQueryTransport = errors.New("the claims query could not be called")
)

// QueryConfig is where the claims query lives.
type QueryConfig struct {
	// ConvexURL is the deployment's URL, e.g.
	// https://happy-animal-123.convex.cloud. Required.
	ConvexURL string
	// Query is the public query's path, e.g. auth:claims. Required.
	Query string
	// Timeout bounds one call. Default: DefaultQueryTimeout.
	Timeout time.Duration
	// Client makes the calls. Default: a client of its own.
	Client *http.Client
}

var queryPathRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_./-]*(:[A-Za-z_$][A-Za-z0-9_$]*)?$`)

// Check reports the first option that is wrong, by name.
func (c QueryConfig) Check() error {
	u, err := url.Parse(c.ConvexURL)
	switch {
	case c.ConvexURL == "":
		return errors.New("claims: convex_url is required: the deployment's URL, e.g. https://happy-animal-123.convex.cloud")
	case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return fmt.Errorf("claims: convex_url %q is not an http(s) URL of a deployment: use e.g. https://happy-animal-123.convex.cloud", c.ConvexURL)
	case c.Query == "":
		return errors.New("claims: query is required: the public query that returns the claims, e.g. auth:claims")
	case !queryPathRE.MatchString(c.Query):
		return fmt.Errorf("claims: query %q is not a Convex function path: use <module>:<export>, e.g. auth:claims", c.Query)
	case c.Timeout < 0:
		return fmt.Errorf("claims: timeout %s is negative", c.Timeout)
	}
	return nil
}

// Querier calls the claims query through Convex's HTTP API.
type Querier struct {
	endpoint string
	path     string
	timeout  time.Duration
	client   *http.Client
}

// NewQuerier checks cfg and fills in its defaults.
func NewQuerier(cfg QueryConfig) (*Querier, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	q := &Querier{
		endpoint: strings.TrimSuffix(cfg.ConvexURL, "/") + "/api/query",
		path:     cfg.Query,
		timeout:  cfg.Timeout,
		client:   cfg.Client,
	}
	if q.timeout == 0 {
		q.timeout = DefaultQueryTimeout
	}
	if q.client == nil {
		q.client = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	return q, nil
}

// queryRequest is the body Convex's HTTP API takes: the function's path,
// its one argument object and the value format.
type queryRequest struct {
	Path   string    `json:"path"`
	Args   queryArgs `json:"args"`
	Format string    `json:"format"`
}

type queryArgs struct {
	Context json.RawMessage `json:"context"`
}

// queryReply is Convex's answer: {"status":"success","value":…} or
// {"status":"error","errorMessage":…}, each with logLines.
type queryReply struct {
	Status       string          `json:"status"`
	Value        json.RawMessage `json:"value"`
	ErrorMessage string          `json:"errorMessage"`
}

// Call runs the query as the bearer of token with args {context:
// sessionContext} (an empty object when sessionContext is nil). It returns
// the claims, or nil claims when the query returned null (it refuses the
// context); a value that ParseClaims refuses is an error wrapping
// ErrClaimsRefused.
func (q *Querier) Call(ctx context.Context, token string, sessionContext []byte) (*Claims, error) {
	if len(sessionContext) == 0 {
		sessionContext = []byte("{}")
	}
	body, err := json.Marshal(queryRequest{Path: q.path, Args: queryArgs{Context: sessionContext}, Format: "json"})
	if err != nil {
		return nil, fmt.Errorf("%w: encoding the arguments: %v", ErrQueryTransport, err)
	}
	ctx, cancel := context.WithTimeout(ctx, q.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, q.endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrQueryTransport, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := q.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w: no answer within %s", ErrQueryTransport, q.timeout)
		}
		return nil, fmt.Errorf("%w: %v", ErrQueryTransport, redactURLError(err))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxQueryReplyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading the reply: %v", ErrQueryTransport, redactURLError(err))
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != convexUDFFailed {
		return nil, fmt.Errorf("%w: Convex answered %d: %s", ErrQueryTransport, resp.StatusCode, snippet(raw))
	}
	if len(raw) > maxQueryReplyBytes {
		return nil, fmt.Errorf("%w: the reply is over %d bytes", ErrQueryTransport, maxQueryReplyBytes)
	}
	var reply queryReply
	if err := json.Unmarshal(raw, &reply); err != nil {
		return nil, fmt.Errorf("%w: the reply is not Convex's JSON: %s", ErrQueryTransport, snippet(raw))
	}
	switch reply.Status {
	case "success":
	case "error":
		return nil, fmt.Errorf("%w: %s", ErrQueryFailed, snippet([]byte(reply.ErrorMessage)))
	default:
		return nil, fmt.Errorf("%w: the reply has status %q: %s", ErrQueryTransport, reply.Status, snippet(raw))
	}
	if len(reply.Value) == 0 || string(reply.Value) == "null" {
		return nil, nil
	}
	return ParseClaims(reply.Value)
}

// redactURLError drops the URL from a client error: the endpoint is no
// secret, but a proxy's credentials could be in it.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// snippet is the start of a reply or message on one line, for the log.
func snippet(b []byte) string {
	const max = 300
	s := strings.Join(strings.Fields(strings.ToValidUTF8(string(b), "?")), " ")
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}
