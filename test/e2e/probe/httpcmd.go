package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"strings"
	"time"
)

// maxBody is how much of an answer the probe keeps.
const maxBody = 64 << 10

// tlsFlags are the TLS options every HTTP command shares.
type tlsFlags struct {
	ca, cert, key string
}

func (f *tlsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.ca, "ca", "", "PEM file of the CA that must have signed the server's certificate (https)")
	fs.StringVar(&f.cert, "cert", "", "PEM client certificate to present (with -key)")
	fs.StringVar(&f.key, "key", "", "PEM key of -cert")
}

// newClient returns an HTTP client that trusts only the given CA (never the
// system roots) and presents the client certificate when one is given.
func newClient(f tlsFlags, timeout time.Duration, conns int) (*http.Client, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if f.ca != "" {
		pem, err := os.ReadFile(f.ca)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s holds no PEM certificate", f.ca)
		}
		cfg.RootCAs = pool
	} else {
		cfg.RootCAs = x509.NewCertPool() // nothing is trusted without -ca
	}
	if (f.cert == "") != (f.key == "") {
		return nil, errors.New("-cert and -key go together")
	}
	if f.cert != "" {
		pair, err := tls.LoadX509KeyPair(f.cert, f.key)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	tr := &http.Transport{
		Proxy:               nil, // only cluster addresses, never through a proxy
		DialContext:         (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     cfg,
		TLSHandshakeTimeout: timeout,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     30 * time.Second,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}, nil
}

// HTTPResult is the outcome of one request.
type HTTPResult struct {
	Method string `json:"method"`
	URL    string `json:"url"`
	Status int    `json:"status"` // 0: no HTTP answer
	Body   string `json:"body,omitempty"`
	// Handshake is "ok" or "failed" once a TLS handshake was attempted.
	Handshake string `json:"handshake,omitempty"`
	// TLSAlert is set when the server answered with a TLS alert (for
	// example "certificate required"), during or right after the handshake.
	TLSAlert string `json:"tls_alert,omitempty"`
	Error    string `json:"error,omitempty"`
	MS       int64  `json:"ms"`
	Attempts int    `json:"attempts,omitempty"`
}

// request is what to send.
type request struct {
	method  string
	url     string
	headers http.Header
	body    []byte
}

func (r request) do(ctx context.Context, c *http.Client) HTTPResult {
	res := HTTPResult{Method: r.method, URL: r.url}
	start := time.Now()
	defer func() { res.MS = ms(time.Since(start)) }()
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, r.url, body)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	for k, v := range r.headers {
		req.Header[k] = v
	}
	trace := &httptrace.ClientTrace{TLSHandshakeDone: func(_ tls.ConnectionState, err error) {
		if err != nil {
			res.Handshake = "failed"
		} else {
			res.Handshake = "ok"
		}
	}}
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
	resp, err := c.Do(req)
	if err != nil {
		res.Error = err.Error()
		res.TLSAlert = tlsAlert(err)
		return res
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	res.Status = resp.StatusCode
	res.Body = string(b)
	if err != nil {
		res.Error = err.Error()
	}
	return res
}

// tlsAlert returns the alert of a "remote error: tls: ..." error: the server
// refused the TLS session. Under TLS 1.3 a server that requires a client
// certificate sends it after the client's side of the handshake is done, so
// it shows up on the first read.
func tlsAlert(err error) string {
	const marker = "remote error: tls: "
	s := err.Error()
	if i := strings.Index(s, marker); i >= 0 {
		return strings.TrimSpace(s[i+len(marker):])
	}
	return ""
}

// bodyFlags build a request body: JSON as given, or a form.
type bodyFlags struct {
	json    string
	form    listFlag
	headers listFlag
}

func (f *bodyFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.json, "json", "", "JSON body")
	fs.Var(&f.form, "form", "key=value of a form body (repeatable)")
	fs.Var(&f.headers, "header", "Name: value (repeatable)")
}

func (f *bodyFlags) build(method, u string) (request, error) {
	r := request{method: method, url: u, headers: http.Header{}}
	for _, h := range f.headers {
		k, v, ok := strings.Cut(h, ":")
		if !ok {
			return r, fmt.Errorf("-header %q: want Name: value", h)
		}
		r.headers.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	switch {
	case f.json != "" && len(f.form) > 0:
		return r, errors.New("-json and -form exclude each other")
	case f.json != "":
		r.body = []byte(f.json)
		r.headers.Set("Content-Type", "application/json")
	case len(f.form) > 0:
		vals := url.Values{}
		for _, kv := range f.form {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return r, fmt.Errorf("-form %q: want key=value", kv)
			}
			vals.Add(k, v)
		}
		r.body = []byte(vals.Encode())
		r.headers.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	return r, nil
}

func runHTTP(args []string, _ io.Writer) (any, error) {
	fs := flag.NewFlagSet("http", flag.ContinueOnError)
	var tf tlsFlags
	var bf bodyFlags
	tf.register(fs)
	bf.register(fs)
	method := fs.String("method", http.MethodGet, "HTTP method")
	timeout := fs.Duration("timeout", 5*time.Second, "per attempt")
	attempts := fs.Int("attempts", 1, "attempts (1 to 60) until -want-status is answered")
	interval := fs.Duration("interval", time.Second, "between attempts")
	want := fs.Int("want-status", 0, "stop retrying once this status is answered (0: any answer)")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return nil, err
	}
	if len(rest) != 1 {
		return nil, errors.New("want one URL")
	}
	if *attempts < 1 || *attempts > 60 {
		return nil, errors.New("-attempts must be between 1 and 60")
	}
	req, err := bf.build(*method, rest[0])
	if err != nil {
		return nil, err
	}
	c, err := newClient(tf, *timeout, 1)
	if err != nil {
		return nil, err
	}
	var res HTTPResult
	for i := range *attempts {
		if i > 0 {
			time.Sleep(*interval)
		}
		res = req.do(context.Background(), c)
		res.Attempts = i + 1
		if (*want == 0 && res.Status != 0) || (*want != 0 && res.Status == *want) {
			break
		}
	}
	return res, nil
}
