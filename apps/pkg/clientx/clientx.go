// Package clientx is the HTTP client one service uses to call another: JSON
// in and out, a timeout on every call, the caller's mTLS config, the request
// ID passed on, and a circuit breaker so a failing dependency is not waited
// on by every request. It does not retry: the calls it makes (reserve,
// charge) are made safe to repeat by the caller, with idempotency keys, and
// only the caller knows when repeating is right.
package clientx

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/shopstack/shopstack/apps/pkg/breaker"
	"github.com/shopstack/shopstack/apps/pkg/httpx"
)

// Defaults of Config.
const (
	DefaultTimeout          = 5 * time.Second
	DefaultMaxResponseBytes = 1 << 20
)

// Config configures a Client for one callee.
type Config struct {
	Name    string // the callee, e.g. "payment": in errors, logs and the breaker
	BaseURL string // e.g. SHOPSTACK_PAYMENT_URL: https under mesh none, http under istio

	// TLS is the mTLS client config from mtls.Setup.ClientTLS; nil means
	// plain HTTP, which only an http BaseURL (mesh istio) may use.
	TLS *tls.Config

	Timeout          time.Duration  // per call, including reading the response; zero: DefaultTimeout
	MaxResponseBytes int64          // zero: DefaultMaxResponseBytes
	Breaker          breaker.Config // zero: the breaker's defaults; Name defaults to Name
	Logger           *slog.Logger   // nil: slog.Default()
}

// Client calls one service.
type Client struct {
	name    string
	base    *url.URL
	http    *http.Client
	breaker *breaker.Breaker
	timeout time.Duration
	maxBody int64
}

// New returns a client for cfg.BaseURL.
func New(cfg Config) (*Client, error) {
	base, err := url.Parse(cfg.BaseURL)
	if err != nil || base.Host == "" || (base.Scheme != "https" && base.Scheme != "http") {
		return nil, fmt.Errorf("clientx: %s: base URL %q must be http(s)://host[:port]", cfg.Name, cfg.BaseURL)
	}
	switch {
	case base.Scheme == "https" && cfg.TLS == nil:
		// The system roots would be the wrong trust anchor for our own CA.
		return nil, fmt.Errorf("clientx: %s: an https URL needs the mTLS client config", cfg.Name)
	case base.Scheme == "http" && cfg.TLS != nil:
		return nil, fmt.Errorf("clientx: %s: a TLS config was given for the plain HTTP URL %s", cfg.Name, cfg.BaseURL)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxResponseBytes <= 0 {
		cfg.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	bc := cfg.Breaker
	if bc.Name == "" {
		bc.Name = cfg.Name
	}
	if bc.OnStateChange == nil {
		bc.OnStateChange = func(name string, from, to breaker.State) {
			cfg.Logger.Warn("circuit breaker changed state", slog.String("callee", name),
				slog.String("from", from.String()), slog.String("to", to.String()))
		}
	}
	b := breaker.New(bc)
	transport := &http.Transport{
		Proxy:                 nil, // in-cluster calls never go through a proxy
		DialContext:           (&net.Dialer{Timeout: 3 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       cfg.TLS,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return &Client{
		name:    cfg.Name,
		base:    base,
		http:    &http.Client{Transport: httpx.PropagateRequestID(breaker.Transport(b, transport))},
		breaker: b,
		timeout: cfg.Timeout,
		maxBody: cfg.MaxResponseBytes,
	}, nil
}

// HTTPClient is the underlying client, with the breaker and request ID
// propagation but without the per-call timeout, for calls Do cannot express.
func (c *Client) HTTPClient() *http.Client { return c.http }

// Breaker is the client's circuit breaker, e.g. for a readiness report.
func (c *Client) Breaker() *breaker.Breaker { return c.breaker }

// Close drops idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// Request is one call.
type Request struct {
	Method string
	Path   string // joined to the base URL, e.g. "/v1/payments"; no query string (use Query)
	Query  url.Values
	Body   any         // sent as JSON when not nil
	Header http.Header // extra headers, e.g. Idempotency-Key
}

// Do makes the call and decodes a 2xx JSON response into out (unless out is
// nil or the response is empty). A non-2xx answer is a *StatusError; a call
// that could not be made or answered in time (including an open breaker) is
// an httpx unavailable error wrapping the cause; a call the caller
// cancelled returns the context's error.
func (c *Client) Do(ctx context.Context, r Request, out any) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := c.newRequest(ctx, r)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return c.callError(ctx, r, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.maxBody+1))
	if err != nil {
		return c.callError(ctx, r, err)
	}
	if int64(len(body)) > c.maxBody {
		return fmt.Errorf("%s %s %s: the response exceeds %d bytes", c.name, r.Method, r.Path, c.maxBody)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return newStatusError(c.name, resp, body)
	}
	if out == nil || len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("%s %s %s: decoding the response: %w", c.name, r.Method, r.Path, err)
	}
	return nil
}

func (c *Client) newRequest(ctx context.Context, r Request) (*http.Request, error) {
	u := *c.base
	u.Path = strings.TrimSuffix(u.Path, "/") + "/" + strings.TrimPrefix(r.Path, "/")
	if r.Query != nil {
		u.RawQuery = r.Query.Encode()
	}
	var body io.Reader
	if r.Body != nil {
		b, err := json.Marshal(r.Body)
		if err != nil {
			return nil, fmt.Errorf("%s %s %s: encoding the request: %w", c.name, r.Method, r.Path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.name, err)
	}
	for k, vs := range r.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.Header.Set("Accept", "application/json")
	if r.Body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// callError classifies a call that got no usable answer.
func (c *Client) callError(ctx context.Context, r Request, err error) error {
	if errors.Is(context.Cause(ctx), context.Canceled) {
		return fmt.Errorf("%s %s %s: %w", c.name, r.Method, r.Path, context.Canceled)
	}
	msg := c.name + " is unavailable"
	if errors.Is(err, context.DeadlineExceeded) {
		msg = c.name + " did not answer in time"
	}
	return httpx.Wrap(httpx.ErrUnavailable, fmt.Errorf("%s %s %s: %w", c.name, r.Method, r.Path, err), msg)
}
