package httpx

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// startServer runs s on loopback ports and stops it when the test ends.
func startServer(t *testing.T, s *Server) (cancel func(), done <-chan error) {
	t.Helper()
	s.PublicAddr, s.InternalAddr, s.OpsAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	if s.Logger == nil {
		s.Logger, _ = testLogger()
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancelCtx := context.WithCancel(context.Background())
	errc, finished := make(chan error, 1), make(chan struct{})
	go func() {
		errc <- s.Run(ctx)
		close(finished)
	}()
	t.Cleanup(func() {
		cancelCtx()
		select {
		case <-finished:
		case <-time.After(5 * time.Second):
			t.Error("server did not stop")
		}
	})
	return cancelCtx, errc
}

// fresh is a client that opens a new connection for every request.
var fresh = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := fresh.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func hello(w http.ResponseWriter, r *http.Request) error {
	return WriteJSON(w, http.StatusOK, map[string]string{"hello": "world"})
}

func TestServerListeners(t *testing.T) {
	public, internal := NewRouter(), NewRouter()
	public.HandleFunc("GET /v1/hello", hello)
	internal.HandleFunc("GET /v1/internal", hello)
	s := &Server{Public: public, Internal: internal}
	startServer(t, s)

	t.Run("public and internal serve their routers", func(t *testing.T) {
		if code, _ := get(t, "http://"+s.Addr(ListenerPublic)+"/v1/hello"); code != 200 {
			t.Fatalf("public: %d", code)
		}
		if code, _ := get(t, "http://"+s.Addr(ListenerInternal)+"/v1/internal"); code != 200 {
			t.Fatalf("internal: %d", code)
		}
		if code, _ := get(t, "http://"+s.Addr(ListenerInternal)+"/v1/hello"); code != 404 {
			t.Fatalf("internal serves a public route: %d", code)
		}
	})
	t.Run("ops serves probes and metrics", func(t *testing.T) {
		ops := "http://" + s.Addr(ListenerOps)
		if code, body := get(t, ops+"/healthz"); code != 200 || !strings.Contains(body, `"ok"`) {
			t.Fatalf("healthz: %d %s", code, body)
		}
		if code, body := get(t, ops+"/readyz"); code != 200 || !strings.Contains(body, `"status":"ok"`) {
			t.Fatalf("readyz: %d %s", code, body)
		}
		if _, body := get(t, ops+"/metrics"); !strings.Contains(body, `http_requests_total{code="200",method="GET",route="/v1/hello"} 1`) {
			t.Fatalf("metrics lack the public request:\n%s", body)
		}
	})
	t.Run("ops is not instrumented by the API stack", func(t *testing.T) {
		if _, body := get(t, "http://"+s.Addr(ListenerOps)+"/metrics"); strings.Contains(body, `route="/healthz"`) {
			t.Fatal("probes are counted as API requests")
		}
	})
}

func TestServerOptionalListeners(t *testing.T) {
	s := &Server{}
	startServer(t, s)
	if s.Addr(ListenerPublic) != "" || s.Addr(ListenerInternal) != "" || s.Addr(ListenerOps) == "" {
		t.Fatalf("addrs: %q %q %q", s.Addr(ListenerPublic), s.Addr(ListenerInternal), s.Addr(ListenerOps))
	}
}

func TestServerReadiness(t *testing.T) {
	var dbErr atomic.Pointer[error]
	block := make(chan struct{})
	defer close(block)
	var stuck atomic.Bool
	s := &Server{
		CheckTimeout: 200 * time.Millisecond,
		Checks: []Check{
			{Name: "postgres", Func: func(context.Context) error {
				if p := dbErr.Load(); p != nil {
					return *p
				}
				return nil
			}},
			{Name: "redis", Func: func(context.Context) error {
				if stuck.Load() {
					<-block // ignores its context, as a buggy check might
				}
				return nil
			}},
		},
	}
	startServer(t, s)
	readyz := "http://" + s.Addr(ListenerOps) + "/readyz"

	t.Run("all checks pass", func(t *testing.T) {
		code, body := get(t, readyz)
		var r readiness
		_ = json.Unmarshal([]byte(body), &r)
		if code != 200 || r.Checks["postgres"] != "ok" || r.Checks["redis"] != "ok" {
			t.Fatalf("%d %s", code, body)
		}
	})
	t.Run("a failing check makes the pod unready", func(t *testing.T) {
		down := errors.New("postgres: connection refused")
		dbErr.Store(&down)
		defer dbErr.Store(nil)
		code, body := get(t, readyz)
		if code != 503 || !strings.Contains(body, "connection refused") || !strings.Contains(body, `"redis":"ok"`) {
			t.Fatalf("%d %s", code, body)
		}
	})
	t.Run("a check that ignores its context times out", func(t *testing.T) {
		stuck.Store(true)
		defer stuck.Store(false)
		start := time.Now()
		code, body := get(t, readyz)
		if code != 503 || !strings.Contains(body, `"redis":"timed out"`) || time.Since(start) > 2*time.Second {
			t.Fatalf("%d %s after %s", code, body, time.Since(start))
		}
	})
}

func TestServerGracefulShutdown(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	public := NewRouter()
	public.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) error {
		close(entered)
		<-release
		return WriteJSON(w, 200, map[string]string{"done": "yes"})
	})
	s := &Server{Public: public, DrainDelay: 300 * time.Millisecond, ShutdownGrace: 5 * time.Second}
	stop, done := startServer(t, s)

	inflight := make(chan int, 1)
	go func() {
		resp, err := fresh.Get("http://" + s.Addr(ListenerPublic) + "/slow")
		if err != nil {
			inflight <- -1
			return
		}
		resp.Body.Close()
		inflight <- resp.StatusCode
	}()
	<-entered
	stop()

	// Readiness flips first, while the API still accepts connections.
	waitFor(t, "readyz to report draining", func() bool {
		code, _ := get(t, "http://"+s.Addr(ListenerOps)+"/readyz")
		return code == 503
	})
	if code, _ := get(t, "http://"+s.Addr(ListenerOps)+"/healthz"); code != 200 {
		t.Fatal("liveness failed during the drain")
	}
	// Then the API stops accepting new connections...
	waitFor(t, "the public listener to close", func() bool {
		c, err := net.DialTimeout("tcp", s.Addr(ListenerPublic), time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	// ...but the request in flight still completes.
	select {
	case err := <-done:
		t.Fatalf("Run returned (%v) with a request in flight", err)
	default:
	}
	close(release)
	if code := <-inflight; code != 200 {
		t.Fatalf("in-flight request got %d", code)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
}

func TestServerGraceExpires(t *testing.T) {
	entered, never := make(chan struct{}), make(chan struct{})
	defer close(never)
	public := NewRouter()
	public.HandleFunc("GET /stuck", func(w http.ResponseWriter, r *http.Request) error {
		close(entered)
		select {
		case <-never:
		case <-r.Context().Done():
		}
		return nil
	})
	s := &Server{Public: public, DrainDelay: 10 * time.Millisecond, ShutdownGrace: 300 * time.Millisecond}
	stop, done := startServer(t, s)
	clientErr := make(chan error, 1)
	go func() {
		resp, err := fresh.Get("http://" + s.Addr(ListenerPublic) + "/stuck")
		if err == nil {
			resp.Body.Close()
		}
		clientErr <- err
	}()
	<-entered
	start := time.Now()
	stop()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("Run outlived the grace period")
	}
	if took := time.Since(start); took < 250*time.Millisecond {
		t.Fatalf("gave up after %s, before the grace period", took)
	}
	if err := <-clientErr; err == nil {
		t.Fatal("the stuck request looked successful")
	}
}

func TestServerTLS(t *testing.T) {
	cert := selfSigned(t)
	public := NewRouter()
	public.HandleFunc("GET /v1/hello", hello)
	s := &Server{Public: public, PublicTLS: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}}
	startServer(t, s)

	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"}, ForceAttemptHTTP2: true,
	}}
	// An idle HTTP/2 connection would make the shutdown at cleanup wait.
	defer client.CloseIdleConnections()
	resp, err := client.Get("https://" + s.Addr(ListenerPublic) + "/v1/hello")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
		t.Fatalf("status %d over %s", resp.StatusCode, resp.Proto)
	}
	if _, err := fresh.Get("http://" + s.Addr(ListenerPublic) + "/v1/hello"); err == nil {
		// Go answers plain HTTP on a TLS port with a 400, which is fine;
		// what matters is that it is not served.
		code, _ := get(t, "http://"+s.Addr(ListenerPublic)+"/v1/hello")
		if code == 200 {
			t.Fatal("plain HTTP served on the TLS listener")
		}
	}
}

func TestServerListenError(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	s := &Server{Public: NewRouter(), PublicAddr: taken.Addr().String(), OpsAddr: "127.0.0.1:0"}
	err = s.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "listening on public address") {
		t.Fatalf("got %v", err)
	}
}

// waitFor polls cond every 20ms for at most 3 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}
